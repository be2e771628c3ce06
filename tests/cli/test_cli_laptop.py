"""The CLI of runs as a new user meets it (issue 13): choices that are offered work, bad ones are refused, every
command that prints data speaks JSON, tables fit 80 columns with whole run ids, collect goes on past a run
without results, ids can be given by any unique part."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlrepro.cli.main import app

runner = CliRunner()
NULL = ["-p", "x86-cpu", "-f", "quick", "--set", "benchmark.workload='null'", "--set",
        "benchmark.settings.min_duration_ms=200", "--target", "native", "--mode", "performance"]


@pytest.fixture()
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "state"
    monkeypatch.setenv("MLREPRO_STATE_DIR", str(d))
    return d


@pytest.fixture()
def two_runs(state: Path) -> list[dict]:
    """Two finished native runs (null workload), as `run --output json` reports them."""
    r = runner.invoke(app, ["run", *NULL, "--scenario", "Offline,SingleStream", "--no-collect", "--output", "json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)      # progress went to stderr: stdout is the JSON document alone
    assert data["ok"] is True and data["target"] == "native"
    assert [run["status"] for run in data["runs"]] == ["succeeded", "succeeded"]
    assert all(run["loadgen_target"]["source"] == "calibrated" for run in data["runs"])
    return data["runs"]


def test_offered_choices_work_and_others_are_refused(state: Path) -> None:
    r = runner.invoke(app, ["run", *NULL, "--division", "network"])
    assert r.exit_code == 2 and "'network' is not one of 'closed', 'open'" in r.output
    help_text = runner.invoke(app, ["run", "--help"]).output
    assert "closed" in help_text and "network" not in help_text
    r = runner.invoke(app, ["runs", "--status", "bogus"])
    assert r.exit_code == 2 and "bogus" in r.output


def test_tables_fit_80_columns_with_whole_ids_and_json_has_everything(two_runs: list[dict],
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    r = runner.invoke(app, ["runs"])
    assert r.exit_code == 0, r.output
    assert all(len(line) <= 80 for line in r.stdout.splitlines()), r.stdout
    for run in two_runs:
        assert run["run_id"] in r.stdout          # whole on one line, not folded
    rows = json.loads(runner.invoke(app, ["runs", "--output", "json"]).stdout)
    assert {row["run_id"] for row in rows} == {run["run_id"] for run in two_runs}
    assert all(row["scenario"] and row["mode"] and row["loadgen_target"] for row in rows)
    monkeypatch.setenv("COLUMNS", "220")      # a wide terminal shows every column
    wide = runner.invoke(app, ["runs"]).stdout
    assert "LoadGen target" in wide and "scenario" in wide


def test_logs_json_and_a_unique_part_of_the_id(two_runs: list[dict]) -> None:
    run_id = two_runs[0]["run_id"]
    short = "-".join(run_id.rsplit("-", 2)[-2:])           # what a narrow table shows
    r = runner.invoke(app, ["logs", short, "--output", "json"])
    assert r.exit_code == 0, r.output
    lines = [json.loads(x)["line"] for x in r.stdout.splitlines()]
    assert any("VALID" in x for x in lines)
    r = runner.invoke(app, ["logs", "perf-2"])                # both runs contain it
    assert r.exit_code == 2 and "ambiguous" in r.stderr


def test_collect_goes_on_past_a_run_without_results(state: Path, tmp_path: Path) -> None:
    r = runner.invoke(app, ["run", "-p", "x86-cpu", "-f", "quick", "--target", "native",
                            "--scenario", "Offline,SingleStream", "--mode", "performance", "--no-collect",
                            "--output", "json"])
    assert r.exit_code == 0, r.output
    kept, lost = json.loads(r.stdout)["runs"]
    shutil.rmtree(lost["results_dir"])                          # its results are gone from this machine
    r = runner.invoke(app, ["collect", kept["run_id"], lost["run_id"], "--into", str(tmp_path / "sub"),
                            "--submitter", "Acme", "--output", "json"])
    assert r.exit_code == 1, r.output                        # listed, not an abort of the whole collect
    rejected = {x["run_id"]: x for x in json.loads(r.stdout)["rejected"]}
    assert rejected[lost["run_id"]]["kind"] == "failed"
    (line,) = [x for x in r.stderr.splitlines() if lost["run_id"] in x]
    assert line.startswith(f"mlrepro: error: run {lost['run_id']}")  # one line on stderr, no traceback
    assert rejected[kept["run_id"]]["kind"] == "incomplete"   # read and judged despite the other one
    # ... and the table says why once, not "incomplete: incomplete:"
    r = runner.invoke(app, ["collect", kept["run_id"], "--into", str(tmp_path / "sub"), "--submitter", "Acme"])
    assert "(incomplete): no accuracy run" in r.stdout and "incomplete: incomplete" not in r.stdout
    # an id that names no run is a typo: nothing is collected
    r = runner.invoke(app, ["collect", kept["run_id"], "no-such-run", "--into", str(tmp_path / "typo"),
                            "--submitter", "Acme"])
    assert r.exit_code == 2 and "no run 'no-such-run'" in r.stderr and not (tmp_path / "typo").exists()


def test_harness_help_has_an_example_and_the_exit_codes() -> None:
    out = subprocess.run([sys.executable, "-m", "mlrepro.harness", "--help"], capture_output=True, text=True,
                         check=True).stdout
    assert "mlrepro-harness --spec /config/run.json --results /results" in out
    for code in ("0 ", "4 ", "3 ", "1 ", "130 "):
        assert f"\n  {code}" in out


def test_a_rerun_into_the_same_tree_says_force_and_keeps_its_runs(state: Path, tmp_path: Path) -> None:
    job = ["run", "-p", "x86-cpu", "-f", "quick", "--target", "native", "--scenario", "Offline",
           "--mode", "performance,accuracy", "--into", str(tmp_path / "sub"), "--submitter", "Acme"]
    first = runner.invoke(app, job)
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, job)                       # the same job again: another result for the same place
    assert again.exit_code == 1, again.output
    errors = [x for x in again.stdout.splitlines() if x.startswith("error:")]
    assert len(errors) == 1 and "a different result is already there; --force replaces it" in errors[0]
    runs = json.loads(runner.invoke(app, ["runs", "--output", "json"]).stdout)
    assert len(runs) == 4 and all(r["status"] == "succeeded" for r in runs)   # the rerun's runs are kept
    rerun_ids = [r["run_id"] for r in runs if r["run_id"] not in first.stdout]
    assert len(rerun_ids) == 2 and all(i in again.stdout for i in rerun_ids)   # its results table is printed
    forced = runner.invoke(app, [*job, "--force"])
    assert forced.exit_code == 0, forced.output
