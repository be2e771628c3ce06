"""Host processor probes: ``/proc/cpuinfo`` and ``/sys/devices/system/{cpu,node}``.

The values are the ones ``lscpu`` prints (and MLCommons' ``mlperf-sysinfo`` copies from it): model name,
sockets, physical cores, logical CPUs, the maximum frequency, the cache summary
(``L1d: 96 KiB (2 instances); ...``) and the NUMA node count. They are read from the same kernel files lscpu
reads, so no binary is needed in the image. Every reader takes a path (tests point it at a fake tree) and
returns ``None`` or an empty value when the source is missing; none raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

# CPU implementer / part codes of /proc/cpuinfo on arm64 (the names lscpu prints)
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
_MODEL_GHZ = re.compile(r"@\s*([0-9]+(?:\.[0-9]+)?)\s*GHz", re.IGNORECASE)


@dataclass(frozen=True)
class CpuInfo:
    model: str | None = None
    vendor: str | None = None
    sockets: int | None = None
    cores: int | None = None        # physical cores, all sockets
    threads: int | None = None      # logical CPUs
    flags: list[str] = field(default_factory=list)
    isa: str | None = None          # "x86_64" / "aarch64": which instruction set /proc/cpuinfo describes


@dataclass(frozen=True)
class CacheLevel:
    """One cache level summed over the machine, as lscpu reports it."""

    name: str                       # L1d, L1i, L2, L3
    size_bytes: int                 # total over all instances
    instances: int


def _int_auto(text: str) -> int | None:
    try:
        return int(text.strip(), 0)
    except ValueError:
        return None


def read_text(path: Path) -> str | None:
    """The file's text, or None when it cannot be read (missing, permission, not a file)."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def parse_cpuinfo(text: str) -> CpuInfo:
    """Parse ``/proc/cpuinfo`` (x86-64 and arm64 layouts). Shape: model, vendor, sockets, physical cores,
    logical CPUs, feature flags and the instruction set the file describes (x86 fields or arm64 fields)."""
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
    isa = "x86_64" if ("vendor_id" in first or "flags" in first) else (
        "aarch64" if "cpu implementer" in first else None)
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
    return CpuInfo(model=model, vendor=vendor, sockets=sockets, cores=cores, threads=threads, flags=flags, isa=isa)


def _cpu_dirs(cpu_dir: Path) -> list[Path]:
    try:
        return sorted((p for p in cpu_dir.glob("cpu[0-9]*") if p.name[3:].isdigit()), key=lambda p: int(p.name[3:]))
    except OSError:
        return []


def read_topology(cpu_dir: Path) -> tuple[int, int] | None:
    """(sockets, physical cores) from ``/sys/devices/system/cpu/cpu*/topology`` (arm64 cpuinfo lacks them)."""
    packages: set[str] = set()
    cores: set[tuple[str, str]] = set()
    for cpu in _cpu_dirs(cpu_dir):
        pkg = read_text(cpu / "topology" / "physical_package_id")
        core = read_text(cpu / "topology" / "core_id")
        if pkg is None or core is None:
            continue
        packages.add(pkg.strip())
        cores.add((pkg.strip(), core.strip()))
    if not packages:
        return None
    return len(packages), len(cores)


def parse_cache_size(text: str) -> int | None:
    """A sysfs cache ``size`` ("48K", "2048K", "32M") in bytes."""
    m = re.fullmatch(r"\s*([0-9]+)\s*([KMG]?)\s*", text or "")
    if not m:
        return None
    return int(m.group(1)) * {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}[m.group(2)]


