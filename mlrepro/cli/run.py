"""``mlrepro run``: the main job — build if needed, launch every (scenario, mode), collect, print results."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from mlrepro.cli.common import (
    AutoTarget,
    ContactOpt,
    ContextOpt,
    Division,
    DivisionOpt,
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
    ProfileOpt,
    RecalibrateOpt,
    ScenariosOpt,
    ServedModelOpt,
    ServeOpt,
    SetOpt,
    SystemNotesOpt,
    cli_errors,
    console,
    kube_target,
    print_data,
    resolve,
    resolve_many,
    serving_sets,
    split_csv,
)
from mlrepro.runners import targets


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("calibrate")(calibrate)


def run(profile: str = ProfileOpt, overlays: Optional[List[str]] = OverlayOpt, sets: Optional[List[str]] = SetOpt,
        target: AutoTarget = typer.Option(targets.RUN_DEFAULT, "--target", help=targets.describe(auto=True) + "."),
        scenario: Optional[List[str]] = typer.Option(None, "--scenario", help="Scenario(s), comma-separated; "
                                                     "default: the profile's."),
        mode: Optional[List[str]] = ModesOpt,
        into: Optional[Path] = typer.Option(None, "--into", help="Collect into this submission tree "
                                            "(default: ./submission)."),
        division: Division = DivisionOpt,
        submitter: str = typer.Option("mlrepro", "--submitter", help="Submitter (organisation) name."),
        contact: Optional[str] = ContactOpt, system_notes: Optional[Path] = SystemNotesOpt,
        collect: bool = typer.Option(True, "--collect/--no-collect", help="Collect into a submission tree."),
        force: bool = typer.Option(False, "--force", help="Replace a different result already in the tree (a "
                                   "rerun of the same profile; the earlier run stays in the run store)."),
        image: Optional[str] = typer.Option(None, "--image", help="docker, kubernetes: run this image instead of "
                                            "building (kubernetes: instead of the last pushed digest)."),
        registry: Optional[str] = typer.Option(None, "--registry", help="kubernetes: build and push the image to "
                                               "this registry first."),
        context: Optional[str] = ContextOpt, namespace: Optional[str] = NamespaceOpt,
        kubeconfig: Optional[Path] = KubeconfigOpt,
        recalibrate: bool = RecalibrateOpt, find_peak: bool = FindPeakOpt,
        keep_volume: bool = KeepVolumeOpt, output: OutputFormat = OutputOpt,
        serve: Optional[str] = ServeOpt, endpoint: Optional[str] = EndpointOpt,
        served_model: Optional[str] = ServedModelOpt, keep_server: bool = KeepServerOpt,
        ) -> None:
    """Run the benchmark end to end and print a results table (Ctrl-C or SIGTERM: every run cancelled, exit 130).

    \b
    Example: mlrepro run -p x86-cpu --submitter Acme --contact ops@example.com --system-notes notes.yaml
    An LLM on a model server: mlrepro run -p x86-cpu-llm --serve transformers --target native
    """
    with cli_errors():
        from mlrepro.cli.report import run_and_print
        from mlrepro.flow import PipelineOptions
        from mlrepro.results.system_notes import system_overrides

        overrides = system_overrides(system_notes, contact=contact, submitter=submitter, division=division.value)
        resolved = resolve_many(profile, overlays, serving_sets(sets, serve, endpoint, served_model))
        options = PipelineOptions(target=target.value, scenarios=split_csv(scenario), modes=split_csv(mode),
                                  into=into or Path("submission"), division=division.value, submitter=submitter,
                                  system_overrides=overrides, collect=collect, image=image, registry=registry,
                                  kube=kube_target(context, namespace, kubeconfig), recalibrate=recalibrate,
                                  find_peak=find_peak, keep_results=keep_volume, force=force,
                                  keep_server=keep_server)
        run_and_print(resolved, options, output)


def calibrate(profile: str = ProfileOpt, overlays: Optional[List[str]] = OverlayOpt,
              sets: Optional[List[str]] = SetOpt,
              target: AutoTarget = typer.Option(targets.RUN_DEFAULT, "--target", help="Where to measure (the same "
                                                "place the timed runs will run): " + targets.describe(auto=True) + "."),
              scenario: Optional[List[str]] = ScenariosOpt,
              find_peak: bool = FindPeakOpt, output: OutputFormat = OutputOpt,
              serve: Optional[str] = ServeOpt, endpoint: Optional[str] = EndpointOpt,
              served_model: Optional[str] = ServedModelOpt) -> None:
    """Measure and cache the LoadGen targets of a profile on this system; no timed run.

    The next run of the same profile (same profile hash) on the same system uses them without calibrating.
    Example: mlrepro calibrate -p x86-cpu --scenario Server --find-peak
    """
    with cli_errors():
        from mlrepro.cli.report import print_calibration
        from mlrepro.flow import PipelineOptions, run_pipeline

        resolved = resolve(profile, overlays, serving_sets(sets, serve, endpoint, served_model))
        options = PipelineOptions(target=target.value, scenarios=split_csv(scenario), modes=["calibrate"],
                                  collect=False, into=None, recalibrate=True, find_peak=find_peak)
        c = console()
        result = run_pipeline(resolved, options, progress=lambda msg: c.print(msg, markup=False)
                              if output == OutputFormat.table else None)
        if output != OutputFormat.table:
            print_data([{"run_id": r.run_id, "scenario": r.scenario, "status": r.status,
                         "target": r.loadgen_target, "message": r.message} for r in result.runs], output)
        else:
            print_calibration(c, result)
        if not result.ok:
            raise typer.Exit(1)
