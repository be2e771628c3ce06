"""The harness wheel: ``mlrepro/__init__.py`` and ``mlrepro/harness/**`` as a deterministic, pure-Python
wheel (the same sources always give the same bytes, so the image's content hash is stable).

It carries no dependencies (they come from the image's lock) and only the entry points that point into the
harness (``mlrepro-harness`` and the workload plugins).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from functools import lru_cache
from pathlib import Path

from mlrepro import __version__

HARNESS_DIST = "mlrepro_harness"
HARNESS_WHEEL = f"{HARNESS_DIST}-{__version__}-py3-none-any.whl"
_ZIP_TIME = (2023, 6, 10, 0, 0, 0)  # fixed: the same harness always gives the same wheel bytes
_SKIP_DIRS = {"__pycache__", "tests", "test"}
_SKIP_SUFFIXES = (".pyc", ".pyo")

def harness_files() -> list[tuple[str, Path]]:
    """(path in the wheel, source file) of ``mlrepro/__init__.py`` and ``mlrepro/harness/**``."""
    from mlrepro.resources import PACKAGE_DIR

    found = [("mlrepro/__init__.py", PACKAGE_DIR / "__init__.py")]
    root = PACKAGE_DIR / "harness"
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file() or any(part in _SKIP_DIRS or part.startswith(".") for part in rel.parts):
            continue
        if path.suffix in _SKIP_SUFFIXES:
            continue
        found.append((f"mlrepro/harness/{rel.as_posix()}", path))
    return found


def harness_entry_points() -> dict[str, dict[str, str]]:
    """Entry points of mlrepro that point into the harness: ``mlrepro-harness`` and the workloads."""
    from mlrepro.resources import REPO_ROOT

    groups: dict[str, dict[str, str]] = {}
    pyproject = REPO_ROOT / "pyproject.toml"
    try:
        import tomllib

        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        project = data.get("project", {})
        raw = {"console_scripts": project.get("scripts", {}), **project.get("entry-points", {})}
    except (ImportError, OSError):
        import importlib.metadata

        raw = {}
        for ep in importlib.metadata.distribution("mlrepro").entry_points:
            raw.setdefault(ep.group, {})[ep.name] = ep.value
    for group, entries in raw.items():
        keep = {n: v for n, v in entries.items() if v.split(":", 1)[0].startswith("mlrepro.harness")}
        if keep:
            groups[group] = dict(sorted(keep.items()))
    return dict(sorted(groups.items()))


def harness_wheel() -> tuple[str, bytes]:
    """``(file name, bytes)`` of a deterministic, pure-Python wheel of the harness (no dependencies:
    they come from the lock)."""
    files = harness_files()
    key = tuple((arc, str(src), src.stat().st_mtime_ns, src.stat().st_size) for arc, src in files)
    return _harness_wheel(key, json.dumps(harness_entry_points(), sort_keys=True))


@lru_cache(maxsize=4)
def _harness_wheel(key: tuple[tuple[str, str, int, int], ...], entry_points_json: str) -> tuple[str, bytes]:
    dist_info = f"{HARNESS_DIST}-{__version__}.dist-info"
    contents: list[tuple[str, bytes]] = [(arc, Path(src).read_bytes()) for arc, src, _mtime, _size in key]
    metadata = (f"Metadata-Version: 2.1\nName: mlrepro-harness\nVersion: {__version__}\n"
                "Summary: The mlrepro benchmark harness (what runs inside the image); dependencies come from "
                "the image's lock\nRequires-Python: >=3.10\n")
    wheel = ("Wheel-Version: 1.0\nGenerator: mlrepro\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    eps = json.loads(entry_points_json)
    entry_points = "".join(f"[{g}]\n" + "".join(f"{n} = {v}\n" for n, v in items.items()) + "\n"
                           for g, items in eps.items())
    contents += [(f"{dist_info}/METADATA", metadata.encode()), (f"{dist_info}/WHEEL", wheel.encode()),
                 (f"{dist_info}/entry_points.txt", entry_points.encode()),
                 (f"{dist_info}/top_level.txt", b"mlrepro\n")]
    record = "".join(f"{arc},sha256={_b64sha(data)},{len(data)}\n" for arc, data in contents)
    record += f"{dist_info}/RECORD,,\n"
    contents.append((f"{dist_info}/RECORD", record.encode()))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for arc, data in contents:
            info = zipfile.ZipInfo(arc, date_time=_ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return HARNESS_WHEEL, buf.getvalue()


def _b64sha(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