def read_caches(cpu_dir: Path) -> list[CacheLevel]:
    """Cache levels summed over distinct instances (distinct ``shared_cpu_list``), like ``lscpu``'s summary.

    Source: ``/sys/devices/system/cpu/cpu*/cache/index*/{level,type,size,shared_cpu_list}``."""
    seen: dict[str, dict[str, int]] = {}
    for cpu in _cpu_dirs(cpu_dir):
        try:
            indexes = sorted(p for p in (cpu / "cache").glob("index[0-9]*"))
        except OSError:
            continue
        for index in indexes:
            level, kind = read_text(index / "level"), read_text(index / "type")
            size = parse_cache_size(read_text(index / "size") or "")
            shared = read_text(index / "shared_cpu_list") or read_text(index / "shared_cpu_map") or cpu.name
            if level is None or kind is None or size is None:
                continue
            suffix = {"Data": "d", "Instruction": "i"}.get(kind.strip(), "")
            seen.setdefault(f"L{level.strip()}{suffix}", {}).setdefault(shared.strip(), size)
    order = {"L1d": 0, "L1i": 1, "L1": 2}
    return [CacheLevel(name, sum(instances.values()), len(instances))
            for name, instances in sorted(seen.items(), key=lambda kv: (order.get(kv[0], 3), kv[0]))]


def human_size(n_bytes: int) -> str:
    """Binary size the way util-linux prints it (``size_to_human_string`` with 3-letter suffixes, a space
    and at most two decimals): 98304 -> "96 KiB", 1572864 -> "1.5 MiB"."""
    if n_bytes < 1024:
        return f"{n_bytes} B"
    exp = 0
    while exp < 6 and n_bytes >= 1024 ** (exp + 1):
        exp += 1
    unit = 1024 ** exp
    whole, frac = divmod(n_bytes, unit)
    hundredths = (frac * 100 + unit // 2) // unit
    if hundredths == 100:
        whole, hundredths = whole + 1, 0
    text = f"{whole}.{hundredths:02d}".rstrip("0").rstrip(".") if hundredths else str(whole)
    return f"{text} {'KMGTPE'[exp - 1]}iB"


def format_caches(levels: list[CacheLevel]) -> str:
    """``L1d: 96 KiB (2 instances); L1i: ...`` -- lscpu's summary lines joined as mlperf-sysinfo joins them."""
    return "; ".join(f"{c.name}: {human_size(c.size_bytes)} ({c.instances} instance{'s' if c.instances != 1 else ''})"
                     for c in levels)


def read_max_frequency_mhz(cpu_dir: Path) -> float | None:
    """Highest ``cpufreq/cpuinfo_max_freq`` (kHz in sysfs) over all CPUs, in MHz: lscpu's "CPU max MHz"."""
    best: int | None = None
    for cpu in _cpu_dirs(cpu_dir):
        value = _int_auto(read_text(cpu / "cpufreq" / "cpuinfo_max_freq") or "")
        if value and value > 0:
            best = max(best or 0, value)
    return best / 1000.0 if best else None


def nominal_frequency_ghz(model: str | None) -> float | None:
    """The nominal clock some x86 model names carry ("... CPU @ 2.90GHz")."""
    m = _MODEL_GHZ.search(model or "")
    return float(m.group(1)) if m else None


def count_numa_nodes(node_dir: Path) -> int | None:
    """Number of ``/sys/devices/system/node/node<N>`` directories (lscpu's "NUMA node(s)")."""
    try:
        nodes = [p for p in node_dir.glob("node[0-9]*") if p.name[4:].isdigit()]
    except OSError:
        return None
    return len(nodes) or None


def detect_emulation(machine: str, cpu: CpuInfo) -> str | None:
    """The real instruction set when this process is emulated (qemu-user shows the host's /proc/cpuinfo):
    ``"x86_64"`` for an aarch64 process on an x86-64 CPU, ``"aarch64"`` for the reverse, else None."""
    arm = machine in ("aarch64", "arm64")
    x86 = machine in ("x86_64", "amd64")
    if arm and cpu.isa == "x86_64":
        return "x86_64"
    if x86 and cpu.isa == "aarch64":
        return "aarch64"
    return None
