"""``mlrepro report`` from the command line: the terminal table, the HTML file, JSON, bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parents[1] / "results"))
from check_testutil import real_tree  # noqa: E402

from mlrepro.cli.main import app  # noqa: E402
from mlrepro.results.tree import read_tree  # noqa: E402

FIXTURES = Path("/work/shared/fixtures/real-submissions")


def _warnings(tree: Path) -> int:
    """The tree's warnings: the short run's MIN_DURATION and DATASET_COVERAGE per result, plus what a reviewer
    would still ask about the systems json (SYSTEM_NOT_READY: how many depends on what this machine's probe saw)."""
    from mlrepro.results.check import check_tree

    report = check_tree(tree)
    assert {f.code for f in report.warnings} <= {"MIN_DURATION", "DATASET_COVERAGE", "SYSTEM_NOT_READY"}
    assert len([f for f in report.warnings if f.code != "SYSTEM_NOT_READY"]) == 4
    return len(report.warnings)


def test_terminal_table_shows_every_result(run_trees: tuple[Path, Path]) -> None:
    a, b = run_trees
    res = CliRunner().invoke(app, ["report", str(a), "--compare", str(b)])
    assert res.exit_code == 0, res.output
    tree = read_tree(a)
    for r in tree.results:
        assert r.record is not None and r.record.profile_hash is not None
        assert r.record.profile_hash[:12] in res.output
        assert r.scenario in res.output
    assert "against" in res.output and "change %" in res.output
    assert f"problems: 0 error(s), {_warnings(a)} warning(s) (mlrepro check)" in res.output


def test_html_file(run_trees: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "deep" / "report.html"
    res = CliRunner().invoke(app, ["report", str(run_trees[0]), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert f"report: {out} (2 result(s), 0 error(s), {_warnings(run_trees[0])} warning(s))" in res.output
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>") and "vegaEmbed" in html and out.stat().st_mode & 0o044


def test_broken_tree_one_line_per_problem_exit_0(tmp_path: Path) -> None:
    root = real_tree(tmp_path, "v5.1", "closed_RedHat")
    (root / "closed/RedHat/systems/XE8640_4xH100_vLLM.json").write_text("[1, 2")
    res = CliRunner().invoke(app, ["report", str(root), "--version", "v5.1"])
    assert res.exit_code == 0 and res.exception is None, res.output
    assert "Traceback" not in res.output
    lines = [x for x in res.output.splitlines() if x.startswith("error: ")]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: closed/RedHat/systems/XE8640_4xH100_vLLM.json: is not valid JSON")
    assert lines[0].endswith("[SYSTEM_DESC_UNREADABLE]")


def test_json_output() -> None:
    res = CliRunner().invoke(app, ["report", str(FIXTURES / "v6.0/closed_MiTAC"), "--version", "v6.0",
                                   "--output", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["version"] == "v6.0" and len(data["results"]) == 6
    assert {r["unit"] for r in data["results"]} == {"Tokens/s"}


def test_bad_input(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["report", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "not a directory" in res.output
    res = CliRunner().invoke(app, ["report", str(tmp_path), "--version", "v9.9"])
    assert res.exit_code == 2, res.output
    blocked = tmp_path / "file"
    blocked.write_text("")
    res = CliRunner().invoke(app, ["report", str(FIXTURES / "v6.0/open_CoreWeave"), "--version", "v6.0",
                                   "-o", str(blocked / "r.html")])
    assert res.exit_code == 1 and "cannot write the report" in res.output


def test_terminal_table_of_an_llm_tree(tmp_path: Path) -> None:
    """tokens/s, TTFT and TPOT p99 columns for an LLM tree (the v6.1 Intel llama3_1-8b results), and the JSON."""
    root = real_tree(tmp_path, "v6.1", "closed_Intel_llm")
    res = CliRunner().invoke(app, ["report", str(root), "--version", "v6.1"], env={"COLUMNS": "220"})
    assert res.exit_code == 0, res.output
    header = next(line for line in res.output.splitlines() if line.startswith("submitter"))
    assert "tokens/s" in header and "TTFT p99 ms" in header and "TPOT p99 ms" in header
    server = next(line for line in res.output.splitlines() if " Server " in line)
    assert "1,140" in server and "1,907" in server and "96.36" in server
    res = CliRunner().invoke(app, ["report", str(root), "--version", "v6.1", "--output", "json"])
    rows = {r["scenario"]: r for r in json.loads(res.output)["results"]}
    assert rows["Server"]["tokens_per_second"] == 1139.51 and rows["Server"]["ttft_ms"]["99.00"] == 1906.933782
    assert rows["Offline"]["tpot_ms"] == {}
