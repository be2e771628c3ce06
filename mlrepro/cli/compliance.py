"""``mlrepro compliance``: the compliance tests (TEST01, TEST04; TEST06 of the LLMs) of runs already made."""

from __future__ import annotations

from typing import List, Optional

import typer

from mlrepro.cli.common import OutputFormat, OutputOpt, Target, cli_errors, console, print_data, split_csv
from mlrepro.runners import targets


def register(app: typer.Typer) -> None:
    app.command("compliance")(compliance)


def compliance(run_ids: List[str] = typer.Argument(..., help="Runs to audit (performance or submission runs; "
                                                   "accuracy runs among them are TEST01's references); whole ids "
                                                   "or unique parts."),
               test: Optional[List[str]] = typer.Option(None, "--test", help="TEST01, TEST04, TEST06 (LLM runs) "
                                                        "(comma-separated; default: those the round names for each "
                                                        "run's benchmark)."),
               profile: Optional[str] = typer.Option(None, "--profile", "-p", help="The profile the runs used "
                                                     "(default: from each run's record)."),
               overlays: Optional[List[str]] = typer.Option(None, "--file", "-f", help="Its overlays."),
               sets: Optional[List[str]] = typer.Option(None, "--set", help="Its --set assignments."),
               target: Optional[Target] = typer.Option(None, "--target", help=targets.describe() + "; default: "
                                                       "where the run ran."),
               output: OutputFormat = OutputOpt) -> None:
    """Run compliance tests for results already made, with each run's own settings, and verify them.

    Example: mlrepro compliance PERF_RUN_ID ACC_RUN_ID --test TEST01,TEST04  (TEST01 compares the audit with the
    accuracy run of the same profile: pass its id too; any unique part of an id works; an LLM run gets TEST06)
    """
    with cli_errors():
        from mlrepro.flow.audit import audit_runs

        resolved = None
        if profile is not None:
            from mlrepro.cli.common import resolve

            resolved = resolve(profile, overlays, sets)
        c = console()
        results = audit_runs(run_ids, split_csv(test), resolved=resolved, target=target.value if target else None,
                             progress=lambda m: c.print(m, markup=False))
        rows = [{"run_id": r.run_id, "audit_run_id": r.audit_run_id, "status": r.status, "passed": r.passed,
                 "verifications": [{"test": v.test, "kind": v.kind, "passed": v.passed, "reason": v.reason}
                                   for v in r.verifications], "message": r.message} for r in results]
        if output != OutputFormat.table:
            print_data(rows, output)
        else:
            from mlrepro.cli.common import Column, fitted_table

            columns = [Column("run id"), Column("audit run", keep=2), Column("test"), Column("check", keep=1),
                       Column("verdict", wrap=True)]
            table_rows = []
            for r in results:
                for v in r.verifications or ():
                    table_rows.append([r.run_id, r.audit_run_id, v.test, v.kind, "PASS" if v.passed else v.reason])
                if not r.verifications:
                    table_rows.append([r.run_id, r.audit_run_id, "-", "-", f"{r.status}: {r.message}"])
            c.print(fitted_table(c, columns, table_rows))
            c.print("collect the audit runs with the runs they audit to put TEST folders in the tree", markup=False)
        if not all(r.passed for r in results):
            raise typer.Exit(1)
