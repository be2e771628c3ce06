"""Compliance folders in the tree: collect places TEST01/TEST04 where the v6.x layout wants them, with
verify_accuracy.txt / verify_performance.txt computed against the result's own performance and accuracy runs;
check validates them as the official checker does (closed division); an audit run (mlrepro compliance) joins the
result of the run it audited."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from check_testutil import codes, paths, to_closed
from results_testutil import SUBMITTER

from mlrepro.results import layout as tl
from mlrepro.results.check import check_tree
from mlrepro.results.submission import collect

SHORT_RUN_FINDINGS = {"MIN_DURATION", "DATASET_COVERAGE"}


def _comp(runs: Path, *names: str) -> list[Path]:
    return [runs / "compliance" / n for n in names]


def _result(tree: Path) -> Path:
    return next(tree.glob("*/*/results/*/*/Offline"))


@pytest.fixture
def steady_tree(runs: Path, tmp_path: Path) -> Path:
    root = tmp_path / "t"
    report = collect(_comp(runs, "run-comp-steady"), root, submitter=SUBMITTER)
    assert len(report.placed) == 1, report.rejected
    return root


def test_collect_places_the_compliance_folders(steady_tree: Path) -> None:
    res = _result(steady_tree)
    files = sorted(p.relative_to(res).as_posix() for p in res.rglob("*") if p.is_file() and "TEST0" in str(p))
    assert files == ["TEST01/accuracy/accuracy.txt", "TEST01/accuracy/mlperf_log_accuracy.json",
                     "TEST01/performance/run_1/mlperf_log_detail.txt", "TEST01/performance/run_1/mlperf_log_summary.txt",
                     "TEST01/verify_accuracy.txt", "TEST01/verify_performance.txt",
                     "TEST04/performance/run_1/mlperf_log_detail.txt", "TEST04/performance/run_1/mlperf_log_summary.txt",
                     "TEST04/verify_performance.txt"]
    # the harness's sleep-bound steady SUT: deterministic responses, a steady speed
    assert (res / "TEST01/verify_accuracy.txt").read_text().splitlines()[-1] == "TEST PASS"
    for name in ("TEST01/verify_performance.txt", "TEST04/verify_performance.txt"):
        assert (res / name).read_text().splitlines()[-1].startswith(("TEST PASS", "TEST FAIL")), name
    digest = (res / "TEST01/accuracy/accuracy.txt").read_text().split("hash=")[1].strip()
    kept = tl.full_accuracy_log(tl.sidecar_for(steady_tree), digest)
    assert hashlib.sha256(kept.read_bytes()).hexdigest() == digest and json.loads(kept.read_text())
    assert (res / "TEST01/accuracy/mlperf_log_accuracy.json").stat().st_size <= 10 * 1024
    report = check_tree(steady_tree)
    assert report.ok and codes(report, "warning") == SHORT_RUN_FINDINGS, [str(f) for f in report.findings]


def test_closed_check_validates_passing_compliance(steady_tree: Path) -> None:
    to_closed(steady_tree, SUBMITTER)
    report = check_tree(steady_tree)
    assert not {c for c in codes(report) if c.startswith("COMPLIANCE")}, [str(f) for f in report.findings]
    # the audit runs are performance runs: held to the same rules (here: too short for the closed division)
    assert any("/TEST04/performance/run_1/" in p for p in paths(report, "MIN_DURATION"))


def test_closed_check_rejects_failing_test04(runs: Path, tmp_path: Path) -> None:
    root = tmp_path / "t"
    collect(_comp(runs, "run-comp-cache"), root, submitter=SUBMITTER)
    verify = _result(root) / "TEST04/verify_performance.txt"
    assert verify.read_text().splitlines()[-1].startswith("TEST FAIL")
    assert check_tree(root).ok                       # the open division needs no compliance tests
    to_closed(root, SUBMITTER)
    report = check_tree(root)
    assert any(p.endswith("/Offline/TEST04/verify_performance.txt") for p in paths(report, "COMPLIANCE_FAILED"))


def test_removed_compliance_folder_is_missing(steady_tree: Path) -> None:
    to_closed(steady_tree, SUBMITTER)
    import shutil

    shutil.rmtree(_result(steady_tree) / "TEST01")
    assert any(p.endswith("/Offline/TEST01") for p in paths(check_tree(steady_tree), "COMPLIANCE_MISSING"))


def test_audit_run_joins_the_audited_result(runs: Path, tmp_path: Path) -> None:
    root = tmp_path / "t"
    report = collect(_comp(runs, "run-comp-steady", "run-comp-perf", "run-comp-audit"), root, submitter=SUBMITTER)
    (placed,) = report.placed
    assert (placed.performance_run, placed.accuracy_run) == ("run-comp-perf", "run-comp-steady")
    res = _result(root)
    assert (res / "TEST01/verify_accuracy.txt").read_text().splitlines()[-1] == "TEST PASS"
    # the performance verifications compare the audit with the audited run (run-comp-perf), not another one
    perf = (runs / "compliance/run-comp-perf/Offline/performance/run_1/mlperf_log_summary.txt").read_text()
    score = float(next(x for x in perf.splitlines() if x.startswith("Samples per second")).split(":")[1])
    for name in ("TEST01/verify_performance.txt", "TEST04/verify_performance.txt"):
        assert f"reference score = {score:g}" in (res / name).read_text(), name
    audited = json.loads((runs / "compliance/run-comp-audit/record.json").read_text())
    assert audited["audit_of"] == "run-comp-perf"
    assert (res / "TEST04/performance/run_1/mlperf_log_detail.txt").read_bytes() == \
        (runs / "compliance/run-comp-audit/Offline/TEST04/performance/run_1/mlperf_log_detail.txt").read_bytes()
    assert (root / "open" / SUBMITTER / "src/mlrepro/run-comp-audit/record.json").is_file()


def test_audit_run_without_its_run_is_rejected(runs: Path, tmp_path: Path) -> None:
    report = collect(_comp(runs, "run-comp-steady", "run-comp-audit"), tmp_path / "t", submitter=SUBMITTER)
    kinds = {r.run_id: (r.kind, r.reasons[0]) for r in report.rejected}
    assert kinds["run-comp-audit"][0] == "incomplete" and "run-comp-perf" in kinds["run-comp-audit"][1]


def test_test01_nondeterministic_results_judged_by_accuracy_delta(steady_tree: Path) -> None:
    """A TEST01 whose responses differ may still pass when the sampled results score within the benchmark's
    delta of the accuracy run (baseline_accuracy.txt vs compliance_accuracy.txt in TEST01/accuracy/)."""
    to_closed(steady_tree, SUBMITTER)
    test01 = _result(steady_tree) / "TEST01"
    (test01 / "verify_accuracy.txt").write_text("num_perf_log_data_mismatch = 3\nTEST FAIL\n")
    # no baseline/compliance accuracy: the folder does not hold what a failed TEST01 accuracy check needs
    assert any(p.endswith("/TEST01/accuracy") for p in paths(check_tree(steady_tree), "COMPLIANCE_FILES"))
    (test01 / "accuracy/baseline_accuracy.txt").write_text("accuracy=90.000%\n")
    (test01 / "accuracy/compliance_accuracy.txt").write_text("accuracy=89.500%\n")     # 0.56 % apart: within 1 %
    assert not {c for c in codes(check_tree(steady_tree)) if c.startswith("COMPLIANCE")}
    (test01 / "accuracy/compliance_accuracy.txt").write_text("accuracy=85.000%\n")     # 5.9 % apart
    assert any(p.endswith("/TEST01/accuracy") for p in paths(check_tree(steady_tree), "COMPLIANCE_FAILED"))
