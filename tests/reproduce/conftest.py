"""Fixtures of the reproduce tests: a real tree made by ``mlrepro run`` (native target, real LoadGen and model),
and per-test copies of it (with its ``.mlrepro`` sidecar) to tamper with or move. Helpers: reproduce_support.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from reproduce_support import Recorded, copy_tree, mlrepro, pinned_target  # noqa: E402


@pytest.fixture(scope="session")
def recorded_native(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    base = tmp_path_factory.mktemp("recorded")
    state = base / "state"
    profile = ("-p", "x86-cpu", "-f", "quick", "--target", "native")
    proc = mlrepro(state, "run", *profile, "--set", pinned_target(state, *profile), "--scenario", "SingleStream",
                   "--into", str(base / "submission"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return Recorded(base / "submission", state)


@pytest.fixture
def tree_copy(recorded_native: Recorded, tmp_path: Path) -> Recorded:
    return Recorded(copy_tree(recorded_native.tree, tmp_path / "copy"), recorded_native.state)
