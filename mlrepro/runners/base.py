"""The runner contract shared by the native, Docker and Kubernetes targets.

A run goes through the same steps on every target (:mod:`mlrepro.pipeline` drives them, in one place)::

    image = runner.prepare(resolved, progress)     the image ready: nothing (native), build (docker),
                                                    build + push or the recorded push (kubernetes)
    runner.check(job)                               refuse what the target cannot run, before anything starts
    runner.submit(jobs)                             queue a sweep on the target (kubernetes: suspended Jobs)
    handle = runner.launch(job)                     start the run described by a JobSpec
    outcome = runner.wait(handle, progress)         until it ends (deadline enforced); live progress
    runner.logs(handle, follow)                     the harness's output (live, or the saved log)
    runner.fetch_results(handle, dest)              the verified results on this machine
    runner.cleanup(handle, release_results=...)     remove what the run no longer needs; its results storage
                                                    (volume, claim) too once they are verified on this machine
    runner.cancel(handle)                           stop it now (Ctrl-C)
    runner.attach(record)                           a handle rebuilt from a recorded run, so ``logs`` and
                                                    ``collect`` work after the launching terminal closed
    runner.close()                                  release connections and watch threads

A runner never knows about profiles beyond ``prepare`` (which builds the profile's image): it gets a
JobSpec (the pod, the job policy and the run spec) and the run's paths on this machine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from mlrepro.harness import exit_codes
from mlrepro.runners.locations import ResultsLocation

if TYPE_CHECKING:  # pragma: no cover
    from mlrepro.profiles.loader import ResolvedProfile
    from mlrepro.render.jobspec import JobSpec
    from mlrepro.state.store import RunRecord

Progress = Callable[[str], None]


def no_progress(_message: str) -> None:
    """A Progress that prints nothing."""


class RunStatus(str, Enum):
    pending = "pending"
    running = "running"
    succeeded = "succeeded"      # harness exit 0: VALID
    invalid = "invalid"          # harness exit EXIT_INVALID
    failed = "failed"            # bad spec, runtime failure, or the platform gave up (diagnosis in the message)
    cancelled = "cancelled"
    timeout = "timeout"          # the job's deadline was exceeded

    @property
    def finished(self) -> bool:
        return self not in (RunStatus.pending, RunStatus.running)


def status_from_exit_code(code: int) -> RunStatus:
    """The run's status from the harness's exit code (mlrepro.harness.exit_codes), on every target alike."""
    if code == exit_codes.EXIT_VALID:
        return RunStatus.succeeded
    if code == exit_codes.EXIT_INVALID:
        return RunStatus.invalid
    if code == exit_codes.EXIT_INTERRUPTED:
        return RunStatus.cancelled
    return RunStatus.failed


def exit_code_meaning(code: int) -> str:
    """``"exit 4 (INVALID)"``: the harness's exit code with its name (mlrepro.harness.exit_codes.NAMES)."""
    name = exit_codes.NAMES.get(code)
    if name is None and code > 128:
        return f"exit {code} (killed by signal {code - 128})"
    return f"exit {code} ({name})" if name else f"exit {code}"


@dataclass(frozen=True)
class RunHandle:
    """A launched run, as far as its runner needs to find it again (see :meth:`Runner.attach`)."""

    run_id: str
    target: str
    ref: str
    """What the target calls the run: a pid (native), a container id (docker), ``namespace/job`` (kubernetes)."""
    results: ResultsLocation
    """Where the harness writes its results."""
    log_path: Path
    """Where the harness's output is kept on this machine (written as the run goes, or when it ends)."""
    image: str = ""
    """The image the run uses ("" native)."""


@dataclass(frozen=True)
class RunOutcome:
    status: RunStatus
    exit_code: int | None
    message: str = ""
    """One line: the harness's last line, or the diagnosis of why the run did not end normally."""


class Runner(Protocol):
    """What every target implements. Errors are MlreproError subclasses (BadInputError / RuntimeFailure)."""

    target: str

    def prepare(self, resolved: ResolvedProfile, progress: Progress = no_progress) -> str:
        """Make the profile's image available to this target; return its reference ("" when none is used)."""
        ...

    def submit(self, jobs: Sequence[JobSpec]) -> None:
        """Queue runs on the target ahead of :meth:`launch`, where the target has a queue (kubernetes: every
        Job created suspended, so a whole sweep is on the cluster at once and ``launch`` only resumes one).
        A no-op elsewhere."""
        ...

    def launch(self, job: JobSpec) -> RunHandle:
        """Start the run (submitted or not); return at once (the run goes on)."""
        ...

    def wait(self, handle: RunHandle, progress: Progress = no_progress) -> RunOutcome:
        """Block until the run ends or its deadline passes; keep its output at ``handle.log_path``.
        KeyboardInterrupt propagates (the caller cancels)."""
        ...

    def logs(self, handle: RunHandle, follow: bool = False) -> Iterator[str]:
        """The harness's output lines; with ``follow``, keep streaming while the run goes."""
        ...

    def fetch_results(self, handle: RunHandle, dest: Path) -> Path:
        """Copy the run's results to ``dest`` (replaced) and verify them against the harness's checksum
        manifest. Raises ChecksumError, UnsafeArchiveError or a RuntimeFailure naming what is missing."""
        ...

    def cancel(self, handle: RunHandle) -> None:
        """Stop the run now and remove what runs it (its results stay). Idempotent."""
        ...

    def cleanup(self, handle: RunHandle, *, release_results: bool = False) -> None:
        """Remove what the ended run no longer needs (container, Job). ``release_results``: its results were
        fetched and verified on this machine, so a runner whose storage is private to this machine (a Docker
        volume) removes it; never a directory the user named, never the only copy, never a cluster's claim
        (others collect from it). Idempotent."""
        ...

    def attach(self, record: RunRecord) -> RunHandle:
        """The handle of a recorded run (from the state store), to read its logs or fetch its results."""
        ...

    def check(self, job: JobSpec) -> None:
        """Reject, before anything is launched, a job this target cannot run (BadInputError)."""
        ...

    def close(self) -> None:
        """Release what the runner holds (connections, watch threads). Runs stay as they are."""
        ...


def verify_results(run_dir: Path, run_id: str, *, copy: bool = True) -> Path:
    """Check a fetched results folder against the harness's ``checksums.sha256`` (written last by the
    harness, so a run cut short has none). Returns ``run_dir``; raises ChecksumError naming the first
    files that differ or are missing. A refused ``copy`` is removed (never the harness's own folder:
    ``copy=False``), so nothing unverified stays where collect looks."""
    from mlrepro.results.errors import ChecksumError

    try:
        _verify(run_dir, run_id)
    except ChecksumError:
        if copy:
            import shutil

            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return run_dir


def _verify(run_dir: Path, run_id: str) -> None:
    from mlrepro.harness.checksums import MANIFEST_NAME, ManifestError, verify_manifest
    from mlrepro.results.errors import ChecksumError

    try:
        check = verify_manifest(run_dir)
    except ManifestError:
        raise ChecksumError(f"run {run_id}: its results have no readable {MANIFEST_NAME} (the harness writes it "
                            "last: the run did not finish writing)", str(run_dir)) from None
    if not check.ok:
        bad = check.mismatched + check.missing
        what = "differs from" if check.mismatched else "is missing from"
        raise ChecksumError(f"run {run_id}: {bad[0]} {what} the harness's {MANIFEST_NAME}"
                            + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else "") + ": results refused",
                            str(run_dir), tuple(bad))
