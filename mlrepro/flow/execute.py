"""The per-run flow, shared by every target and every command that runs something (``run``, ``launch``,
``calibrate``, ``compliance``, ``reproduce``): one place for what happens to a run and in which order::

    record (pending) -> [start the model server -> wait for it] -> launch -> record (running) -> wait
                     -> fetch (verified) -> clean up -> [stop the server, its log saved] -> summarize
                     -> remember the calibration -> record (its status)

The runner (:mod:`mlrepro.runners`) is the only part that differs between targets. :func:`execute` runs a list
of job specs ``parallel`` at a time; a failed run does not stop the others; Ctrl-C (or SIGTERM) cancels every
unfinished run, leaves nothing running, then propagates.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from mlrepro.errors import MlreproError
from mlrepro.flow.options import RunSummary, short_id
from mlrepro.flow.signals import signals_deferred, signals_held, stop_reason
from mlrepro.flow.summary import remember_calibration, summarize
from mlrepro.runners.locations import format_location
from mlrepro.state.errors import StatusConflictError
from mlrepro.state.paths import RunPaths
from mlrepro.state.status import TERMINAL_STATUSES, RunStatus
from mlrepro.state.store import RunRecord, utcnow

if TYPE_CHECKING:  # pragma: no cover
    from mlrepro.render.jobspec import JobSpec
    from mlrepro.results.rundir import HarnessRun
    from mlrepro.runners.base import Progress, RunHandle, Runner, ServerHandle
    from mlrepro.state.calibration_cache import CalibrationCache
    from mlrepro.state.store import RunStore


def new_group_id(now: float | None = None) -> str:
    """The id shared by the runs of one launch or sweep: ``20261128-093012-3fa9``."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now if now is not None else time.time()))
    return f"{stamp}-{secrets.token_hex(2)}"


def execute(runner: Runner, jobs: Sequence[JobSpec], *, store: RunStore, state_dir: Path, target: str,
            progress: Progress, parallel: int = 1, stream: bool = True, group: str = "",
            cache: CalibrationCache | None = None, keep_results: bool = False,
            keep_server: bool = False) -> tuple[RunSummary, ...]:
    """Record every job pending, then run them ``parallel`` at a time through :class:`RunFlow`; returns one
    summary per job, in order (failures with their diagnosis). ``runner.check`` must have accepted every job.
    A launch of more runs than run at once queues them on the target first (``runner.submit``).
    KeyboardInterrupt (and an error that stops the launch) cancels every unfinished run, then propagates."""
    flow = RunFlow(runner, store, state_dir, target, progress, stream=stream, group=group, cache=cache,
                   keep_results=keep_results, prefix_lines=parallel > 1, keep_server=keep_server)
    flow.record_all(jobs)
    try:
        if len(jobs) > parallel:   # more runs than run at once: queue them on the target where it can
            try:
                runner.submit(jobs)
            except MlreproError as exc:
                flow.abandon(jobs, f"not submitted: {exc}")
                raise
        if parallel == 1:
            return tuple(flow.run_one(job) for job in jobs)
        pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="mlrepro-run")
        try:
            summaries = tuple(pool.map(flow.run_one, jobs))
        except BaseException as exc:
            with signals_deferred():   # a second Ctrl-C must not cut the clean-up short
                flow.interrupt(stop_reason(exc))
                pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return summaries
    except BaseException as exc:
        with signals_deferred():
            if not flow.stopping.is_set():
                flow.stop_reason = stop_reason(exc)
                flow.stopping.set()
            flow.finish(jobs)
        raise


