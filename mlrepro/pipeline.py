"""The main job: prepare the image → launch every (profile, scenario, mode) → wait → fetch → collect.

The CLI's ``run`` and ``launch`` call :func:`run_pipeline`; tests call it directly. Every target goes through
the same per-run flow, :func:`_run_one` (record → launch → wait → fetch → clean up → summarize → record);
the runner (:func:`mlrepro.runners.get_runner`) is the only part that differs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from mlrepro.errors import BadInputError, MlreproError
from mlrepro.harness.spec import RUN_MODES, SCENARIOS, CalibrationRequest
from mlrepro.profiles.loader import ResolvedProfile
from mlrepro.results.errors import ConflictError
from mlrepro.runners import DEFAULT_PENDING_TIMEOUT_S, KubeTarget, RunnerConfig, canonical_target, get_runner
from mlrepro.runners.base import Progress, RunHandle, Runner, RunOutcome, RunStatus
from mlrepro.runners.locations import format_location
from mlrepro.state.paths import RunPaths

if TYPE_CHECKING:  # pragma: no cover
    from mlrepro.harness.spec import RunSpec
    from mlrepro.render.jobspec import JobSpec
    from mlrepro.state.calibration_cache import CalibrationCache
    from mlrepro.state.store import RunStore
    from mlrepro.results.submission import CollectReport


@dataclass(frozen=True)
class PipelineOptions:
    target: str = "auto"                  # auto | native | docker | kubernetes (k8s)
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
    image: str | None = None              # docker, kubernetes: use this image instead of preparing one
    stream_logs: bool = True              # print the harness's output while it runs (prefixed by run when parallel)
    keep_results: bool = False            # keep a run's results volume / claim after its results are fetched
    kube: KubeTarget = field(default_factory=KubeTarget)
    registry: str | None = None           # kubernetes: build + push here when no push is recorded
    pending_timeout_s: float = DEFAULT_PENDING_TIMEOUT_S
    recalibrate: bool = False             # ignore cached calibrations of this profile (they are replaced)
    find_peak: bool = False               # Server: search the highest VALID target QPS more finely
    user_conf: Mapping[tuple[str, str], str] = field(default_factory=dict)
    """(scenario, mode) -> the whole user.conf that run loads instead of the one the profile's ``user_conf`` and
    ``settings`` compose (``mlrepro reproduce``: a recorded user.conf, its targets pinned, nothing recalibrated)."""


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
    profile: str = ""
    loadgen_target: dict | None = None    # the record's target decision: setting, value, source, cost_s ...
    notes: tuple[str, ...] = ()           # framework version differing from the pin, a recalibration ...
    compliance_failed: tuple[str, ...] = ()   # compliance tests whose verification failed in the run


@dataclass(frozen=True)
class PipelineResult:
    target: str
    image: str
    runs: tuple[RunSummary, ...]
    collect_report: CollectReport | None = None
    images: tuple[str, ...] = ()
    """The image of each profile, in the order the profiles were given."""
    group: str = ""
    """The group id of this launch's runs (``mlrepro runs --group``)."""
    collect_expected: bool = False        # a tree was asked for (run --into)
    collect_error: str = ""
    """Why collecting into the tree failed (e.g. a different result is already there); the runs are kept."""

    @property
    def problems(self) -> tuple[str, ...]:
        """Why the job did not produce what was asked for (beyond each run's own status)."""
        report = self.collect_report
        failed = tuple(f"{r.run_id}: compliance {t} failed" for r in self.runs for t in r.compliance_failed)
        if not self.collect_expected or any(r.status != RunStatus.succeeded.value for r in self.runs):
            return failed
        if self.collect_error:
            return failed + (self.collect_error,)
        if report is None:
            return failed + ("no run left results to collect",)
        if not report.results:
            why = "; ".join(f"{r.run_id}: {'; '.join(r.reasons)}" for r in report.rejected) or "no result folder"
            return failed + (f"nothing was placed in the submission tree ({why})",)
        return failed

    @property
    def ok(self) -> bool:
        return bool(self.runs) and all(r.status == RunStatus.succeeded.value for r in self.runs) \
            and not self.problems

    @property
    def failures(self) -> tuple[RunSummary, ...]:
        return tuple(r for r in self.runs if r.status != RunStatus.succeeded.value)


