"""``mlrepro generate``: Dockerfile + build context, Kubernetes manifests, Helm values."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from mlrepro.cli.common import (
    EndpointOpt,
    OverlayOpt,
    ProfileOpt,
    ServedModelOpt,
    ServeOpt,
    SetOpt,
    cli_errors,
    console,
    resolve,
    serving_sets,
)


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)


def generate(profile: str = ProfileOpt, overlays: Optional[List[str]] = OverlayOpt,
             sets: Optional[List[str]] = SetOpt,
             out: Path = typer.Option(..., "--out", "-o", help="Output directory (created)."),
             helm_values: bool = typer.Option(True, "--helm-values/--no-helm-values",
                                              help="Also write values.yaml for the chart in helm/mlrepro."),
             image: Optional[str] = typer.Option(None, "--image", help="Image reference for the manifests "
                                                 "(default: the one `mlrepro build` tags, "
                                                 "[registry/]repository:<profile>-<content hash>)."),
             scenario: Optional[str] = typer.Option(None, "--scenario", help="Scenario of the rendered Job "
                                                    "(default: the profile's first)."),
             mode: Optional[str] = typer.Option(None, "--mode", help="Mode of the rendered Job "
                                                "(default: the profile's first)."),
             run_id: Optional[str] = typer.Option(None, "--run-id", help="Run id of the rendered Job (default: a "
                                                  "new one, so each rendering is a new Job)."),
             kubernetes_version: Optional[str] = typer.Option(None, "--kubernetes-version", help="Reject what this "
                                                              "Kubernetes version cannot run, e.g. 1.33."),
             serve: Optional[str] = ServeOpt, endpoint: Optional[str] = EndpointOpt,
             served_model: Optional[str] = ServedModelOpt,
             ) -> None:
    """Generate the build context (Dockerfile, lock, harness), Kubernetes manifests and Helm values.

    \b
    Example: mlrepro generate -p nvidia-gpu -f overlay.yaml --set benchmark.scenarios=[Server] -o out/
    With a model server (a Deployment + Service, the Job its client): mlrepro generate -p nvidia-gpu-llm --serve vllm -o out/
    """
    with cli_errors():
        from mlrepro.artifacts import generate_artifacts

        resolved = resolve(profile, overlays, serving_sets(sets, serve, endpoint, served_model))
        result = generate_artifacts(resolved, out, image=image, scenario=scenario, mode=mode, run_id=run_id,
                                    helm_values=helm_values, kubernetes_version=kubernetes_version)
        c = console()
        c.print(f"[bold]{resolved.profile.name}[/] ({resolved.short_hash}) → {out}: run {result.run_id}, "
                f"image {result.image}", markup=True)
        for path in result.files:
            c.print(f"  {path}")
