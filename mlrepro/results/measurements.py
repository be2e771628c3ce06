"""``measurements.json`` of a result folder: the five keys the checker requires (``SYSTEM_IMP_REQUIRED_FILES``).

Values come from the workload's ``describe()`` (as the harness recorded it in ``record.json``) when it names them,
else from defaults that describe mlrepro's reference workloads (fp32 ONNX/PyTorch models, no retraining).

Public API::

    build_measurements(workload) -> dict[str, str]
    measurements_json(workload) -> bytes
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping
from typing import Any

REQUIRED_KEYS = ("input_data_types", "retraining", "starting_weights_filename", "weight_data_types",
                 "weight_transformations")


def build_measurements(workload: Mapping[str, Any]) -> dict[str, str]:
    describe = workload.get("describe") if isinstance(workload.get("describe"), Mapping) else {}
    model_path = workload.get("model_path")
    weights = describe.get("starting_weights_filename") or describe.get("model_file") or (
        posixpath.basename(str(model_path)) if model_path else "") or describe.get("model") or \
        f"mlrepro built-in model of workload {workload.get('name') or 'unknown'}"
    out = {
        "input_data_types": describe.get("input_data_types") or describe.get("input_dtype") or "fp32",
        "retraining": describe.get("retraining") or "No",
        "starting_weights_filename": weights,
        "weight_data_types": describe.get("weight_data_types") or describe.get("weight_dtype") or "fp32",
        "weight_transformations": describe.get("weight_transformations") or "none",
    }
    return {k: str(v) for k, v in out.items()}


def measurements_json(workload: Mapping[str, Any]) -> bytes:
    return (json.dumps(build_measurements(workload), indent=2, sort_keys=True) + "\n").encode("utf-8")
