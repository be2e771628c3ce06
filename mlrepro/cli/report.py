"""Rendering of pipeline results (rich tables)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

    from mlrepro.cli.common import OutputFormat
    from mlrepro.flow import PipelineOptions, PipelineResult
    from mlrepro.flow.options import RunSummary
    from mlrepro.profiles.loader import ResolvedProfile

_STYLE = {"succeeded": "green", "invalid": "yellow", "failed": "red", "timeout": "red", "cancelled": "yellow"}


def metric_cell(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    text = f"{value:,.0f}" if value >= 100 else f"{value:,.3f}"
    return f"{text} {unit}".strip()


def target_cell(decision: "dict | None") -> str:
    """The LoadGen target in a table cell: value, unit and where it came from (``1,234/s calibrated 8.1 s``)."""
    if not decision:
        return "-"
    value, source = decision.get("value"), decision.get("source", "")
    if value is None:
        return source or "-"
    unit = decision.get("unit", "")
    text = f"{value / 1e6:.3g} ms" if unit == "ns" else f"{value:,.0f}/s"
    cost = decision.get("cost_s")
    return f"{text} {source}" + (f" {cost:.1f} s" if source == "calibrated" and cost is not None else "")


def latency_cell(ns: float | None) -> str:
    """A latency given in ns (an LLM run's TTFT or TPOT p99) in a table cell, in ms: ``2,117 ms``, ``181 ms``,
    ``9.42 ms``."""
    if ns is None:
        return "-"
    ms = ns / 1e6
    return f"{ms:,.0f} ms" if ms >= 100 else f"{ms:.3g} ms"


def token_columns(rows: "list[dict]") -> bool:
    """Whether a table of runs shows the TTFT/TPOT columns: only when one of its runs is an LLM run."""
    return any(r.get("ttft_p99_ns") is not None or r.get("tpot_p99_ns") is not None for r in rows)


def accuracy_cell(accuracy: float | None) -> str:
    """A run's accuracy (%, as the harness's accuracy script reports it) in a table cell."""
    return f"{accuracy:.3f}%" if accuracy is not None else "-"


def status_cell(status: str) -> str:
    style = _STYLE.get(status, "")
    return f"[{style}]{status}[/]" if style else status


def run_and_print(resolved: "list[ResolvedProfile]", options: "PipelineOptions", output: "OutputFormat") -> None:
    """``run`` and ``launch``: the pipeline with its progress on the console (stderr with ``--output json``), then
    the results as a table or as data; typer.Exit(1) unless every run succeeded (:attr:`PipelineResult.ok`)."""
    import typer

    from mlrepro.cli.common import OutputFormat, console, print_data
    from mlrepro.flow import run_pipeline

    json_out = output != OutputFormat.table
    c = console(stderr=json_out)
    result = run_pipeline(resolved, options, progress=lambda m: c.print(m, markup=False))
    if json_out:
        print_data(result_data(result), output)
    else:
        print_results(c, result)
    if not result.ok:
        raise typer.Exit(1)


def print_results(console: "Console", result: "PipelineResult") -> None:
    from mlrepro.cli.common import Column, fitted_table

    columns = [Column("run id", nowrap=True), Column("status"), Column("result", keep=1, right=True),
               Column("validity", keep=3), Column("accuracy", keep=2, right=True),
               Column("LoadGen target", keep=5), Column("time", keep=4, right=True)]
    rows = [[r.run_id, status_cell(r.status), metric_cell(r.result, r.result_unit), r.validity or "-",
             accuracy_cell(r.accuracy), target_cell(r.loadgen_target),
             f"{r.duration_s:.1f} s"] for r in result.runs]
    if token_columns([{"ttft_p99_ns": r.ttft_p99_ns, "tpot_p99_ns": r.tpot_p99_ns} for r in result.runs]):
        # an LLM's latencies beside its tokens/s (result): TTFT and TPOT p99 as LoadGen logged them
        columns[4:4] = [Column("TTFT p99", keep=3, right=True), Column("TPOT p99", keep=3, right=True)]
        for row, r in zip(rows, result.runs):
            row[4:4] = [latency_cell(r.ttft_p99_ns), latency_cell(r.tpot_p99_ns)]
    console.print(fitted_table(console, columns, rows, title=f"mlrepro results ({result.target})"))
    soft = not console.is_terminal      # on a terminal free text wraps at spaces (ids have none: they stay whole)
    failures = result.failures
    if failures and len(result.runs) > 1:
        group = f" (mlrepro runs --group {result.group})" if result.group else ""
        console.print(f"{len(failures)} of {len(result.runs)} run(s) did not succeed{group}:", markup=False)
    for r in result.runs:
        if r.message and r.status != "succeeded":
            console.print(f"[red]{r.run_id}[/]: {r.message}", highlight=False, soft_wrap=soft)
        for note in r.notes:
            console.print(f"[yellow]{r.run_id}[/]: {note}", highlight=False, soft_wrap=soft)
    for problem in result.problems:
        console.print(f"[red]error[/]: {problem}", highlight=False, soft_wrap=soft)
    report = result.collect_report
    if report is not None:
        console.print(f"submission tree: {report.tree} ({report.division}/{report.submitter}); "
                      f"full accuracy logs and rejected runs: {report.sidecar}")
        for rej in report.rejected:
            if rej.kind not in ("superseded", "incomplete"):
                console.print(f"[yellow]not in the tree[/]: {rej.run_id} ({rej.kind}): {'; '.join(rej.reasons)}",
                              soft_wrap=soft)
        print_system_findings(console, report)
    if result.tree_needs:
        console.print(f"[yellow]the submission tree still needs[/]: {'; '.join(result.tree_needs)}", highlight=False,
                      soft_wrap=soft)


def print_system_findings(console: "Console", report) -> None:
    """One line per systems json that still needs something before it can be submitted."""
    soft = not console.is_terminal
    for sid, findings in sorted(report.system_findings.items()):
        errors = [f.field for f in findings if f.severity == "error"]
        warnings = [f.field for f in findings if f.severity != "error"]
        if errors:
            console.print(f"[yellow]systems/{sid}.json[/] still needs {', '.join(errors)} before it can be "
                          "submitted (give --contact and --system-notes FILE)", soft_wrap=soft)
        if warnings:
            console.print(f"systems/{sid}.json: worth filling: {', '.join(warnings)}", soft_wrap=soft)


def _tokens(r: "RunSummary") -> dict | None:
    """An LLM run's token figures (tokens/s, TTFT/TPOT p50 and p99 in ns), None for other runs."""
    perf = r.run.performance if r.run is not None else None
    return perf.tokens.to_dict() if perf is not None and perf.tokens is not None else None


