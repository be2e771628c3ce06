"""The accuracy files of a result folder: truncation of ``mlperf_log_accuracy.json`` and ``accuracy.txt``.

Truncation follows MLCommons' ``tools/submission/truncate_accuracy_log.py``: a log larger than
``MAX_ACCURACY_LOG_SIZE`` (10 KiB, what the checker allows) keeps its first and last 4 KiB joined by
``"\\n\\n...\\n\\n"``; the full log is kept outside the tree and ``accuracy.txt`` carries ``hash=<sha256 of the
full log>``.

Public API::

    truncate_accuracy_log(data) -> bytes
    parse_accuracy_txt(text) -> AccuracyTxt
    accuracy_txt_with_hash(text, full_log_sha256) -> str
    accuracy_pattern(benchmark) -> re.Pattern
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_ACCURACY_LOG_SIZE = 10 * 1024
VIEWABLE_SIZE = 4096
TRUNCATION_MARKER = b"\n\n...\n\n"

HASH_RE = re.compile(r"^hash=([0-9a-fA-F]{64})$")
#: for benchmarks the round does not know: any "name=value" / "name: value" line
GENERIC_PATTERN = re.compile(r"^[A-Za-z][\w\- ]*[=:]\s*([\d\.]+).*")


def truncate_accuracy_log(data: bytes) -> bytes:
    """``data`` unchanged when at most 10 KiB, else its first and last 4 KiB (deterministic)."""
    if len(data) <= MAX_ACCURACY_LOG_SIZE:
        return data
    return data[:VIEWABLE_SIZE] + TRUNCATION_MARKER + data[-VIEWABLE_SIZE:]


def accuracy_pattern(benchmark: str) -> re.Pattern[str]:
    """The accuracy.txt pattern of ``benchmark``'s first metric in the newest round (mlrepro.results.rounds;
    folder names map as the checker maps them), else GENERIC_PATTERN."""
    from mlrepro.results.rounds import load_round

    rnd = load_round()
    b = rnd.benchmark(benchmark)
    targets = b.accuracy_targets("Offline") if b is not None else ()
    return rnd.accuracy_patterns[targets[0].metric] if targets else GENERIC_PATTERN


@dataclass(frozen=True)
class AccuracyTxt:
    metric_line: str | None     # first line matching a metric pattern, e.g. "accuracy=97.500%"
    value: float | None
    hash: str | None            # the hash= value (lower case)
    lines: tuple[str, ...]


def parse_accuracy_txt(text: str, benchmark: str = "resnet") -> AccuracyTxt:
    pattern = accuracy_pattern(benchmark)
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
