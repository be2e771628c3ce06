"""``mlrepro collect``: recorded runs (or results directories) into an MLPerf submission tree."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from mlrepro.cli.common import (
    ContactOpt,
    ContextOpt,
    Division,
    DivisionOpt,
    KubeconfigOpt,
    NamespaceOpt,
    OutputFormat,
    OutputOpt,
    SystemNotesOpt,
    cli_errors,
    console,
    fail,
    kube_target_if_given,
    print_data,
)


def register(app: typer.Typer) -> None:
    app.command("collect")(collect)


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
        from mlrepro.flow.recorded import collect_runs
        from mlrepro.results.system_notes import system_overrides

        if not run_ids and not sources:
            raise fail("collect: give run ids or --from DIR", 2)
        overrides = system_overrides(system_notes, contact=contact, submitter=submitter, division=division.value)
        report = collect_runs(run_ids or [], into, submitter=submitter, division=division.value, force=force,
                              extra_sources=sources or [], kube=kube_target_if_given(context, namespace, kubeconfig),
                              system_overrides=overrides)
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
