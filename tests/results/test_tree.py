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


def test_llm_token_figures(tmp_path: Path) -> None:
    """The v6.1 Intel llama3_1-8b tree: tokens/s of both runs, TTFT/TPOT percentiles of the Server run (ns)."""
    t = read_tree(real_tree(tmp_path, "v6.1", "closed_Intel_llm"), "v6.1")
    by = {r.scenario: r for r in t.results}
    off, srv = by["Offline"].tokens, by["Server"].tokens
    assert off is not None and off.tokens_per_second == 1916.74 and off.ttft_ns == {} and off.tpot_ns == {}
    assert off.throughput_key == "result_tokens_per_second"
    assert srv is not None and srv.throughput_key == "result_completed_tokens_per_second"
    assert (srv.tokens_per_second, srv.ttft_p99_ns, srv.tpot_p99_ns) == (1139.51, 1_906_933_782, 96_363_771)
    assert srv.ttft_ns["99.90"] == 2_431_073_135 and srv.tpot_p50_ns == 78_287_939
    assert srv.to_dict() == {"tokens_per_second": 1139.51, "ttft_p50_ns": 1_750_370_195, "ttft_p99_ns": 1_906_933_782,
                             "tpot_p50_ns": 78_287_939, "tpot_p99_ns": 96_363_771}
    mitac = read_tree(real_tree(tmp_path / "m", "v6.0", "closed_MiTAC"), "v6.0")
    assert all(r.tokens is not None for r in mitac.results)     # llama2-70b: an LLM in every scenario
    v5 = read_tree(real_tree(tmp_path / "s", "v5.1", "closed_The_Stage"), "v5.1")
    assert all(r.tokens is None for r in v5.results)            # stable-diffusion-xl: no token figures
