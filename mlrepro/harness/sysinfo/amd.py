"""AMD GPUs the run sees: ``amd-smi`` first, ``rocm-smi`` when amd-smi is absent (ROCm before 6.0 images).

Both come with ROCm (``/opt/rocm/bin``; AMD's rocm/pytorch and rocm/vllm images have them). Queries::

    amd-smi static --gpu all --asic --bus --vram --driver
    rocm-smi --showproductname --showmeminfo vram --showdriverversion --json

amd-smi's default (human-readable) output is read rather than ``--json``: its JSON changed shape across
releases (a list of GPUs in ROCm 6, ``{"gpu_data": [...]}`` in later amd-smi; sizes as ``"64289 MB"`` or
``{"value": .., "unit": ..}``) while the human form kept ``SECTION:`` / ``KEY: value`` lines, indented by four
spaces per level (amd-smi's docs, "Example output from amd-smi static"). GPU entries use the keys of
:mod:`mlrepro.harness.sysinfo.gpu` (``compute_capability`` stays None: an AMD GPU has a gfx target instead,
kept as ``gfx_target``). The memory technology comes from :data:`MEMORY_TYPES` (AMD Instinct data sheets).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlrepro.harness.sysinfo.gpu import Runner, host_link, run_command

AMD_SMI_ARGS = ("static", "--gpu", "all", "--asic", "--bus", "--vram", "--driver")
ROCM_SMI_ARGS = ("--showproductname", "--showmeminfo", "vram", "--showdriverversion", "--json")

#: memory technology by product name (first match wins). Sources: AMD Instinct MI355X/MI350X, MI325X, MI300X,
#: MI300A, MI250X, MI210, MI100 data sheets; Radeon PRO W7900 and RX 7000/9000 series specifications.
MEMORY_TYPES: tuple[tuple[str, str], ...] = (
    (r"MI3[2-5][05]X?", "HBM3E"), (r"MI300[AX]?", "HBM3"), (r"MI2[0-9]0X?", "HBM2e"), (r"MI100", "HBM2"),
    (r"R9700|RX 9[0-9]{3}", "GDDR6"), (r"W7[0-9]{3}|RX 7[0-9]{3}|V710|V620", "GDDR6"),
)
_PCIE_GEN_BY_GTS = {2.5: 1, 5.0: 2, 8.0: 3, 16.0: 4, 32.0: 5, 64.0: 6}


def _value(text: str | None) -> str | None:
    text = (text or "").strip()
    return None if not text or text in ("N/A", "NA", "unknown") else text


def parse_amd_smi_static(text: str) -> list[dict[str, dict[str, str]]]:
    """``amd-smi static`` (human form): one ``{SECTION: {KEY: value}}`` per ``GPU: n`` block, in order, with
    the GPU's number under ``{"GPU": {"ID": n}}``. CPU blocks and deeper levels (cache lists) are skipped."""
    gpus: list[dict[str, dict[str, str]]] = []
    current: dict[str, dict[str, str]] | None = None
    section: str | None = None
    for raw in text.splitlines():
        if not raw.strip():
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        key, _, value = raw.strip().partition(":")
        if indent == 0:
            current = None
            if key == "GPU":
                current = {"GPU": {"ID": value.strip()}}
                gpus.append(current)
            continue
        if current is None:
            continue
        if indent == 4:
            section = key.strip()
            current.setdefault(section, {})
            if value.strip():                      # a one-line section: PROCESS_ISOLATION: N/A
                current[section][""] = value.strip()
        elif indent == 8 and section is not None:
            current[section].setdefault(key.strip(), value.strip())
    return gpus


def _mib(text: str | None) -> int | None:
    """``64289 MB`` / ``196592 MiB`` / ``64 GB`` -> MiB (amd-smi's "MB" are MiB: VRAM sizes in 2**20 bytes)."""
    m = re.match(r"([0-9.]+)\s*([KMGT]i?B)?$", (text or "").strip())
    if not m:
        return None
    scale = {"KB": 1 / 1024, "KiB": 1 / 1024, "MB": 1, "MiB": 1, "GB": 1024, "GiB": 1024, "TB": 1 << 20,
             "TiB": 1 << 20}.get(m.group(2) or "MB", 1)
    return int(float(m.group(1)) * scale)


def memory_type(name: str, reported: str | None = None) -> str | None:
    """HBM3E/HBM3/GDDR6... of a product name (:data:`MEMORY_TYPES`), else what the tool reported when it is more
    than the family (amd-smi says ``HBM`` for every HBM generation)."""
    for pattern, kind in MEMORY_TYPES:
        if re.search(pattern, name, re.IGNORECASE):
            return kind
    reported = _value(reported)
    return reported if reported and reported.upper() not in ("HBM", "GDDR", "DDR") else None


