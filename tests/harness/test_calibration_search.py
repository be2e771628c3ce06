"""The calibration methods against simulated systems of very different speeds (no LoadGen, deterministic).

A simulated probe answers like LoadGen would for a system of a given speed: Offline throughput with a fixed
start-up cost, a back-to-back query time for SingleStream/MultiStream, and a Server peak above which probes are
INVALID. The same code must land VALID targets on a system 1,000x faster or slower than another.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

from mlrepro.harness.calibration import (
    DEFAULT_POLICY,
    FIND_PEAK_POLICY,
    ProbeResult,
    calibrate,
    offline_throughput,
)

TIMED = {"min_duration_ms": 1000.0, "min_query_count": 1024.0}


class Simulated:
    """A system under test: ``rate`` samples/s in Offline (plus ``startup_s`` per run), ``query_s`` seconds per
    back-to-back query, Server VALID up to ``peak`` queries/s."""

    def __init__(self, rate: float, query_s: float, peak: float, startup_s: float = 0.02) -> None:
        self.rate, self.query_s, self.peak, self.startup_s = rate, query_s, peak, startup_s
        self.calls: list[tuple[str, dict[str, float]]] = []

    def __call__(self, scenario: str, label: str, overrides: Mapping[str, float]) -> ProbeResult:
        o = dict(overrides)
        self.calls.append((scenario, o))
        d = o["min_duration_ms"] / 1000
        if scenario == "Offline":
            n = max(o["min_query_count"], 1.1 * d * o["offline_expected_qps"])
            t = n / self.rate + self.startup_s
            return ProbeResult(label, scenario, o, "VALID" if t >= d else "INVALID", t, samples_per_second=n / t,
                               min_duration_met=t >= d)
        if scenario in ("SingleStream", "MultiStream"):
            key = "single_stream_expected_latency_ns" if scenario == "SingleStream" else \
                "multi_stream_expected_latency_ns"
            generated = max(o["min_query_count"], 2 * d / (o[key] / 1e9))
            t = generated * self.query_s
            met = t >= d
            return ProbeResult(label, scenario, o, "VALID" if met else "INVALID", min(t, d),
                               query_rate=1 / self.query_s if scenario == "SingleStream" else None,
                               mean_latency_ns=self.query_s * 1e9, min_duration_met=met)
        valid = o["server_target_qps"] <= self.peak
        return ProbeResult(label, scenario, o, "VALID" if valid else "INVALID", d,
                           completed_qps=o["server_target_qps"], perf_constraints_met=valid)


SPEEDS = [pytest.param(1.0, id="reference"), pytest.param(1000.0, id="1000x-faster"),
          pytest.param(0.001, id="1000x-slower")]


def _system(speed: float) -> Simulated:
    return Simulated(rate=200_000 * speed, query_s=30e-6 / speed, peak=20_000 * speed, startup_s=0.02)


@pytest.mark.parametrize("speed", SPEEDS)
def test_offline_lands_between_one_and_one_and_a_half_min_durations(speed: float) -> None:
    sut = _system(speed)
    d = calibrate("Offline", "performance", sut, TIMED, batch_size=32)
    assert d.source == "calibrated" and d.value is not None
    samples = 1.1 * TIMED["min_duration_ms"] / 1000 * d.value
    duration = samples / sut.rate + sut.startup_s
    assert 1.0 <= duration / (TIMED["min_duration_ms"] / 1000) <= 1.5
    assert d.margin == DEFAULT_POLICY.offline_headroom and len(d.probes) <= DEFAULT_POLICY.max_probes


def test_marginal_throughput_discounts_a_probes_start_up_cost() -> None:
    # 1,000 samples in 0.1 s and 10,000 in 0.55 s: 20,000 samples/s once started, not 18,182
    assert offline_throughput([(1000, 0.1), (10_000, 0.55)]) == pytest.approx(20_000)
    assert offline_throughput([(10_000, 0.5)]) == 20_000


@pytest.mark.parametrize("speed", SPEEDS)
@pytest.mark.parametrize("scenario", ["SingleStream", "MultiStream"])
def test_stream_targets_pre_generate_enough_queries(scenario: str, speed: float) -> None:
    sut = _system(speed)
    d = calibrate(scenario, "performance", sut, TIMED)
    assert d.value is not None
    generated_s = 2 * (TIMED["min_duration_ms"] / 1000) / (d.value / 1e9) * sut.query_s
    assert generated_s >= TIMED["min_duration_ms"] / 1000         # LoadGen does not run out of queries
    assert d.value == pytest.approx(sut.query_s * 1e9 / (1 + DEFAULT_POLICY.latency_headroom))


@pytest.mark.parametrize("speed", SPEEDS)
@pytest.mark.parametrize("policy", [DEFAULT_POLICY, FIND_PEAK_POLICY], ids=["default", "find-peak"])
def test_server_finds_the_peak_within_the_stated_tolerance(speed: float, policy) -> None:  # noqa: ANN001
    sut = _system(speed)
    d = calibrate("Server", "performance", sut, TIMED, policy)
    assert d.value is not None and d.value <= sut.peak
    floor = (1 - policy.server_margin) / (1 + policy.server_tolerance)
    assert d.value >= sut.peak * floor
    assert d.tolerance == policy.server_tolerance and d.margin == policy.server_margin
    majority = policy.server_votes // 2 + 1
    assert len([c for c in sut.calls if c[0] == "Server"]) <= \
        policy.server_max_probes + policy.server_votes + policy.server_verify * policy.server_votes
    # a deterministic system answers the same every time: each look at a target takes exactly a majority of probes
    # (the converged bracket's INVALID end is looked at twice)
    targets = [o["server_target_qps"] for s, o in sut.calls if s == "Server"]
    assert all(targets.count(q) % majority == 0 for q in set(targets))
    # the probes mirror the timed run: its min duration and at least its query count
    server = [o for s, o in sut.calls if s == "Server"]
    assert {o["min_duration_ms"] for o in server} == {1000 if not policy.find_peak else 2000}
    assert all(o["min_query_count"] >= 1024 for o in server)


def test_server_verification_lowers_an_unlucky_target() -> None:
    """The system slows down once the search is over: the verification probe at the chosen target is INVALID,
    so the target is lowered by the margin (and checked once more) instead of failing the timed run."""
    sut = _system(1.0)
    best_valid = 0.0

    def slows_down(scenario: str, label: str, overrides: Mapping[str, float]) -> ProbeResult:
        nonlocal best_valid
        if scenario == "Server":
            q = overrides["server_target_qps"]
            if q < best_valid and sut.peak == 20_000:      # the first probe below a VALID one: verification
                sut.peak = 0.93 * q
            r = sut(scenario, label, overrides)
            if r.validity == "VALID":
                best_valid = max(best_valid, q)
            return r
        return sut(scenario, label, overrides)

    d = calibrate("Server", "performance", slows_down, TIMED)
    assert d.value is not None and d.value <= sut.peak
    assert "verification" in d.note


def test_server_accuracy_runs_get_a_cheap_schedule() -> None:
    sut = _system(1.0)
    d = calibrate("Server", "accuracy", sut, TIMED)
    assert d.method == "accuracy-schedule" and d.value == pytest.approx(0.5 / sut.query_s)
    assert all(s == "SingleStream" for s, _ in sut.calls)


def test_a_system_that_never_answers_is_a_failed_calibration_not_a_crash() -> None:
    def dead(scenario: str, label: str, overrides: Mapping[str, float]) -> ProbeResult:
        return ProbeResult(label, scenario, dict(overrides), None, 0.0)

    for scenario in ("Offline", "SingleStream", "MultiStream", "Server"):
        d = calibrate(scenario, "performance", dead, TIMED)
        assert d.value is None and d.method == "failed" and d.note


def test_server_that_is_never_valid_stops_at_the_floor() -> None:
    """A system that cannot meet the latency bound: a few halvings, then the lowest probed QPS with the reason
    (the timed run still runs there so that LoadGen's logs say why), never probes of ever longer duration."""
    sut = Simulated(rate=1e5, query_s=1e-4, peak=0.0)
    d = calibrate("Server", "performance", sut, TIMED)
    assert d.method == "failed" and "no VALID Server probe" in d.note and "latency above the bound" in d.note
    server = [o["server_target_qps"] for s, o in sut.calls if s == "Server"]
    assert len(set(server)) == DEFAULT_POLICY.server_max_halvings + 1
    assert len(server) == len(set(server)) * (DEFAULT_POLICY.server_votes // 2 + 1)
    assert d.value == min(server) == pytest.approx(server[0] / 2 ** DEFAULT_POLICY.server_max_halvings)


def test_server_search_holds_up_against_noisy_verdicts() -> None:
    """Near the peak one probe in a few is VALID by luck above it, and a scheduler hiccup makes one INVALID well
    below it: with a 10 % chance of either, the majority vote and the second look at the bracket keep the
    target within [0.85, 1.0] x peak in every search of 20 seeded systems (15 %: 18 of 20, within [0.85, 1.02])."""
    import random

    good = 0
    for seed in range(20):
        rng = random.Random(seed)
        sut = _system(1.0)

        def noisy(
            scenario: str,
            label: str,
            overrides: Mapping[str, float],
            sut: Callable[..., ProbeResult] = sut,
            rng: random.Random = rng,
        ) -> ProbeResult:
            r = sut(scenario, label, overrides)
            if scenario == "Server" and rng.random() < 0.10:
                flipped = "INVALID" if r.validity == "VALID" else "VALID"
                return ProbeResult(r.label, r.scenario, r.settings, flipped, r.wall_s)
            return r

        d = calibrate("Server", "performance", noisy, TIMED)
        assert d.value is not None
        good += 0.85 * sut.peak <= d.value <= sut.peak
    assert good == 20, good
