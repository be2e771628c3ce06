"""Speed independence: the quick overlay's runs are VALID for a system under test far faster and far slower than
the reference workload, in all four scenarios, with no target given anywhere (real LoadGen, this process).

* fast: the ``null`` workload (no model: only the harness and LoadGen, the fastest SUT there is);
* slow: the fake workload sleeping 5 ms per predict call (per batch): ~100-200x slower than the reference model
  per query on this kind of machine.

The Server latency bound is relaxed from resnet50's 15 ms to 100 ms: a bound the slow SUT (5 ms per batch, more
on a loaded machine) can meet at all; which QPS meets it is still the calibration's business.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from harness_testutil import spec_dict

from mlrepro.harness import exit_codes
from mlrepro.harness.core import run_harness
from mlrepro.harness.spec import parse_spec
from mlrepro.harness.userconf import settings_for
from mlrepro.profiles.loader import resolve_profile

QUIET: Callable[[str], None] = lambda m: None
SCENARIOS = ("Offline", "Server", "SingleStream", "MultiStream")
SYSTEMS = {
    "fast-null": {"workload": "null", "options": {}},
    "slow-5ms-per-batch": {"workload": "fake", "options": {"predict_delay_s": 0.005}},
}


@pytest.fixture(scope="module")
def quick_settings() -> dict[str, object]:
    """benchmark.settings of the built-in quick overlay, exactly as users get them."""
    return dict(resolve_profile("x86-cpu", ["quick"]).profile.benchmark.settings)


@pytest.mark.slow
@pytest.mark.parametrize("system", list(SYSTEMS))
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_quick_runs_are_valid_at_any_speed(system: str, scenario: str, quick_settings: dict[str, object],
                                           tmp_path: Path) -> None:
    sut = SYSTEMS[system]
    settings = settings_for(quick_settings, scenario)
    if scenario == "Server":
        settings["server_target_latency_ns"] = 100_000_000
    data = spec_dict(scenario, run_id=f"{system}-{scenario.lower()}", workload=str(sut["workload"]),
                     options=dict(sut["options"]), settings=settings)
    result = run_harness(parse_spec(data), tmp_path, log=QUIET)
    assert result.record is not None
    cal = result.record["calibration"]
    assert result.exit_code == exit_codes.EXIT_VALID, (result.error, cal, result.record["subruns"])
    (target,) = cal["targets"]
    assert target["source"] == "calibrated" and target["value"] > 0 and target["probes"]
    sub = result.record["subruns"][0]
    assert sub["validity"] == "VALID"
    if scenario == "Offline":
        # the timed run lands at 1.0-1.5x min duration (plus one retry at most on a machine whose speed moves)
        assert sub["results"]["min_duration_satisfied"] is True
    assert (tmp_path / data["run_id"] / "user.conf").read_text().count("calibrated by mlrepro") == 1
