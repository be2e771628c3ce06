"""The main job: (build) → launch every (scenario, mode) → fetch results → collect → summary.

The CLI's ``run`` and ``launch`` call :func:`run_pipeline`; tests call it directly.
"""

from __future__ import annotations

import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

from mlrepro.errors import BadInputError, MlreproError
from mlrepro.harness.spec import RUN_MODES, SCENARIOS, CalibrationRequest, RunSpec
from mlrepro.profiles.loader import ResolvedProfile
from mlrepro.runners.base import RunHandle, RunOutcome, RunStatus

if TYPE_CHECKING:  # pragma: no cover
    from mlrepro.results.calibration_cache import CalibrationCache
    from mlrepro.results.state import RunStore
    from mlrepro.results.submission import CollectReport

Progress = Callable[[str], None]


@dataclass(frozen=True)
class PipelineOptions:
    target: str = "auto"                  # auto | native | docker
    scenarios: Sequence[str] = ()
    modes: Sequence[str] = ()
    into: Path | None = Path("submission")
    division: str = "open"
    submitter: str = "mlrepro"
    system_overrides: Mapping[str, str] = field(default_factory=dict)   # systems-json fields (notes, contact)
    collect: bool = True
    parallel: int = 1
    results_dir: Path | None = None       # docker: bind-mount this host directory instead of named volumes
    force: bool = False                   # collect: replace a different existing result
    image: str | None = None              # docker: use this image instead of building
    stream_logs: bool = True              # print the harness's output while it runs (one run at a time)
    recalibrate: bool = False             # ignore cached calibrations of this profile (they are replaced)
    find_peak: bool = False               # Server: search the highest VALID target QPS more finely


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    scenario: str
    mode: str
    status: str
    exit_code: int | None
    result: float | None = None
    result_unit: str = ""
    validity: str | None = None
    accuracy: float | None = None
    duration_s: float = 0.0
    results_dir: Path | None = None
    message: str = ""
    loadgen_target: dict | None = None    # the record's target decision: setting, value, source, cost_s ...
    notes: tuple[str, ...] = ()           # framework version differing from the pin, a recalibration ...


@dataclass(frozen=True)
class PipelineResult:
    target: str
    image: str
    runs: tuple[RunSummary, ...]
    collect_report: "CollectReport | None" = None
    collect_expected: bool = False        # a tree was asked for (run --into)

    @property
    def problems(self) -> tuple[str, ...]:
        """Why the job did not produce what was asked for (beyond each run's own status)."""
        report = self.collect_report
        if not self.collect_expected or any(r.status != RunStatus.succeeded.value for r in self.runs):
            return ()
        if report is None:
            return ("no run left results to collect",)
        if not report.results:
            why = "; ".join(f"{r.run_id}: {'; '.join(r.reasons)}" for r in report.rejected) or "no result folder"
            return (f"nothing was placed in the submission tree ({why})",)
        return ()

    @property
    def ok(self) -> bool:
        return bool(self.runs) and all(r.status == RunStatus.succeeded.value for r in self.runs) \
            and not self.problems


def _check_choices(values: Sequence[str], allowed: tuple[str, ...], flag: str) -> list[str]:
    for v in values:
        if v not in allowed:
            raise BadInputError(f"{flag}: {v!r} is not one of {', '.join(allowed)}")
    if len(set(values)) != len(values):
        raise BadInputError(f"{flag}: duplicates in {', '.join(values)}")
    return list(values)


def choose_target(requested: str, progress: Progress) -> str:
    if requested not in ("auto", "native", "docker"):
        raise BadInputError(f"--target: {requested!r} is not one of auto, native, docker")
    if requested != "auto":
        return requested
    from mlrepro.image.engine import connect, docker_host
    from mlrepro.image.errors import EngineUnavailable

    try:
        connect(timeout=10).close()
    except EngineUnavailable:
        progress(f"no Docker engine reachable at {docker_host()}: running natively (--target native)")
        return "native"
    return "docker"


