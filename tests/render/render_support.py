"""Helpers of the render tests that are not fixtures (import: ``from render_support import ...``)."""

from __future__ import annotations

import math
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlrepro.profiles.loader import builtin_profile_names

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILTINS = builtin_profile_names()


def require_tool(name: str, hint: str) -> None:
    """Skip when a tool is missing, but fail when MLREPRO_REQUIRE_TOOLS=1 (CI)."""
    message = f"{name} not found ({hint})"
    if os.environ.get("MLREPRO_REQUIRE_TOOLS") == "1":
        pytest.fail(message + " and MLREPRO_REQUIRE_TOOLS=1")
    pytest.skip(message)


def find_helm() -> str | None:
    local = REPO_ROOT / ".tools" / "bin" / "helm"
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which("helm")


class GoYamlLoader(yaml.SafeLoader):
    """PyYAML reading YAML written by Go (Helm's toYaml) the way Go does.

    Go leaves strings plain that only PyYAML's YAML 1.1 resolvers take for something else: ``=`` (the
    "value" tag), ``<<`` (merge) and numbers with underscores (``.11_``, ``0b_``). Go quotes every string
    that Go would read as a number, boolean or null, so here plain scalars are numbers only in the plain
    decimal forms Go writes, and a float that overflows (``73750e304587``, a short hash) is a string, as
    Go's resolver has it. Nothing in the parsed data is changed afterwards.
    """


def _go_float(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> float | str:
    value = loader.construct_yaml_float(node)
    if math.isinf(value) and ".inf" not in node.value.lower():
        return node.value
    return value


_DROPPED = {"tag:yaml.org,2002:value", "tag:yaml.org,2002:merge", "tag:yaml.org,2002:int",
            "tag:yaml.org,2002:float"}
GoYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _DROPPED]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
GoYamlLoader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789"))
GoYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."))
GoYamlLoader.add_constructor("tag:yaml.org,2002:float", _go_float)


def by_kind(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(objs, key=lambda o: (o["kind"], o["metadata"]["name"]))
