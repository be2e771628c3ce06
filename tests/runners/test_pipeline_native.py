"""The main job on the native target: real LoadGen, real reference model, state, logs, collect, check."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlrepro.cli.main import app
from mlrepro.flow import PipelineOptions, run_pipeline
from mlrepro.profiles import resolve_profile

runner = CliRunner()
_LOADGEN_READS = """
import json, sys
import mlperf_loadgen as lg
s = lg.TestSettings()
rc = s.FromConfig(sys.argv[1], "resnet50", sys.argv[2])
print(json.dumps({"rc": rc, **{k: getattr(s, k) for k in sys.argv[3:]}}))
"""


@pytest.fixture()
def state(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "state"
    monkeypatch.setenv("MLREPRO_STATE_DIR", str(d))
    return d


def _argv_profile(argv: list[str]) -> tuple[str, list[str], list[str]]:
    """-p / -f / --set of a recorded ``mlrepro run`` command line."""
    profile, overlays, sets = "", [], []
    for flag, value in zip(argv, argv[1:]):
        if flag == "-p":
            profile = value
        elif flag == "-f":
            overlays.append(value)
        elif flag == "--set":
            sets.append(value)
    return profile, overlays, sets


def test_native_pipeline_runs_collects_and_records(tmp_path, state):
    extra = tmp_path / "extra.yaml"
    extra.write_text("benchmark:\n  batch_size: 16\n")
    resolved = resolve_profile("x86-cpu", ["quick", str(extra)], ["benchmark.settings.min_duration_ms=500"])
    messages: list[str] = []
    result = run_pipeline(resolved, PipelineOptions(target="native", scenarios=["Offline"],
                                                    modes=["performance", "accuracy"], into=tmp_path / "sub",
                                                    submitter="Acme"), progress=messages.append)
    assert result.ok, result.runs
    perf, acc = result.runs
    assert perf.validity == "VALID" and perf.result and perf.result > 0 and perf.result_unit
    assert acc.accuracy is not None and acc.accuracy >= 90.0  # computed from the accuracy log
    report = result.collect_report
    assert report is not None and len(report.placed) == 1 and not report.rejected
    res_dir = report.placed[0].path
    assert (res_dir / "performance" / "run_1" / "mlperf_log_summary.txt").is_file()
    acc_txt = (res_dir / "accuracy" / "accuracy.txt").read_text()
    assert acc_txt.startswith("accuracy=") and "\nhash=" in acc_txt

    # the tree's user.conf is the file the timed run loaded: never empty, with the calibrated target
    tree_conf = (res_dir / "user.conf").read_text()
    assert tree_conf == (perf.results_dir / "user.conf").read_text()
    assert "resnet50.Offline.min_duration = 500" in tree_conf and "resnet50.Offline.target_qps = " in tree_conf
    assert perf.loadgen_target["source"] == "calibrated" and perf.loadgen_target["cost_s"] > 0
    # ... and LoadGen loading mlperf.conf + the tree's user.conf (a fresh process) gets the settings the detail log
    # says the run requested
    from mlrepro.harness.logparse import parse_detail_file

    detail = parse_detail_file(res_dir / "performance" / "run_1" / "mlperf_log_detail.txt")
    names = ["min_duration_ms", "min_query_count", "offline_expected_qps", "qsl_rng_seed", "schedule_rng_seed"]
    loaded = json.loads(subprocess.run(
        [sys.executable, "-c", _LOADGEN_READS, str(res_dir / "user.conf"), "Offline", *names],
        capture_output=True, text=True, check=True, timeout=60).stdout)
    assert loaded.pop("rc") == 0
    assert loaded == pytest.approx({n: detail.requested[f"requested_{n}"] for n in names}, rel=1e-5)  # log: 6 digits
    # the reproduce command carries -p, every -f and --set, --target, scenario and mode: same profile hash
    reproduce = json.loads((tmp_path / "sub/open/Acme/src/mlrepro" / perf.run_id / "reproduce.json").read_text())
    argv = reproduce["argv"]
    assert argv[:2] == ["mlrepro", "run"] and argv[-6:] == ["--target", "native", "--scenario", "Offline",
                                                           "--mode", "performance"]
    profile, overlays, sets = _argv_profile(argv)
    assert overlays == ["quick", str(extra.resolve())] and sets == ["benchmark.settings.min_duration_ms=500"]
    assert resolve_profile(profile, overlays, sets).hash == resolved.hash == reproduce["profile_hash"]
    assert reproduce["command"] in (res_dir / "README.md").read_text()
    # a native run uses this machine's packages: the record and the results say when they differ from the pin
    import importlib.metadata

    installed = importlib.metadata.version("onnxruntime")
    framework = json.loads((perf.results_dir / "record.json").read_text())["framework"]
    assert framework == {"package": "onnxruntime", "pinned": "1.20.1", "installed": installed,
                         "matches": installed == "1.20.1"}
    mismatch = [n for n in perf.notes if "the profile pins 1.20.1" in n]
    assert bool(mismatch) == (installed != "1.20.1")

    # runs / logs / check from the CLI, as after the terminal closed
    rows = json.loads(runner.invoke(app, ["runs", "--output", "json"]).stdout)
    assert {r["run_id"] for r in rows} == {perf.run_id, acc.run_id}
    assert all(r["status"] == "succeeded" and r["target"] == "native" for r in rows)
    logs = runner.invoke(app, ["logs", perf.run_id])
    assert logs.exit_code == 0 and "VALID" in logs.stdout
    check = runner.invoke(app, ["check", str(tmp_path / "sub")])
    assert check.exit_code == 0, check.stdout

    # collecting again through the CLI changes nothing
    before = {p: p.read_bytes() for p in (tmp_path / "sub").rglob("*") if p.is_file()}
    again = runner.invoke(app, ["collect", perf.run_id, acc.run_id, "--into", str(tmp_path / "sub"),
                                "--submitter", "Acme"])
    assert again.exit_code == 0, again.output
    after = {p: p.read_bytes() for p in (tmp_path / "sub").rglob("*") if p.is_file()}
    assert before == after


def test_auto_target_without_engine_falls_back_to_native(tmp_path, state, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    messages: list[str] = []
    resolved = resolve_profile("x86-cpu", ["quick"], ["benchmark.workload='null'",
                                                      "benchmark.settings.min_duration_ms=100"])
    result = run_pipeline(resolved, PipelineOptions(target="auto", into=None, collect=False), progress=messages.append)
    assert result.target == "native" and result.ok
    assert messages[0] == f"no Docker engine reachable at unix://{tmp_path}/no-such.sock: running natively " \
                          "(--target native)"


def test_docker_target_without_engine_is_one_line_exit_1(tmp_path, state, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    r = runner.invoke(app, ["run", "-p", "x86-cpu", "--target", "docker"])
    assert r.exit_code == 1
    assert r.stderr.startswith(f"mlrepro: error: no Docker engine reachable at unix://{tmp_path}/no-such.sock")
    assert len(r.stderr.strip().splitlines()) == 1


def test_bad_flags_exit_2(state):
    r = runner.invoke(app, ["run", "-p", "x86-cpu", "--target", "native", "--scenario", "Offlne"])
    assert r.exit_code == 2 and "--scenario: 'Offlne' is not one of" in r.stderr
    r = runner.invoke(app, ["logs", "no-such-run"])
    assert r.exit_code == 2 and "no-such-run" in r.stderr


def test_failed_run_is_recorded_and_not_collected_as_valid(tmp_path, state):
    resolved = resolve_profile("x86-cpu", sets=["benchmark.workload=resnet50"])  # no model file: bad spec
    result = run_pipeline(resolved, PipelineOptions(target="native", modes=["performance"], into=tmp_path / "sub",
                                                    submitter="Acme"))
    (run,) = result.runs
    assert run.status == "failed" and run.exit_code == 3 and not result.ok
    report = result.collect_report
    assert report is None or not report.placed
    assert not (tmp_path / "sub" / "open" / "Acme" / "results").exists()


@pytest.mark.slow
def test_every_scenario_is_valid_natively(tmp_path, state):
    """The reference workload, quick overlay, all four scenarios: calibrated and VALID on this machine. The Server
    latency bound is relaxed to 100 ms (a bound, not a speed) so that a loaded CI machine's scheduler hiccups in
    a 1 s run cannot fail it; calibration still finds the QPS that meets it."""
    resolved = resolve_profile("x86-cpu", ["quick"], ["benchmark.settings.Server.server_target_latency_ns=100000000"])
    result = run_pipeline(resolved, PipelineOptions(target="native", modes=["performance"], collect=False, into=None,
                                                    scenarios=["Offline", "Server", "SingleStream", "MultiStream"]))
    assert [r.validity for r in result.runs] == ["VALID"] * 4, [(r.scenario, r.message) for r in result.runs]
    assert all(r.loadgen_target["source"] == "calibrated" for r in result.runs)
    rows = json.loads(runner.invoke(app, ["runs", "--output", "json"]).stdout)
    assert {r["loadgen_target"]["setting"] for r in rows} == {
        "offline_expected_qps", "server_target_qps", "single_stream_expected_latency_ns",
        "multi_stream_expected_latency_ns"}


def test_a_valid_performance_only_run_succeeds_and_says_what_the_tree_still_needs(tmp_path, state):
    """Tuning is performance-only runs: a VALID one exits 0; the tree's missing accuracy run is one line, not an
    error. Its run is kept for a later `collect` with the accuracy run."""
    r = runner.invoke(app, ["run", "-p", "x86-cpu", "-f", "quick", "--target", "native", "--scenario", "Offline",
                            "--mode", "performance", "--into", str(tmp_path / "sub")])
    assert r.exit_code == 0, r.output
    assert "error" not in r.output.lower()
    (line,) = [x for x in r.stdout.splitlines() if "the submission tree still needs" in x]
    assert "no accuracy run for open/mlrepro/results/" in line and "--mode submission" in line
    data = json.loads(runner.invoke(app, ["run", "-p", "x86-cpu", "-f", "quick", "--target", "native",
                                          "--scenario", "Offline", "--mode", "performance", "--into",
                                          str(tmp_path / "sub"), "--output", "json"]).stdout)
    assert data["ok"] is True and data["problems"] == [] and len(data["tree_needs"]) == 1


def test_a_run_that_places_nothing_in_the_tree_exits_non_zero(tmp_path, state):
    """Closed division with a short run: the run is VALID but collect rejects it; `run` says why, exit 1."""
    r = runner.invoke(app, ["run", "-p", "x86-cpu", "-f", "quick", "--target", "native", "--set",
                            "benchmark.workload='null'", "--scenario", "Offline", "--mode", "submission",
                            "--division", "closed", "--into", str(tmp_path / "sub")])
    assert r.exit_code == 1, r.output
    assert "nothing was placed in the submission tree" in r.stdout and "closed division" in r.stdout


def test_native_run_systems_json_is_complete_and_validates(tmp_path, state):
    """`mlrepro run --contact --system-notes`: the systems json says the run was native and passes
    MLCommons' `mlperf-sysinfo validate --profile inference` with no problem."""
    from sysinfo_support import sysinfo_validate, validate_problems

    notes = tmp_path / "notes.yaml"
    notes.write_text("cooling: air\nhost_networking_topology: single host\n"
                     "host_memory_configuration: virtual machine memory\nhw_notes: development VM\n")
    r = runner.invoke(app, ["run", "-p", "x86-cpu", "-f", "quick", "--target", "native", "--scenario", "Offline",
                            "--mode", "performance,accuracy", "--set", "benchmark.settings.min_duration_ms=500",
                            "--into", str(tmp_path / "sub"),
                            "--submitter", "Acme", "--contact", "ops@example.com", "--system-notes", str(notes)])
    assert r.exit_code == 0, r.output
    assert "still needs" not in r.output
    (sysfile,) = (tmp_path / "sub" / "open" / "Acme" / "systems").glob("*.json")
    desc = json.loads(sysfile.read_text())
    assert desc["other_software_stack"].endswith("; run natively (no container)")
    assert (desc["submitter_contact"], desc["cooling"], desc["hw_notes"]) == ("ops@example.com", "air",
                                                                              "development VM")
    rc, out = sysinfo_validate(sysfile)
    assert rc == 0 and validate_problems(out) == [], out
    # without the notes, the run says what is still missing, by field name
    r = runner.invoke(app, ["run", "-p", "x86-cpu", "-f", "quick", "--target", "native", "--scenario", "Offline",
                            "--mode", "performance,accuracy", "--set", "benchmark.settings.min_duration_ms=500",
                            "--into", str(tmp_path / "s2"),
                            "--submitter", "Acme"])
    assert r.exit_code == 0, r.output
    line = next(x for x in r.output.splitlines() if "still needs" in x)
    for field in ("submitter_contact", "cooling", "host_networking_topology"):
        assert field in line
