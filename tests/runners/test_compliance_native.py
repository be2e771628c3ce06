"""Compliance on the native target with the real reference model: a closed-division submission run includes
TEST01 and TEST04; `mlrepro compliance` audits runs already made; collect puts the audit into the tree.

Performance verdicts compare two short timed runs on a shared machine, so these tests assert the accuracy
verdict (deterministic) and what was run and where; the pass/fail logic itself is tested on fixed logs
(tests/harness/test_harness_verification.py) and with sleep-bound SUTs (tests/harness/test_harness_compliance.py).
"""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlrepro.cli.main import app
from mlrepro.flow import PipelineOptions, run_pipeline
from mlrepro.profiles import resolve_profile

runner = CliRunner()


@pytest.fixture()
def state(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "state"
    monkeypatch.setenv("MLREPRO_STATE_DIR", str(d))
    return d


def test_closed_submission_run_includes_test01_and_test04(tmp_path, state):
    resolved = resolve_profile("x86-cpu", ["quick"], [])
    messages: list[str] = []
    result = run_pipeline(resolved, PipelineOptions(target="native", scenarios=["Offline"], modes=["submission"],
                                                    division="closed", into=tmp_path / "sub"),
                          progress=messages.append)
    (run,) = result.runs
    # the compliance tests follow the timed run whatever its verdict (a loaded machine may make it INVALID)
    assert run.status in ("succeeded", "invalid") and run.results_dir is not None, run
    assert any("compliance tests of resnet: TEST01, TEST04" in m for m in messages)
    record = json.loads((run.results_dir / "record.json").read_text())
    comp = {c["test"]: c for c in record["compliance"]}
    assert set(comp) == {"TEST01", "TEST04"} and all(c["audit_config_used"] for c in comp.values())
    assert {v["kind"]: v["passed"] for v in comp["TEST01"]["verifications"]}["accuracy"] is True
    offline = run.results_dir / "Offline"
    assert (offline / "TEST01/audit.config").read_text().count("accuracy_log_sampling_target = 4096") == 1
    assert (offline / "TEST04/audit.config").read_text().count("performance_issue_same = 1") == 1
    # the audits ran with the timed run's user.conf: no calibration of their own
    perf = (offline / "performance/run_1/mlperf_log_detail.txt").read_text()
    audit = (offline / "TEST04/performance/run_1/mlperf_log_detail.txt").read_text()
    assert _value(perf, "requested_offline_expected_qps") == _value(audit, "requested_offline_expected_qps")


def test_compliance_command_audits_runs_already_made(tmp_path, state):
    resolved = resolve_profile("x86-cpu", ["quick"], [])
    result = run_pipeline(resolved, PipelineOptions(target="native", scenarios=["Offline"],
                                                    modes=["performance", "accuracy"], into=None, collect=False))
    perf, acc = result.runs
    assert perf.status == acc.status == "succeeded"
    # a unique part of each id (what narrow tables show) is enough, as for logs and collect
    out = runner.invoke(app, ["compliance", perf.run_id[-11:], acc.run_id[-11:], "--test", "TEST01,TEST04",
                              "--output", "json"])
    assert out.exit_code in (0, 1) and "Traceback" not in out.output, out.output
    doc = json.loads(out.stdout[out.stdout.index("[\n"):])
    (entry,) = doc
    assert entry["run_id"] == perf.run_id and entry["status"] == "succeeded"
    kinds = {(v["test"], v["kind"]): v["passed"] for v in entry["verifications"]}
    assert set(kinds) == {("TEST01", "accuracy"), ("TEST01", "performance"), ("TEST04", "performance")}
    assert kinds[("TEST01", "accuracy")] is True
    assert out.exit_code == (0 if all(kinds.values()) else 1)
    rows = {r["run_id"]: r for r in json.loads(runner.invoke(app, ["runs", "--output", "json"]).stdout)}
    assert rows[entry["audit_run_id"]]["mode"] == "audit"
    # collected together, the audit's compliance folders join the audited result
    col = runner.invoke(app, ["collect", perf.run_id, acc.run_id, entry["audit_run_id"], "--into",
                              str(tmp_path / "sub"), "--submitter", "Acme"])
    assert col.exit_code == 0, col.output
    res = next((tmp_path / "sub").glob("open/Acme/results/*/*/Offline"))
    assert (res / "TEST01/verify_accuracy.txt").read_text().splitlines()[-1] == "TEST PASS"
    assert (res / "TEST04/performance/run_1/mlperf_log_detail.txt").is_file()
    check = runner.invoke(app, ["check", str(tmp_path / "sub")])
    assert check.exit_code == 0, check.output


def test_compliance_command_bad_input(state):
    out = runner.invoke(app, ["compliance", "no-such-run"])
    assert out.exit_code == 2 and "no-such-run" in out.output
    out = runner.invoke(app, ["compliance", "x", "--test", "TEST07"])
    assert out.exit_code == 2 and "TEST07" in out.output and len(out.output.strip().splitlines()) == 1


def test_compliance_takes_a_unique_part_of_a_run_id(state):
    from mlrepro.state.store import RunRecord, open_store

    with open_store(state) as store:
        for rid in ("x86-cpu-offline-perf-20261130-065328-0689", "x86-cpu-offline-perf-20261130-065328-bbde"):
            store.add(RunRecord(rid, profile="x86-cpu", scenario="Offline", mode="performance",
                                status="succeeded"))
    # the part names one run: it is found (then refused for what it is: no results here), under its whole id
    out = runner.invoke(app, ["compliance", "065328-0689"])
    assert out.exit_code == 2, out.output
    assert out.output.strip() == ("mlrepro: error: run x86-cpu-offline-perf-20261130-065328-0689 (succeeded) "
                                  "has no results to collect")
    # a part several ids contain, and one none does: one line each, exit 2
    out = runner.invoke(app, ["compliance", "065328"])
    assert out.exit_code == 2 and len(out.output.strip().splitlines()) == 1, out.output
    assert "'065328' is ambiguous" in out.output and "065328-bbde" in out.output
    out = runner.invoke(app, ["compliance", "065328-ffff"])
    assert out.exit_code == 2 and len(out.output.strip().splitlines()) == 1, out.output
    assert "no run '065328-ffff'" in out.output


def _value(detail: str, key: str):
    for line in detail.splitlines():
        if f'"key": "{key}"' in line:
            return json.loads(line[len(":::MLLOG "):])["value"]
    raise AssertionError(key)
