"""From what was asked to the job specs of a launch: each profile's image prepared on the target, one run spec per
(profile, scenario, mode) with its calibration request, pinned user.conf and compliance tests, each checked by the
target before anything starts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from mlrepro.errors import BadInputError
from mlrepro.harness.spec import RUN_MODES, SCENARIOS, CalibrationRequest

if TYPE_CHECKING:  # pragma: no cover
    from mlrepro.flow.options import PipelineOptions
    from mlrepro.harness.spec import RunSpec
    from mlrepro.profiles.loader import ResolvedProfile
    from mlrepro.render.jobspec import JobSpec
    from mlrepro.runners.base import Progress, Runner
    from mlrepro.state.calibration_cache import CalibrationCache


@dataclass(frozen=True)
class Plan:
    jobs: tuple[JobSpec, ...]
    images: tuple[str, ...]
    """The image of each profile, in the order the profiles were given ("" native)."""


def check_choices(values: Sequence[str], allowed: Sequence[str], flag: str) -> list[str]:
    """``values`` as given, or BadInputError naming the flag for a value not in ``allowed`` or a duplicate."""
    for v in values:
        if v not in allowed:
            raise BadInputError(f"{flag}: {v!r} is not one of {', '.join(allowed)}")
    if len(set(values)) != len(values):
        raise BadInputError(f"{flag}: duplicates in {', '.join(values)}")
    return list(values)


def check_options(options: PipelineOptions) -> None:
    """Raise BadInputError for scenarios, modes or a parallelism the launch cannot take."""
    check_choices(options.scenarios, SCENARIOS, "--scenario")
    check_choices(options.modes, RUN_MODES, "--mode")
    if options.parallel < 1:
        raise BadInputError(f"--parallel: must be at least 1, got {options.parallel}")


def plan_launch(runner: Runner, profiles: Sequence[ResolvedProfile], options: PipelineOptions, target: str,
                cache: CalibrationCache, progress: Progress) -> Plan:
    """Prepare each profile's image on the target and build every job; ``runner.check`` accepts each one or
    raises (BadInputError) before anything is launched."""
    from mlrepro.render.jobspec import build_job_spec
    from mlrepro.render.runspec import check_runs, run_matrix

    jobs: list[JobSpec] = []
    images: list[str] = []
    for resolved in profiles:
        check_runs(resolved, options.scenarios or None)      # before an image is built or pushed
        image = runner.prepare(resolved, progress)
        images.append(image)
        specs = run_matrix(resolved, options.scenarios or None, options.modes or None, image=image, target=target)
        if options.division in ("closed", "network"):
            specs = _with_compliance(specs, resolved, progress)
        specs = [replace(s, calibration=CalibrationRequest(cached=cache.entries(s.profile_hash, s.scenario),
                                                           recalibrate=options.recalibrate,
                                                           find_peak=options.find_peak)) for s in specs]
        specs = [pinned(s, options.user_conf.get((s.scenario, s.mode))) for s in specs]
        jobs += [build_job_spec(resolved, image, spec) for spec in specs]
    for job in jobs:
        runner.check(job)
    return Plan(tuple(jobs), tuple(images))


def pinned(spec: RunSpec, user_conf: str | None) -> RunSpec:
    """The spec loading exactly ``user_conf`` (its settings and targets), or ``spec`` when None."""
    return spec if user_conf is None else replace(spec, user_conf=user_conf, settings={})


def _with_compliance(specs: Sequence[RunSpec], resolved: ResolvedProfile, progress: Progress) -> list[RunSpec]:
    """Closed and network divisions: runs with a performance run also run the compliance tests the round's rules
    name for the workload's benchmark (TEST01, TEST04; TEST06 for the LLMs), with the timed run's settings."""
    from mlrepro.harness.registry import load_workload_class
    from mlrepro.results.compliance import audit_requests, tests_not_run
    from mlrepro.results.rounds import load_round

    b = resolved.profile.benchmark
    cls = load_workload_class(b.workload)
    rnd = load_round()
    benchmark = next((n for n in (cls.benchmark, cls.model_mapping) if n in rnd.benchmarks),
                     rnd.benchmark_name(b.mlperf_model or cls.mlperf_model))
    requests = audit_requests(benchmark)
    missing = tests_not_run(benchmark)
    if missing:
        progress(f"{benchmark} also needs {', '.join(missing)}, which mlrepro does not run")
    if requests:
        progress(f"compliance tests of {benchmark}: {', '.join(r.test for r in requests)} (with each "
                 "performance run)")
    return [replace(s, compliance=requests) if s.mode in ("performance", "submission") else s for s in specs]
