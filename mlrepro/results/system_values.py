"""Field values of a systems json, derived from the ``system.json`` the harness captured (schema 1 or 2).

One function per field group; each returns strings (the checker takes a bare ``0`` for empty). Formats follow
what MLCommons' ``mlperf-sysinfo`` writes for the same facts (``L1d: 96 KiB (2 instances); ...``,
``UPI (2 NUMA nodes)``, ``1x Ethernet``, ``80 GiB HBM3``, ``PCIe Gen5 x16``) so that both tools can be
compared field by field, with units spelt out where mlperf-sysinfo's are ambiguous (``23.5 GiB``, not ``25G``).

A value nobody can know here is :data:`UNKNOWN` for fields the rules require to be meaningful (the checker
accepts it, :func:`mlrepro.results.systems.submission_blockers` reports it) and ``""`` for the others.

For a Docker run the container's probe carries the host's own probe (``system["host"]``): the network
cards, DIMMs and firmware identity a container cannot see come from there.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from typing import Any

from mlrepro.harness.sysinfo.cpu import CacheLevel, format_caches, nominal_frequency_ghz

UNKNOWN = "N/A"
_FRAMEWORK_LABELS = {"onnxruntime": "ONNX Runtime", "torch": "PyTorch"}
_TARGET_PHRASES = {"native": "run natively (no container)", "docker": "run in a Docker container",
                   "kubernetes": "run in a Kubernetes pod"}


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def hardware(system: Mapping[str, Any], key: str) -> Any:
    """``system[key]``, or the host probe's when the container's is empty (network cards, DIMMs, DMI)."""
    own = system.get(key)
    if own:
        return own
    return _map(system.get("host")).get(key, own)


def size_text(n_bytes: float, decimals: int = 1) -> str:
    """Binary size with its unit: 25276510208 -> "23.5 GiB", 2**40 -> "1 TiB"."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
    value, i = float(n_bytes), 0
    while value >= 1024 and i < len(units) - 1:
        value, i = value / 1024, i + 1
    text = f"{value:.{decimals}f}".rstrip("0").rstrip(".")
    return f"{text} {units[i]}"


# --- processor -------------------------------------------------------------------------------------------

def cpu_fields(system: Mapping[str, Any]) -> dict[str, str]:
    cpu = _map(system.get("cpu"))
    model = str(cpu.get("model") or "").strip() or UNKNOWN
    threads = cpu.get("threads")
    cores = cpu.get("cores") or threads
    return {
        "host_processor_model_name": model,
        "host_processors_per_node": str(cpu.get("sockets") or 1),
        "host_processor_core_count": str(cores) if cores else UNKNOWN,
        "host_processor_vcpu_count": str(threads) if threads else "",
        "host_processor_frequency": _frequency(cpu),
        "host_processor_caches": _caches(cpu),
        "host_processor_interconnect": _interconnect(cpu, system.get("numa_nodes")),
    }


def _frequency(cpu: Mapping[str, Any]) -> str:
    mhz = _num(cpu.get("max_mhz"))
    if mhz:
        return f"{mhz / 1000:.2f} GHz" if mhz >= 1000 else f"{round(mhz)} MHz"
    ghz = nominal_frequency_ghz(str(cpu.get("model") or ""))
    return f"{ghz:.2f} GHz (nominal)" if ghz else ""


def _caches(cpu: Mapping[str, Any]) -> str:
    levels = []
    for c in _list(cpu.get("caches")):
        size, count = _num(c.get("size_bytes")), _num(c.get("instances"))
        if c.get("name") and size and count:
            levels.append(CacheLevel(str(c["name"]), int(size), int(count)))
    return format_caches(levels)


def _interconnect(cpu: Mapping[str, Any], numa: Any) -> str:
    nodes = int(numa) if _num(numa) else None
    if nodes is None:
        return ""
    if nodes == 1:
        return "Single NUMA node"
    sockets = cpu.get("sockets") or 1
    vendor = str(cpu.get("vendor") or "")
    if sockets > 1 and vendor == "GenuineIntel":
        return f"UPI ({nodes} NUMA nodes)"
    if sockets > 1 and vendor == "AuthenticAMD":
        return f"Infinity Fabric ({nodes} NUMA nodes)"
    return f"{nodes} NUMA nodes in {sockets} socket{'s' if sockets != 1 else ''}"


# --- memory, storage, network ----------------------------------------------------------------------------

def memory_fields(system: Mapping[str, Any]) -> dict[str, str]:
    dimms = _list(hardware(system, "memory_dimms"))
    total = sum(int(d.get("size_bytes") or 0) for d in dimms)
    if total:
        capacity = size_text(total)
    else:
        mem = _num(system.get("memory_total_bytes"))
        capacity = size_text(mem) if mem else UNKNOWN
    return {"host_memory_capacity": capacity, "host_memory_configuration": _dimm_layout(dimms) or UNKNOWN}


