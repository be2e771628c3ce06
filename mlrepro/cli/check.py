"""``mlrepro check``: a submission tree judged by the rules of an MLPerf inference round."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mlrepro.cli.common import ROUNDS_HELP, OutputFormat, OutputOpt, cli_errors, console, fail, print_data


def register(app: typer.Typer) -> None:
    app.command("check")(check)


def check(tree: Path = typer.Argument(..., help="Root of a submission tree (the folder holding closed/, open/)."),
          version: Optional[str] = typer.Option(None, "--version", help="MLPerf inference round whose rules apply: "
                                                + ROUNDS_HELP + "."),
          csv_path: Optional[Path] = typer.Option(None, "--csv", help="Also write the per-result summary table "
                                                  "to this CSV file."),
          sidecar: Optional[Path] = typer.Option(None, "--sidecar", help="mlrepro's folder of kept full accuracy "
                                                 "logs (default: <tree>.mlrepro when it exists)."),
          jobs: int = typer.Option(1, "--jobs", min=1, help="Processes that read the tree (more can help on "
                                   "machines with idle cores)."),
          output: OutputFormat = OutputOpt) -> None:
    """Check a submission tree: everything the official MLCommons checker rejects, and more (INVALID results,
    LoadGen errors, cut-off logs, accuracy hashes, empty folders). One line per finding, then a table per result;
    exit 1 when there is an error.

    Example: mlrepro check submission/ --version v6.0 --csv summary.csv
    """
    with cli_errors():
        from mlrepro.results.check import check_tree

        if not tree.is_dir():
            raise fail(f"{tree}: not a directory", 2)
        report = check_tree(tree, version=version, sidecar=sidecar, jobs=jobs)
        if csv_path is not None:
            try:
                report.write_csv(csv_path)
            except OSError as exc:
                raise fail(f"{csv_path}: cannot write ({exc.strerror or exc})", 1) from None
        if output != OutputFormat.table:
            print_data(report.to_dict(), output)
        else:
            _print(report)
        if not report.ok:
            raise typer.Exit(1)


def _print(report) -> None:  # type: ignore[no-untyped-def]
    from mlrepro.cli.common import Column, fitted_table

    c = console()
    for finding in report.findings:
        c.print(str(finding), markup=False, highlight=False)
    if report.rows:
        # what identifies a result, its value and its status always stay; the rest goes first on a narrow terminal
        several = len({row.submitter for row in report.rows}) > 1   # then it tells results apart: it stays
        columns = [Column("submitter", keep=0 if several else 1), Column("system"), Column("benchmark"), Column("scenario"),
                   Column("metric", keep=5), Column("value", right=True), Column("unit", keep=1),
                   Column("validity", keep=2),
                   Column("accuracy", keep=4, wrap=True), Column("status", keep=3)]
        rows = []
        for row in report.rows:
            value = "-" if row.value is None else f"{row.value:,.6g}"
            status = "ok" if not row.errors else f"{row.errors} error(s)"
            if row.warnings:
                status += f", {row.warnings} warning(s)"
            rows.append([row.submitter, row.system, row.benchmark, row.scenario, row.metric or "-", value,
                         row.unit or "-", row.validity or "-", row.accuracy or "-", status])
        c.print(fitted_table(c, columns, rows, title=f"results ({report.version} rules)"))
    c.print(f"{report.results_checked} result(s), {report.systems_checked} system(s): {len(report.errors)} "
            f"error(s), {len(report.warnings)} warning(s) ({report.version} rules)", markup=False)
