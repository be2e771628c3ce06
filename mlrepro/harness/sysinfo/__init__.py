"""System description captured where the harness runs (``system.json``).

One probe, standard library only, offline, unprivileged, a few milliseconds: it reads the kernel files
``lscpu``/``lsblk``/``free`` read and runs the GPU vendors' tools (``nvidia-smi``; ``amd-smi``/``rocm-smi``;
``xpu-smi`` or sysfs in a container) and ``dmidecode`` when root, if present. It fills
every field MLCommons' ``mlperf-sysinfo`` (``capture --profile inference``) detects, from the same sources;
``mlrepro.results.systems`` turns it into the submission's ``systems/<id>.json``. Why mlrepro does not run
mlperf-sysinfo itself is measured in the README ("System description").

Each reader takes its path (tests point :class:`SystemPaths` at a fake tree) and never raises: an unreadable
source gives None or an empty list. ``python -m mlrepro.harness.sysinfo`` prints the probe as JSON.

``system.json`` (schema 2)::

    schema, hostname, machine, kernel, os, python, python_implementation, executable,
    cpu {model, vendor, sockets, cores, threads, max_mhz, caches [{name, size_bytes, instances}], emulated_on,
         hypervisor},
    numa_nodes, memory_total_bytes, memory_dimms [{size_bytes, type, speed_mts, manufacturer}],
    dmi {vendor, product}, disks [{name, size_bytes, kind, model}], nics [{name, driver, speed_mbps, type}],
    rdma [{name, link_layer, rate}],
    accelerators [{index, uuid, name, memory_total_mib, driver_version, max_sm_clock_mhz, pcie_gen_max,
                   pcie_width_max, compute_capability, memory_type, host_interconnect, vendor}],
    accelerator_probe ("nvidia-smi" | "amd-smi" | "rocm-smi" | "xpu-smi" | "sysfs" | "torch" | null),
    accelerator_interconnect {kind, links, topology},
    cuda {cuda, cudnn}, rocm {rocm, hip} (AMD), packages {numpy, onnxruntime, torch, loadgen},
    container {in_container, kind},
    execution {target, source, node_name, cpus_allowed, limits {cpus, memory_bytes}}, cuda_visible_devices,
    host {...the host's probe, Docker target only}, probe_seconds
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlrepro.harness.sysinfo import amd as _amd
from mlrepro.harness.sysinfo import gpu as _gpu
from mlrepro.harness.sysinfo import intel as _intel
from mlrepro.harness.sysinfo.cpu import (
    CpuInfo,
    count_numa_nodes,
    detect_emulation,
    parse_cpuinfo,
    read_caches,
    read_max_frequency_mhz,
    read_text,
    read_topology,
)
from mlrepro.harness.sysinfo.host import (
    parse_meminfo,
    parse_os_release,
    read_dimms,
    read_disks,
    read_dmi_identity,
    read_nics,
    read_rdma,
)
from mlrepro.harness.sysinfo.runtime import (
    ENV_HOST_SYSTEM,
    ENV_NODE_NAME,
    ENV_TARGET,
    cgroup_limits,
    cpus_allowed,
    detect_container,
    execution_target,
    host_view,
    read_host_probe,
)

__all__ = [
    "ENV_HOST_SYSTEM", "ENV_NODE_NAME", "ENV_TARGET", "PACKAGES", "SCHEMA", "CpuInfo", "SystemPaths",
    "collect_system", "detect_container", "host_view", "package_versions", "parse_cpuinfo", "parse_meminfo",
    "parse_os_release", "read_topology",
]

SCHEMA = 2

#: distributions whose versions the record carries; first installed alias wins
PACKAGES: dict[str, tuple[str, ...]] = {
    "numpy": ("numpy",),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu"),
    "torch": ("torch",),
    "transformers": ("transformers",),
    "vllm": ("vllm",),
    "loadgen": ("mlcommons-loadgen", "mlcommons_loadgen", "mlperf-loadgen"),
}

Runner = Callable[[Sequence[str], float], "str | None"]
Which = Callable[[str], "str | None"]


@dataclass(frozen=True)
class SystemPaths:
    """Where the probes read, below ``root`` (``/``; tests use a fake tree)."""

    root: Path = Path("/")

    @property
    def cpuinfo(self) -> Path:
        return self.root / "proc/cpuinfo"

    @property
    def meminfo(self) -> Path:
        return self.root / "proc/meminfo"

    @property
    def cgroup(self) -> Path:
        return self.root / "proc/1/cgroup"

    @property
    def os_release(self) -> Path:
        return self.root / "etc/os-release"

    @property
    def dockerenv(self) -> Path:
        return self.root / ".dockerenv"

    @property
    def containerenv(self) -> Path:
        return self.root / "run/.containerenv"

    @property
    def cpu_sysfs(self) -> Path:
        return self.root / "sys/devices/system/cpu"

    @property
    def node_sysfs(self) -> Path:
        return self.root / "sys/devices/system/node"

    @property
    def dmi_id(self) -> Path:
        return self.root / "sys/class/dmi/id"

    @property
    def smbios_table(self) -> Path:
        return self.root / "sys/firmware/dmi/tables/DMI"

    @property
    def block(self) -> Path:
        return self.root / "sys/block"

    @property
    def net(self) -> Path:
        return self.root / "sys/class/net"

    @property
    def infiniband(self) -> Path:
        return self.root / "sys/class/infiniband"

    @property
    def cgroup_fs(self) -> Path:
        return self.root / "sys/fs/cgroup"

    @property
    def drm(self) -> Path:
        return self.root / "sys/class/drm"

    @property
    def dev(self) -> Path:
        return self.root / "dev"


def package_versions(packages: Mapping[str, Sequence[str]] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each label's first installed distribution (None when none is)."""
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


