"""Inference backends: one small module per framework, imported only when chosen.

A backend loads one model file and turns a float32 batch into an output array. Device rule: a GPU profile
(``device="cuda"``) never silently falls back to the CPU -- a backend that cannot put the model on a GPU raises
:class:`~mlrepro.harness.workloads.base.WorkloadError`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mlrepro.harness.workloads.base import WorkloadConfigError

BACKEND_NAMES = ("onnxruntime", "torch")


class Backend(Protocol):
    name: str
    device: str

    def load(self, model: Path) -> None:
        """Load the model file (onnxruntime: an ``.onnx`` file; torch: an MLP weights ``.npz``).
        WorkloadConfigError for an unusable file, WorkloadError for an unusable device."""

    def run(self, batch: np.ndarray) -> np.ndarray:
        """One inference on a batch (first dimension = samples); returns the first (or chosen) output."""

    def describe(self) -> dict[str, Any]:
        """Framework, version, device and execution providers, for the run record."""

    def close(self) -> None: ...


def _cgroup_cpu_limit() -> float | None:
    """CPUs allowed by the cgroup CPU quota (v2 ``cpu.max`` or v1 ``cfs_quota_us``), None when unlimited."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period_us = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None


def available_cpus() -> int:
    """CPUs this process may really use: affinity mask, capped by a container CPU limit."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    limit = _cgroup_cpu_limit()
    if limit is not None:
        n = min(n, max(1, math.ceil(limit)))
    return max(1, n)


def make_backend(name: str, device: str, threads: int | None = None, output: str | None = None) -> Backend:
    """The backend ``name`` for ``device`` (the framework is imported lazily, at load time).

    ``threads``: intra-op CPU threads (default :func:`available_cpus`); ``output``: the model output to return
    (onnxruntime only; default the first)."""
    n = threads if threads is not None else available_cpus()
    if name == "onnxruntime":
        from mlrepro.harness.workloads.backends.onnxrt import OnnxRuntimeBackend

        return OnnxRuntimeBackend(device, n, output)
    if name == "torch":
        from mlrepro.harness.workloads.backends.torch_backend import TorchMLPBackend

        return TorchMLPBackend(device, n)
    raise WorkloadConfigError(f"workload.backend: {name!r} is not an inference backend "
                              f"(known: {', '.join(BACKEND_NAMES)})")
