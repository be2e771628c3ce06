"""Typed errors of :mod:`mlrepro.state`. ``str(err)`` is one line."""

from __future__ import annotations

from mlrepro.errors import BadInputError, RuntimeFailure


class StateError(RuntimeFailure):
    """The run-state database cannot be opened or used."""


class UnknownRunError(BadInputError):
    """No run with this id in the state store."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"no run {run_id!r} in the state store")
        self.run_id = run_id


class DuplicateRunError(BadInputError):
    """A run with this id is already in the state store."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id!r} is already in the state store")
        self.run_id = run_id


class StatusConflictError(RuntimeFailure):
    """A compare-and-set update found the run in another status."""

    def __init__(self, run_id: str, status: str, expected: tuple[str, ...]) -> None:
        super().__init__(f"run {run_id!r} is {status}, expected {' or '.join(expected)}")
        self.run_id = run_id
        self.status = status
        self.expected = expected