def _check_choices(values: Sequence[str], allowed: tuple[str, ...], flag: str) -> list[str]:
    for v in values:
        if v not in allowed:
            raise BadInputError(f"{flag}: {v!r} is not one of {', '.join(allowed)}")
    if len(set(values)) != len(values):
        raise BadInputError(f"{flag}: duplicates in {', '.join(values)}")
    return list(values)


def short_id(run_id: str) -> str:
    """The part of a run id that tells runs of one launch apart in a narrow line: its time stamp and random
    suffix (``x86-cpu-offline-perf-20261130-032059-f306`` -> ``032059-f306``). Commands take any unique part."""
    parts = run_id.rsplit("-", 2)
    return "-".join(parts[-2:]) if len(parts) == 3 else run_id


def new_group_id(now: float | None = None) -> str:
    """The id shared by the runs of one launch or sweep: ``20261128-093012-3fa9``."""
    import secrets

    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now if now is not None else time.time()))
    return f"{stamp}-{secrets.token_hex(2)}"


def choose_target(requested: str, progress: Progress) -> str:
    """``auto`` → docker when an engine answers, else native; other names checked and made canonical."""
    if requested != "auto":
        return canonical_target(requested)
    from mlrepro.image.engine import connect, docker_host
    from mlrepro.image.errors import EngineUnavailable

    try:
        connect(timeout=10).close()
    except EngineUnavailable:
        progress(f"no Docker engine reachable at {docker_host()}: running natively (--target native)")
        return "native"
    return "docker"


