"""``mlrepro runs | logs``: the runs this machine recorded, and their output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from mlrepro.cli.common import (
    ContextOpt,
    KubeconfigOpt,
    NamespaceOpt,
    OutputFormat,
    OutputOpt,
    cli_errors,
    console,
    kube_target_if_given,
    print_data,
)
from mlrepro.state.status import RunStatus


def register(app: typer.Typer) -> None:
    app.command("runs")(runs)
    app.command("logs")(logs)


def runs(status: Optional[RunStatus] = typer.Option(None, "--status", help="Only runs with this status."),
         profile: Optional[str] = typer.Option(None, "--profile", "-p", help="Only this profile's runs."),
         group: Optional[str] = typer.Option(None, "--group", help="Only the runs of this launch or sweep."),
         limit: int = typer.Option(50, "--limit", help="At most this many (newest first)."),
         output: OutputFormat = OutputOpt) -> None:
    """List runs, one table per launch or sweep: id, status, result, validity, accuracy, TTFT and TPOT p99 (LLM
    runs), LoadGen target, duration, runner (--target), profile, scenario, mode (a narrow terminal shows the first
    ones).

    Example: mlrepro runs --status succeeded --output json
    """
    with cli_errors():
        from mlrepro.state.store import open_store

        records = open_store().list(status=status.value if status else None, profile=profile, limit=limit,
                                    group=group)
        rows = []
        for r in records:
            duration = (r.ended_at - r.started_at).total_seconds() if r.started_at and r.ended_at else None
            rows.append({"run_id": r.run_id, "profile": r.profile, "scenario": r.scenario, "mode": r.mode,
                         "target": r.target, "status": r.status, "result": r.result, "unit": r.result_unit,
                         "validity": r.validity, "accuracy": r.accuracy,
                         "duration_s": round(duration, 1) if duration is not None else None,
                         "started_at": r.started_at.isoformat() if r.started_at else None, "message": r.message,
                         "loadgen_target": r.loadgen_target, "group": r.group_id,
                         "tokens_per_second": r.tokens_per_second, "ttft_p99_ns": r.ttft_p99_ns,
                         "tpot_p99_ns": r.tpot_p99_ns})
        if output != OutputFormat.table:
            print_data(rows, output)
            return
        from mlrepro.cli.common import Column, fitted_table
        from mlrepro.cli.report import accuracy_cell, latency_cell, metric_cell, status_cell, target_cell, token_columns

        groups: dict[str, list[dict]] = {}
        for r in rows:
            groups.setdefault(r["group"], []).append(r)
        c = console()
        # "runner": where the run ran (docker, native, k8s: --target), not the LoadGen target
        columns = [Column("run id", nowrap=True), Column("status"), Column("result", keep=1, right=True),
                   Column("validity", keep=2), Column("accuracy", keep=3, right=True),
                   Column("LoadGen target", keep=5), Column("duration", keep=4, right=True),
                   Column("runner", keep=6), Column("profile", keep=7), Column("scenario", keep=7),
                   Column("mode", keep=7)]
        for group_id, members in groups.items():
            counts = ", ".join(f"{n} {s}" for s, n in sorted(
                {s: sum(1 for m in members if m["status"] == s) for s in {m["status"] for m in members}}.items()))
            title = f"launch {group_id}: {len(members)} run(s), {counts}" if group_id else "runs"
            table_rows = [[r["run_id"], status_cell(r["status"]),
                           metric_cell(r["result"], r["unit"]), r["validity"] or "-",
                           accuracy_cell(r["accuracy"]), target_cell(r["loadgen_target"]),
                           f"{r['duration_s']} s" if r["duration_s"] is not None else "-", r["target"], r["profile"],
                           r["scenario"], r["mode"]] for r in members]
            shown = columns
            if token_columns(members):      # LLM runs: TTFT and TPOT p99 beside their tokens/s (result)
                shown = columns[:5] + [Column("TTFT p99", keep=3, right=True),
                                       Column("TPOT p99", keep=3, right=True)] + columns[5:]
                for row, r in zip(table_rows, members):
                    row[5:5] = [latency_cell(r["ttft_p99_ns"]), latency_cell(r["tpot_p99_ns"])]
            c.print(fitted_table(c, shown, table_rows, title=title))


def logs(run_id: str = typer.Argument(..., help="Run id (see `mlrepro runs`), or any unique part of it."),
         follow: bool = typer.Option(False, "--follow", "-f", help="Keep streaming while the run is going."),
         context: Optional[str] = ContextOpt, namespace: Optional[str] = NamespaceOpt,
         kubeconfig: Optional[Path] = KubeconfigOpt, output: OutputFormat = OutputOpt) -> None:
    """Print a run's harness output (live from the container or pod while it runs, else the saved log).

    A run mlrepro did not launch (a Job installed with Helm) is found on the cluster with --namespace/--context.

    Example: mlrepro logs x86-cpu-offline-perf-20261128-093012-3fa9 -f
    """
    with cli_errors():
        from mlrepro.flow.recorded import stream_logs

        for line in stream_logs(run_id, follow=follow, kube=kube_target_if_given(context, namespace, kubeconfig)):
            if output == OutputFormat.table:
                typer.echo(line)
            else:   # one JSON object per line (works while following)
                typer.echo(json.dumps({"line": line}))
