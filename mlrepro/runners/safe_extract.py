"""Safe extraction of tar streams (Docker ``get_archive``, ``kubectl cp``-like ``tar cf -`` output).

The archive is extracted into a fresh staging directory beside ``dest`` and renamed to ``dest`` only when every
member was accepted, so ``dest`` never holds a partial or unsafe extraction. Rejected (UnsafeArchiveError, naming
the member):

- absolute names, names with ``..`` components, names that become empty after ``strip_components``;
- members whose path goes through a symlink extracted earlier;
- symlinks whose target is absolute or resolves outside the destination; hard links to anything but a regular
  file extracted earlier from the same archive (they are materialised as copies);
- character/block devices, FIFOs, and any other special member;
- more than ``max_members`` members or ``max_bytes`` bytes of file data (tar bombs).

Modes are reduced to ``0o755``/``0o644`` (no setuid, no ownership changes); timestamps are not restored.

Public API::

    safe_extract(source, dest, *, strip_components=0, max_members=1_000_000, max_bytes=64 GiB,
                 allow_symlinks=True) -> ExtractResult
"""

from __future__ import annotations

import io
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Union

from mlrepro.runners.errors import ArchiveError, UnsafeArchiveError

Source = Union[bytes, bytearray, BinaryIO, Iterable[bytes]]  # noqa: UP007 (a runtime alias on 3.10)

_CHUNK = 1 << 20


@dataclass(frozen=True)
class ExtractResult:
    dest: Path
    files: int
    directories: int
    links: int
    bytes: int


