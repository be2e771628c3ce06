"""``mlrepro prune``: remove results volumes, stopped containers, builder leftovers and old runs mlrepro made."""

from __future__ import annotations

from typing import Optional

import typer

from mlrepro.cli.common import Column, OutputFormat, OutputOpt, cli_errors, console, fitted_table, print_data


def register(app: typer.Typer) -> None:
    app.command("prune")(prune)


def human_bytes(n: int | None) -> str:
    """``1536`` -> ``1.5 KiB``; None -> ``?``."""
    if n is None:
        return "?"
    value, unit = float(n), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"


def prune(older_than: Optional[str] = typer.Option(None, "--older-than", help="Also forget runs that ended longer "
                                                   "ago than this (7d, 12h, 30m): their work directory, record and "
                                                   "volume."),
          dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would go and how much it frees."),
          output: OutputFormat = OutputOpt) -> None:
    """Remove what mlrepro made and no longer needs: results volumes whose results are here (or whose run failed
    or was cancelled), stopped run and helper containers, builder images the build left untagged; with
    --older-than, old runs too. Running and pending runs are never touched, nor volumes and containers made by
    another state directory ($MLREPRO_STATE_DIR) or before mlrepro labelled them: those are listed as kept.

    Example: mlrepro prune --older-than 7d --dry-run
    """
    with cli_errors():
        from mlrepro.flow.prune import apply_prune, parse_age, plan_prune, summary_rows

        plan = plan_prune(older_than_s=parse_age(older_than) if older_than else None)
        report = None if dry_run else apply_prune(plan)
        if output != OutputFormat.table:
            data = {"dry_run": dry_run, "bytes": plan.bytes if dry_run else report.bytes,  # type: ignore[union-attr]
                    "items": summary_rows(plan.items), "kept": summary_rows(plan.kept), "notes": plan.notes,
                    "failed": [] if report is None else [{"name": i.name, "kind": i.kind, "error": e}
                                                         for i, e in report.failed]}
            print_data(data, output)
        else:
            c = console()
            for note in plan.notes:
                c.print(f"note: {note}", markup=False)
            if plan.items:
                columns = [Column("kind"), Column("name"), Column("size", keep=1, right=True),
                           Column("why", keep=2, wrap=True)]
                c.print(fitted_table(c, columns, [[i.kind, i.name if i.kind != "image" else i.name[:19],
                                                   human_bytes(i.bytes), i.reason] for i in plan.items]))
            for i in plan.kept:   # one line each: the reason (a command to run) must stay whole at any width
                c.print(f"kept {i.kind} {i.name}: {i.reason}", markup=False)
            if report is None:
                c.print(f"would remove {len(plan.items)} item(s), freeing {human_bytes(plan.bytes)} (dry run)",
                        markup=False)
            else:
                for item, error in report.failed:
                    c.print(f"could not remove {item.kind} {item.name}: {error}", markup=False)
                c.print(f"removed {len(report.removed)} item(s), freed {human_bytes(report.bytes)}", markup=False)
        if report is not None and report.failed:
            raise typer.Exit(1)
