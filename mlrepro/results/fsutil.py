"""File-system helpers for crash-safe tree writes: stage aside, compare, rename into place.

Durability without an fsync per file: everything is staged first, then one ``os.sync()`` flushes it, then the
renames make it visible and each touched parent directory is fsynced once. A process killed at any moment leaves
either the old or the new version of each staged unit (a result folder, a file), never a mix.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
from pathlib import Path
from typing import Mapping

from mlrepro.results.errors import ResultsError


def write_files(base: Path, files: Mapping[str, bytes]) -> None:
    """Create ``base`` and write ``files`` (relative path -> bytes) under it. No fsync (see module doc)."""
    made: set[str] = set()
    base.mkdir(parents=True, exist_ok=True)
    for rel in sorted(files):
        parent = os.path.dirname(rel)
        if parent and parent not in made:
            (base / parent).mkdir(parents=True, exist_ok=True)
            made.add(parent)
        with open(base / rel, "wb") as f:
            f.write(files[rel])


def file_equals(path: Path, data: bytes) -> bool:
    try:
        if os.stat(path).st_size != len(data):
            return False
        with open(path, "rb") as f:
            return f.read() == data
    except OSError:
        return False


def dir_matches(base: Path, files: Mapping[str, bytes]) -> bool:
    """True when every file of ``files`` exists under ``base`` with exactly these bytes (other files in
    ``base`` are not looked at)."""
    if not base.is_dir():
        return False
    return all(file_equals(base / rel, data) for rel, data in files.items())


def differing_files(base: Path, files: Mapping[str, bytes]) -> list[str]:
    return sorted(rel for rel, data in files.items() if not file_equals(base / rel, data))


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_tree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.exists():
        shutil.rmtree(path)


class DirLock:
    """An exclusive ``flock`` on ``<dir>/collect.lock`` (released by the kernel if the process dies)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> "DirLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise ResultsError(f"{self.path}: another collect is writing this tree") from None
            raise
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
