"""The ``mlrepro-harness`` CLI: exit codes, one-line errors, self-check, signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from harness_testutil import spec_dict
from signals_support import with_sigint

from mlrepro.harness import exit_codes
from mlrepro.harness.main import main

HERE = Path(__file__).parent
CLI = [sys.executable, str(HERE / "run_fake_cli.py")]


def _write(tmp_path: Path, data: Any, name: str = "run.json") -> Path:
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else json.dumps(data))
    return p


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("mlrepro-harness: error: ")
    assert "Traceback" not in err
    return lines[0]


def test_valid_run_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _write(tmp_path, spec_dict("Offline"))
    assert main(["--spec", str(spec), "--results", str(tmp_path / "res")]) == 0
    out = capsys.readouterr()
    assert "Offline performance: VALID" in out.out and out.err == ""
    assert json.loads((tmp_path / "res/t-offline-performance/record.json").read_text())["status"]["exit_code"] == 0


@pytest.mark.parametrize("data, fragment", [
    ({**spec_dict(), "scenario": "Sideways"}, "scenario"),
    ({k: v for k, v in spec_dict().items() if k != "run_id"}, "run_id"),
    ({**spec_dict(), "settings": {"min_duration_ms": -1}}, "min_duration_ms"),
    ({**spec_dict(), "settings": {"not_a_setting": 1}}, "not_a_setting"),
    ("{not json", "not valid JSON"),
    ([1, 2], "JSON object"),
])
def test_invalid_spec_exits_3_with_one_line(data: Any, fragment: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    spec = _write(tmp_path, data)
    assert main(["--spec", str(spec), "--results", str(tmp_path / "res")]) == exit_codes.EXIT_BAD_SPEC
    line = _one_error_line(capsys.readouterr().err)
    assert fragment in line
    assert not (tmp_path / "res").exists()


def test_missing_spec_file_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--spec", str(tmp_path / "nope.json"), "--results", str(tmp_path)]) == 3
    assert "cannot read run spec" in _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("argv", [[], ["--spec", "x.json"], ["--bogus"]])
def test_usage_errors_exit_3(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == exit_codes.EXIT_BAD_SPEC
    _one_error_line(capsys.readouterr().err)


def test_unknown_workload_exits_3_and_lists_known(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _write(tmp_path, spec_dict(workload="no-such-model"))
    assert main(["--spec", str(spec), "--results", str(tmp_path / "res")]) == 3
    line = _one_error_line(capsys.readouterr().err)
    assert "unknown workload 'no-such-model'" in line and "fake" in line and "null" in line
    record = json.loads((tmp_path / "res" / "t-offline-performance" / "record.json").read_text())
    assert record["status"] == {"name": "BAD_SPEC", "exit_code": 3, "error": line.split("error: ", 1)[1]}


def test_broken_plugin_is_a_runtime_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _write(tmp_path, spec_dict(workload="broken-plugin"))
    assert main(["--spec", str(spec), "--results", str(tmp_path / "res")]) == exit_codes.EXIT_RUNTIME
    assert "not a Workload subclass" in _one_error_line(capsys.readouterr().err)


def test_invalid_run_with_a_pinned_target_exits_4(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A pinning test: a pinned target is used as given, never recalibrated, even when the run is INVALID (a
    1 ms latency bound that a 2 ms predict cannot meet at any QPS); the output says why it is INVALID."""
    spec = _write(tmp_path, spec_dict("Server", options={"predict_delay_s": 0.002},
                                      settings={"min_duration_ms": 300, "min_query_count": 50,
                                                "server_target_qps": 400, "server_target_latency_ns": 1_000_000}))
    assert main(["--spec", str(spec), "--results", str(tmp_path / "res")]) == exit_codes.EXIT_INVALID
    out = capsys.readouterr()
    assert "Server performance: INVALID (" in out.out and "latency above the target latency" in out.out
    assert out.err == ""
    record = json.loads((tmp_path / "res/t-server-performance/record.json").read_text())
    (target,) = record["calibration"]["targets"]
    assert target["source"] == "pinned" and target["value"] == 400 and target["probes"] == []
    assert record["calibration"]["retry"] is None
    assert not (tmp_path / "res/t-server-performance/Server/calibration").exists()