def _dimm_layout(dimms: list[Mapping[str, Any]]) -> str:
    groups: Counter[tuple[int, str, str, str]] = Counter()
    for d in dimms:
        speed = f"-{d['speed_mts']}" if d.get("speed_mts") else ""
        groups[(int(d.get("size_bytes") or 0), str(d.get("type") or ""), speed, str(d.get("manufacturer") or ""))] += 1
    parts = []
    for (size, kind, speed, maker), n in sorted(groups.items(), key=lambda kv: (-kv[1], -kv[0][0])):
        text = f"{n}x {size_text(size)} {kind}{speed}".rstrip()
        parts.append(f"{text} ({maker})" if maker else text)
    return " + ".join(parts)


_DISK_ORDER = ("NVMe SSD", "SSD", "HDD")


def storage_fields(system: Mapping[str, Any]) -> dict[str, str]:
    disks = _list(hardware(system, "disks"))
    by_kind: dict[str, int] = {}
    for d in disks:
        by_kind[str(d.get("kind") or "disk")] = by_kind.get(str(d.get("kind") or "disk"), 0) + int(d.get("size_bytes") or 0)
    kinds = sorted(by_kind, key=lambda k: (_DISK_ORDER.index(k) if k in _DISK_ORDER else len(_DISK_ORDER), k))
    if not kinds:
        return {"host_storage_type": UNKNOWN, "host_storage_capacity": UNKNOWN}
    return {"host_storage_type": " + ".join(kinds),
            "host_storage_capacity": ", ".join(f"{size_text(by_kind[k])} {k}" for k in kinds)}


def network_fields(system: Mapping[str, Any]) -> dict[str, str]:
    nics = _list(hardware(system, "nics"))
    rdma = _list(hardware(system, "rdma"))
    if not nics and not rdma:
        return {"host_networking": UNKNOWN, "host_network_card_count": UNKNOWN}
    parts: list[str] = []
    rdma_kinds: Counter[str] = Counter()
    for dev in rdma:
        layer = str(dev.get("link_layer") or "")
        kind = "InfiniBand" if layer == "InfiniBand" else ("RoCE" if layer == "Ethernet" else "RDMA")
        rate = str(dev.get("rate") or "").strip()
        rdma_kinds[f"{kind} {rate}".strip()] += 1
    parts += [f"{n}x {k}" if n > 1 else k for k, n in sorted(rdma_kinds.items())]
    ethernet = [n for n in nics if n.get("type") != "InfiniBand"]
    if ethernet or not rdma:
        speeds = sorted({int(n["speed_mbps"]) for n in ethernet if _num(n.get("speed_mbps"))}, reverse=True)
        drivers = sorted({str(n["driver"]) for n in ethernet if n.get("driver")})
        detail = ", ".join([_speed(s) for s in speeds] + drivers)
        parts.append(f"Ethernet ({detail})" if detail else "Ethernet")
    networking = ", ".join(parts)
    count = len(nics) or len(rdma)
    return {"host_networking": networking, "host_network_card_count": f"{count}x {networking}"}


def _speed(mbps: int) -> str:
    return f"{mbps // 1000} Gb/s" if mbps >= 1000 and mbps % 1000 == 0 else f"{mbps} Mb/s"


# --- accelerators ----------------------------------------------------------------------------------------

def accelerator_fields(system: Mapping[str, Any]) -> dict[str, str]:
    gpus = _list(system.get("accelerators"))
    if not gpus:
        return {"accelerators_per_node": "0", "accelerator_model_name": UNKNOWN,
                "accelerator_memory_capacity": UNKNOWN, "accelerator_memory_configuration": UNKNOWN,
                "accelerator_host_interconnect": UNKNOWN, "accelerator_interconnect": UNKNOWN,
                "accelerator_interconnect_topology": "", "accelerator_frequency": "",
                "accelerator_on-chip_memories": ""}
    names = Counter(str(g.get("name") or UNKNOWN) for g in gpus)
    model = ", ".join(names) if len(names) == 1 else " + ".join(f"{n}x {k}" for k, n in names.items())
    caps = _unique(_gib_ceil(g) for g in gpus)
    configs = _unique(" ".join(x for x in (_gib_ceil(g), str(g.get("memory_type") or "")) if x) for g in gpus)
    links = _unique(str(g.get("host_interconnect") or "") for g in gpus)
    clocks = _unique(f"{g['max_sm_clock_mhz']} MHz" for g in gpus if g.get("max_sm_clock_mhz"))
    link = _map(system.get("accelerator_interconnect"))
    if len(gpus) == 1:
        fabric = "none (1 accelerator)"
    elif link.get("kind") == "NVLink":
        fabric = f"NVLink ({link['links']})" if link.get("links") else "NVLink"
    else:
        fabric = str(link.get("kind") or UNKNOWN)
    return {
        "accelerators_per_node": str(len(gpus)),
        "accelerator_model_name": model,
        "accelerator_memory_capacity": caps or UNKNOWN,
        "accelerator_memory_configuration": configs or UNKNOWN,
        "accelerator_host_interconnect": links or UNKNOWN,
        "accelerator_interconnect": fabric,
        "accelerator_interconnect_topology": str(link.get("topology") or "") if len(gpus) > 1 else "",
        "accelerator_frequency": clocks,
        "accelerator_on-chip_memories": _on_chip(gpus[0]),
    }


