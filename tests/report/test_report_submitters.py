"""Two results that differ only in their submitter (same division, system name, benchmark and scenario): each is
its own mark in the charts, with its own label and its own value (never one bar of their sum), and both tables
(HTML and terminal) name the submitter. The terminal tables of ``report`` and ``check`` fit 80 and 120 columns
with every id whole."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parents[1] / "results"))
from check_testutil import mllog_set, real_tree  # noqa: E402

from mlrepro.cli.main import app  # noqa: E402
from mlrepro.report import charts_for, read_report, write_html  # noqa: E402

SYSTEM = "XE8640_4xH100_vLLM"
OTHER_VALUE = 3888.5      # the copy's Offline tokens/s (RedHat's is 5777.08)


@pytest.fixture
def two_submitters(tmp_path: Path) -> Path:
    """The v5.1 Red Hat tree with a second submitter, MyOrg, publishing the same systems under the same names;
    MyOrg's Offline result of XE8640_4xH100_vLLM is made another number."""
    root = real_tree(tmp_path, "v5.1", "closed_RedHat")
    shutil.copytree(root / "closed" / "RedHat", root / "closed" / "MyOrg")
    run = root / "closed" / "MyOrg" / "results" / SYSTEM / "llama3.1-8b" / "Offline" / "performance" / "run_1"
    mllog_set(run / "mlperf_log_detail.txt", "result_tokens_per_second", OTHER_VALUE)
    return root


def _offline_chart(root: Path) -> dict[str, Any]:
    rep = read_report(root, version="v5.1")
    (chart,) = [c for c in charts_for(rep) if c.id == "throughput-llama3-1-8b-offline"]
    return chart.spec


def test_each_result_is_its_own_mark_with_a_distinct_label(two_submitters: Path) -> None:
    spec = _offline_chart(two_submitters)
    values = spec["data"]["values"]
    assert len(values) == 4                                   # 2 submitters x 2 systems: one mark each
    labels = [v["label"] for v in values]
    assert len(set(labels)) == len(labels), labels            # marks are keyed by label: equal ones would merge
    mine = {v["label"]: v["value"] for v in values if SYSTEM in v["label"]}
    assert mine == {f"RedHat · {SYSTEM}": 5777.08, f"MyOrg · {SYSTEM}": OTHER_VALUE}   # not 9665.58
    assert spec["encoding"]["y"]["field"] == "label" and spec["encoding"]["x"].get("stack") is None


def test_same_submitter_in_two_divisions_and_then_the_folder(two_submitters: Path) -> None:
    """Labels stay distinct when submitter and system are equal too: the division, then the result folder."""
    shutil.copytree(two_submitters / "closed" / "MyOrg", two_submitters / "open" / "MyOrg")
    labels = [v["label"] for v in _offline_chart(two_submitters)["data"]["values"]]
    assert len(labels) == 6 and len(set(labels)) == 6, labels
    assert f"closed · MyOrg · {SYSTEM}" in labels and f"open · MyOrg · {SYSTEM}" in labels
    assert f"RedHat · {SYSTEM}" in labels                     # a label that is unique as it is stays short


def test_html_table_has_a_submitter_column(two_submitters: Path, tmp_path: Path) -> None:
    page = write_html(read_report(two_submitters, version="v5.1"), tmp_path / "r.html").read_text()
    assert "<th>submitter</th>" in page
    assert '<td title="closed">MyOrg</td>' in page and '<td title="closed">RedHat</td>' in page


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("command", ["report", "check"])
def test_terminal_tables_fit_with_whole_ids(two_submitters: Path, monkeypatch: pytest.MonkeyPatch, width: int,
                                            command: str) -> None:
    monkeypatch.setenv("COLUMNS", str(width))
    args = [command, str(two_submitters)] + (["--version", "v5.1"] if command == "check" else [])
    res = CliRunner().invoke(app, args)
    assert res.exit_code in (0, 1), res.output                # check exits 1: the tree has errors
    # the table lines (problem lines and the tree's path are messages, left for the terminal to wrap)
    table = [line for line in res.stdout.splitlines()
             if not line.startswith(("warning:", "error:", "warning ", "error ", str(two_submitters)))]
    assert all(len(line) <= width for line in table), "\n".join(table)
    rows = [line.split() for line in table if SYSTEM in line.split()]
    assert len(rows) == 4                                     # one line per result: nothing folded
    assert {r[0] for r in rows} == {"MyOrg", "RedHat"}        # two submitters: the submitter column stays
    assert all("llama3.1-8b" in r and ("Offline" in r or "Server" in r) for r in rows)


def test_report_json_keeps_every_field(two_submitters: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    res = CliRunner().invoke(app, ["report", str(two_submitters), "--output", "json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["results"]
    assert {r["submitter"] for r in rows} == {"MyOrg", "RedHat"}
    assert all({"accelerator", "latency_ms", "accuracy", "run_date", "profile_hash"} <= set(r) for r in rows)


def test_browser_draws_one_bar_per_result(browser: Any, two_submitters: Path, tmp_path: Path) -> None:
    """In a real headless Chromium: the Offline chart has one bar per result, on its own row, and the longest bar
    is the largest result (not the sum of two)."""
    from selenium.webdriver.support.ui import WebDriverWait

    rep = read_report(two_submitters, version="v5.1")
    browser.get(write_html(rep, tmp_path / "two.html").as_uri())
    WebDriverWait(browser, 60).until(
        lambda d: d.execute_script("return document.body.getAttribute('data-charts-rendered')")
        == str(len(charts_for(rep))))
    bars = browser.execute_script(
        "return [...document.querySelectorAll('#chart-throughput-llama3-1-8b-offline svg .mark-rect path')]"
        ".map(p => { const b = p.getBBox(); return [Math.round(b.y), b.width]; });")
    assert len(bars) == 4 and len({y for y, _ in bars}) == 4, bars         # four rows, nothing stacked
    widths = sorted(w for _, w in bars)
    values = sorted(v["value"] for v in _offline_chart(two_submitters)["data"]["values"])
    assert widths[-1] / widths[0] == pytest.approx(values[-1] / values[0], rel=0.02)   # 5777 / 1642, not 9666 / x
