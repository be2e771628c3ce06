"""Compliance tests TEST01 and TEST04 with real LoadGen: the harness runs them with the timed run's settings and
the round's audit.config; a steady SUT passes both, a SUT that caches responses fails TEST04, a SUT whose
performance-mode outputs differ from its accuracy-mode outputs fails TEST01. The workloads' cost is a sleep per
sample, so the verdicts do not depend on the machine's speed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlrepro.harness import exit_codes
from mlrepro.harness.checksums import read_manifest, verify_manifest
from mlrepro.harness.core import run_harness
from mlrepro.harness.layout import CHECKSUMS
from mlrepro.harness.spec import AuditRequest, RunSpec
from mlrepro.results.compliance import audit_requests

QUIET: Callable[[str], None] = lambda m: None
SETTINGS = {"min_duration_ms": 400, "min_query_count": 1}


def _run(make_spec: Callable[..., RunSpec], tmp_path: Path, **options: Any) -> dict[str, Any]:
    requests = [{"test": r.test, "settings": r.settings} for r in audit_requests("resnet", "v6.1")]
    spec = make_spec(mode="submission", settings=SETTINGS, batch_size=8, compliance=requests,
                     options={"dataset_size": 256, "sample_s": 0.001, **options})
    result = run_harness(spec, tmp_path, log=QUIET)
    assert result.exit_code == exit_codes.EXIT_VALID, result.error
    run_dir = tmp_path / spec.run_id
    check = verify_manifest(run_dir)
    assert check.ok and any(k.endswith("TEST04/verify_performance.txt") for k in read_manifest(run_dir / CHECKSUMS))
    return {c["test"]: c for c in json.loads((run_dir / "record.json").read_text())["compliance"]} | \
        {"dir": run_dir / "Offline"}


def _verdicts(entry: dict[str, Any]) -> dict[str, bool]:
    return {v["kind"]: v["passed"] for v in entry["verifications"]}


def test_audit_requests_come_from_the_round() -> None:
    reqs = audit_requests("resnet", "v6.0")
    assert [r.test for r in reqs] == ["TEST01", "TEST04"]
    assert reqs[0].settings == {"mode": 2, "accuracy_log_rng_seed": 720381539243781796,
                                "accuracy_log_sampling_target": 4096}
    assert audit_requests("retinanet", "v6.0")[0].settings["accuracy_log_sampling_target"] == 256
    assert audit_requests("no-such", "v6.0") == ()
    # the LLMs: TEST06 (first token, EOS, sample length) with compliance/TEST06/audit.config
    (test06,) = audit_requests("llama3.1-8b", "v6.1")
    assert test06.test == "TEST06" and test06.settings["accuracy_log_sampling_target"] == 100
    assert [r.test for r in audit_requests("llama2-70b-99", "v6.0")] == ["TEST06"]


def test_steady_sut_passes_both(make_spec: Callable[..., RunSpec], tmp_path: Path) -> None:
    out = _run(make_spec, tmp_path)
    assert _verdicts(out["TEST01"]) == {"accuracy": True, "performance": True}, out["TEST01"]
    assert _verdicts(out["TEST04"]) == {"performance": True}, out["TEST04"]
    assert out["TEST01"]["audit_config_used"] and out["TEST04"]["audit_config_used"]
    d = out["dir"]
    assert (d / "TEST01/audit.config").read_text().splitlines()[1:] == [
        "*.*.mode = 2", "*.*.accuracy_log_rng_seed = 720381539243781796", "*.*.accuracy_log_sampling_target = 4096"]
    assert "TEST PASS" in (d / "TEST01/verify_accuracy.txt").read_text().splitlines()
    assert (d / "TEST04/verify_performance.txt").read_text().rstrip().endswith("TEST PASS")
    sampled = json.loads((d / "TEST01/performance/run_1/mlperf_log_accuracy.json").read_text())
    assert sampled, "TEST01 logs a sample of the performance-mode responses"
    # the audits ran with the timed run's settings: the same calibrated target
    perf = (d / "performance/run_1/mlperf_log_detail.txt").read_text()
    for test in ("TEST01", "TEST04"):
        audit = (d / test / "performance/run_1/mlperf_log_detail.txt").read_text()
        assert _value(audit, "requested_offline_expected_qps") == _value(perf, "requested_offline_expected_qps")
    assert _value((d / "TEST04/performance/run_1/mlperf_log_detail.txt").read_text(),
                  "effective_performance_issue_same") is True


def test_caching_sut_fails_test04(make_spec: Callable[..., RunSpec], tmp_path: Path) -> None:
    out = _run(make_spec, tmp_path, dedupe=True)
    assert _verdicts(out["TEST04"]) == {"performance": False}, out["TEST04"]
    assert _verdicts(out["TEST01"])["accuracy"] is True
    text = (out["dir"] / "TEST04/verify_performance.txt").read_text()
    assert "TEST FAIL" in text and "TEST PASS" not in text


def test_drifting_sut_fails_test01(make_spec: Callable[..., RunSpec], tmp_path: Path) -> None:
    out = _run(make_spec, tmp_path, drift=True)
    assert _verdicts(out["TEST01"])["accuracy"] is False, out["TEST01"]
    lines = (out["dir"] / "TEST01/verify_accuracy.txt").read_text().splitlines()
    assert "TEST PASS" not in lines and lines[-1].startswith("TEST FAIL")
    assert int(next(x for x in lines if x.startswith("num_perf_log_data_mismatch")).split("=")[1]) > 0


def test_audit_mode_runs_only_the_tests(make_spec: Callable[..., RunSpec], tmp_path: Path) -> None:
    spec = make_spec(mode="audit", settings=SETTINGS, batch_size=8, audit_of="earlier-run",
                     compliance=[{"test": "TEST04", "settings": dict(AuditRequest("TEST04").settings,
                                                                     performance_issue_same=1)}],
                     options={"dataset_size": 256, "sample_s": 0.001})
    result = run_harness(spec, tmp_path, log=QUIET)
    assert result.exit_code == exit_codes.EXIT_VALID, result.error
    d = tmp_path / spec.run_id / "Offline"
    assert not (d / "performance").exists() and (d / "TEST04/performance/run_1/mlperf_log_detail.txt").is_file()
    record = json.loads((tmp_path / spec.run_id / "record.json").read_text())
    assert record["audit_of"] == "earlier-run" and record["compliance"][0]["passed"] is None   # verified later


def _value(detail: str, key: str) -> Any:
    for line in detail.splitlines():
        if f'"key": "{key}"' in line:
            return json.loads(line[len(":::MLLOG "):])["value"]
    raise AssertionError(key)


def test_bad_compliance_spec(make_spec: Callable[..., RunSpec]) -> None:
    from mlrepro.harness.spec import SpecError

    with pytest.raises(SpecError, match="TEST07"):
        make_spec(compliance=[{"test": "TEST07"}])
    with pytest.raises(SpecError, match="audit_of"):
        make_spec(mode="audit", compliance=[{"test": "TEST04"}])