def _unique(values: Any) -> str:
    return ", ".join(dict.fromkeys(v for v in values if v))


def _gib_ceil(gpu: Mapping[str, Any]) -> str:
    mib = _num(gpu.get("memory_total_mib"))
    if not mib:
        text = str(gpu.get("memory_total") or "")          # schema 1: "143771 MiB"
        head = text.split()[0] if text.split() else ""
        mib = float(head) if head.replace(".", "", 1).isdigit() else None
    # ceil: the driver reserves a little of the marketed capacity (81559 MiB on an 80 GB part)
    return f"{math.ceil(mib / 1024)} GiB" if mib else ""


def _on_chip(gpu: Mapping[str, Any]) -> str:
    parts = []
    if _num(gpu.get("l2_cache_bytes")):
        parts.append(f"L2 cache {size_text(float(gpu['l2_cache_bytes']))}")
    if gpu.get("compute_capability"):
        # CUDA C++ Programming Guide, "Technical Specifications per Compute Capability": 48 KB of static
        # shared memory per thread block on every compute capability (cudaDeviceProp.sharedMemPerBlock)
        parts.append(f"48 KiB shared memory per block (compute capability {gpu['compute_capability']})")
    return ", ".join(parts)


# --- software and how it ran -----------------------------------------------------------------------------

#: how a model server's engine is named in a systems JSON
_ENGINE_LABELS = {"vllm": "vLLM", "sglang": "SGLang", "transformers": "Hugging Face transformers serve",
                  "openai": "an OpenAI-compatible server"}
SUT_MODEL_SERVER = "model server + LoadGen client"


def model_server(system: Mapping[str, Any]) -> Mapping[str, Any]:
    """The model server of a network SUT (system.json's ``model_server``, written by the harness); {} if none."""
    return _map(system.get("model_server"))


def server_framework(server: Mapping[str, Any]) -> str:
    """``vLLM 0.33.0 (model server + LoadGen client over its OpenAI-compatible API)``."""
    engine = str(server.get("engine") or "openai")
    label = _ENGINE_LABELS.get(engine, engine)
    version = server.get("version")
    return f"{label}{' ' + str(version) if version else ''} ({SUT_MODEL_SERVER} over its OpenAI-compatible API)"


def server_notes(server: Mapping[str, Any]) -> str:
    """One sentence for sw_notes: the SUT is a model server and a LoadGen client, how the server was started,
    on which model (its sha256)."""
    parts = [f"SUT: {SUT_MODEL_SERVER}: {server_framework(server).split(' (')[0]}"]
    model = server.get("served_model") or server.get("model")
    if model:
        parts.append(f"serving {model}")
    if server.get("model_sha256"):
        parts.append(f"(model sha256 {server['model_sha256']})")
    command = server.get("engine_command") or server.get("command")
    if isinstance(command, list) and command:
        parts.append("started as `" + " ".join(str(c) for c in command) + "`")
    elif server.get("started_by") == "existing":
        parts.append("an existing server at " + str(server.get("base_url") or "?"))
    return " ".join(parts) + "; the LoadGen client streamed every query over its OpenAI-compatible API."


def framework(system: Mapping[str, Any], backend: str) -> str:
    server = model_server(system)
    if server:
        return server_framework(server)
    packages = _map(system.get("packages"))
    if backend in _FRAMEWORK_LABELS:
        version = packages.get(backend)
        label = f"{_FRAMEWORK_LABELS[backend]} {version}" if version else _FRAMEWORK_LABELS[backend]
        vendor = _gpu_vendor(system)
        if vendor == "nvidia":
            label += " (CUDA execution provider)" if backend == "onnxruntime" else " (CUDA)"
        elif vendor:
            label += f" ({_GPU_STACKS[vendor]})"
        return label
    python = system.get("python")
    return f"Python {python}" if python else "Python"


