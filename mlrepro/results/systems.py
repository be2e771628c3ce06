"""``systems/<system_id>.json`` from the ``system.json`` the harness captured.

Field lists are the MLCommons submission checker's (v5.x/v6.x ``SYSTEM_DESC_REQUIRED_FIELDS`` and
``SYSTEM_DESC_MEANINGFUL_RESPONSE_REQUIRED_FIELDS``). Every required field is written as a string; unknown
values are ``"N/A"`` (truthy), counts are strings (``"0"``, not ``0``, which the checker takes for empty).
``is_network`` is only written for the network division: the checker treats any present value as network mode
and a closed-division system in network mode as an error.

Public API::

    build_system_desc(system, *, division, submitter, backend="", overrides=None) -> dict[str, str]
    derive_system_id(desc) -> str
    system_desc_problems(desc, *, division, submitter) -> list[str]
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from mlrepro.results.layout import sanitize_name

REQUIRED_FIELDS: tuple[str, ...] = (
    "division", "submitter", "status", "system_name", "number_of_nodes",
    "host_processor_model_name", "host_processors_per_node", "host_processor_core_count",
    "host_memory_capacity", "host_storage_capacity", "host_storage_type",
    "accelerators_per_node", "accelerator_model_name", "accelerator_memory_capacity",
    "framework", "operating_system", "system_type", "other_software_stack",
    "host_processor_frequency", "host_processor_caches", "host_memory_configuration",
    "host_processor_interconnect", "host_networking", "host_networking_topology",
    "accelerator_frequency", "accelerator_host_interconnect", "accelerator_interconnect",
    "accelerator_interconnect_topology", "accelerator_memory_configuration", "accelerator_on-chip_memories",
    "cooling", "hw_notes", "sw_notes", "host_network_card_count", "system_type_detail",
)

MEANINGFUL_FIELDS: frozenset[str] = frozenset({
    "division", "submitter", "system_type", "status", "system_name", "number_of_nodes",
    "host_processor_model_name", "host_processors_per_node", "host_processor_core_count",
    "host_memory_capacity", "host_memory_configuration", "host_storage_capacity", "host_storage_type",
    "host_networking", "host_network_card_count", "host_networking_topology",
    "accelerators_per_node", "accelerator_model_name", "accelerator_memory_capacity",
    "accelerator_host_interconnect", "accelerator_memory_configuration", "accelerator_interconnect",
    "cooling", "framework", "operating_system", "other_software_stack",
})

NETWORK_FIELDS: tuple[str, ...] = (
    "is_network", "network_type", "network_media", "network_rate", "nic_loadgen", "number_nic_loadgen",
    "net_software_stack_loadgen", "network_protocol", "number_connections", "nic_sut", "number_nic_sut",
    "net_software_stack_sut", "network_topology",
)

VALID_STATUSES = ("available", "preview", "rdi")
VALID_SYSTEM_TYPES = ("datacenter", "edge", "datacenter,edge", "edge,datacenter")
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
                      overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The systems json for ``system`` (the harness's system.json). ``overrides`` (e.g. from the profile or
    the command line: ``status``, ``system_type``, ``system_name``, ``cooling`` ...) win over derived values."""
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
    if division == "network":
        desc.update({k: UNKNOWN for k in NETWORK_FIELDS})
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


def system_desc_problems(desc: Mapping[str, Any], *, division: str, submitter: str) -> list[str]:
    """What the official checker would reject in a systems json (and mlrepro's stricter string rule)."""
    problems: list[str] = []
    required = list(REQUIRED_FIELDS)
    if desc.get("is_network"):
        required += [f for f in NETWORK_FIELDS if f not in required]
    for key in required:
        if key not in desc:
            problems.append(f"field {key} is missing")
        elif key in MEANINGFUL_FIELDS and not desc[key]:
            problems.append(f"field {key} requires a meaningful response but is empty")
        elif key in MEANINGFUL_FIELDS and not isinstance(desc[key], str):
            problems.append(f"field {key} should be a string, got {type(desc[key]).__name__}")
    status = desc.get("status")
    if isinstance(status, str) and status.lower() not in VALID_STATUSES:
        problems.append(f"invalid status {status!r} (one of {', '.join(VALID_STATUSES)})")
    if desc.get("system_type") not in VALID_SYSTEM_TYPES:
        problems.append(f"invalid system_type {desc.get('system_type')!r}")
    if isinstance(desc.get("submitter"), str) and desc["submitter"].lower() != submitter.lower():
        problems.append(f"submitter {desc['submitter']!r} differs from the directory {submitter!r}")
    if isinstance(desc.get("division"), str) and desc["division"].lower() != division.lower():
        problems.append(f"division {desc['division']!r} differs from the directory {division!r}")
    is_network = desc.get("is_network")
    network_mode = isinstance(is_network, str) and is_network.lower() == "true"
    if division == "network" and not network_mode:
        problems.append("network division needs is_network \"true\"")
    if division == "closed" and network_mode:
        problems.append("closed division system must not be in network mode")
    if is_network is not None and not isinstance(is_network, str):
        problems.append("is_network must be a string")
    return problems
