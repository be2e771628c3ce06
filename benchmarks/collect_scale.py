"""``collect`` at scale: synthesize up to 12,000 harness run directories and collect them into one tree.

The template is one genuine harness run (real LoadGen, the packaged ``reference-digits`` workload, Offline,
``--mode submission`` with short settings). Each synthetic run is a copy with its own run id, system (3,000
systems) and model name (4 open-division models mapped to ``resnet``), so every run lands in its own result
folder; its ``checksums.sha256`` is recomputed. Then ``collect`` runs on the first 1k, 4k and 12k runs, each into
a fresh tree, and once more on 12k into the full tree (the idempotent no-op path).

    python benchmarks/collect_scale.py [--sizes 1000,4000,12000] [--workdir build/collect_scale] [--jobs N]

Prints a table and writes ``benchmarks/results/collect_scale.json``. Target: 12k runs in < 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mlrepro.harness.checksums import read_manifest
from mlrepro.results.check import check_tree
from mlrepro.results.submission import collect

MODELS = ("digits-mlp-a", "digits-mlp-b", "digits-mlp-c", "digits-mlp-d")
TEMPLATE_SPEC = {
    "run_id": "template", "scenario": "Offline", "mode": "submission",
    "workload": {"name": "reference-digits", "backend": "onnxruntime", "batch_size": 32},
    "settings": {"min_duration_ms": 100, "min_query_count": 1},          # the target: calibrated by the harness
    "profile_name": "x86-cpu", "profile_hash": "sha256:" + "ab" * 32, "image": "localhost/mlrepro/x86-cpu:bench",
}


def make_template(work: Path) -> Path:
    """One real harness run (subprocess: LoadGen keeps per-process state)."""
    spec = work / "template-spec.json"
    spec.write_text(json.dumps(TEMPLATE_SPEC))
    out = work / "template"
    shutil.rmtree(out, ignore_errors=True)
    proc = subprocess.run([sys.executable, "-m", "mlrepro.harness", "--spec", str(spec), "--results", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"template harness run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return out / "template"


def synthesize(template: Path, dest: Path, n: int) -> list[Path]:
    """``n`` run directories under ``dest`` (reused when already there)."""
    files = {rel: (template / rel).read_bytes() for rel in read_manifest(template / "checksums.sha256")}
    record = json.loads(files["record.json"])
    system = json.loads(files["system.json"])
    spec = json.loads(files["run.json"])
    dirs = []
    dest.mkdir(parents=True, exist_ok=True)
    made = set(os.listdir(dest))
    for i in range(n):
        run_id = f"bench-{i:05d}"
        d = dest / run_id
        dirs.append(d)
        if run_id in made and (d / "checksums.sha256").exists():
            continue
        node, model = i // len(MODELS), MODELS[i % len(MODELS)]
        record.update(run_id=run_id, finished_at=f"2026-01-01T00:{i // 600 % 60:02d}:{i % 60:02d}.000Z")
        record["workload"]["benchmark"] = model
        record["workload"]["model_mapping"] = "resnet"
        system["cpu"]["model"] = f"Synthetic Fleet CPU node-class {node:04d}"
        spec["run_id"] = run_id
        out = dict(files)
        out["record.json"] = (json.dumps(record, indent=2, sort_keys=True) + "\n").encode()
        out["system.json"] = (json.dumps(system, indent=2, sort_keys=True) + "\n").encode()
        out["run.json"] = (json.dumps(spec, indent=2, sort_keys=True) + "\n").encode()
        manifest = []
        for rel in sorted(out):
            p = d / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(out[rel])
            manifest.append(f"{hashlib.sha256(out[rel]).hexdigest()}  {rel}\n")
        (d / "checksums.sha256").write_text("".join(manifest))
    return dirs


def _cpu() -> float:
    """CPU seconds of this process and its reaped children (collect's worker processes)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,4000,12000")
    ap.add_argument("--workdir", default=str(ROOT / "build" / "collect_scale"))
    ap.add_argument("--jobs", type=int, default=None, help="collect's worker processes (default: CPU count)")
    ap.add_argument("--no-durable", action="store_true", help="skip the os.sync() before the renames")
    ap.add_argument("--keep", action="store_true",
                    help="keep the synthesized runs (reused by the next invocation) and the trees")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "collect_scale.json"))
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)

    t = time.perf_counter()
    template = make_template(work)
    runs = synthesize(template, work / "runs", max(sizes))
    gen_s = time.perf_counter() - t
    print(f"synthesized {len(runs)} run directories in {gen_s:.1f} s "
          f"({sum(1 for _ in read_manifest(template / 'checksums.sha256'))} files each)", flush=True)

    rows = []
    for n in sizes:
        tree = work / f"tree-{n}"
        for p in (tree, tree.parent / f"{tree.name}.mlrepro"):
            shutil.rmtree(p, ignore_errors=True)
        os.sync()
        t, c = time.perf_counter(), _cpu()
        report = collect(runs[:n], tree, submitter="mlrepro-bench", jobs=args.jobs,
                         durable=not args.no_durable)
        secs, cpu = time.perf_counter() - t, _cpu() - c
        assert len(report.placed) == n and not report.rejected, (len(report.placed), report.rejected[:3])
        rows.append({"runs": n, "seconds": round(secs, 2), "runs_per_second": round(n / secs, 1),
                     "cpu_seconds": round(cpu, 1),
                     "units_written": report.written, "systems": len(report.systems), "kind": "fresh tree",
                     "phases": dict(report.timings), "load_average_1m": round(os.getloadavg()[0], 2)})
        print(f"  {n:>6} runs: {secs:7.2f} s  {dict(report.timings)}", flush=True)
    n = max(sizes)
    t, c = time.perf_counter(), _cpu()
    again = collect(runs[:n], work / f"tree-{n}", submitter="mlrepro-bench", jobs=args.jobs)
    secs, cpu = time.perf_counter() - t, _cpu() - c
    assert again.written == 0 and len(again.unchanged) == n
    rows.append({"runs": n, "seconds": round(secs, 2), "runs_per_second": round(n / secs, 1),
                 "cpu_seconds": round(cpu, 1), "units_written": 0,
                 "systems": len(again.systems), "kind": "re-collect (no change)", "phases": dict(again.timings),
                 "load_average_1m": round(os.getloadavg()[0], 2)})
    t = time.perf_counter()
    chk = check_tree(work / f"tree-{n}")
    check_s = time.perf_counter() - t
    errors = len(chk.errors)

    print()
    print(f"{'runs':>7} | {'kind':<22} | {'seconds':>8} | {'CPU s':>7} | {'runs/s':>8} | {'units written':>13} | load")
    print(f"{'-' * 7}-+-{'-' * 22}-+-{'-' * 8}-+-{'-' * 7}-+-{'-' * 8}-+-{'-' * 13}-+-----")
    for r in rows:
        print(f"{r['runs']:>7} | {r['kind']:<22} | {r['seconds']:>8.2f} | {r['cpu_seconds']:>7.1f} | "
              f"{r['runs_per_second']:>8.1f} | {r['units_written']:>13} | {r['load_average_1m']:.1f}")
    print(f"check_tree on the {n}-run tree: {check_s:.1f} s, {errors} errors "
          f"({len(chk.warnings)} warnings: short runs)")
    result = {
        "benchmark": "collect_scale",
        "target": "12000 runs < 60 s on 2 cores",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_average_1m": round(os.getloadavg()[0], 2)},
        "jobs": args.jobs or os.cpu_count(),
        "durable": not args.no_durable,
        "files_per_run": len(read_manifest(template / "checksums.sha256")),
        "synthesize_seconds": round(gen_s, 1),
        "rows": rows,
        "check_seconds": round(check_s, 1),
        "check_errors": errors,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    if not args.keep:
        for n in sizes:
            for p in (work / f"tree-{n}", work / f"tree-{n}.mlrepro"):
                shutil.rmtree(p, ignore_errors=True)
        for p in (work / "runs", work / "template", work / "template-spec.json"):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            elif p.exists():
                p.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
