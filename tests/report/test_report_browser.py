"""The HTML report in a real headless Chromium without network: it loads without console errors, the table
shows the tree's numbers, sorting and filtering work, every chart is drawn (an SVG with marks), and a
screenshot is kept as a CI artifact ($MLREPRO_ARTIFACTS, default ./artifacts)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from mlrepro.report import charts_for, read_report, write_html
from mlrepro.report.html import format_value
from mlrepro.results.tree import read_tree

FIXTURES = Path("/work/shared/fixtures/real-submissions")
REPO = Path(__file__).resolve().parents[2]


def _artifacts() -> Path:
    out = Path(os.environ.get("MLREPRO_ARTIFACTS", REPO / "artifacts")) / "report"
    out.mkdir(parents=True, exist_ok=True)
    return out


def _open(browser: Any, page: Path, charts: int) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(page.as_uri())
    WebDriverWait(browser, 60).until(
        lambda d: d.execute_script("return document.body.getAttribute('data-charts-rendered')") == str(charts)
        or d.find_elements("css selector", ".vega:not(:has(svg))") == [] and charts == 0)


def _console_errors(browser: Any) -> list[str]:
    return [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def _column(browser: Any, table: str, header: str) -> list[str]:
    return browser.execute_script(
        "const t = document.getElementById(arguments[0]);"
        "const i = [...t.tHead.rows[0].cells].findIndex(c => c.textContent.trim() === arguments[1]);"
        "return [...t.tBodies[0].rows].filter(r => !r.hidden).map(r => r.cells[i].textContent.trim());",
        table, header)


def _click_header(browser: Any, header: str) -> None:
    for th in browser.find_elements("css selector", "#results thead th"):
        if th.text.strip() == header:
            th.click()
            return
    raise AssertionError(f"no column {header}")


def _charts_drawn(browser: Any) -> dict[str, int]:
    """chart id -> number of SVG marks drawn in it."""
    return browser.execute_script(
        "const out = {};"
        "document.querySelectorAll('.vega').forEach(el => {"
        "  out[el.id] = el.querySelectorAll('svg .mark-rect path, svg .mark-line path, svg .mark-symbol path')"
        "    .length; });"
        "return out;")


def test_real_submissions_render_and_sort(browser: Any, tmp_path: Path) -> None:
    """Two real published trees compared (v5.1 Red Hat against The Stage's, which check rejects)."""
    base = FIXTURES / "v5.1" / "closed_RedHat"
    rep = read_report(base, version="v5.1", compare=FIXTURES / "v5.1" / "closed_The_Stage")
    page = write_html(rep, tmp_path / "real.html")
    charts = charts_for(rep)
    _open(browser, page, len(charts))
    assert _console_errors(browser) == []
    # the table shows the numbers of the tree, as the tree reader reads them from the LoadGen logs
    tree = read_tree(base, "v5.1")
    shown = dict(zip(_column(browser, "results", "system"), _column(browser, "results", "value")))
    assert len(_column(browser, "results", "value")) == len(tree.results) == 4
    for r in tree.results:
        assert r.metric is not None
        assert format_value(r.metric.value) in _column(browser, "results", "value")
    assert shown  # one row per system at least
    # the LLM columns: tokens/s of every result, TTFT/TPOT p99 (ms) of the Server ones, as LoadGen logged them
    tokens = {r.rel: r.tokens for r in tree.results}
    assert all(t is not None for t in tokens.values())
    paths = browser.execute_script("return [...document.querySelectorAll('#results tbody tr')]"
                                   ".filter(r => !r.hidden).map(r => r.dataset.path)")
    shown_ttft = dict(zip(paths, _column(browser, "results", "TTFT p99 (ms)")))
    shown_tps = dict(zip(paths, _column(browser, "results", "tokens/s")))
    for rel, t in tokens.items():
        assert t is not None and shown_tps[rel] == format_value(t.tokens_per_second)
        assert shown_ttft[rel] == (format_value(t.ttft_p99_ns / 1e6) if t.ttft_p99_ns is not None else "-")
    assert sum(v != "-" for v in shown_ttft.values()) == 2       # the two Server results
    # sorting by value, both ways (numbers, not text: 1,207 < 5,104)
    _click_header(browser, "value")
    values = [float(v.replace(",", "")) for v in _column(browser, "results", "value")]
    first = values
    assert first in (sorted(values), sorted(values, reverse=True))
    _click_header(browser, "value")
    again = [float(v.replace(",", "")) for v in _column(browser, "results", "value")]
    assert again == list(reversed(first)) and again != first
    # filtering
    browser.find_element("css selector", "select[data-filter=scenario] option[value=Server]").click()
    assert set(_column(browser, "results", "scenario")) == {"Server"}
    assert browser.find_element("id", "shown-count").text == "2"
    # charts: one per (benchmark, scenario) of throughput and of latency, each drawn with marks
    drawn = _charts_drawn(browser)
    assert set(drawn) == {f"chart-{c.id}" for c in charts} and all(n > 0 for n in drawn.values()), drawn
    kinds = {c.kind for c in charts}
    # Red Hat's llama3.1-8b: TTFT and TPOT beside the latency of its Server results; the two trees share no
    # benchmark: nothing to compare
    assert kinds == {"throughput", "latency", "ttft", "tpot"}
    captions = browser.execute_script("return [...document.querySelectorAll('figcaption')].map(f => f.textContent)")
    assert all("Units:" in c and "Source run(s):" in c for c in captions)
    # the problems check finds in the compared tree are listed, one line each
    problems = browser.find_element("tag name", "body").text
    assert "stable-diffusion-xl needs an accuracy/images/ folder" in problems
    browser.save_screenshot(str(_artifacts() / "real-submissions.png"))


def test_mlrepro_trees_compared(browser: Any, run_trees: tuple[Path, Path], tmp_path: Path) -> None:
    """Trees made by ``mlrepro run`` (Offline + SingleStream; the second with another batch size)."""
    a, b = run_trees
    rep = read_report(a, compare=b)
    page = write_html(rep, tmp_path / "runs.html")
    charts = charts_for(rep)
    assert {c.kind for c in charts} == {"throughput", "latency", "change"}
    _open(browser, page, len(charts))
    assert _console_errors(browser) == []
    tree = read_tree(a)
    rows = {(r.scenario, r.record.profile_hash[:12] if r.record and r.record.profile_hash else None)
            for r in tree.results}
    hashes = _column(browser, "results", "profile · hash")
    assert {h.split(" · ")[1] for h in hashes} == {h for _, h in rows}
    for r in tree.results:
        assert r.metric is not None
        assert format_value(r.metric.value) in _column(browser, "results", "value")
        assert r.record is not None
        assert f"run {r.record.performance_run}" in _column(browser, "results", "source run")
    changes = _column(browser, "comparison", "change (%)")
    assert len(changes) == 2 and all(c.startswith(("+", "-")) for c in changes)
    drawn = _charts_drawn(browser)
    assert all(n > 0 for n in drawn.values()) and "chart-change" in drawn, drawn
    browser.set_window_size(1400, 2200)
    browser.save_screenshot(str(_artifacts() / "mlrepro-trees.png"))


def test_page_needs_no_network(tmp_path: Path) -> None:
    """Outside the inlined libraries, no URL the browser would fetch: no src=, no <link>, no @import."""
    rep = read_report(FIXTURES / "v6.0" / "open_CoreWeave", version="v6.0")
    html = write_html(rep, tmp_path / "r.html").read_text()
    assert 'data-asset="vega.min.js"' in html
    page = re.sub(r"<script\b[^>]*>.*?</script>", "", html, flags=re.S)
    assert " src=" not in page and "<link" not in page and "@import" not in page


@pytest.mark.parametrize("name", ["closed_MiTAC", "open_CoreWeave"])
def test_every_v6_fixture_renders(browser: Any, tmp_path: Path, name: str) -> None:
    rep = read_report(FIXTURES / "v6.0" / name, version="v6.0")
    charts = charts_for(rep)
    _open(browser, write_html(rep, tmp_path / f"{name}.html"), len(charts))
    assert _console_errors(browser) == []
    assert len(_column(browser, "results", "value")) == len(rep.rows)
    assert all(n > 0 for n in _charts_drawn(browser).values())


@pytest.mark.parametrize("tree", ["v6.1-intel", "endpoints"])
def test_llm_trees_render_token_columns_and_charts(browser: Any, tmp_path: Path, tree: str) -> None:
    """The real v6.1 LLM tree and the built endpoints tree: the tokens/s, TTFT and TPOT columns hold the tree's
    figures, and the TTFT/TPOT charts are drawn beside the latency charts."""
    root = FIXTURES / "v6.1" / "closed_Intel_llm" if tree == "v6.1-intel" else \
        REPO / "tests" / "results" / "fixtures" / "endpoints-v6.1" / "tree"
    rep = read_report(root, version="v6.1")
    charts = charts_for(rep)
    _open(browser, write_html(rep, tmp_path / f"{tree}.html"), len(charts))
    assert _console_errors(browser) == []
    assert _column(browser, "results", "tokens/s") == [format_value(r.tokens_per_second) for r in rep.rows]
    assert _column(browser, "results", "TTFT p99 (ms)") == [format_value(r.ttft_p99_ms) for r in rep.rows]
    assert _column(browser, "results", "TPOT p99 (ms)") == [format_value(r.tpot_p99_ms) for r in rep.rows]
    drawn = _charts_drawn(browser)
    kinds = {c.kind for c in charts}
    assert {"ttft", "tpot"} <= kinds and all(n > 0 for n in drawn.values()), drawn
    order = [c.kind for c in charts]
    assert order.index("ttft") == order.index("latency") + 1 and order.index("tpot") == order.index("ttft") + 1
    browser.save_screenshot(str(_artifacts() / f"llm-{tree}.png"))