def result_data(result: "PipelineResult") -> dict:
    """``run`` / ``launch --output json``: every run (full ids), the tree collected, what went wrong."""
    report = result.collect_report
    return {
        "ok": result.ok, "target": result.target, "image": result.image or None, "group": result.group or None,
        "runs": [{"run_id": r.run_id, "profile": r.profile, "scenario": r.scenario, "mode": r.mode,
                  "status": r.status, "exit_code": r.exit_code, "result": r.result, "unit": r.result_unit,
                  "tokens": _tokens(r), "tokens_per_second": r.tokens_per_second, "ttft_p99_ns": r.ttft_p99_ns,
                  "tpot_p99_ns": r.tpot_p99_ns, "validity": r.validity, "accuracy": r.accuracy,
                  "duration_s": round(r.duration_s, 3),
                  "loadgen_target": r.loadgen_target, "message": r.message or None, "notes": list(r.notes),
                  "results_dir": str(r.results_dir) if r.results_dir else None} for r in result.runs],
        "collect": None if report is None else {
            "tree": str(report.tree), "placed": [str(p.path) for p in report.placed],
            "unchanged": [str(p.path) for p in report.unchanged],
            "rejected": [{"run_id": r.run_id, "kind": r.kind, "reasons": list(r.reasons)} for r in report.rejected]},
        "problems": list(result.problems),
        "tree_needs": list(result.tree_needs),
    }


def print_collect(console: "Console", report) -> None:
    for p in report.placed:
        console.print(f"[green]placed[/] {p.path}", markup=True)
    for p in report.unchanged:
        console.print(f"unchanged {p.path}")
    for r in report.rejected:
        if r.kind not in ("superseded", "failed"):      # failed: said on stderr
            console.print(f"[yellow]rejected[/] {r.run_id} ({r.kind}): {'; '.join(r.reasons)}")
    console.print(f"submission tree: {report.tree}; full accuracy logs and rejected runs: {report.sidecar}")
    print_system_findings(console, report)


def print_calibration(console: "Console", result: "PipelineResult") -> None:
    from mlrepro.cli.common import table as make_table

    table = make_table("scenario", "status", "target", "measured", "probes/cost", title="calibrated targets "
                       f"({result.target}; cached for this profile and system)")
    for r in result.runs:
        d = r.loadgen_target or {}
        measured = d.get("measured")
        table.add_row(r.scenario, r.status, target_cell(d) if d else "-",
                      f"{measured:,.6g}" if isinstance(measured, (int, float)) else "-",
                      f"{d.get('cost_s', 0):.1f} s" if d else "-")
    console.print(table)
    for r in result.runs:
        if r.message and r.status != "succeeded":
            console.print(f"[red]{r.run_id}[/]: {r.message}", highlight=False)
