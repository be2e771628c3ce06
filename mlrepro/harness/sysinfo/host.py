"""Host probes besides the processor: memory, OS, firmware identity, disks and network cards.

Sources are kernel files (``/proc/meminfo``, ``/etc/os-release``, ``/sys/class/dmi/id``, ``/sys/block``,
``/sys/class/net``, ``/sys/class/infiniband``) and, for the DIMM layout only, ``dmidecode -t memory`` where
it is installed and the SMBIOS table is readable (root). They are the sources mlperf-sysinfo's probes use
(``lsblk``, ``df``, ``free``, ``dmidecode`` read the same kernel data); every reader returns an empty value
when its source is missing and never raises.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mlrepro.harness.sysinfo.cpu import read_text

Runner = Callable[[Sequence[str], float], "str | None"]

# block devices that are not storage (RAM disks, compressed swap, loop files, optical, device-mapper/RAID views)
_NOT_DISKS = ("loop", "ram", "zram", "sr", "fd", "dm-", "md", "nbd", "rbd")
# values vendors leave in DMI fields that identify nothing
_DMI_PLACEHOLDERS = frozenset({"", "to be filled by o.e.m.", "system product name", "system manufacturer",
                               "default string", "not specified", "none", "n/a", "0123456789", "unknown"})


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


def read_dmi_identity(dmi_dir: Path) -> dict[str, str]:
    """``{"vendor", "product"}`` of ``/sys/class/dmi/id`` (world-readable; serial numbers are not read).
    Placeholder strings vendors leave in these fields are dropped."""
    out: dict[str, str] = {}
    for key, name in (("vendor", "sys_vendor"), ("product", "product_name")):
        value = (read_text(dmi_dir / name) or "").strip()
        if value.lower() not in _DMI_PLACEHOLDERS:
            out[key] = value
    return out


def parse_dmidecode_memory(text: str) -> list[dict[str, Any]]:
    """Installed DIMMs from ``dmidecode -t memory``: ``[{"size_bytes", "type", "speed_mts", "manufacturer"}]``,
    empty slots left out."""
    dimms: list[dict[str, Any]] = []
    for block in re.split(r"\n(?=Handle )", text):
        if "Memory Device" not in block:
            continue
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, sep, value = line.strip().partition(":")
            if sep:
                fields.setdefault(key.strip(), value.strip())
        m = re.fullmatch(r"([0-9]+)\s*(kB|MB|GB|TB)", fields.get("Size", ""))
        if not m:
            continue
        size = int(m.group(1)) * {"kB": 2**10, "MB": 2**20, "GB": 2**30, "TB": 2**40}[m.group(2)]
        speed = re.match(r"([0-9]+)\s*MT/s", fields.get("Configured Memory Speed", "") or "") or \
            re.match(r"([0-9]+)\s*MT/s", fields.get("Speed", "") or "")
        kind = fields.get("Type", "")
        manufacturer = fields.get("Manufacturer", "")
        dimms.append({"size_bytes": size,
                      "type": kind if kind and kind.lower() not in ("unknown", "other") else None,
                      "speed_mts": int(speed.group(1)) if speed else None,
                      "manufacturer": manufacturer if manufacturer.lower() not in _DMI_PLACEHOLDERS else None})
    return dimms


def read_dimms(which: Callable[[str], str | None], run: Runner, smbios_table: Path) -> list[dict[str, Any]]:
    """DIMMs through ``dmidecode`` when it is installed and the SMBIOS table is readable (root); else []."""
    exe = which("dmidecode")
    if not exe or not os.access(smbios_table, os.R_OK):
        return []
    out = run([exe, "-t", "memory"], 10.0)
    return parse_dmidecode_memory(out) if out else []


def _disk_kind(name: str, rotational: str | None) -> str:
    if name.startswith("nvme"):
        return "NVMe SSD"
    if name.startswith("vd"):            # virtio-blk: the rotational flag is the hypervisor's default
        return "virtual disk (virtio)"
    if name.startswith("xvd"):
        return "virtual disk (Xen)"
    if rotational is not None and rotational.strip() == "0":
        return "SSD"
    if rotational is not None and rotational.strip() == "1":
        return "HDD"
    return "disk"


def read_disks(block_dir: Path) -> list[dict[str, Any]]:
    """Whole disks of ``/sys/block``: ``[{"name", "size_bytes", "kind", "model"}]``. RAM disks, zram, loop,
    optical, device-mapper and RAID views and removable media are not storage and are left out."""
    disks: list[dict[str, Any]] = []
    try:
        entries = sorted(block_dir.iterdir())
    except OSError:
        return disks
    for dev in entries:
        name = dev.name
        if name.startswith(_NOT_DISKS):
            continue
        if (read_text(dev / "removable") or "0").strip() == "1":
            continue
        sectors = (read_text(dev / "size") or "").strip()
        if not sectors.isdigit() or int(sectors) == 0:
            continue
        model = (read_text(dev / "device" / "model") or "").strip() or None
        disks.append({"name": name, "size_bytes": int(sectors) * 512,
                      "kind": _disk_kind(name, read_text(dev / "queue" / "rotational")), "model": model})
    return disks


def read_nics(net_dir: Path) -> list[dict[str, Any]]:
    """Physical network interfaces of ``/sys/class/net`` (a ``device`` link not under ``/virtual/``):
    ``[{"name", "driver", "speed_mbps", "type"}]``. A container or pod has its own network namespace and
    sees only virtual interfaces here, i.e. an empty list."""
    nics: list[dict[str, Any]] = []
    try:
        entries = sorted(net_dir.iterdir())
    except OSError:
        return nics
    for iface in entries:
        if iface.name == "lo":
            continue
        device = iface / "device"
        try:
            if not device.is_symlink() or "/virtual/" in os.readlink(device):
                continue
            driver = os.path.basename(os.readlink(device / "driver")) if (device / "driver").is_symlink() else None
        except OSError:
            continue
        speed_text = (read_text(iface / "speed") or "").strip()
        speed = int(speed_text) if speed_text.lstrip("-").isdigit() and int(speed_text) > 0 else None
        link_type = (read_text(iface / "type") or "").strip()
        nics.append({"name": iface.name, "driver": driver, "speed_mbps": speed,
                     "type": "InfiniBand" if link_type == "32" else "Ethernet"})
    return nics


def read_rdma(ib_dir: Path) -> list[dict[str, Any]]:
    """RDMA devices of ``/sys/class/infiniband``: ``[{"name", "link_layer", "rate"}]`` (port 1)."""
    devices: list[dict[str, Any]] = []
    try:
        entries = sorted(ib_dir.iterdir())
    except OSError:
        return devices
    for dev in entries:
        port = dev / "ports" / "1"
        devices.append({"name": dev.name, "link_layer": (read_text(port / "link_layer") or "").strip() or None,
                        "rate": (read_text(port / "rate") or "").strip() or None})
    return devices
