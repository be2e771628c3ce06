"""Collecting results from a cluster's claim: throughput over the ``pods/exec`` stream and peak memory, 100 MiB and
1 GiB.

The Kubernetes API stand-in (tests/k8s/standin.py) runs in a process of its own, over TLS (https/wss, its own CA
in the kubeconfig, as a real API server), with its fake kubelet starting the helper pod. A claim holds one run's
results: a checksum manifest and one file of SIZE (sparse: no disk on that side, but every byte is read, tarred,
encrypted and sent). Each size is collected by a fresh process calling the runner's own
``collect.fetch_from_claim`` (helper pod, ``tar`` over exec, safe extraction to disk, sha256 verification):

    python benchmarks/collect_k8s.py [--sizes 100M,1G] [--repeat 1]

Measured per size, in that process: the copy's wall time from the helper pod running to the results verified on
disk (``copy_s``; MB/s = SIZE / copy_s, 1 MB = 10^6 bytes), the whole fetch with the helper pod's start
(``fetch_s``), and the peak resident set above the start (VmHWM after resetting it, MiB), which should not grow
with SIZE. Writes benchmarks/results/collect_k8s.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
STANDIN = ROOT / "tests" / "k8s" / "serve_standin.py"
IMAGE = "registry.bench/mlrepro/bench@sha256:" + "ab" * 32
NAMESPACE = "bench"
UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(text: str) -> int:
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    return int(float(text[:-1]) * UNITS[text[-1]]) if text[-1:] in UNITS else int(text)


def make_claim(claims: Path, claim: str, run_id: str, size: int) -> None:
    """``<claims>/<ns>/<claim>/<run id>/``: a sparse file of ``size`` bytes and its checksum manifest."""
    run_dir = claims / NAMESPACE / claim / run_id
    run_dir.mkdir(parents=True)
    data = run_dir / "Offline" / "performance" / "run_1" / "mlperf_log_trace.json"
    data.parent.mkdir(parents=True)
    with open(data, "wb") as f:
        f.truncate(size)
    h, zeros, left = hashlib.sha256(), bytes(1 << 20), size
    while left:
        h.update(zeros[: min(left, len(zeros))])
        left -= min(left, len(zeros))
    (run_dir / "checksums.sha256").write_text(f"{h.hexdigest()}  {data.relative_to(run_dir).as_posix()}\n")


def child(kubeconfig: str, claim: str, run_id: str, dest: str) -> dict:
    """One fetch in this process, measured."""
    sys.path.insert(0, str(ROOT / "tests" / "k8s"))
    from peak_memory import reset_peak, status_kib

    from mlrepro.runners.base import KubeTarget
    from mlrepro.runners.kubernetes.api import Cluster
    from mlrepro.runners.kubernetes.collect import fetch_from_claim
    from mlrepro.runners.kubernetes.config import connect
    from mlrepro.runners.kubernetes.watch import Monitor

    cluster = Cluster(connect(KubeTarget(kubeconfig=Path(kubeconfig), namespace=NAMESPACE)))
    monitor = Monitor(cluster)
    events = monitor.subscribe(f"collect:{run_id}")
    import gc

    gc.collect()
    reset_peak()
    start_kib = status_kib("VmRSS")
    marks: dict[str, float] = {}
    began = time.perf_counter()
    fetch_from_claim(cluster, events, run_id, claim, IMAGE, Path(dest), start_timeout_s=120,
                     progress=lambda _m: marks.setdefault("copying", time.perf_counter()))
    ended = time.perf_counter()
    peak_kib = status_kib("VmHWM")
    monitor.close()
    return {"fetch_s": ended - began, "copy_s": ended - marks["copying"], "start_kib": start_kib,
            "peak_kib": peak_kib}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100M,1G")
    ap.add_argument("--repeat", type=int, default=1, help="fetches per size (the figures are the best and worst)")
    ap.add_argument("--child", nargs=4, metavar=("KUBECONFIG", "CLAIM", "RUN_ID", "DEST"), help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "collect_k8s.json")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return 0
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="collect-k8s-") as tmp:
        work = Path(tmp)
        server = subprocess.Popen([sys.executable, str(STANDIN), "--claims", str(work / "claims"), "--tls",
                                   str(work / "tls")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout is not None
            info = json.loads(server.stdout.readline())
            kubeconfig = work / "kubeconfig"
            kubeconfig.write_text(json.dumps({
                "apiVersion": "v1", "kind": "Config", "current-context": "bench",
                "clusters": [{"name": "s", "cluster": {"server": info["url"], "certificate-authority": info["ca"]}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "bench", "context": {"cluster": "s", "user": "u", "namespace": NAMESPACE}}]}))
            for size in sizes:
                runs = []
                for i in range(args.repeat):
                    run_id, claim = f"bench-{size}-{i}", f"bench-{size}-{i}-results"
                    make_claim(work / "claims", claim, run_id, size)
                    dest = work / "dest" / run_id
                    out = subprocess.run([sys.executable, __file__, "--child", str(kubeconfig), claim, run_id,
                                          str(dest)], capture_output=True, text=True, timeout=1800, check=False)
                    if out.returncode != 0:
                        raise SystemExit(f"fetch of {size} bytes failed: {out.stderr[-2000:]}")
                    runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
                    assert (dest / "Offline/performance/run_1/mlperf_log_trace.json").stat().st_size == size
                    shutil.rmtree(dest)
                    shutil.rmtree(work / "claims" / NAMESPACE / claim)
                best = min(runs, key=lambda r: r["copy_s"])
                rows.append({"bytes": size, "mib": size / (1 << 20), "copy_s": round(best["copy_s"], 2),
                             "fetch_s": round(best["fetch_s"], 2),
                             "mb_per_s": round(size / best["copy_s"] / 1e6, 1),
                             "peak_mib_above_start": round(max(r["peak_kib"] - r["start_kib"] for r in runs) / 1024, 1),
                             "repeat": len(runs)})
                print(f"{size / (1 << 20):8.0f} MiB  copy {rows[-1]['copy_s']:6.2f} s  {rows[-1]['mb_per_s']:7.1f} MB/s"
                      f"  peak +{rows[-1]['peak_mib_above_start']:.1f} MiB", flush=True)
        finally:
            if server.stdin is not None:
                server.stdin.close()
            server.wait(timeout=60)
    result = {"benchmark": "collect_k8s", "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
              "python": platform.python_version(), "transport": "TLS (https/wss) to the API stand-in on loopback",
              "sizes": rows}
    if len(rows) > 1:
        result["peak_ratio_largest_to_smallest"] = round(
            max(rows[-1]["peak_mib_above_start"], 0.1) / max(rows[0]["peak_mib_above_start"], 0.1), 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
