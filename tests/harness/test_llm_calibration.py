"""LLM calibration against simulated LLM servers of very different speeds (no LoadGen, deterministic): the demo's
bounds scale with the machine, the Server target stays below the batched throughput and within the bounds, and
probes turn equal-issue mode off. The same code must land on a system 1,000x faster or slower."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from mlrepro.harness.calibration import (
    DEFAULT_POLICY,
    ProbeResult,
    batched_probe,
    calibrate,
    calibrated_bounds,
    unloaded_probe,
)

TIMED = {"min_duration_ms": 1000.0, "min_query_count": 459.0}


class SimulatedLLM:
    """``speed`` scales everything: unloaded TTFT 0.2 s, TPOT 0.05 s, a query 1 s, batched throughput 4
    samples/s; a Server probe meets its bounds up to ``peak`` (3 queries/s) - all divided by ``speed``."""

    def __init__(self, speed: float) -> None:
        self.s = speed
        self.calls: list[tuple[str, dict[str, float]]] = []

    def __call__(self, scenario: str, label: str, overrides: Mapping[str, float]) -> ProbeResult:
        o = dict(overrides)
        self.calls.append((scenario, o))
        s = self.s
        if scenario == "Offline":
            return ProbeResult(label, scenario, o, "VALID", 1.0, samples_per_second=4.0 * s)
        if scenario == "SingleStream":
            return ProbeResult(label, scenario, o, "INVALID", 1.0, mean_latency_ns=1e9 / s, ttft_p99_ns=2e8 / s,
                               tpot_p99_ns=5e7 / s, latency_p99_ns=1.2e9 / s)
        within = o["server_target_qps"] <= 3.0 * s
        return ProbeResult(label, scenario, o, "INVALID", 1.0, perf_constraints_met=within,
                           ttft_p99_ns=1e9 / s, tpot_p99_ns=1e8 / s)


@pytest.mark.parametrize("speed", [0.01, 1.0, 100.0])
def test_bounds_and_target_scale_with_the_machine(speed: float) -> None:
    sim = SimulatedLLM(speed)
    unloaded, batched = unloaded_probe(sim, DEFAULT_POLICY), batched_probe(sim, DEFAULT_POLICY, 8)
    ttft, tpot = calibrated_bounds(unloaded, batched, DEFAULT_POLICY, 8)
    # TTFT: 2 x (a batch of 8 at 4/s = 2 s, + 0.2 s); TPOT: 4 x 50 ms; whole ms, scaled by the speed
    assert ttft.value == pytest.approx(max(1e6, 4.4e9 / speed), rel=1e-3, abs=1e6)
    assert tpot.value == pytest.approx(max(1e6, 2e8 / speed), rel=1e-3, abs=1e6)
    assert ttft.value % 1e6 == 0 and tpot.value % 1e6 == 0 and ttft.source == "calibrated"
    bounds = {"ttft_latency": ttft.value, "tpot_latency": tpot.value}
    d = calibrate("Server", "performance", sim, TIMED, DEFAULT_POLICY, 8, tokens=True, bounds=bounds,
                  unloaded=unloaded, batched=batched)
    assert d.method == "llm-server-bisection" and d.measured is not None
    top = min(3.0, 4.0 * DEFAULT_POLICY.llm_server_max_utilization) * speed       # 2.4: the utilization cap
    assert top / (1 + DEFAULT_POLICY.llm_server_tolerance) <= d.measured <= top
    assert d.value == pytest.approx(d.measured * (1 - DEFAULT_POLICY.llm_server_margin))
    server = [o for sc, o in sim.calls if sc == "Server"]
    assert all(o["server_target_qps"] < 2.4 * speed for o in server)     # below 0.6 x the batched throughput
    assert all(o["ttft_latency"] == ttft.value and o["tpot_latency"] == tpot.value for o in server)
    assert all(o["sample_concatenate_permutation"] == 0 for _, o in sim.calls)
    assert all(o["min_query_count"] == DEFAULT_POLICY.llm_server_probe_queries for o in server)


def test_offline_and_single_stream_targets() -> None:
    sim = SimulatedLLM(1.0)
    off = calibrate("Offline", "performance", sim, TIMED, DEFAULT_POLICY, 8, tokens=True)
    assert off.value == pytest.approx(4.0 * 1.15) and off.probes[0].settings["min_query_count"] == 16
    ss = calibrate("SingleStream", "performance", sim, TIMED, DEFAULT_POLICY, 1, tokens=True)
    assert ss.value == pytest.approx(1e9 / 1.25)
    acc = calibrate("Interactive", "accuracy", sim, TIMED, DEFAULT_POLICY, 8, tokens=True)
    assert acc.value == pytest.approx(0.5) and acc.method == "accuracy-schedule"


def test_a_system_that_never_meets_the_bounds_fails_with_a_reason() -> None:
    class Hopeless(SimulatedLLM):
        def __call__(self, scenario: str, label: str, overrides: Mapping[str, float]) -> ProbeResult:
            r = super().__call__(scenario, label, overrides)
            if scenario == "Server":
                return ProbeResult(label, scenario, dict(overrides), "INVALID", 1.0, perf_constraints_met=False)
            return r

    d = calibrate("Server", "performance", Hopeless(1.0), TIMED, DEFAULT_POLICY, 8, tokens=True, bounds={})
    assert d.method == "failed" and "cannot meet them" in d.note and d.value is not None
