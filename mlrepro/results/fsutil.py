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
from collections.abc import Mapping
from pathlib import Path

from mlrepro.results.errors import ResultsError

_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def read_file(path: str) -> tuple[bytes, os.stat_result]:
    """(content, fstat) of ``path`` with plain syscalls (cheaper than ``open()`` for many small files)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        chunks = []
        remaining = st.st_size
        while True:
            block = os.read(fd, max(remaining, 65536))
            if not block:
                break
            chunks.append(block)
            remaining -= len(block)
        return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), st
    finally:
        os.close(fd)


def write_new(path: str, data: bytes) -> None:
    """Create ``path`` (must not exist) with ``data``. No fsync (see module doc)."""
    fd = os.open(path, _WRITE_FLAGS, 0o644)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    finally:
        os.close(fd)


def write_files(base: Path, files: Mapping[str, bytes]) -> None:
    """Create the directory ``base`` (its parent must exist) and write ``files`` (relative path -> bytes)."""
    root = str(base)
    os.mkdir(root)
    made = {""}
    for rel in sorted(files):
        parent = rel.rpartition("/")[0]
        if parent not in made:
            os.makedirs(os.path.join(root, parent), exist_ok=True)
            while parent and parent not in made:
                made.add(parent)
                parent = parent.rpartition("/")[0]
        write_new(os.path.join(root, rel), files[rel])


def file_equals(path: Path | str, data: bytes) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False
    try:
        if os.fstat(fd).st_size != len(data):
            return False
        view = memoryview(data)
        pos = 0
        while True:
            block = os.read(fd, max(len(data) - pos, 1 << 16))
            if not block:
                return pos == len(data)
            if view[pos:pos + len(block)] != block:
                return False
            pos += len(block)
    finally:
        os.close(fd)


def dir_matches(base: Path, files: Mapping[str, bytes]) -> bool:
    """True when every file of ``files`` exists under ``base`` with exactly these bytes (other files in
    ``base`` are not looked at)."""
    root = str(base)
    if not os.path.isdir(root):
        return False
    return all(file_equals(os.path.join(root, rel), data) for rel, data in files.items())


def differing_files(base: Path, files: Mapping[str, bytes]) -> list[str]:
    root = str(base)
    return sorted(rel for rel, data in files.items() if not file_equals(os.path.join(root, rel), data))


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

    @property
    def fd(self) -> int | None:
        return self._fd

    def __enter__(self) -> DirLock:  # noqa: PYI034 (typing.Self needs 3.11)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
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
