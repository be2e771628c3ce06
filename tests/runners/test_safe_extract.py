"""safe_extract: good archives extract; malicious members are rejected by name and nothing is left behind."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from mlrepro.runners.errors import ArchiveError, UnsafeArchiveError
from mlrepro.runners.safe_extract import safe_extract


def _tar(members: list[tuple[str, str, bytes | str]], mode: str = "w") -> bytes:
    """Build a tar: (kind, name, data-or-linkname) with kind file | dir | sym | hard | chr | blk | fifo."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for kind, name, data in members:
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            if kind == "file":
                assert isinstance(data, bytes)
                info.size = len(data)
                info.mode = 0o644
                tf.addfile(info, io.BytesIO(data))
                continue
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, str(data)
            elif kind == "hard":
                info.type, info.linkname = tarfile.LNKTYPE, str(data)
            elif kind == "chr":
                info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
            elif kind == "blk":
                info.type, info.devmajor, info.devminor = tarfile.BLKTYPE, 8, 0
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            tf.addfile(info)
    return buf.getvalue()


def _nothing_left(tmp_path: Path, dest: Path) -> None:
    assert not dest.exists()
    assert [p.name for p in dest.parent.iterdir() if p.name.startswith(f".{dest.name}.extract-")] == []


RESULTS = [
    ("dir", "results", b""),
    ("dir", "results/run-1", b""),
    ("file", "results/run-1/record.json", b'{"run_id": "run-1"}\n'),
    ("dir", "results/run-1/Offline/performance/run_1", b""),
    ("file", "results/run-1/Offline/performance/run_1/mlperf_log_summary.txt", b"Result is : VALID\n"),
    ("sym", "results/run-1/latest", "Offline/performance/run_1"),
    ("hard", "results/run-1/record-copy.json", "results/run-1/record.json"),
]


def test_extracts_a_docker_like_archive(tmp_path: Path) -> None:
    data = _tar(RESULTS)
    chunks = [data[i:i + 1000] for i in range(0, len(data), 1000)]   # what get_archive yields
    res = safe_extract(iter(chunks), tmp_path / "out", strip_components=1)
    out = tmp_path / "out"
    assert res.files == 3 and res.links == 1 and res.dest == out
    assert (out / "run-1/record.json").read_bytes() == b'{"run_id": "run-1"}\n'
    assert (out / "run-1/record-copy.json").read_bytes() == b'{"run_id": "run-1"}\n'
    assert not (out / "run-1/record-copy.json").samefile(out / "run-1/record.json")   # a copy, not a link
    assert os.readlink(out / "run-1/latest") == "Offline/performance/run_1"
    assert (out / "run-1/latest/mlperf_log_summary.txt").read_text() == "Result is : VALID\n"


def test_extracts_file_objects_bytes_and_gzip(tmp_path: Path) -> None:
    data = _tar([("file", "./a/b.txt", b"x")], mode="w:gz")
    safe_extract(io.BytesIO(data), tmp_path / "o1")
    safe_extract(data, tmp_path / "o2")
    assert (tmp_path / "o1/a/b.txt").read_bytes() == (tmp_path / "o2/a/b.txt").read_bytes() == b"x"


@pytest.mark.parametrize("members, bad, reason", [
    ([("file", "/etc/cron.d/evil", b"x")], "/etc/cron.d/evil", "absolute"),
    ([("file", "../evil", b"x")], "../evil", "'..'"),
    ([("file", "ok/../../evil", b"x")], "ok/../../evil", "'..'"),
    ([("sym", "link", "/etc/passwd")], "link", "absolute"),
    ([("sym", "link", "../../outside")], "link", "outside"),
    ([("dir", "d", b""), ("sym", "d/link", "../..")], "d/link", "outside"),
    ([("sym", "link", "."), ("file", "link/file", b"x")], "link/file", "through the symlink"),
    ([("dir", "sub", b""), ("sym", "l", "sub"), ("sym", "l/x", "..")], "l/x", "through the symlink"),
    ([("sym", "a", "b/.."), ("sym", "b", ".")], "a", "resolves outside"),
    ([("hard", "h", "/etc/passwd")], "/etc/passwd", "absolute"),
    ([("hard", "h", "../outside")], "../outside", "'..'"),
    ([("hard", "h", "not-extracted")], "h", "not a file extracted"),
    ([("chr", "dev/null", b"")], "dev/null", "device"),
    ([("blk", "dev/sda", b"")], "dev/sda", "device"),
    ([("fifo", "pipe", b"")], "pipe", "FIFO"),
    ([("file", "f", b"x"), ("dir", "f", b"")], "f", "directory would replace"),
    ([("sym", "s", "t"), ("file", "s", b"x")], "s", "would replace"),
])
def test_rejects_malicious_members(tmp_path: Path, members: list, bad: str, reason: str) -> None:
    dest = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError) as err:
        safe_extract(_tar(members), dest)
    assert err.value.member == bad and reason in err.value.reason
    assert repr(bad) in str(err.value)
    _nothing_left(tmp_path, dest)
    assert not (tmp_path / "evil").exists() and not (tmp_path.parent / "evil").exists()


def test_limits_and_bad_input(tmp_path: Path) -> None:
    many = _tar([("file", f"f{i}", b"x") for i in range(20)])
    with pytest.raises(UnsafeArchiveError, match="more than 10 members"):
        safe_extract(many, tmp_path / "a", max_members=10)
    with pytest.raises(UnsafeArchiveError, match="more than 5 bytes"):
        safe_extract(many, tmp_path / "b", max_bytes=5)
    with pytest.raises(UnsafeArchiveError, match="not allowed"):
        safe_extract(_tar([("sym", "l", "x")]), tmp_path / "c", allow_symlinks=False)
    with pytest.raises(ArchiveError):
        safe_extract(b"this is not a tar stream at all" * 40, tmp_path / "d")
    truncated = _tar([("file", "big", b"y" * 5000)])[:2000]
    with pytest.raises(ArchiveError):
        safe_extract(truncated, tmp_path / "e")
    (tmp_path / "exists").mkdir()
    with pytest.raises(ArchiveError, match="already exists"):
        safe_extract(_tar([("file", "f", b"x")]), tmp_path / "exists")
    for name in "abcde":
        _nothing_left(tmp_path, tmp_path / name)


def test_modes_are_sanitised(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("suid")
        info.size, info.mode = 1, 0o4777
        tf.addfile(info, io.BytesIO(b"x"))
    safe_extract(buf.getvalue(), tmp_path / "o")
    assert (tmp_path / "o/suid").stat().st_mode & 0o7777 == 0o755
