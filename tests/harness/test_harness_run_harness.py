"""run_harness end to end with real LoadGen and the fake workload (short runs)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from harness_testutil import SHORT_SETTINGS

from mlrepro.harness import exit_codes
from mlrepro.harness.checksums import read_manifest, verify_manifest
from mlrepro.harness.core import run_harness
from mlrepro.harness.loadgen_runner import import_loadgen
from mlrepro.harness.logparse import parse_detail_file, parse_summary_file
from mlrepro.harness.spec import RunSpec

SCENARIOS = ("SingleStream", "MultiStream", "Server", "Offline")
QUIET: Callable[[str], None] = lambda m: None


def _record(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "record.json").read_text())


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_performance_run_each_scenario(scenario: str, make_spec: Callable[..., RunSpec], tmp_path: Path) -> None:
    spec = make_spec(scenario=scenario)
    result = run_harness(spec, tmp_path, log=QUIET)
    run_dir = tmp_path / spec.run_id
    perf = run_dir / scenario / "performance" / "run_1"
    assert result.exit_code == exit_codes.EXIT_VALID, (result.error, result.record and result.record["subruns"])
    assert result.status == "VALID" and result.ok
    for name in ("mlperf_log_summary.txt", "mlperf_log_detail.txt", "mlperf_log_accuracy.json"):
        assert (perf / name).is_file(), name
    assert not (perf / "mlperf_log_trace.json").exists()  # trace off unless asked
    for name in ("run.json", "user.conf", "system.json", "record.json", "checksums.sha256"):
        assert (run_dir / name).is_file(), name
    assert not (run_dir / scenario / "accuracy").exists()

    # the record's results are the parsed log's
    summary = parse_summary_file(perf / "mlperf_log_summary.txt")
    detail = parse_detail_file(perf / "mlperf_log_detail.txt")
    assert summary is not None and detail is not None
    assert summary.scenario == scenario and summary.mode == "PerformanceOnly"
    record = _record(run_dir)
    assert record == result.record
    (sub,) = record["subruns"]
    assert sub["kind"] == "performance" and sub["directory"] == f"{scenario}/performance/run_1"
    assert sub["validity"] == summary.validity == detail.validity == "VALID"
    res = sub["results"]
    assert res["samples_per_second"] == summary.samples_per_second
    assert res["completed_samples_per_second"] == summary.completed_samples_per_second
    assert res["result_latency_ns"] == summary.result_latency_ns
    assert res["latency_ns"]["percentiles"] == summary.latency_percentiles_ns
    assert res["latency_ns"]["mean"] == summary.mean_latency_ns
    if scenario == "Offline":
        assert summary.samples_per_second and summary.samples_per_second > 0
    elif scenario == "Server":
        assert summary.completed_samples_per_second and summary.completed_samples_per_second > 0
    else:
        assert summary.result_latency_ns and summary.result_latency_ns > 0
        assert summary.result_latency_percentile == (90.0 if scenario == "SingleStream" else 99.0)
    assert record["status"] == {"name": "VALID", "exit_code": 0, "error": None}
    assert record["scenario"] == scenario and record["mode"] == "performance"
    assert record["settings"]["overrides"] == SHORT_SETTINGS[scenario]
    assert record["settings"]["short_run"] is True
    assert record["seeds"] == detail.seeds
    assert record["workload"]["describe"] == {"framework": "fake", "model_sha256": "0" * 64}
    assert record["profile_name"] == "test-profile"
    assert record["started_at"].endswith("Z") and record["finished_at"] >= record["started_at"]
    assert record["loadgen"]["version"].startswith("6.")
    assert verify_manifest(run_dir).ok


def test_pinned_settings_reach_loadgen_untouched(make_spec: Callable[..., RunSpec], tmp_path: Path) -> None:
    """A pinning test: targets given in benchmark.settings are used as given, no probe runs."""
    spec = make_spec(scenario="Server", settings={**SHORT_SETTINGS["Server"], "server_target_qps": 1500,
                                                  "server_target_latency_ns": 80_000_000})
    result = run_harness(spec, tmp_path, log=QUIET)
    detail = parse_detail_file(tmp_path / spec.run_id / "Server/performance/run_1/mlperf_log_detail.txt")
    assert result.exit_code in (0, 4)          # whether 1500 QPS is VALID here is this machine's business
    assert detail is not None
    assert detail.effective["effective_target_qps"] == 1500
    assert detail.effective["effective_target_latency_ns"] == 80_000_000
    assert detail.effective["effective_min_duration_ms"] == SHORT_SETTINGS["Server"]["min_duration_ms"]
    assert result.record["subruns"][0]["effective_settings"]["target_qps"] == 1500
    (target,) = result.record["calibration"]["targets"]
    assert target["source"] == "pinned" and target["note"] == "given by benchmark.settings"
    assert result.record["calibration"]["retry"] is None
    assert not (tmp_path / spec.run_id / "Server/calibration").exists()


def test_target_pinned_by_the_user_conf_is_untouched(make_spec: Callable[..., RunSpec], tmp_path: Path) -> None:
    """A pinning test: a user.conf line for this model and scenario pins the target too."""
    spec = make_spec(scenario="Offline", user_conf="*.Offline.target_qps = 2000\n",
                     settings={"min_duration_ms": 100, "min_query_count": 1})
    result = run_harness(spec, tmp_path, log=QUIET)
    (target,) = result.record["calibration"]["targets"]
    assert target["source"] == "pinned" and target["value"] == 2000 and target["note"] == "given by benchmark.user_conf"
    detail = parse_detail_file(tmp_path / spec.run_id / "Offline/performance/run_1/mlperf_log_detail.txt")
    assert detail is not None and detail.effective["effective_target_qps"] == 2000


def test_seeds_come_from_builtin_mlperf_conf(make_spec: Callable[..., RunSpec], tmp_path: Path) -> None:
    """Two runs use the same non-zero official seeds, as the summary's Test Parameters confirm, and LoadGen
    reports no 'Multiple conf files' error even for a second run in the same process."""
    seeds = []
    for n in range(2):
        spec = make_spec(scenario="MultiStream", run_id=f"seeds-{n}")
        result = run_harness(spec, tmp_path, log=QUIET)
        assert result.exit_code == 0
        perf = tmp_path / spec.run_id / "MultiStream/performance/run_1"
        detail = parse_detail_file(perf / "mlperf_log_detail.txt")
        summary = parse_summary_file(perf / "mlperf_log_summary.txt")
        assert detail is not None and summary is not None
        assert all(isinstance(v, int) and v != 0 for v in detail.seeds.values()), detail.seeds
        for key, value in detail.seeds.items():
            assert summary.test_parameters[key] == str(value)
            assert detail.requested[f"requested_{key}"] == value
        assert not [e for e in detail.errors if "conf" in str(e.value).lower()], detail.errors
        assert result.record["seeds"] == detail.seeds
        assert result.record["settings"]["conf_loading"]["model"] == "resnet50"
        seeds.append(detail.seeds)
    assert seeds[0] == seeds[1]
    # ... and they are the values of LoadGen's built-in mlperf.conf (conf_type 0 = that file alone)
    lg = import_loadgen()
    ref = lg.TestSettings()
    assert ref.FromConfig("", "resnet50", "MultiStream", 0) == 0
    assert seeds[0] == {"qsl_rng_seed": ref.qsl_rng_seed, "sample_index_rng_seed": ref.sample_index_rng_seed,
                        "schedule_rng_seed": ref.schedule_rng_seed}


def test_user_conf_is_applied_and_recorded(make_spec: Callable[..., RunSpec], tmp_path: Path) -> None:
    """The profile's user.conf lines reach LoadGen through the run's user.conf, which is the file LoadGen loaded."""
    conf = "# ours\nresnet50.Server.target_latency = 40\n"
    settings = {k: v for k, v in SHORT_SETTINGS["Server"].items() if k != "server_target_latency_ns"}
    spec = make_spec(scenario="Server", settings=settings, user_conf=conf)
    result = run_harness(spec, tmp_path, log=QUIET)
    run_dir = tmp_path / spec.run_id
    # what is tested is the file LoadGen loaded; whether a 1 s Server run on a busy machine holds its target is
    # the calibration tests' subject (VALID, or INVALID after the one retry)
    assert result.exit_code in (exit_codes.EXIT_VALID, exit_codes.EXIT_INVALID), result.error
    written = (run_dir / "user.conf").read_text()
    assert "resnet50.Server.target_latency = 40\n" in written
    assert "resnet50.Server.target_qps = " in written          # the calibrated target, as a line
    detail = parse_detail_file(run_dir / "Server/performance/run_1/mlperf_log_detail.txt")
    assert detail is not None and detail.effective["effective_target_latency_ns"] == 40_000_000
    assert result.record["settings"]["user_conf_sha256"] == hashlib.sha256(written.encode()).hexdigest()


def test_bad_user_conf_is_a_bad_spec(make_spec: Callable[..., RunSpec], tmp_path: Path) -> None:
    spec = make_spec(scenario="Offline", user_conf="resnet50.Offline.target_qps = lots\n")
    result = run_harness(spec, tmp_path, log=QUIET)
    assert result.exit_code == exit_codes.EXIT_BAD_SPEC
    assert "user.conf" in (result.error or "")
    assert _record(tmp_path / spec.run_id)["status"]["name"] == "BAD_SPEC"


@pytest.mark.parametrize("scenario", ["Offline", "Server"])
def test_accuracy_run_scores_the_whole_dataset(scenario: str, make_spec: Callable[..., RunSpec],
                                               tmp_path: Path) -> None:
    spec = make_spec(scenario=scenario, mode="accuracy", options={"dataset_size": 100})
    result = run_harness(spec, tmp_path, log=QUIET)
    acc_dir = tmp_path / spec.run_id / scenario / "accuracy"
    assert result.exit_code == exit_codes.EXIT_VALID, result.error
    log = acc_dir / "mlperf_log_accuracy.json"
    entries = json.loads(log.read_text())
    assert sorted(e["qsl_idx"] for e in entries) == list(range(100))
    lines = (acc_dir / "accuracy.txt").read_text().splitlines()
    assert lines == ["accuracy=90.000%", f"hash={hashlib.sha256(log.read_bytes()).hexdigest()}"]
    record = result.record
    assert record["accuracy"]["value"] == pytest.approx(90.0)
    assert record["accuracy"]["samples"] == record["accuracy"]["dataset_size"] == 100
    assert [s["kind"] for s in record["subruns"]] == ["accuracy"]
    assert not (tmp_path / spec.run_id / scenario / "performance").exists()
    assert "accuracy.txt" in "".join(read_manifest(tmp_path / spec.run_id / "checksums.sha256"))


def test_submission_mode_runs_performance_then_accuracy(make_spec: Callable[..., RunSpec], tmp_path: Path) -> None:
    spec = make_spec(scenario="SingleStream", mode="submission")
    result = run_harness(spec, tmp_path, log=QUIET)
    run_dir = tmp_path / spec.run_id
    assert result.exit_code == exit_codes.EXIT_VALID, result.error
    assert [s.kind for s in result.subruns] == ["performance", "accuracy"]
    perf, acc = run_dir / "SingleStream/performance/run_1", run_dir / "SingleStream/accuracy"
    for d in (perf, acc):
        assert (d / "mlperf_log_summary.txt").is_file() and (d / "mlperf_log_detail.txt").is_file()
    assert (acc / "accuracy.txt").read_text().startswith("accuracy=89.062%\nhash=")
    perf_detail, acc_detail = parse_detail_file(perf / "mlperf_log_detail.txt"), parse_detail_file(
        acc / "mlperf_log_detail.txt")
    assert perf_detail is not None and acc_detail is not None
    assert perf_detail.mode == "PerformanceOnly" and acc_detail.mode == "AccuracyOnly"
    assert perf_detail.seeds == acc_detail.seeds
    manifest = read_manifest(run_dir / "checksums.sha256")
    expected = {"run.json", "user.conf", "system.json", "record.json",
                "SingleStream/performance/run_1/mlperf_log_summary.txt",
                "SingleStream/performance/run_1/mlperf_log_detail.txt",
                "SingleStream/accuracy/mlperf_log_accuracy.json", "SingleStream/accuracy/accuracy.txt"}
    assert expected <= set(manifest)
    assert "checksums.sha256" not in manifest


def test_rerun_replaces_earlier_attempt(make_spec: Callable[..., RunSpec], tmp_path: Path) -> None:
    spec = make_spec(scenario="Offline")
    stale = tmp_path / spec.run_id / "Offline/performance/run_1/stale.txt"
    stale.parent.mkdir(parents=True)
    stale.write_text("old")
    assert run_harness(spec, tmp_path, log=QUIET).exit_code == 0
    assert not stale.exists()
    assert verify_manifest(tmp_path / spec.run_id).ok


def test_invalid_performance_run_exits_4(make_spec: Callable[..., RunSpec], tmp_path: Path) -> None:
    # a pinning test: a 1 ms latency bound that a 2 ms predict cannot meet, the pinned target used as given
    spec = make_spec(scenario="Server", options={"predict_delay_s": 0.002},
                     settings={"min_duration_ms": 300, "min_query_count": 50, "server_target_qps": 400,
                               "server_target_latency_ns": 1_000_000})
    result = run_harness(spec, tmp_path, log=QUIET)
    assert result.exit_code == exit_codes.EXIT_INVALID
    assert result.record["status"]["name"] == "INVALID"
    assert result.record["subruns"][0]["validity"] == "INVALID"
    assert result.record["subruns"][0]["dispatch"] == "worker"


def test_server_worker_dispatch_batches(make_spec: Callable[..., RunSpec], tmp_path: Path) -> None:
    """A costly predict (1 ms) takes the worker path, which completes every query (at the calibrated target)."""
    spec = make_spec(scenario="Server", options={"predict_delay_s": 0.001}, batch_size=16,
                     settings={"min_duration_ms": 300, "min_query_count": 1024,
                               "server_target_latency_ns": 200_000_000})
    result = run_harness(spec, tmp_path, log=QUIET)
    assert result.exit_code == 0, result.record["subruns"]
    sub = result.record["subruns"][0]
    assert sub["dispatch"] == "worker" and sub["warmup_predict_s"] >= 0.001


def test_variable_length_payloads_reach_the_accuracy_log(make_spec: Callable[..., RunSpec], tmp_path: Path) -> None:
    spec = make_spec(scenario="Offline", mode="accuracy", options={"payload_bytes": 4096})
    result = run_harness(spec, tmp_path, log=QUIET)
    assert result.exit_code == 0, result.error
    entries = json.loads((tmp_path / spec.run_id / "Offline/accuracy/mlperf_log_accuracy.json").read_text())
    assert {len(e["data"]) for e in entries} == {2 * 4096}


def test_predict_failure_during_calibration_is_a_runtime_failure_with_record(
        make_spec: Callable[..., RunSpec], tmp_path: Path) -> None:
    spec = make_spec(scenario="SingleStream", options={"fail_after": 20})
    result = run_harness(spec, tmp_path, log=QUIET)
    assert result.exit_code == exit_codes.EXIT_RUNTIME
    assert "fake accelerator fell off the bus" in (result.error or "")
    assert not result.loadgen_detached
    record = _record(tmp_path / spec.run_id)
    assert record["status"]["name"] == "RUNTIME_FAILURE" and "calibration" in record["status"]["error"]
    assert (tmp_path / spec.run_id / "SingleStream/calibration/singlestream-1/mlperf_log_detail.txt").is_file()
    assert verify_manifest(tmp_path / spec.run_id).ok


def test_predict_failure_in_the_timed_run_is_a_runtime_failure_with_record(
        make_spec: Callable[..., RunSpec], tmp_path: Path) -> None:
    # the target is pinned so that the first predictions are the timed run's (no probes)
    spec = make_spec(scenario="SingleStream", options={"fail_after": 20},
                     settings={**SHORT_SETTINGS["SingleStream"], "single_stream_expected_latency_ns": 1_000_000})
    result = run_harness(spec, tmp_path, log=QUIET)
    assert result.exit_code == exit_codes.EXIT_RUNTIME
    assert "fake accelerator fell off the bus" in (result.error or "")
    assert not result.loadgen_detached
    record = _record(tmp_path / spec.run_id)
    assert record["status"]["name"] == "RUNTIME_FAILURE"
    assert "fell off the bus" in record["subruns"][0]["error"]
    assert (tmp_path / spec.run_id / "SingleStream/performance/run_1/mlperf_log_detail.txt").is_file()
    assert verify_manifest(tmp_path / spec.run_id).ok


def test_workload_config_error_is_bad_spec(make_spec: Callable[..., RunSpec], tmp_path: Path) -> None:
    spec = make_spec(options={"config_error": True})
    result = run_harness(spec, tmp_path, log=QUIET)
    assert result.exit_code == exit_codes.EXIT_BAD_SPEC
    assert "not a model file" in (result.error or "")
    record = _record(tmp_path / spec.run_id)
    assert record["status"]["exit_code"] == 3 and record["subruns"] == []
    assert set(read_manifest(tmp_path / spec.run_id / "checksums.sha256")) == {
        "run.json", "system.json", "record.json"}


def test_unsupported_backend_is_bad_spec(make_spec: Callable[..., RunSpec], tmp_path: Path) -> None:
    from harness_testutil import spec_dict

    from mlrepro.harness.spec import parse_spec

    d = spec_dict()
    d["workload"]["backend"] = "torch"
    result = run_harness(parse_spec(d), tmp_path, log=QUIET)
    assert result.exit_code == exit_codes.EXIT_BAD_SPEC
    assert "backend 'torch'" in (result.error or "")


def test_image_digest_from_environment(make_spec: Callable[..., RunSpec], tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLREPRO_IMAGE_DIGEST", "sha256:" + "cd" * 32)
    spec = make_spec(image="registry.example/mlrepro/x86-cpu:1", options={"config_error": True})
    record = run_harness(spec, tmp_path, log=QUIET).record
    assert record is not None
    assert record["image"] == {"reference": "registry.example/mlrepro/x86-cpu:1", "digest": "sha256:" + "cd" * 32}


def test_unwritable_results_dir(make_spec: Callable[..., RunSpec], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run_harness(make_spec(), blocker, log=QUIET)
    assert result.exit_code == exit_codes.EXIT_RUNTIME and result.record is None
    assert "cannot create the run directory" in (result.error or "")
