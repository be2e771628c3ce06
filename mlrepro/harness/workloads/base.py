"""The workload plugin contract.

A workload is a class registered under the entry-point group ``mlrepro.workloads``. The harness:

1. constructs it with the spec's :class:`~mlrepro.harness.spec.WorkloadSpec` (``Workload(spec)``),
2. calls :meth:`Workload.load` once (model + dataset; may raise WorkloadError / WorkloadConfigError),
3. builds a LoadGen QSL with ``dataset_size`` / ``performance_sample_count`` and routes
   load/unload callbacks to :meth:`load_samples` / :meth:`unload_samples`,
4. calls :meth:`predict` with batches of sample indices from the SUT's issue callback, and
   returns one little-endian byte string per sample to LoadGen (what ``mlperf_log_accuracy.json`` records),
5. after an accuracy run, calls :meth:`accuracy` with the decoded accuracy log.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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

    def line(self) -> str:
        """The line accuracy.txt carries, e.g. ``accuracy=97.500%`` (matches the checker's regex)."""
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
