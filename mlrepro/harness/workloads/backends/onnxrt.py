"""ONNX Runtime backend: an ``InferenceSession`` on the CPU or, for ``device="cuda"``, on the CUDA provider only."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlrepro.harness.workloads.base import WorkloadConfigError, WorkloadError

CUDA_EP = "CUDAExecutionProvider"
CPU_EP = "CPUExecutionProvider"


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int | str | None, ...]   # ints for fixed dims, a name or None for dynamic ones
    type: str                             # e.g. "tensor(float)"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def __init__(self, device: str, threads: int, output: str | None = None) -> None:
        self.device = device
        self.threads = threads
        self.output_name = output
        self._sess: Any = None
        self._ort: Any = None
        self.input: TensorInfo | None = None
        self.outputs: list[TensorInfo] = []

    def _providers(self, ort: Any) -> list[Any]:
        if self.device == "cpu":
            return [CPU_EP]
        if self.device != "cuda":
            raise WorkloadConfigError(f"workload.device: {self.device!r} is not supported by onnxruntime")
        available = ort.get_available_providers()
        if CUDA_EP not in available:
            raise WorkloadError(
                f"GPU requested (device=cuda) but onnxruntime {ort.__version__} has no {CUDA_EP} "
                f"(available: {', '.join(available)}); install onnxruntime-gpu with a matching CUDA/cuDNN, "
                "or use a CPU profile")
        return [(CUDA_EP, {"device_id": 0})]

    def load(self, model: Path) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise WorkloadError(f"backend onnxruntime is not installed ({exc})") from None
        self._ort = ort
        providers = self._providers(ort)
        if not model.is_file():
            raise WorkloadConfigError(f"{model}: model file not found")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        try:
            sess = ort.InferenceSession(str(model), sess_options=opts, providers=providers)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            msg = _one_line(exc)
            if self.device == "cuda" and "CUDA" in msg:
                raise WorkloadError(f"{model}: onnxruntime cannot create a CUDA session: {msg}") from None
            raise WorkloadConfigError(f"{model}: onnxruntime cannot load it as an ONNX model ({msg})") from None
        if self.device == "cuda" and CUDA_EP not in sess.get_providers():
            # onnxruntime-gpu falls back to the CPU (with a warning) when CUDA/cuDNN libraries fail to load.
            raise WorkloadError(f"GPU requested (device=cuda) but onnxruntime could not enable {CUDA_EP} "
                                f"(session providers: {', '.join(sess.get_providers())}); check the CUDA "
                                "and cuDNN libraries in the image")
        inputs = [TensorInfo(i.name, tuple(i.shape), i.type) for i in sess.get_inputs()]
        self.outputs = [TensorInfo(o.name, tuple(o.shape), o.type) for o in sess.get_outputs()]
        if len(inputs) != 1:
            raise WorkloadConfigError(f"{model}: expected a model with one input, it has {len(inputs)} "
                                      f"({', '.join(i.name for i in inputs)})")
        self.input = inputs[0]
        names = [o.name for o in self.outputs]
        if self.output_name is None:
            self.output_name = names[0]
        elif self.output_name not in names:
            raise WorkloadConfigError(f"{model}: no output named {self.output_name!r} (outputs: {', '.join(names)})")
        self._sess = sess

    @property
    def output(self) -> TensorInfo:
        return next(o for o in self.outputs if o.name == self.output_name)

    def run(self, batch: np.ndarray) -> np.ndarray:
        assert self._sess is not None and self.input is not None, "load() first"
        try:
            return self._sess.run([self.output_name], {self.input.name: np.ascontiguousarray(batch)})[0]
        except Exception as exc:  # noqa: BLE001
            raise WorkloadError(f"onnxruntime inference failed: {_one_line(exc)}") from None

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"framework": "onnxruntime", "device": self.device, "intra_op_threads": self.threads}
        if self._ort is not None:
            d["onnxruntime"] = self._ort.__version__
        if self._sess is not None:
            d["providers"] = list(self._sess.get_providers())
        return d

    def close(self) -> None:
        self._sess = None
