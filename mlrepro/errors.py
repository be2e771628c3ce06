"""Typed errors shared by every part of mlrepro.

Library code raises these; only the CLI turns them into exit codes and one-line messages.
Exit codes (documented in the README):
  0  success
  1  runtime failure (engine, registry, cluster, I/O)
  2  bad input (profile, flags, spec)
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_BAD_INPUT = 2


class MlreproError(Exception):
    """Base of every error mlrepro reports to a user. ``str(err)`` is one line."""

    exit_code: int = EXIT_RUNTIME


class BadInputError(MlreproError):
    """The user gave something invalid (profile, flag, file). Exit code 2."""

    exit_code = EXIT_BAD_INPUT


class RuntimeFailure(MlreproError):
    """Something outside the user's input failed (engine, registry, I/O). Exit code 1."""

    exit_code = EXIT_RUNTIME
