"""System description captured where the harness runs (``system.json``).

Each probe is a pure function over text (or paths) so tests feed fake ``/proc`` files; :func:`collect_system`
wires them to the real files. Probes never raise: an unreadable source gives ``None``.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: distributions whose versions the record carries; first installed alias wins
PACKAGES: dict[str, tuple[str, ...]] = {
    "numpy": ("numpy",),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu"),
    "torch": ("torch",),
    "loadgen": ("mlcommons-loadgen", "mlcommons_loadgen", "mlperf-loadgen"),
}

# CPU implementer / part codes of /proc/cpuinfo on arm64 (what lscpu prints)
_ARM_IMPLEMENTERS: dict[int, str] = {
    0x41: "ARM", 0x42: "Broadcom", 0x43: "Cavium", 0x46: "Fujitsu", 0x48: "HiSilicon", 0x4E: "NVIDIA",
    0x50: "APM", 0x51: "Qualcomm", 0x61: "Apple", 0x6D: "Microsoft", 0xC0: "Ampere",
}
_ARM_PARTS: dict[tuple[int, int], str] = {
    (0x41, 0xD03): "Cortex-A53", (0x41, 0xD04): "Cortex-A35", (0x41, 0xD05): "Cortex-A55",
    (0x41, 0xD07): "Cortex-A57", (0x41, 0xD08): "Cortex-A72", (0x41, 0xD09): "Cortex-A73",
    (0x41, 0xD0A): "Cortex-A75", (0x41, 0xD0B): "Cortex-A76", (0x41, 0xD0C): "Neoverse-N1",
    (0x41, 0xD0D): "Cortex-A77", (0x41, 0xD40): "Neoverse-V1", (0x41, 0xD41): "Cortex-A78",
    (0x41, 0xD49): "Neoverse-N2", (0x41, 0xD4F): "Neoverse-V2", (0x41, 0xD8E): "Neoverse-N3",
    (0x41, 0xD84): "Neoverse-V3", (0x48, 0xD01): "Kunpeng-920", (0xC0, 0xAC3): "Ampere-1",
    (0xC0, 0xAC4): "Ampere-1a", (0x4E, 0x004): "Carmel", (0x50, 0x000): "X-Gene",
}


@dataclass(frozen=True)
class CpuInfo:
    model: str | None = None
    vendor: str | None = None
    sockets: int | None = None
    cores: int | None = None        # physical cores, all sockets
    threads: int | None = None      # logical CPUs
    flags: list[str] = field(default_factory=list)


def _int_auto(text: str) -> int | None:
    try:
        return int(text.strip(), 0)
    except ValueError:
        return None


def parse_cpuinfo(text: str) -> CpuInfo:
    """Parse ``/proc/cpuinfo`` (x86-64 and arm64 layouts)."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        if ":" not in line:
            continue
        key, _, value = line.partition(":")
        current.setdefault(key.strip().lower(), value.strip())
    if current:
        blocks.append(current)
    processors = [b for b in blocks if "processor" in b and _int_auto(b["processor"]) is not None]
    threads = len(processors) or None
    first = processors[0] if processors else (blocks[0] if blocks else {})
    model = first.get("model name") or None
    vendor = first.get("vendor_id") or None
    flags = (first.get("flags") or first.get("features") or "").split()
    if model is None:
        impl = _int_auto(first.get("cpu implementer", ""))
        part = _int_auto(first.get("cpu part", ""))
        if impl is not None:
            vendor = _ARM_IMPLEMENTERS.get(impl, f"implementer 0x{impl:02x}")
            name = _ARM_PARTS.get((impl, part)) if part is not None else None
            model = f"{vendor} {name}" if name else (
                f"{vendor} part 0x{part:03x}" if part is not None else vendor)
    if model is None:
        # some boards put the model in the trailing block
        for b in blocks:
            if b.get("model") or b.get("hardware"):
                model = b.get("model") or b.get("hardware")
                break
    physical = {b.get("physical id") for b in processors if "physical id" in b}
    sockets = len(physical) or None
    cores: int | None = None
    core_pairs = {(b.get("physical id"), b.get("core id")) for b in processors if "core id" in b}
    if core_pairs:
        cores = len(core_pairs)
    elif processors and "cpu cores" in first:
        per_socket = _int_auto(first["cpu cores"])
        cores = per_socket * (sockets or 1) if per_socket else None
    return CpuInfo(model=model, vendor=vendor, sockets=sockets, cores=cores, threads=threads, flags=flags)


def read_topology(cpu_dir: Path) -> tuple[int, int] | None:
    """(sockets, physical cores) from ``/sys/devices/system/cpu/cpu*/topology`` (arm64 cpuinfo lacks them)."""
    packages: set[str] = set()
    cores: set[tuple[str, str]] = set()
    try:
        cpus = sorted(p for p in cpu_dir.glob("cpu[0-9]*") if p.name[3:].isdigit())
    except OSError:
        return None
    for cpu in cpus:
        pkg = _read(cpu / "topology" / "physical_package_id")
        core = _read(cpu / "topology" / "core_id")
        if pkg is None or core is None:
            continue
        packages.add(pkg.strip())
        cores.add((pkg.strip(), core.strip()))
    if not packages:
        return None
    return len(packages), len(cores)


