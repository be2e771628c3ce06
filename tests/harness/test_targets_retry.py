"""The one retry after an INVALID timed run (mlrepro.harness.targets.recalibrate_after_invalid): whatever the
new probes say, the last attempt errs on the safe side of what the failed run showed (deterministic, no LoadGen).
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from harness_testutil import spec_dict

from mlrepro.harness.calibration import DEFAULT_POLICY, ProbeResult, calibrate
from mlrepro.harness.logparse import ParsedLogs, Summary
from mlrepro.harness.spec import parse_spec
from mlrepro.harness.targets import TargetsOutcome, recalibrate_after_invalid

TIMED = {"min_duration_ms": 1000.0, "min_query_count": 100.0}


class ServerAt:
    """A Server whose probes are VALID up to ``peak`` queries/s (a back-to-back query takes 1/peak s)."""

    def __init__(self, peak: float) -> None:
        self.peak = peak

    def __call__(self, scenario: str, label: str, overrides: Mapping[str, float]) -> ProbeResult:
        if scenario == "SingleStream":
            return ProbeResult(label, scenario, dict(overrides), "VALID", overrides["min_duration_ms"] / 1000,
                               query_rate=self.peak, mean_latency_ns=1e9 / self.peak, min_duration_met=True)
        qps = overrides["server_target_qps"]
        valid = qps <= self.peak
        return ProbeResult(label, scenario, dict(overrides), "VALID" if valid else "INVALID",
                           overrides["min_duration_ms"] / 1000, completed_qps=min(qps, self.peak),
                           perf_constraints_met=valid)


def _outcome(peak: float) -> TargetsOutcome:
    decision = calibrate("Server", "performance", ServerAt(peak), TIMED, DEFAULT_POLICY)
    return TargetsOutcome(fingerprint="f", policy=DEFAULT_POLICY, decisions=[decision], timed=dict(TIMED))


@pytest.mark.parametrize("peak", [150.0, 150_000.0])
def test_server_retry_stays_below_what_the_failed_run_completed(peak: float) -> None:
    """The probes before the retry see the old speed again (noise), but the failed run completed only 80% of its
    target: the retry's target is below that rate, by the retry margin (recorded)."""
    outcome = _outcome(peak)
    failed_target = outcome.decisions[0].value
    assert failed_target is not None and failed_target > 0.8 * peak
    completed = 0.8 * failed_target
    failed = ParsedLogs(summary=Summary(scenario="Server", validity="INVALID", completed_samples_per_second=completed),
                        detail=None)
    spec = parse_spec(spec_dict("Server"))
    new = recalibrate_after_invalid(outcome, spec, ServerAt(peak), failed, ["latency"])
    m = DEFAULT_POLICY.server_retry_margin
    assert new.value == pytest.approx(completed * (1 - m)) and new.margin == m      # lower, not collapsed
    assert outcome.retry is not None and outcome.retry["previous"]["value"] == failed_target
    assert outcome.decisions == [new] and "recalibrated after an INVALID timed run" in new.note


def test_server_retry_below_the_failed_target_when_the_run_kept_up() -> None:
    """INVALID on latency alone (the run completed what was scheduled): the retry margin below the old target."""
    outcome = _outcome(10_000.0)
    old = outcome.decisions[0].value
    assert old is not None
    failed = ParsedLogs(summary=Summary(scenario="Server", validity="INVALID", completed_samples_per_second=old),
                        detail=None)
    new = recalibrate_after_invalid(outcome, parse_spec(spec_dict("Server")), ServerAt(10_000.0), failed, ["p99"])
    assert new.value == pytest.approx(old * (1 - DEFAULT_POLICY.server_retry_margin))
