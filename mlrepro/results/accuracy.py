"""The accuracy files of a result folder: truncation of ``mlperf_log_accuracy.json`` and ``accuracy.txt``.

Truncation follows MLCommons' ``tools/submission/truncate_accuracy_log.py``: a log larger than
``MAX_ACCURACY_LOG_SIZE`` (10 KiB, what the checker allows) keeps its first and last 4 KiB joined by
``"\\n\\n...\\n\\n"``; the full log is kept outside the tree and ``accuracy.txt`` carries ``hash=<sha256 of the
full log>``.

Public API::

    truncate_accuracy_log(data) -> bytes
    parse_accuracy_txt(text) -> AccuracyTxt
    accuracy_txt_with_hash(text, full_log_sha256) -> str
    ACC_PATTERNS / accuracy_pattern(benchmark)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_ACCURACY_LOG_SIZE = 10 * 1024
VIEWABLE_SIZE = 4096
TRUNCATION_MARKER = b"\n\n...\n\n"

HASH_RE = re.compile(r"^hash=([0-9a-fA-F]{64})$")
#: the checker's classification pattern (v6 ACC_PATTERN["acc"]) and a generic fallback for other metrics
ACC_PATTERNS: dict[str, str] = {
    "acc": r"^(?:\{\"accuracy|accuracy)[\": ]*=?\s*([\d\.]+).*",
    "generic": r"^[A-Za-z][\w\- ]*[=:]\s*([\d\.]+).*",
}
_CLASSIFICATION = {"resnet", "resnet50", "mobilenet", "efficientnet"}


def truncate_accuracy_log(data: bytes) -> bytes:
    """``data`` unchanged when at most 10 KiB, else its first and last 4 KiB (deterministic)."""
    if len(data) <= MAX_ACCURACY_LOG_SIZE:
        return data
    return data[:VIEWABLE_SIZE] + TRUNCATION_MARKER + data[-VIEWABLE_SIZE:]


def accuracy_pattern(benchmark: str) -> str:
    return ACC_PATTERNS["acc"] if benchmark in _CLASSIFICATION else ACC_PATTERNS["generic"]


@dataclass(frozen=True)
class AccuracyTxt:
    metric_line: str | None     # first line matching a metric pattern, e.g. "accuracy=97.500%"
    value: float | None
    hash: str | None            # the hash= value (lower case)
    lines: tuple[str, ...]


def parse_accuracy_txt(text: str, benchmark: str = "resnet") -> AccuracyTxt:
    pattern = re.compile(accuracy_pattern(benchmark))
    metric_line = None
    value = None
    digest = None
    lines = tuple(line.rstrip("\r") for line in text.splitlines())
    for line in lines:
        m = HASH_RE.match(line.strip())
        if m:
            digest = m.group(1).lower()
            continue
        if metric_line is None:
            m = pattern.match(line)
            if m:
                try:
                    value = float(m.group(1))
                except ValueError:
                    continue
                metric_line = line
    return AccuracyTxt(metric_line=metric_line, value=value, hash=digest, lines=lines)


def accuracy_txt_with_hash(text: str, full_log_sha256: str) -> str:
    """``text`` with exactly one ``hash=`` line, naming ``full_log_sha256`` (appended when missing)."""
    kept = [line for line in text.splitlines() if not HASH_RE.match(line.strip())]
    while kept and not kept[-1].strip():
        kept.pop()
    return "\n".join(kept + [f"hash={full_log_sha256}"]) + "\n"
