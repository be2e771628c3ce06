"""``systems/<system_id>.json`` from the ``system.json`` the harness captured.

The fields are the round's table (``systems`` in mlrepro/results/rounds/data; validation is
:mod:`mlrepro.results.check.systems`): every required field of the round is written, as a string; unknown values
are ``"N/A"`` (truthy), counts are strings (``"0"``, not ``0``, which the checker takes for empty).
``is_network`` is only written for the network division: the checker treats any present value as network mode
and a closed-division system in network mode as an error.

Public API::

    build_system_desc(system, *, division, submitter, backend="", overrides=None, version=None) -> dict[str, str]
    derive_system_id(desc) -> str
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from mlrepro.results.layout import sanitize_name
from mlrepro.results.rounds import load_round

UNKNOWN = "N/A"
SW_NOTES = "Run with mlrepro; each result's README.md names the run, profile hash and image digest."

# fields that name the submission, not the machine: left out of the derived system id
_ID_EXCLUDED = frozenset({"division", "submitter", "status"})

_FRAMEWORK_LABELS = {"onnxruntime": "ONNX Runtime", "torch": "PyTorch"}


def _s(value: Any) -> str:
    if value is None:
        return UNKNOWN
    text = str(value).strip()
    return text or UNKNOWN


def _gib(n_bytes: Any) -> str:
    if not isinstance(n_bytes, (int, float)) or isinstance(n_bytes, bool) or n_bytes <= 0:
        return UNKNOWN
    return f"{max(1, round(n_bytes / 2**30))} GB"


def _accelerators(system: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    acc = system.get("accelerators")
    return [a for a in acc if isinstance(a, Mapping)] if isinstance(acc, list) else []


def _framework(system: Mapping[str, Any], backend: str) -> str:
    packages = system.get("packages") if isinstance(system.get("packages"), Mapping) else {}
    if backend in _FRAMEWORK_LABELS:
        version = packages.get(backend)
        return f"{_FRAMEWORK_LABELS[backend]} {version}" if version else _FRAMEWORK_LABELS[backend]
    python = system.get("python")
    return f"Python {python}" if python else "Python"


def _other_software(system: Mapping[str, Any]) -> str:
    parts: list[str] = []
    if system.get("python"):
        parts.append(f"Python {system['python']}")
    packages = system.get("packages") if isinstance(system.get("packages"), Mapping) else {}
    for label, name in (("loadgen", "mlcommons-loadgen"), ("numpy", "numpy"), ("onnxruntime", "onnxruntime"),
                        ("torch", "torch")):
        if packages.get(label):
            parts.append(f"{name} {packages[label]}")
    drivers = sorted({str(a.get("driver_version")) for a in _accelerators(system) if a.get("driver_version")})
    if drivers:
        parts.append(f"NVIDIA driver {', '.join(drivers)}")
    container = system.get("container") if isinstance(system.get("container"), Mapping) else {}
    if container.get("in_container") and container.get("kind"):
        parts.append(f"container: {container['kind']}")
    return ", ".join(parts) or UNKNOWN


def build_system_desc(system: Mapping[str, Any], *, division: str, submitter: str, backend: str = "",
                      overrides: Mapping[str, str] | None = None, version: str | None = None) -> dict[str, str]:
    """The systems json for ``system`` (the harness's system.json) with every field round ``version`` (default:
    the newest) requires. ``overrides`` (e.g. from the profile or the command line: ``status``, ``system_type``,
    ``system_name``, ``cooling`` ...) win over derived values."""
    rules = load_round(version).systems
    cpu = system.get("cpu") if isinstance(system.get("cpu"), Mapping) else {}
    accs = _accelerators(system)
    names = sorted({_s(a.get("name")) for a in accs})
    mems = sorted({_s(a.get("memory_total")) for a in accs})
    cpu_model = _s(cpu.get("model"))
    cores = cpu.get("cores") or cpu.get("threads")
    os_name = system.get("os")
    kernel = system.get("kernel")
    operating_system = _s(f"{os_name}, kernel {kernel}" if os_name and kernel else (os_name or kernel))
    accel_name = ", ".join(names) if names else UNKNOWN
    system_name = (f"{cpu_model}, {len(accs)}x {accel_name}" if accs else f"{cpu_model}, CPU only")
    desc: dict[str, str] = {
        "division": division,
        "submitter": submitter,
        "status": "available",
        "system_name": system_name,
        "system_type": "datacenter",
        "system_type_detail": UNKNOWN,
        "number_of_nodes": "1",
        "host_processor_model_name": cpu_model,
        "host_processors_per_node": _s(cpu.get("sockets") or 1),
        "host_processor_core_count": _s(cores),
        "host_processor_frequency": UNKNOWN,
        "host_processor_caches": UNKNOWN,
        "host_processor_interconnect": UNKNOWN,
        "host_memory_capacity": _gib(system.get("memory_total_bytes")),
        "host_memory_configuration": UNKNOWN,
        "host_storage_type": UNKNOWN,
        "host_storage_capacity": UNKNOWN,
        "host_networking": UNKNOWN,
        "host_networking_topology": UNKNOWN,
        "host_network_card_count": UNKNOWN,
        "accelerators_per_node": str(len(accs)),
        "accelerator_model_name": accel_name,
        "accelerator_frequency": UNKNOWN,
        "accelerator_host_interconnect": UNKNOWN,
        "accelerator_interconnect": UNKNOWN,
        "accelerator_interconnect_topology": UNKNOWN,
        "accelerator_memory_capacity": ", ".join(mems) if mems else UNKNOWN,
        "accelerator_memory_configuration": UNKNOWN,
        "accelerator_on-chip_memories": UNKNOWN,
        "cooling": UNKNOWN,
        "hw_notes": f"Architecture {system['machine']}" if system.get("machine") else "",
        "framework": _framework(system, backend),
        "operating_system": operating_system,
        "other_software_stack": _other_software(system),
        "sw_notes": SW_NOTES,
    }
    for name in rules.required_names:
        desc.setdefault(name, UNKNOWN)
    if division == "network":
        desc.update({k: UNKNOWN for k in rules.network_fields})
        desc["is_network"] = "true"
    for key, value in (overrides or {}).items():
        desc[str(key)] = str(value)
    desc["division"] = division
    desc["submitter"] = submitter
    return desc


def desc_json(desc: Mapping[str, str]) -> bytes:
    """The file content (stable: sorted keys, 2-space indent, trailing newline)."""
    return (json.dumps(dict(desc), indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def derive_system_id(desc: Mapping[str, str]) -> str:
    """A stable id: the sanitized accelerator (or CPU) model and 8 hex digits of the description's hash
    (division, submitter and status excluded, so one machine keeps its id across trees)."""
    body = {k: v for k, v in desc.items() if k not in _ID_EXCLUDED}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode("utf-8")).hexdigest()[:8]
    accs = desc.get("accelerators_per_node", "0")
    if accs not in ("0", "", UNKNOWN):
        head = f"{accs}x{desc.get('accelerator_model_name', '')}"
    else:
        head = desc.get("host_processor_model_name", "") or "system"
    return f"{sanitize_name(head, 48)}-{digest}"
