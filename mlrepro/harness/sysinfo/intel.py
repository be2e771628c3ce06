"""Intel GPUs the run sees: ``xpu-smi`` (Intel XPU Manager's CLI; in Intel's PyTorch XPU images), else sysfs.

Queries (intel/xpumanager, doc/smi_user_guide.md "Discover the devices")::

    xpu-smi discovery -j           # {"device_list": [{"device_id": 0, "device_name": ..., ...}]}
    xpu-smi discovery -d <id>      # a table of "Key: value" cells: Driver Version, Memory Physical Size,
                                   # PCIe Generation, PCIe Max Link Width...

Without xpu-smi, ``/sys/class/drm/card<N>/device`` tells the PCI vendor (0x8086) and device id, and its
``driver`` link the kernel driver (``xe`` or ``i915``); the name is then xpu-smi's own form for a device it has no
marketing name for (``Intel(R) Graphics [0xe20b]``), the driver version the kernel's (both drivers are in-tree).
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlrepro.harness.sysinfo.gpu import Runner, host_link, run_command

INTEL_PCI_VENDOR = "0x8086"
#: memory technology by product name. Sources: Intel Arc Pro B-series, Arc B580, Data Center GPU Max 1550/1100
#: and Flex 170/140 product specifications (ark.intel.com).
MEMORY_TYPES: tuple[tuple[str, str], ...] = (
    (r"\bMax\b|0x0bd[0-9a-f]|0x020a", "HBM2e"), (r"\bFlex\b|0x56c[01]", "GDDR6"), (r"Arc", "GDDR6"),
)
_KEYS = {"Device Name": "name", "UUID": "uuid", "Driver Version": "driver_version",
         "Memory Physical Size": "memory", "PCIe Generation": "pcie_gen_max", "PCIe Max Link Width": "pcie_width_max",
         "Core Clock Rate": "clock"}


def _value(text: str | None) -> str | None:
    text = (text or "").strip()
    return None if not text or text.lower() in ("n/a", "unknown") else text


def parse_discovery_list(text: str) -> list[dict[str, Any]]:
    """``xpu-smi discovery -j``: the device list (``device_id``, ``device_name``, ``pci_bdf_address``...)."""
    try:
        doc = json.loads(text)
    except ValueError:
        return []
    devices = doc.get("device_list") if isinstance(doc, dict) else None
    return [d for d in devices or [] if isinstance(d, dict) and d.get("device_type", "GPU") == "GPU"]


def parse_discovery_detail(text: str) -> dict[str, str]:
    """``xpu-smi discovery -d N``: ``| id | Key: value |`` table cells as a dict (first value of each key)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or ":" not in cells[-1]:
            continue
        key, _, value = cells[-1].partition(":")
        out.setdefault(key.strip(), value.strip())
    return out


def memory_type(name: str) -> str | None:
    for pattern, kind in MEMORY_TYPES:
        if re.search(pattern, name, re.IGNORECASE):
            return kind
    return None


def _gpu(index: int | None, name: str | None, mib: int | None, driver: str | None, gen: int | None = None,
         width: int | None = None, uuid: str | None = None, kernel_driver: str | None = None,
         clock: int | None = None) -> dict[str, Any]:
    gpu: dict[str, Any] = {"index": index, "uuid": uuid, "name": name, "memory_total_mib": mib,
                           "driver_version": driver, "max_sm_clock_mhz": clock, "pcie_gen_max": gen,
                           "pcie_width_max": width, "compute_capability": None, "vendor": "intel",
                           "kernel_driver": kernel_driver}
    gpu["memory_type"] = memory_type(name or "")
    gpu["host_interconnect"] = host_link(gpu)
    return gpu


def _int(text: str | None) -> int | None:
    m = re.match(r"[0-9]+", _value(text) or "")
    return int(m.group()) if m else None


def gpu_from_detail(index: int | None, detail: dict[str, str], listed_name: str | None = None) -> dict[str, Any]:
    mem = re.match(r"([0-9.]+)\s*MiB", detail.get("Memory Physical Size", ""))
    return _gpu(index, _value(detail.get("Device Name")) or listed_name, int(float(mem.group(1))) if mem else None,
                _value(detail.get("Driver Version")), _int(detail.get("PCIe Generation")),
                _int(detail.get("PCIe Max Link Width")), uuid=_value(detail.get("UUID")),
                clock=_int(detail.get("Core Clock Rate")))


def query_xpu_smi(which: Callable[[str], str | None] = shutil.which, run: Runner = run_command) -> dict[str, Any] | None:
    exe = which("xpu-smi")
    if not exe:
        return None
    listed = parse_discovery_list(run([exe, "discovery", "-j"], 30.0) or "")
    gpus = []
    for dev in listed:
        index = dev.get("device_id") if isinstance(dev.get("device_id"), int) else None
        detail = parse_discovery_detail(run([exe, "discovery", "-d", str(index)], 30.0) or "") \
            if index is not None else {}
        gpus.append(gpu_from_detail(index, detail, _value(str(dev.get("device_name") or ""))))
    if not gpus:
        return None
    return {"source": "xpu-smi", "gpus": gpus, "interconnect": {"kind": None, "links": None, "topology": None}}


def read_sysfs(drm: Path, dev_dri: Path, kernel: str | None = None) -> list[dict[str, Any]]:
    """Intel display-class PCI devices under ``/sys/class/drm`` (``card<N>`` only, not their connectors) whose
    node the process got in ``dev_dri`` (a container sees the host's sysfs but only its own devices)."""
    gpus = []
    for card in sorted((p for p in drm.glob("card*") if re.fullmatch(r"card[0-9]+", p.name)
                        and (dev_dri / p.name).exists()), key=lambda p: int(p.name[4:])):
        dev = card / "device"
        try:
            vendor = (dev / "vendor").read_text(encoding="ascii").strip()
            device = (dev / "device").read_text(encoding="ascii").strip()
            pci_class = (dev / "class").read_text(encoding="ascii").strip()
        except OSError:
            continue
        if vendor != INTEL_PCI_VENDOR or not pci_class.startswith("0x03"):
            continue
        driver = os.path.basename(os.readlink(dev / "driver")) if (dev / "driver").is_symlink() else None
        version = f"{driver} (Linux {kernel or platform.release()})" if driver else None
        gpus.append(_gpu(int(card.name[4:]), f"Intel(R) Graphics [{device}]", None, version, kernel_driver=driver))
    return gpus


def query_intel(drm: Path, dev_dri: Path, which: Callable[[str], str | None] = shutil.which,
                run: Runner = run_command, sysfs: bool = True) -> dict[str, Any] | None:
    """``{"source": "xpu-smi"|"sysfs", "gpus": [...], ...}`` or None when no Intel GPU is seen. ``sysfs``: also
    look there (only in a container: on a host any integrated GPU would count as the run's accelerator)."""
    probe = query_xpu_smi(which, run)
    if probe is not None or not sysfs:
        return probe
    gpus = read_sysfs(drm, dev_dri)
    if not gpus:
        return None
    return {"source": "sysfs", "gpus": gpus, "interconnect": {"kind": None, "links": None, "topology": None}}
