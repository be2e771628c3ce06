#!/usr/bin/env python3
"""Record what mlrepro's system probe reads on this machine, as a test fixture.

    python3 scripts/sysinfo_snapshot.py OUT_DIR [--capture system_desc.json] [--env KEY=VALUE ...]

writes ``OUT_DIR/root/`` (copies of the kernel files the probe reads: /proc/cpuinfo, /proc/meminfo,
/etc/os-release, the cpu/cache/cpufreq/node/block/net/infiniband/dmi/cgroup entries of /sys),
``OUT_DIR/commands/`` (the output of ``nvidia-smi`` and ``dmidecode -t memory`` where they run),
``OUT_DIR/meta.json`` (uname machine and release, the environment the probe reads) and, with ``--capture``,
``OUT_DIR/mlperf-sysinfo.json``: MLCommons' mlperf-sysinfo capture of the same machine, which the parity
tests compare mlrepro's systems json against (tests/harness/test_sysinfo_parity.py).

Standard library only, so it also runs inside a container or an emulated arm64 image. Symbolic links the
probe follows (a NIC's ``device`` and ``driver``) are recreated inside the snapshot; nothing outside it is
linked. Serial numbers, MAC addresses and host names are not copied.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlrepro.harness.sysinfo.gpu import BASIC_FIELDS, QUERY_FIELDS  # noqa: E402

ENV_KEYS = ("MLREPRO_TARGET", "KUBERNETES_SERVICE_HOST", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES",
            "CUDA_VERSION", "NV_CUDNN_VERSION")


def _copy(src: Path, dest_root: Path) -> None:
    try:
        data = src.read_bytes()
    except OSError:
        return
    dest = dest_root / src.relative_to("/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)


def _glob(pattern: str) -> list[Path]:
    return sorted(Path("/").glob(pattern))


def snapshot_files(out: Path) -> None:
    root = out / "root"
    for name in ("proc/cpuinfo", "proc/meminfo", "etc/os-release", "proc/1/cgroup",
                 "sys/class/dmi/id/sys_vendor", "sys/class/dmi/id/product_name",
                 "sys/fs/cgroup/cpu.max", "sys/fs/cgroup/memory.max",
                 "sys/fs/cgroup/cpu/cpu.cfs_quota_us", "sys/fs/cgroup/cpu/cpu.cfs_period_us",
                 "sys/fs/cgroup/memory/memory.limit_in_bytes"):
        _copy(Path("/") / name, root)
    for marker in (".dockerenv", "run/.containerenv"):
        if (Path("/") / marker).exists():
            (root / marker).parent.mkdir(parents=True, exist_ok=True)
            (root / marker).touch()
    for cpu in _glob("sys/devices/system/cpu/cpu[0-9]*"):
        for rel in ("topology/physical_package_id", "topology/core_id", "cpufreq/cpuinfo_max_freq"):
            _copy(cpu / rel, root)
        for index in sorted(cpu.glob("cache/index[0-9]*")):
            for name in ("level", "type", "size", "shared_cpu_list"):
                _copy(index / name, root)
    for node in _glob("sys/devices/system/node/node[0-9]*"):
        (root / node.relative_to("/")).mkdir(parents=True, exist_ok=True)
        _copy(node / "cpulist", root)     # a file, so that git keeps the folder (it does not keep empty ones)
    for dev in _glob("sys/block/*"):
        for rel in ("size", "removable", "queue/rotational", "device/model"):
            _copy(dev / rel, root)
    for iface in _glob("sys/class/net/*"):
        dest = root / iface.relative_to("/")
        dest.mkdir(parents=True, exist_ok=True)
        for name in ("speed", "type"):
            _copy(iface / name, root)
        device = iface / "device"
        if device.is_symlink():
            target = root / "sys" / "devices" / "net" / iface.name
            target.mkdir(parents=True, exist_ok=True)
            (dest / "device").symlink_to(os.path.relpath(target, dest))
            driver = device / "driver"
            if driver.is_symlink():
                (target / "driver").symlink_to(f"drivers/{os.path.basename(os.readlink(driver))}")
    for dev in _glob("sys/class/infiniband/*"):
        for rel in ("ports/1/link_layer", "ports/1/rate"):
            _copy(dev / rel, root)


def _run(argv: list[str]) -> str | None:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def snapshot_commands(out: Path) -> None:
    commands = out / "commands"
    smi = shutil.which("nvidia-smi")
    if smi:
        for fields, name in ((QUERY_FIELDS, "nvidia-smi-query.csv"), (BASIC_FIELDS, "nvidia-smi-basic.csv")):
            text = _run([smi, f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"])
            if text is not None:
                commands.mkdir(exist_ok=True)
                (commands / name).write_text(text)
                break
        topo = _run([smi, "topo", "-m"])
        if topo is not None:
            (commands / "nvidia-smi-topo.txt").write_text(topo)
    dmidecode = shutil.which("dmidecode")
    if dmidecode and os.access("/sys/firmware/dmi/tables/DMI", os.R_OK):
        text = _run([dmidecode, "-t", "memory"])
        if text:
            commands.mkdir(exist_ok=True)
            (commands / "dmidecode-memory.txt").write_text("\n".join(
                line for line in text.splitlines() if "Serial Number" not in line and "Asset Tag" not in line))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--capture", type=Path, help="mlperf-sysinfo's system_desc.json of this machine")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE the probe should see")
    args = parser.parse_args(argv)
    if args.out.exists():
        parser.error(f"{args.out} exists")
    args.out.mkdir(parents=True)
    snapshot_files(args.out)
    snapshot_commands(args.out)
    env = {k: os.environ[k] for k in ENV_KEYS if k in os.environ}
    env.update(dict(item.split("=", 1) for item in args.env))
    meta = {"machine": platform.machine(), "kernel": platform.release(), "env": env}
    (args.out / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    if args.capture:
        capture = json.loads(args.capture.read_text())
        stamp = capture.get("mlperf_sysinfo") or {}   # keep the versions, drop the capture time
        capture["mlperf_sysinfo"] = {"version": stamp.get("version"), "profile": stamp.get("profile"),
                                     "mlc_scripts": (stamp.get("mlc_scripts") or {}).get("version")}
        (args.out / "mlperf-sysinfo.json").write_text(json.dumps(capture, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
