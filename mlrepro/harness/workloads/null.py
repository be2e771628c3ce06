"""null: no model, no data -- measures the harness + LoadGen overhead.

``predict`` returns a precomputed one-byte payload per sample (one list multiplication, no per-sample work).
The accuracy metric is honest about what it measures: ``answered`` = percent of the dataset's samples present
in the accuracy log with the expected payload. Options: ``dataset_size`` (default 1024),
``performance_sample_count`` (default = dataset_size). Every backend name is accepted and ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlrepro.harness.workloads._common import check_options, int_option
from mlrepro.harness.workloads.base import AccuracyResult, Workload

PAYLOAD = b"\x01"
DEFAULT_SIZE = 1024


class NullWorkload(Workload):
    benchmark = "null"
    mlperf_model = "resnet50"
    backends = ("none", "onnxruntime", "torch")

    def __init__(self, spec: Any) -> None:
        super().__init__(spec)
        self._size = DEFAULT_SIZE
        self._perf = DEFAULT_SIZE

    def load(self) -> None:
        check_options(self.spec, self.benchmark, ("dataset_size", "performance_sample_count"))
        self._size = int_option(self.spec, "dataset_size", DEFAULT_SIZE, minimum=1) or DEFAULT_SIZE
        self._perf = int_option(self.spec, "performance_sample_count", self._size, minimum=1) or self._size

    @property
    def dataset_size(self) -> int:
        return self._size

    @property
    def performance_sample_count(self) -> int:
        return min(self._perf, self._size)

    def load_samples(self, indices: Sequence[int]) -> None:
        pass

    def unload_samples(self, indices: Sequence[int]) -> None:
        pass

    def predict(self, indices: Sequence[int]) -> list[bytes]:
        return [PAYLOAD] * len(indices)

    def accuracy(self, results: dict[int, bytes]) -> AccuracyResult:
        answered = sum(1 for i, p in results.items() if 0 <= i < self._size and p == PAYLOAD)
        return AccuracyResult("answered", 100.0 * answered / self._size,
                              details={"answered": answered, "dataset_size": self._size,
                                       "logged": len(results)})

    def describe(self) -> dict[str, Any]:
        return {"workload": self.benchmark, "framework": "none", "model": None,
                "note": "no model: measures harness and LoadGen overhead",
                "backend_requested": self.spec.backend, "device_requested": self.spec.device}
