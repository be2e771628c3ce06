"""``mlrepro run``: the main job — build if needed, launch every (scenario, mode), collect, print results."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from mlrepro.cli.common import (
    ContextOpt,
    KubeconfigOpt,
    NamespaceOpt,
    OverlayOpt,
    ProfileOpt,
    SetOpt,
    cli_errors,
    console,
    kube_target,
    resolve_many,
    split_csv,
)


class Target(str, Enum):
    auto = "auto"
    native = "native"
    docker = "docker"
    kubernetes = "kubernetes"
    k8s = "k8s"


def register(app: typer.Typer) -> None:
    app.command("run")(run)


def run(profile: str = ProfileOpt, overlays: Optional[List[str]] = OverlayOpt, sets: Optional[List[str]] = SetOpt,
        target: Target = typer.Option(Target.auto, "--target", help="auto (docker if an engine is reachable, "
                                      "else native), native (in this Python, no container), docker or kubernetes (k8s)."),
        scenario: Optional[List[str]] = typer.Option(None, "--scenario", help="Scenario(s), comma-separated; "
                                                     "default: the profile's."),
        mode: Optional[List[str]] = typer.Option(None, "--mode", help="performance, accuracy, submission; "
                                                 "comma-separated; default: the profile's."),
        into: Optional[Path] = typer.Option(None, "--into", help="Collect into this submission tree "
                                            "(default: ./submission)."),
        division: str = typer.Option("open", "--division", help="closed, open or network."),
        submitter: str = typer.Option("mlrepro", "--submitter", help="Submitter (organisation) name."),
        collect: bool = typer.Option(True, "--collect/--no-collect", help="Collect into a submission tree."),
        image: Optional[str] = typer.Option(None, "--image", help="docker, kubernetes: run this image instead of "
                                            "building (kubernetes: instead of the last pushed digest)."),
        registry: Optional[str] = typer.Option(None, "--registry", help="kubernetes: build and push the image to "
                                               "this registry first."),
        context: Optional[str] = ContextOpt, namespace: Optional[str] = NamespaceOpt,
        kubeconfig: Optional[Path] = KubeconfigOpt,
        ) -> None:
    """Run the benchmark end to end and print a results table.

    Example: mlrepro run -p x86-cpu --target native --scenario Offline --mode performance
    """
    with cli_errors():
        from mlrepro.cli.report import print_results
        from mlrepro.pipeline import PipelineOptions, run_pipeline

        resolved = resolve_many(profile, overlays, sets)
        options = PipelineOptions(target=target.value, scenarios=split_csv(scenario), modes=split_csv(mode),
                                  into=into or Path("submission"), division=division, submitter=submitter,
                                  collect=collect, image=image, registry=registry,
                                  kube=kube_target(context, namespace, kubeconfig))
        c = console()
        result = run_pipeline(resolved, options, progress=lambda msg: c.print(msg))
        print_results(c, result)
        if not result.ok:
            raise typer.Exit(1)