def run_pipeline(profiles: ResolvedProfile | Sequence[ResolvedProfile], options: PipelineOptions,
                 progress: Progress = lambda _m: None, store: RunStore | None = None,
                 state_dir: Path | None = None) -> PipelineResult:
    """Run every (profile, scenario, mode) of ``profiles`` on the options' target, ``options.parallel`` at a
    time; a failed run does not stop the others. Returns one summary per run (failures with their diagnosis).

    Raises BadInputError for bad options, and what the target's ``prepare`` raises (build, push, no pushed
    image) before anything is launched. KeyboardInterrupt cancels every unfinished run, then propagates.
    """
    from mlrepro.profiles.runspec import run_matrix
    from mlrepro.render.jobspec import build_job_spec
    from mlrepro.state.calibration_cache import open_cache
    from mlrepro.state.store import default_state_dir, open_store

    resolved_list = [profiles] if isinstance(profiles, ResolvedProfile) else list(profiles)
    if not resolved_list:
        raise BadInputError("--profile: no profile given")
    scenarios = _check_choices(options.scenarios, SCENARIOS, "--scenario")
    modes = _check_choices(options.modes, RUN_MODES, "--mode")
    if options.parallel < 1:
        raise BadInputError(f"--parallel: must be at least 1, got {options.parallel}")
    target = choose_target(options.target, progress)
    state_dir = state_dir or default_state_dir()
    store = store or open_store(state_dir)
    runner = get_runner(target, RunnerConfig(state_dir=state_dir, image=options.image,
                                             results_dir=options.results_dir, registry=options.registry,
                                             kube=options.kube, pending_timeout_s=options.pending_timeout_s))
    cache = open_cache(state_dir)
    try:
        jobs: list[JobSpec] = []
        images: list[str] = []
        for resolved in resolved_list:
            image = runner.prepare(resolved, progress)
            images.append(image)
            specs = run_matrix(resolved, scenarios or None, modes or None, image=image, target=target)
            if options.division in ("closed", "network"):
                specs = _with_compliance(specs, resolved, progress)
            specs = [replace(s, calibration=CalibrationRequest(cached=cache.entries(s.profile_hash, s.scenario),
                                                               recalibrate=options.recalibrate,
                                                               find_peak=options.find_peak)) for s in specs]
            specs = [_pinned(s, options.user_conf.get((s.scenario, s.mode))) for s in specs]
            jobs += [build_job_spec(resolved, image, spec) for spec in specs]
        for job in jobs:
            runner.check(job)
        group = new_group_id()
        flow = _Flow(runner, store, state_dir, target, progress, stream=options.stream_logs, group=group, cache=cache,
                     keep_results=options.keep_results, prefix_lines=options.parallel > 1)
        flow.record_all(jobs)
        names = ", ".join(f"{r.profile.name} ({r.short_hash})" for r in resolved_list)
        progress(f"{len(jobs)} run(s) of {names} on {target}"
                 + (f" with {images[0]}" if len(set(images)) == 1 and images[0] else ""))
        try:
            if len(jobs) > options.parallel:   # more runs than run at once: queue them on the target where it can
                try:
                    runner.submit(jobs)
                except MlreproError as exc:
                    flow.abandon(jobs, f"not submitted: {exc}")
                    raise
            if options.parallel == 1:
                summaries = [flow.run_one(job) for job in jobs]
            else:
                pool = ThreadPoolExecutor(max_workers=options.parallel, thread_name_prefix="mlrepro-run")
                try:
                    summaries = list(pool.map(flow.run_one, jobs))
                except BaseException as exc:
                    with _signals_deferred():   # a second Ctrl-C must not cut the clean-up short
                        flow.interrupt(jobs, _stop_reason(exc))
                        pool.shutdown(wait=True, cancel_futures=True)
                    raise
                pool.shutdown(wait=True)
        except BaseException as exc:
            with _signals_deferred():
                if not flow.stopping.is_set():
                    flow.stop_reason = _stop_reason(exc)
                    flow.stopping.set()
                flow.finish(jobs)
            raise
    finally:
        runner.close()
    report = None
    collect_error = ""
    wants_tree = options.collect and options.into is not None and any(j.run.mode != "calibrate" for j in jobs)
    collectable = [s.results_dir for s in summaries if s.results_dir is not None and s.mode != "calibrate"]
    if wants_tree and collectable:
        try:
            report = collect_into(collectable, options.into, options.submitter, options.division, options.force,
                                  system_overrides=options.system_overrides)
        except ConflictError as exc:
            # the runs are done and kept in the run store: say what blocks the tree, print the runs anyway
            collect_error = (f"{exc.path or options.into}: a different result is already there; --force replaces "
                             f"it, or collect into another tree (mlrepro collect {' '.join(s.run_id for s in summaries)}"
                             " --into DIR)")
        else:
            progress(f"collected into {report.tree}: {len(report.placed)} placed, {len(report.unchanged)} "
                     f"unchanged, {len(report.rejected)} rejected")
    return PipelineResult(target=target, image=images[0] if len(set(images)) == 1 else "", runs=tuple(summaries),
                          collect_report=report, images=tuple(images), group=group, collect_expected=wants_tree,
                          collect_error=collect_error)


