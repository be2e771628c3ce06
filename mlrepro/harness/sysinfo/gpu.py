"""The accelerators this process sees: ``nvidia-smi`` first, PyTorch's CUDA view when nvidia-smi is absent.

``nvidia-smi`` is what the NVIDIA container runtime mounts into a GPU container (utility capability), so the
GPUs it lists are the ones the run got; ``CUDA_VISIBLE_DEVICES`` narrows them further as CUDA would.
Queries (see ``nvidia-smi --help-query-gpu``)::

    nvidia-smi --query-gpu=index,uuid,name,memory.total,driver_version,clocks.max.sm,pcie.link.gen.max,
               pcie.link.width.max,compute_cap --format=csv,noheader,nounits
    nvidia-smi topo -m          # NV<n> between two GPUs = NVLink; all pairs NVLink = "Mesh"

Older drivers without a field answer with an error: the query is repeated with the basic fields. The
memory technology is not reported by any NVIDIA tool; it comes from :data:`MEMORY_TYPES` (NVIDIA data sheets).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Runner = Callable[[Sequence[str], float], "str | None"]

QUERY_FIELDS = ("index", "uuid", "name", "memory.total", "driver_version", "clocks.max.sm", "pcie.link.gen.max",
                "pcie.link.width.max", "compute_cap")
BASIC_FIELDS = ("index", "uuid", "name", "memory.total", "driver_version")
_KEYS = {"index": "index", "uuid": "uuid", "name": "name", "memory.total": "memory_total_mib",
         "driver_version": "driver_version", "clocks.max.sm": "max_sm_clock_mhz", "pcie.link.gen.max": "pcie_gen_max",
         "pcie.link.width.max": "pcie_width_max", "compute_cap": "compute_capability"}
_INT_KEYS = frozenset({"index", "memory_total_mib", "max_sm_clock_mhz", "pcie_gen_max", "pcie_width_max"})
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

#: GPU memory technology by product name (first match wins). Sources: NVIDIA data sheets of each product.
MEMORY_TYPES: tuple[tuple[str, str], ...] = (
    (r"HBM3e", "HBM3e"), (r"HBM3", "HBM3"), (r"HBM2e", "HBM2e"),
    (r"\bGH200\b.*144", "HBM3e"), (r"\bGH200\b", "HBM3"),
    (r"\bH200\b|\bH20\b|\bG?B[23]00\b", "HBM3e"),
    (r"\bH100 NVL\b|\bH100 SXM", "HBM3"), (r"\bH100\b|\bH800\b", "HBM2e"),
    (r"\bA100\b.*80GB|\bA800\b", "HBM2e"), (r"\bA100\b|\bA30\b|\bV100\b|\bP100\b", "HBM2"),
    (r"RTX (PRO )?[0-9]+ Blackwell|RTX 50[0-9]0", "GDDR7"),
    (r"RTX 40[89]0|RTX 3090|RTX 3080", "GDDR6X"),
    (r"\bL4\b|\bL40S?\b|\bA10G?\b|\bA40\b|\bA16\b|\bA2\b|\bT4\b|RTX A[0-9]+|RTX [0-9]+ Ada|RTX 40[0-7]0|RTX 30[0-7]0",
     "GDDR6"),
)
#: Grace-based modules: the GPU hangs off the CPU through NVLink-C2C, not PCIe (NVIDIA Grace Hopper/Blackwell
#: data sheets), although nvidia-smi still prints PCIe link values.
_C2C = re.compile(r"\bG[HB][23]00\b")


def run_command(argv: Sequence[str], timeout: float) -> str | None:
    """stdout of ``argv`` (no shell), or None when it cannot run, times out or exits non-zero."""
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def _value(text: str) -> str | None:
    text = text.strip()
    return None if not text or text.startswith("[") or text in ("N/A", "Not Supported") else text


def parse_query_gpu(text: str, fields: Sequence[str] = QUERY_FIELDS) -> list[dict[str, Any]]:
    """Rows of ``--query-gpu=<fields> --format=csv,noheader,nounits``: dicts keyed ``index``, ``uuid``,
    ``name``, ``memory_total_mib``, ``driver_version``, ``max_sm_clock_mhz``, ``pcie_gen_max``,
    ``pcie_width_max``, ``compute_capability`` (ints where numeric; None for "[N/A]" and for fields not
    queried)."""
    gpus: list[dict[str, Any]] = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != len(fields) or not parts[fields.index("name")]:
            continue
        gpu: dict[str, Any] = dict.fromkeys(_KEYS.values())
        for name, raw in zip(fields, parts):
            key = _KEYS[name]
            value = _value(raw)
            if key in _INT_KEYS and value is not None:
                number = re.match(r"[0-9]+", value)
                value = int(number.group()) if number else None
            gpu[key] = value
        gpus.append(gpu)
    return gpus


def parse_topology(text: str) -> dict[str, list[str]]:
    """``nvidia-smi topo -m``: GPU name -> its link to every GPU column (``X``, ``NV18``, ``PIX``, ``SYS``...)."""
    rows: dict[str, list[str]] = {}
    header: list[str] = []
    for raw in _ANSI.sub("", text).splitlines():
        cells = [c.strip() for c in raw.split("\t")]
        if not header and cells and cells[0] == "" and any(c.startswith("GPU") for c in cells):
            header = cells[1:]
            continue
        if cells and re.fullmatch(r"GPU[0-9]+", cells[0]) and header:
            gpu_columns = [i for i, h in enumerate(header) if re.fullmatch(r"GPU[0-9]+", h)]
            rows[cells[0]] = [cells[1 + i] if 1 + i < len(cells) else "" for i in gpu_columns]
    return rows


def interconnect(topology: Mapping[str, list[str]], count: int) -> dict[str, str | None]:
    """``{"kind": "NVLink"|"PCIe"|None, "links": "NV18"|None, "topology": "Mesh"|"Direct"|None}`` between
    the GPUs: NVLink when any pair shows ``NV<n>``; Mesh when every pair does (mlperf-sysinfo's rule)."""
    if count < 2 or not topology:
        return {"kind": None, "links": None, "topology": None}
    pairs = [cell for row in topology.values() for cell in row if cell and cell != "X"]
    nv = [cell for cell in pairs if re.fullmatch(r"NV[0-9]+", cell)]
    if not nv:
        return {"kind": "PCIe", "links": None, "topology": "Direct"}
    links = max(set(nv), key=nv.count)
    return {"kind": "NVLink", "links": links, "topology": "Mesh" if len(nv) == len(pairs) else "Direct"}


def visible(gpus: list[dict[str, Any]], cuda_visible: str | None) -> list[dict[str, Any]]:
    """The GPUs CUDA would use under ``CUDA_VISIBLE_DEVICES`` (indices or UUID prefixes, in that order)."""
    if cuda_visible is None:
        return gpus
    chosen: list[dict[str, Any]] = []
    for item in (x.strip() for x in cuda_visible.split(",")):
        if not item or item == "-1":
            break
        match = next((g for g in gpus if (item.isdigit() and g.get("index") == int(item))
                      or (g.get("uuid") and str(g["uuid"]).startswith(item))), None)
        if match is None:
            break  # CUDA stops at the first invalid entry
        if match not in chosen:
            chosen.append(match)
    return chosen


def memory_type(name: str) -> str | None:
    """HBM3/HBM3e/GDDR6... of a product name, from :data:`MEMORY_TYPES`; None when not in the table."""
    for pattern, kind in MEMORY_TYPES:
        if re.search(pattern, name, re.IGNORECASE):
            return kind
    return None


def host_link(gpu: Mapping[str, Any]) -> str | None:
    """``NVLink-C2C`` on Grace modules, else ``PCIe Gen<max> x<max width>`` (the link's capability, not the
    idle-downtrained current value)."""
    if _C2C.search(str(gpu.get("name") or "")):
        return "NVLink-C2C"
    gen, width = gpu.get("pcie_gen_max"), gpu.get("pcie_width_max")
    if gen and width:
        return f"PCIe Gen{gen} x{width}"
    return f"PCIe Gen{gen}" if gen else None


def query_nvidia_smi(which: Callable[[str], str | None] = shutil.which, run: Runner = run_command,
                     cuda_visible: str | None = None) -> dict[str, Any] | None:
    """``{"source": "nvidia-smi", "gpus": [...], "interconnect": {...}}`` or None when nvidia-smi is absent
    or fails. Each GPU also gets ``memory_type`` and ``host_interconnect``."""
    exe = which("nvidia-smi")
    if not exe:
        return None
    fields: Sequence[str] = QUERY_FIELDS
    out = run([exe, f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"], 15.0)
    if out is None:
        fields = BASIC_FIELDS
        out = run([exe, f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"], 15.0)
    if out is None:
        return None
    gpus = visible(parse_query_gpu(out, fields), cuda_visible)
    for gpu in gpus:
        gpu["memory_type"] = memory_type(str(gpu.get("name") or ""))
        gpu["host_interconnect"] = host_link(gpu)
    topo: dict[str, list[str]] = {}
    if len(gpus) > 1:
        topo_text = run([exe, "topo", "-m"], 15.0)
        if topo_text:
            rows = parse_topology(topo_text)
            keep = {f"GPU{g['index']}" for g in gpus if g.get("index") is not None}
            names = list(rows)
            topo = {name: [cell for other, cell in zip(names, row) if other in keep]
                    for name, row in rows.items() if name in keep}
    for gpu in gpus:
        gpu["vendor"] = "nvidia"
    return {"source": "nvidia-smi", "gpus": gpus, "interconnect": interconnect(topo, len(gpus))}


def query_torch() -> dict[str, Any] | None:
    """PyTorch's view (``torch.cuda``) when torch is installed; None otherwise or when CUDA is unavailable.
    Imports torch (seconds): called only when nvidia-smi is absent in a GPU container."""
    if importlib.util.find_spec("torch") is None:
        return None
    try:
        import torch  # noqa: PLC0415 - slow import, only on this path

        if not torch.cuda.is_available():
            return None
        hip = getattr(torch.version, "hip", None)      # ROCm's build answers to torch.cuda too
        gpus = []
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            gpu = {"index": i, "uuid": None, "name": p.name, "memory_total_mib": int(p.total_memory // 2**20),
                   "driver_version": None, "max_sm_clock_mhz": None, "pcie_gen_max": None, "pcie_width_max": None,
                   "compute_capability": None if hip else f"{p.major}.{p.minor}",
                   "l2_cache_bytes": getattr(p, "L2_cache_size", None), "vendor": "amd" if hip else "nvidia"}
            if hip:
                gpu["gfx_target"] = getattr(p, "gcnArchName", None)
            gpu["memory_type"] = memory_type(p.name)
            gpu["host_interconnect"] = host_link(gpu)
            gpus.append(gpu)
        cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() and not hip else None
        return {"source": "torch", "gpus": gpus, "interconnect": interconnect({}, len(gpus)),
                "torch_cuda": torch.version.cuda, "torch_cudnn": cudnn, "torch_hip": hip}
    except Exception:  # noqa: BLE001 - a probe never fails the run
        return None


def query_torch_xpu() -> dict[str, Any] | None:
    """PyTorch's XPU view (``torch.xpu``: Intel GPUs) when torch is installed and sees one; None otherwise."""
    if importlib.util.find_spec("torch") is None:
        return None
    try:
        import torch  # noqa: PLC0415 - slow import, only on this path

        xpu = getattr(torch, "xpu", None)
        if xpu is None or not xpu.is_available():
            return None
        gpus = []
        for i in range(xpu.device_count()):
            p = xpu.get_device_properties(i)
            gpus.append({"index": i, "uuid": None, "name": p.name, "memory_total_mib": int(p.total_memory // 2**20),
                         "driver_version": getattr(p, "driver_version", None), "max_sm_clock_mhz": None,
                         "pcie_gen_max": None, "pcie_width_max": None, "compute_capability": None,
                         "vendor": "intel", "memory_type": None, "host_interconnect": None})
        return {"source": "torch", "gpus": gpus, "interconnect": interconnect({}, len(gpus))}
    except Exception:  # noqa: BLE001 - a probe never fails the run
        return None


def _dist_version(*names: str) -> str | None:
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def cuda_stack(env: Mapping[str, str], probe: Mapping[str, Any] | None) -> dict[str, str | None]:
    """CUDA runtime and cuDNN versions this process would load: the pip wheels (``nvidia-cuda-runtime-cu*``,
    ``nvidia-cudnn-cu*``), else the CUDA image's ``CUDA_VERSION`` / ``NV_CUDNN_VERSION``, else torch's."""
    cuda = _dist_version("nvidia-cuda-runtime-cu12", "nvidia-cuda-runtime-cu13", "nvidia-cuda-runtime-cu11",
                         "nvidia-cuda-runtime")
    cudnn = _dist_version("nvidia-cudnn-cu12", "nvidia-cudnn-cu13", "nvidia-cudnn-cu11")
    cuda = cuda or env.get("CUDA_VERSION") or (probe or {}).get("torch_cuda")
    if cudnn is None:
        cudnn = env.get("NV_CUDNN_VERSION") or env.get("CUDNN_VERSION")
    if cudnn is None and (probe or {}).get("torch_cudnn"):
        n = int(probe["torch_cudnn"])  # type: ignore[index]
        cudnn = f"{n // 10000}.{n // 100 % 100}.{n % 100}" if n >= 10000 else f"{n // 1000}.{n // 100 % 10}.{n % 100}"
    return {"cuda": cuda, "cudnn": cudnn}
