"""Calibration ("find performance"): the LoadGen targets of a run, measured on the system under test.

A LoadGen run is only VALID when its target matches the system: Offline issues one query of
``1.1 x min_duration x offline_expected_qps`` samples (too low a QPS ends the run before min duration); SingleStream
and MultiStream pre-generate ``2 x min_duration / expected_latency`` queries (too high a latency runs out of
queries); Server must sustain ``server_target_qps`` within the latency bound (too high is INVALID, too low
understates the result). No fixed number is right for every machine, so the harness measures each target the
profile does not pin with short LoadGen runs ("probes") in the same process, on the same device, with the same
SUT code as the timed run (rules: MLPerf inference rules, LoadGen ``test_settings_internal.cc`` and
``loadgen.cc``; method: MLCommons' "find performance" and LoadGen's FindPeakPerformance, see
the README's Calibration section).

Methods (:class:`Policy` holds the stated margins, recorded with every decision):

* **Offline** - probes of a fixed sample count, grown until one lasts the timed min duration (at most
  ``offline_probe_max_s``); the throughput ``T`` (:func:`offline_throughput`) gives
  ``offline_expected_qps = T x (1 + offline_headroom)``: the timed run then lasts ``1.1 x (1 + headroom)`` x min
  duration at the same speed (1.27 with the default 0.15).
* **SingleStream / MultiStream** - probes until one lasts the probe duration; the query rate ``r`` (LoadGen's
  "QPS w/ loadgen overhead") gives ``expected_latency = 1 / (r x (1 + latency_headroom))``: LoadGen then
  pre-generates queries for 2 x (1 + headroom) x min duration and stops at min duration.
* **Server** - bracket then bisect: probes at target QPS ``q`` (probe = the timed run's min duration and query
  count, capped at ``server_probe_max_s``) are VALID or not, and the majority of up to ``server_votes`` probes
  decides whether a target holds (one probe in a few is VALID by luck above the peak, or INVALID from a
  scheduler hiccup well below it); starting from the
  single-query rate, step up x1.5 / down /2 until a VALID (``lo``) and an INVALID (``hi``) target bracket the
  peak, then bisect geometrically until ``hi/lo <= 1 + server_tolerance`` (and try ``hi`` once more then: a wrong
  INVALID verdict cannot keep the search far below the peak);
  ``server_target_qps = lo x (1 - server_margin)``. ``find_peak``
  uses a finer tolerance, a smaller margin and longer probes.
* Accuracy-only runs need no target except Server (the accuracy run's schedule): half the single-query rate.

Public API::

    TARGET_SETTING[scenario] -> TestSettings name of the scenario's target
    calibrate(scenario, purpose, probe, timed, policy) -> TargetDecision
    system_fingerprint(system) -> str        (what a cached target is keyed by, besides profile hash and scenario)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

TARGET_SETTING: dict[str, str] = {
    "Offline": "offline_expected_qps",
    "Server": "server_target_qps",
    "Interactive": "server_target_qps",      # LoadGen's Server with the -interactive model
    "SingleStream": "single_stream_expected_latency_ns",
    "MultiStream": "multi_stream_expected_latency_ns",
}
TARGET_UNIT: dict[str, str] = {
    "offline_expected_qps": "samples/s", "server_target_qps": "queries/s",
    "single_stream_expected_latency_ns": "ns", "multi_stream_expected_latency_ns": "ns",
    "ttft_latency": "ns", "tpot_latency": "ns",
}
#: the token latency bounds of Server / Interactive runs (TestSettings names, ns)
BOUND_SETTINGS = ("ttft_latency", "tpot_latency")

PINNED, CACHED, CALIBRATED, NOT_NEEDED = "pinned", "cached", "calibrated", "not-needed"
#: a bound the round fixes (mlperf.conf's ``<model>.Server.ttft_latency``): recorded, never changed
ROUND = "mlperf.conf"


@dataclass(frozen=True)
class Policy:
    """The stated margins and budgets of calibration (recorded with every decision)."""

    offline_headroom: float = 0.15        # expected QPS = measured samples/s x (1 + headroom)
    offline_retry_headroom: float = 1.0   # ... in the one retry after an INVALID run (the last attempt, on a
                                          # machine whose speed was just seen to move: up to 2.2x min duration)
    latency_headroom: float = 0.25        # expected latency = measured query time / (1 + headroom)
    server_margin: float = 0.05           # target QPS = highest VALID probe x (1 - margin)
    server_retry_margin: float = 0.25     # ... in the one retry after an INVALID run: below the lowest of that,
                                          # the target that failed and the rate the failed run completed (its
                                          # machine just ran ~25 % slower than its probes in CI here)
    server_tolerance: float = 0.05        # bisection ends when hi / lo <= 1 + tolerance
    server_max_probes: int = 32           # bracketing + bisection
    server_votes: int = 3                 # probes per target, majority decides (stops once decided): one probe
                                          # in a few is VALID by luck above the peak, or INVALID by a scheduler
                                          # hiccup well below it
    server_rechecks: int = 2              # times the converged bracket's INVALID end is tried again
    server_verify: int = 2                # probes at the chosen target; each INVALID one lowers it by the margin
    server_max_halvings: int = 4          # below the first probe; a system INVALID even there cannot meet the
                                          # latency bound (and each probe would last min_query_count / QPS)
    server_probe_max_s: float = 10.0      # Server probes mirror the timed run up to this min duration
    server_probe_min_queries: int = 1024  # ... and have at least this many queries (early stopping)
    probe_fraction: float = 0.25          # other probes last this fraction of the timed min duration,
    probe_min_s: float = 0.25             # ... at least this
    probe_max_s: float = 5.0              # ... at most this
    offline_probe_max_s: float = 5.0      # the last Offline probe lasts the timed min duration, at most this
    max_probes: int = 8                   # Offline / SingleStream / MultiStream
    find_peak: bool = False
    # LLMs (token latencies): a probe is a generation per sample, so probes are counted in samples, not seconds
    llm_offline_batches: int = 2          # Offline probe: this many batches of the spec's batch size
    llm_unloaded_queries: int = 8         # SingleStream probe of one query at a time: the unloaded latencies
    llm_server_probe_queries: int = 32    # Server probes judged by LoadGen's TTFT/TPOT p99 verdict (the
                                          # "Performance constraints satisfied" line), not by VALID: early
                                          # stopping needs 459 queries (p99), which only the timed run runs
    llm_server_tolerance: float = 0.25    # bisection ends when hi / lo <= 1 + this
    llm_server_max_probes: int = 8
    llm_server_margin: float = 0.3        # target QPS = highest probe within the bounds x (1 - margin)
    llm_server_max_utilization: float = 0.6   # ... searched below this fraction of the batched throughput: with
                                          # Poisson arrivals and partial batches a queue near full-batch throughput
                                          # grows over a 480-query run (seen: 0.6 x it failed TTFT p99 here)
    llm_bound_ttft_factor: float = 2.0    # calibrated bounds (open-division demo): TTFT bound = factor x (the time
                                          # of one batch of the spec's batch size + the unloaded TTFT p99): a
                                          # query arriving while a batch generates waits for it, then is prefilled
    llm_bound_tpot_factor: float = 4.0    # TPOT bound = factor x the unloaded TPOT p99 (a batched decode step
                                          # costs up to ~2x a single one on a CPU)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_POLICY = Policy()
FIND_PEAK_POLICY = Policy(server_margin=0.02, server_tolerance=0.01, server_max_probes=48, server_probe_max_s=20.0,
                          server_votes=5, find_peak=True)


@dataclass(frozen=True)
class ProbeResult:
    """What one probe (a short LoadGen performance run) measured. Rates per second, latencies in ns."""

    label: str
    scenario: str
    settings: Mapping[str, float]          # the probe's overrides (TestSettings names)
    validity: str | None
    wall_s: float
    samples_per_second: float | None = None       # Offline
    query_rate: float | None = None               # SingleStream: QPS w/ loadgen overhead
    mean_latency_ns: float | None = None          # per query (MultiStream's summary has no QPS line)
    completed_qps: float | None = None            # Server
    min_duration_met: bool | None = None
    perf_constraints_met: bool | None = None
    early_stopping_met: bool | None = None
    result_latency_ns: float | None = None
    ttft_p99_ns: float | None = None              # token latencies (LLMs): LoadGen's first-token p99
    tpot_p99_ns: float | None = None              # ... and time-per-output-token p99
    latency_p99_ns: float | None = None           # a whole query's p99 latency
    tokens_per_second: float | None = None        # Offline: result_tokens_per_second; Server: completed
    directory: str = ""
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["settings"] = dict(self.settings)
        return {k: v for k, v in d.items() if v is not None}


#: run one probe: (scenario, label, TestSettings overrides) -> result
ProbeFn = Callable[[str, str, Mapping[str, float]], ProbeResult]


@dataclass
class TargetDecision:
    """How a run's target was chosen. ``value`` is in TestSettings units (QPS, or ns for latencies)."""

    setting: str
    value: float | None
    source: str                            # pinned | cached | calibrated | not-needed
    unit: str = ""
    measured: float | None = None          # samples/s, queries/s or ns per query the value derives from
    measured_unit: str = ""
    method: str = ""
    margin: float | None = None            # the headroom / margin applied
    tolerance: float | None = None         # Server: bisection tolerance
    cost_s: float = 0.0                    # wall seconds the probes took
    probes: list[ProbeResult] = field(default_factory=list)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "probes" and v not in (None, "")}
        d["cost_s"] = round(self.cost_s, 3)
        d["probes"] = [p.to_dict() for p in self.probes]
        return d

    def line(self) -> str:
        """One line for progress output, e.g. ``server_target_qps=1234.5 (calibrated, 9 probes, 8.1 s)``."""
        if self.value is None:
            return f"{self.setting}: {self.source}" + (f" ({self.note})" if self.note else "")
        extra = f", {len(self.probes)} probes, {self.cost_s:.1f} s" if self.source == CALIBRATED else ""
        return f"{self.setting}={_fmt(self.value)} ({self.source}{extra})"


