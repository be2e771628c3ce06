"""The ``vllm`` LLM backend: vLLM in-process, as the reference SUT uses it (mlcommons/inference
language/llama3.1-8b/SUT_VLLM.py).

* Offline runs: ``vllm.LLM(model, dtype, tensor_parallel_size, gpu_memory_utilization)`` and its batch API
  ``LLM.generate([TokensPrompt(prompt_token_ids=...)], SamplingParams)``; each output's
  ``outputs[0].token_ids`` is the sample's response.
* Server, Interactive, SingleStream: ``vllm.AsyncLLMEngine.from_engine_args(AsyncEngineArgs(...))`` (in vLLM's
  V1 engine an alias of ``vllm.v1.engine.async_llm.AsyncLLM``) on an asyncio loop in a thread of its own; every
  sample is its own request (``engine.generate(TokensPrompt, SamplingParams, request_id)``, an async generator of
  cumulative ``RequestOutput``s), submitted as LoadGen issues it (:meth:`VLLMBackend.submit`): the engine's
  continuous batching decides the batches. The first output with a token is reported at once (``on_first``), the
  finished one at the end (``on_done``).

Sampling as the reference: ``SamplingParams(temperature=0.0, top_p=1, top_k=1, seed=42, max_tokens=N,
min_tokens=M)`` (greedy). The engine is chosen by the run's scenario (``scenario`` set by the harness before
``load``). vLLM is imported only here, lazily: it needs CUDA and is not installed on CPU machines
(``scripts/device/llm_vllm.sh`` runs this backend on a GPU). Errors: vLLM missing -> WorkloadConfigError; an
engine that cannot start (a model it cannot read) -> WorkloadConfigError naming the model; out of memory ->
WorkloadError saying so.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mlrepro.harness.workloads.base import TokenCallback, WorkloadConfigError, WorkloadError
from mlrepro.harness.workloads.llm.model import ModelRef

#: the reference's generation settings (SUT_VLLM.py gen_kwargs), max/min tokens from the benchmark's data
REFERENCE_SAMPLING = {"temperature": 0.0, "top_p": 1, "top_k": 1, "seed": 42}


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or "out of memory" in str(exc).lower() or \
        type(exc).__name__ == "OutOfMemoryError"


class VLLMBackend:
    """vLLM's batch engine (Offline) or async engine (streaming scenarios). ``submit`` streams one request per
    sample through the async engine; ``generate`` blocks until a batch is done (either engine)."""

    name = "vllm"
    #: the harness may hand it samples one by one as LoadGen issues them (continuous batching)
    concurrent = True

    def __init__(self, device: str = "cuda", tensor_parallel_size: int = 1, gpu_memory_utilization: float = 0.9,
                 dtype: str | None = None, scenario: str = "Offline") -> None:
        self.device = device
        self.tensor_parallel_size = tensor_parallel_size
        self.gpu_memory_utilization = gpu_memory_utilization
        self.dtype = dtype or "auto"
        self.scenario = scenario
        self.vllm: Any = None
        self.llm: Any = None                # vllm.LLM (Offline)
        self.engine: Any = None             # vllm.AsyncLLMEngine (streaming scenarios)
        self.tokenizer: Any = None
        self.eos: frozenset[int] = frozenset()
        self.vocab_size = 0
        self.load_s: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ids = itertools.count()

    # ------------------------------------------------------------------ loading
    def _engine_kwargs(self, ref: ModelRef) -> dict[str, Any]:
        kw: dict[str, Any] = {"model": str(ref.path) if ref.gguf_file else str(ref.directory), "dtype": self.dtype,
                              "tensor_parallel_size": self.tensor_parallel_size,
                              "gpu_memory_utilization": self.gpu_memory_utilization}
        if ref.gguf_file:
            kw["tokenizer"] = str(ref.directory)      # vLLM reads a GGUF's tokenizer from a HF dir beside it
        return kw

    def load(self, ref: ModelRef) -> None:
        t0 = time.perf_counter()
        if self.device != "cuda":
            raise WorkloadConfigError("backend vllm runs on device cuda (workload.device)")
        try:
            import vllm
        except ImportError as exc:
            raise WorkloadConfigError(f"backend vllm: vLLM is not installed here ({exc}); it is in the GPU image, "
                                      "or use backend transformers") from None
        self.vllm = vllm
        kw = self._engine_kwargs(ref)
        try:
            if self.scenario == "Offline":
                self.llm = vllm.LLM(**kw)
                self.tokenizer = self.llm.get_tokenizer()
            else:
                self._start_loop()
                self.engine = vllm.AsyncLLMEngine.from_engine_args(vllm.AsyncEngineArgs(**kw))
                self.tokenizer = self._run(self.engine.get_tokenizer())
        except (WorkloadConfigError, WorkloadError):
            raise
        except Exception as exc:  # noqa: BLE001
            if _is_oom(exc):
                raise WorkloadError(f"{ref.path}: out of memory while loading the model in vLLM ({exc})") from None
            raise WorkloadConfigError(f"{ref.path}: vLLM {getattr(vllm, '__version__', '?')} cannot load this "
                                      f"model ({type(exc).__name__}: {' '.join(str(exc).split())[:300]})") from None
        eos = getattr(self.tokenizer, "eos_token_id", None)
        self.eos = frozenset([eos] if isinstance(eos, int) else [])
        self.vocab_size = int(len(self.tokenizer))
        self.load_s = time.perf_counter() - t0

    def _start_loop(self) -> None:
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        threading.Thread(target=run, name="mlrepro-vllm-loop", daemon=True).start()
        ready.wait()
        self._loop = loop

    def _run(self, coro: Any) -> Any:
        """Run ``coro`` on the engine's loop and wait for it (a plain value is returned as is)."""
        if not asyncio.iscoroutine(coro):
            return coro
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def sampling_params(self, max_new_tokens: int, min_new_tokens: int) -> Any:
        """The reference's SamplingParams (greedy) with the benchmark's token limits."""
        return self.vllm.SamplingParams(**REFERENCE_SAMPLING, max_tokens=max_new_tokens, min_tokens=min_new_tokens)

    def prompt(self, ids: Sequence[int]) -> Any:
        from vllm.inputs import TokensPrompt
        return TokensPrompt(prompt_token_ids=list(ids))

    # ------------------------------------------------------------------ generation
    async def _stream(self, ids: Sequence[int], params: Any, row: int, on_first: TokenCallback | None,
                      on_done: TokenCallback) -> None:
        first = True
        last: Any = None
        async for out in self.engine.generate(self.prompt(ids), params, f"mlrepro-{next(self._ids)}"):
            last = out
            tokens = out.outputs[0].token_ids
            if first and len(tokens) and on_first is not None:
                on_first(row, np.asarray(list(tokens), dtype=np.int64))
                first = False
        if last is None:
            raise WorkloadError("vLLM returned no output for a request")
        on_done(row, np.asarray(list(last.outputs[0].token_ids), dtype=np.int64))

    def submit(self, prompts: Sequence[Sequence[int]], max_new_tokens: int, min_new_tokens: int,
               on_first: TokenCallback | None, on_done: TokenCallback,
               on_error: Callable[[BaseException], None]) -> None:
        """Start one streamed request per prompt on the async engine and return at once; callbacks run on the
        engine's loop thread; a failure of a request calls ``on_error``."""
        if self.engine is None or self._loop is None:
            raise WorkloadError("vllm: submit() needs the async engine (a Server, Interactive or SingleStream run)")
        params = self.sampling_params(max_new_tokens, min_new_tokens)
        for row, ids in enumerate(prompts):
            fut = asyncio.run_coroutine_threadsafe(self._stream(ids, params, row, on_first, on_done), self._loop)
            fut.add_done_callback(lambda f: on_error(f.exception()) if f.exception() is not None else None)

    def generate(self, prompts: Sequence[Sequence[int]], max_new_tokens: int, min_new_tokens: int,
                 on_first: TokenCallback | None, on_done: TokenCallback) -> None:
        """A batch, blocking: ``LLM.generate`` (Offline) or the async engine's requests gathered."""
        params = self.sampling_params(max_new_tokens, min_new_tokens)
        try:
            if self.llm is not None:
                outputs = self.llm.generate([self.prompt(p) for p in prompts], params, use_tqdm=False)
                for row, out in enumerate(outputs):
                    tokens = np.asarray(list(out.outputs[0].token_ids), dtype=np.int64)
                    if on_first is not None and len(tokens):
                        on_first(row, tokens[:1])
                    on_done(row, tokens)
                return
            assert self._loop is not None

            async def gather() -> None:
                await asyncio.gather(*(self._stream(p, params, r, on_first, on_done) for r, p in enumerate(prompts)))

            asyncio.run_coroutine_threadsafe(gather(), self._loop).result()
        except Exception as exc:
            if _is_oom(exc):
                raise WorkloadError(f"vllm: out of memory generating a batch of {len(prompts)} ({exc})") from exc
            raise

    def decode(self, tokens: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(tokens), skip_special_tokens=True))

    def describe(self) -> dict[str, Any]:
        return {"framework": "vllm", "vllm": getattr(self.vllm, "__version__", None), "device": self.device,
                "engine": "LLM" if self.llm is not None else "AsyncLLMEngine", "dtype": self.dtype,
                "tensor_parallel_size": self.tensor_parallel_size, "vocab_size": self.vocab_size,
                "eos_token_ids": sorted(self.eos), "sampling": dict(REFERENCE_SAMPLING),
                "load_s": round(self.load_s, 3) if self.load_s is not None else None}

    def close(self) -> None:
        self.llm = None
        self.engine = None
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._loop = None
