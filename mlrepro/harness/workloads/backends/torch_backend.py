"""PyTorch backend for MLP workloads: builds ``nn.Linear`` layers from a weights ``.npz``.

The file holds ``fc1.weight`` [in, out], ``fc1.bias`` [out], ``fc2.weight`` ... -- the same float32 values (and
the same (in, out) layout) as the initializers of the matching ONNX model, with a ReLU between layers.
Reading the ``.onnx`` itself would need the onnx package (not in the harness image).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mlrepro.harness.workloads.base import WorkloadConfigError, WorkloadError


def read_mlp_weights(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(weight [in,out], bias [out]), ...] from the ``.npz``. WorkloadConfigError naming the file."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: np.asarray(npz[k]) for k in npz.files}
    except FileNotFoundError:
        raise WorkloadConfigError(f"{path}: weights file not found") from None
    except Exception as exc:  # noqa: BLE001 - zipfile/numpy raise several types for a bad file
        raise WorkloadConfigError(f"{path}: not an MLP weights .npz ({type(exc).__name__}: {exc})") from None
    layers: list[tuple[np.ndarray, np.ndarray]] = []
    while f"fc{len(layers) + 1}.weight" in arrays:
        i = len(layers) + 1
        w, b = arrays.pop(f"fc{i}.weight"), arrays.pop(f"fc{i}.bias", None)
        if b is None or w.ndim != 2 or b.shape != (w.shape[1],):
            raise WorkloadConfigError(f"{path}: layer fc{i} has weight {w.shape} / bias "
                                      f"{None if b is None else b.shape}, expected [in,out] / [out]")
        if layers and layers[-1][0].shape[1] != w.shape[0]:
            raise WorkloadConfigError(f"{path}: layer fc{i} takes {w.shape[0]} inputs, "
                                      f"fc{i - 1} gives {layers[-1][0].shape[1]}")
        layers.append((w.astype(np.float32), b.astype(np.float32)))
    if not layers or arrays:
        extra = f" (unexpected arrays: {', '.join(sorted(arrays))})" if arrays else ""
        raise WorkloadConfigError(f"{path}: not an MLP weights .npz: expected fc1.weight, fc1.bias, ...{extra}")
    return layers


class TorchMLPBackend:
    name = "torch"

    def __init__(self, device: str, threads: int) -> None:
        self.device = device
        self.threads = threads
        self._torch: Any = None
        self._model: Any = None
        self._dev: Any = None

    def load(self, model: Path) -> None:
        try:
            import torch
        except ImportError as exc:
            raise WorkloadError(f"backend torch is not installed ({exc})") from None
        self._torch = torch
        if self.device == "cuda":                 # CUDA, and ROCm's HIP build (it answers to torch.cuda)
            if not torch.cuda.is_available():
                hip = getattr(torch.version, "hip", None)
                build = (f"CUDA {torch.version.cuda}" if torch.version.cuda else f"ROCm/HIP {hip}" if hip
                         else "a CPU-only build")
                raise WorkloadError(f"GPU requested (device=cuda) but torch {torch.__version__} ({build}) "
                                    "sees no CUDA device; check the GPU runtime / device plugin, or use a CPU profile")
            self._dev = torch.device("cuda", 0)
        elif self.device == "xpu":                # Intel GPUs (torch's XPU build)
            xpu = getattr(torch, "xpu", None)
            if xpu is None or not xpu.is_available():
                raise WorkloadError(f"GPU requested (device=xpu) but torch {torch.__version__} sees no XPU device "
                                    "(not an XPU build, or no /dev/dri render node); check the device plugin or "
                                    "--device /dev/dri, or use a CPU profile")
            self._dev = torch.device("xpu", 0)
        elif self.device == "cpu":
            self._dev = torch.device("cpu")
            torch.set_num_threads(self.threads)
        else:
            raise WorkloadConfigError(f"workload.device: {self.device!r} is not supported by torch")
        layers = read_mlp_weights(model)
        modules: list[Any] = []
        for i, (w, b) in enumerate(layers):
            lin = torch.nn.Linear(w.shape[0], w.shape[1])
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.T)))
                lin.bias.copy_(torch.from_numpy(b))
            modules.append(lin)
            if i < len(layers) - 1:
                modules.append(torch.nn.ReLU())
        self._model = torch.nn.Sequential(*modules).eval().to(self._dev)

    def run(self, batch: np.ndarray) -> np.ndarray:
        assert self._model is not None, "load() first"
        torch = self._torch
        try:
            with torch.inference_mode():
                x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self._dev)
                return self._model(x).cpu().numpy()
        except RuntimeError as exc:
            raise WorkloadError(f"torch inference failed: {str(exc).splitlines()[0]}") from None

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"framework": "torch", "device": self.device}
        torch = self._torch
        if torch is not None:
            d["torch"] = torch.__version__
            d["torch_cuda"] = torch.version.cuda
            if getattr(torch.version, "hip", None):
                d["torch_hip"] = torch.version.hip
            if self.device == "cuda" and self._dev is not None:
                d["gpu"] = torch.cuda.get_device_name(self._dev)
            elif self.device == "xpu" and self._dev is not None:
                d["gpu"] = torch.xpu.get_device_name(self._dev)
            else:
                d["intra_op_threads"] = torch.get_num_threads()
        return d

    def close(self) -> None:
        self._model = None
