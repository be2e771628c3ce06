"""``mlrepro profiles list|show``."""

from __future__ import annotations

from typing import List, Optional

import typer

from mlrepro.cli.common import (
    OutputFormat,
    OutputOpt,
    OverlayOpt,
    SetOpt,
    cli_errors,
    console,
    print_data,
    resolve,
)

app = typer.Typer(help="Inspect built-in and user profiles.", no_args_is_help=True, rich_markup_mode=None)


def _overlay_summary(path) -> str:  # noqa: ANN001 - a Path
    """The first comment line of a built-in overlay file: what it is for."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


@app.command("list")
def list_profiles(output: OutputFormat = OutputOpt) -> None:
    """List the built-in profiles (name, platform, accelerator, backend, base image) and overlays (-f NAME).

    Example: mlrepro profiles list --output json
    """
    with cli_errors():
        from mlrepro.profiles.loader import builtin_overlay_names, builtin_profile_names, resolve_profile
        from mlrepro.resources import builtin_overlays_dir

        rows = []
        for name in builtin_profile_names():
            r = resolve_profile(name)
            p = r.profile
            acc = f"{p.accelerator.vendor} x{p.accelerator.count} ({p.accelerator.resource_name})" \
                if p.accelerator.enabled else "none"
            rows.append({"name": name, "platform": p.platform, "accelerator": acc, "backend": p.framework.backend,
                         "base_image": p.base_image, "hash": r.short_hash, "description": p.description})
        overlays = [{"name": name, "description": _overlay_summary(builtin_overlays_dir() / f"{name}.yaml")}
                    for name in builtin_overlay_names()]
        if output != OutputFormat.table:
            print_data({"profiles": rows, "overlays": overlays}, output)
            return
        from mlrepro.cli.common import Column, fitted_table

        c = console()
        columns = [Column("name"), Column("platform", keep=2), Column("accelerator", keep=4),
                   Column("backend", keep=3), Column("base image", keep=5), Column("hash", keep=1)]
        c.print(fitted_table(c, columns, [[row["name"], row["platform"], row["accelerator"], row["backend"],
                                           row["base_image"], row["hash"]] for row in rows],
                             title="profiles (-p NAME)"))
        c.print(fitted_table(c, [Column("name"), Column("what it does", wrap=True)],
                             [[row["name"], row["description"]] for row in overlays],
                             title="overlays (-f NAME, applied in order)"))


@app.command("show")
def show(name: str = typer.Argument(..., help="Built-in profile name or profile file."),
         overlays: Optional[List[str]] = OverlayOpt, sets: Optional[List[str]] = SetOpt,
         output: OutputFormat = typer.Option(OutputFormat.yaml, "--output", help="yaml (default), json, or table "
                                             "(every value with the file or --set that gave it)."),
         ) -> None:
    """Print the fully resolved profile (after extends, overlays and --set) and its content hash.

    Example: mlrepro profiles show nvidia-gpu -f quick --set benchmark.scenarios=[Server]
    """
    with cli_errors():
        r = resolve(name, overlays, sets)
        data = {"hash": r.hash, "sources": list(r.sources), "profile": r.to_dict()}
        if output == OutputFormat.table:
            _print_table(r)
        elif output == OutputFormat.yaml:
            import sys

            sys.stdout.write(f"# hash: {r.hash}\n# sources: {', '.join(r.sources)}\n")
            print_data(r.to_dict(), output)
        else:
            print_data(data, output)


def _leaves(value: object, prefix: str = "") -> list[tuple[str, object]]:
    if isinstance(value, dict) and value:
        out: list[tuple[str, object]] = []
        for k, v in value.items():
            out += _leaves(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    return [(prefix, value)]


def _print_table(r) -> None:  # noqa: ANN001 - a ResolvedProfile
    """Every resolved value as ``dotted.key | value | source`` (the file, overlay or --set that gave it)."""
    import json

    from rich.markup import escape

    from mlrepro.cli.common import Column, fitted_table
    from mlrepro.profiles.merge import source_of

    rows = []
    for key, value in _leaves(r.to_dict()):
        text = value if isinstance(value, str) else json.dumps(value)
        rows.append([key, escape(text), escape(source_of(r.provenance, key, "(default)"))])
    c = console()
    c.print(f"{r.profile.name} ({r.short_hash}): {', '.join(r.sources)}", markup=False, highlight=False)
    # keys stay whole; values wrap at spaces (long ones fold); where a value came from goes first when narrow
    c.print(fitted_table(c, [Column("key"), Column("value", wrap=True), Column("from", keep=1, wrap=True)], rows))