def _cpu(paths: SystemPaths) -> CpuInfo:
    text = read_text(paths.cpuinfo)
    cpu = parse_cpuinfo(text) if text is not None else CpuInfo()
    threads = cpu.threads or os.cpu_count()
    sockets, cores = cpu.sockets, cpu.cores
    if sockets is None or cores is None:
        topo = read_topology(paths.cpu_sysfs)
        if topo is not None:
            sockets, cores = sockets or topo[0], cores or topo[1]
    model = cpu.model or platform.processor() or None
    return CpuInfo(model=model, vendor=cpu.vendor, sockets=sockets, cores=cores, threads=threads,
                   flags=cpu.flags, isa=cpu.isa)


def _accelerators(env: Mapping[str, str], which: Which, run: Runner, paths: SystemPaths,
                  in_container: bool) -> dict[str, Any] | None:
    """The first vendor's tool that answers (nvidia-smi, amd-smi/rocm-smi, xpu-smi/sysfs), else the framework's
    own view (torch) in a container that was given a GPU."""
    probe = _gpu.query_nvidia_smi(which=which, run=run, cuda_visible=env.get("CUDA_VISIBLE_DEVICES"))
    if probe is None:
        probe = _amd.query_amd(which=which, run=run)
    if probe is None:
        probe = _intel.query_intel(paths.drm, paths.dev / "dri", which=which, run=run, sysfs=in_container)
    gpu_container = env.get("NVIDIA_VISIBLE_DEVICES", "") not in ("", "void", "none")
    if probe is None and (gpu_container or env.get("CUDA_VISIBLE_DEVICES") or (paths.dev / "kfd").exists()):
        probe = _gpu.query_torch()
    if probe is None and in_container and (paths.dev / "dri").is_dir():
        probe = _gpu.query_torch_xpu()
    return probe


def collect_system(paths: SystemPaths = SystemPaths(), env: Mapping[str, str] | None = None,
                   which: Which = shutil.which, run: Runner = _gpu.run_command) -> dict[str, Any]:
    """The system description (JSON-ready dict, layout in the module docstring). ``env`` defaults to
    ``os.environ``; ``which``/``run`` find and run ``nvidia-smi``/``dmidecode`` (tests replay recorded
    outputs). Never raises."""
    started = time.perf_counter()
    environ = os.environ if env is None else env
    cpu = _cpu(paths)
    machine = platform.machine()
    cpu_dict: dict[str, Any] = {k: v for k, v in asdict(cpu).items() if k not in ("flags", "isa")}
    cpu_dict["max_mhz"] = read_max_frequency_mhz(paths.cpu_sysfs)
    cpu_dict["caches"] = [asdict(c) for c in read_caches(paths.cpu_sysfs)]
    cpu_dict["emulated_on"] = detect_emulation(machine, cpu)
    cpu_dict["hypervisor"] = "hypervisor" in cpu.flags
    mem_text = read_text(paths.meminfo)
    os_text = read_text(paths.os_release)
    try:
        hostname: str | None = socket.gethostname()
    except OSError:
        hostname = None
    container = detect_container(paths.dockerenv.exists(), paths.containerenv.exists(), read_text(paths.cgroup),
                                 environ)
    target, source = execution_target(environ, container)
    probe = _accelerators(environ, which, run, paths, bool(container.get("in_container")))
    gpus = probe["gpus"] if probe else []
    vendors = {g.get("vendor", "nvidia") for g in gpus}
    system: dict[str, Any] = {
        "schema": SCHEMA,
        "hostname": hostname,
        "machine": machine,
        "kernel": platform.release(),
        "os": parse_os_release(os_text) if os_text else None,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "executable": sys.executable,
        "cpu": cpu_dict,
        "numa_nodes": count_numa_nodes(paths.node_sysfs),
        "memory_total_bytes": parse_meminfo(mem_text) if mem_text else None,
        "memory_dimms": read_dimms(which, run, paths.smbios_table),
        "dmi": read_dmi_identity(paths.dmi_id),
        "disks": read_disks(paths.block),
        "nics": read_nics(paths.net),
        "rdma": read_rdma(paths.infiniband),
        "accelerators": gpus,
        "accelerator_probe": probe["source"] if probe else None,
        "accelerator_interconnect": probe["interconnect"] if probe else None,
        "cuda": _gpu.cuda_stack(environ, probe) if "nvidia" in vendors else None,
        "rocm": {"rocm": _amd.rocm_version(paths.root, dict(environ)), "hip": (probe or {}).get("torch_hip")}
        if "amd" in vendors else None,
        "packages": package_versions(),
        "container": container,
        "execution": {"target": target, "source": source, "node_name": environ.get(ENV_NODE_NAME) or None,
                      "cpus_allowed": cpus_allowed(), "limits": cgroup_limits(paths.cgroup_fs)},
        "cuda_visible_devices": environ.get("CUDA_VISIBLE_DEVICES"),
    }
    host = read_host_probe(environ)
    if host is not None:
        system["host"] = host
    system["probe_seconds"] = round(time.perf_counter() - started, 4)
    return system


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mlrepro.harness.sysinfo [--host]``: print the probe (``--host``: only what a host file
    carries) as JSON on stdout."""
    import json

    args = list(sys.argv[1:] if argv is None else argv)
    system = collect_system()
    print(json.dumps(host_view(system) if "--host" in args else system, indent=2, sort_keys=True))
    return 0
