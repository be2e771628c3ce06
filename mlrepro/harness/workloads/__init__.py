"""Workloads: model + dataset + accuracy function, found through the ``mlrepro.workloads`` entry points.

Built in (see pyproject.toml): ``reference-digits`` (:mod:`.reference`), ``null`` (:mod:`.null`),
``resnet50`` (:mod:`.resnet50`). The harness registry loads them by entry-point name; importing this package
pulls in only the contract (no framework, no model).
"""

from mlrepro.harness.workloads.base import (
    ENTRY_POINT_GROUP,
    AccuracyResult,
    Workload,
    WorkloadConfigError,
    WorkloadError,
)

BUILTIN = {
    "reference-digits": "mlrepro.harness.workloads.reference:ReferenceDigits",
    "null": "mlrepro.harness.workloads.null:NullWorkload",
    "resnet50": "mlrepro.harness.workloads.resnet50:ResNet50",
}

__all__ = ["BUILTIN", "ENTRY_POINT_GROUP", "AccuracyResult", "Workload", "WorkloadConfigError", "WorkloadError"]
