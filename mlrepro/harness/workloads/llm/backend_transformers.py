"""The ``transformers`` LLM backend: in-process Hugging Face transformers on torch (CPU or CUDA).

Greedy decoding like the reference (vLLM ``temperature 0, top_k 1``; llama2-70b ``do_sample False, num_beams 1``):
``generate(do_sample=False, num_beams=1)`` with the benchmark's ``max_new_tokens`` / ``min_new_tokens``. A batch of
prompts (token ids, not text: the dataset's ``tok_input``, as the reference hands ``prompt_token_ids`` to vLLM) is
left-padded into one tensor and generated together (Offline runs batches of the spec's batch size; Server,
Interactive and SingleStream the samples queued at the time). A streamer sees every step's tokens: each row's first
token is reported at once (``on_first``) and each row as soon as it ends (EOS, or its token limit at the end).
The output of a row is its generated token ids up to and including its first EOS (vLLM's ``token_ids`` end the
same way); padding after EOS is never reported (TEST06's EOS check).

Model loading: ``from_pretrained(dir)`` or ``from_pretrained(dir, gguf_file=name)`` (transformers dequantizes a
GGUF to float32; needs the ``gguf`` package, and ``accelerate``). Errors: a GGUF transformers cannot read or an
unloadable directory -> WorkloadConfigError naming the file; out of memory while loading -> WorkloadError saying so.
torch and transformers are imported only when the backend loads.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from mlrepro.harness.workloads.base import TokenCallback, WorkloadConfigError, WorkloadError
from mlrepro.harness.workloads.llm.model import ModelRef

_DTYPES = ("float32", "bfloat16", "float16")
#: the last loaded (tokenizer, model) per (model file, device, dtype): one process loads a model once, whatever
#: the number of runs it makes of it (calibration probes, tests, benchmarks); a new key replaces the old one
_LOADED: dict[tuple[str, str, str | None], tuple[Any, Any, float]] = {}


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or "out of memory" in str(exc).lower() or \
        type(exc).__name__ == "OutOfMemoryError"


class _RowStreamer:
    """A transformers streamer (``put``/``end``, the BaseStreamer protocol) that follows each row of a batch:
    ``generate`` calls ``put(prompt_ids)`` once, then ``put(next_tokens)`` (shape [batch]) after every step."""

    def __init__(self, rows: int, eos: frozenset[int], on_first: TokenCallback | None, on_done: TokenCallback,
                 clock: Any) -> None:
        self.tokens: list[list[int]] = [[] for _ in range(rows)]
        self.done = [False] * rows
        self.first_at: list[float | None] = [None] * rows
        self.done_at: list[float | None] = [None] * rows
        self._eos, self._on_first, self._on_done = eos, on_first, on_done
        self._prompt_seen = False
        self._clock = clock

    def put(self, value: Any) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        step = value.reshape(-1).tolist()
        for r, t in enumerate(step):
            if self.done[r]:
                continue
            toks = self.tokens[r]
            toks.append(int(t))
            if len(toks) == 1:
                self.first_at[r] = self._clock()
                if self._on_first is not None:
                    self._on_first(r, np.asarray(toks, dtype=np.int64))
            if t in self._eos:
                self._finish(r)

    def _finish(self, r: int) -> None:
        self.done[r] = True
        self.done_at[r] = self._clock()
        self._on_done(r, np.asarray(self.tokens[r], dtype=np.int64))

    def end(self) -> None:
        for r in range(len(self.done)):
            if not self.done[r]:
                self._finish(r)


class TransformersBackend:
    """One model, loaded once; ``generate`` is called from one thread at a time."""

    name = "transformers"

    def __init__(self, device: str = "cpu", threads: int | None = None, dtype: str | None = None) -> None:
        if dtype is not None and dtype not in _DTYPES:
            raise WorkloadConfigError(f"workload.options.dtype: {dtype!r} is not one of {', '.join(_DTYPES)}")
        self.device = device
        self.threads = threads
        self.dtype = dtype
        self.model: Any = None
        self.tokenizer: Any = None
        self.eos: frozenset[int] = frozenset()
        self.pad_id = 0
        self.vocab_size = 0
        self.load_s: float | None = None
        self.reused = False                 # the model came from this process's earlier load (_LOADED)
        #: (first-token seconds, done seconds) per row of the last generate(), from its start (benchmarks)
        self.last_timings: list[tuple[float | None, float | None]] = []
        self._torch: Any = None

    def load(self, ref: ModelRef) -> None:
        t0 = time.perf_counter()
        try:
            import torch
            import transformers
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise WorkloadConfigError(f"backend transformers: {exc} (pip install 'mlrepro[llm]')") from None
        self._torch = torch
        if self.device == "cuda" and not torch.cuda.is_available():
            raise WorkloadError("device cuda asked for, but torch sees no CUDA device")
        if self.threads:
            torch.set_num_threads(self.threads)
        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()
        kw: dict[str, Any] = {"gguf_file": ref.gguf_file} if ref.gguf_file else {}
        where = ref.path
        key = (str(ref.path.resolve()), self.device, self.dtype)
        if key in _LOADED:
            self.tokenizer, self.model, self.load_s = _LOADED[key]
            self._setup()
            self.reused = True
            return
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(ref.directory), **kw)
        except Exception as exc:  # noqa: BLE001 - any reader failure is this file's problem
            if _is_oom(exc):
                raise WorkloadError(f"{where}: out of memory while loading the tokenizer ({exc})") from None
            raise WorkloadConfigError(f"{where}: transformers {transformers.__version__} cannot read this "
                                      f"{ref.format.upper()} tokenizer ({type(exc).__name__}: {_short(exc)})") from None
        if self.dtype:
            kw["dtype"] = getattr(torch, self.dtype)
        try:
            # transformers draws a progress bar of its own while de-quantizing a GGUF (tqdm, not switchable)
            with contextlib.redirect_stderr(io.StringIO()):
                model = AutoModelForCausalLM.from_pretrained(str(ref.directory), **kw)
            model = model.to(self.device).eval()
        except Exception as exc:  # noqa: BLE001
            if _is_oom(exc):
                raise WorkloadError(f"{where}: out of memory while loading the model on {self.device} "
                                    f"({_short(exc)})") from None
            raise WorkloadConfigError(f"{where}: transformers {transformers.__version__} cannot load this "
                                      f"{ref.format.upper()} model ({type(exc).__name__}: {_short(exc)})") from None
        self.model = model
        self.load_s = time.perf_counter() - t0
        _LOADED.clear()
        _LOADED[key] = (self.tokenizer, model, self.load_s)
        self._setup()

    def _setup(self) -> None:
        model = self.model
        gen = model.generation_config
        eos = gen.eos_token_id if gen.eos_token_id is not None else self.tokenizer.eos_token_id
        self.eos = frozenset([eos] if isinstance(eos, int) else (eos or []))
        pad = gen.pad_token_id if gen.pad_token_id is not None else self.tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else (min(self.eos) if self.eos else 0))
        self.vocab_size = int(model.get_input_embeddings().weight.shape[0])

    def generate(self, prompts: Sequence[Sequence[int]], max_new_tokens: int, min_new_tokens: int,
                 on_first: TokenCallback | None, on_done: TokenCallback) -> None:
        """Greedy generation of a batch of prompts (token ids). See the module docstring."""
        torch = self._torch
        n = len(prompts)
        width = max(len(p) for p in prompts)
        ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        for r, p in enumerate(prompts):       # left padding: every row's last prompt token in the last column
            ids[r, width - len(p):] = torch.tensor(p, dtype=torch.long)
            mask[r, width - len(p):] = 1
        clock = time.perf_counter
        t0 = clock()
        streamer = _RowStreamer(n, self.eos, on_first, on_done, clock)
        try:
            with torch.inference_mode():
                self.model.generate(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                                    do_sample=False, num_beams=1, max_new_tokens=max_new_tokens,
                                    min_new_tokens=min_new_tokens, pad_token_id=self.pad_id,
                                    eos_token_id=sorted(self.eos) or None, streamer=streamer)
        except Exception as exc:
            if _is_oom(exc):
                raise WorkloadError(f"out of memory generating a batch of {n} ({_short(exc)})") from exc
            raise
        streamer.end()
        self.last_timings = [(f - t0 if f is not None else None, d - t0 if d is not None else None)
                             for f, d in zip(streamer.first_at, streamer.done_at)]

    def decode(self, tokens: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(tokens), skip_special_tokens=True))

    def describe(self) -> dict[str, Any]:
        import torch
        import transformers
        return {"framework": "transformers", "transformers": transformers.__version__, "torch": torch.__version__,
                "device": self.device, "threads": torch.get_num_threads(), "dtype": str(self.model.dtype)
                if self.model is not None else None, "vocab_size": self.vocab_size, "eos_token_ids": sorted(self.eos),
                "load_s": round(self.load_s, 3) if self.load_s is not None else None, "model_reused": self.reused}

    def close(self) -> None:
        self.model = None


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]
