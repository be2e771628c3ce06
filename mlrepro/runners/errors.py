"""Typed errors shared by the runners. ``str(err)`` is one line."""

from __future__ import annotations

from mlrepro.errors import RuntimeFailure


class ArchiveError(RuntimeFailure):
    """A tar stream could not be read or extracted."""


class UnsafeArchiveError(ArchiveError):
    """A tar member would escape the destination or is not a plain file/directory/safe link."""

    def __init__(self, member: str, reason: str) -> None:
        super().__init__(f"unsafe archive member {member!r}: {reason}")
        self.member = member
        self.reason = reason

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (type(self), (self.member, self.reason))
