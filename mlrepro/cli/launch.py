"""``mlrepro launch | runs | logs | collect``: runs that outlive the terminal."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from mlrepro.cli.common import (
    ContactOpt,
    ContextOpt,
    Division,
    DivisionOpt,
    FindPeakOpt,
    KeepVolumeOpt,
    KubeconfigOpt,
    NamespaceOpt,
    OutputFormat,
    OutputOpt,
    OverlayOpt,
    ProfileOpt,
    RecalibrateOpt,
    SetOpt,
    SystemNotesOpt,
    cli_errors,
    console,
    fail,
    kube_target,
    print_data,
    resolve_many,
    split_csv,
)


def register(app: typer.Typer) -> None:
    app.command("launch")(launch)
    app.command("runs")(runs)
    app.command("logs")(logs)
    app.command("collect")(collect)


def launch(profile: str = ProfileOpt, overlays: Optional[List[str]] = OverlayOpt, sets: Optional[List[str]] = SetOpt,
           scenario: Optional[List[str]] = typer.Option(None, "--scenario", help="Scenario(s), comma-separated."),
           mode: Optional[List[str]] = typer.Option(None, "--mode", help="Mode(s), comma-separated."),
           parallel: int = typer.Option(1, "--parallel", help="Runs at a time (a sweep's concurrency limit)."),
           target: str = typer.Option("docker", "--target", help="docker (default), native, or kubernetes (k8s)."),
           results_dir: Optional[Path] = typer.Option(None, "--results-dir", help="docker: bind-mount this host "
                                                      "directory for results instead of a named volume per run."),
           image: Optional[str] = typer.Option(None, "--image", help="Run this image instead of building one "
                                               "(kubernetes: instead of the last pushed digest)."),
           registry: Optional[str] = typer.Option(None, "--registry", help="kubernetes: build and push the image "
                                                  "to this registry first, e.g. 127.0.0.1:5001/bench."),
           context: Optional[str] = ContextOpt, namespace: Optional[str] = NamespaceOpt,
           kubeconfig: Optional[Path] = KubeconfigOpt,
           pending_timeout: float = typer.Option(600, "--pending-timeout", help="kubernetes: seconds a pod may stay "
                                                 "unschedulable or unable to pull its image before the run fails."),
           recalibrate: bool = RecalibrateOpt, find_peak: bool = FindPeakOpt,
           keep_volume: bool = KeepVolumeOpt, output: OutputFormat = OutputOpt,
           ) -> None:
    """Launch benchmark runs (every profile × scenario × mode) and wait for them; `runs` and `collect` work afterwards.

    Ctrl-C (or SIGTERM) stops every run it started and marks it cancelled (exit 130).

    Example: mlrepro launch -p x86-cpu -f air-gapped --scenario Offline,Server --parallel 2
    """
    with cli_errors():
        from mlrepro.cli.report import print_results
        from mlrepro.pipeline import PipelineOptions, run_pipeline

        resolved = resolve_many(profile, overlays, sets)
        options = PipelineOptions(target=target, scenarios=split_csv(scenario), modes=split_csv(mode),
                                  collect=False, into=None, parallel=parallel,
                                  results_dir=results_dir.resolve() if results_dir else None, image=image,
                                  registry=registry, kube=kube_target(context, namespace, kubeconfig),
                                  pending_timeout_s=pending_timeout, recalibrate=recalibrate, find_peak=find_peak,
                                  keep_results=keep_volume)
        json_out = output != OutputFormat.table
        c = console(stderr=json_out)          # with --output json, progress goes to stderr
        result = run_pipeline(resolved, options, progress=lambda m: c.print(m, markup=False))
        if json_out:
            from mlrepro.cli.report import result_data

            print_data(result_data(result), output)
        else:
            print_results(c, result)
        if not result.ok:
            raise typer.Exit(1)


class RunStatusChoice(str, Enum):
    pending = "pending"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    invalid = "invalid"
    cancelled = "cancelled"
    timeout = "timeout"


def runs(status: Optional[RunStatusChoice] = typer.Option(None, "--status", help="Only runs with this status."),
         profile: Optional[str] = typer.Option(None, "--profile", "-p", help="Only this profile's runs."),
         group: Optional[str] = typer.Option(None, "--group", help="Only the runs of this launch or sweep."),
         limit: int = typer.Option(50, "--limit", help="At most this many (newest first)."),
         output: OutputFormat = OutputOpt) -> None:
    """List runs, one table per launch or sweep: id, status, result, validity, accuracy, LoadGen target, duration,
    runner (--target), profile, scenario, mode (a narrow terminal shows the first ones).

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
                         "loadgen_target": r.loadgen_target, "group": r.group_id})
        if output != OutputFormat.table:
            print_data(rows, output)
            return
        from mlrepro.cli.common import Column, fitted_table
        from mlrepro.cli.report import accuracy_cell, metric_cell, status_cell, target_cell

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
            c.print(fitted_table(c, columns, table_rows, title=title))


