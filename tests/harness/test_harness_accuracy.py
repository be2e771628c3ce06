"""Accuracy log decoding and accuracy.txt."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import pytest
from fake_workloads import FakeWorkload, prediction

from mlrepro.harness.accuracy import (
    AccuracyLogError,
    decode_accuracy_log,
    evaluate_accuracy,
    read_accuracy_log,
)
from mlrepro.harness.spec import WorkloadSpec


def _log(indices: list[int]) -> str:
    return json.dumps([{"seq_id": n, "qsl_idx": i, "data": struct.pack("<i", prediction(i)).hex().upper()}
                       for n, i in enumerate(indices)])


def _workload(size: int) -> FakeWorkload:
    w = FakeWorkload(WorkloadSpec(name="fake", backend="none", options={"dataset_size": size}))
    w.load()
    return w


def test_decode() -> None:
    assert decode_accuracy_log(_log([3, 1])) == {3: struct.pack("<i", prediction(3)),
                                                 1: struct.pack("<i", prediction(1))}
    assert decode_accuracy_log("[]") == {}


@pytest.mark.parametrize("text, fragment", [
    ("[", "not valid JSON"), ("{}", "expected a JSON list"), ("[1]", "not an object"),
    ('[{"qsl_idx": "1", "data": "00"}]', "integer qsl_idx"), ('[{"qsl_idx": 1, "data": "zz"}]', "invalid hex"),
])
def test_decode_errors(text: str, fragment: str) -> None:
    with pytest.raises(AccuracyLogError, match=fragment):
        decode_accuracy_log(text)


def test_read_missing(tmp_path: Path) -> None:
    with pytest.raises(AccuracyLogError, match="cannot read"):
        read_accuracy_log(tmp_path / "mlperf_log_accuracy.json")


def test_evaluate_writes_accuracy_txt(tmp_path: Path) -> None:
    (tmp_path / "mlperf_log_accuracy.json").write_text(_log(list(range(20))[::-1]))
    out = evaluate_accuracy(_workload(20), tmp_path)
    digest = hashlib.sha256((tmp_path / "mlperf_log_accuracy.json").read_bytes()).hexdigest()
    assert out.result.value == pytest.approx(90.0) and out.samples == out.dataset_size == 20
    assert out.log_sha256 == digest
    assert (tmp_path / "accuracy.txt").read_text() == f"accuracy=90.000%\nhash={digest}\n"


def test_evaluate_requires_the_whole_dataset(tmp_path: Path) -> None:
    (tmp_path / "mlperf_log_accuracy.json").write_text(_log(list(range(19))))
    with pytest.raises(AccuracyLogError, match="covers 19 samples, the dataset has 20"):
        evaluate_accuracy(_workload(20), tmp_path)
    (tmp_path / "mlperf_log_accuracy.json").write_text(_log(list(range(1, 21))))
    with pytest.raises(AccuracyLogError, match="whole dataset"):
        evaluate_accuracy(_workload(20), tmp_path)
    assert not (tmp_path / "accuracy.txt").exists()
