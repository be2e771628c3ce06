"""The workload plugin contract.

A workload is a class registered under the entry-point group ``mlrepro.workloads``. The harness:

1. constructs it with the spec's :class:`~mlrepro.harness.spec.WorkloadSpec` (``Workload(spec)``),
2. calls :meth:`Workload.load` once (model + dataset; may raise WorkloadError / WorkloadConfigError),
3. builds a LoadGen QSL with ``dataset_size`` / ``performance_sample_count`` and routes
   load/unload callbacks to :meth:`load_samples` / :meth:`unload_samples`,
4. calls :meth:`predict` with batches of sample indices from the SUT's issue callback, and
   returns one little-endian byte string per sample to LoadGen (what ``mlperf_log_accuracy.json`` records),
5. after an accuracy run, calls :meth:`accuracy` with the decoded accuracy log.

A :class:`TokenWorkload` (LLMs) is driven through :meth:`TokenWorkload.generate` instead of ``predict``: it
reports each sample's first token and its whole output (token ids) through callbacks, and the harness reports
them to LoadGen with ``FirstTokenComplete`` and ``QuerySamplesComplete(..., n_tokens)``
(:mod:`mlrepro.harness.loadgen_runner`), so LoadGen measures TTFT and TPOT itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlrepro.harness.spec import WorkloadSpec

ENTRY_POINT_GROUP = "mlrepro.workloads"


class WorkloadError(RuntimeError):
    """The workload failed at run time (e.g. GPU asked for but not visible). Harness exit: runtime failure."""


class WorkloadConfigError(ValueError):
    """The workload's configuration is wrong (missing/malformed model file, bad dataset dir, unknown backend
    for this workload). Harness exit: bad spec. ``str(err)`` is one line naming the file or option."""


@dataclass(frozen=True)
class AccuracyResult:
    metric: str                 # e.g. "accuracy"
    value: float                # e.g. 97.5 (percent for classification)
    unit: str = "%"
    details: dict[str, Any] | None = None
    #: the accuracy.txt line when it is not ``metric=value<unit>`` (LLMs: the reference's result dict, e.g.
    #: ``{'rouge1': '38.6418', ..., 'gen_len': 8194131, 'gen_num': 13368}``, which the checker's ROUGE patterns read)
    text: str | None = None

    def line(self) -> str:
        """The line accuracy.txt carries, e.g. ``accuracy=97.500%`` (matches the checker's regex)."""
        if self.text is not None:
            return self.text
        return f"{self.metric}={self.value:.3f}{self.unit}"


class Workload(ABC):
    #: benchmark name the submission checker knows (``resnet``, ...) or the open-division model name
    benchmark: str = ""
    #: open division: the checker benchmark of the same task this model maps to (``model_mapping.json``),
    #: "" when ``benchmark`` is itself a checker name (or the workload must not be submitted, e.g. null)
    model_mapping: str = ""
    #: model name for ``TestSettings.FromConfig`` (mlperf.conf's names: ``resnet50`` ...)
    mlperf_model: str = "resnet50"
    #: backends this workload can run on
    backends: tuple[str, ...] = ("onnxruntime", "torch")

    @classmethod
    def loadgen_model_for(cls, scenario: str) -> str:
        """The mlperf.conf model name a run of ``scenario`` loads (LLMs: the ``-interactive`` one for
        Interactive)."""
        return cls.mlperf_model

    @classmethod
    def run_problems(cls, scenario: str, options: Mapping[str, Any]) -> list[tuple[str, str]]:
        """What a run of ``scenario`` with workload ``options`` cannot do, found before anything is built or
        scheduled: ``[(profile key, message)]``, empty when it can. The harness checks the same when it loads
        (exit 3); this is for ``generate``, ``run`` and ``launch`` to refuse it first (exit 2). Here: a scenario
        of the round's token workloads only (Interactive: a ``-interactive`` LoadGen model) on another workload."""
        from mlrepro.harness.scenarios import BY_NAME

        row = BY_NAME.get(scenario)
        if row is not None and row.model_suffix and not getattr(cls, "token_latencies", False):
            return [("benchmark.scenarios", f"{scenario} is a scenario of the LLM benchmarks; workload "
                                            f"{cls.benchmark or cls.__name__} has none")]
        return []

    def __init__(self, spec: WorkloadSpec) -> None:
        self.spec = spec

    @abstractmethod
    def load(self) -> None:
        """Load the model and the dataset index. Called once before the test."""

    @property
    @abstractmethod
    def dataset_size(self) -> int: ...

    @property
    @abstractmethod
    def performance_sample_count(self) -> int: ...

    @abstractmethod
    def load_samples(self, indices: Sequence[int]) -> None:
        """QSL load callback: bring these samples into memory."""

    @abstractmethod
    def unload_samples(self, indices: Sequence[int]) -> None:
        """QSL unload callback."""

    @abstractmethod
    def predict(self, indices: Sequence[int]) -> list[bytes]:
        """Run the model on the loaded samples ``indices`` (a batch); one response payload per sample."""

    @abstractmethod
    def accuracy(self, results: dict[int, bytes]) -> AccuracyResult:
        """Compute the accuracy from {sample index: payload} decoded from mlperf_log_accuracy.json."""

    def describe(self) -> dict[str, Any]:
        """Framework / model facts for the system description and run record (versions, model sha256...)."""
        return {}

    def close(self) -> None:  # noqa: B027 - an optional hook, deliberately empty
        """Release resources."""


#: ``on_first(row, token_ids)`` / ``on_done(row, token_ids)``: ``row`` indexes the batch handed to generate();
#: ``token_ids`` is a 1-D int64 array (the first token(s) / every output token, EOS included when generated)
TokenCallback = Callable[[int, np.ndarray], None]
#: ``on_done(row, token_ids[, n_tokens])``: ``n_tokens`` is the output's token count where it is not the number
#: of ids (a model server's own count: its ``usage.completion_tokens``, while the ids are its text tokenized)
DoneCallback = Callable[..., None]
#: ``on_failed(row, kind, reason)``: the query of ``row`` failed (``kind`` a short class, ``reason`` one line)
FailedCallback = Callable[[int, str, str], None]


def token_payload(tokens: np.ndarray) -> bytes:
    """A response payload: the output token ids as little-endian int64 (what the reference evaluation reads:
    language/llama3.1-8b/evaluation.py ``np.frombuffer(bytes.fromhex(data), np.int64)``)."""
    return np.ascontiguousarray(tokens, dtype="<i8").tobytes()


class TokenWorkload(Workload):
    """A workload that generates tokens (an LLM). LoadGen measures its token latencies: mlperf.conf sets
    ``use_token_latencies = 1`` for the LoadGen models it runs as, and the harness never switches it off."""

    #: the harness reports first tokens and token counts to LoadGen (loadgen_runner's token path)
    token_latencies = True
    #: the scenario of the run (set by the harness before load(): a backend may choose its engine by it)
    scenario = "Offline"
    #: True when the workload takes samples one by one as LoadGen issues them (``submit``; vLLM's async engine)
    concurrent = False
    #: True when Offline too hands samples over one by one through ``submit`` (a model server batches them itself)
    concurrent_offline = False
    #: where its TTFT/TPOT bounds come from: "mlperf.conf" (the round's, never changed) or "calibrated"
    #: (open-division models only: measured on the system, mlrepro.harness.calibration.calibrated_bounds)
    latency_bounds = "mlperf.conf"
    #: mlperf.conf's model for Interactive ("" = ``<mlperf_model>-interactive``)
    mlperf_model_interactive = ""

    @classmethod
    def loadgen_model_for(cls, scenario: str) -> str:
        if scenario == "Interactive":
            return cls.mlperf_model_interactive or f"{cls.mlperf_model}-interactive"
        return cls.mlperf_model

    def submit(self, indices: Sequence[int], on_first: TokenCallback | None, on_done: DoneCallback,
               on_error: Callable[[BaseException], None], on_failed: FailedCallback | None = None) -> None:
        """Start generating ``indices`` and return at once (only when ``concurrent``); the callbacks come from
        the workload's own thread, ``on_error`` on a failure that ends the run, ``on_failed(row, kind, reason)`` on
        a query that failed on its own (a model server's error: the query ends without output, the run goes on
        and is failed at its end with the count)."""
        raise WorkloadError(f"{type(self).__name__} does not take samples concurrently")

    @abstractmethod
    def generate(self, indices: Sequence[int], on_first: TokenCallback | None, on_done: TokenCallback) -> None:
        """Generate the outputs of the loaded samples ``indices`` (one batch, greedy). ``on_first`` (None in
        Offline, which LoadGen times per sample only) is called once per row as soon as its first token exists;
        ``on_done`` once per row with all its output token ids, as soon as the row ends (EOS or its token limit).
        Called from one harness thread at a time. Raises WorkloadError on failure."""

    def warmup(self, indices: Sequence[int]) -> None:
        """An untimed generation before the test (first-call costs). Default: one short generate of one sample."""
        self.generate(list(indices[:1]), None, lambda row, tokens: None)

    def predict(self, indices: Sequence[int]) -> list[bytes]:
        """The payloads of a batch (token ids, int64 LE) without streaming: generate() with collecting callbacks."""
        out: dict[int, np.ndarray] = {}
        self.generate(indices, None, lambda row, tokens, n_tokens=None: out.__setitem__(row, tokens))
        missing = [i for i in range(len(indices)) if i not in out]
        if missing:
            raise WorkloadError(f"generate() ended without an output for {len(missing)} of {len(indices)} samples")
        return [token_payload(out[i]) for i in range(len(indices))]
