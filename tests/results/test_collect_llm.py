"""collect with LLM runs (llama3.1-8b; harness run directories of real v6.1 LoadGen logs, llm_runs.py): the v6.x
tree the official checker accepts (llama3.1-8b/Offline, Server, Interactive in its own folder, TEST06, the
truncated accuracy log with accuracy.txt's hash= naming the kept full log), tokens/s as the result with TTFT and
TPOT beside it, open-division models under their own name with model_mapping.json."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from check_testutil import codes
from llm_runs import INTERACTIVE_TPOT_P99_NS, INTERACTIVE_TTFT_P99_NS, llm_run
from official_testutil import accepted_count, official_verdict, rejected

from mlrepro.results import layout as tl
from mlrepro.results.check import check_tree
from mlrepro.results.rundir import load_run
from mlrepro.results.submission import collect
from mlrepro.results.tree import read_tree

SUBMITTER = "mlrepro-test"
SCENARIOS = ("Offline", "Server", "Interactive")


@pytest.fixture
def llm_runs(runs: Path, tmp_path: Path) -> dict[str, Path]:
    out = tmp_path / "llm-runs"
    out.mkdir()
    return {s: llm_run(runs, out, f"llm-{s.lower()}", s) for s in SCENARIOS}


@pytest.fixture
def closed_tree(llm_runs: dict[str, Path], tmp_path: Path) -> Path:
    root = tmp_path / "submission"
    report = collect(list(llm_runs.values()), root, submitter=SUBMITTER, division="closed")
    assert len(report.placed) == 3 and not report.rejected, report.rejected
    return root


def _result(root: Path, scenario: str, bench: str = "llama3.1-8b", division: str = "closed") -> Path:
    return next((root / division / SUBMITTER / "results").glob(f"*/{bench}/{scenario}"))


def test_run_dir_carries_the_token_figures(llm_runs: dict[str, Path]) -> None:
    server = load_run(llm_runs["Server"])
    perf = server.performance
    assert perf is not None and not server.problems
    assert (perf.result, perf.result_unit) == (1139.51, "tokens/s")
    assert perf.tokens_per_second == 1139.51
    assert (perf.ttft_p50_ns, perf.ttft_p99_ns) == (1_750_370_195, 1_906_933_782)
    assert (perf.tpot_p50_ns, perf.tpot_p99_ns) == (78_287_939, 96_363_771)
    offline = load_run(llm_runs["Offline"]).performance
    assert offline is not None and (offline.result, offline.result_unit) == (1916.74, "tokens/s")
    assert offline.ttft_p99_ns is None and offline.tokens is not None and offline.tokens.ttft_ns == {}
    interactive = load_run(llm_runs["Interactive"])
    assert not interactive.problems       # a LoadGen Server log in an Interactive run is what Interactive is
    assert interactive.performance is not None
    assert interactive.performance.ttft_p99_ns == INTERACTIVE_TTFT_P99_NS
    assert interactive.compliance == {"TEST06": "Interactive/TEST06"}


def test_closed_tree_layout(closed_tree: Path, llm_runs: dict[str, Path]) -> None:
    for scenario in SCENARIOS:
        res = _result(closed_tree, scenario)
        files = sorted(p.relative_to(res).as_posix() for p in res.rglob("*") if p.is_file())
        assert files == ["README.md", "TEST06/verify_accuracy.txt", "accuracy/accuracy.txt",
                         "accuracy/mlperf_log_accuracy.json", "accuracy/mlperf_log_detail.txt",
                         "accuracy/mlperf_log_summary.txt", "measurements.json",
                         "performance/run_1/mlperf_log_detail.txt", "performance/run_1/mlperf_log_summary.txt",
                         "user.conf"], scenario
        run = llm_runs[scenario]
        assert (res / "TEST06/verify_accuracy.txt").read_bytes() == \
            (run / scenario / "TEST06/verify_accuracy.txt").read_bytes()
        # accuracy.txt keeps the reference's lines and names the full log, kept beside the tree
        txt = (res / "accuracy/accuracy.txt").read_text()
        assert "{'rouge1': '" in txt and "'gen_num': 13368}" in txt
        full = (run / scenario / "accuracy/mlperf_log_accuracy.json").read_bytes()
        digest = hashlib.sha256(full).hexdigest()
        assert txt.strip().splitlines()[-1] == f"hash={digest}"
        assert tl.full_accuracy_log(tl.sidecar_for(closed_tree), digest).read_bytes() == full
        assert json.loads((res / "accuracy/mlperf_log_accuracy.json").read_text())[0]["token_count"] > 0
    readme = (_result(closed_tree, "Server") / "README.md").read_text()
    assert "- Result: 1139.51 tokens/s (Result is : VALID)" in readme
    assert "- Time to first token: p50 1750.37 ms, p99 1906.93 ms; time per output token: p50 78.2879 ms, " \
           "p99 96.3638 ms (LoadGen)" in readme


def test_closed_tree_passes_check(closed_tree: Path) -> None:
    report = check_tree(closed_tree)
    assert report.ok and codes(report) == set() and codes(report, "warning") == set(), \
        [str(f) for f in report.findings]
    rows = {r.scenario: r for r in report.rows}
    assert (rows["Offline"].metric, rows["Offline"].value, rows["Offline"].unit) == \
        ("result_tokens_per_second", 1916.74, "Tokens/s")
    assert (rows["Interactive"].metric, rows["Interactive"].value) == ("result_completed_tokens_per_second", 1139.51)
    tree = read_tree(closed_tree)
    inter = next(r for r in tree.results if r.scenario == "Interactive")
    assert inter.tokens is not None and inter.tokens.ttft_p99_ns == INTERACTIVE_TTFT_P99_NS
    assert inter.tokens.tpot_p99_ns == INTERACTIVE_TPOT_P99_NS


def test_closed_tree_official_checker_accepts(closed_tree: Path) -> None:
    verdict = official_verdict(closed_tree, "v6.1")
    assert verdict["exit_code"] == 0 and accepted_count(verdict) == 3, verdict


def test_closed_result_without_test06(runs: Path, tmp_path: Path) -> None:
    """A run without TEST06 still makes a result folder; check says what it lacks (the official checker too)."""
    out = tmp_path / "llm-runs"
    out.mkdir()
    sources = [llm_run(runs, out, "llm-offline", "Offline"), llm_run(runs, out, "llm-server", "Server", test06=False)]
    root = tmp_path / "submission"
    collect(sources, root, submitter=SUBMITTER, division="closed")
    assert not (_result(root, "Server") / "TEST06").exists()
    report = check_tree(root)
    server = _result(root, "Server").relative_to(root).as_posix()
    assert [(f.code, f.path) for f in report.errors] == [("COMPLIANCE_MISSING", f"{server}/TEST06")]
    verdict = official_verdict(root, "v6.1")
    assert rejected(verdict) == {server}, verdict


def test_open_division_model_maps_to_the_benchmark(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "llm-runs"
    out.mkdir()
    sources = [llm_run(runs, out, f"my-{s.lower()}", s, benchmark="my-llama-8b", model_mapping="llama3.1-8b")
               for s in ("Offline", "Server")]
    root = tmp_path / "submission"
    report = collect(sources, root, submitter=SUBMITTER)
    assert {(p.benchmark, p.scenario) for p in report.placed} == {("my-llama-8b", "Offline"), ("my-llama-8b", "Server")}
    mapping = json.loads((root / "open" / SUBMITTER / "model_mapping.json").read_text())
    assert mapping == {"my-llama-8b": "llama3.1-8b"}
    check = check_tree(root)
    assert check.ok and {r.mlperf_benchmark for r in check.rows} == {"llama3.1-8b"}, [str(f) for f in check.errors]
    assert {r.unit for r in check.rows} == {"Tokens/s"}
    verdict = official_verdict(root, "v6.1")
    assert verdict["exit_code"] == 0 and accepted_count(verdict) == 2, verdict


def test_run_json_has_a_tokens_block(llm_runs: dict[str, Path]) -> None:
    """``run --output json``: each run's tokens block, from its verified results (null for runs without)."""
    from mlrepro.cli.report import result_data
    from mlrepro.flow.options import PipelineResult, RunSummary

    server = load_run(llm_runs["Server"])
    runs = (RunSummary("llm-server", "Server", "submission", "succeeded", 0, result=1139.51, result_unit="tokens/s",
                       run=server),
            RunSummary("other", "Offline", "performance", "failed", 1))
    data = result_data(PipelineResult(target="native", image="", runs=runs))
    assert data["runs"][0]["tokens"] == {"tokens_per_second": 1139.51, "ttft_p50_ns": 1_750_370_195,
                                         "ttft_p99_ns": 1_906_933_782, "tpot_p50_ns": 78_287_939,
                                         "tpot_p99_ns": 96_363_771}
    assert data["runs"][1]["tokens"] is None


