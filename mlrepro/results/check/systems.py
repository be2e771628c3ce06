"""``systems/<system>.json``: the one place a system description is validated, against the round's field table
(``systems`` in mlrepro/results/rounds/data: required, meaningful, types, allowed values, network fields).

Source: the MLCommons submission checker, checks/system_check.py and SYSTEM_DESC_* of constants.py
(mlcommons/inference@b66003e). Types are mlrepro's own rule (the checker does not look at them).

Beyond the checker's rules, :func:`mlrepro.results.systems.submission_blockers` (empty contact, "N/A" in a field
the rules need meaningful, starter text, ...) becomes warnings (``SYSTEM_NOT_READY``, with the field's name).

Public API::

    system_problems(desc, round_, *, division, submitter) -> list[SystemProblem]
    check_systems(tree, round_, findings) -> int          (the number of systems json files checked)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlrepro.results.check.report import ERROR, Findings
from mlrepro.results.rounds import Round, SystemField
from mlrepro.results.systems import submission_blockers
from mlrepro.results.tree import SubmissionTree

_TYPES: dict[str, Any] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "mapping": lambda v: isinstance(v, dict),
    "list": lambda v: isinstance(v, list),
    "boolean": lambda v: isinstance(v, bool),
}


@dataclass(frozen=True)
class SystemProblem:
    code: str          # SYSTEM_FIELD_MISSING | SYSTEM_FIELD_EMPTY | SYSTEM_FIELD_TYPE | SYSTEM_FIELD_VALUE |
    severity: str      # SYSTEM_MISMATCH | NETWORK_MODE
    message: str


def _field_problems(spec: SystemField, desc: Mapping[str, Any]) -> list[SystemProblem]:
    name = spec.name
    if name not in desc:
        return [SystemProblem("SYSTEM_FIELD_MISSING", ERROR, f"field {name} is missing")] if spec.required else []
    value = desc[name]
    if spec.meaningful and not value:
        return [SystemProblem("SYSTEM_FIELD_EMPTY", ERROR,
                              f"field {name} needs a meaningful value, got {value!r}")]
    out = []
    if spec.types and not any(_TYPES[t](value) for t in spec.types):
        out.append(SystemProblem("SYSTEM_FIELD_TYPE", spec.type_severity,
                                 f"field {name} should be {' or '.join(spec.types)}, got {type(value).__name__}"))
    elif spec.allowed:
        ok = value in spec.allowed if spec.case_sensitive else \
            str(value).lower() in {a.lower() for a in spec.allowed}
        if not ok:
            out.append(SystemProblem("SYSTEM_FIELD_VALUE", spec.allowed_severity,
                                     f"field {name} is {value!r}, not one of {', '.join(spec.allowed)}"))
    return out


def system_problems(desc: Mapping[str, Any], round_: Round, *, division: str,
                    submitter: str) -> list[SystemProblem]:
    """What is wrong with the system description ``desc`` of ``<division>/<submitter>`` under ``round_``'s
    field table (every problem, in table order)."""
    rules = round_.systems
    out: list[SystemProblem] = []
    for spec in rules.fields:
        out.extend(_field_problems(spec, desc))
    if desc.get("is_network"):
        for name in rules.network_fields:
            if name not in desc:
                out.append(SystemProblem("SYSTEM_FIELD_MISSING", ERROR, f"field {name} is missing (network "
                                         "systems need it)"))
    for key, folder in (("division", division), ("submitter", submitter)):
        value = desc.get(key)
        if isinstance(value, str) and value and value.lower() != folder.lower():
            out.append(SystemProblem("SYSTEM_MISMATCH", ERROR, f"{key} is {value!r}, the folder says {folder!r}"))
    is_network = desc.get("is_network")
    network = isinstance(is_network, str) and is_network.lower() == "true"
    expected = rules.network_mode.get(division)
    if expected is not None and expected != network:
        want = '"true"' if expected else 'absent or "false"'
        out.append(SystemProblem("NETWORK_MODE", ERROR, f"the {division} division needs is_network {want}"))
    return out


def check_systems(tree: SubmissionTree, round_: Round, f: Findings) -> int:
    """Add the findings of every systems json of ``tree`` (and of the missing ones results need); returns the
    number of systems json files checked."""
    checked = 0
    for sub in tree.submitters:
        used = set(sub.result_systems)
        for sid, entry in sorted(sub.systems.items()):
            scope = f"{sub.rel}/results/{sid}" if sid in used else entry.rel
            if entry.error == "is missing":
                f.error("SYSTEM_DESC_MISSING", entry.rel, f"results/{sid} has no system description (the official "
                        "checker stops with a traceback)", scope=scope)
                continue
            checked += 1
            if entry.data is None:
                f.error("SYSTEM_DESC_UNREADABLE", entry.rel, f"{entry.error}", scope=scope)
                continue
            if sid not in used:
                f.warn("SYSTEM_UNUSED", entry.rel, "no result uses this system")
            for p in system_problems(entry.data, round_, division=sub.division, submitter=sub.name):
                f.add(p.severity, p.code, entry.rel, p.message, scope=scope)
            for b in submission_blockers(entry.data, division=sub.division, version=round_.version):
                # the official checker accepts these (N/A is an answer to it): what a reviewer would still refuse
                f.warn("SYSTEM_NOT_READY", entry.rel, f"{b.field}: {b.message}")
    return checked
