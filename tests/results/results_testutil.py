"""Helpers shared by the results tests (imported by name: tests/results is put on sys.path by conftest.py)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlrepro.harness.checksums import write_manifest

SUBMITTER = "mlrepro-test"


def valid_runs(runs: Path, *names: str) -> list[Path]:
    names = names or ("run-offline-sub", "run-single-perf", "run-single-acc")
    return [runs / n for n in names]


def edit_json(path: Path, fn: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def clone_run(src: Path, dst_parent: Path, run_id: str, *, finished_at: str | None = None,
              edit: Callable[[Path], None] | None = None) -> Path:
    """A copy of a run directory under a new run id (record and run.json updated, checksums rewritten)."""
    dst = dst_parent / run_id
    shutil.copytree(src, dst)

    def rec(d: dict[str, Any]) -> None:
        d["run_id"] = run_id
        if finished_at is not None:
            d["finished_at"] = finished_at

    edit_json(dst / "record.json", rec)
    edit_json(dst / "run.json", lambda d: d.__setitem__("run_id", run_id))
    if edit is not None:
        edit(dst)
    (dst / "checksums.sha256").unlink()
    write_manifest(dst)
    return dst


def snapshot(*roots: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``roots`` (relative path -> (bytes, mtime_ns)), plus directories (mtime only)."""
    out: dict[str, tuple[bytes, int]] = {}
    for root in roots:
        if not root.exists():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            d = Path(dirpath)
            out[f"{root.name}/{d.relative_to(root).as_posix()}/"] = (b"", d.stat().st_mtime_ns)
            for name in filenames:
                p = d / name
                out[f"{root.name}/{p.relative_to(root).as_posix()}"] = (p.read_bytes(), p.stat().st_mtime_ns)
    return out


def contents(*roots: Path, skip: tuple[str, ...] = ("collect.lock",)) -> dict[str, bytes]:
    """Relative path -> bytes of every file under ``roots`` (mtimes ignored)."""
    return {k: v[0] for k, v in snapshot(*roots).items() if not k.endswith("/") and
            not any(k.endswith(s) for s in skip)}
