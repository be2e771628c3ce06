"""Calibration probes: short LoadGen performance runs of the run's own workload, in this process.

A probe loads mlperf.conf + a probe user.conf (the run's composed user.conf with the probe's overrides appended,
:func:`mlrepro.harness.userconf.compose_user_conf`) through the explicit path of
:func:`mlrepro.harness.loadgen_runner.build_settings`, so the timed run's single-conf call stays the first. Its
logs stay in ``<run>/<Scenario>/calibration/<label>/`` (with the probe's user.conf) as evidence of how the
targets were found.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType

from mlrepro.harness.calibration import ProbeResult
from mlrepro.harness.checksums import atomic_write_text
from mlrepro.harness.layout import USER_CONF
from mlrepro.harness.loadgen_runner import LoadgenSession, build_settings, set_mode
from mlrepro.harness.logparse import ParsedLogs, parse_log_dir
from mlrepro.harness.spec import RunSpec
from mlrepro.harness.userconf import compose_user_conf
from mlrepro.harness.workloads.base import Workload


class ProbeFailed(Exception):
    """The workload failed during a probe (the original exception is ``__cause__``)."""


class LoadgenProber:
    """A :data:`~mlrepro.harness.calibration.ProbeFn` that runs real LoadGen probes of ``workload`` under
    ``root`` (``rel_root``: the same directory relative to the run directory, for the record). A workload failure
    inside a probe raises ProbeFailed (chained to the failure); Ctrl-C propagates as KeyboardInterrupt. After
    either, ``detached`` tells whether LoadGen is still running in its thread (the process must then exit
    without closing the workload)."""

    def __init__(self, lg: ModuleType, workload: Workload, spec: RunSpec, model: str, root: Path, rel_root: str,
                 *, fail_fast: bool = False, progress: Callable[[str], None] | None = None) -> None:
        self.lg, self.workload, self.spec, self.model = lg, workload, spec, model
        self.root, self.rel_root, self.fail_fast = root, rel_root, fail_fast
        self.progress = progress
        self.detached = False

    def __call__(self, scenario: str, label: str, overrides: Mapping[str, float]) -> ProbeResult:
        lg, spec = self.lg, self.spec
        outdir = self.root / label
        outdir.mkdir(parents=True, exist_ok=True)
        conf = outdir / USER_CONF
        atomic_write_text(conf, compose_user_conf(spec.user_conf, self.model, scenario, spec.settings, overrides,
                                                  note=f"calibration probe {label}",
                                                  targets_heading="the probe's settings"))
        built = build_settings(lg, conf, self.model, scenario, official=False)
        set_mode(lg, built.settings, "performance")
        t0 = time.monotonic()
        session = LoadgenSession(lg, self.workload, built.settings, scenario, "performance", outdir,
                                 outdir / "no-audit.config", enable_trace=False, fail_fast=self.fail_fast)
        try:
            info = session.run()
        except KeyboardInterrupt:
            self.detached = True
            raise
        wall = time.monotonic() - t0
        if info.failure is not None:
            self.detached = info.detached
            raise ProbeFailed(f"calibration probe {label}: {info.failure}") from info.failure
        result = probe_result(label, scenario, overrides, parse_log_dir(outdir), wall, f"{self.rel_root}/{label}")
        if self.progress is not None:
            self.progress(f"mlrepro-harness: calibration probe {label}: {describe(result)}")
        return result


def describe(r: ProbeResult) -> str:
    """One line: what the probe asked and what it measured (``2,000 qps -> VALID in 1.2 s``)."""
    asked = r.settings.get("server_target_qps")
    if asked is not None and (r.ttft_p99_ns is not None or r.tpot_p99_ns is not None):
        verdict = {True: "within the bounds", False: "above the bounds", None: "no verdict"}[r.perf_constraints_met]
        ttft = f"{r.ttft_p99_ns / 1e6:,.0f}" if r.ttft_p99_ns is not None else "?"
        tpot = f"{r.tpot_p99_ns / 1e6:,.1f}" if r.tpot_p99_ns is not None else "?"
        return f"{asked:,.3g} queries/s -> TTFT p99 {ttft} ms, TPOT p99 {tpot} ms: {verdict} ({r.wall_s:.1f} s)"
    if asked is not None:
        return f"{asked:,.0f} queries/s -> {r.validity or 'no result'} ({r.wall_s:.1f} s)"
    if r.samples_per_second:
        return f"{r.samples_per_second:,.0f} samples/s ({r.wall_s:.1f} s)"
    rate = r.query_rate or (1e9 / r.mean_latency_ns if r.mean_latency_ns else None)
    return f"{rate:,.0f} queries/s back to back ({r.wall_s:.1f} s)" if rate else f"no result ({r.wall_s:.1f} s)"


def probe_result(label: str, scenario: str, overrides: Mapping[str, float], logs: ParsedLogs, wall_s: float,
                 directory: str = "") -> ProbeResult:
    """What calibration needs from a probe's LoadGen logs."""
    s = logs.summary
    res = logs.detail.results if logs.detail is not None else {}

    def num(key: str) -> float | None:
        v = res.get(key)
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    return ProbeResult(
        label=label, scenario=scenario, settings=dict(overrides), validity=logs.validity, wall_s=round(wall_s, 4),
        samples_per_second=s.samples_per_second if s else None,
        query_rate=s.qps_with_loadgen_overhead if s else None,
        mean_latency_ns=s.mean_latency_ns if s else None,
        completed_qps=s.completed_samples_per_second if s else None,
        min_duration_met=s.min_duration_satisfied if s else None,
        perf_constraints_met=s.performance_constraints_satisfied if s else None,
        early_stopping_met=s.early_stopping_satisfied if s else None,
        result_latency_ns=s.result_latency_ns if s else None,
        ttft_p99_ns=num("result_first_token_99.00_percentile_latency_ns"),
        tpot_p99_ns=num("result_time_per_output_token_99.00_percentile_ns"),
        latency_p99_ns=num("result_99.00_percentile_latency_ns"),
        tokens_per_second=num("result_tokens_per_second") or num("result_completed_tokens_per_second"),
        directory=directory,
    )
