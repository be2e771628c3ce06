"""The calibration cache keeps every decision of an LLM's Server / Interactive run: the second run of the same
profile on the same system uses the target and the demo's TTFT/TPOT bounds the first one calibrated, and calibrates
nothing (real harness, real LoadGen, the cache of the state directory; the test LLM of known schedule)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from mlrepro.harness.core import run_harness
from mlrepro.harness.spec import CalibrationRequest, RunSpec
from mlrepro.state.calibration_cache import open_cache, remember

QUIET: Callable[[str], None] = lambda m: None
SETTINGS = {"min_duration_ms": 100, "min_query_count": 480}


def _spec(make_spec: Callable[..., RunSpec], scenario: str, run_id: str, cached: dict | None = None) -> RunSpec:
    spec = make_spec(scenario=scenario, mode="performance", workload="scheduled-demo-llm", run_id=run_id,
                     options={"dataset_size": 32, "n_tokens": 4}, batch_size=8, settings=SETTINGS)
    return replace(spec, profile_hash="h" * 64, calibration=CalibrationRequest(cached=cached or {}))


@pytest.mark.parametrize("scenario", ["Server", "Interactive"])
def test_the_second_run_uses_the_cached_target_and_bounds(scenario: str, make_spec, tmp_path: Path) -> None:
    cache = open_cache(tmp_path / "state")
    said: list[str] = []
    first = run_harness(_spec(make_spec, scenario, "first"), tmp_path / "results", log=QUIET)
    assert first.exit_code == 0, first.error
    cal = first.record["calibration"]
    assert [(d["setting"], d["source"]) for d in cal["targets"]] == [
        ("server_target_qps", "calibrated"), ("ttft_latency", "calibrated"), ("tpot_latency", "calibrated")]
    assert remember(cache, first.record) == "stored"
    entries = cache.entries("h" * 64, scenario)
    entry = entries[cal["fingerprint"]]
    assert {k: entry[k] for k in ("server_target_qps", "ttft_latency", "tpot_latency")} == \
        {d["setting"]: d["value"] for d in cal["targets"]}
    assert entry["details"]["ttft_latency"]["method"] == cal["targets"][1]["method"]

    second = run_harness(_spec(make_spec, scenario, "second", entries), tmp_path / "results", log=said.append)
    assert second.exit_code == 0, second.error
    again = second.record["calibration"]["targets"]
    assert [d["source"] for d in again] == ["cached"] * 3
    assert [d["value"] for d in again] == [d["value"] for d in cal["targets"]]
    assert again[1]["method"] == cal["targets"][1]["method"] and again[1]["measured"] == cal["targets"][1]["measured"]
    assert not [m for m in said if "calibrating" in m]
    assert second.record["subruns"][0]["results"]["tokens"]["ttft_bound_ns"] == cal["targets"][1]["value"]
    # a run that used the cache and calibrated nothing leaves the entry as it is
    assert remember(cache, second.record) is None and cache.entries("h" * 64, scenario) == entries


def test_an_entry_of_a_cache_before_it_kept_the_bounds_calibrates_them_and_is_completed(make_spec,
                                                                                      tmp_path: Path) -> None:
    """An entry with the target only (what the cache kept before): the bounds are calibrated, the target is
    used, and the VALID run's entry then holds all three."""
    cache = open_cache(tmp_path / "state")
    first = run_harness(_spec(make_spec, "Server", "first"), tmp_path / "results", log=QUIET)
    cal = first.record["calibration"]
    old = {cal["fingerprint"]: {"server_target_qps": cal["targets"][0]["value"], "run_id": "first"}}
    second = run_harness(_spec(make_spec, "Server", "second", old), tmp_path / "results", log=QUIET)
    assert second.exit_code == 0, second.error
    assert [d["source"] for d in second.record["calibration"]["targets"]] == ["cached", "calibrated", "calibrated"]
    assert remember(cache, second.record) == "stored"
    entry = cache.entries("h" * 64, "Server")[cal["fingerprint"]]
    assert entry["server_target_qps"] == cal["targets"][0]["value"] and entry["ttft_latency"] > 0
    assert entry["run_id"] == "second" and "measured" not in entry      # the target's details were not measured


def test_an_accuracy_run_does_not_replace_the_entry_of_a_performance_run(make_spec, tmp_path: Path) -> None:
    """A Server accuracy run calibrates the demo's bounds too (its target is the accuracy schedule): it stores
    nothing, so the performance run's entry (target and bounds) stays whole for the next run."""
    cache = open_cache(tmp_path / "state")
    perf = run_harness(_spec(make_spec, "Server", "perf"), tmp_path / "results", log=QUIET)
    assert remember(cache, perf.record) == "stored"
    before = cache.entries("h" * 64, "Server")
    acc_spec = replace(_spec(make_spec, "Server", "acc"), mode="accuracy")
    acc = run_harness(acc_spec, tmp_path / "results", log=QUIET)
    assert acc.exit_code == 0, acc.error
    sources = [(d["setting"], d["source"], d.get("method")) for d in acc.record["calibration"]["targets"]]
    assert sources[0][2] == "accuracy-schedule" and sources[1][1] == "calibrated", sources
    assert remember(cache, acc.record) is None and cache.entries("h" * 64, "Server") == before


def test_an_invalid_run_drops_a_cached_entry_and_round_bounds_are_never_stored(tmp_path: Path) -> None:
    cache = open_cache(tmp_path / "state")
    fp, h = "f" * 16, "h" * 64
    record = {"profile_hash": h, "scenario": "Server", "run_id": "r", "mode": "performance",
              "status": {"name": "VALID"},
              "calibration": {"fingerprint": fp, "targets": [
                  {"setting": "server_target_qps", "value": 2.0, "source": "calibrated", "method": "llm-bisect"},
                  {"setting": "ttft_latency", "value": 2e9, "source": "mlperf.conf"},
                  {"setting": "tpot_latency", "value": 1e8, "source": "mlperf.conf"}]}}
    assert remember(cache, record) == "stored"
    assert set(cache.entries(h, "Server")[fp]) == {"server_target_qps", "run_id", "mode", "method", "details"}
    cached = {**record, "status": {"name": "INVALID"}, "calibration": {**record["calibration"], "targets": [
        {**record["calibration"]["targets"][0], "source": "cached"}, *record["calibration"]["targets"][1:]]}}
    assert remember(cache, cached) == "dropped" and cache.entries(h, "Server") == {}
