"""The runner contract shared by the native, Docker and Kubernetes targets.

A runner never knows about profiles: it receives a RunSpec (what the harness reads) and, for container
targets, the PodSpec derived from the profile.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Iterator, Protocol

from mlrepro.harness import exit_codes
from mlrepro.harness.spec import RunSpec


class RunStatus(str, Enum):
    pending = "pending"
    running = "running"
    succeeded = "succeeded"      # harness exit 0: VALID
    invalid = "invalid"          # harness exit EXIT_INVALID
    failed = "failed"            # bad spec or runtime failure
    cancelled = "cancelled"
    timeout = "timeout"          # the profile's deadline was exceeded

    @property
    def finished(self) -> bool:
        return self not in (RunStatus.pending, RunStatus.running)


def status_from_exit_code(code: int) -> RunStatus:
    if code == exit_codes.EXIT_VALID:
        return RunStatus.succeeded
    if code == exit_codes.EXIT_INVALID:
        return RunStatus.invalid
    if code == exit_codes.EXIT_INTERRUPTED:
        return RunStatus.cancelled
    return RunStatus.failed


@dataclass
class RunHandle:
    run_id: str
    target: str
    ref: str                       # pid, container id, Job name
    results_location: str          # directory, volume name or PVC name
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunOutcome:
    status: RunStatus
    exit_code: int | None
    message: str = ""


class Runner(Protocol):
    target: str

    def launch(self, spec: RunSpec) -> RunHandle: ...

    def wait(self, handle: RunHandle, timeout_s: float | None = None) -> RunOutcome: ...

    def logs(self, handle: RunHandle, follow: bool = False) -> Iterator[str]: ...

    def fetch_results(self, handle: RunHandle, dest: Path) -> Path: ...

    def cancel(self, handle: RunHandle) -> None: ...
