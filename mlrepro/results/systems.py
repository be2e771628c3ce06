"""``systems/<system_id>.json`` from the ``system.json`` the harness captured, and what still blocks it.

The fields are the round's table (``systems`` in mlrepro/results/rounds/data: the checker's required and
meaningful fields, plus the ones MLCommons' ``mlperf-sysinfo`` (profile ``inference``) writes besides them:
``submitter_contact``, ``host_processor_vcpu_count``, ``system_size``, ``other_hardware``). Validation against
that table is :mod:`mlrepro.results.check.systems`; this module builds descriptions and says what a reviewer
would still refuse (:func:`submission_blockers`). Every field is a string (the checker takes a bare ``0`` for
empty). What the probe cannot know is ``"N/A"`` in fields the rules require to be meaningful and ``""``
elsewhere; the profile's run, a notes file (``--system-notes``) and the command line (``--submitter``,
``--contact``) fill the rest through ``overrides``. ``is_network`` is only written for the network division: the
checker treats any present value as network mode.

Public API::

    build_system_desc(system, *, division, submitter, backend="", overrides=None, version=None) -> dict[str, str]
    derive_system_id(desc) -> str
    known_fields(version=None) -> frozenset[str]                                # what a notes file may set
    submission_blockers(desc, *, division, version=None) -> list[SystemFinding]  # what a reviewer would refuse
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlrepro.results import system_values as sv
from mlrepro.results.layout import sanitize_name
from mlrepro.results.rounds import load_round

UNKNOWN = sv.UNKNOWN
SW_NOTES = "Run with mlrepro; each result's README.md names the run, profile hash and image digest."

# fields that name the submission, not the machine: left out of the derived system id
_ID_EXCLUDED = frozenset({"division", "submitter", "status", "submitter_contact"})
# accelerator fields that are "N/A" by convention on a CPU-only system
_ACCELERATOR_FIELDS = frozenset({"accelerator_model_name", "accelerator_memory_capacity",
                                 "accelerator_host_interconnect", "accelerator_memory_configuration",
                                 "accelerator_interconnect"})
# what people write when they do not know (submission_blockers treats it as empty)
_NON_ANSWERS = frozenset({"n/a", "na", "-", "--", "tbd", "todo", "unknown", "none", "null", "not available", "?"})
_PLACEHOLDER = re.compile(r"^(insert\b.*\bhere|<.*>)$|changeme", re.IGNORECASE)   # mlperf-sysinfo's rule
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def build_system_desc(system: Mapping[str, Any], *, division: str, submitter: str, backend: str = "",
                      overrides: Mapping[str, str] | None = None, version: str | None = None) -> dict[str, str]:
    """The systems json for ``system`` (the harness's system.json, schema 1 or 2) with every field round
    ``version`` (default: the newest) requires. ``backend`` is the run's (``onnxruntime``, ``torch``).
    ``overrides`` (notes file, profile run, command line: ``submitter_contact``, ``cooling``, ``hw_notes``,
    ``status`` ...) win over derived values; ``division`` and ``submitter`` win over everything. Shape: field
    name -> string."""
    rules = load_round(version).systems
    fields: dict[str, str] = {"number_of_nodes": "1"}
    fields.update(sv.cpu_fields(system))
    fields.update(sv.memory_fields(system))
    fields.update(sv.storage_fields(system))
    fields.update(sv.network_fields(system))
    fields.update(sv.accelerator_fields(system))
    desc: dict[str, str] = {
        "division": division,
        "submitter": submitter,
        "submitter_contact": "",
        "status": "available",
        "system_name": sv.system_name(system, fields),
        "system_size": sv.system_size(fields),
        "system_type": "datacenter",
        "system_type_detail": "",
        **fields,
        "host_networking_topology": UNKNOWN,
        "cooling": UNKNOWN,
        "other_hardware": "",
        "hw_notes": sv.hw_notes(system),
        "framework": sv.framework(system, backend),
        "operating_system": sv.operating_system(system),
        "other_software_stack": sv.other_software(system),
        "sw_notes": SW_NOTES,
    }
    server = sv.model_server(system)
    if server:                 # a network SUT: a model server + this LoadGen client
        desc["sw_notes"] = f"{SW_NOTES} {sv.server_notes(server)}"
        desc["system_type_detail"] = sv.SUT_MODEL_SERVER
    for spec in rules.fields:
        if spec.required:
            desc.setdefault(spec.name, UNKNOWN if spec.meaningful else "")
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
    (division, submitter, status and contact excluded, so one machine keeps its id across trees)."""
    body = {k: v for k, v in desc.items() if k not in _ID_EXCLUDED}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode("utf-8")).hexdigest()[:8]
    accs = desc.get("accelerators_per_node", "0")
    if accs not in ("0", "", UNKNOWN):
        head = f"{accs}x{desc.get('accelerator_model_name', '')}"
    else:
        head = desc.get("host_processor_model_name", "") or "system"
    return f"{sanitize_name(head, 48)}-{digest}"


def known_fields(version: str | None = None) -> frozenset[str]:
    """Every field a systems json of round ``version`` may carry (what a notes file may set)."""
    rules = load_round(version).systems
    return frozenset(f.name for f in rules.fields) | frozenset(rules.network_fields)


