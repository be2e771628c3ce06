"""mlperf-sysinfo or mlrepro's own probe? The measurements behind the README's "System description".

  image    the x86-cpu image (air-gapped overlay), cold builds (no layer cache), interleaved:
             base    as mlrepro builds it
             sysinfo + mlperf-sysinfo 1.0.0a12 in the venv
             tools   + mlperf-sysinfo and the tools its probes call (jq numactl dmidecode psmisc systemd
                     linux-perf): without them it apt-get installs them, which a non-root container cannot
  capture  per run, medians: mlrepro's probe (fresh process) vs ``mlperf-sysinfo capture``, on this host
           (native; only when every probe tool is installed, else it would install them as root) and in the
           images as mlrepro runs them (non-root, read-only root filesystem, no network)
  arm64    aarch64 wheels of mlperf-sysinfo's dependency tree (pip download --platform), and both captures in a
           linux/arm64 container under qemu (an image from the local Debian base)
  gpu      ``accelerator: cuda`` in the tools image: what mlperf-sysinfo needs for the GPU fields

    python benchmarks/sysinfo_choice.py [--repeat 3] [--skip-images] [--skip-arm64]

Writes benchmarks/results/sysinfo_choice.json and prints a table. Needs the Docker engine, the local Debian
bases (mlrepro base-images) and PyPI (locks, wheels); mlperf-sysinfo on the host from
scripts/install-mlperf-sysinfo.sh.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results" / "sysinfo_choice.json"
SYSINFO = "mlperf-sysinfo==1.0.0a12"
TOOLS = ["jq", "numactl", "dmidecode", "psmisc", "procps", "systemd", "linux-perf"]
PROBE_TOOLS = ("lscpu", "free", "df", "lsblk", "jq", "numactl", "dmidecode", "pstree", "systemctl", "perf")
CONFIG = """profile: inference
output: {dir: /tmp/out}
system: {name: bench, category: datacenter, availability: available, accelerator: ACCEL, cooling: air}
nodes: {include_local: true}
submission: {submitter: Acme, contact: ops@example.com, division: open, notes: {hardware: hw, software: sw}}
"""
# time inside the container (no engine start-up): "<exit code> <nanoseconds>"
TIMED = 't0=$(date +%s%N); {cmd} >/tmp/log 2>&1; rc=$?; t1=$(date +%s%N); echo "$rc $((t1-t0))"; ' \
        '[ "$rc" = 0 ] || grep -m1 -i -E "error|failed" /tmp/log | cut -c1-300'
ARM64_DOCKERFILE = """FROM {base}
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      python3 python3-venv util-linux {tools} && rm -rf /var/lib/apt/lists/*
COPY wheels/ /wheels/
COPY mlrepro/ /opt/src/mlrepro/
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --no-index --find-links /wheels {req} && rm -rf /wheels
ENV PATH=/opt/venv/bin:/usr/sbin:/usr/bin:/sbin:/bin PYTHONPATH=/opt/src
USER 10001:10001
"""


def median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def overlay(tmp: Path, name: str, apt: list[str] | None) -> Path:
    path = tmp / f"{name}.yaml"
    text = f'packages:\n  pip+: ["{SYSINFO}"]\n'
    if apt:
        text += f"  apt+: [{', '.join(apt)}]\n"
    path.write_text(text)
    return path


def build_images(repeat: int, tmp: Path) -> dict[str, Any]:
    from mlrepro.image.builder import BuildOptions, build_image
    from mlrepro.image.engine import connect
    from mlrepro.profiles.loader import resolve_profile

    client = connect()
    variants = {"base": ["air-gapped"],
                "sysinfo": ["air-gapped", str(overlay(tmp, "sysinfo", None))],
                "tools": ["air-gapped", str(overlay(tmp, "tools", TOOLS))]}
    seconds: dict[str, list[float]] = {k: [] for k in variants}
    out: dict[str, Any] = {}
    for _ in range(repeat):
        for name, overlays in variants.items():        # interleaved: load on this machine drifts
            started = time.monotonic()
            result = build_image(resolve_profile("x86-cpu", overlays), BuildOptions(nocache=True, force=True))
            seconds[name].append(time.monotonic() - started)
            size = int(client.images.get(result.ref).attrs["Size"])
            out[name] = {"image": result.ref, "size_mb": round(size / 1e6, 1)}
            print(f"  build {name}: {seconds[name][-1]:.1f} s, {size / 1e6:.0f} MB", flush=True)
    for name in variants:
        out[name]["cold_build_s"] = median(seconds[name])
        out[name]["cold_build_runs_s"] = [round(s, 1) for s in seconds[name]]
        out[name]["size_vs_base"] = round(out[name]["size_mb"] / out["base"]["size_mb"], 3)
        out[name]["build_vs_base"] = round(out[name]["cold_build_s"] / out["base"]["cold_build_s"], 3)
    return out


def run_in(image: str, cmd: str, config: str | None = None, platform_: str | None = None) -> tuple[int, float, str]:
    """(exit code, seconds inside, first error line) of ``cmd`` in ``image`` as mlrepro runs it."""
    from mlrepro.image.engine import connect

    volumes = {}
    if config is not None:
        cfg = Path(tempfile.mkdtemp()) / "sysinfo.yaml"
        cfg.write_text(config)
        cfg.chmod(0o644)
        cfg.parent.chmod(0o755)
        volumes = {str(cfg.parent): {"bind": "/config", "mode": "ro"}}
    out = connect(timeout=1800).containers.run(
        image, ["-c", TIMED.format(cmd=cmd)], entrypoint="sh", remove=True, user="10001:10001", read_only=True,
        tmpfs={"/tmp": "rw,size=256m"}, network_disabled=True, environment={"HOME": "/tmp"}, volumes=volumes,
        platform=platform_)
    lines = out.decode().strip().splitlines()
    rc, ns = lines[0].split()
    return int(rc), int(ns) / 1e9, (lines[1] if len(lines) > 1 else "")


def capture_in_image(image: str, repeat: int, accel: str = "none", platform_: str | None = None) -> dict[str, Any]:
    config = CONFIG.replace("ACCEL", accel)
    runs = [run_in(image, "mlperf-sysinfo capture -c /config/sysinfo.yaml", config, platform_) for _ in range(repeat)]
    ok = [s for rc, s, _ in runs if rc == 0]
    return {"ok": len(ok) == len(runs), "median_s": median(ok), "runs": [[rc, round(s, 2)] for rc, s, _ in runs],
            "error": next((e for rc, _, e in runs if rc != 0), "")}


def probe_in_image(image: str, repeat: int, platform_: str | None = None) -> dict[str, Any]:
    runs = [run_in(image, "python3 -m mlrepro.harness.sysinfo", None, platform_) for _ in range(repeat)]
    return {"ok": all(rc == 0 for rc, _, _ in runs), "median_s": median([s for _, s, _ in runs])}


def native(repeat: int, tmp: Path) -> dict[str, Any]:
    exe = ROOT / ".tools" / "bin" / "mlperf-sysinfo"
    probe = []
    for _ in range(max(repeat, 5)):
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "mlrepro.harness.sysinfo"], capture_output=True, check=True)
        probe.append(time.monotonic() - started)
    from mlrepro.harness.sysinfo import collect_system

    inproc = [collect_system()["probe_seconds"] for _ in range(5)]
    out: dict[str, Any] = {"mlrepro_probe_s": median(probe), "mlrepro_probe_in_process_s": median(inproc)}
    missing = [t for t in PROBE_TOOLS if shutil.which(t) is None]
    if not exe.exists() or missing:
        out["mlperf_sysinfo"] = {"ok": False, "error": f"not measured: missing {missing or [str(exe)]} (as root it "
                                                        "would apt-get install them)"}
        return out
    cfg = tmp / "native.yaml"
    cfg.write_text(CONFIG.replace("ACCEL", "none").replace("/tmp/out", str(tmp / "native-out")))
    cold, warm = [], []
    for i in range(repeat):
        home = tmp / f"home{i}"
        for bucket in (cold, warm):                     # a fresh HOME re-indexes mlc-scripts; then warm
            started = time.monotonic()
            proc = subprocess.run([str(exe), "capture", "-c", str(cfg)], capture_output=True, text=True,
                                  env={**os.environ, "HOME": str(home)}, check=False)
            bucket.append(time.monotonic() - started)
            if proc.returncode != 0:
                return {**out, "mlperf_sysinfo": {"ok": False, "error": proc.stderr.strip()[-300:]}}
    out["mlperf_sysinfo"] = {"ok": True, "cold_home_s": median(cold), "warm_home_s": median(warm)}
    return out


def arm64(repeat: int, tmp: Path) -> dict[str, Any]:
    from mlrepro.image.engine import connect

    wheels = tmp / "arm64" / "wheels"
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--python-version",
                           "3.11", "--platform", "manylinux_2_28_aarch64", "--platform", "manylinux2014_aarch64",
                           "-d", str(wheels), SYSINFO], capture_output=True, text=True, check=False)
    files = sorted(p.name for p in wheels.glob("*")) if wheels.is_dir() else []
    out: dict[str, Any] = {"wheels_ok": proc.returncode == 0, "wheels": len(files),
                           "native_wheels": [f for f in files if "aarch64" in f],
                           "wheels_mb": round(sum(p.stat().st_size for p in wheels.glob("*")) / 1e6, 1)}
    if proc.returncode != 0:
        out["error"] = proc.stderr.strip()[-300:]
        return out
    ctx = tmp / "arm64"
    shutil.copytree(ROOT / "mlrepro", ctx / "mlrepro", ignore=shutil.ignore_patterns("__pycache__"))
    (ctx / "Dockerfile").write_text(ARM64_DOCKERFILE.format(base="mlrepro/debian:bookworm-arm64",
                                                            tools=" ".join(TOOLS), req=SYSINFO))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(ctx, arcname=".")
    buf.seek(0)
    client = connect(timeout=3600)
    started = time.monotonic()
    client.images.build(fileobj=buf, custom_context=True, tag="mlrepro-bench/sysinfo-arm64:latest",
                        platform="linux/arm64", rm=True, forcerm=True)
    out["image_build_s"] = round(time.monotonic() - started, 1)
    out["capture"] = capture_in_image("mlrepro-bench/sysinfo-arm64:latest", repeat, platform_="linux/arm64")
    out["mlrepro_probe"] = probe_in_image("mlrepro-bench/sysinfo-arm64:latest", repeat, platform_="linux/arm64")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-images", action="store_true")
    parser.add_argument("--skip-arm64", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    report: dict[str, Any] = {"host": {"machine": platform.machine(), "cpus": os.cpu_count(),
                                       "python": platform.python_version()}, "mlperf_sysinfo": SYSINFO}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        print("native captures", flush=True)
        report["native"] = native(args.repeat, tmp)
        if not args.skip_images:
            print("cold image builds", flush=True)
            images = report["images"] = build_images(max(1, args.repeat - 1), tmp)
            print("captures in the images (non-root, read-only, no network)", flush=True)
            report["container"] = {
                "mlrepro_probe": probe_in_image(images["base"]["image"], args.repeat),
                "sysinfo_only": capture_in_image(images["sysinfo"]["image"], 1),
                "with_tools": capture_in_image(images["tools"]["image"], args.repeat),
                "gpu_accelerator_cuda": capture_in_image(images["tools"]["image"], 1, accel="cuda"),
            }
        if not args.skip_arm64:
            print("arm64 under qemu", flush=True)
            report["arm64"] = arm64(max(1, args.repeat - 1), tmp)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
