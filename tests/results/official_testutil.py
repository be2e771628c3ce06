"""The real official MLCommons checker in the tests: ``scripts/official_check.py`` run on a tree, its verdict
compared with mlrepro's. It needs a git repository of mlcommons/inference holding the checker's commit
(``MLREPRO_INFERENCE_REPO``, default /work/.mirror/mlcommons+inference/repo); without one these comparisons are
skipped (CI has none: the recorded verdicts of the fixtures are what CI compares with)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mlrepro.results.check import CheckReport

REPO_ROOT = Path(__file__).resolve().parents[2]
COMMIT = "b66003e"


@cache
def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("official_check", REPO_ROOT / "scripts" / "official_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def inference_repo() -> str | None:
    """The mlcommons/inference repository holding the checker's commit, None when there is none here."""
    repo = os.environ.get("MLREPRO_INFERENCE_REPO", _script().DEFAULT_REPO)
    ok = subprocess.run(["git", "-C", repo, "cat-file", "-e", f"{COMMIT}^{{commit}}"], capture_output=True,
                        check=False).returncode == 0 if Path(repo).is_dir() else False
    return repo if ok else None


def official_verdict(root: Path, version: str) -> dict[str, Any]:
    """The official checker's verdict on ``root`` (skips the test when the checker is not available here)."""
    repo = inference_repo()
    if repo is None:
        pytest.skip("no mlcommons/inference repository with the official checker here (MLREPRO_INFERENCE_REPO)")
    return _script().verdict(str(root), version, repo, COMMIT)   # type: ignore[no-any-return]


def rejected(verdict: dict[str, Any]) -> set[str]:
    """The result folders the official checker gives no result for (its ``NoResults <perf log>`` lines)."""
    out = set()
    for line in verdict["errors"]:
        if line.startswith("NoResults "):
            out.add(str(Path(line.split(" ", 1)[1]).parents[2]))
    return out


def accepted_count(verdict: dict[str, Any]) -> int:
    m = re.match(r"Results=(\d+)", verdict["summary"])
    return int(m.group(1)) if m else 0


def rejected_by_mlrepro(report: CheckReport) -> set[str]:
    """Result folders with at least one error of mlrepro's check."""
    return {row.path for row in report.rows if any(e.scope and e.covers(row.path) for e in report.errors)}
