"""Fixtures of the render tests: the real helm binary and Helm rendering."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from render_support import BUILTINS, GoYamlLoader, by_kind, find_helm, require_tool

from mlrepro.profiles.loader import ResolvedProfile, resolve_profile
from mlrepro.render.helm_values import dump_values
from mlrepro.resources import helm_chart_dir


@pytest.fixture(scope="session")
def helm() -> str:
    path = find_helm()
    if path is None:
        require_tool("helm", "run `make install` or scripts/install-tools.sh")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def chart_dir() -> Path:
    return helm_chart_dir()


@pytest.fixture(scope="session")
def resolved_builtins() -> dict[str, ResolvedProfile]:
    return {name: resolve_profile(name) for name in BUILTINS}


@pytest.fixture(scope="session")
def helm_template(helm: str, chart_dir: Path) -> Callable[..., list[dict[str, Any]]]:
    """Render the chart with a values dict (written with dump_values); returns the objects by kind."""

    def render(values: dict[str, Any] | None, *, go_reader: bool = False, release: str = "bench") -> list[dict[str, Any]]:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [helm, "template", release, str(chart_dir)]
            if values is not None:
                path = Path(tmp) / "values.yaml"
                path.write_text(dump_values(values), encoding="utf-8")
                cmd += ["-f", str(path)]
            out = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, f"helm template failed: {out.stderr}"
        if go_reader:
            docs = list(yaml.load_all(out.stdout, Loader=GoYamlLoader))
        else:
            docs = list(yaml.safe_load_all(out.stdout))
        return by_kind([d for d in docs if d])

    return render
