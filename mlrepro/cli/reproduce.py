"""``mlrepro reproduce``: rerun a recorded result (a result folder or a run id) and print the drift report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from mlrepro.cli.common import (
    ContextOpt,
    KubeconfigOpt,
    NamespaceOpt,
    OutputFormat,
    OutputOpt,
    Target,
    cli_errors,
    console,
    kube_target_if_given,
    print_data,
)
from mlrepro.runners import targets

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

    from mlrepro.reproduce import ReproduceResult


def register(app: typer.Typer) -> None:
    app.command("reproduce")(reproduce)


def reproduce(what: str = typer.Argument(..., help="A result folder of a submission tree "
                                         "(<tree>/<division>/<submitter>/results/<system>/<benchmark>/<scenario>) "
                                         "or a run id of `mlrepro runs` (or a unique part of it)."),
              target: Optional[Target] = typer.Option(None, "--target", help=targets.describe() + "; default: the "
                                                      "recorded run's."),
              tolerance: float = typer.Option(5.0, "--tolerance", help="Performance tolerance in percent (the "
                                              "result metric, relative); accuracy is compared exactly."),
              into: Optional[Path] = typer.Option(None, "--into", help="Tree of the reproduction (default: "
                                                  "<tree>.mlrepro/reproduce/<time>-<run id>)."),
              image: Optional[str] = typer.Option(None, "--image", help="docker, kubernetes: run this image instead "
                                                  "of the recorded one (a different digest is a mismatch)."),
              recalibrate: bool = typer.Option(False, "--recalibrate", help="Measure the LoadGen targets again "
                                               "instead of pinning the recorded ones."),
              version: Optional[str] = typer.Option(None, "--version", help="MLPerf inference round of the tree "
                                                    "layout (default: the newest)."),
              context: Optional[str] = ContextOpt, namespace: Optional[str] = NamespaceOpt,
              kubeconfig: Optional[Path] = KubeconfigOpt,
              output: OutputFormat = OutputOpt) -> None:
    """Rerun a recorded result with its exact profile, image and user.conf, then compare: accuracy exactly,
    performance within --tolerance, validity. Prints a drift report; exit 0 on a match, 1 on a mismatch.

    \b
    Example: mlrepro reproduce submission/open/mlrepro/results/<system>/reference-digits/Offline
    A result of a model server (--serve) stands the same server up again: the same engine, command line and model.
    """
    with cli_errors():
        from mlrepro.reproduce import ReproduceOptions, from_result_folder, from_run_id
        from mlrepro.reproduce import reproduce as run_reproduce
        from mlrepro.state.store import default_state_dir

        state_dir = default_state_dir()
        path = Path(what)
        is_folder = path.exists() or "/" in what     # a run id is a DNS label: no slash
        original = from_result_folder(path, version) if is_folder else from_run_id(what, state_dir, version)
        c = console()
        quiet = output != OutputFormat.table
        result = run_reproduce(original, ReproduceOptions(
            target=target.value if target else None, tolerance=tolerance / 100.0, into=into, image=image, recalibrate=recalibrate,
            version=version, state_dir=state_dir,
            kube=kube_target_if_given(context, namespace, kubeconfig)),
            progress=(lambda _m: None) if quiet else (lambda msg: c.print(msg, markup=False)))
        if quiet:
            print_data(_data(result), output)
        else:
            _print(c, result)
        if not result.match:
            raise typer.Exit(1)


def _data(result: "ReproduceResult") -> dict:
    from dataclasses import asdict

    return {"match": result.match, "original": f"{result.original.tree.root}/{result.original.result.rel}",
            "reproduction": f"{result.tree}/{result.result_rel}" if result.result_rel else None,
            "tolerance": result.drift.tolerance,
            "image": asdict(result.image) if result.image else None,
            "items": [asdict(i) for i in result.drift.items], "notes": list(result.drift.notes)}


def _short(value: str) -> str:
    """A sha256 (alone or after ``sha256:`` or ``repo@sha256:``) cut to 16 hex digits for the table."""
    head, sep, digest = value.rpartition(":") if ":" in value else ("", "", value)
    if len(digest) == 64 and all(c in "0123456789abcdef" for c in digest):
        return f"{head}{sep}{digest[:16]}…"
    return value


def _print(c: "Console", result: "ReproduceResult") -> None:
    from mlrepro.cli.common import Column, fitted_table

    drift = result.drift
    columns = [Column("", keep=3), Column("what"), Column("recorded", wrap=True), Column("reproduced", wrap=True),
               Column("verdict"), Column("note", keep=2, wrap=True)]
    style = {"mismatch": "red", "differs": "yellow", "same": "green"}
    rows = [[i.group, i.name, _short(i.recorded), _short(i.reproduced), f"[{style[i.verdict]}]{i.verdict}[/]", i.note]
            for i in drift.items
            if i.verdict != "same" or i.group in ("result", "image", "profile", "server")]
    # (unchanged environment, settings and seeds are counted below, not listed)
    c.print(f"drift report: {result.original.result.rel}", markup=False)
    c.print(fitted_table(c, columns, rows))
    same = sum(1 for i in drift.items if i.verdict == "same" and i.group in ("environment", "settings", "seeds"))
    c.print(f"{same} environment facts, LoadGen settings and seeds are the same.", markup=False)
    for note in drift.notes:
        c.print(f"note: {note}", markup=False)
    if result.result_rel:
        c.print(f"reproduction: {result.tree}/{result.result_rel}  (compare: mlrepro report "
                f"{result.original.tree.root} --compare {result.tree} -o report.html)", markup=False)
    if drift.match:
        c.print(f"[green]MATCH[/]: accuracy identical, performance within ±{drift.tolerance * 100:g} %, VALID")
    else:
        names = ", ".join(f"{i.group} {i.name}" for i in drift.mismatches)
        c.print(f"[red]MISMATCH[/] ({len(drift.mismatches)}): {names}", highlight=False)