def _stop_reason(exc: BaseException) -> str:
    return "interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else f"stopped: {exc}"


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """Ctrl-C and SIGTERM are ignored while an interrupted launch stops its runs and records them (main thread
    only: elsewhere signal handlers cannot be changed, and signals are not delivered there anyway)."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


@contextmanager
def _signals_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block ends, then act as usual (main thread only): a run is launched
    whole, so an interrupt never leaves a container or Job created but not yet known to the launch (it is then
    cancelled like any other)."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[tuple[int, object]] = []
    saved = {sig: signal.signal(sig, lambda signum, frame: held.append((signum, frame)))
             for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        if held:
            signum, frame = held[0]
            handler = saved[signum]
            if callable(handler):
                handler(signum, frame)      # raises KeyboardInterrupt (SIGINT) or mlrepro's Interrupted (SIGTERM)
            elif handler == signal.SIG_DFL:
                raise KeyboardInterrupt


def _pinned(spec: RunSpec, user_conf: str | None) -> RunSpec:
    """The spec loading exactly ``user_conf`` (its settings and targets), or ``spec`` when None."""
    return spec if user_conf is None else replace(spec, user_conf=user_conf, settings={})


def _with_compliance(specs: Sequence[RunSpec], resolved: ResolvedProfile, progress: Progress) -> list[RunSpec]:
    """Closed and network divisions: runs with a performance run also run the compliance tests the round's rules
    name for the workload's benchmark (TEST01, TEST04), with the timed run's settings."""
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


def collect_into(results: Sequence[Path], into: Path, submitter: str, division: str,
                 force: bool = False, system_overrides: Mapping[str, str] | None = None) -> CollectReport:
    from mlrepro.results.submission import collect

    return collect(list(results), into, submitter=submitter, division=division, force=force,
                   system_overrides=system_overrides)


class _Flow:
    """The per-run flow, shared by every target: one place for what happens to a run and in which order."""

    def __init__(self, runner: Runner, store: RunStore, state_dir: Path, target: str, progress: Progress,
                 stream: bool, group: str = "", cache: CalibrationCache | None = None,
                 keep_results: bool = False, prefix_lines: bool = False) -> None:
        self.runner, self.store, self.state_dir, self.target = runner, store, state_dir, target
        self.progress, self.stream, self.group, self.cache = progress, stream, group, cache
        self.active: dict[str, RunHandle] = {}
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self.stop_reason = "interrupted (Ctrl-C)"
        self.keep_results = keep_results
        self.prefix_lines = prefix_lines      # several runs at once: each output line says whose it is

    def record_all(self, jobs: Sequence[JobSpec]) -> None:
        """Every run of the launch, pending, before any starts (`mlrepro runs` shows the whole sweep)."""
        from mlrepro.state.store import RunRecord

        for job in jobs:
            spec = job.run
            self.store.add(RunRecord(run_id=spec.run_id, profile=job.profile_name, profile_hash=job.profile_hash,
                                     scenario=spec.scenario, mode=spec.mode, target=self.target, image=job.image,
                                     status="pending", group_id=self.group))

    def abandon(self, jobs: Sequence[JobSpec], message: str) -> None:
        """Mark the runs that never started as cancelled (the launch stopped before them)."""
        from mlrepro.state.store import utcnow

        for job in jobs:
            record = self.store.find(job.run_id)
            if record is not None and record.status == "pending":
                self.store.update(job.run_id, status="cancelled", ended_at=utcnow(), message=message)

    def run_one(self, job: JobSpec) -> RunSummary:
        """launch → record (running) → wait → fetch → clean up → summarize → record (the run was recorded pending
        by :meth:`record_all`). Once the launch is stopping (:meth:`interrupt`), whatever step a run is at, it
        ends cancelled and leaves nothing running; a KeyboardInterrupt in this thread (a sequential launch) does
        the same, then propagates."""
        from mlrepro.state.errors import StatusConflictError
        from mlrepro.state.store import utcnow

        spec, runner, store = job.run, self.runner, self.store
        started = time.monotonic()
        handle: RunHandle | None = None
        say = lambda message: self.progress(f"{spec.run_id}: {message}")  # noqa: E731
        try:
            if self.stopping.is_set():
                return self._cancelled(job, started)
            try:
                with _signals_held():
                    handle = runner.launch(job)
                    with self._lock:
                        self.active[spec.run_id] = handle
            except MlreproError as exc:
                return self._failed(job, started, str(exc))
            if self.stopping.is_set():          # interrupted while it was being launched
                self._cancel(handle)
                return self._cancelled(job, started)
            store.update(spec.run_id, status="running", started_at=utcnow(), job_id=handle.ref,
                         results_location=format_location(handle.results))
            say(f"running ({job.profile_name}, {spec.scenario}, {spec.mode})")
            follower = self._follow(handle) if self.stream else None
            try:
                outcome = runner.wait(handle, say)
            except MlreproError as exc:
                self._cancel(handle)
                return self._failed(job, started, str(exc))
            if follower is not None:
                follower.join(timeout=2)
            if self.stopping.is_set():
                return self._cancelled(job, started)
            # a run that never started its harness has no results to fetch
            results_dir, fetch_error = self._fetch(handle) if outcome.exit_code is not None else (None, "")
            self._cleanup(handle, results_fetched=results_dir is not None, say=say)
            if self.stopping.is_set():
                return self._cancelled(job, started)
            summary = summarize(job, outcome, results_dir, time.monotonic() - started, fetch_error)
            self._after_run(job, summary)
            try:
                store.update(spec.run_id, expect_status=("running",), status=summary.status,
                             exit_code=summary.exit_code, ended_at=utcnow(), result=summary.result,
                             result_unit=summary.result_unit, validity=summary.validity, accuracy=summary.accuracy,
                             message=summary.message, loadgen_target=summary.loadgen_target)
            except StatusConflictError:  # cancelled meanwhile
                return replace(summary, status="cancelled")
            say(summary.status + (f" — {summary.message}" if summary.message else ""))
            return summary
        except KeyboardInterrupt:
            self.stopping.set()
            if handle is not None:
                self._cancel(handle)
            self._cancelled(job, started)
            raise
        finally:
            with self._lock:
                self.active.pop(spec.run_id, None)

    def _failed(self, job: JobSpec, started: float, message: str) -> RunSummary:
        from mlrepro.state.errors import StatusConflictError
        from mlrepro.state.store import utcnow

        spec = job.run
        try:
            self.store.update(spec.run_id, expect_status=("pending", "running"), status="failed",
                              ended_at=utcnow(), message=message)
        except StatusConflictError:   # already cancelled by an interrupt
            return self._cancelled(job, started)
        self.progress(f"{spec.run_id}: failed — {message}")
        return RunSummary(spec.run_id, spec.scenario, spec.mode, "failed", None, message=message,
                          duration_s=time.monotonic() - started, profile=job.profile_name)

    def _cancelled(self, job: JobSpec, started: float) -> RunSummary:
        """Record the run cancelled (unless it already ended) and say so."""
        from mlrepro.state.errors import StatusConflictError
        from mlrepro.state.store import utcnow

        spec = job.run
        try:
            self.store.update(spec.run_id, expect_status=("pending", "running"), status="cancelled",
                              ended_at=utcnow(), message=self.stop_reason)
        except StatusConflictError:
            pass
        return RunSummary(spec.run_id, spec.scenario, spec.mode, "cancelled", None, message=self.stop_reason,
                          duration_s=time.monotonic() - started, profile=job.profile_name)

    def _cancel(self, handle: RunHandle) -> None:
        """Stop a run now; a target that cannot is said, never raised (the launch is ending anyway)."""
        try:
            self.runner.cancel(handle)
        except Exception as exc:  # noqa: BLE001 - stopping must reach every run
            self.progress(f"{handle.run_id}: could not stop it: {exc}")

    def _cleanup(self, handle: RunHandle, *, results_fetched: bool, say: Progress) -> None:
        """Remove what the ended run no longer needs; its results storage too once they are verified here
        (unless asked to keep it)."""
        try:
            self.runner.cleanup(handle, release_results=results_fetched and not self.keep_results)
        except MlreproError as exc:      # the run is over either way: say what was left behind
            say(f"not cleaned up: {exc}")

    def interrupt(self, jobs: Sequence[JobSpec], reason: str = "interrupted (Ctrl-C)") -> None:
        """Stop the launch (called from the main thread): no run starts any more, every running one is stopped
        (all at once), and once the worker threads are done (the caller shuts the pool down) :meth:`finish`
        marks what is left cancelled."""
        from concurrent.futures import ThreadPoolExecutor as Pool

        self.stop_reason = reason
        self.stopping.set()
        with self._lock:
            handles = list(self.active.values())
        if handles:
            self.progress(f"stopping {len(handles)} run(s)...")
            with Pool(max_workers=len(handles), thread_name_prefix="mlrepro-cancel") as pool:
                list(pool.map(self._cancel, handles))

    def finish(self, jobs: Sequence[JobSpec]) -> None:
        """After an interrupt: every run of the launch that did not end is cancelled (none is left running)."""
        from mlrepro.state.store import TERMINAL_STATUSES

        for job in jobs:
            record = self.store.find(job.run_id)
            if record is not None and record.status not in TERMINAL_STATUSES:
                self._cancelled(job, time.monotonic())

    def _follow(self, handle: RunHandle) -> threading.Thread:
        """Print the run's output on a daemon thread while this one waits (and enforces the deadline). With
        several runs at once each line starts with the run's short id."""
        head = f"  {short_id(handle.run_id)} | " if self.prefix_lines else "  | "

        def follow() -> None:
            try:
                for line in self.runner.logs(handle, follow=True):
                    self.progress(head + line)
            except Exception:  # noqa: BLE001 - the log stream is a convenience; the run's outcome is what counts
                return

        thread = threading.Thread(target=follow, name=f"logs-{handle.run_id}", daemon=True)
        thread.start()
        return thread

    def _fetch(self, handle: RunHandle) -> tuple[Path | None, str]:
        """The run's verified results on this machine (what collect reads), or None and why not."""
        dest = RunPaths.of(self.state_dir, handle.run_id).results
        try:
            return self.runner.fetch_results(handle, dest), ""
        except MlreproError as exc:
            return None, str(exc)

    def _after_run(self, job: JobSpec, summary: RunSummary) -> None:
        """What uses a finished run's verified results before it is recorded: the calibration cache."""
        if self.cache is not None and summary.results_dir is not None:
            _remember_calibration(self.cache, summary.results_dir, self.progress)

