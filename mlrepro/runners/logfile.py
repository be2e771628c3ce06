"""Reading a log file that may still be growing (``mlrepro logs -f`` of a native run or a saved log)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterator


def follow_lines(path: Path, follow: bool, still_running: Callable[[], bool], poll_s: float = 0.1) -> Iterator[str]:
    """Yield the file's lines; with ``follow``, keep waiting for more while ``still_running()``."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        while True:
            line = fh.readline()
            if line:
                yield line.rstrip("\n")
                continue
            if not follow or not still_running():
                yield from fh.read().splitlines()
                return
            time.sleep(poll_s)


def last_line(path: Path) -> str:
    """The last non-empty line of a log file ("" when there is none)."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1] if lines else ""