def _bracket(q: float, held: bool, lo: float | None, hi: float | None,
             floor: float) -> tuple[float | None, float | None, float, bool]:
    """One step of the Server target search (queries/s): a rate ``q`` that ``held`` raises the lower end ``lo``
    (and, with no upper end yet, tries 1.5x next); one that did not lowers the upper end ``hi`` (and, with no lower
    end yet, tries half, giving up below ``floor``). Returns (lo, hi, next q, give up); the caller bisects
    geometrically once both ends are known."""
    if held:
        return q, hi, (q * 1.5 if hi is None else q), False
    if lo is None:
        return None, q, q / 2, q / 2 < floor
    return lo, q, q, False


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def probe_seconds(min_duration_ms: float, policy: Policy) -> float:
    """Length of an Offline / SingleStream / MultiStream probe for a timed run of ``min_duration_ms``."""
    return min(policy.probe_max_s, max(policy.probe_min_s, policy.probe_fraction * min_duration_ms / 1000.0))


def _offline(probe: ProbeFn, timed: Mapping[str, float], policy: Policy, batch: int) -> TargetDecision:
    d = min(max(timed["min_duration_ms"] / 1000.0, policy.probe_min_s), policy.offline_probe_max_s)
    n = max(2 * batch, 64)
    probes: list[ProbeResult] = []
    points: list[tuple[int, float]] = []          # (samples, seconds) of each probe
    for i in range(policy.max_probes):
        # target_qps 1 -> LoadGen issues exactly max(min_query_count, 1.1 x d x 1) = n samples
        r = probe("Offline", f"offline-{i + 1}", {"min_duration_ms": round(d * 1000), "min_query_count": n,
                                                  "offline_expected_qps": 1})
        probes.append(r)
        if not r.samples_per_second:
            break
        points.append((n, n / r.samples_per_second))
        if n / r.samples_per_second >= d:
            break
        n = int(min(math.ceil(r.samples_per_second * d * 1.2), n * 50))
    if not points:
        return _failed("offline_expected_qps", probes, "no probe measured a throughput")
    rate = offline_throughput(points)
    return TargetDecision("offline_expected_qps", rate * (1 + policy.offline_headroom), CALIBRATED,
                          unit="samples/s", measured=rate, measured_unit="samples/s",
                          method="offline-throughput", margin=policy.offline_headroom, probes=probes)


