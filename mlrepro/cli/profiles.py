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
    table,
)

app = typer.Typer(help="Inspect built-in and user profiles.", no_args_is_help=True, rich_markup_mode=None)


@app.command("list")
def list_profiles(output: OutputFormat = OutputOpt) -> None:
    """List the built-in profiles: name, platform, accelerator, backend, base image.

    Example: mlrepro profiles list --output json
    """
    with cli_errors():
        from mlrepro.profiles.loader import builtin_profile_names, resolve_profile

        rows = []
        for name in builtin_profile_names():
            r = resolve_profile(name)
            p = r.profile
            acc = f"{p.accelerator.vendor} x{p.accelerator.count} ({p.accelerator.resource_name})" \
                if p.accelerator.enabled else "none"
            rows.append({"name": name, "platform": p.platform, "accelerator": acc, "backend": p.framework.backend,
                         "base_image": p.base_image, "hash": r.short_hash, "description": p.description})
        if output != OutputFormat.table:
            print_data(rows, output)
            return
        t = table("name", "platform", "accelerator", "backend", "base image", "hash")
        for row in rows:
            t.add_row(row["name"], row["platform"], row["accelerator"], row["backend"], row["base_image"],
                          row["hash"])
        console().print(t)


@app.command("show")
def show(name: str = typer.Argument(..., help="Built-in profile name or profile file."),
         overlays: Optional[List[str]] = OverlayOpt, sets: Optional[List[str]] = SetOpt,
         output: OutputFormat = typer.Option(OutputFormat.yaml, "--output", help="yaml (default) or json."),
         ) -> None:
    """Print the fully resolved profile (after extends, overlays and --set) and its content hash.

    Example: mlrepro profiles show nvidia-gpu -f quick --set benchmark.scenarios=[Server]
    """
    with cli_errors():
        r = resolve(name, overlays, sets)
        data = {"hash": r.hash, "sources": list(r.sources), "profile": r.to_dict()}
        if output == OutputFormat.table:
            output = OutputFormat.yaml
        if output == OutputFormat.yaml:
            import sys

            sys.stdout.write(f"# hash: {r.hash}\n# sources: {', '.join(r.sources)}\n")
            print_data(r.to_dict(), output)
        else:
            print_data(data, output)