def _gpu(index: int | None, name: str | None, mib: int | None, driver: str | None, gen: int | None,
         width: int | None, uuid: str | None = None, gfx: str | None = None, vram_type: str | None = None) -> dict:
    gpu: dict[str, Any] = {"index": index, "uuid": uuid, "name": name, "memory_total_mib": mib,
                           "driver_version": driver, "max_sm_clock_mhz": None, "pcie_gen_max": gen,
                           "pcie_width_max": width, "compute_capability": None, "vendor": "amd", "gfx_target": gfx}
    gpu["memory_type"] = memory_type(name or "", vram_type)
    gpu["host_interconnect"] = host_link(gpu)
    return gpu


def _int(text: str | None) -> int | None:
    m = re.match(r"[0-9]+", _value(text) or "")
    return int(m.group()) if m else None


def gpus_from_amd_smi(text: str) -> list[dict[str, Any]]:
    """GPU entries from ``amd-smi static`` output."""
    out = []
    for block in parse_amd_smi_static(text):
        asic, bus, vram, driver = (block.get(s, {}) for s in ("ASIC", "BUS", "VRAM", "DRIVER"))
        name = _value(asic.get("MARKET_NAME"))
        if name is None:
            continue
        gen = _int(bus.get("PCIE_INTERFACE_VERSION"))
        if gen is None:
            speed = re.match(r"([0-9.]+)\s*GT/s", bus.get("MAX_PCIE_SPEED", ""))
            gen = _PCIE_GEN_BY_GTS.get(float(speed.group(1))) if speed else None
        out.append(_gpu(_int(block["GPU"].get("ID")), name, _mib(vram.get("SIZE")), _value(driver.get("VERSION")),
                        gen, _int(bus.get("MAX_PCIE_WIDTH")), gfx=_value(asic.get("TARGET_GRAPHICS_VERSION")),
                        vram_type=vram.get("TYPE")))
    return out


def gpus_from_rocm_smi(text: str) -> list[dict[str, Any]]:
    """GPU entries from ``rocm-smi ... --json``: ``{"card0": {...}, "system": {"Driver version": ...}}``."""
    try:
        doc = json.loads(text)
    except ValueError:
        return []
    if not isinstance(doc, dict):
        return []
    driver = _value(str((doc.get("system") or {}).get("Driver version") or ""))
    out = []
    for key in sorted((k for k in doc if re.fullmatch(r"card[0-9]+", k)), key=lambda k: int(k[4:])):
        card = doc[key] if isinstance(doc[key], dict) else {}
        name = _value(card.get("Card Series")) or _value(card.get("Device Name"))
        vram = _int(card.get("VRAM Total Memory (B)"))
        out.append(_gpu(int(key[4:]), name, vram // 2**20 if vram else None, driver, None, None,
                        uuid=_value(card.get("Unique ID")), gfx=_value(card.get("GFX Version"))))
    return out


def rocm_version(root: Path = Path("/"), env: dict[str, str] | None = None) -> str | None:
    """The ROCm release of the image: ``/opt/rocm/.info/version`` (ROCm packages), else ``ROCM_VERSION``."""
    try:
        text = (root / "opt/rocm/.info/version").read_text(encoding="utf-8").strip()
    except OSError:
        text = ""
    return text.split("-")[0] or (env or {}).get("ROCM_VERSION") or None


def query_amd(which: Callable[[str], str | None] = shutil.which, run: Runner = run_command) -> dict[str, Any] | None:
    """``{"source": "amd-smi"|"rocm-smi", "gpus": [...], "interconnect": {...}}`` or None when neither tool is
    there or answers."""
    for tool, args, parse in (("amd-smi", AMD_SMI_ARGS, gpus_from_amd_smi),
                              ("rocm-smi", ROCM_SMI_ARGS, gpus_from_rocm_smi)):
        exe = which(tool)
        if not exe:
            continue
        out = run([exe, *args], 30.0)
        gpus = parse(out) if out else []
        if gpus:
            return {"source": tool, "gpus": gpus, "interconnect": _interconnect(len(gpus))}
    return None


def _interconnect(count: int) -> dict[str, str | None]:
    # amd-smi topology (XGMI hops) is not read: the link between GPUs stays unknown for several GPUs
    return {"kind": None, "links": None, "topology": None}
