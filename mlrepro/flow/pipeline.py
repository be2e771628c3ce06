"""The main job: prepare the images → launch every (profile, scenario, mode) → wait → fetch → collect.

``run``, ``launch``, ``calibrate`` and ``reproduce`` call :func:`run_pipeline`; ``compliance``
(:mod:`mlrepro.flow.audit`) plans its jobs from recorded runs and goes through the same
:func:`~mlrepro.flow.execute.execute`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mlrepro.errors import BadInputError
from mlrepro.flow.execute import execute, new_group_id
from mlrepro.flow.options import PipelineOptions, PipelineResult
from mlrepro.flow.plan import check_options, plan_launch
from mlrepro.profiles.loader import ResolvedProfile
from mlrepro.results.errors import ConflictError
from mlrepro.runners.base import Progress, RunnerConfig
from mlrepro.runners.targets import choose_target, get_runner

if TYPE_CHECKING:  # pragma: no cover
    from mlrepro.results.submission import CollectReport
    from mlrepro.state.store import RunStore


def run_pipeline(profiles: ResolvedProfile | Sequence[ResolvedProfile], options: PipelineOptions,
                 progress: Progress = lambda _m: None, store: RunStore | None = None,
                 state_dir: Path | None = None) -> PipelineResult:
    """Run every (profile, scenario, mode) of ``profiles`` on the options' target, ``options.parallel`` at a
    time; a failed run does not stop the others; then collect the verified results into ``options.into``.
    Returns one summary per run (failures with their diagnosis).

    Raises BadInputError for bad options, and what the target's ``prepare`` raises (build, push, no pushed
    image) before anything is launched. KeyboardInterrupt cancels every unfinished run, then propagates.
    """
    from mlrepro.state.calibration_cache import open_cache
    from mlrepro.state.store import default_state_dir, open_store

    resolved_list = [profiles] if isinstance(profiles, ResolvedProfile) else list(profiles)
    if not resolved_list:
        raise BadInputError("--profile: no profile given")
    check_options(options)
    target = choose_target(options.target, progress)
    state_dir = state_dir or default_state_dir()
    store = store or open_store(state_dir)
    runner = get_runner(target, RunnerConfig(state_dir=state_dir, image=options.image,
                                             results_dir=options.results_dir, registry=options.registry,
                                             kube=options.kube, pending_timeout_s=options.pending_timeout_s))
    cache = open_cache(state_dir)
    try:
        plan = plan_launch(runner, resolved_list, options, target, cache, progress)
        images = plan.images
        names = ", ".join(f"{r.profile.name} ({r.short_hash})" for r in resolved_list)
        progress(f"{len(plan.jobs)} run(s) of {names} on {target}"
                 + (f" with {images[0]}" if len(set(images)) == 1 and images[0] else ""))
        group = new_group_id()
        summaries = execute(runner, plan.jobs, store=store, state_dir=state_dir, target=target, progress=progress,
                            parallel=options.parallel, stream=options.stream_logs, group=group, cache=cache,
                            keep_results=options.keep_results, keep_server=options.keep_server)
    finally:
        runner.close()
    report: CollectReport | None = None
    collect_error = ""
    wants_tree = options.collect and options.into is not None and any(j.run.mode != "calibrate" for j in plan.jobs)
    collectable = [s.run for s in summaries if s.run is not None and s.mode != "calibrate"]
    if wants_tree and collectable:
        from mlrepro.results.submission import collect

        assert options.into is not None
        try:
            report = collect(collectable, options.into, submitter=options.submitter, division=options.division,
                             force=options.force, system_overrides=options.system_overrides)
        except ConflictError as exc:
            # the runs are done and kept in the run store: say what blocks the tree, print the runs anyway
            collect_error = (f"{exc.path or options.into}: a different result is already there; --force replaces "
                             f"it, or collect into another tree (mlrepro collect {' '.join(s.run_id for s in summaries)}"
                             " --into DIR)")
        else:
            progress(f"collected into {report.tree}: {len(report.placed)} placed, {len(report.unchanged)} "
                     f"unchanged, {len(report.rejected)} rejected")
    return PipelineResult(target=target, image=images[0] if len(set(images)) == 1 else "", runs=summaries,
                          collect_report=report, images=images, group=group, collect_expected=wants_tree,
                          collect_error=collect_error)