def offline_throughput(points: list[tuple[int, float]]) -> float:
    """Throughput (samples/s) from probes of (samples, seconds): the last probe's rate, or the marginal rate of
    the last two when it is higher and they differ enough to measure it (a probe's fixed start-up cost makes a
    short probe understate the speed of a long timed run, whose query would then end before min duration)."""
    n2, t2 = points[-1]
    rate = n2 / t2
    if len(points) >= 2:
        n1, t1 = points[-2]
        if n2 >= 2 * n1 and t2 - t1 >= 0.5 * t2:
            rate = max(rate, (n2 - n1) / (t2 - t1))
    return rate


def _query_rate(probe: ProbeFn, scenario: str, timed: Mapping[str, float], policy: Policy,
                label: str, duration_s: float | None = None) -> tuple[float | None, list[ProbeResult]]:
    """Back-to-back query rate (queries/s) of SingleStream / MultiStream probes lasting ``duration_s``."""
    d = duration_s if duration_s is not None else probe_seconds(timed["min_duration_ms"], policy)
    setting = TARGET_SETTING[scenario]
    expected = 10e6 if scenario == "SingleStream" else 80e6    # mlperf.conf's defaults: 10 ms / 80 ms
    probes: list[ProbeResult] = []
    rate: float | None = None
    for i in range(policy.max_probes):
        r = probe(scenario, f"{label}-{i + 1}", {"min_duration_ms": round(d * 1000), "min_query_count": 16,
                                                 setting: expected})
        probes.append(r)
        measured = r.query_rate or (1e9 / r.mean_latency_ns if r.mean_latency_ns else None)
        if not measured:
            break
        rate = measured
        if r.min_duration_met:
            break
        expected = 1e9 / rate
    return rate, probes


