"""The pass/fail logic of the compliance verifications (mlrepro.harness.compliance.verification) on LoadGen logs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mlrepro.harness.compliance.verification import verify_accuracy, verify_performance

FIXTURES = Path("/work/shared/fixtures/real-submissions")
OFFLINE = next(FIXTURES.glob("v6.0/closed_MiTAC/closed/MiTAC/results/*/llama2-70b-99/Offline"))
SERVER = OFFLINE.parent / "Server"


def _copy(src: Path, dst: Path, **values: object) -> Path:
    text = src.read_text()
    for key, value in values.items():
        text, n = re.subn(r'("key": "' + re.escape(key) + r'", "value": )[^,]+', lambda m, v=value: m.group(1) + json.dumps(v),
                          text, count=1)
        assert n == 1, key
    dst.write_text(text)
    return dst


@pytest.mark.parametrize(("factor", "test", "passed"), [
    (1.0, "TEST01", True), (1.09, "TEST01", True), (0.91, "TEST01", True), (1.11, "TEST01", False),
    (0.89, "TEST01", False), (1.09, "TEST04", True), (0.5, "TEST04", True), (1.11, "TEST04", False),
])
def test_offline_thresholds(tmp_path: Path, factor: float, test: str, passed: bool) -> None:
    ref = OFFLINE / "performance/run_1/mlperf_log_detail.txt"
    score = 276.929
    audit = _copy(ref, tmp_path / "d.txt", result_samples_per_second=score * factor)
    v = verify_performance(test, ref, audit)
    assert v.passed is passed and v.text.splitlines()[-1].startswith("TEST PASS" if passed else "TEST FAIL")


def test_invalid_or_mismatched_runs_fail(tmp_path: Path) -> None:
    ref = OFFLINE / "performance/run_1/mlperf_log_detail.txt"
    invalid = _copy(ref, tmp_path / "i.txt", result_validity="INVALID")
    assert "INVALID" in verify_performance("TEST04", ref, invalid).reason
    assert "INVALID" in verify_performance("TEST01", invalid, ref).reason
    server = SERVER / "performance/run_1/mlperf_log_detail.txt"
    assert "scenarios do not match" in verify_performance("TEST01", ref, server).reason
    other = _copy(server, tmp_path / "s.txt", effective_target_latency_ns=5)
    assert "target latency" in verify_performance("TEST01", server, other).reason
    assert "no mlperf_log_detail" in verify_performance("TEST01", ref, tmp_path / "missing.txt").reason


def _log(path: Path, entries: dict[int, str]) -> Path:
    path.write_text(json.dumps([{"seq_id": i, "qsl_idx": k, "data": v} for i, (k, v) in enumerate(entries.items())]))
    return path


def test_accuracy(tmp_path: Path) -> None:
    ref = _log(tmp_path / "ref.json", {i: f"{i:08x}" for i in range(50)})
    same = _log(tmp_path / "same.json", {i: f"{i:08x}" for i in range(0, 50, 7)})
    assert verify_accuracy(ref, same).passed
    differs = _log(tmp_path / "diff.json", {3: "00000003", 7: "ffffffff"})
    v = verify_accuracy(ref, differs)
    assert not v.passed and "num_perf_log_data_mismatch = 1" in v.text
    unknown = _log(tmp_path / "unknown.json", {500: "00"})
    assert not verify_accuracy(ref, unknown).passed
    (tmp_path / "bad.json").write_text("[{")
    assert "not readable JSON" in verify_accuracy(ref, tmp_path / "bad.json").reason