def run_pipeline(resolved: ResolvedProfile, options: PipelineOptions, progress: Progress = lambda _m: None,
                 store: "RunStore | None" = None, state_dir: Path | None = None) -> PipelineResult:
    from mlrepro.profiles.runspec import run_matrix
    from mlrepro.results.calibration_cache import open_cache
    from mlrepro.results.state import default_state_dir, open_store

    scenarios = _check_choices(options.scenarios, SCENARIOS, "--scenario")
    modes = _check_choices(options.modes, RUN_MODES, "--mode")
    if options.parallel < 1:
        raise BadInputError(f"--parallel: must be at least 1, got {options.parallel}")
    target = choose_target(options.target, progress)
    state_dir = state_dir or default_state_dir()
    store = store or open_store(state_dir)
    work_dir = state_dir / "runs"
    image = ""
    if target == "docker":
        image = options.image or _build(resolved, progress)
    specs = run_matrix(resolved, scenarios or None, modes or None, image=image, target=target)
    cache = open_cache(state_dir)
    specs = [replace(s, calibration=CalibrationRequest(cached=cache.entries(s.profile_hash, s.scenario),
                                                       recalibrate=options.recalibrate,
                                                       find_peak=options.find_peak)) for s in specs]
    runner = _runner(target, resolved, work_dir, options, image)
    progress(f"{len(specs)} run(s) of {resolved.profile.name} ({resolved.short_hash}) on {target}"
             + (f" with {image}" if image else ""))
    active: dict[str, RunHandle] = {}
    stream = options.stream_logs and options.parallel == 1
    execute = lambda s: _execute(runner, s, store, work_dir, target, progress, active, stream, cache)  # noqa: E731
    if options.parallel == 1:
        summaries = [execute(s) for s in specs]
    else:
        pool = ThreadPoolExecutor(max_workers=options.parallel)
        try:
            summaries = list(pool.map(execute, specs))
        except KeyboardInterrupt:
            _cancel_all(runner, store, active, specs)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    report = None
    wants_tree = options.collect and options.into is not None and any(s.mode != "calibrate" for s in specs)
    collectable = [s.results_dir for s in summaries if s.results_dir is not None and s.mode != "calibrate"]
    if wants_tree and collectable:
        report = collect_into(collectable, options.into, options.submitter, options.division, options.force,
                              system_overrides=options.system_overrides)
        progress(f"collected into {report.tree}: {len(report.placed)} placed, {len(report.unchanged)} unchanged, "
                 f"{len(report.rejected)} rejected")
    return PipelineResult(target=target, image=image, runs=tuple(summaries), collect_report=report,
                          collect_expected=wants_tree)


def collect_into(results: Sequence[Path], into: Path, submitter: str, division: str,
                 force: bool = False, system_overrides: Mapping[str, str] | None = None) -> "CollectReport":
    from mlrepro.results.submission import collect

    return collect(list(results), into, submitter=submitter, division=division, force=force,
                   system_overrides=system_overrides)


def _build(resolved: ResolvedProfile, progress: Progress) -> str:
    from mlrepro.image.builder import build_image
    from mlrepro.image.progress import BuildNote, StepStarted

    def on_event(event: object) -> None:
        if isinstance(event, BuildNote):
            progress(f"build: {event.message}")
        elif isinstance(event, StepStarted):
            progress(f"build: step {event.step}/{event.total}: {event.instruction}")

    result = build_image(resolved, on_event=on_event)
    progress(f"image {result.ref} ({'up to date' if result.skipped else f'built in {result.seconds:.0f} s'})")
    return result.ref


def _runner(target: str, resolved: ResolvedProfile, work_dir: Path, options: PipelineOptions, image: str):
    deadline = float(resolved.profile.job.deadline_seconds)
    if target == "native":
        from mlrepro.runners.native import NativeRunner

        return NativeRunner(work_dir, deadline_s=deadline, env=dict(resolved.profile.env))
    from mlrepro.image.engine import connect
    from mlrepro.render.podspec import build_pod_spec
    from mlrepro.runners.docker import DockerRunner

    return DockerRunner(connect(), work_dir, lambda spec: build_pod_spec(resolved, image, spec),
                        deadline_s=deadline, results_dir=options.results_dir)


def _cancel_all(runner, store: "RunStore", active: dict[str, RunHandle], specs: Sequence[RunSpec]) -> None:
    """Ctrl-C with runs in worker threads: stop every container/process, mark unfinished runs cancelled."""
    from mlrepro.results.state import utcnow

    for handle in list(active.values()):
        runner.cancel(handle)
    for spec in specs:
        record = store.find(spec.run_id)
        if record is not None and record.status in ("pending", "running"):
            store.update(spec.run_id, status="cancelled", ended_at=utcnow(), message="interrupted (Ctrl-C)")


def _stream(runner, handle: RunHandle, progress: Progress) -> threading.Thread:
    """Follow the run's output on a daemon thread while the main thread waits (and enforces the deadline)."""

    def follow() -> None:
        try:
            for line in runner.logs(handle, follow=True):
                progress(f"  | {line}")
        except Exception:  # noqa: BLE001 - the log stream is a convenience; the run's outcome is what counts
            return

    thread = threading.Thread(target=follow, name=f"logs-{handle.run_id}", daemon=True)
    thread.start()
    return thread


