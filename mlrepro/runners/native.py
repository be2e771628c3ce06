"""Native target: the harness as a child process of this Python, no container.

Used for development and as the fallback when no engine is reachable. The child is the same
``mlrepro-harness`` program the image runs, with the pod's environment, so results are laid out identically.
A model server (a network SUT) is ``mlrepro-serve`` as another child, on a free loopback port.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mlrepro.errors import BadInputError, RuntimeFailure
from mlrepro.harness.sysinfo.runtime import ENV_TARGET
from mlrepro.runners.base import (
    Progress,
    RunHandle,
    RunnerConfig,
    RunOutcome,
    RunStatus,
    ServerHandle,
    ServerNotReady,
    no_progress,
    status_from_exit_code,
    verify_results,
)
from mlrepro.runners.locations import LocalDir, parse_location
from mlrepro.runners.logfile import follow_lines, last_line
from mlrepro.state.paths import RunPaths

if TYPE_CHECKING:  # pragma: no cover
    from mlrepro.profiles.loader import ResolvedProfile
    from mlrepro.render.jobspec import JobSpec
    from mlrepro.results.rundir import HarnessRun
    from mlrepro.state.store import RunRecord

STOP_GRACE_S = 10
SERVER_POLL_S = 0.5
LOG_TAIL_LINES = 5


def tail_lines(path: Path, n: int = LOG_TAIL_LINES) -> str:
    """The last ``n`` non-empty lines of a log, joined with `` | `` (a diagnosis's evidence)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return " | ".join(lines[-n:])


def free_port() -> int:
    """A free TCP port on loopback (the native model server's)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class NativeRunner:
    target = "native"

    def __init__(self, config: RunnerConfig) -> None:
        self.config = config
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._deadlines: dict[str, float] = {}
        self._servers: dict[str, subprocess.Popen[bytes]] = {}
        self._health: dict[str, str] = {}

    def prepare(self, resolved: ResolvedProfile, progress: Progress = no_progress) -> str:
        return ""

    def _paths(self, run_id: str) -> RunPaths:
        return RunPaths.of(self.config.state_dir, run_id)

    def launch(self, job: JobSpec) -> RunHandle:
        paths = self._paths(job.run_id)
        try:
            paths.results_root.mkdir(parents=True, exist_ok=True)
            paths.spec_file.write_text(job.run.to_json(), encoding="utf-8")
            log = open(paths.log, "wb")
        except OSError as exc:
            raise RuntimeFailure(f"{paths.root}: cannot prepare the run directory ({exc.strerror or exc})") from None
        env = {**os.environ, **job.pod.env_dict, "PYTHONUNBUFFERED": "1", ENV_TARGET: self.target}
        argv = [sys.executable, "-m", "mlrepro.harness", "--spec", str(paths.spec_file),
                "--results", str(paths.results_root)]
        with log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self._procs[job.run_id] = proc
        self._deadlines[job.run_id] = float(job.policy.deadline_seconds)
        return RunHandle(run_id=job.run_id, target=self.target, ref=str(proc.pid),
                         results=LocalDir(paths.results_root), log_path=paths.log)

    def wait(self, handle: RunHandle, progress: Progress = no_progress) -> RunOutcome:
        proc = self._procs.get(handle.run_id)
        if proc is None:
            raise RuntimeFailure(f"run {handle.run_id} was not started by this process: it cannot be waited for")
        limit = self._deadlines.get(handle.run_id)
        try:
            code = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            self.cancel(handle)
            return RunOutcome(RunStatus.timeout, None, f"deadline of {limit:.0f} s exceeded")
        return RunOutcome(status_from_exit_code(code), code, last_line(handle.log_path))

    def logs(self, handle: RunHandle, follow: bool = False) -> Iterator[str]:
        if not handle.log_path.is_file():
            raise RuntimeFailure(f"run {handle.run_id} has no saved log ({handle.log_path})")
        proc = self._procs.get(handle.run_id)
        if proc is not None:
            running = lambda: proc.poll() is None  # noqa: E731
        else:
            running = lambda: _alive(int(handle.ref)) if handle.ref.isdigit() else False  # noqa: E731
        yield from follow_lines(handle.log_path, follow, running)

    def fetch_results(self, handle: RunHandle, dest: Path) -> HarnessRun:
        assert isinstance(handle.results, LocalDir)
        src = handle.results.path / handle.run_id
        if not src.is_dir():
            raise RuntimeFailure(f"run {handle.run_id} wrote no results ({src} is missing)")
        if src.resolve() == dest.resolve():
            return verify_results(dest, handle.run_id, copy=False)
        import shutil

        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(src, dest)
        return verify_results(dest, handle.run_id)

    def cancel(self, handle: RunHandle) -> None:
        proc = self._procs.get(handle.run_id)
        if proc is None or proc.poll() is not None:
            return
        _stop_group(proc)                        # the harness writes its record and exits 130

    def cleanup(self, handle: RunHandle, *, release_results: bool = False) -> None:
        """Forget the process; the results stay (they are the harness's own folder: the only copy)."""
        self._procs.pop(handle.run_id, None)
        self._deadlines.pop(handle.run_id, None)

    def check(self, job: JobSpec) -> None:
        """A model on a cluster's claim cannot be read here."""
        if job.server is not None and job.server.model.kind == "claim":
            raise BadInputError("serve.model_source: claim is a Kubernetes PersistentVolumeClaim; a native run reads "
                                "the model from this machine (serve.model_source: image, or host-path)")

    # ---- the model server: a process on loopback ----------------------------------------------------------
    def start_server(self, job: JobSpec, progress: Progress = no_progress) -> tuple[JobSpec, ServerHandle]:
        """``mlrepro-serve`` (this Python) on a free loopback port, its output in the run's server.log; the job
        returned names that port in its client's spec."""
        from dataclasses import replace

        from mlrepro.render.jobspec import with_run_spec
        from mlrepro.render.serverspec import SERVER_ENV

        server = job.server
        if server is None:
            raise RuntimeFailure(f"run {job.run_id} has no model server to start")
        paths = self._paths(job.run_id)
        port = free_port()
        model = server.model.native_model()
        args = server.args("127.0.0.1", port, model=model)
        argv = [sys.executable, "-m", "mlrepro.harness.serve", *args]
        env = {**os.environ, **{k: v for k, v in server.env_dict.items() if k not in dict(SERVER_ENV)},
               "PYTHONUNBUFFERED": "1"}
        try:
            paths.root.mkdir(parents=True, exist_ok=True)
            log = open(paths.server_log, "wb")
        except OSError as exc:
            raise RuntimeFailure(f"{paths.root}: cannot prepare the run directory ({exc.strerror or exc})") from None
        with log:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True)
        self._servers[job.run_id] = proc
        url = server.url("127.0.0.1", port)
        progress(f"model server {server.engine} starting (pid {proc.pid}, {url})")
        opts = dict(job.run.workload.options)
        opts["server"] = {**opts.get("server", {}), "base_url": url, "port": port, "host": "127.0.0.1",
                          "command": ["mlrepro-serve", *args]}
        spec = replace(job.run, workload=replace(job.run.workload, options=opts))
        handle = ServerHandle(run_id=job.run_id, target=self.target, name=job.run_id, ref=str(proc.pid), url=url,
                              log_path=paths.server_log, ready_timeout_s=float(server.ready_timeout_s))
        self._health[job.run_id] = url[: -len("/v1")] + server.health_path
        return with_run_spec(job, spec), handle

    def wait_server(self, server: ServerHandle, progress: Progress = no_progress) -> None:
        import time

        from mlrepro.harness.serve import check

        proc = self._servers.get(server.run_id)
        if proc is None:
            raise ServerNotReady(f"the model server of run {server.run_id} was not started by this process")
        health = self._health[server.run_id]
        started = time.monotonic()
        while not check(health, timeout_s=2.0):
            code = proc.poll()
            if code is not None:
                raise ServerNotReady(f"the model server exited with status {code} before it was ready: "
                                     f"{tail_lines(server.log_path) or 'no output'}")
            if time.monotonic() - started > server.ready_timeout_s:
                raise ServerNotReady(f"the model server did not answer {health} within {server.ready_timeout_s:.0f} s "
                                     f"(serve.ready_timeout_seconds): {tail_lines(server.log_path) or 'no output'}")
            time.sleep(SERVER_POLL_S)
        progress(f"model server ready in {time.monotonic() - started:.0f} s ({server.url})")

    def stop_server(self, server: ServerHandle, keep: bool = False) -> None:
        """SIGTERM to the server's process group (SIGKILL after STOP_GRACE_S); its log is already on disk."""
        proc = self._servers.pop(server.run_id, None)
        self._health.pop(server.run_id, None)
        if keep or proc is None or proc.poll() is not None:
            return
        _stop_group(proc)

    def submit(self, jobs: Sequence[JobSpec]) -> None:
        return None

    def close(self) -> None:
        return None

    def attach(self, record: RunRecord) -> RunHandle:
        paths = self._paths(record.run_id)
        results = parse_location(record.results_location, self.target) if record.results_location \
            else LocalDir(paths.results_root)
        return RunHandle(run_id=record.run_id, target=self.target, ref=record.job_id, results=results,
                         log_path=paths.log)

    def discover(self, run_id: str) -> RunRecord:
        """Every run of this target is launched, and recorded, by this machine: BadInputError."""
        raise BadInputError(f"run {run_id} is not recorded here (a {self.target} run is only known to the "
                            "state directory that launched it)")


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group a child leads, SIGKILL after STOP_GRACE_S; waits for it."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=STOP_GRACE_S)
    except ProcessLookupError:               # it ended meanwhile
        pass
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def _alive(pid: int) -> bool:
    """True while the process (a harness started by another mlrepro) exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
