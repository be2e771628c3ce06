"""The report's rows and problems on real trees: the numbers are the tree's, a broken or partial tree gives
one problem per fault (what mlrepro check says) and never an exception, and comparisons pair results."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "results"))
from check_testutil import REAL_TREES, real_tree, verdict  # noqa: E402

from mlrepro.report import charts_for, compare_rows, read_report  # noqa: E402
from mlrepro.results.check import check_tree  # noqa: E402
from mlrepro.results.tree import read_tree  # noqa: E402


@pytest.mark.parametrize(("rnd", "name"), REAL_TREES, ids=[f"{r}/{n}" for r, n in REAL_TREES])
def test_rows_are_the_tree_and_problems_are_checks(tmp_path: Path, rnd: str, name: str) -> None:
    root = real_tree(tmp_path, rnd, name)
    version = verdict(rnd, name)["version"]
    rep = read_report(root, version=version)
    tree = read_tree(root, version)
    assert [r.path for r in rep.rows] == [r.rel for r in tree.results]
    for row, entry in zip(rep.rows, tree.results):
        assert row.value == (entry.metric.value if entry.metric else None)
        assert row.latency_ms == {p: ns / 1e6 for p, ns in entry.latency_ns.items()}
        assert row.accuracy == dict(entry.accuracy_values) and row.validity == entry.validity
        assert row.run_date == entry.run_date
    check = check_tree(root, version=version)
    assert [(p.code, p.path, p.message) for p in rep.problems] == \
        [(f.code, f.path, f.message) for f in check.findings]


def test_accelerator_and_date_of_a_real_result() -> None:
    rep = read_report("/work/shared/fixtures/real-submissions/v6.0/closed_MiTAC", version="v6.0")
    offline = next(r for r in rep.rows if r.benchmark == "llama2-70b-99" and r.scenario == "Offline")
    assert offline.accelerator == "8 x AMD Instinct MI350X 288GB HBM3e"
    assert offline.unit == "Tokens/s" and offline.value == 78988.6
    assert offline.run_date == "2026-02-04T03:08:21Z" and offline.source.endswith("(2026-02-04T03:08:21Z)")


def test_partial_and_broken_trees_are_problems_not_exceptions(tmp_path: Path) -> None:
    root = real_tree(tmp_path, "v5.1", "closed_RedHat")
    results = root / "closed/RedHat/results"
    (results / "XE8640_4xH100_vLLM/llama3.1-8b/Offline/performance/run_1/mlperf_log_detail.txt").unlink()
    (results / "XE8640_4xH100_vLLM/llama3.1-8b/Server/performance/run_1/mlperf_log_detail.txt").write_bytes(
        b"\xff\xfe garbage\n")
    (root / "closed/RedHat/systems/IBM_Cloud_gx3-48x240x2l40s_vLLM.json").write_text("{not json")
    shutil.rmtree(results / "IBM_Cloud_gx3-48x240x2l40s_vLLM/llama3.1-8b/Server/accuracy")
    rep = read_report(root, version="v5.1")
    assert len(rep.rows) == 4
    codes = {(p.code, p.path.split("/results/")[-1]) for p in rep.errors}
    assert ("PERF_MISSING", "XE8640_4xH100_vLLM/llama3.1-8b/Offline/performance/run_1/mlperf_log_detail.txt") \
        in codes
    assert any(c == "DETAIL_UNREADABLE" and "Server" in p for c, p in codes)
    assert any(c == "SYSTEM_DESC_UNREADABLE" for c, _ in codes)
    assert any(c == "ACCURACY_MISSING" and "IBM_Cloud" in p for c, p in codes)
    broken = next(r for r in rep.rows if r.system == "XE8640_4xH100_vLLM" and r.scenario == "Offline")
    assert broken.value is None and broken.errors >= 1
    ibm = next(r for r in rep.rows if r.system.startswith("IBM_Cloud"))
    assert ibm.accelerator is None                  # its systems json cannot be read: the problem says why
    charts_for(rep)                                 # what is left still charts


def test_tree_without_results_folder(tmp_path: Path) -> None:
    rep = read_report(real_tree(tmp_path, "v5.1", "closed_Intel_VMware"), version="v5.1")
    assert rep.rows == ()
    assert [(p.code, p.path) for p in rep.errors if p.code == "RESULTS_DIR_MISSING"] == \
        [("RESULTS_DIR_MISSING", "closed/Intel_VMware/results")]
    assert charts_for(rep) == ()


def test_comparison_pairs_one_system_each_side_by_benchmark(run_trees: tuple[Path, Path], tmp_path: Path) -> None:
    a, _ = run_trees
    moved = tmp_path / "elsewhere" / "submission"
    shutil.copytree(a, moved)
    system_dir = next((moved / "open/mlrepro/results").iterdir())
    system_dir.rename(system_dir.parent / "another-machine")
    rep = read_report(a, compare=moved)
    cmp = rep.comparison
    assert cmp is not None and len(cmp.changes) == 2 and not cmp.only_base and not cmp.only_other
    assert cmp.matched_by.startswith("benchmark and scenario")
    assert all(c.change_pct == 0 for c in cmp.changes)
    assert cmp.names == ("tree-a/submission", "elsewhere/submission")


def test_compare_rows_keeps_unmatched_results(run_trees: tuple[Path, Path]) -> None:
    a, b = run_trees
    ra, rb = read_report(a).rows, read_report(b).rows
    cmp = compare_rows(a, ra[:1], b, rb)
    assert len(cmp.changes) == 1 and len(cmp.only_other) == 1 and not cmp.only_base


def test_unknown_round_and_missing_root_are_bad_input(tmp_path: Path) -> None:
    from mlrepro.errors import BadInputError

    with pytest.raises(BadInputError):
        read_report(tmp_path / "missing")
    with pytest.raises(BadInputError):
        read_report(tmp_path, version="v0.1")


def test_llm_rows_carry_tokens_and_token_latency_charts(tmp_path: Path) -> None:
    """The v6.1 Intel llama3_1-8b tree: tokens/s of both results, TTFT/TPOT (ms) of the Server result, charted
    beside its latency percentiles."""
    rep = read_report(real_tree(tmp_path, "v6.1", "closed_Intel_llm"), version="v6.1")
    by = {r.scenario: r for r in rep.rows}
    assert by["Offline"].tokens_per_second == 1916.74 and by["Offline"].ttft_ms == {}
    srv = by["Server"]
    assert (srv.tokens_per_second, srv.ttft_p99_ms, srv.tpot_p99_ms) == (1139.51, 1906.933782, 96.363771)
    assert list(srv.ttft_ms) == ["50.00", "90.00", "95.00", "97.00", "99.00", "99.90"]
    charts = charts_for(rep)
    assert [(c.kind, c.title) for c in charts] == [
        ("throughput", "llama3_1-8b · Offline: throughput"), ("throughput", "llama3_1-8b · Server: throughput"),
        ("latency", "llama3_1-8b · Server: latency percentiles"),
        ("ttft", "llama3_1-8b · Server: time to first token (TTFT)"),
        ("tpot", "llama3_1-8b · Server: time per output token (TPOT)")]
    ttft = next(c for c in charts if c.kind == "ttft")
    assert ttft.units == "ms" and {v["ms"] for v in ttft.spec["data"]["values"]} >= {1906.933782}
    assert all(c.spec["encoding"]["x"]["title"] == "Tokens/s" for c in charts if c.kind == "throughput")


def test_endpoints_tree_is_reported(tmp_path: Path) -> None:
    """A v6.1 endpoints tree (built fixture, tests/results/fixtures/endpoints-v6.1): rows from its
    result_summary.json, no problem."""
    fixture = Path(__file__).parents[1] / "results" / "fixtures" / "endpoints-v6.1" / "tree"
    rep = read_report(fixture, version="v6.1")
    assert not rep.problems
    by = {r.scenario: r for r in rep.rows}
    assert all(r.endpoints and r.unit == "Tokens/s" and r.metric == "tps (result_summary.json)" for r in rep.rows)
    assert by["Interactive"].tokens_per_second == pytest.approx(3197.5, rel=1e-4)
    assert by["Interactive"].ttft_p99_ms == pytest.approx(313.248) and by["Interactive"].tpot_p99_ms == \
        pytest.approx(24.3972)
    assert by["Offline"].ttft_p99_ms is None and by["Offline"].latency_ms["99.00"] == pytest.approx(654_608.0)
    assert by["Server"].accuracy["ROUGE1"] == "38.7021"
    assert {c.kind for c in charts_for(rep)} == {"throughput", "latency", "ttft", "tpot"}
