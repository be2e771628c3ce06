"""Harness overhead: the full harness (``run_harness`` with the "null" workload) against a trivial LoadGen SUT.

The trivial SUT is written directly against the bindings: its issue callback completes every sample at once with
a zero-length response (``ConstructFastSUT``, GC frozen like the harness): as fast as Python allows. The harness
runs the real path: registry -> NullWorkload -> targets -> user.conf -> SUT/QSL -> logs -> record -> checksums.

Both sides get their targets the same way: the harness's own calibration (:func:`mlrepro.harness.calibration
.calibrate`, default policy), the trivial side through a probe function that runs the trivial SUT. A ratio is
computed only from two VALID runs.

* Offline: samples/s, trivial and harness interleaved, ``OFFLINE_REPEATS`` pairs; the ratio is the median of the
  pairwise ratios of VALID pairs. Goal: >= 0.9.
* Server: the highest VALID target QPS of each side, searched the same way (the calibration's bracket-and-bisect
  on probes with the timed run's settings): max VALID vs max VALID; then one timed harness run at its calibrated
  target, which must be VALID. Goal: >= 0.8.

Run: ``python benchmarks/harness_overhead.py`` (~2 min on 2 cores). Writes benchmarks/results/harness_overhead.json.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlrepro.harness.calibration import DEFAULT_POLICY, ProbeResult, calibrate
from mlrepro.harness.core import run_harness
from mlrepro.harness.loadgen_runner import build_settings, gc_paused, import_loadgen, read_settings, set_mode
from mlrepro.harness.logparse import parse_log_dir
from mlrepro.harness.probes import probe_result
from mlrepro.harness.spec import parse_spec
from mlrepro.harness.userconf import compose_user_conf

MODEL = "resnet50"
OFFLINE_REPEATS = 5
OFFLINE = {"min_duration_ms": 1000, "min_query_count": 1}
SERVER = {"min_duration_ms": 1000, "min_query_count": 1024}
BATCH_SIZE = 32
DATASET = 1024                       # the null workload's default dataset size
GOAL_OFFLINE, GOAL_SERVER = 0.9, 0.8

lg = import_loadgen()
_ROOT = Path(tempfile.mkdtemp(prefix="mlrepro-bench-overhead-"))


def trivial_probe(scenario: str, label: str, overrides: Mapping[str, float]) -> ProbeResult:
    """One LoadGen test of the trivial SUT with mlperf.conf + a user.conf of ``overrides`` (as a harness probe)."""
    outdir = _ROOT / "trivial" / f"{label}-{time.monotonic_ns()}"
    outdir.mkdir(parents=True)
    conf = outdir / "user.conf"
    conf.write_text(compose_user_conf("", MODEL, scenario, {}, overrides))
    built = build_settings(lg, conf, MODEL, scenario, official=False)
    set_mode(lg, built.settings, "performance")
    qsr, complete = lg.QuerySampleResponse, lg.QuerySamplesComplete

    def issue(ids: list[int], indices: list[int]) -> None:
        complete([qsr(i, 0, 0) for i in ids])

    sut = lg.ConstructFastSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(DATASET, DATASET, lambda s: None, lambda s: None)
    log = lg.LogSettings()
    log.log_output.outdir = str(outdir)
    log.enable_trace = False
    t0 = time.monotonic()
    try:
        with gc_paused():
            lg.StartTestWithLogSettings(sut, qsl, built.settings, log, str(outdir / "audit.config"))
    finally:
        lg.DestroyQSL(qsl)
        lg.DestroyFastSUT(sut)
    return probe_result(label, scenario, overrides, parse_log_dir(outdir), time.monotonic() - t0)


def _timed(scenario: str, settings: dict[str, float]) -> dict[str, float]:
    conf = _ROOT / f"timed-{scenario}.conf"
    conf.write_text(compose_user_conf("", MODEL, scenario, settings))
    return read_settings(build_settings(lg, conf, MODEL, scenario, official=False))


def harness(scenario: str, settings: dict[str, float], run_id: str, mode: str = "performance") -> dict[str, Any]:
    spec = parse_spec({"run_id": run_id, "scenario": scenario, "mode": mode, "settings": settings,
                       "workload": {"name": "null", "backend": "none", "batch_size": BATCH_SIZE}})
    result = run_harness(spec, _ROOT / "harness", log=lambda m: None)
    if result.record is None:
        raise SystemExit(f"harness run failed: {result.status}: {result.error}")
    return result.record


def main() -> int:
    t_start, load_before = time.monotonic(), os.getloadavg()
    report: dict[str, Any] = {"policy": DEFAULT_POLICY.to_dict()}

    # Offline: each side calibrated, then interleaved timed runs
    trivial_target = calibrate("Offline", "performance", trivial_probe, _timed("Offline", OFFLINE), DEFAULT_POLICY,
                               BATCH_SIZE)
    assert trivial_target.value is not None
    pairs = []
    for n in range(OFFLINE_REPEATS):
        t = trivial_probe("Offline", f"offline-{n}", {**OFFLINE, "offline_expected_qps": trivial_target.value})
        rec = harness("Offline", OFFLINE, f"offline-{n}")
        h = rec["subruns"][0]["results"] if rec["subruns"] else {}
        pairs.append({"trivial": {"validity": t.validity, "samples_per_second": t.samples_per_second},
                      "harness": {"validity": h.get("validity"), "samples_per_second": h.get("samples_per_second"),
                                  "calibration_s": rec["calibration"]["cost_s"]}})
        print(f"  offline #{n + 1}: trivial {t.samples_per_second or 0:,.0f}/s ({t.validity}), harness "
              f"{h.get('samples_per_second') or 0:,.0f}/s ({h.get('validity')})", flush=True)
    valid = [p for p in pairs if p["trivial"]["validity"] == "VALID" and p["harness"]["validity"] == "VALID"]
    offline_ratio = statistics.median(p["harness"]["samples_per_second"] / p["trivial"]["samples_per_second"]
                                      for p in valid) if valid else None
    report["offline"] = {"settings": OFFLINE, "trivial_target": trivial_target.to_dict(), "pairs": pairs,
                         "valid_pairs": len(valid), "ratio": offline_ratio and round(offline_ratio, 3),
                         "goal": GOAL_OFFLINE, "meets_goal": bool(offline_ratio and offline_ratio >= GOAL_OFFLINE)}

    # Server: the highest VALID target of each side, searched the same way
    trivial_srv = calibrate("Server", "performance", trivial_probe, _timed("Server", SERVER), DEFAULT_POLICY)
    harness_cal = harness("Server", SERVER, "server-calibrate", mode="calibrate")
    harness_srv = harness_cal["calibration"]["targets"][0]
    timed = harness("Server", SERVER, "server-timed")
    timed_res = timed["subruns"][0]["results"] if timed["subruns"] else {}
    t_max, h_max = trivial_srv.measured, harness_srv.get("measured")
    server_ratio = h_max / t_max if t_max and h_max and trivial_srv.method != "failed" \
        and harness_srv.get("method") != "failed" else None
    report["server"] = {"settings": SERVER, "trivial_search": trivial_srv.to_dict(), "harness_search": harness_srv,
                        "trivial_max_valid_qps": t_max, "harness_max_valid_qps": h_max,
                        "ratio": server_ratio and round(server_ratio, 3),
                        "harness_timed_run": {"validity": timed_res.get("validity"),
                                              "completed_samples_per_second":
                                                  timed_res.get("completed_samples_per_second"),
                                              "target": timed["calibration"]["targets"][0].get("value"),
                                              "retried": bool(timed["calibration"]["retry"])},
                        "goal": GOAL_SERVER,
                        "meets_goal": bool(server_ratio and server_ratio >= GOAL_SERVER
                                           and timed_res.get("validity") == "VALID")}
    report["machine"] = {"arch": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
                         "loadgen": importlib.metadata.version("mlcommons-loadgen")}
    report["elapsed_s"] = round(time.monotonic() - t_start, 1)
    report["load_average_before_after"] = [load_before, os.getloadavg()]

    print()
    print(f"{'measure':<44}{'trivial SUT':>14}{'harness':>14}{'ratio':>8}")
    med = lambda side: statistics.median(p[side]["samples_per_second"] for p in valid) if valid else 0  # noqa: E731
    print(f"{'Offline samples/s (VALID pairs: ' + str(len(valid)) + ')':<44}{med('trivial'):>14,.0f}"
          f"{med('harness'):>14,.0f}{(offline_ratio or 0):>8.2f}")
    print(f"{'Server highest VALID target QPS':<44}{(t_max or 0):>14,.0f}{(h_max or 0):>14,.0f}"
          f"{(server_ratio or 0):>8.2f}")
    print(f"harness Server timed run at its calibrated target: {timed_res.get('validity')}")
    print(f"Offline ratio {offline_ratio and round(offline_ratio, 2)} (goal >= {GOAL_OFFLINE}): "
          f"{'met' if report['offline']['meets_goal'] else 'NOT met'}; Server ratio "
          f"{server_ratio and round(server_ratio, 2)} (goal >= {GOAL_SERVER}): "
          f"{'met' if report['server']['meets_goal'] else 'NOT met'}")
    out = Path(__file__).parent / "results" / "harness_overhead.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"wrote {out}")
    return 0 if report["offline"]["meets_goal"] and report["server"]["meets_goal"] else 2


if __name__ == "__main__":
    sys.exit(main())