def _execute(runner, spec: RunSpec, store: "RunStore", work_dir: Path, target: str,
             progress: Progress, active: dict[str, RunHandle], stream: bool = False,
             cache: "CalibrationCache | None" = None) -> RunSummary:
    from mlrepro.results.errors import StatusConflictError
    from mlrepro.results.state import RunRecord, utcnow

    store.add(RunRecord(run_id=spec.run_id, profile=spec.profile_name, profile_hash=spec.profile_hash,
                        scenario=spec.scenario, mode=spec.mode, target=target, image=spec.image,
                        status="pending"))
    started = time.monotonic()
    handle: RunHandle | None = None
    try:
        handle = runner.launch(spec)
        active[spec.run_id] = handle
        store.update(spec.run_id, status="running", started_at=utcnow(), job_id=handle.ref,
                     results_location=handle.results_location)
        progress(f"{spec.run_id}: running ({spec.scenario}, {spec.mode})")
        follower = _stream(runner, handle, progress) if stream else None
        outcome = runner.wait(handle)
        if follower is not None:
            follower.join(timeout=2)
    except KeyboardInterrupt:
        if handle is not None:
            runner.cancel(handle)
        store.update(spec.run_id, status="cancelled", ended_at=utcnow(), message="interrupted (Ctrl-C)")
        raise
    except MlreproError as exc:
        store.update(spec.run_id, status="failed", ended_at=utcnow(), message=str(exc))
        return RunSummary(spec.run_id, spec.scenario, spec.mode, "failed", None, message=str(exc),
                          duration_s=time.monotonic() - started)
    finally:
        active.pop(spec.run_id, None)
    results_dir = _fetch(runner, handle, work_dir, progress)
    summary = summarize(spec, outcome, results_dir, time.monotonic() - started)
    if cache is not None and results_dir is not None:
        _remember_calibration(cache, results_dir, progress)
    try:
        store.update(spec.run_id, expect_status=("running",), status=summary.status, exit_code=summary.exit_code,
                     ended_at=utcnow(), result=summary.result, result_unit=summary.result_unit,
                     validity=summary.validity, accuracy=summary.accuracy, message=summary.message,
                     loadgen_target=summary.loadgen_target)
    except StatusConflictError:  # cancelled meanwhile (Ctrl-C from the main thread)
        return replace(summary, status="cancelled")
    progress(f"{spec.run_id}: {summary.status}" + (f" — {summary.message}" if summary.message else ""))
    return summary


def _remember_calibration(cache: "CalibrationCache", results_dir: Path, progress: Progress) -> None:
    """Store (or drop) the run's calibrated target in the cache; a cache problem never fails the run."""
    import json

    from mlrepro.harness.layout import RECORD_JSON
    from mlrepro.results.calibration_cache import remember

    try:
        record = json.loads((results_dir / RECORD_JSON).read_text(encoding="utf-8"))
        if isinstance(record, dict):
            outcome = remember(cache, record)
            if outcome == "dropped":
                progress(f"{record.get('run_id')}: cached calibration dropped (it gave an INVALID run)")
    except (OSError, ValueError, MlreproError) as exc:
        progress(f"calibration cache not updated: {exc}")


def local_results_dir(work_dir: Path, run_id: str) -> Path:
    """Where a run's results live on this machine (native: written there; docker: fetched there)."""
    return work_dir / run_id / "results" / run_id


def log_file(work_dir: Path, run_id: str) -> Path:
    return work_dir / run_id / "harness.log"


def _fetch(runner, handle: RunHandle, work_dir: Path, progress: Progress) -> Path | None:
    """Local copy of the run's results (what collect reads); None when the run left none."""
    dest = local_results_dir(work_dir, handle.run_id)
    if handle.target == "native":
        return dest if dest.is_dir() else None
    try:
        if dest.exists():
            shutil.rmtree(dest)
        runner.fetch_results(handle, dest)
    except MlreproError as exc:
        progress(f"{handle.run_id}: results not fetched: {exc}")
        return None
    finally:
        remove = getattr(runner, "remove", None)
        if remove is not None:
            remove(handle)
    return dest


def summarize(spec: RunSpec, outcome: RunOutcome, results_dir: Path | None, duration_s: float) -> RunSummary:
    """The run's headline figures from its verified results (record.json + logs)."""
    from mlrepro.results.rundir import load_run

    base = RunSummary(spec.run_id, spec.scenario, spec.mode, outcome.status.value, outcome.exit_code,
                      duration_s=duration_s, results_dir=results_dir, message=outcome.message)
    if results_dir is None:
        return base
    try:
        run = load_run(results_dir)
    except MlreproError as exc:
        return replace(base, status=RunStatus.failed.value if outcome.status == RunStatus.succeeded
                       else base.status, message=f"results unusable: {exc}")
    perf = run.performance
    accuracy = run.accuracy_txt.value if run.accuracy_txt else None
    message = base.message if outcome.status != RunStatus.succeeded else ""
    if perf is not None and perf.validity == "INVALID" and perf.invalid_reason:
        message = f"INVALID: {' '.join(perf.invalid_reason.split())}"
    cal = run.calibration or {}
    decision = (cal.get("targets") or [None])[0]
    notes: list[str] = []
    fw = run.framework or {}
    if fw and not fw.get("matches"):
        notes.append(f"{fw.get('package')} {fw.get('installed') or 'not installed'} ran, the profile pins "
                     f"{fw.get('pinned')}")
    if cal.get("retry"):
        notes.append("recalibrated after an INVALID timed run (" + "; ".join(cal["retry"].get("reason") or []) + ")")
    brief = None
    if isinstance(decision, dict):
        brief = {k: decision.get(k) for k in ("setting", "value", "source", "unit", "measured", "cost_s", "note")
                 if decision.get(k) is not None}
    return replace(base, result=perf.result if perf else None, result_unit=perf.result_unit if perf else "",
                   validity=perf.validity if perf else None, accuracy=accuracy, message=message,
                   loadgen_target=brief, notes=tuple(notes))
