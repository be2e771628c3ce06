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
        """The files that failed the check (different content first, then missing ones)."""

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