class RunFlow:
    """The per-run flow (see the module's docstring) of one launch: the runs it has started, whether it is
    stopping, and where it records them."""

    def __init__(self, runner: Runner, store: RunStore, state_dir: Path, target: str, progress: Progress,
                 stream: bool, group: str = "", cache: CalibrationCache | None = None,
                 keep_results: bool = False, prefix_lines: bool = False, keep_server: bool = False) -> None:
        self.runner, self.store, self.state_dir, self.target = runner, store, state_dir, target
        self.progress, self.stream, self.group, self.cache = progress, stream, group, cache
        self.active: dict[str, RunHandle] = {}
        self.servers: dict[str, ServerHandle] = {}   # model servers of runs not yet launched (being waited for)
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self.stop_reason = "interrupted (Ctrl-C)"
        self.keep_results = keep_results
        self.prefix_lines = prefix_lines      # several runs at once: each output line says whose it is
        self.keep_server = keep_server        # leave each run's model server running after it

    def record_all(self, jobs: Sequence[JobSpec]) -> None:
        """Every run of the launch, pending, before any starts (`mlrepro runs` shows the whole sweep)."""
        for job in jobs:
            spec = job.run
            self.store.add(RunRecord(run_id=spec.run_id, profile=job.profile_name, profile_hash=job.profile_hash,
                                     scenario=spec.scenario, mode=spec.mode, target=self.target, image=job.image,
                                     status=RunStatus.pending.value, group_id=self.group))

    def abandon(self, jobs: Sequence[JobSpec], message: str) -> None:
        """Mark the runs that never started as cancelled (the launch stopped before them)."""
        for job in jobs:
            record = self.store.find(job.run_id)
            if record is not None and record.status == RunStatus.pending.value:
                self.store.update(job.run_id, status=RunStatus.cancelled.value, ended_at=utcnow(), message=message)

    def run_one(self, job: JobSpec) -> RunSummary:
        """launch → record (running) → wait → fetch → clean up → summarize → record (the run was recorded pending
        by :meth:`record_all`). Once the launch is stopping (:meth:`interrupt`), whatever step a run is at, it
        ends cancelled and leaves nothing running; a KeyboardInterrupt in this thread (a sequential launch) does
        the same, then propagates."""
        spec, runner, store = job.run, self.runner, self.store
        started = time.monotonic()
        handle: RunHandle | None = None
        server: ServerHandle | None = None
        say = lambda message: self.progress(f"{spec.run_id}: {message}")  # noqa: E731
        try:
            if self.stopping.is_set():
                return self._cancelled(job, started)
            if job.server is not None:
                try:
                    with signals_held():
                        job, server = runner.start_server(job, say)
                        with self._lock:
                            self.servers[spec.run_id] = server
                    runner.wait_server(server, say)
                except MlreproError as exc:
                    if self.stopping.is_set():          # stopped by an interrupt while it was starting
                        return self._cancelled(job, started)
                    return self._failed(job, started, f"model server: {exc}")
                if self.stopping.is_set():
                    return self._cancelled(job, started)
            try:
                with signals_held():
                    handle = runner.launch(job)
                    with self._lock:
                        self.active[spec.run_id] = handle
            except MlreproError as exc:
                return self._failed(job, started, str(exc))
            if self.stopping.is_set():          # interrupted while it was being launched
                self._cancel(handle)
                return self._cancelled(job, started)
            store.update(spec.run_id, status=RunStatus.running.value, started_at=utcnow(), job_id=handle.ref,
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
            run, fetch_error = self._fetch(handle) if outcome.exit_code is not None else (None, "")
            self._cleanup(handle, results_fetched=run is not None, say=say)
            if self.stopping.is_set():
                return self._cancelled(job, started)
            summary = summarize(job, outcome, run, time.monotonic() - started, fetch_error)
            if self.cache is not None and run is not None:
                remember_calibration(self.cache, run, self.progress)
            try:
                store.update(spec.run_id, expect_status=(RunStatus.running.value,), status=summary.status,
                             exit_code=summary.exit_code, ended_at=utcnow(), result=summary.result,
                             result_unit=summary.result_unit, validity=summary.validity, accuracy=summary.accuracy,
                             message=summary.message, loadgen_target=summary.loadgen_target,
                             tokens_per_second=summary.tokens_per_second, ttft_p99_ns=summary.ttft_p99_ns,
                             tpot_p99_ns=summary.tpot_p99_ns)
            except StatusConflictError:  # cancelled meanwhile
                return replace(summary, status=RunStatus.cancelled.value)
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
                self.servers.pop(spec.run_id, None)
            if server is not None:
                self._stop_server(server, say)

    def _stop_server(self, server: ServerHandle, say: Progress) -> None:
        """Save the model server's log and remove it (kept with --keep-server); said, never raised."""
        try:
            with signals_deferred():
                self.runner.stop_server(server, keep=self.keep_server)
        except MlreproError as exc:
            say(f"model server {server.name} not stopped: {exc}")
            return
        log = f"; its log: {server.log_path}" if server.log_path.is_file() else ""
        if self.keep_server:
            say(f"model server {server.name} kept running at {server.url} (--keep-server; {server.ref}){log}")
        else:
            say(f"model server {server.name} stopped{log}")

    def _failed(self, job: JobSpec, started: float, message: str) -> RunSummary:
        spec = job.run
        try:
            self.store.update(spec.run_id, expect_status=(RunStatus.pending.value, RunStatus.running.value),
                              status=RunStatus.failed.value, ended_at=utcnow(), message=message)
        except StatusConflictError:   # already cancelled by an interrupt
            return self._cancelled(job, started)
        self.progress(f"{spec.run_id}: failed — {message}")
        return RunSummary(spec.run_id, spec.scenario, spec.mode, RunStatus.failed.value, None, message=message,
                          duration_s=time.monotonic() - started, profile=job.profile_name)

    def _cancelled(self, job: JobSpec, started: float) -> RunSummary:
        """Record the run cancelled (unless it already ended) and say so."""
        spec = job.run
        try:
            self.store.update(spec.run_id, expect_status=(RunStatus.pending.value, RunStatus.running.value),
                              status=RunStatus.cancelled.value, ended_at=utcnow(), message=self.stop_reason)
        except StatusConflictError:
            pass
        return RunSummary(spec.run_id, spec.scenario, spec.mode, RunStatus.cancelled.value, None,
                          message=self.stop_reason, duration_s=time.monotonic() - started, profile=job.profile_name)

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

    def interrupt(self, reason: str = "interrupted (Ctrl-C)") -> None:
        """Stop the launch (called from the main thread): no run starts any more, every running one is stopped
        (all at once), and once the worker threads are done (the caller shuts the pool down) :meth:`finish`
        marks what is left cancelled."""
        self.stop_reason = reason
        self.stopping.set()
        with self._lock:
            handles = list(self.active.values())
            servers = [s for run_id, s in self.servers.items() if run_id not in self.active]
        for server in servers:               # a server still being waited for: stopping it ends the wait
            try:
                self.runner.stop_server(server)
            except Exception as exc:  # noqa: BLE001 - stopping must reach every run
                self.progress(f"{server.run_id}: could not stop its model server: {exc}")
        if handles:
            self.progress(f"stopping {len(handles)} run(s)...")
            with ThreadPoolExecutor(max_workers=len(handles), thread_name_prefix="mlrepro-cancel") as pool:
                list(pool.map(self._cancel, handles))

    def finish(self, jobs: Sequence[JobSpec]) -> None:
        """After an interrupt: every run of the launch that did not end is cancelled (none is left running)."""
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

    def _fetch(self, handle: RunHandle) -> tuple[HarnessRun | None, str]:
        """The run's verified results on this machine (what summarize and collect read), or None and why not."""
        dest = RunPaths.of(self.state_dir, handle.run_id).results
        try:
            return self.runner.fetch_results(handle, dest), ""
        except MlreproError as exc:
            return None, str(exc)
