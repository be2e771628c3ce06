"""The statuses of a run, in one place: the runners report them, the store keeps them, the CLI filters by them.

    pending -> running -> succeeded | invalid | failed | timeout      (and cancelled from either of the first two)
"""

from __future__ import annotations

from enum import Enum


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


#: every status name, in lifecycle order
STATUSES: tuple[str, ...] = tuple(s.value for s in RunStatus)
#: statuses a run never leaves
TERMINAL_STATUSES: frozenset[str] = frozenset(s.value for s in RunStatus if s.finished)
