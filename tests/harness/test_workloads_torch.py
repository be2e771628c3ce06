"""reference-digits on the torch backend: same predictions as onnxruntime, clear device and file errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mlrepro.harness.spec import WorkloadSpec
from mlrepro.harness.workloads.backends.torch_backend import read_mlp_weights
from mlrepro.harness.workloads.base import WorkloadConfigError, WorkloadError
from mlrepro.harness.workloads.reference import DATA_DIR, ReferenceDigits

ALL = list(range(360))


def make(backend: str, **kw: object) -> ReferenceDigits:
    w = ReferenceDigits(WorkloadSpec(name="reference-digits", backend=backend, **kw))  # type: ignore[arg-type]
    return w


def test_torch_matches_onnxruntime_on_all_eval_samples() -> None:
    ort_w, torch_w = make("onnxruntime", batch_size=64), make("torch", batch_size=64)
    ort_w.load()
    torch_w.load()
    a, b = ort_w.logits(ALL), torch_w.logits(ALL)
    assert a.shape == b.shape == (360, 10)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert np.array_equal(a.argmax(axis=1), b.argmax(axis=1))
    acc_ort = ort_w.accuracy(dict(zip(ALL, ort_w.predict(ALL))))
    acc_torch = torch_w.accuracy(dict(zip(ALL, torch_w.predict(ALL))))
    assert acc_torch.value == acc_ort.value >= 90.0
    d = torch_w.describe()
    assert d["framework"] == "torch" and d["torch"] == torch.__version__ and d["device"] == "cpu"
    assert d["model"].endswith("reference_digits_weights.npz") and d["model_verified"] is True


def test_torch_cuda_without_gpu_raises_workload_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible")
    with pytest.raises(WorkloadError, match=r"GPU requested \(device=cuda\) but torch .* sees no CUDA device"):
        make("torch", device="cuda").load()


def test_torch_xpu_without_an_intel_gpu_raises_workload_error() -> None:
    """Intel profiles run device=xpu (vendors.VENDORS); a torch without an XPU device says so, no CPU fallback."""
    if getattr(torch, "xpu", None) is not None and torch.xpu.is_available():
        pytest.skip("an XPU device is visible")
    with pytest.raises(WorkloadError, match=r"GPU requested \(device=xpu\) but torch .* sees no XPU device"):
        make("torch", device="xpu").load()


def test_tampered_weights_rejected(tmp_path: Path) -> None:
    import shutil

    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    f = data / "reference_digits_weights.npz"
    raw = bytearray(f.read_bytes())
    raw[len(raw) // 2] ^= 0x10
    f.write_bytes(bytes(raw))
    cls = type("TmpDigits", (ReferenceDigits,), {"data_dir": data})
    with pytest.raises(WorkloadConfigError, match=r"reference_digits_weights\.npz: sha256"):
        cls(WorkloadSpec(name="reference-digits", backend="torch")).load()


def test_weights_file_errors(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(WorkloadConfigError, match="garbage.npz: not an MLP weights .npz"):
        make("torch", model_path=str(garbage)).load()
    # the ONNX file given to the torch backend is not a weights archive
    with pytest.raises(WorkloadConfigError, match="not an MLP weights .npz"):
        make("torch", model_path=str(DATA_DIR / "reference_digits.onnx")).load()
    mismatched = tmp_path / "mismatched.npz"
    np.savez(mismatched, **{"fc1.weight": np.zeros((64, 32), np.float32), "fc1.bias": np.zeros(32, np.float32),
                            "fc2.weight": np.zeros((64, 10), np.float32), "fc2.bias": np.zeros(10, np.float32)})
    with pytest.raises(WorkloadConfigError, match="layer fc2 takes 64 inputs, fc1 gives 32"):
        read_mlp_weights(mismatched)
    wrong_out = tmp_path / "wrong_out.npz"
    np.savez(wrong_out, **{"fc1.weight": np.zeros((64, 5), np.float32), "fc1.bias": np.zeros(5, np.float32)})
    with pytest.raises(WorkloadConfigError, match=r"expected output \[N,10\]"):
        make("torch", model_path=str(wrong_out)).load()


def test_weights_layout_matches_onnx_initializers() -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    model = onnx.load(DATA_DIR / "reference_digits.onnx")
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    layers = read_mlp_weights(DATA_DIR / "reference_digits_weights.npz")
    assert len(layers) == 2
    for i, (w, b) in enumerate(layers, 1):
        assert np.array_equal(w, inits[f"fc{i}.weight"]) and np.array_equal(b, inits[f"fc{i}.bias"])
