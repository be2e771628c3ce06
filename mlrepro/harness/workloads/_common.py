"""Helpers shared by the workloads: file hashes, option parsing, classification scoring, batching."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from mlrepro.harness.checksums import ManifestError, read_manifest, sha256_file
from mlrepro.harness.spec import WorkloadSpec
from mlrepro.harness.workloads.base import AccuracyResult, WorkloadConfigError, WorkloadError

T = TypeVar("T")

#: options every workload accepts (read by the backends)
COMMON_OPTIONS = ("threads",)


def read_sha256sums(path: Path) -> dict[str, str]:
    """Parse a ``sha256sum`` file into {file name: hex digest}. WorkloadConfigError if missing/malformed."""
    if not path.is_file():
        raise WorkloadConfigError(f"{path}: cannot read checksum file (not found)")
    try:
        return read_manifest(path)
    except ManifestError as exc:
        raise WorkloadConfigError(str(exc)) from None


def verify_file(path: Path, sums: Mapping[str, str], sums_file: Path) -> str:
    """Check ``path`` against its entry in ``sums``; return its digest. WorkloadConfigError naming the file."""
    if not path.is_file():
        raise WorkloadConfigError(f"{path}: file missing (the package data is incomplete; reinstall mlrepro)")
    expected = sums.get(path.name)
    if expected is None:
        raise WorkloadConfigError(f"{path}: no checksum for it in {sums_file}")
    actual = sha256_file(path)
    if actual != expected:
        raise WorkloadConfigError(f"{path}: sha256 {actual} does not match {expected} from {sums_file} "
                                  "(file modified or corrupt)")
    return actual


def check_options(spec: WorkloadSpec, workload: str, allowed: Sequence[str]) -> None:
    """Reject option keys the workload does not know (typos would otherwise be silently ignored)."""
    known = set(allowed) | set(COMMON_OPTIONS)
    for key in sorted(spec.options):
        if key not in known:
            raise WorkloadConfigError(f"workload.options.{key}: unknown option for {workload} "
                                      f"(known: {', '.join(sorted(known))})")


def int_option(spec: WorkloadSpec, key: str, default: int | None, minimum: int | None = None) -> int | None:
    value: Any = spec.options.get(key, default)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or (minimum is not None and value < minimum):
        bound = f" >= {minimum}" if minimum is not None else ""
        raise WorkloadConfigError(f"workload.options.{key}: expected an integer{bound}, got {value!r}")
    return value


def str_option(spec: WorkloadSpec, key: str, default: str | None) -> str | None:
    value: Any = spec.options.get(key, default)
    if value is not None and not isinstance(value, str):
        raise WorkloadConfigError(f"workload.options.{key}: expected a string, got {value!r}")
    return value


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), max(1, size)):
        yield items[start:start + size]


def class_payloads(classes: np.ndarray) -> list[bytes]:
    """One little-endian int64 (8 bytes) per predicted class index."""
    data = np.ascontiguousarray(classes, dtype="<i8").tobytes()
    return [data[i:i + 8] for i in range(0, len(data), 8)]


def classification_accuracy(results: Mapping[int, bytes], labels: np.ndarray) -> AccuracyResult:
    """Top-1 accuracy (percent of the logged samples) from int64 payloads {sample index: bytes}."""
    if not results:
        raise WorkloadError("accuracy log holds no results")
    n = int(labels.shape[0])
    correct = 0
    for idx, payload in results.items():
        if not 0 <= idx < n:
            raise WorkloadError(f"accuracy log: sample index {idx} is outside the dataset (0..{n - 1})")
        if len(payload) != 8:
            raise WorkloadError(f"accuracy log: sample {idx} has a {len(payload)}-byte payload, "
                                "expected 8 (little-endian int64 class index)")
        if int.from_bytes(payload, "little", signed=True) == int(labels[idx]):
            correct += 1
    total = len(results)
    return AccuracyResult("accuracy", 100.0 * correct / total,
                          details={"correct": correct, "samples": total, "dataset_size": n,
                                   "complete": total == n})
