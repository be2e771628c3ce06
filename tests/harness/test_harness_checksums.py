"""checksums.sha256: format, verification, tampering."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from mlrepro.harness.checksums import (
    ManifestError,
    read_manifest,
    sha256_file,
    verify_manifest,
    write_manifest,
)


def _tree(root: Path) -> None:
    (root / "Offline/performance/run_1").mkdir(parents=True)
    (root / "Offline/performance/run_1/mlperf_log_summary.txt").write_text("Result is : VALID\n")
    (root / "record.json").write_text("{}\n")
    (root / "name with spaces.txt").write_bytes(b"\x00\x01")


def test_manifest_lists_every_file_but_itself(tmp_path: Path) -> None:
    _tree(tmp_path)
    manifest = write_manifest(tmp_path)
    assert manifest == tmp_path / "checksums.sha256"
    lines = manifest.read_text().splitlines()
    assert lines == sorted(lines)
    entries = read_manifest(manifest)
    assert set(entries) == {"Offline/performance/run_1/mlperf_log_summary.txt", "record.json",
                            "name with spaces.txt"}
    assert entries["record.json"] == hashlib.sha256(b"{}\n").hexdigest() == sha256_file(tmp_path / "record.json")
    assert all(line[64:66] == "  " for line in lines)
    v = verify_manifest(tmp_path)
    assert v.ok and v.mismatched == v.missing == v.unlisted == []
    # rewriting does not list the old manifest
    write_manifest(tmp_path)
    assert "checksums.sha256" not in read_manifest(manifest)


def test_sha256sum_accepts_it(tmp_path: Path) -> None:
    import shutil

    if shutil.which("sha256sum") is None:
        pytest.skip("no sha256sum")
    _tree(tmp_path)
    write_manifest(tmp_path)
    proc = subprocess.run(["sha256sum", "-c", "--quiet", "checksums.sha256"], cwd=tmp_path, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_verify_detects_tampering_missing_and_unlisted(tmp_path: Path) -> None:
    _tree(tmp_path)
    write_manifest(tmp_path)
    (tmp_path / "record.json").write_text('{"status": "VALID"}\n')
    (tmp_path / "name with spaces.txt").unlink()
    (tmp_path / "extra.txt").write_text("added later")
    v = verify_manifest(tmp_path)
    assert not v.ok
    assert v.mismatched == ["record.json"]
    assert v.missing == ["name with spaces.txt"]
    assert v.unlisted == ["extra.txt"]


def test_explicit_file_list(tmp_path: Path) -> None:
    _tree(tmp_path)
    write_manifest(tmp_path, ["record.json", tmp_path / "Offline/performance/run_1/mlperf_log_summary.txt",
                              "does-not-exist"])
    assert set(read_manifest(tmp_path / "checksums.sha256")) == {
        "record.json", "Offline/performance/run_1/mlperf_log_summary.txt"}
    assert verify_manifest(tmp_path).unlisted == ["name with spaces.txt"]


@pytest.mark.parametrize("text, fragment", [
    ("nothex  file\n", "not a sha256sum line"),
    ("0" * 64 + "  ../../etc/passwd\n", "escapes"),
    ("0" * 64 + "  /etc/passwd\n", "escapes"),
])
def test_malformed_manifest(tmp_path: Path, text: str, fragment: str) -> None:
    (tmp_path / "checksums.sha256").write_text(text)
    with pytest.raises(ManifestError, match=fragment):
        verify_manifest(tmp_path)


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="cannot read"):
        verify_manifest(tmp_path)
