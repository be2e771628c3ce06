"""null workload: constant cheap payloads, an honest 'answered' metric."""

from __future__ import annotations

import time

import pytest

from mlrepro.harness.spec import WorkloadSpec
from mlrepro.harness.workloads.base import WorkloadConfigError
from mlrepro.harness.workloads.null import PAYLOAD, NullWorkload


def make(**kw: object) -> NullWorkload:
    w = NullWorkload(WorkloadSpec(name="null", backend="none", **kw))  # type: ignore[arg-type]
    w.load()
    return w


def test_defaults() -> None:
    w = make()
    assert w.dataset_size == 1024 and w.performance_sample_count == 1024
    assert NullWorkload.backends == ("none", "onnxruntime", "torch")
    assert w.describe()["framework"] == "none"


def test_predict_is_constant_and_cheap() -> None:
    w = make()
    assert w.predict([5, 6, 7]) == [PAYLOAD] * 3
    assert w.predict([]) == []
    idx = list(range(1024))
    t0 = time.perf_counter()
    for _ in range(100):
        w.predict(idx)
    assert time.perf_counter() - t0 < 1.0        # ~100k samples: list multiplication, no per-sample work


def test_answered_metric() -> None:
    w = make(options={"dataset_size": 10})
    full = {i: p for i, p in zip(range(10), w.predict(list(range(10))))}
    r = w.accuracy(full)
    assert (r.metric, r.value, r.line()) == ("answered", 100.0, "answered=100.000%")
    half = {i: PAYLOAD for i in range(5)}
    half[7] = b"\x02"                                  # a wrong payload does not count
    half[99] = PAYLOAD                                 # nor does an index outside the dataset
    r = w.accuracy(half)
    assert r.value == 50.0 and r.details == {"answered": 5, "dataset_size": 10, "logged": 7}


def test_options() -> None:
    w = make(options={"dataset_size": 100, "performance_sample_count": 500})
    assert w.dataset_size == 100 and w.performance_sample_count == 100
    for backend in ("onnxruntime", "torch"):
        NullWorkload(WorkloadSpec(name="null", backend=backend, device="cuda")).load()   # ignored
    with pytest.raises(WorkloadConfigError, match="dataset_size: expected an integer >= 1"):
        make(options={"dataset_size": 0})
    with pytest.raises(WorkloadConfigError, match="unknown option"):
        make(options={"size": 3})