def _stream(probe: ProbeFn, scenario: str, timed: Mapping[str, float], policy: Policy) -> TargetDecision:
    setting = TARGET_SETTING[scenario]
    rate, probes = _query_rate(probe, scenario, timed, policy, scenario.lower())
    if rate is None:
        return _failed(setting, probes, "no probe measured a query rate")
    return TargetDecision(setting, 1e9 / (rate * (1 + policy.latency_headroom)), CALIBRATED, unit="ns",
                          measured=1e9 / rate, measured_unit="ns per query", method="query-rate",
                          margin=policy.latency_headroom, probes=probes)


def _server_valid(r: ProbeResult) -> bool:
    return r.validity == "VALID"


def _server(probe: ProbeFn, timed: Mapping[str, float], policy: Policy) -> TargetDecision:
    single, probes = _query_rate(probe, "SingleStream", timed, policy, "server-single",
                                 duration_s=probe_seconds(timed["min_duration_ms"], policy))
    if single is None:
        return _failed("server_target_qps", probes, "no probe measured a single-query rate")
    mirror_ms = min(timed["min_duration_ms"], policy.server_probe_max_s * 1000)
    if policy.find_peak:
        mirror_ms = min(max(mirror_ms, 2 * timed["min_duration_ms"]), policy.server_probe_max_s * 1000)
    queries = timed.get("min_query_count", 0)
    if timed["min_duration_ms"] > policy.server_probe_max_s * 1000:
        queries = min(queries, policy.server_probe_min_queries)
    queries = max(queries, policy.server_probe_min_queries)
    lo: float | None = None
    hi: float | None = None
    q = single * 0.8
    n_search = 0
    last: ProbeResult | None = None

    def run(qps: float, votes: int = 1) -> bool:
        """Whether ``qps`` holds: the majority of up to ``votes`` probes (stopping once it is decided)."""
        nonlocal n_search, last
        valid = invalid = 0
        need = votes // 2 + 1
        while valid < need and invalid < need:
            n_search += 1
            r = probe("Server", f"server-{n_search}", {"min_duration_ms": round(mirror_ms),
                                                       "min_query_count": queries, "server_target_qps": qps})
            probes.append(r)
            last = r
            if _server_valid(r):
                valid += 1
            else:
                invalid += 1
        return valid >= need

    floor = q / 2 ** policy.server_max_halvings
    rechecks = 0
    while n_search < policy.server_max_probes:
        if lo is not None and hi is not None:
            if hi / lo <= 1 + policy.server_tolerance:
                # converged: test the upper end once more, so that one wrong INVALID verdict cannot keep the
                # search far below the peak
                if rechecks >= policy.server_rechecks or not run(hi, policy.server_votes):
                    break
                rechecks += 1
                lo, hi, q = hi, None, hi * 1.5
                continue
            q = math.sqrt(lo * hi)
        lo, hi, q, give_up = _bracket(q, run(q, policy.server_votes), lo, hi, floor)
        if give_up:
            break
    if lo is None:
        lowest = min(p.settings["server_target_qps"] for p in probes if "server_target_qps" in p.settings)
        why = ("; ".join(_reasons(last)) or "INVALID") if last is not None else "no probe"
        reason = f"no VALID Server probe down to {_fmt(lowest)} queries/s ({why}): the system cannot meet the " \
                 "latency bound at these loads"
        d = _failed("server_target_qps", probes, reason)
        d.value = lowest          # the timed run still runs there, so that LoadGen's own logs say why
        return d
    note = "" if hi is not None else "stopped before an INVALID probe bounded the search"
    target = lo * (1 - policy.server_margin)
    lowered = 0
    for _ in range(policy.server_verify):
        if run(target, policy.server_votes):
            break
        target *= 1 - policy.server_margin
        lowered += 1
    if lowered:
        note = (note + "; " if note else "") + (f"lowered by the margin {lowered}x after INVALID verification "
                                                "probe(s)")
    return TargetDecision("server_target_qps", target, CALIBRATED, unit="queries/s",
                          measured=lo, measured_unit="highest VALID probe, queries/s", method="server-bisection",
                          margin=policy.server_margin, tolerance=policy.server_tolerance, probes=probes, note=note)


