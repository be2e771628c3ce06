"""The runner contract shared by the native, Docker and Kubernetes targets.

A run goes through the same steps on every target (:mod:`mlrepro.flow` drives them, in one place)::

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
    runner.discover(run_id)                         a record of a run the target has but this machine did not
                                                    launch (kubernetes: a Job installed with Helm)
    runner.close()                                  release connections and watch threads

A run whose LLM is on a model server (``job.server``) has three more steps around its launch::

    job, server = runner.start_server(job, progress)   the server (Deployment + Service, a container on the
                                                    run's network, a process on loopback); the job returned is
                                                    the one to launch (native: its spec names the port chosen)
    runner.wait_server(server, progress)            until it answers its health path, or ServerNotReady with
                                                    the diagnosis (unschedulable, image pull, out of memory,
                                                    crashing with its last log lines, not ready in time)
    runner.stop_server(server, keep=False)          its log saved (``server.log`` of the run), then removed

A runner never knows about profiles beyond ``prepare`` (which builds the profile's image): it gets a
JobSpec (the pod, the job policy and the run spec) and the run's paths on this machine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from mlrepro.errors import RuntimeFailure
from mlrepro.harness import exit_codes
from mlrepro.runners.locations import ResultsLocation
from mlrepro.state.status import RunStatus

if TYPE_CHECKING:  # pragma: no cover
    from mlrepro.profiles.loader import ResolvedProfile
    from mlrepro.render.jobspec import JobSpec
    from mlrepro.results.rundir import HarnessRun
    from mlrepro.state.store import RunRecord

Progress = Callable[[str], None]


def no_progress(_message: str) -> None:
    """A Progress that prints nothing."""


#: kubernetes: how long a pod may stay unschedulable or unable to pull its image before the run fails (seconds)
DEFAULT_PENDING_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class KubeTarget:
    """Which cluster and namespace, resolved as kubectl does (see mlrepro.runners.kubernetes.config)."""

    context: str | None = None
    """kubeconfig context (default: the current one; in a pod without a kubeconfig: the in-cluster config)."""
    namespace: str | None = None
    """default: the context's namespace, else the pod's own namespace in-cluster, else "default"."""
    kubeconfig: Path | None = None
    """default: $KUBECONFIG (several files merged), else ~/.kube/config."""


@dataclass(frozen=True)
class RunnerConfig:
    """What a runner needs besides the job: where this machine keeps runs, and target options."""

    state_dir: Path
    image: str | None = None
    """Run this image instead of preparing one (docker, kubernetes)."""
    results_dir: Path | None = None
    """docker: bind-mount ``<results_dir>/<run id>`` at /results instead of a named volume per run."""
    registry: str | None = None
    """kubernetes: when no push of the image is recorded, build and push it to this registry."""
    kube: KubeTarget = field(default_factory=KubeTarget)
    pending_timeout_s: float = DEFAULT_PENDING_TIMEOUT_S
    """kubernetes: give up on a pod that stays unschedulable or cannot pull its image this long."""


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
class ServerHandle:
    """A model server a runner started for a run (see the module docstring)."""

    run_id: str
    target: str
    name: str
    """Its Deployment / container name (the native server: the run id)."""
    ref: str
    """What the target calls it: a pid (native), a container id (docker), ``namespace/deployment`` (kubernetes)."""
    url: str
    """The API root as the run's client reaches it (``http://HOST:PORT/v1``)."""
    log_path: Path
    """Where its output is kept on this machine (``server.log`` beside the run's harness.log)."""
    ready_timeout_s: float = 900.0
    network: str = ""
    """docker: the run's user network."""


class ServerNotReady(RuntimeFailure):
    """The model server did not get ready: the diagnosis in one line (exit 1, the run failed)."""


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

    def fetch_results(self, handle: RunHandle, dest: Path) -> HarnessRun:
        """Copy the run's results to ``dest`` (replaced) and return them verified against the harness's checksum
        manifest (:func:`verify_results`: each file hashed once). Raises ChecksumError, UnsafeArchiveError or a
        RuntimeFailure naming what is missing."""
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

    def discover(self, run_id: str) -> RunRecord:
        """A record for a run this machine did not launch but the target has (a Job installed with Helm),
        found by its full id; the record can then be :meth:`attach`-ed. Raises BadInputError saying where it
        looked when the target has no such run, or cannot have runs this machine did not launch (native,
        docker)."""
        ...

    def check(self, job: JobSpec) -> None:
        """Reject, before anything is launched, a job this target cannot run (BadInputError)."""
        ...

    def start_server(self, job: JobSpec, progress: Progress = no_progress) -> tuple[JobSpec, ServerHandle]:
        """Start the model server of ``job`` (``job.server``); return the job to launch and the server."""
        ...

    def wait_server(self, server: ServerHandle, progress: Progress = no_progress) -> None:
        """Block until the server answers its health path; ServerNotReady with the diagnosis otherwise
        (KeyboardInterrupt propagates: the caller stops it)."""
        ...

    def stop_server(self, server: ServerHandle, keep: bool = False) -> None:
        """Save the server's log at ``server.log_path``, then remove it unless ``keep``. Idempotent."""
        ...

    def close(self) -> None:
        """Release what the runner holds (connections, watch threads). Runs stay as they are."""
        ...


def verify_results(run_dir: Path, run_id: str, *, copy: bool = True) -> HarnessRun:
    """The fetched results folder, verified against the harness's ``checksums.sha256`` (written last by the
    harness, so a run cut short has none) and read: each file is hashed once, here, and what ``summarize`` and
    ``collect`` need is read from the verified bytes. Raises ChecksumError naming the first files that differ or
    are missing. A refused ``copy`` is removed (never the harness's own folder: ``copy=False``), so nothing
    unverified stays where collect looks."""
    from mlrepro.results.errors import ChecksumError
    from mlrepro.results.rundir import load_run

    try:
        return load_run(run_dir, where=f"run {run_id}")
    except ChecksumError as exc:
        if copy:
            import shutil

            shutil.rmtree(run_dir, ignore_errors=True)
        raise ChecksumError(f"{exc}: results refused", exc.run_dir, exc.paths) from None
