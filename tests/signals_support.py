"""Tests that send SIGINT set the disposition they need themselves (not the one their parent happened to leave):
children through :func:`with_sigint`, the test process itself through the ``sigint_delivered`` fixture
(tests/conftest.py)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

WRAPPER = Path(__file__).parent / "sigint_default.py"


def with_sigint(argv: Sequence[str]) -> list[str]:
    """``argv`` started with SIGINT at its default disposition (so a Python child turns it into
    KeyboardInterrupt, even when this process ignores SIGINT)."""
    return [sys.executable, str(WRAPPER), *argv]