@pytest.mark.parametrize("width", [80, 120])
def test_summary_and_results_table_carry_tokens_ttft_and_tpot(llm_runs: dict[str, Path], width: int) -> None:
    """``summarize`` takes tokens/s and the TTFT/TPOT p99 from the verified run (what the store keeps and ``runs``
    shows); the results table of ``run``/``launch`` shows the p99s in ms beside the tokens/s and fits the terminal,
    run ids whole."""
    from types import SimpleNamespace

    from rich.console import Console

    from mlrepro.cli.report import print_results, result_data
    from mlrepro.flow.options import PipelineResult
    from mlrepro.flow.summary import summarize
    from mlrepro.runners.base import RunOutcome
    from mlrepro.state.status import RunStatus

    summaries = []
    for scenario, path in llm_runs.items():
        run = load_run(path)
        job = SimpleNamespace(run=SimpleNamespace(run_id=run.run_id, scenario=scenario, mode="submission"),
                              profile_name="x86-cpu-llm")
        summaries.append(summarize(job, RunOutcome(RunStatus.succeeded, 0), run, 12.5))   # type: ignore[arg-type]
    server = next(s for s in summaries if s.scenario == "Server")
    assert (server.tokens_per_second, server.ttft_p99_ns, server.tpot_p99_ns) == (1139.51, 1_906_933_782,
                                                                                 96_363_771)
    assert server.result == server.tokens_per_second and server.result_unit == "tokens/s"
    inter = next(s for s in summaries if s.scenario == "Interactive")
    assert (inter.ttft_p99_ns, inter.tpot_p99_ns) == (INTERACTIVE_TTFT_P99_NS, INTERACTIVE_TPOT_P99_NS)
    result = PipelineResult(target="native", image="", runs=tuple(summaries))
    assert result_data(result)["runs"][1]["ttft_p99_ns"] == 1_906_933_782
    c = Console(width=width, record=True, force_terminal=False)
    print_results(c, result)
    lines = c.export_text().splitlines()
    assert all(len(line) <= width for line in lines), "\n".join(lines)
    for s in summaries:
        assert any(s.run_id in line.split() for line in lines)
    if width >= 120:
        header = next(line for line in lines if line.startswith("run id"))
        assert "TTFT p99" in header and "TPOT p99" in header
        row = next(line for line in lines if server.run_id in line.split())
        assert "1,907 ms" in row and "96.4 ms" in row and "1,140 tokens/s" in row