def test_debug_prints_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLREPRO_DEBUG", "1")
    spec = _write(tmp_path, spec_dict(options={"config_error": True}))
    assert main(["--spec", str(spec), "--results", str(tmp_path / "res")]) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().splitlines()[-1].startswith("mlrepro-harness: error: ")


def test_self_check_reports_arch_and_loadgen(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--self-check"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    import platform

    assert report["arch"] == platform.machine()
    assert report["loadgen"]["ok"] is True and report["loadgen"]["version"]
    assert report["backends"]["numpy"]["ok"] is True
    assert set(report["backends"]) >= {"onnxruntime", "torch"}
    assert report["python"] == platform.python_version()


def test_module_entry_point_self_check() -> None:
    proc = subprocess.run([sys.executable, "-m", "mlrepro.harness", "--self-check"], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["loadgen"]["ok"] is True


def test_results_dir_it_cannot_write_exits_3_saying_what_the_volume_needs(tmp_path: Path) -> None:
    """A results volume the harness's user may not write (an NFS/EFS-style claim that ignored the pod's fsGroup:
    owned by another user, mode 0755) is a configuration error, found before any work: exit 3, one line."""
    import shutil

    results = tmp_path / "res"
    results.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:           # root ignores file modes: without the capabilities that let it, it may not
        if shutil.which("setpriv") is None:
            pytest.skip("setpriv (util-linux) is needed to run without CAP_DAC_OVERRIDE as root")
        os.chown(results, 65534, 65534)
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]
    results.chmod(0o755 if prefix else 0o555)
    spec = _write(tmp_path, spec_dict())
    owner = f"owned by {results.stat().st_uid}:{results.stat().st_gid} with mode 0{results.stat().st_mode & 0o777:o}"
    for target, says in (("kubernetes", "so the volume did not take the pod's fsGroup. Kubernetes applies fsGroup "
                                        "only to volumes with an fsType"),
                         ("docker", "; the results directory must be writable by this user")):
        proc = subprocess.run([*prefix, *CLI, "--spec", str(spec), "--results", str(results)], capture_output=True,
                              text=True, timeout=120, check=False, env={**os.environ, "MLREPRO_TARGET": target})
        assert proc.returncode == exit_codes.EXIT_BAD_SPEC, proc.stderr
        line = _one_error_line(proc.stderr)
        assert line.startswith(f"mlrepro-harness: error: {results} is not writable by uid {os.geteuid()} (groups ")
        assert owner in line and says in line
        assert ("docs/kubernetes.md" in line) == (target == "kubernetes")
        assert list(results.iterdir()) == [] and "workload loaded" not in proc.stdout     # nothing was done


def _start(tmp_path: Path, data: dict[str, Any]) -> tuple[subprocess.Popen[str], Path]:
    spec = _write(tmp_path, data)
    results = tmp_path / "res"
    proc = subprocess.Popen(with_sigint([*CLI, "--spec", str(spec), "--results", str(results)]), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return proc, results / data["run_id"]


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_loadgen_exits_130_with_record(sig: int, tmp_path: Path) -> None:
    data = spec_dict("Offline", run_id="sig", settings={"min_duration_ms": 120_000, "min_query_count": 1})
    proc, run_dir = _start(tmp_path, data)
    _wait_for(run_dir / "Offline/performance/run_1/mlperf_log_detail.txt", proc)
    time.sleep(0.5)
    t0 = time.monotonic()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - t0 < 10
    assert proc.returncode == exit_codes.EXIT_INTERRUPTED, (out, err)
    assert err.strip().splitlines()[-1] == f"mlrepro-harness: error: interrupted by signal {int(sig)}"
    record = json.loads((run_dir / "record.json").read_text())
    assert record["status"]["name"] == "INTERRUPTED" and record["status"]["exit_code"] == 130
    assert record["subruns"][0]["kind"] == "performance"
    manifest = (run_dir / "checksums.sha256").read_text()
    assert "record.json" in manifest and "Offline/performance/run_1/mlperf_log_detail.txt" in manifest
    assert record["settings"]["conf_loading"]["method"] == "official"  # a fresh process: the official path


def test_signal_during_calibration_exits_130_with_record(tmp_path: Path) -> None:
    data = spec_dict("Offline", run_id="sigcal", settings={"min_duration_ms": 120_000, "min_query_count": 1})
    proc, run_dir = _start(tmp_path, data)
    _wait_for(run_dir / "Offline/calibration/offline-1/mlperf_log_detail.txt", proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == exit_codes.EXIT_INTERRUPTED, (out, err)
    record = json.loads((run_dir / "record.json").read_text())
    assert record["status"]["name"] == "INTERRUPTED" and record["subruns"] == []
    assert "Offline/calibration/offline-1/mlperf_log_detail.txt" in (run_dir / "checksums.sha256").read_text()


def test_cli_fails_fast_when_predict_fails(tmp_path: Path) -> None:
    """The workload dies (here during calibration, the first predictions of the run): one line, exit 1, the
    record says why, and the process does not wait for LoadGen's long test."""
    data = spec_dict("Server", run_id="ff", options={"fail_after": 50},
                     settings={"min_duration_ms": 120_000, "min_query_count": 100})
    proc, run_dir = _start(tmp_path, data)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == exit_codes.EXIT_RUNTIME, (out, err)
    assert "fake accelerator fell off the bus" in err.strip().splitlines()[-1]
    record = json.loads((run_dir / "record.json").read_text())
    assert record["status"]["name"] == "RUNTIME_FAILURE"
    assert "fell off the bus" in record["status"]["error"]


def test_a_loadgen_test_that_never_ends_fails_the_run_with_the_counts(tmp_path: Path) -> None:
    """A sample LoadGen never hears of (here one completion is lost on purpose) leaves LoadGen waiting for ever;
    the stall watchdog ends the run with exit 1 and one line giving the counts, and the process exits although
    LoadGen's thread is still blocked."""
    # pinned so that no calibration probe runs with the lossy SUT; the run never ends, so speed plays no part
    spec = _write(tmp_path, spec_dict("Offline", settings={"min_duration_ms": 200, "min_query_count": 1,
                                                            "offline_expected_qps": 64}))
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, str(HERE / "run_dropping_cli.py"), "--spec", str(spec),
                           "--results", str(tmp_path / "res")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == exit_codes.EXIT_RUNTIME, proc.stderr
    line = _one_error_line(proc.stderr)
    assert "LoadGen did not end the Offline performance test 2 s after the SUT completed all" in line
    assert "run it again" in line
    assert time.monotonic() - t0 < 60
    record = json.loads((tmp_path / "res" / "t-offline-performance" / "record.json").read_text())
    assert record["status"]["exit_code"] == exit_codes.EXIT_RUNTIME


def test_the_stall_watchdog_waits_for_quiet_and_complete_counts() -> None:
    from types import SimpleNamespace

    from mlrepro.harness.loadgen_runner import _StallWatchdog

    responder = SimpleNamespace(completed=0)
    session = SimpleNamespace(issued=0, _responder=None, scenario="Server", kind="performance",
                              settings=SimpleNamespace(server_target_qps=0.05))
    w = _StallWatchdog(session)  # type: ignore[arg-type]
    assert w.limit_s == 400        # 20 mean arrival gaps of a slow Server run, more than the 120 s floor
    assert not w.stalled(0.0) and not w.stalled(1000.0)                   # nothing issued yet: loading, warm-up
    session._responder, session.issued = responder, 8
    assert not w.stalled(1000.0) and not w.stalled(2000.0)                # the SUT still works on them
    responder.completed = 8
    assert not w.stalled(2000.0) and not w.stalled(2399.0)                # all done, LoadGen still has time
    session.issued = 9
    assert not w.stalled(2500.0)                                           # a new query: the clock restarts
    responder.completed = 9
    assert not w.stalled(2501.0) and not w.stalled(2900.0) and w.stalled(2901.0)
    assert "all 9 of the 9 samples" in str(w.error())
    offline = _StallWatchdog(SimpleNamespace(issued=0, _responder=None, scenario="Offline",   # type: ignore[arg-type]
                                             kind="accuracy", settings=SimpleNamespace()))
    assert offline.limit_s == _StallWatchdog.STALL_S
