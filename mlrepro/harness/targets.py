"""Which LoadGen target a run uses and where it came from: pinned, cached, calibrated (or not needed).

A target the profile pins (``benchmark.settings`` or a ``benchmark.user_conf`` line LoadGen reads for this model
and scenario) is used as given and never changed. Otherwise a cached calibration for this system fingerprint is
used (unless the launcher asks to recalibrate), else the target is calibrated (:mod:`mlrepro.harness.calibration`).
After an INVALID timed run with a cached or calibrated target the harness recalibrates once
(:func:`recalibrate_after_invalid`), also using what the failed timed run measured, and records both attempts.

Public API::

    TargetsOutcome                      decisions + fingerprint + policy (+ retry), ``values()`` for the user.conf
    decide_targets(...) -> TargetsOutcome
    recalibrate_after_invalid(...) -> TargetDecision
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mlrepro.harness.calibration import (
    BOUND_SETTINGS,
    CACHED,
    CALIBRATED,
    DEFAULT_POLICY,
    FIND_PEAK_POLICY,
    ROUND,
    TARGET_SETTING,
    Policy,
    ProbeFn,
    TargetDecision,
    batched_probe,
    cached,
    calibrate,
    calibrated_bounds,
    needs_target,
    not_needed,
    pinned,
    unloaded_probe,
)
from mlrepro.harness.logparse import ParsedLogs
from mlrepro.harness.scenarios import STREAM_SCENARIOS, is_server_like
from mlrepro.harness.spec import RunSpec
from mlrepro.harness.userconf import effective_settings, parse_user_conf


@dataclass(frozen=True)
class TokenPolicy:
    """What calibration needs to know of an LLM workload: its TTFT/TPOT bounds are the round's (``mlperf.conf``,
    never changed) or ``calibrated`` (the open-division demo: measured here, :func:`calibrated_bounds`)."""

    bounds: str = ROUND


@dataclass
class TargetsOutcome:
    fingerprint: str
    policy: Policy
    decisions: list[TargetDecision]
    timed: dict[str, float]                     # the timed run's effective settings before targets
    retry: dict[str, Any] | None = None         # set when an INVALID run was recalibrated and re-run
    dropped_cache: bool = False                 # a cached target gave an INVALID run
    tokens: TokenPolicy | None = None           # an LLM workload (token latencies)

    def bounds(self) -> dict[str, float]:
        """The TTFT/TPOT bounds the harness adds to the user.conf (calibrated or cached demo bounds), ns."""
        return {d.setting: d.value for d in self.decisions[1:]
                if d.setting in BOUND_SETTINGS and d.source in (CACHED, CALIBRATED) and d.value is not None}

    def values(self) -> dict[str, float]:
        """Targets the harness adds to the user.conf (cached or calibrated), TestSettings names and units."""
        return {d.setting: d.value for d in self.decisions
                if d.source in (CACHED, CALIBRATED) and d.value is not None}

    @property
    def retryable(self) -> bool:
        return self.retry is None and any(d.source in (CACHED, CALIBRATED) and d.method != "failed"
                                          for d in self.decisions)

    @property
    def cost_s(self) -> float:
        return sum(d.cost_s for d in self.decisions)

    def to_dict(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "policy": self.policy.to_dict(),
                "targets": [d.to_dict() for d in self.decisions], "timed_settings": dict(self.timed),
                "cost_s": round(self.cost_s, 3), "retry": self.retry, "dropped_cache": self.dropped_cache,
                "latency_bounds": self.tokens.bounds if self.tokens is not None else None}


def purpose_of(mode: str) -> str:
    """performance (timed runs and ``calibrate``) or accuracy."""
    return "accuracy" if mode == "accuracy" else "performance"


def policy_for(spec: RunSpec) -> Policy:
    return FIND_PEAK_POLICY if spec.calibration.find_peak else DEFAULT_POLICY


def _bound_decisions(spec: RunSpec, given: Mapping[str, float], entry: Mapping[str, Any], tokens: TokenPolicy,
                     timed: Mapping[str, float], probe: ProbeFn, policy: Policy,
                     say: Callable[[str], None]) -> list[TargetDecision]:
    """The TTFT/TPOT bounds of a Server / Interactive LLM run and where they come from: mlperf.conf's (closed:
    recorded as source "mlperf.conf", never changed), or for calibrated bounds the profile's (pinned), the cache's
    or a new measurement (an unloaded probe)."""
    if tokens.bounds == ROUND:
        return [TargetDecision(k, timed.get(k), ROUND, unit="ns", note="the round's bound (LoadGen's built-in "
                               "mlperf.conf for this model)") for k in BOUND_SETTINGS]
    if all(k in given for k in BOUND_SETTINGS):
        where = "benchmark.settings" if all(k in spec.settings for k in BOUND_SETTINGS) else "benchmark.user_conf"
        return [pinned(k, given[k], where) for k in BOUND_SETTINGS]
    if all(entry.get(k) for k in BOUND_SETTINGS) and not spec.calibration.recalibrate:
        return [cached(k, float(entry[k]), entry) for k in BOUND_SETTINGS]
    say("mlrepro-harness: calibrating the demo's TTFT/TPOT bounds (an unloaded and a batched probe)")
    t0 = time.monotonic()
    out = calibrated_bounds(unloaded_probe(probe, policy, "bounds-unloaded"),
                            batched_probe(probe, policy, spec.workload.batch_size), policy, spec.workload.batch_size)
    for d in out:
        d.cost_s = (time.monotonic() - t0) / len(out)
    return out


def decide_targets(spec: RunSpec, model: str, base_conf: str, fingerprint: str, probe: ProbeFn,
                   timed: Mapping[str, float], say: Callable[[str], None],
                   tokens: TokenPolicy | None = None) -> TargetsOutcome:
    """Decide the run's target (one per scenario). ``base_conf``: the composed user.conf without targets (what
    pins); ``timed``: the timed run's effective settings read back from LoadGen; ``tokens``: an LLM workload
    (token latencies): Server / Interactive runs then also decide their TTFT/TPOT bounds (decisions after the
    target, :meth:`TargetsOutcome.bounds`)."""
    policy = policy_for(spec)
    setting = TARGET_SETTING[spec.scenario]
    purpose = purpose_of(spec.mode)
    given = effective_settings(parse_user_conf(base_conf), model, spec.scenario)
    entry = spec.calibration.cached.get(fingerprint, {})
    extra: list[TargetDecision] = []
    if tokens is not None and is_server_like(spec.scenario):
        extra = _bound_decisions(spec, given, entry, tokens, timed, probe, policy, say)
        for d in extra:
            say(f"mlrepro-harness: bound {d.line()}")
        failed = [d for d in extra if d.value is None and d.source == CALIBRATED]
        if failed:
            return TargetsOutcome(fingerprint=fingerprint, policy=policy, decisions=failed + extra,
                                  timed=dict(timed))
    bounds = {d.setting: d.value for d in extra if d.source in (CACHED, CALIBRATED) and d.value is not None}
    unloaded = next((d.probes[0] for d in extra if d.source == CALIBRATED and d.probes), None)
    batched = next((d.probes[1] for d in extra if d.source == CALIBRATED and len(d.probes) > 1), None)
    if setting in given:
        where = "benchmark.settings" if setting in spec.settings else "benchmark.user_conf"
        decision = pinned(setting, given[setting], where)
    elif not needs_target(spec.scenario, purpose):
        decision = not_needed(setting)
    else:
        value = entry.get(setting)
        if value is not None and not spec.calibration.recalibrate:
            decision = cached(setting, float(value), entry)
        else:
            say(f"mlrepro-harness: calibrating {setting} ({spec.scenario}, "
                f"{'find-peak' if policy.find_peak else 'default'} policy)")
            decision = calibrate(spec.scenario, purpose, probe, timed, policy, spec.workload.batch_size,
                                 tokens=tokens is not None, bounds=bounds, unloaded=unloaded, batched=batched)
    say(f"mlrepro-harness: target {decision.line()}")
    return TargetsOutcome(fingerprint=fingerprint, policy=policy, decisions=[decision, *extra], timed=dict(timed),
                          tokens=tokens)


def recalibrate_after_invalid(outcome: TargetsOutcome, spec: RunSpec, probe: ProbeFn, failed: ParsedLogs,
                              reasons: list[str]) -> TargetDecision:
    """A fresh calibration after an INVALID timed run, combined with what that run measured.

    Offline and the stream scenarios take the fastest of the new probes, the timed run and the decision that
    failed (running out of work is what makes them INVALID; too high a target only makes the run longer), with a
    wider headroom (Offline: ``offline_retry_headroom``, the stream scenarios twice theirs): the retry is the
    last attempt, on a machine whose speed has just been seen to move. Server takes ``server_retry_margin``
    below the lowest of the new highest VALID probe, the target that failed and the rate that run completed
    (samples/s; one sample per Server query).
    Records the retry in ``outcome``; returns the new decision."""
    old = outcome.decisions[0]
    policy = outcome.policy
    new = calibrate(spec.scenario, purpose_of(spec.mode), probe, outcome.timed, policy, spec.workload.batch_size,
                    tokens=outcome.tokens is not None, bounds=outcome.bounds())
    s = failed.summary
    if new.value is not None and s is not None:
        if spec.scenario == "Offline" and s.samples_per_second:
            # too high a target only makes the run longer, too low one INVALID: the last attempt takes the
            # fastest figure seen on this system (new probes, the failed run, the decision that failed)
            rate = max(new.measured or 0.0, s.samples_per_second,
                       old.measured if old.method == new.method and old.measured else 0.0)
            new.margin = policy.offline_retry_headroom
            new.measured, new.value = rate, rate * (1 + new.margin)
        elif spec.scenario in STREAM_SCENARIOS and s.qps_with_loadgen_overhead:
            rate = max(1e9 / new.measured if new.measured else 0.0, s.qps_with_loadgen_overhead,
                       1e9 / old.measured if old.method == new.method and old.measured else 0.0)
            new.margin = 2 * policy.latency_headroom
            new.measured, new.value = 1e9 / rate, 1e9 / (rate * (1 + new.margin))
        elif is_server_like(spec.scenario) and old.value is not None:
            # the last attempt errs on the low side: below the highest VALID probe, the target that failed and
            # what the failed run completed per second (a run that fell behind shows the system's rate then)
            rates = [old.value] + [r for r in (new.measured, s.completed_samples_per_second) if r]
            new.margin = policy.server_retry_margin
            new.value = min(new.value, min(rates) * (1 - new.margin))
    new.note = ((new.note + "; ") if new.note else "") + "recalibrated after an INVALID timed run"
    outcome.retry = {"reason": reasons, "previous": old.to_dict(),
                     "previous_result": _figures(failed)}
    outcome.dropped_cache = old.source == CACHED
    outcome.decisions = [new, *outcome.decisions[1:]]      # the bounds stay those of the failed run
    return new


def _figures(logs: ParsedLogs) -> dict[str, Any]:
    s = logs.summary
    if s is None:
        return {}
    return {k: v for k, v in (("validity", s.validity), ("samples_per_second", s.samples_per_second),
                              ("completed_samples_per_second", s.completed_samples_per_second),
                              ("qps_with_loadgen_overhead", s.qps_with_loadgen_overhead),
                              ("result_latency_ns", s.result_latency_ns)) if v is not None}

