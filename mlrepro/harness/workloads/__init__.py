"""Workloads: model + dataset + accuracy function, found through the ``mlrepro.workloads`` entry points.

The built-in ones are the entry points of pyproject.toml (the one list of them): ``reference-digits``
(:mod:`.reference`), ``null`` (:mod:`.null`), ``resnet50`` (:mod:`.resnet50`), and the LLMs (:mod:`.llm`, data in
``llm/benchmarks.json``); the harness registry (:mod:`mlrepro.harness.registry`) loads them by name. Importing
this package pulls in only the contract (no framework, no model).
"""

from mlrepro.harness.workloads.base import (
    ENTRY_POINT_GROUP,
    AccuracyResult,
    Workload,
    WorkloadConfigError,
    WorkloadError,
)

__all__ = ["ENTRY_POINT_GROUP", "AccuracyResult", "Workload", "WorkloadConfigError", "WorkloadError"]
