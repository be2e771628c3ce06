"""Typed errors of :mod:`mlrepro.results`. ``str(err)`` is one line."""

from __future__ import annotations

from mlrepro.errors import BadInputError, RuntimeFailure


class ResultsError(RuntimeFailure):
    """Base of the results errors that are runtime failures (exit code 1)."""


class ChecksumError(ResultsError):
    """A harness run directory does not match its ``checksums.sha256`` (or has none). Nothing was placed."""

    def __init__(self, message: str, run_dir: str = "", paths: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.run_dir = run_dir
        self.paths = paths

    def __reduce__(self):  # type: ignore[no-untyped-def]  # picklable across worker processes
        return (type(self), (str(self), self.run_dir, self.paths))


class ConflictError(ResultsError):
    """A different result already exists where collect would write; ``force=True`` replaces it."""

    def __init__(self, message: str, path: str = "", paths: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.path = path
        self.paths = paths or ((path,) if path else ())

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (type(self), (str(self), self.path, self.paths))


class CollectInputError(BadInputError):
    """Bad input to collect (no run directories, bad division/submitter/system id). Exit code 2."""


class ArchiveError(ResultsError):
    """A tar stream could not be read or extracted."""


class UnsafeArchiveError(ArchiveError):
    """A tar member would escape the destination or is not a plain file/directory/safe link."""

    def __init__(self, member: str, reason: str) -> None:
        super().__init__(f"unsafe archive member {member!r}: {reason}")
        self.member = member
        self.reason = reason

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (type(self), (self.member, self.reason))


class StateError(ResultsError):
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


class StatusConflictError(ResultsError):
    """A compare-and-set update found the run in another status."""

    def __init__(self, run_id: str, status: str, expected: tuple[str, ...]) -> None:
        super().__init__(f"run {run_id!r} is {status}, expected {' or '.join(expected)}")
        self.run_id = run_id
        self.status = status
        self.expected = expected
