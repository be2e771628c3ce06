"""Calibrated targets are cached per (profile hash, system fingerprint, scenario): reuse, --recalibrate, and the
one automatic recalibration when a cached target gives an INVALID run (real LoadGen, native target)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlrepro.flow import PipelineOptions, run_pipeline
from mlrepro.profiles import resolve_profile
from mlrepro.state.calibration_cache import open_cache, remember
from mlrepro.state.paths import RunPaths


@pytest.fixture()
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "state"
    monkeypatch.setenv("MLREPRO_STATE_DIR", str(d))
    return d


def _run(state: Path, **options: object):
    # the reference workload: a real model's speed moves less between two runs than the null workload's
    # (whose Python allocation pattern makes it swing by 1.5x here), and this test is about the cache
    resolved = resolve_profile("x86-cpu", ["quick"], ["benchmark.settings.min_duration_ms=300"])
    result = run_pipeline(resolved, PipelineOptions(target="native", scenarios=["Offline"], modes=["performance"],
                                                    collect=False, into=None, **options), state_dir=state)
    (run,) = result.runs
    record = json.loads((run.results_dir / "record.json").read_text())
    return resolved, run, record


def test_cache_reuse_recalibrate_and_the_automatic_retry(state: Path) -> None:
    # 1. first run: calibrated, VALID, stored under this system's fingerprint
    resolved, run, record = _run(state)
    assert run.validity == "VALID" and record["calibration"]["targets"][0]["source"] == "calibrated"
    fingerprint = record["calibration"]["fingerprint"]
    cache = open_cache(state)
    entries = cache.entries(resolved.hash, "Offline")
    assert list(entries) == [fingerprint]
    stored = entries[fingerprint]["offline_expected_qps"]
    assert stored == record["calibration"]["targets"][0]["value"] and entries[fingerprint]["run_id"] == run.run_id

    # 2. second run on the same system: the cached target, no probe, no calibration folder (on a machine whose
    #    speed moves a lot between two runs the cached target may give an INVALID run: then it is the retry's
    #    "previous" target, and the retry is what step 4 checks)
    _, run2, record2 = _run(state)
    retry = record2["calibration"]["retry"]
    target = retry["previous"] if retry else record2["calibration"]["targets"][0]
    assert run2.validity == "VALID"
    assert target["source"] == "cached" and target["value"] == stored and target["probes"] == []
    if retry is None:
        assert target["cost_s"] == 0 and not (run2.results_dir / "Offline" / "calibration").exists()
        assert run2.loadgen_target["source"] == "cached"

    # 3. --recalibrate: measured again, and the cache holds the new value
    _, run3, record3 = _run(state, recalibrate=True)
    assert record3["calibration"]["targets"][0]["source"] == "calibrated"
    assert cache.entries(resolved.hash, "Offline")[fingerprint]["run_id"] == run3.run_id

    # 4. a cached target that no longer fits (here: 1,000x too low, as after a hardware change behind the same
    #    fingerprint) gives an INVALID run: dropped, recalibrated once, re-run VALID; the record says so
    entry = cache.entries(resolved.hash, "Offline")[fingerprint]
    cache.store(resolved.hash, "Offline", fingerprint, {**entry, "offline_expected_qps":
                                                         entry["offline_expected_qps"] / 1000})
    _, run4, record4 = _run(state)
    cal = record4["calibration"]
    assert run4.validity == "VALID", json.dumps(cal)
    assert cal["retry"]["previous"]["source"] == "cached" and cal["dropped_cache"] is True
    assert "min duration not met" in cal["retry"]["reason"]
    assert cal["retry"]["previous_result"]["validity"] == "INVALID"
    assert (run4.results_dir / cal["retry"]["previous_result"]["directory"] / "mlperf_log_summary.txt").is_file()
    assert cal["targets"][0]["source"] == "calibrated"
    assert cal["targets"][0]["margin"] == pytest.approx(cal["policy"]["offline_retry_headroom"])   # the last attempt
    assert any("recalibrated after an INVALID timed run" in n for n in run4.notes)
    fresh = cache.entries(resolved.hash, "Offline")[fingerprint]
    assert fresh["run_id"] == run4.run_id and fresh["offline_expected_qps"] > entry["offline_expected_qps"] / 1000
    cache.close()


def _record(source: str, status: str, *, method: str = "offline-throughput", dropped: bool = False) -> dict:
    return {"run_id": "r1", "profile_hash": "h" * 64, "scenario": "Offline", "mode": "performance",
            "status": {"name": status},
            "calibration": {"fingerprint": "f1", "dropped_cache": dropped,
                            "targets": [{"setting": "offline_expected_qps", "value": 5.0, "source": source,
                                         "method": method, "measured": 4.0, "cost_s": 1.0}]}}


def test_what_a_record_does_to_the_cache(tmp_path: Path) -> None:
    cache = open_cache(tmp_path)
    assert remember(cache, _record("calibrated", "VALID")) == "stored"
    assert cache.entries("h" * 64, "Offline")["f1"]["offline_expected_qps"] == 5.0
    assert remember(cache, _record("pinned", "VALID")) is None                        # pins are never cached
    assert remember(cache, _record("calibrated", "VALID", method="accuracy-schedule")) is None
    assert remember(cache, _record("calibrated", "INVALID")) is None                  # a fresh target that failed
    assert cache.entries("h" * 64, "Offline")                                         # ... leaves the old entry
    assert remember(cache, _record("cached", "INVALID")) == "dropped"
    assert cache.entries("h" * 64, "Offline") == {}
    assert remember(cache, {"calibration": None}) is None
    cache.close()


def test_calibrate_command_stores_targets_the_next_run_uses(state: Path) -> None:
    from typer.testing import CliRunner

    from mlrepro.cli.main import app

    runner = CliRunner()
    args = ["-p", "x86-cpu", "-f", "quick", "--set", "benchmark.workload='null'", "--target", "native",
            "--scenario", "Offline,SingleStream"]
    r = runner.invoke(app, ["calibrate", *args, "--output", "json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert [row["scenario"] for row in rows] == ["Offline", "SingleStream"]
    assert all(row["status"] == "succeeded" and row["target"]["source"] == "calibrated" for row in rows)
    r = runner.invoke(app, ["run", *args, "--mode", "performance", "--no-collect"])
    assert r.exit_code == 0, r.output
    listed = json.loads(runner.invoke(app, ["runs", "--output", "json"]).stdout)
    timed = [row for row in listed if row["mode"] == "performance"]
    assert len(timed) == 2
    for row in timed:   # cached; or, on a machine whose speed moved since, recalibrated after an INVALID attempt
        record = json.loads((RunPaths.of(state, row["run_id"]).results / "record.json").read_text())
        retry = record["calibration"]["retry"]
        assert (retry["previous"] if retry else record["calibration"]["targets"][0])["source"] == "cached"
    # the table says where each target came from
    table = runner.invoke(app, ["calibrate", *args])
    assert table.exit_code == 0 and "calibrated" in table.stdout and "cached for this profile" in table.stdout