def _reasons(r: ProbeResult) -> list[str]:
    out = []
    if r.perf_constraints_met is False:
        out.append("latency above the bound")
    if r.early_stopping_met is False:
        out.append("early stopping not satisfied")
    return out


def _server_accuracy(probe: ProbeFn, timed: Mapping[str, float], policy: Policy) -> TargetDecision:
    single, probes = _query_rate(probe, "SingleStream", timed, policy, "server-single")
    if single is None:
        return _failed("server_target_qps", probes, "no probe measured a single-query rate")
    return TargetDecision("server_target_qps", single * 0.5, CALIBRATED, unit="queries/s", measured=single,
                          measured_unit="single-query rate, queries/s", method="accuracy-schedule", margin=0.5,
                          probes=probes, note="accuracy run: queries scheduled at half the single-query rate")


def _failed(setting: str, probes: list[ProbeResult], reason: str) -> TargetDecision:
    return TargetDecision(setting, None, CALIBRATED, unit=TARGET_UNIT[setting], method="failed", probes=probes,
                          note=reason)


def needs_target(scenario: str, purpose: str) -> bool:
    """Whether a run of ``purpose`` (performance | accuracy) needs the scenario's target at all: accuracy runs
    issue every sample once and ignore it, except Server, whose schedule it sets."""
    return purpose != "accuracy" or scenario in ("Server", "Interactive")


def calibrate(scenario: str, purpose: str, probe: ProbeFn, timed: Mapping[str, float],
              policy: Policy = DEFAULT_POLICY, batch_size: int = 1, *, tokens: bool = False,
              bounds: Mapping[str, float] | None = None, unloaded: ProbeResult | None = None,
              batched: ProbeResult | None = None) -> TargetDecision:
    """Measure the scenario's target with ``probe`` runs. ``timed``: the timed run's effective settings
    (``min_duration_ms``, ``min_query_count``, in TestSettings units). ``tokens``: an LLM (token latencies,
    :func:`calibrate_llm`); ``bounds``: the TTFT/TPOT bounds Server probes must carry (calibrated demo bounds).
    Never raises for a failed measurement: the decision then has ``value`` None (or Server's last probed QPS)
    and a ``note`` saying why."""
    if tokens:
        return calibrate_llm(scenario, purpose, probe, timed, policy, batch_size, bounds or {}, unloaded, batched)
    t0 = time.monotonic()
    if scenario == "Offline":
        d = _offline(probe, timed, policy, batch_size)
    elif scenario in ("SingleStream", "MultiStream"):
        d = _stream(probe, scenario, timed, policy)   # Server and Interactive below
    elif purpose == "accuracy":
        d = _server_accuracy(probe, timed, policy)
    else:
        d = _server(probe, timed, policy)
    d.cost_s = time.monotonic() - t0
    d.unit = TARGET_UNIT[d.setting]
    return d


