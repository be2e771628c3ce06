"""Native target: the harness as a child process of this Python, no container.

Used for development and as the fallback when no engine is reachable. The child is the same
``mlrepro-harness`` program the image runs, so results are laid out identically.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

from mlrepro.errors import RuntimeFailure
from mlrepro.harness.spec import RunSpec
from mlrepro.harness.sysinfo.runtime import ENV_TARGET
from mlrepro.runners.base import RunHandle, RunOutcome, RunStatus, status_from_exit_code
from mlrepro.runners.logfile import follow_lines

LOG_NAME = "harness.log"


class NativeRunner:
    target = "native"

    def __init__(self, work_dir: Path, deadline_s: float | None = None, env: dict[str, str] | None = None) -> None:
        self.work_dir = work_dir
        self.deadline_s = deadline_s
        self.env = env or {}
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    def _run_dir(self, run_id: str) -> Path:
        return self.work_dir / run_id

    def launch(self, spec: RunSpec) -> RunHandle:
        run_dir = self._run_dir(spec.run_id)
        results = run_dir / "results"
        try:
            results.mkdir(parents=True, exist_ok=True)
            spec_path = run_dir / "run.json"
            spec_path.write_text(spec.to_json(), encoding="utf-8")
            log = open(run_dir / LOG_NAME, "wb")
        except OSError as exc:
            raise RuntimeFailure(f"{run_dir}: cannot prepare the run directory ({exc.strerror or exc})") from None
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1", "MLREPRO_RUN_ID": spec.run_id,
               ENV_TARGET: self.target}
        argv = [sys.executable, "-m", "mlrepro.harness", "--spec", str(spec_path), "--results", str(results)]
        with log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True)
        self._procs[spec.run_id] = proc
        return RunHandle(run_id=spec.run_id, target=self.target, ref=str(proc.pid), results_location=str(results),
                         extra={"log": str(run_dir / LOG_NAME), "started": str(time.time())})

    def wait(self, handle: RunHandle, timeout_s: float | None = None) -> RunOutcome:
        proc = self._procs[handle.run_id]
        limit = timeout_s if timeout_s is not None else self.deadline_s
        try:
            code = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            self.cancel(handle)
            return RunOutcome(RunStatus.timeout, None, f"deadline of {limit:.0f} s exceeded")
        except KeyboardInterrupt:
            self.cancel(handle)
            raise
        return RunOutcome(status_from_exit_code(code), code, _last_line(Path(handle.extra["log"])))

    def logs(self, handle: RunHandle, follow: bool = False) -> Iterator[str]:
        proc = self._procs.get(handle.run_id)
        yield from follow_lines(Path(handle.extra["log"]), follow, lambda: proc is not None and proc.poll() is None)

    def fetch_results(self, handle: RunHandle, dest: Path) -> Path:
        src = Path(handle.results_location)
        if src.resolve() != dest.resolve():
            shutil.copytree(src, dest, dirs_exist_ok=True)
        return dest

    def cancel(self, handle: RunHandle) -> None:
        proc = self._procs.get(handle.run_id)
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1] if lines else ""
