"""``mlrepro report``: every result of a submission tree as a table (terminal) or one self-contained HTML file.

(``mlrepro.cli.report`` holds the tables of ``run``/``launch``; this module is the ``report`` command.)
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from mlrepro.cli.common import ROUNDS_HELP, OutputFormat, OutputOpt, cli_errors, console, print_data

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

    from mlrepro.report.model import Comparison, Problem, TreeReport


def register(app: typer.Typer) -> None:
    app.command("report")(report)


def report(tree: Path = typer.Argument(..., help="Root of a submission tree (the folder holding closed/, open/)."),
           out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write one self-contained HTML file "
                                              "(sortable table, charts; works offline) instead of printing."),
           compare: Optional[Path] = typer.Option(None, "--compare", help="Another tree (e.g. a reproduction): "
                                                  "show the change of every result present in both."),
           version: Optional[str] = typer.Option(None, "--version", help="MLPerf inference round of the tree's "
                                                 "layout and rules: " + ROUNDS_HELP + "."),
           compare_version: Optional[str] = typer.Option(None, "--compare-version", help="Round of the --compare "
                                                         "tree (default: --version)."),
           sidecar: Optional[Path] = typer.Option(None, "--sidecar", help="mlrepro's folder of kept full "
                                                  "accuracy logs (default: <tree>.mlrepro when it exists)."),
           output: OutputFormat = OutputOpt) -> None:
    """Report every result of a submission tree: system, accelerator, benchmark, scenario, metric, latency
    percentiles, accuracy, validity, run date, profile hash, and the problems `mlrepro check` finds (a report
    of a broken tree still exits 0: `mlrepro check` is the gate).

    Example: mlrepro report submission/ -o report.html --compare reproduced/
    """
    with cli_errors():
        from mlrepro.report import read_report, write_html

        rep = read_report(tree, version=version, sidecar=sidecar, compare=compare, compare_version=compare_version)
        if out is not None:
            path = write_html(rep, out)
            c = console()
            c.print(f"report: {path} ({len(rep.rows)} result(s), {len(rep.errors)} error(s), "
                    f"{len(rep.problems) - len(rep.errors)} warning(s))", markup=False)
            return
        if output != OutputFormat.table:
            print_data(_data(rep), output)
            return
        _print(console(), rep)


def _data(rep: "TreeReport") -> dict:
    cmp = rep.comparison
    return {
        "tree": str(rep.root), "version": rep.version,
        "results": [asdict(r) for r in rep.rows],
        "problems": [asdict(p) for p in rep.problems],
        "comparison": None if cmp is None else {
            "other": str(cmp.other), "matched_by": cmp.matched_by,
            "changes": [{"base": c.base.path, "other": c.other.path, "unit": c.base.unit, "base_value": c.base.value,
                         "other_value": c.other.value, "change_pct": c.change_pct} for c in cmp.changes],
            "only_base": [r.path for r in cmp.only_base], "only_other": [r.path for r in cmp.only_other],
            "problems": [asdict(p) for p in rep.other_problems]},
    }


def _num(v: float | None) -> str:
    from mlrepro.report.html import format_value

    return format_value(v)


def _print(c: "Console", rep: "TreeReport") -> None:
    from mlrepro.cli.common import Column, fitted_table
    from mlrepro.report.model import has_tokens

    # what identifies a result and its value always stay; the rest goes, least needed first, on a narrow terminal
    several = len({r.submitter for r in rep.rows}) > 1      # then the submitter tells results apart: it stays
    tokens = has_tokens(rep.rows)          # an LLM tree: tokens/s, TTFT and TPOT p99 beside the value
    columns = [Column("submitter", keep=0 if several else 1), Column("system"), Column("accelerator", keep=9), Column("benchmark"),
               Column("scenario"), Column("metric", keep=10), Column("value", right=True), Column("unit", keep=1),
               *([Column("tokens/s", keep=4, right=True), Column("TTFT p99 ms", keep=4, right=True),
                  Column("TPOT p99 ms", keep=4, right=True)] if tokens else []),
               Column("p50 ms", keep=7, right=True), Column("p90 ms", keep=8, right=True),
               Column("p99 ms", keep=4, right=True), Column("accuracy", keep=5, wrap=True),
               Column("validity", keep=2), Column("run date", keep=11), Column("profile hash", keep=6),
               Column("problems", keep=3)]
    rows = []
    for r in rep.rows:
        style = {"VALID": "green", "INVALID": "red"}.get(r.validity or "", "")
        problems = ", ".join(x for x in (f"{r.errors} error(s)" if r.errors else "",
                                         f"{r.warnings} warning(s)" if r.warnings else "") if x) or "none"
        rows.append([r.submitter, r.system, r.accelerator or "-", r.benchmark, r.scenario, r.metric or "-",
                     _num(r.value) if r.value is not None else "-", r.unit or "-",
                     *((_num(r.tokens_per_second), _num(r.ttft_p99_ms), _num(r.tpot_p99_ms)) if tokens else ()),
                     *(_num(r.latency_ms.get(p)) for p in ("50.00", "90.00", "99.00")),
                     ", ".join(f"{k}={v}" for k, v in r.accuracy.items()) or "-",
                     f"[{style}]{r.validity}[/]" if style else (r.validity or "-"), r.run_date or "-",
                     (f"{r.profile_name} {r.profile_hash[:12]}" if r.profile_hash else "-"), problems])
    # the tree's path on a line of its own (never folded: a path longer than the terminal is the terminal's to wrap)
    c.print(f"{rep.root} ({len(rep.rows)} result(s), {rep.version} rules)", markup=False)
    c.print(fitted_table(c, columns, rows))
    if rep.comparison is not None:
        _print_comparison(c, rep.comparison, rep.other_problems)
    _print_problems(c, rep.problems, "")


def _print_problems(c: "Console", problems: "tuple[Problem, ...]", where: str) -> None:
    for p in problems:
        c.print(f"{p.severity}: {where}{p.path}: {p.message} [{p.code}]", markup=False)
    errors = sum(1 for p in problems if p.severity == "error")
    whose = f"problems of {where.rstrip('/')}" if where else "problems"
    c.print(f"{whose}: {errors} error(s), {len(problems) - errors} warning(s) (mlrepro check)", markup=False)


def _print_comparison(c: "Console", cmp: "Comparison", other_problems: "tuple[Problem, ...]") -> None:
    from mlrepro.cli.common import Column, fitted_table

    base, other = cmp.names
    columns = [Column("benchmark"), Column("scenario"), Column("system", keep=1), Column("unit", keep=3),
               Column(base, right=True), Column(other, right=True), Column("change %", right=True),
               Column("validity", keep=2)]
    rows = []
    for ch in cmp.changes:
        system = ch.base.system if ch.base.system == ch.other.system else f"{ch.base.system} → {ch.other.system}"
        pct = ch.change_pct
        rows.append([ch.base.benchmark, ch.base.scenario, system, ch.base.unit, _num(ch.base.value),
                     _num(ch.other.value), "-" if pct is None else f"{pct:+.2f}",
                     f"{ch.base.validity or '-'} → {ch.other.validity or '-'}"])
    c.print(f"{cmp.other} against {cmp.base} (paired by {cmp.matched_by})", markup=False)
    c.print(fitted_table(c, columns, rows))
    for r in cmp.only_base:
        c.print(f"only in {base}: {r.path}", markup=False)
    for r in cmp.only_other:
        c.print(f"only in {other}: {r.path}", markup=False)
    if other_problems:
        _print_problems(c, other_problems, f"{other}/")