def parse_meminfo(text: str) -> int | None:
    """``MemTotal`` of ``/proc/meminfo`` in bytes."""
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                unit = parts[2].lower() if len(parts) > 2 else "kb"
                return int(parts[1]) * (1024 if unit == "kb" else 1)
    return None


def parse_os_release(text: str) -> str | None:
    """``PRETTY_NAME`` of ``/etc/os-release``."""
    fallback: str | None = None
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        value = value.strip().strip('"').strip("'")
        if key.strip() == "PRETTY_NAME" and value:
            return value
        if key.strip() == "NAME" and value:
            fallback = value
    return fallback


_CGROUP_MARKERS = (("kubepods", "kubernetes"), ("docker", "docker"), ("containerd", "containerd"),
                   ("libpod", "podman"), ("lxc", "lxc"))


def detect_container(dockerenv_exists: bool, containerenv_exists: bool, cgroup_text: str | None,
                     env: Mapping[str, str]) -> dict[str, Any]:
    """Whether the harness runs in a container, and which kind (best effort)."""
    kind: str | None = None
    if env.get("KUBERNETES_SERVICE_HOST"):
        kind = "kubernetes"
    if kind is None and cgroup_text:
        for marker, name in _CGROUP_MARKERS:
            if marker in cgroup_text:
                kind = name
                break
    if kind is None and dockerenv_exists:
        kind = "docker"
    if kind is None and containerenv_exists:
        kind = "podman"
    return {"in_container": kind is not None, "kind": kind}


def parse_nvidia_smi(text: str) -> list[dict[str, str]]:
    """Lines of ``nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader``."""
    gpus = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 3 and parts[0]:
            gpus.append({"name": parts[0], "memory_total": parts[1], "driver_version": parts[2]})
    return gpus


Runner = Callable[[Sequence[str], float], "str | None"]


def _run_command(argv: Sequence[str], timeout: float) -> str | None:
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def query_gpus(which: Callable[[str], str | None] = shutil.which, run: Runner = _run_command) -> list[dict[str, str]]:
    """NVIDIA GPUs visible here (empty when nvidia-smi is absent or fails)."""
    exe = which("nvidia-smi")
    if not exe:
        return []
    out = run([exe, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"], 15.0)
    return parse_nvidia_smi(out) if out else []


def package_versions(packages: Mapping[str, Sequence[str]] = PACKAGES) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for label, dists in packages.items():
        versions[label] = None
        for dist in dists:
            try:
                versions[label] = importlib.metadata.version(dist)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return versions


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


@dataclass(frozen=True)
class SystemPaths:
    """Where the probes read; tests point these at fake files."""

    cpuinfo: Path = Path("/proc/cpuinfo")
    meminfo: Path = Path("/proc/meminfo")
    os_release: Path = Path("/etc/os-release")
    dockerenv: Path = Path("/.dockerenv")
    containerenv: Path = Path("/run/.containerenv")
    cgroup: Path = Path("/proc/1/cgroup")
    cpu_sysfs: Path = Path("/sys/devices/system/cpu")


def collect_system(paths: SystemPaths = SystemPaths(), env: Mapping[str, str] | None = None,
                   gpu_probe: Callable[[], list[dict[str, str]]] = query_gpus) -> dict[str, Any]:
    """The system description (JSON-ready dict)."""
    environ = os.environ if env is None else env
    cpu_text = _read(paths.cpuinfo)
    cpu = parse_cpuinfo(cpu_text) if cpu_text is not None else CpuInfo()
    if cpu.threads is None:
        cpu = CpuInfo(model=cpu.model, vendor=cpu.vendor, sockets=cpu.sockets, cores=cpu.cores,
                      threads=os.cpu_count(), flags=cpu.flags)
    if cpu.sockets is None or cpu.cores is None:
        topo = read_topology(paths.cpu_sysfs)
        if topo is not None:
            cpu = CpuInfo(model=cpu.model, vendor=cpu.vendor, sockets=cpu.sockets or topo[0],
                          cores=cpu.cores or topo[1], threads=cpu.threads, flags=cpu.flags)
    if cpu.model is None and platform.processor():
        cpu = CpuInfo(model=platform.processor(), vendor=cpu.vendor, sockets=cpu.sockets, cores=cpu.cores,
                      threads=cpu.threads, flags=cpu.flags)
    mem_text = _read(paths.meminfo)
    os_text = _read(paths.os_release)
    cpu_dict = asdict(cpu)
    cpu_dict.pop("flags")
    try:
        hostname = socket.gethostname()
    except OSError:
        hostname = None
    return {
        "hostname": hostname,
        "machine": platform.machine(),
        "cpu": cpu_dict,
        "memory_total_bytes": parse_meminfo(mem_text) if mem_text else None,
        "os": parse_os_release(os_text) if os_text else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "accelerators": gpu_probe(),
        "packages": package_versions(),
        "container": detect_container(paths.dockerenv.exists(), paths.containerenv.exists(),
                                      _read(paths.cgroup), environ),
        "cuda_visible_devices": environ.get("CUDA_VISIBLE_DEVICES"),
        "executable": sys.executable,
    }