#: what a vendor's GPU stack and kernel driver are called in a systems JSON (ROCm, Intel's XPU/oneAPI stack)
_GPU_STACKS = {"amd": "ROCm", "intel": "XPU"}
_DRIVER_NAMES = {"nvidia": "NVIDIA", "amd": "AMD amdgpu", "intel": "Intel GPU"}


def _gpu_vendor(system: Mapping[str, Any]) -> str | None:
    """The accelerators' vendor (``nvidia`` for records made before the field existed); None without any."""
    gpus = _list(system.get("accelerators"))
    return str(_map(gpus[0]).get("vendor") or "nvidia") if gpus else None


def execution(system: Mapping[str, Any]) -> str:
    """How the harness ran: ``run natively (no container)`` / ``run in a Docker container (limits ...)``..."""
    run = _map(system.get("execution"))
    target = run.get("target")
    if not target:                         # schema 1: only the container detection
        container = _map(system.get("container"))
        target = container.get("kind") if container.get("in_container") else None
    if not target:
        return ""
    phrase = _TARGET_PHRASES.get(str(target), f"run in a {target} container")
    limits = _map(run.get("limits"))
    bounds = []
    if _num(limits.get("cpus")):
        bounds.append(f"{float(limits['cpus']):g} CPUs")
    if _num(limits.get("memory_bytes")):
        bounds.append(size_text(float(limits["memory_bytes"])))
    if bounds and target != "native":
        phrase += f" limited to {', '.join(bounds)}"
    emulated = _map(system.get("cpu")).get("emulated_on")
    if emulated:
        phrase += f", {system.get('machine')} emulated by qemu-user on {emulated}"
    return phrase


def other_software(system: Mapping[str, Any]) -> str:
    parts: list[str] = []
    if system.get("python"):
        parts.append(f"Python {system['python']}")
    packages = _map(system.get("packages"))
    for label, name in (("loadgen", "mlcommons-loadgen"), ("numpy", "numpy"), ("onnxruntime", "onnxruntime"),
                        ("torch", "torch")):
        if packages.get(label):
            parts.append(f"{name} {packages[label]}")
    cuda = _map(system.get("cuda"))
    if cuda.get("cuda"):
        parts.append(f"CUDA {cuda['cuda']}")
    if cuda.get("cudnn"):
        parts.append(f"cuDNN {cuda['cudnn']}")
    rocm = _map(system.get("rocm"))
    if rocm.get("rocm"):
        parts.append(f"ROCm {rocm['rocm']}")
    if rocm.get("hip"):
        parts.append(f"HIP {rocm['hip']}")
    drivers = _unique(str(g.get("driver_version") or "") for g in _list(system.get("accelerators")))
    if drivers:
        parts.append(f"{_DRIVER_NAMES.get(_gpu_vendor(system) or 'nvidia', 'GPU')} driver {drivers}")
    text = ", ".join(parts)
    how = execution(system)
    return f"{text}; {how}" if text and how else (text or how or UNKNOWN)


def operating_system(system: Mapping[str, Any]) -> str:
    os_name, kernel = system.get("os"), system.get("kernel")
    host_os = _map(system.get("host")).get("os")
    if os_name and host_os and host_os != os_name:
        os_name = f"{os_name} (container) on {host_os}"
    if os_name and kernel:
        return f"{os_name}, kernel {kernel}"
    return str(os_name or kernel or UNKNOWN)


def hw_notes(system: Mapping[str, Any]) -> str:
    cpu = _map(system.get("cpu"))
    notes = [str(system["machine"])] if system.get("machine") else []
    if cpu.get("hypervisor"):
        notes.append("virtual machine (hypervisor present)")
    if cpu.get("emulated_on"):
        notes.append(f"{system.get('machine')} emulated by qemu-user on a {cpu['emulated_on']} processor")
    return "; ".join(notes)


def system_name(system: Mapping[str, Any], fields: Mapping[str, str]) -> str:
    count = fields["accelerators_per_node"]
    base = fields["host_processor_model_name"]
    base += f", {count}x {fields['accelerator_model_name']}" if count != "0" else ", CPU only"
    dmi = _map(hardware(system, "dmi"))
    product = " ".join(str(dmi[k]) for k in ("vendor", "product") if dmi.get(k))
    return f"{product} ({base})" if product else base


def system_size(fields: Mapping[str, str]) -> str:
    """mlperf-sysinfo's rule: ``<nodes x accelerators>x <accelerator>``, else ``<nodes x sockets>x <cpu>``."""
    nodes = int(fields.get("number_of_nodes") or 1)
    if fields["accelerators_per_node"] != "0":
        return f"{nodes * int(fields['accelerators_per_node'])}x {fields['accelerator_model_name']}"
    sockets = int(fields["host_processors_per_node"]) if fields["host_processors_per_node"].isdigit() else 1
    return f"{nodes * sockets}x {fields['host_processor_model_name']}"
