"""``mlrepro launch``: runs that outlive the terminal (``runs``, ``logs`` and ``collect`` find them later)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from mlrepro.cli.common import (
    ContextOpt,
    EndpointOpt,
    FindPeakOpt,
    KeepServerOpt,
    KeepVolumeOpt,
    KubeconfigOpt,
    ModesOpt,
    NamespaceOpt,
    OutputFormat,
    OutputOpt,
    OverlayOpt,
    PendingTimeoutOpt,
    ProfileOpt,
    RecalibrateOpt,
    ScenariosOpt,
    ServedModelOpt,
    ServeOpt,
    SetOpt,
    Target,
    cli_errors,
    kube_target,
    resolve_many,
    serving_sets,
    split_csv,
)
from mlrepro.runners import targets


def register(app: typer.Typer) -> None:
    app.command("launch")(launch)


def launch(profile: str = ProfileOpt, overlays: Optional[List[str]] = OverlayOpt, sets: Optional[List[str]] = SetOpt,
           scenario: Optional[List[str]] = ScenariosOpt,
           mode: Optional[List[str]] = ModesOpt,
           parallel: int = typer.Option(1, "--parallel", help="Runs at a time (a sweep's concurrency limit)."),
           target: Target = typer.Option(targets.LAUNCH_DEFAULT, "--target", help=targets.describe() + "."),
           results_dir: Optional[Path] = typer.Option(None, "--results-dir", help="docker: bind-mount this host "
                                                      "directory for results instead of a named volume per run."),
           image: Optional[str] = typer.Option(None, "--image", help="Run this image instead of building one "
                                               "(kubernetes: instead of the last pushed digest)."),
           registry: Optional[str] = typer.Option(None, "--registry", help="kubernetes: build and push the image "
                                                  "to this registry first, e.g. 127.0.0.1:5001/bench."),
           context: Optional[str] = ContextOpt, namespace: Optional[str] = NamespaceOpt,
           kubeconfig: Optional[Path] = KubeconfigOpt,
           pending_timeout: float = PendingTimeoutOpt,
           recalibrate: bool = RecalibrateOpt, find_peak: bool = FindPeakOpt,
           keep_volume: bool = KeepVolumeOpt, output: OutputFormat = OutputOpt,
           serve: Optional[str] = ServeOpt, endpoint: Optional[str] = EndpointOpt,
           served_model: Optional[str] = ServedModelOpt, keep_server: bool = KeepServerOpt,
           ) -> None:
    """Launch benchmark runs (every profile × scenario × mode) and wait for them; `runs` and `collect` work afterwards.

    Ctrl-C (or SIGTERM) stops every run it started and marks it cancelled (exit 130).

    \b
    Example: mlrepro launch -p x86-cpu -f air-gapped --scenario Offline,Server --parallel 2
    An LLM on a model server: mlrepro launch -p nvidia-gpu-llm --serve vllm --target k8s
    """
    with cli_errors():
        from mlrepro.cli.report import run_and_print
        from mlrepro.flow import PipelineOptions

        resolved = resolve_many(profile, overlays, serving_sets(sets, serve, endpoint, served_model))
        options = PipelineOptions(target=target.value, scenarios=split_csv(scenario), modes=split_csv(mode),
                                  collect=False, into=None, parallel=parallel,
                                  results_dir=results_dir.resolve() if results_dir else None, image=image,
                                  registry=registry, kube=kube_target(context, namespace, kubeconfig),
                                  pending_timeout_s=pending_timeout, recalibrate=recalibrate, find_peak=find_peak,
                                  keep_results=keep_volume, keep_server=keep_server)
        run_and_print(resolved, options, output)
