"""A sweep on the cluster path at scale: 100 and 1,000 runs launched against the Kubernetes API stand-in.

The stand-in (tests/k8s/standin.py, over real HTTP) runs in a process of its own with its fake kubelet, which
completes every Job at once with a copy of one real harness run as its results (so each run of the sweep goes
the whole way: Job resumed, followed by watch, its pod's log saved, its results fetched through a helper pod,
verified, summarized and recorded). Each sweep runs in a fresh launcher process, so its peak RSS is its own.

    python benchmarks/k8s_sweep.py [--sizes 100,1000] [--parallel 50]

Measured: the time from the start of the launch until every Job of the sweep is on the API server (target
< 30 s for 1,000), the whole sweep's time, the watch connections the server saw per resource (target: one per
kind, not one per Job), and the launcher's peak RSS at each size (target: flat as the sweep grows).
Writes benchmarks/results/k8s_sweep.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

IMAGE = "registry.bench/mlrepro/bench@sha256:" + "ab" * 32
TEMPLATE_SPEC = {
    "run_id": "template", "schema": "mlrepro.run/v1", "scenario": "Offline", "mode": "performance",
    "workload": {"name": "null", "backend": "onnxruntime", "batch_size": 32},
    "settings": {"min_duration_ms": 100},    # the harness calibrates its target on this machine
}


def make_template(work: Path) -> Path:
    """One real harness run (the null workload, a fraction of a second) whose results every Job copies."""
    spec = work / "template.json"
    spec.write_text(json.dumps(TEMPLATE_SPEC))
    proc = subprocess.run([sys.executable, "-m", "mlrepro.harness", "--spec", str(spec), "--results",
                           str(work / "template")], capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"template harness run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return work / "template" / "template"


def child(n: int, url: str, parallel: int, work: Path) -> dict:
    """One sweep of ``n`` runs (n profiles x Offline x performance) in this process; its figures."""
    from mlrepro.flow import PipelineOptions, run_pipeline
    from mlrepro.profiles import resolve_profile
    from mlrepro.profiles.loader import ResolvedProfile, profile_hash
    from mlrepro.runners.kubernetes.runner import KubernetesRunner

    kubeconfig = work / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "bench",
        "clusters": [{"name": "s", "cluster": {"server": url}}], "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "bench", "context": {"cluster": "s", "user": "u", "namespace": "bench"}}]}))
    os.environ["KUBECONFIG"] = str(kubeconfig)
    os.environ["MLREPRO_STATE_DIR"] = str(work / "state")
    base = resolve_profile("x86-cpu", sets=["benchmark.scenarios=[Offline]", "benchmark.modes=[performance]"])
    profiles = []
    for i in range(n):   # n distinct profiles (what a sweep over hardware/software variants looks like)
        p = base.profile.model_copy(update={"name": f"bench-{i:04d}"})
        profiles.append(ResolvedProfile(profile=p, hash=profile_hash(p), sources=base.sources))
    marks: dict[str, float] = {}
    submit = KubernetesRunner.submit

    def timed_submit(self, jobs):  # noqa: ANN001, ANN202
        submit(self, jobs)
        marks["submitted"] = time.perf_counter()

    KubernetesRunner.submit = timed_submit  # type: ignore[method-assign]
    started = time.perf_counter()
    result = run_pipeline(profiles, PipelineOptions(target="kubernetes", image=IMAGE, collect=False, into=None,
                                                    parallel=parallel, stream_logs=False))
    ended = time.perf_counter()
    statuses: dict[str, int] = {}
    for r in result.runs:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    return {"runs": n, "parallel": parallel, "statuses": statuses,
            "submitted_s": round(marks["submitted"] - started, 2), "sweep_s": round(ended - started, 2),
            "runs_per_s": round(n / (ended - started), 1),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def one_size(n: int, parallel: int, template: Path, work: Path) -> dict:
    run_dir = work / f"n{n}"
    run_dir.mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen([sys.executable, str(ROOT / "tests" / "k8s" / "serve_standin.py"), "--claims",
                               str(run_dir / "claims"), "--template", str(template)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        url = json.loads(server.stdout.readline())["url"]
        proc = subprocess.run([sys.executable, __file__, "--child", str(n), "--url", url, "--parallel",
                               str(parallel), "--workdir", str(run_dir)], capture_output=True, text=True,
                              timeout=3600, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"the sweep of {n} failed: {proc.stderr[-3000:]}")
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        with urllib.request.urlopen(f"{url}/standin/stats", timeout=30) as resp:
            stats = json.loads(resp.read())
        row["watch_connections"] = stats["watch_connections"]
        row["api_requests"] = stats["requests"]
        return row
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(timeout=60)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100,1000")
    ap.add_argument("--parallel", type=int, default=50)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--url", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "k8s_sweep.json"))
    args = ap.parse_args(argv)
    if args.child is not None:
        print(json.dumps(child(args.child, args.url, args.parallel, Path(args.workdir))))
        return 0
    work = Path(args.workdir or tempfile.mkdtemp(prefix="mlrepro-k8s-sweep-"))
    work.mkdir(parents=True, exist_ok=True)
    template = make_template(work)
    sizes = [int(n) for n in args.sizes.split(",")]
    if min(sizes) <= args.parallel:
        raise SystemExit(f"--sizes: every sweep must be larger than --parallel ({args.parallel}): its Jobs are queued")
    rows = [one_size(n, args.parallel, template, work) for n in sizes]
    print(f"{'runs':>6} {'parallel':>8} {'all Jobs submitted':>19} {'sweep':>8} {'runs/s':>7} "
          f"{'watch connections':>20} {'API requests':>12} {'peak RSS':>9}  statuses")
    for r in rows:
        watches = ", ".join(f"{k} {v}" for k, v in sorted(r["watch_connections"].items()))
        print(f"{r['runs']:>6} {r['parallel']:>8} {r['submitted_s']:>17.1f} s {r['sweep_s']:>6.1f} s "
              f"{r['runs_per_s']:>7.1f} {watches:>20} {r['api_requests']:>12} {r['peak_rss_mib']:>6.0f} MiB  "
              f"{r['statuses']}")
    doc = {"benchmark": "k8s_sweep",
           "targets": {"all_jobs_submitted_s": "< 30 for 1000 runs", "watch_connections": "one per kind",
                       "memory": "flat from 100 to 1000 runs"},
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                       "load_average_1m": round(os.getloadavg()[0], 2)},
           "rows": rows}
    if len(rows) >= 2:
        doc["rss_growth_mib"] = round(rows[-1]["peak_rss_mib"] - rows[0]["peak_rss_mib"], 1)
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
