"""Workloads: model + dataset + accuracy function, found through the ``mlrepro.workloads`` entry points.

Built in (see pyproject.toml): ``reference-digits`` (:mod:`.reference`), ``null`` (:mod:`.null`),
``resnet50`` (:mod:`.resnet50`), and the LLMs (:mod:`.llm`, data in ``llm/benchmarks.json``). The harness
registry loads them by entry-point name; importing this package pulls in only the contract (no framework, no
model).
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
    # the LLM family: one class per entry of llm/benchmarks.json, built from the data (llm.__getattr__)
    "llama3.1-8b": "mlrepro.harness.workloads.llm:llama3_1_8b",
    "llama3.1-8b-edge": "mlrepro.harness.workloads.llm:llama3_1_8b_edge",
    "llama2-70b-99.9": "mlrepro.harness.workloads.llm:llama2_70b_99_9",
    "deepseek-r1": "mlrepro.harness.workloads.llm:deepseek_r1",
    "gpt-oss-120b": "mlrepro.harness.workloads.llm:gpt_oss_120b",
    "smollm2-135m-demo": "mlrepro.harness.workloads.llm:smollm2_135m_demo",
}

__all__ = ["BUILTIN", "ENTRY_POINT_GROUP", "AccuracyResult", "Workload", "WorkloadConfigError", "WorkloadError"]
