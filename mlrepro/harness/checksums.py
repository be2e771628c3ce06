"""``checksums.sha256``: a sha256sum-format manifest of a run directory, and its verification.

Format: one line per file, ``<64 hex>  <path relative to the run dir, / separators>``, sorted by path
(``sha256sum -c checksums.sha256`` run inside the run directory accepts it). The manifest never lists itself.

Public API (``collect`` reuses it)::

    sha256_file(path) -> str
    write_manifest(run_dir, files=None) -> Path        (atomic; files default: every file under run_dir)
    read_manifest(path) -> dict[str, str]              (relative path -> hex; raises ManifestError)
    verify_manifest(run_dir, keep=None) -> Verification  (.ok, .bad, .mismatched, .missing, .unlisted, .kept,
                                                          .stamps: each listed file hashed once)
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST_NAME = "checksums.sha256"
_LINE_RE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")


class ManifestError(ValueError):
    """The manifest is missing or malformed. ``str(err)`` is one line."""


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def _all_files(run_dir: Path) -> list[Path]:
    out = []
    for root, dirs, files in os.walk(run_dir):
        dirs.sort()
        for name in files:
            p = Path(root) / name
            if p.is_file() and not p.is_symlink():
                out.append(p)
    return out


def _rel(run_dir: Path, path: Path) -> str:
    return path.relative_to(run_dir).as_posix()


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same directory and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_manifest(run_dir: str | Path, files: Iterable[str | Path] | None = None) -> Path:
    """Hash ``files`` (absolute, or relative to ``run_dir``; default: every regular file under it) and write
    ``<run_dir>/checksums.sha256`` atomically. Missing files are skipped. Returns the manifest path."""
    root = Path(run_dir)
    manifest = root / MANIFEST_NAME
    if files is None:
        paths = _all_files(root)
    else:
        paths = [p if Path(p).is_absolute() else root / p for p in map(Path, files)]
    entries: dict[str, str] = {}
    for p in paths:
        p = Path(p)
        if p.resolve() == manifest.resolve() or p.name.startswith(f".{MANIFEST_NAME}."):
            continue
        if not p.is_file():
            continue
        entries[_rel(root, p)] = sha256_file(p)
    text = "".join(f"{digest}  {rel}\n" for rel, digest in sorted(entries.items()))
    atomic_write_text(manifest, text)
    return manifest


def read_manifest(path: str | Path) -> dict[str, str]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ManifestError(f"{p}: cannot read checksum manifest ({exc.strerror or exc})") from None
    entries: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = _LINE_RE.match(line)
        if not m:
            raise ManifestError(f"{p}:{n}: not a sha256sum line")
        rel = m.group(2)
        if rel.startswith("/") or ".." in rel.split("/"):
            raise ManifestError(f"{p}:{n}: path {rel!r} escapes the run directory")
        entries[rel] = m.group(1)
    return entries


#: files larger than this are hashed in chunks and never kept in memory (``keep`` is ignored for them)
_BIG = 8 << 20

#: what identifies a file's content as verified: (size, mtime_ns, inode) when it was hashed
Stamp = tuple[int, int, int]


def stamp_of(st: os.stat_result) -> Stamp:
    """The :data:`Stamp` of a stat result: a file with the same stamp is the file that was hashed."""
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def _read(path: str) -> tuple[bytes, os.stat_result]:
    """(content, fstat) with plain syscalls (cheaper than ``open()`` for the many small files of a run)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        chunks = []
        while True:
            block = os.read(fd, max(st.st_size, 65536))
            if not block:
                break
            chunks.append(block)
        return b"".join(chunks), st
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Verification:
    """What :func:`verify_manifest` found. Each listed file was hashed once."""

    mismatched: list[str] = field(default_factory=list)   # listed, present, different content
    missing: list[str] = field(default_factory=list)      # listed, absent
    unlisted: list[str] = field(default_factory=list)     # present under run_dir, not listed (informational)
    manifest: dict[str, str] = field(default_factory=dict, repr=False)   # relative path -> sha256 hex
    kept: dict[str, bytes] = field(default_factory=dict, repr=False)
    """The verified bytes of the listed files ``keep`` selected (those of at most ``_BIG`` bytes)."""
    stamps: dict[str, Stamp] = field(default_factory=dict, repr=False)
    """The :data:`Stamp` of every verified file: a later read of the same stamp needs no new hash."""

    @property
    def ok(self) -> bool:
        """True when every listed file exists with the recorded hash (unlisted files do not count)."""
        return not self.mismatched and not self.missing

    @property
    def bad(self) -> list[str]:
        """The files that failed: different content first, then missing ones."""
        return self.mismatched + self.missing


def verify_manifest(run_dir: str | Path, manifest: str | Path | None = None, *,
                    keep: Callable[[str], bool] | None = None, list_unlisted: bool = True) -> Verification:
    """Check every file listed in the manifest (default ``<run_dir>/checksums.sha256``), hashing each once;
    ``keep(rel)`` selects files whose verified bytes are returned (so a reader parses what was hashed, and
    never reads it twice); ``list_unlisted=False`` skips the walk for files the manifest does not list.
    Raises ManifestError when the manifest itself is missing or malformed, or a listed file cannot be read."""
    root = Path(run_dir)
    entries = read_manifest(manifest if manifest is not None else root / MANIFEST_NAME)
    mismatched: list[str] = []
    missing: list[str] = []
    kept: dict[str, bytes] = {}
    stamps: dict[str, Stamp] = {}
    base = str(root)
    for rel, digest in sorted(entries.items()):
        path = os.path.join(base, rel)
        wanted = keep is not None and keep(rel)
        try:
            st = os.stat(path)
            if st.st_size > _BIG or not wanted:
                with open(path, "rb") as f:
                    st = os.fstat(f.fileno())
                    actual = hashlib.file_digest(f, "sha256").hexdigest()
                data = None
            else:
                data, st = _read(path)
                actual = hashlib.sha256(data).hexdigest()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            missing.append(rel)
            continue
        except OSError as exc:
            raise ManifestError(f"{root}: cannot read {rel} ({exc.strerror or exc})") from None
        if actual != digest:
            mismatched.append(rel)
            continue
        stamps[rel] = stamp_of(st)
        if data is not None:
            kept[rel] = data
    unlisted: list[str] = []
    if list_unlisted:
        listed = set(entries)
        unlisted = sorted(r for r in (_rel(root, p) for p in _all_files(root))
                          if r not in listed and r != MANIFEST_NAME)
    return Verification(mismatched=mismatched, missing=missing, unlisted=unlisted, manifest=entries, kept=kept,
                        stamps=stamps)
