"""Find workload classes through the ``mlrepro.workloads`` entry points."""

from __future__ import annotations

import importlib.metadata

from mlrepro.harness.spec import SpecError
from mlrepro.harness.workloads.base import ENTRY_POINT_GROUP, Workload, WorkloadError


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    return {ep.name: ep for ep in eps}


def known_workloads() -> list[str]:
    """Names registered in the entry-point group, sorted."""
    return sorted(_entry_points())


def load_workload_class(name: str) -> type[Workload]:
    """The workload class registered as ``name``.

    Raises SpecError (bad spec) for an unknown name, listing the known ones, and WorkloadError (runtime) when
    the entry point exists but cannot be imported or is not a Workload subclass."""
    eps = _entry_points()
    ep = eps.get(name)
    if ep is None:
        known = ", ".join(sorted(eps)) or "none installed"
        raise SpecError(f"unknown workload {name!r} (known: {known})")
    try:
        obj = ep.load()
    except Exception as exc:
        raise WorkloadError(f"workload {name!r} ({ep.value}) cannot be imported: "
                            f"{type(exc).__name__}: {exc}") from exc
    if not (isinstance(obj, type) and issubclass(obj, Workload)):
        raise WorkloadError(f"workload {name!r} ({ep.value}) is not a Workload subclass")
    return obj