def _remember_calibration(cache: CalibrationCache, results_dir: Path, progress: Progress) -> None:
    """Store (or drop) the run's calibrated target in the cache; a cache problem never fails the run."""
    import json

    from mlrepro.harness.layout import RECORD_JSON
    from mlrepro.state.calibration_cache import remember

    try:
        record = json.loads((results_dir / RECORD_JSON).read_text(encoding="utf-8"))
        if isinstance(record, dict):
            outcome = remember(cache, record)
            if outcome == "dropped":
                progress(f"{record.get('run_id')}: cached calibration dropped (it gave an INVALID run)")
    except (OSError, ValueError, MlreproError) as exc:
        progress(f"calibration cache not updated: {exc}")


def summarize(job: JobSpec, outcome: RunOutcome, results_dir: Path | None, duration_s: float,
              fetch_error: str = "") -> RunSummary:
    """The run's headline figures from its verified results (record.json + logs). A run that ended well but
    whose results could not be fetched (``fetch_error``) is a failed run."""
    from mlrepro.results.rundir import load_run

    spec = job.run
    base = RunSummary(spec.run_id, spec.scenario, spec.mode, outcome.status.value, outcome.exit_code,
                      duration_s=duration_s, results_dir=results_dir, message=outcome.message,
                      profile=job.profile_name)
    if results_dir is None:
        if outcome.status == RunStatus.succeeded:
            return replace(base, status=RunStatus.failed.value, message=f"results not fetched: {fetch_error}")
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
    failed: list[str] = []
    for audit in run.audits:
        checks = audit.get("verifications") or []
        verdict = {True: "PASS", False: "FAIL", None: "not verified in the run"}[audit.get("passed")]
        why = "; ".join(f"{v.get('kind')}: {v.get('reason')}" for v in checks if not v.get("passed"))
        notes.append(f"compliance {audit.get('test')}: {verdict}" + (f" ({why})" if why else ""))
        if audit.get("passed") is False:
            failed.append(str(audit.get("test")))
    brief = None
    if isinstance(decision, dict):
        brief = {k: decision.get(k) for k in ("setting", "value", "source", "unit", "measured", "cost_s", "note")
                 if decision.get(k) is not None}
    return replace(base, result=perf.result if perf else None, result_unit=perf.result_unit if perf else "",
                   validity=perf.validity if perf else None, accuracy=accuracy, message=message,
                   loadgen_target=brief, notes=tuple(notes), compliance_failed=tuple(failed))