def pinned(setting: str, value: float, where: str) -> TargetDecision:
    return TargetDecision(setting, value, PINNED, unit=TARGET_UNIT[setting], note=f"given by {where}")


def cached(setting: str, value: float, entry: Mapping[str, Any]) -> TargetDecision:
    """A value of a cache entry; what was measured for it comes from ``entry.details[setting]`` (every decision
    of the run that calibrated it), else from the entry (the target's, as older caches kept it)."""
    details = entry.get("details")
    info = details.get(setting) if isinstance(details, Mapping) and isinstance(details.get(setting), Mapping) \
        else entry
    return TargetDecision(setting, value, CACHED, unit=TARGET_UNIT[setting], measured=info.get("measured"),
                          measured_unit=str(info.get("measured_unit", "")), method=str(info.get("method", "")),
                          note=f"calibrated by run {entry.get('run_id', '?')}")


def not_needed(setting: str) -> TargetDecision:
    return TargetDecision(setting, None, NOT_NEEDED, unit=TARGET_UNIT[setting],
                          note="accuracy runs issue every sample once")


def with_retry_note(d: TargetDecision, note: str) -> TargetDecision:
    return replace(d, note=f"{d.note}; {note}" if d.note else note)


# --------------------------------------------------------------------------------------------- fingerprint

def _cpu_quota(cgroup_root: Path = Path("/sys/fs/cgroup")) -> str | None:
    """The container's CPU limit as ``quota/period`` (cgroup v2 cpu.max or v1 cfs files), None when unlimited."""
    try:
        text = (cgroup_root / "cpu.max").read_text().split()
        if text and text[0] != "max":
            return f"{text[0]}/{text[1] if len(text) > 1 else '100000'}"
        return None
    except OSError:
        pass
    try:
        quota = (cgroup_root / "cpu" / "cpu.cfs_quota_us").read_text().strip()
        period = (cgroup_root / "cpu" / "cpu.cfs_period_us").read_text().strip()
    except OSError:
        return None
    return None if quota in ("-1", "") else f"{quota}/{period}"


