"""``mlrepro check`` at scale: trees of 1k / 4k / 12k results, each checked in a fresh process.

The trees are real collected trees: one genuine harness run (real LoadGen, the packaged ``reference-digits``
workload, Offline, ``--mode submission``, a one-sample query with no minimum duration) synthesized into N runs of their own systems and model
names and collected (``benchmarks/collect_scale.py`` makes the runs), so each tree holds N result folders with
logs, truncated accuracy logs, kept full logs, systems json, measurements and README records. Each size is checked
``--repeat`` times by ``mlrepro check --output json`` in a new process (median wall time); the figure to meet is
12k results in < 30 s on the 2-core development machine, growing linearly (seconds per result roughly constant).

    python benchmarks/check_scale.py [--sizes 1000,4000,12000] [--repeat 3] [--workdir build/check_scale] [--keep]

Prints a table and writes ``benchmarks/results/check_scale.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import collect_scale
from collect_scale import make_template, synthesize

from mlrepro.results.submission import collect


def check_once(tree: Path) -> tuple[float, dict]:
    """Wall seconds of one ``mlrepro check`` of ``tree`` in a fresh process, and its JSON report."""
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "mlrepro.cli.main", "check", str(tree), "--output", "json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    secs = time.perf_counter() - t
    if proc.returncode not in (0, 1):
        raise SystemExit(f"mlrepro check failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return secs, json.loads(proc.stdout)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,4000,12000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", default=str(ROOT / "build" / "check_scale"))
    ap.add_argument("--keep", action="store_true", help="keep the synthesized runs and trees (reused next time)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "check_scale.json"))
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)

    t = time.perf_counter()
    # min_duration 0 and a one-sample query: VALID on any machine, whatever its speed (a template is data)
    collect_scale.TEMPLATE_SPEC = {**collect_scale.TEMPLATE_SPEC,
                                   "settings": {"min_duration_ms": 0, "min_query_count": 1, "offline_expected_qps": 1}}
    kept = work / "template" / "template"
    template = kept if (kept / "checksums.sha256").is_file() else make_template(work)
    runs = synthesize(template, work / "runs", max(sizes))
    trees = {}
    for n in sizes:
        tree = work / f"tree-{n}"
        if not (tree / "open").is_dir():
            for p in (tree, tree.parent / f"{tree.name}.mlrepro"):
                shutil.rmtree(p, ignore_errors=True)
            report = collect(runs[:n], tree, submitter="mlrepro-bench", durable=False)
            assert len(report.placed) == n and not report.rejected
        trees[n] = tree
    print(f"made {len(sizes)} trees from {len(runs)} runs in {time.perf_counter() - t:.1f} s", flush=True)

    rows = []
    for n in sizes:
        times = []
        doc: dict = {}
        for _ in range(args.repeat):
            secs, doc = check_once(trees[n])
            times.append(secs)
        errors = sum(1 for f in doc["findings"] if f["severity"] == "error")
        assert doc["results"] == n, doc["results"]
        med = statistics.median(times)
        rows.append({"results": n, "seconds": round(med, 2), "all_seconds": [round(x, 2) for x in times],
                     "ms_per_result": round(1000 * med / n, 3), "errors": errors,
                     "warnings": len(doc["findings"]) - errors, "systems": doc["systems"],
                     "load_average_1m": round(os.getloadavg()[0], 2)})
        print(f"  {n:>6} results: {med:6.2f} s (median of {times}), {errors} errors", flush=True)

    base = rows[0]["ms_per_result"]
    print()
    print(f"{'results':>8} | {'seconds':>8} | {'ms/result':>9} | {'vs smallest':>11} | errors | load")
    print(f"{'-' * 8}-+-{'-' * 8}-+-{'-' * 9}-+-{'-' * 11}-+--------+-----")
    for r in rows:
        r["per_result_vs_smallest"] = round(r["ms_per_result"] / base, 2)
        print(f"{r['results']:>8} | {r['seconds']:>8.2f} | {r['ms_per_result']:>9.3f} | "
              f"{r['per_result_vs_smallest']:>10.2f}x | {r['errors']:>6} | {r['load_average_1m']:.1f}")
    result = {
        "benchmark": "check_scale",
        "target": "12000 results < 30 s on 2 cores, linear (ms per result roughly constant)",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "rows": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
