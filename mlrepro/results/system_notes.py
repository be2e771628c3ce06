"""The systems-json fields no probe can see, from a YAML file (``--system-notes notes.yaml``).

Two layouts are read:

* mlrepro's: systems-json field names at the top level::

      submitter_contact: ops@example.com
      cooling: air
      host_networking_topology: single switch, 2x 100 GbE per node
      hw_notes: BIOS 2.1, SMT on, turbo on
      sw_notes: stock kernel, performance governor

* mlperf-sysinfo's own config file (``mlperf-sysinfo init``: ``system.cooling``, ``system.category``,
  ``system.availability``, ``system.type_detail``, ``system.name``, ``submission.contact``,
  ``submission.notes.{hardware,software,other_hardware}``), so one file serves both tools.

Values are scalars (written as strings). ``division`` and ``submitter`` belong to the tree: a file may name
them only if they agree with ``--division`` / ``--submitter``.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlrepro.results.errors import CollectInputError
from mlrepro.results.systems import known_fields

MAX_BYTES = 1 << 20

# mlperf-sysinfo config key (dotted) -> systems-json field (mlperf_sysinfo/output.py, _flat_overlay)
SYSINFO_CONFIG_KEYS: dict[str, str] = {
    "system.name": "system_name", "system.category": "system_type", "system.availability": "status",
    "system.cooling": "cooling", "system.type_detail": "system_type_detail", "system.size": "system_size",
    "system.networking_topology": "host_networking_topology",
    "submission.submitter": "submitter", "submission.contact": "submitter_contact",
    "submission.division": "division", "submission.notes.hardware": "hw_notes",
    "submission.notes.software": "sw_notes", "submission.notes.other_hardware": "other_hardware",
}
# parts of an mlperf-sysinfo config that say nothing about the systems json
_SYSINFO_IGNORED = ("profile", "output", "nodes", "remote", "power", "serving", "run", "training",
                    "system.accelerator", "system.shortened_name", "submission.container_link")


class SystemNotesError(CollectInputError):
    """The notes file cannot be read or holds something that is not a systems-json field. Exit code 2."""


def _flatten(doc: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def _scalar(where: str, key: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise SystemNotesError(f"{where}: {key}: expected text, got {type(value).__name__}")
    return str(value).strip()


def parse_system_notes(doc: Any, where: str = "system notes") -> dict[str, str]:
    """Field -> value from a parsed notes document (either layout). Raises SystemNotesError naming the key."""
    if doc is None:
        return {}
    if not isinstance(doc, Mapping):
        raise SystemNotesError(f"{where}: expected a mapping of systems-json fields, got {type(doc).__name__}")
    if any(k in doc for k in ("submission", "system", "profile")) and not any(k in known_fields() for k in doc):
        fields: dict[str, str] = {}
        for dotted, value in _flatten(doc).items():
            if dotted.startswith(_SYSINFO_IGNORED):
                continue
            field = SYSINFO_CONFIG_KEYS.get(dotted)
            if field is None:
                hint = difflib.get_close_matches(dotted, SYSINFO_CONFIG_KEYS, n=1)
                raise SystemNotesError(f"{where}: {dotted}: not a field of the systems json"
                                       + (f" (did you mean {hint[0]}?)" if hint else ""))
            fields[field] = _scalar(where, dotted, value)
        return fields
    fields = {}
    for key, value in doc.items():
        name = str(key)
        if name not in known_fields():
            hint = difflib.get_close_matches(name, sorted(known_fields()), n=1)
            raise SystemNotesError(f"{where}: {name}: not a field of the systems json"
                                   + (f" (did you mean {hint[0]}?)" if hint else ""))
        fields[name] = _scalar(where, name, value)
    return fields


def load_system_notes(path: Path, *, submitter: str | None = None, division: str | None = None) -> dict[str, str]:
    """The fields of a notes file, ``division``/``submitter`` removed after checking they agree with the
    given ones. Raises SystemNotesError (exit code 2) naming the file and key."""
    import yaml

    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise SystemNotesError(f"{path}: cannot read the system notes ({exc.strerror or exc})") from None
    if len(data) > MAX_BYTES:
        raise SystemNotesError(f"{path}: larger than {MAX_BYTES} bytes; not a notes file")
    try:
        doc = yaml.safe_load(data.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark is not None else ""
        raise SystemNotesError(f"{path}: not valid YAML{at}") from None
    fields = parse_system_notes(doc, str(path))
    for key, given in (("submitter", submitter), ("division", division)):
        value = fields.pop(key, None)
        if value and given is not None and value.lower() != given.lower():
            raise SystemNotesError(f"{path}: {key}: {value!r} differs from --{key} {given!r}")
    return fields


def system_overrides(notes: Path | None = None, *, contact: str | None = None, submitter: str | None = None,
                     division: str | None = None) -> dict[str, str]:
    """The systems-json overrides of ``--system-notes FILE`` and ``--contact ADDRESS`` (the flag wins over
    the file's ``submitter_contact``). Raises SystemNotesError (exit code 2) on a bad file or contact."""
    fields = load_system_notes(notes, submitter=submitter, division=division) if notes is not None else {}
    if contact is not None:
        if not contact.strip() or any(c in contact for c in "\n\r\0"):
            raise SystemNotesError(f"--contact: {contact!r} is not a contact address")
        fields["submitter_contact"] = contact.strip()
    return fields
