"""The tree reader: keyed detail parsing agrees with the full parse; worker processes read what one process
reads; v5.x and v6.x layouts; unreadable files are recorded, not raised."""

from __future__ import annotations

from pathlib import Path

import pytest
from check_testutil import FIXTURES, real_tree

from mlrepro.harness.logparse import parse_detail
from mlrepro.results import tree as tree_mod
from mlrepro.results.tree import DETAIL_KEYS, TreeReadError, read_tree

DETAIL_LOGS = sorted(FIXTURES.rglob("mlperf_log_detail.txt"))


def test_fixture_logs_exist() -> None:
    assert len(DETAIL_LOGS) >= 30


@pytest.mark.parametrize("path", DETAIL_LOGS[::3], ids=lambda p: "/".join(p.parts[-6:]))
def test_keyed_parse_agrees_with_the_full_parse(path: Path) -> None:
    text = path.read_text()
    full, keyed = parse_detail(text), parse_detail(text, DETAIL_KEYS)
    assert keyed.values == {k: v for k, v in full.values.items() if k in DETAIL_KEYS}
    assert (keyed.errors, keyed.warnings, keyed.entry_count) == (full.errors, full.warnings, full.entry_count)
    assert (keyed.starts_with_entry, keyed.ends_cleanly, keyed.first_garbled_line) == \
        (full.starts_with_entry, full.ends_cleanly, full.first_garbled_line) == (True, True, None)
    assert keyed.scenario == full.scenario and keyed.seeds == full.seeds


def test_cut_and_garbled_logs() -> None:
    text = next(p for p in DETAIL_LOGS if "performance" in p.parts).read_text()
    lines = text.splitlines(keepends=True)
    cut = parse_detail("".join(lines[:-1]) + lines[-1][:30], DETAIL_KEYS)
    assert not cut.ends_cleanly and cut.first_garbled_line is None
    garbled = parse_detail("".join(lines[:5] + [lines[5][:50] + "\n"] + lines[6:]), DETAIL_KEYS)
    assert garbled.ends_cleanly and garbled.first_garbled_line == 6


def test_workers_read_what_one_process_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = real_tree(tmp_path, "v6.0", "closed_MiTAC")
    one = read_tree(root, "v6.0", jobs=1)
    monkeypatch.setattr(tree_mod, "PARALLEL_MIN_RESULTS", 1)
    two = read_tree(root, "v6.0", jobs=2)
    assert one.results == two.results and len(one.results) == 6


def test_v5_layout(tmp_path: Path) -> None:
    t = read_tree(real_tree(tmp_path, "v5.1", "closed_RedHat"), "v5.1")
    r = t.results[0]
    assert r.measurements_rel == ("closed/RedHat/measurements/IBM_Cloud_gx3-48x240x2l40s_vLLM/llama3.1-8b/Offline/"
                                  "IBM_Cloud_gx3-48x240x2l40s_vLLM.json")
    assert set(r.measurements_files) >= {"user.conf", "README.md"}
    assert r.compliance["TEST06"].rel.startswith("closed/RedHat/compliance/") and r.compliance["TEST06"].exists
    assert r.metric is not None and r.metric.unit == "Tokens/s"
    assert t.submitters[0].has_code and t.system(r) is not None


def test_unreadable_files_are_recorded(tmp_path: Path) -> None:
    root = real_tree(tmp_path, "v6.0", "closed_MiTAC")
    sysfile = next((root / "closed/MiTAC/systems").glob("*.json"))
    sysfile.write_bytes(b"\xff\xfe{")
    res = next((root / "closed/MiTAC/results").glob("*/llama2-70b-99/Offline"))
    (res / "performance/run_1/mlperf_log_detail.txt").write_bytes(b"\xff\xfe:::MLLOG")
    (res / "measurements.json").write_text("[]")
    t = read_tree(root, "v6.0")
    entry = t.system(t.results[0])
    assert entry is not None and entry.data is None and "not valid JSON" in (entry.error or "")
    off = next(r for r in t.results if r.rel.endswith("llama2-70b-99/Offline"))
    assert off.performance is not None and "not UTF-8" in (off.performance.detail_error or "")
    assert off.measurements is None and off.measurements_error == "is not a JSON object"


def test_root_must_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(TreeReadError, match="not a directory"):
        read_tree(tmp_path / "missing")