# --- what would still block a submission -----------------------------------------------------------------

@dataclass(frozen=True)
class SystemFinding:
    """One thing to fix in a systems json before submitting. ``severity``: ``error`` blocks a submission
    (the checker or mlperf-sysinfo's ``validate`` rejects it, or a reviewer cannot accept it), ``warning``
    is worth fixing (mlperf-sysinfo's recommendations)."""

    field: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def _is_placeholder(value: Any) -> bool:
    return isinstance(value, str) and bool(_PLACEHOLDER.search(value.strip()))


def _no_answer(value: Any) -> bool:
    if value is None:
        return True
    text = str(value).strip()
    return not text or text.lower() in _NON_ANSWERS or text.lower().startswith("not detected")


def submission_blockers(desc: Mapping[str, Any], *, division: str,
                        version: str | None = None) -> list[SystemFinding]:
    """What would still block a submission of this systems json, one finding per field.

    Errors: a field the checker requires is missing; a field it requires to be meaningful is empty or a
    non-answer (``N/A``, ``-``, ``TODO`` ...), except the accelerator fields of a CPU-only system and the
    accelerator interconnect of a one-accelerator system, where ``N/A`` is the convention (in network mode the
    network fields count as meaningful too); starter text
    (``CHANGEME``, ``Insert ... here``, ``<...>``: mlperf-sysinfo's placeholder rule) in any field;
    ``submitter_contact`` empty (mlperf-sysinfo's ``validate`` requires it); invalid ``status`` /
    ``system_type``; ``number_of_nodes`` not a positive integer; ``division`` differing from ``division``;
    network mode in the closed division or missing in the network division.
    Warnings: empty ``hw_notes`` / ``sw_notes`` (mlperf-sysinfo recommends both); a contact that is not an
    e-mail address; a required value that is not a string (the checker reads a bare ``0`` as empty).

    ``version`` is the round (``v5.0`` ... ``v6.1``, default the newest) whose field table applies. Sources:
    submission_checker/constants.py and checks/system_check.py (MLCommons inference, v6.0);
    mlperf_sysinfo/report.py (1.0.0a12).
    """
    rules = load_round(version).systems          # UnknownRoundError for a round without a table
    findings: list[SystemFinding] = []
    required = [f.name for f in rules.fields if f.required]
    network_mode = str(desc.get("is_network", "")).lower() == "true"
    if "is_network" in desc:
        required += [f for f in rules.network_fields if f not in required]
    accelerators = str(desc.get("accelerators_per_node", "")).strip()
    # in network mode the network fields describe the measured setup: the network rules need them answered
    meaningful = frozenset(f.name for f in rules.fields if f.meaningful) | \
        (frozenset(rules.network_fields) if network_mode else frozenset())
    for key in required:
        if key not in desc:
            findings.append(SystemFinding(key, "missing (the submission checker requires it)"))
            continue
        value = desc[key]
        if key in meaningful:
            exempt = (accelerators == "0" and key in _ACCELERATOR_FIELDS) or \
                     (accelerators == "1" and key == "accelerator_interconnect")
            if _no_answer(value) and not exempt:
                shown = "empty" if not str(value or "").strip() else f"{str(value).strip()!r}, not an answer"
                findings.append(SystemFinding(key, f"{shown}: the rules require a meaningful value "
                                                   "(set it in the --system-notes file)"))
        if value is not None and not isinstance(value, str):
            findings.append(SystemFinding(key, f"is a {type(value).__name__}, not a string", "warning"))
    for key, value in desc.items():
        if _is_placeholder(value):
            findings.append(SystemFinding(str(key), f"still holds starter text {str(value).strip()!r}"))
    contact = str(desc.get("submitter_contact") or "").strip()
    if not contact:
        findings.append(SystemFinding("submitter_contact", "empty: give --contact or submitter_contact in the "
                                                           "--system-notes file"))
    elif not _EMAIL.match(contact):
        findings.append(SystemFinding("submitter_contact", f"{contact!r} is not an e-mail address", "warning"))
    for key in ("hw_notes", "sw_notes"):
        if key in desc and not str(desc.get(key) or "").strip():
            findings.append(SystemFinding(key, "empty: describe what no probe can see (--system-notes)", "warning"))
    for spec in rules.fields:
        if spec.allowed and spec.name in desc:
            value = desc.get(spec.name)
            ok = value in spec.allowed if spec.case_sensitive else \
                str(value).lower() in {a.lower() for a in spec.allowed}
            if not ok:
                findings.append(SystemFinding(spec.name, f"{value!r} is not one of {', '.join(spec.allowed)}"))
    nodes = str(desc.get("number_of_nodes", "")).strip()
    if "number_of_nodes" in desc and (not nodes.isdigit() or int(nodes) < 1):
        findings.append(SystemFinding("number_of_nodes", f"{nodes!r} is not a positive number of nodes"))
    if str(desc.get("division", "")).lower() != division.lower():
        findings.append(SystemFinding("division", f"{desc.get('division')!r} differs from the division "
                                                  f"{division!r}"))
    if division == "closed" and network_mode:
        findings.append(SystemFinding("is_network", "the closed division must not be in network mode"))
    if division == "network" and not network_mode:
        findings.append(SystemFinding("is_network", "the network division needs is_network \"true\""))
    return findings
