"""A tiny in-test Workload: labels are arithmetic, predictions are wrong on every 10th sample (accuracy 90%).

``install(monkeypatch_or_none)`` registers it (and variants) in the harness registry under the names below,
without touching the package's entry points. Options (``spec.workload.options``):
``dataset_size``, ``performance_sample_count``, ``predict_delay_s`` (per predict call), ``fail_after`` (predict
calls before a WorkloadError), ``config_error`` (load() raises WorkloadConfigError), ``payload_bytes``,
``sample_s`` (a sleep per predicted sample: a steady, machine-independent cost), ``dedupe`` (that cost only once
per distinct sample of a batch: a SUT that caches responses), ``drift`` (responses change from call to call:
a SUT whose performance-mode outputs differ from its accuracy-mode outputs).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Sequence
from typing import Any

from mlrepro.harness.workloads.base import AccuracyResult, Workload, WorkloadConfigError, WorkloadError


def truth(idx: int) -> int:
    return (idx * 7) % 10


def prediction(idx: int) -> int:
    return (truth(idx) + 1) % 10 if idx % 10 == 0 else truth(idx)


class FakeWorkload(Workload):
    benchmark = "fake"
    mlperf_model = "resnet50"
    backends = ("none", "onnxruntime")

    def load(self) -> None:
        o = self.spec.options
        if o.get("config_error"):
            raise WorkloadConfigError(f"{self.spec.model_path or 'model.onnx'}: not a model file")
        self._size = int(o.get("dataset_size", 64))
        self._perf = int(o.get("performance_sample_count", self._size))
        self._delay = float(o.get("predict_delay_s", 0.0))
        self._fail_after = o.get("fail_after")
        self._extra = int(o.get("payload_bytes", 4)) - 4
        self._sample_s = float(o.get("sample_s", 0.0))
        self._dedupe = bool(o.get("dedupe", False))
        self._drift = bool(o.get("drift", False))
        self._calls = 0
        self.loaded: set[int] = set()
        self.load_calls = 0
        self.predicted = 0

    @property
    def dataset_size(self) -> int:
        return self._size

    @property
    def performance_sample_count(self) -> int:
        return self._perf

    def load_samples(self, indices: Sequence[int]) -> None:
        self.load_calls += 1
        self.loaded.update(indices)

    def unload_samples(self, indices: Sequence[int]) -> None:
        self.loaded.difference_update(indices)

    def predict(self, indices: Sequence[int]) -> list[bytes]:
        self._calls += 1
        if self._fail_after is not None and self._calls > int(self._fail_after):
            raise WorkloadError("fake accelerator fell off the bus")
        if self._delay:
            time.sleep(self._delay)
        if self._sample_s:
            time.sleep(self._sample_s * (len(set(indices)) if self._dedupe else len(indices)))
        pad = b"\0" * self._extra if self._extra > 0 else b""
        self.predicted += len(indices)
        shift = self._calls if self._drift else 0
        return [struct.pack("<i", (prediction(i) + shift) % 10) + pad for i in indices]

    def accuracy(self, results: dict[int, bytes]) -> AccuracyResult:
        good = sum(1 for i, b in results.items() if struct.unpack_from("<i", b)[0] == truth(i))
        return AccuracyResult(metric="accuracy", value=100.0 * good / max(1, len(results)),
                              details={"correct": good, "total": len(results)})

    def describe(self) -> dict[str, Any]:
        return {"framework": "fake", "model_sha256": "0" * 64}


class BrokenPlugin:  # not a Workload subclass
    pass


class _StaticEntryPoint:
    def __init__(self, name: str, obj: Any) -> None:
        self.name = name
        self.value = f"{__name__}:{getattr(obj, '__name__', obj)}"
        self._obj = obj

    def load(self) -> Any:
        return self._obj


def _scheduled_llm(demo: bool = False) -> Any:
    from token_workloads import ScheduledDemoLLM, ScheduledLLM
    return ScheduledDemoLLM if demo else ScheduledLLM


FAKES = {"fake": FakeWorkload, "broken-plugin": BrokenPlugin, "scheduled-llm": _scheduled_llm(),
         "scheduled-demo-llm": _scheduled_llm(demo=True)}


def install(monkeypatch: Any = None) -> None:
    """Make the harness registry see the fakes (plus the real entry points)."""
    from mlrepro.harness import registry

    original = registry._entry_points

    def patched() -> dict[str, Any]:
        eps = dict(original())
        eps.update({n: _StaticEntryPoint(n, o) for n, o in FAKES.items()})
        return eps

    if monkeypatch is not None:
        monkeypatch.setattr(registry, "_entry_points", patched)
    else:
        registry._entry_points = patched
