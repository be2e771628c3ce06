"""Deep merge of profile documents, remembering which source set each key.

Semantics (documented in the README):
- mappings merge recursively; a scalar or list in the overlay replaces the base value;
- ``key+: [...]`` appends to the base list instead of replacing it (``packages: {pip+: [scipy]}``);
- ``key: null`` removes the key, so the schema default applies again.
"""

from __future__ import annotations

import copy
from typing import Any

Provenance = dict[str, str]  # dotted key -> source that last set it


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def deep_merge(base: dict[str, Any], overlay: dict[str, Any], source: str, provenance: Provenance,
               prefix: str = "") -> dict[str, Any]:
    """Return ``base`` merged with ``overlay`` (inputs untouched); record sources in ``provenance``."""
    result = copy.deepcopy(base)
    for raw_key, value in overlay.items():
        key = str(raw_key)
        append = key.endswith("+") and len(key) > 1
        if append:
            key = key[:-1]
        dotted = _join(prefix, key)
        if value is None and not append:
            result.pop(key, None)
            _forget(provenance, dotted)
            provenance[dotted] = source
            continue
        current = result.get(key)
        if append:
            if not isinstance(value, list):
                raise TypeError(f"{dotted}+: appending needs a list, got {type(value).__name__}")
            if current is None:
                current = []
            if not isinstance(current, list):
                raise TypeError(f"{dotted}+: cannot append to a {type(current).__name__}")
            result[key] = current + copy.deepcopy(value)
            provenance[dotted] = source
        elif isinstance(value, dict) and isinstance(current, dict):
            result[key] = deep_merge(current, value, source, provenance, dotted)
        else:
            _forget(provenance, dotted)
            result[key] = copy.deepcopy(value)
            _record(provenance, dotted, value, source)
    return result


def _record(provenance: Provenance, dotted: str, value: Any, source: str) -> None:
    provenance[dotted] = source
    if isinstance(value, dict):
        for k, v in value.items():
            _record(provenance, _join(dotted, str(k).rstrip("+")), v, source)


def _forget(provenance: Provenance, dotted: str) -> None:
    for key in [k for k in provenance if k.startswith(dotted + ".")]:
        del provenance[key]


def source_of(provenance: Provenance, dotted: str, default: str) -> str:
    """The source that set ``dotted`` or its closest parent (``default`` when none did)."""
    key = dotted
    while key:
        if key in provenance:
            return provenance[key]
        key = key.rpartition(".")[0]
    # a child set by a source names the source for the parent, too (e.g. an unknown key inside a block)
    children = [v for k, v in provenance.items() if k.startswith(dotted + ".")] if dotted else []
    return children[-1] if children else default


def dotted_overlay(dotted: str, value: Any) -> dict[str, Any]:
    """The overlay document that sets ``dotted`` (``a.b.c``) to ``value``."""
    overlay: dict[str, Any] = {}
    node = overlay
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return overlay
