"""Signals around a launch: a run is launched whole (:func:`signals_held`), and an interrupted launch cleans up
without being interrupted again (:func:`signals_deferred`). Main thread only: elsewhere signal handlers cannot be
changed, and signals are not delivered there anyway."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def stop_reason(exc: BaseException) -> str:
    """The message a run cancelled by ``exc`` is recorded with."""
    return "interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else f"stopped: {exc}"


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Ctrl-C and SIGTERM are ignored while an interrupted launch stops its runs and records them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.signal(sig, signal.SIG_IGN) for sig in _SIGNALS}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


@contextmanager
def signals_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block ends, then act as usual: a run is launched whole, so an interrupt
    never leaves a container or Job created but not yet known to the launch (it is then cancelled like any
    other)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[tuple[int, object]] = []
    saved = {sig: signal.signal(sig, lambda signum, frame: held.append((signum, frame))) for sig in _SIGNALS}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        if held:
            signum, frame = held[0]
            handler = saved[signum]
            if callable(handler):
                handler(signum, frame)      # raises KeyboardInterrupt (SIGINT) or mlrepro's Interrupted (SIGTERM)
            elif handler == signal.SIG_DFL:
                raise KeyboardInterrupt
