"""check_tree: a collected tree passes; INVALID results, LoadGen errors, zero seeds, bad accuracy files, broken
systems json and structure problems are findings."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from results_testutil import SUBMITTER, valid_runs

from mlrepro.results.check import OFFICIAL_CHECKER_NOTE, check_tree
from mlrepro.results.submission import collect


@pytest.fixture
def tree(runs: Path, tmp_path: Path) -> Path:
    root = tmp_path / "submission"
    collect(valid_runs(runs), root, submitter=SUBMITTER)
    return root


def _result(tree: Path, scenario: str = "Offline") -> Path:
    return next((tree / "open" / SUBMITTER / "results").glob(f"*/tiny-classifier/{scenario}"))


def _codes(tree: Path) -> dict[str, list[str]]:
    report = check_tree(tree)
    out: dict[str, list[str]] = {}
    for f in report.errors:
        out.setdefault(f.code, []).append(f.path)
    return out


def test_collected_tree_passes(tree: Path) -> None:
    report = check_tree(tree)
    assert report.ok, [str(f) for f in report.errors]
    assert report.results_checked == 2 and report.systems_checked == 1
    assert {f.code for f in report.warnings} == {"SHORT_RUN"}          # open division: a warning
    assert "not installed" in report.note and report.note == OFFICIAL_CHECKER_NOTE


def test_invalid_performance_result_is_an_error(tree: Path) -> None:
    summary = _result(tree) / "performance/run_1/mlperf_log_summary.txt"
    summary.write_text(summary.read_text().replace("Result is : VALID", "Result is : INVALID"))
    codes = _codes(tree)
    assert list(codes) == ["INVALID_RESULT"]
    assert codes["INVALID_RESULT"][0].endswith("Offline/performance/run_1/mlperf_log_summary.txt")


def test_loadgen_errors_are_errors(tree: Path) -> None:
    for rel in ("performance/run_1/mlperf_log_detail.txt", "accuracy/mlperf_log_detail.txt"):
        detail = _result(tree) / rel
        text = detail.read_text()
        first = text.splitlines()[3]
        detail.write_text(text + first.replace('"is_error": false', '"is_error": true') + "\n")
    report = check_tree(tree)
    assert {f.code for f in report.errors} == {"LOADGEN_ERROR"}
    assert len(report.errors) == 2


def test_zero_seeds_are_an_error(tree: Path) -> None:
    detail = _result(tree) / "performance/run_1/mlperf_log_detail.txt"
    detail.write_text(re.sub(r'("key": "effective_schedule_rng_seed", "value": )\d+', r"\g<1>0",
                             detail.read_text()))
    assert list(_codes(tree)) == ["SEEDS"]


def test_accuracy_file_problems(tree: Path) -> None:
    acc = _result(tree) / "accuracy"
    txt = acc / "accuracy.txt"
    good = txt.read_text()
    digest = good.split("hash=")[1].strip()
    txt.write_text(good.replace(digest, "0" * 64))
    assert list(_codes(tree)) == ["ACCURACY_HASH"]
    txt.write_text("accuracy=90.000%\n")
    assert list(_codes(tree)) == ["ACCURACY_FORMAT"]
    txt.write_text(good.replace("accuracy=", "acc is "))
    assert list(_codes(tree)) == ["ACCURACY_FORMAT"]
    txt.write_text(good)
    full = tree.parent / "submission.mlrepro" / "full_accuracy_logs" / f"{digest}.json"
    shutil.copyfile(full, acc / "mlperf_log_accuracy.json")             # not truncated
    assert list(_codes(tree)) == ["TRUNCATION"]
    full.unlink()
    assert set(_codes(tree)) == {"TRUNCATION", "ACCURACY_HASH"}            # kept logs changed: an error
    shutil.rmtree(full.parent.parent)
    report = check_tree(tree)                                              # tree moved without its sidecar
    assert {f.code for f in report.errors} == {"TRUNCATION"}
    assert "ACCURACY_HASH" in {f.code for f in report.warnings}


def test_systems_json_problems(tree: Path) -> None:
    sysfile = next((tree / "open" / SUBMITTER / "systems").glob("*.json"))
    desc = json.loads(sysfile.read_text())
    desc["accelerators_per_node"] = 0                 # numeric 0: "empty" for the checker
    del desc["cooling"]
    desc["submitter"] = "someone-else"
    desc["is_network"] = "true"
    sysfile.write_text(json.dumps(desc))
    messages = [f.message for f in check_tree(tree).errors if f.code == "SYSTEM_DESC"]
    assert any("accelerators_per_node requires a meaningful response" in m for m in messages)
    assert any("cooling is missing" in m for m in messages)
    assert any("submitter" in m for m in messages)
    assert any("network_type is missing" in m for m in messages)     # network mode needs the network fields
    sysfile.unlink()
    assert "SYSTEM_DESC" in _codes(tree)


def test_structure_problems(tree: Path) -> None:
    (tree / "stray.txt").write_text("x")
    (tree / ".mlrepro").mkdir()
    res = _result(tree, "SingleStream")
    (res / "measurements.json").write_text('{"retraining": ""}')
    (res / "accuracy" / "mlperf_log_summary.txt").unlink()
    shutil.copytree(_result(tree), res.parent.parent / "not-a-benchmark" / "Offline")
    codes = _codes(tree)
    assert set(codes) == {"STRUCTURE", "MEASUREMENTS", "MISSING_FILE", "BENCHMARK"}
    assert sorted(codes["STRUCTURE"]) == [".mlrepro", "stray.txt"]


def test_closed_division_short_run_is_an_error(tree: Path) -> None:
    sub = tree / "open" / SUBMITTER
    closed = tree / "closed" / SUBMITTER
    closed.parent.mkdir()
    shutil.move(str(sub), str(closed))
    shutil.rmtree(tree / "open")
    (closed / "model_mapping.json").unlink()
    bench = next((closed / "results").glob("*/tiny-classifier"))
    bench.rename(bench.parent / "resnet")
    sysfile = next((closed / "systems").glob("*.json"))
    sysfile.write_text(sysfile.read_text().replace('"division": "open"', '"division": "closed"'))
    report = check_tree(tree)
    assert {f.code for f in report.errors} == {"SHORT_RUN", "COMPLIANCE"}
