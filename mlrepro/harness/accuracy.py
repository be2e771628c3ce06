"""After an accuracy run: decode ``mlperf_log_accuracy.json``, score it with the workload, write ``accuracy.txt``.

``mlperf_log_accuracy.json`` is a JSON list of ``{"seq_id": int, "qsl_idx": int, "data": "<hex>"}``. In
AccuracyOnly mode LoadGen issues every sample of the dataset once, so the decoded map must cover the dataset.
``accuracy.txt`` holds ``result.line()`` (e.g. ``accuracy=97.500%``) and ``hash=<sha256 of the full log>``,
as the MLPerf submission checker requires.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mlrepro.harness.checksums import atomic_write_text, sha256_file
from mlrepro.harness.layout import ACCURACY_LOG, ACCURACY_TXT
from mlrepro.harness.workloads.base import AccuracyResult, Workload, WorkloadError


class AccuracyLogError(WorkloadError):
    """mlperf_log_accuracy.json is missing or malformed (a runtime failure)."""


def decode_accuracy_log(text: str, where: str = ACCURACY_LOG) -> dict[int, bytes]:
    """{qsl_idx: payload bytes}. Raises AccuracyLogError naming the problem."""
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AccuracyLogError(f"{where}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(entries, list):
        raise AccuracyLogError(f"{where}: expected a JSON list")
    results: dict[int, bytes] = {}
    for n, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise AccuracyLogError(f"{where}: entry {n} is not an object")
        idx, data = entry.get("qsl_idx"), entry.get("data")
        if not isinstance(idx, int) or isinstance(idx, bool) or not isinstance(data, str):
            raise AccuracyLogError(f"{where}: entry {n} lacks an integer qsl_idx and a hex data string")
        try:
            results[idx] = bytes.fromhex(data)
        except ValueError:
            raise AccuracyLogError(f"{where}: entry {n} (qsl_idx {idx}) has invalid hex data") from None
    return results


def read_accuracy_log(path: str | Path) -> dict[int, bytes]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise AccuracyLogError(f"{p}: cannot read accuracy log ({exc.strerror or exc})") from None
    return decode_accuracy_log(text, where=str(p))


def write_accuracy_txt(path: str | Path, result: AccuracyResult, log_sha256: str) -> None:
    atomic_write_text(Path(path), f"{result.line()}\nhash={log_sha256}\n")


@dataclass(frozen=True)
class AccuracyOutcome:
    result: AccuracyResult
    log_sha256: str
    samples: int          # distinct sample indices in the log
    dataset_size: int


def evaluate_accuracy(workload: Workload, accuracy_dir: str | Path) -> AccuracyOutcome:
    """Score the accuracy log of ``accuracy_dir`` and write ``accuracy.txt`` there.

    Raises AccuracyLogError when the log is unreadable or does not cover the whole dataset."""
    d = Path(accuracy_dir)
    log = d / ACCURACY_LOG
    results = read_accuracy_log(log)
    size = workload.dataset_size
    if len(results) != size or (results and (min(results) < 0 or max(results) >= size)):
        raise AccuracyLogError(f"{log}: covers {len(results)} samples, the dataset has {size}: "
                               "an accuracy run must cover the whole dataset")
    digest = sha256_file(log)
    result = workload.accuracy(results)
    if not isinstance(result, AccuracyResult):
        raise WorkloadError(f"workload accuracy() returned {type(result).__name__}, expected AccuracyResult")
    write_accuracy_txt(d / ACCURACY_TXT, result, digest)
    return AccuracyOutcome(result=result, log_sha256=digest, samples=len(results), dataset_size=size)