class _ChunkReader(io.RawIOBase):
    """A readable stream over an iterator of byte chunks (what ``get_archive`` returns)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it: Iterator[bytes] = iter(chunks)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buf:
            try:
                self._buf = bytes(next(self._it))
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def _as_stream(source: Source) -> BinaryIO:
    if isinstance(source, (bytes, bytearray)):
        return io.BytesIO(bytes(source))
    if hasattr(source, "read"):
        return source  # type: ignore[return-value]
    return io.BufferedReader(_ChunkReader(source))  # type: ignore[arg-type]


def _clean_name(name: str, strip: int) -> str | None:
    """The member's relative path, '' for the archive root, None when stripped away. Raises on unsafe."""
    if "\x00" in name:
        raise UnsafeArchiveError(name, "NUL byte in name")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":" and name[0].isalpha()):
        raise UnsafeArchiveError(name, "absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(name, "'..' path component")
    if strip:
        if len(parts) < strip:
            return None
        parts = parts[strip:]
    return "/".join(parts)


def _inside(rel: str) -> bool:
    norm = posixpath.normpath(rel)
    return not (norm == ".." or norm.startswith(("../", "/")))


def _check_parents(root: Path, rel: str, member: str) -> Path:
    """Create the parent directories of ``rel`` under ``root``; refuse to go through a symlink or a file."""
    parts = rel.split("/")
    cur = root
    for part in parts[:-1]:
        cur = cur / part
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            os.mkdir(cur, 0o755)
            continue
        if stat.S_ISLNK(st.st_mode):
            raise UnsafeArchiveError(member, f"path goes through the symlink {cur.relative_to(root).as_posix()!r}")
        if not stat.S_ISDIR(st.st_mode):
            raise UnsafeArchiveError(member, f"parent {cur.relative_to(root).as_posix()!r} is not a directory")
    return root / rel


def _prepare_target(target: Path, member: str) -> None:
    """Remove a previous regular file at ``target`` (tar allows a member to appear twice)."""
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return
    if stat.S_ISREG(st.st_mode):
        os.unlink(target)
        return
    raise UnsafeArchiveError(member, "would replace an existing directory or link")


def safe_extract(source: Source, dest: str | Path, *, strip_components: int = 0,
                 max_members: int = 1_000_000, max_bytes: int = 64 << 30,
                 allow_symlinks: bool = True) -> ExtractResult:
    """Extract the tar stream ``source`` (bytes, a binary file object, or an iterable of byte chunks; plain or
    compressed) into ``dest``, which must not exist. See the module docstring for what is rejected."""
    dest = Path(dest)
    if os.path.lexists(dest):
        raise ArchiveError(f"{dest}: destination already exists")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.extract-", dir=dest.parent))
    try:
        result = _extract_into(_as_stream(source), staging, strip_components, max_members, max_bytes,
                               allow_symlinks)
        os.rename(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExtractResult(dest=dest, **result)


def _extract_into(stream: BinaryIO, root: Path, strip: int, max_members: int, max_bytes: int,
                  allow_symlinks: bool) -> dict[str, int]:
    files = dirs = links = total = count = 0
    regular: set[str] = set()
    symlinks: list[str] = []
    try:
        tf = tarfile.open(fileobj=stream, mode="r|*")  # noqa: SIM115 (closed in the finally below)
    except tarfile.TarError as exc:
        raise ArchiveError(f"not a readable tar stream ({exc})") from None
    try:
        for m in tf:
            count += 1
            if count > max_members:
                raise UnsafeArchiveError(m.name, f"more than {max_members} members")
            rel = _clean_name(m.name, strip)
            if rel is None:
                continue
            if rel == "":
                if not m.isdir():
                    raise UnsafeArchiveError(m.name, "non-directory member names the destination itself")
                continue
            if m.isdir():
                target = _check_parents(root, rel, m.name)
                try:
                    st = os.lstat(target)
                except FileNotFoundError:
                    os.mkdir(target, 0o755)
                    dirs += 1
                else:
                    if not stat.S_ISDIR(st.st_mode):
                        raise UnsafeArchiveError(m.name, "directory would replace a file or link")
            elif m.isreg():
                total += m.size
                if total > max_bytes:
                    raise UnsafeArchiveError(m.name, f"archive holds more than {max_bytes} bytes")
                target = _check_parents(root, rel, m.name)
                _prepare_target(target, m.name)
                src = tf.extractfile(m)
                mode = 0o755 if m.mode & 0o111 else 0o644
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
                with os.fdopen(fd, "wb") as out:
                    if src is not None:
                        shutil.copyfileobj(src, out, _CHUNK)
                regular.add(rel)
                files += 1
            elif m.issym():
                if not allow_symlinks:
                    raise UnsafeArchiveError(m.name, "symbolic links are not allowed")
                link = m.linkname
                if not link or link.startswith("/") or "\x00" in link:
                    raise UnsafeArchiveError(m.name, f"symlink to absolute or empty target {link!r}")
                if not _inside(posixpath.join(posixpath.dirname(rel), link)):
                    raise UnsafeArchiveError(m.name, f"symlink target {link!r} is outside the destination")
                target = _check_parents(root, rel, m.name)
                _prepare_target(target, m.name)
                os.symlink(link, target)
                symlinks.append(rel)
                links += 1
            elif m.islnk():
                link_rel = _clean_name(m.linkname, strip) if m.linkname else None
                if not link_rel or link_rel not in regular:
                    raise UnsafeArchiveError(
                        m.name, f"hard link to {m.linkname!r}, which is not a file extracted from this archive")
                source_path = root / link_rel
                if os.path.islink(source_path) or not source_path.is_file():
                    raise UnsafeArchiveError(m.name, f"hard link target {m.linkname!r} is not a regular file")
                target = _check_parents(root, rel, m.name)
                _prepare_target(target, m.name)
                shutil.copyfile(source_path, target, follow_symlinks=False)
                regular.add(rel)
                files += 1
            elif m.ischr() or m.isblk():
                raise UnsafeArchiveError(m.name, "device file")
            elif m.isfifo():
                raise UnsafeArchiveError(m.name, "FIFO")
            else:
                raise UnsafeArchiveError(m.name, f"unsupported member type {m.type!r}")
    except tarfile.TarError as exc:
        raise ArchiveError(f"corrupt tar stream ({exc})") from None
    finally:
        tf.close()
    # Final check: every symlink, fully resolved on disk (chains included), stays inside.
    real_root = os.path.realpath(root)
    for rel in symlinks:
        resolved = os.path.realpath(root / rel)
        if resolved != real_root and not resolved.startswith(real_root + os.sep):
            raise UnsafeArchiveError(rel, "symlink resolves outside the destination")
    return {"files": files, "directories": dirs, "links": links, "bytes": total}