def logs(run_id: str = typer.Argument(..., help="Run id (see `mlrepro runs`), or any unique part of it."),
         follow: bool = typer.Option(False, "--follow", "-f", help="Keep streaming while the run is going."),
         context: Optional[str] = ContextOpt, namespace: Optional[str] = NamespaceOpt,
         kubeconfig: Optional[Path] = KubeconfigOpt, output: OutputFormat = OutputOpt) -> None:
    """Print a run's harness output (live from the container or pod while it runs, else the saved log).

    A run mlrepro did not launch (a Job installed with Helm) is found on the cluster with --namespace/--context.

    Example: mlrepro logs x86-cpu-offline-perf-20261128-093012-3fa9 -f
    """
    with cli_errors():
        from mlrepro.runs import stream_logs

        kube = kube_target(context, namespace, kubeconfig) if (context or namespace or kubeconfig) else None
        for line in stream_logs(run_id, follow=follow, kube=kube):
            if output == OutputFormat.table:
                typer.echo(line)
            else:   # one JSON object per line (works while following)
                typer.echo(json.dumps({"line": line}))


def collect(run_ids: Optional[List[str]] = typer.Argument(None, help="Run ids to collect (see `mlrepro runs`)."),
            sources: Optional[List[Path]] = typer.Option(None, "--from", help="Harness results directories "
                                                         "copied from elsewhere (a PVC, another machine)."),
            into: Path = typer.Option(Path("submission"), "--into", help="Root of the submission tree."),
            division: Division = DivisionOpt,
            submitter: str = typer.Option(..., "--submitter", help="Submitter (organisation) name."),
            contact: Optional[str] = ContactOpt, system_notes: Optional[Path] = SystemNotesOpt,
            force: bool = typer.Option(False, "--force", help="Replace a different result already in the tree."),
            context: Optional[str] = ContextOpt, namespace: Optional[str] = NamespaceOpt,
            kubeconfig: Optional[Path] = KubeconfigOpt,
            output: OutputFormat = OutputOpt) -> None:
    """Collect runs into an MLPerf inference submission tree (verified against the harness's checksums).

    A run mlrepro did not launch (a Job installed with Helm) is read from its claim with --namespace/--context.

    Example: mlrepro collect RUN_ID... --into submission/ --submitter MyOrg --system-notes notes.yaml
    """
    with cli_errors():
        from mlrepro.cli.report import print_collect
        from mlrepro.results.system_notes import system_overrides
        from mlrepro.runs import collect_runs

        if not run_ids and not sources:
            raise fail("collect: give run ids or --from DIR", 2)
        overrides = system_overrides(system_notes, contact=contact, submitter=submitter, division=division.value)
        kube = kube_target(context, namespace, kubeconfig) if (context or namespace or kubeconfig) else None
        report = collect_runs(run_ids or [], into, submitter=submitter, division=division.value, force=force,
                              extra_sources=sources or [], kube=kube, system_overrides=overrides)
        for r in report.rejected:       # runs whose results could not be read at all: one error line each
            if r.kind == "failed":
                typer.echo(f"mlrepro: error: {'; '.join(r.reasons)}", err=True)
        if output != OutputFormat.table:
            print_data({"tree": str(report.tree), "placed": [str(p.path) for p in report.placed],
                        "unchanged": [str(p.path) for p in report.unchanged],
                        "rejected": [{"run_id": r.run_id, "kind": r.kind, "reasons": list(r.reasons)}
                                     for r in report.rejected],
                        "systems": {sid: [vars(f) for f in report.system_findings.get(sid, ())]
                                    for sid in report.systems}}, output)
        else:
            print_collect(console(), report)
        if not report.ok:
            raise typer.Exit(1)