def system_fingerprint(system: Mapping[str, Any], backend: str, device: str, batch_size: int) -> str:
    """A short hash of what decides a target's value on this system: architecture, CPU model and the CPUs this
    process may use (affinity and cgroup quota), memory, accelerators, framework and LoadGen versions, backend,
    device, batch size. Not the hostname: identical nodes share calibrations."""
    cpu = system.get("cpu") or {}
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    facts = {
        "machine": system.get("machine"),
        "cpu_model": cpu.get("model") if isinstance(cpu, Mapping) else None,
        "cpus_usable": usable,
        "cpu_quota": _cpu_quota(),
        "memory_total_bytes": system.get("memory_total_bytes"),
        "accelerators": [{k: a.get(k) for k in ("name", "memory_total", "memory_total_mib") if k in a}
                         for a in system.get("accelerators") or [] if isinstance(a, Mapping)],
        "packages": system.get("packages"),
        "backend": backend, "device": device, "batch_size": batch_size,
    }
    canonical = json.dumps(facts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


# --------------------------------------------------------------------------------------------- LLMs

#: LLM probes run without equal-issue mode (mlperf.conf's ``sample_concatenate_permutation = 1`` rounds every
#: query count up to a multiple of the dataset size: 32 queries for an 8-query probe of the demo); the timed run
#: keeps mlperf.conf's setting
NO_EQUAL_ISSUE = {"sample_concatenate_permutation": 0}

def _llm_offline(probe: ProbeFn, timed: Mapping[str, float], policy: Policy, batch: int) -> TargetDecision:
    """One Offline probe of ``llm_offline_batches`` batches (LoadGen issues exactly that many samples with
    target_qps 1 and min_duration 0): samples/s -> ``offline_expected_qps = T x (1 + headroom)``."""
    n = max(1, policy.llm_offline_batches) * max(1, batch)
    r = probe("Offline", "offline-1", {"min_duration_ms": 0, "min_query_count": n, "offline_expected_qps": 1,
                                       **NO_EQUAL_ISSUE})
    if not r.samples_per_second:
        return _failed("offline_expected_qps", [r], "the probe measured no throughput")
    return TargetDecision("offline_expected_qps", r.samples_per_second * (1 + policy.offline_headroom), CALIBRATED,
                          unit="samples/s", measured=r.samples_per_second, measured_unit="samples/s",
                          method="llm-offline-throughput", margin=policy.offline_headroom, probes=[r],
                          note=f"{r.tokens_per_second:.4g} tokens/s" if r.tokens_per_second else "")


def batched_probe(probe: ProbeFn, policy: Policy, batch: int) -> ProbeResult:
    """An Offline probe of ``llm_offline_batches`` batches: the batched throughput (samples/s)."""
    n = max(1, policy.llm_offline_batches) * max(1, batch)
    return probe("Offline", "batched", {"min_duration_ms": 0, "min_query_count": n, "offline_expected_qps": 1,
                                        **NO_EQUAL_ISSUE})


def unloaded_probe(probe: ProbeFn, policy: Policy, label: str = "unloaded") -> ProbeResult:
    """A SingleStream probe of ``llm_unloaded_queries`` queries, one at a time: the unloaded latencies (TTFT, TPOT,
    a whole query) as LoadGen measures them."""
    return probe("SingleStream", label, {"min_duration_ms": 0, "min_query_count": policy.llm_unloaded_queries,
                                         "single_stream_expected_latency_ns": 1e9, **NO_EQUAL_ISSUE})


def calibrated_bounds(r: ProbeResult, batched: ProbeResult, policy: Policy, batch: int) -> list[TargetDecision]:
    """The demo's TTFT/TPOT bounds (open division only: a closed benchmark's are mlperf.conf's) from an unloaded
    probe ``r`` and a batched (Offline) probe: TTFT bound = ``llm_bound_ttft_factor`` x (one batch's time at the
    batched throughput + the unloaded TTFT p99), TPOT bound = ``llm_bound_tpot_factor`` x the unloaded TPOT p99,
    rounded up to whole milliseconds (user.conf's ``ttft_latency`` / ``tpot_latency`` are integers in ms).
    Machine-relative by construction: a 10x slower machine gets 10x wider bounds."""
    batch_ns = batch * 1e9 / batched.samples_per_second if batched.samples_per_second else None
    ttft = batch_ns + r.ttft_p99_ns if batch_ns and r.ttft_p99_ns else None
    out = []
    for setting, measured, factor, what in (
            ("ttft_latency", ttft, policy.llm_bound_ttft_factor, "one batch's time + the unloaded TTFT p99"),
            ("tpot_latency", r.tpot_p99_ns, policy.llm_bound_tpot_factor, "unloaded TPOT p99")):
        if not measured:
            out.append(_failed(setting, [r, batched], f"the probes measured no {what}"))
            continue
        value = math.ceil(measured * factor / 1e6) * 1e6
        out.append(TargetDecision(setting, value, CALIBRATED, unit="ns", measured=measured, measured_unit=f"ns, {what}",
                                  method="measured-x-factor", margin=factor, probes=[r, batched],
                                  note="open-division demo bound measured on this system (the round's bound "
                                       "is for the closed benchmark's model)"))
    return out


def _llm_server(probe: ProbeFn, timed: Mapping[str, float], policy: Policy, bounds: Mapping[str, float],
                unloaded: ProbeResult | None = None, batch: int = 1,
                batched: ProbeResult | None = None) -> TargetDecision:
    """Server / Interactive target QPS of an LLM: the highest QPS at which LoadGen's TTFT and TPOT p99 verdicts
    hold ("Performance constraints satisfied"), by the same bracket-then-bisect as :func:`_server`, with probes
    of ``llm_server_probe_queries`` queries (a verdict, not a VALID run: early stopping needs 459 queries at
    p99, see docs/llm.md) and one vote per target. The batched throughput (an Offline probe of
    ``llm_offline_batches`` batches) x ``llm_server_max_utilization`` is the upper end of the bracket from the
    start: no rate near it is sustainable over a long run, and a short probe there can look fine before its
    backlog builds up. Starts at the lower of 0.8 x
    the unloaded query rate (``unloaded``: the probe the calibrated bounds came from, else a new one) and half
    that throughput."""
    single = unloaded if unloaded is not None else unloaded_probe(probe, policy, "server-unloaded")
    probes = [single]
    rate = 1e9 / single.mean_latency_ns if single.mean_latency_ns else None
    if not rate:
        return _failed("server_target_qps", probes, "the unloaded probe measured no query latency")
    # the batched throughput caps the search: above it no queue is stable, whatever a short probe's p99 says
    # (a probe of a few dozen queries ends before the backlog of an unsustainable rate shows in its latencies)
    if batched is None:
        batched = _llm_offline(probe, timed, policy, batch).probes[0]
    probes.append(batched)
    n = policy.llm_server_probe_queries
    lo: float | None = None
    hi: float | None = batched.samples_per_second * policy.llm_server_max_utilization \
        if batched.samples_per_second else None
    q = min(rate * 0.8, hi * 0.5) if hi else rate * 0.8
    floor = q / 2 ** policy.server_max_halvings
    last: ProbeResult | None = None
    for i in range(policy.llm_server_max_probes):
        if lo is not None and hi is not None:
            if hi / lo <= 1 + policy.llm_server_tolerance:
                break
            q = math.sqrt(lo * hi)
        last = probe("Server", f"server-{i + 1}", {"min_duration_ms": 0, "min_query_count": n,
                                                   "server_target_qps": q, **bounds, **NO_EQUAL_ISSUE})
        probes.append(last)
        lo, hi, q, give_up = _bracket(q, last.perf_constraints_met, lo, hi, floor)
        if give_up:
            break
    if lo is None:
        lowest = min(p.settings["server_target_qps"] for p in probes if "server_target_qps" in p.settings)
        d = _failed("server_target_qps", probes, f"no Server probe met the TTFT/TPOT bounds down to "
                                                 f"{_fmt(lowest)} queries/s: the system cannot meet them")
        d.value = lowest
        return d
    note = "" if hi is not None else "stopped before a probe above the bounds bounded the search"
    return TargetDecision("server_target_qps", lo * (1 - policy.llm_server_margin), CALIBRATED, unit="queries/s",
                          measured=lo, measured_unit="highest QPS within the TTFT/TPOT p99 bounds, queries/s",
                          method="llm-server-bisection", margin=policy.llm_server_margin,
                          tolerance=policy.llm_server_tolerance, probes=probes, note=note)


def calibrate_llm(scenario: str, purpose: str, probe: ProbeFn, timed: Mapping[str, float], policy: Policy,
                  batch_size: int, bounds: Mapping[str, float], unloaded: ProbeResult | None = None,
                  batched: ProbeResult | None = None) -> TargetDecision:
    """The target of an LLM run (token latencies): Offline from one probe's throughput, SingleStream from the
    unloaded query rate, Server / Interactive by :func:`_llm_server` (accuracy runs: half the unloaded rate)."""
    t0 = time.monotonic()
    if scenario == "Offline":
        d = _llm_offline(probe, timed, policy, batch_size)
    elif scenario in ("SingleStream", "MultiStream"):
        r = unloaded_probe(probe, policy, scenario.lower())
        setting = TARGET_SETTING[scenario]
        if not r.mean_latency_ns:
            d = _failed(setting, [r], "the probe measured no query latency")
        else:
            d = TargetDecision(setting, r.mean_latency_ns / (1 + policy.latency_headroom), CALIBRATED, unit="ns",
                               measured=r.mean_latency_ns, measured_unit="ns per query (unloaded mean)",
                               method="llm-query-latency", margin=policy.latency_headroom, probes=[r])
    elif purpose == "accuracy":
        r = unloaded if unloaded is not None else unloaded_probe(probe, policy, "server-unloaded")
        rate = 1e9 / r.mean_latency_ns if r.mean_latency_ns else None
        d = (TargetDecision("server_target_qps", rate * 0.5, CALIBRATED, unit="queries/s", measured=rate,
                            measured_unit="unloaded query rate, queries/s", method="accuracy-schedule", margin=0.5,
                            probes=[r], note="accuracy run: queries scheduled at half the unloaded query rate")
             if rate else _failed("server_target_qps", [r], "the probe measured no query latency"))
    else:
        d = _llm_server(probe, timed, policy, bounds, unloaded, batch_size, batched)
    d.cost_s = time.monotonic() - t0
    d.unit = TARGET_UNIT[d.setting]
    return d
