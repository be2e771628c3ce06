"""``mlrepro run``: the main job — build if needed, launch every (scenario, mode), collect, print results."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from mlrepro.cli.common import OverlayOpt, ProfileOpt, SetOpt, cli_errors, console, resolve, split_csv


class Target(str, Enum):
    auto = "auto"
    native = "native"
    docker = "docker"


def register(app: typer.Typer) -> None:
    app.command("run")(run)


def run(profile: str = ProfileOpt, overlays: Optional[List[str]] = OverlayOpt, sets: Optional[List[str]] = SetOpt,
        target: Target = typer.Option(Target.auto, "--target", help="auto (docker if an engine is reachable, "
                                      "else native), native (in this Python, no container) or docker."),
        scenario: Optional[List[str]] = typer.Option(None, "--scenario", help="Scenario(s), comma-separated; "
                                                     "default: the profile's."),
        mode: Optional[List[str]] = typer.Option(None, "--mode", help="performance, accuracy, submission; "
                                                 "comma-separated; default: the profile's."),
        into: Optional[Path] = typer.Option(None, "--into", help="Collect into this submission tree "
                                            "(default: ./submission)."),
        division: str = typer.Option("open", "--division", help="closed, open or network."),
        submitter: str = typer.Option("mlrepro", "--submitter", help="Submitter (organisation) name."),
        contact: Optional[str] = typer.Option(None, "--contact", help="Submitter contact (e-mail) for the "
                                              "systems json (submitter_contact)."),
        system_notes: Optional[Path] = typer.Option(None, "--system-notes", help="YAML of systems-json fields no "
                                                    "probe can see (cooling, hw_notes, sw_notes, ...); "
                                                    "mlperf-sysinfo's config file works too."),
        collect: bool = typer.Option(True, "--collect/--no-collect", help="Collect into a submission tree."),
        ) -> None:
    """Run the benchmark end to end and print a results table.

    Example: mlrepro run -p x86-cpu --submitter Acme --contact ops@example.com --system-notes notes.yaml
    """
    with cli_errors():
        from mlrepro.cli.report import print_results
        from mlrepro.pipeline import PipelineOptions, run_pipeline
        from mlrepro.results.system_notes import system_overrides

        overrides = system_overrides(system_notes, contact=contact, submitter=submitter, division=division)
        resolved = resolve(profile, overlays, sets)
        options = PipelineOptions(target=target.value, scenarios=split_csv(scenario), modes=split_csv(mode),
                                  into=into or Path("submission"), division=division, submitter=submitter,
                                  system_overrides=overrides, collect=collect)
        c = console()
        result = run_pipeline(resolved, options, progress=lambda msg: c.print(msg))
        print_results(c, result)
        if not result.ok:
            raise typer.Exit(1)
