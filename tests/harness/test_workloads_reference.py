"""reference-digits: package data integrity, accuracy on all 360 eval samples, error paths, reproducible training."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlrepro.harness.spec import WorkloadSpec
from mlrepro.harness.workloads import reference
from mlrepro.harness.workloads.base import WorkloadConfigError, WorkloadError
from mlrepro.harness.workloads.reference import ReferenceDigits

ROOT = Path(__file__).resolve().parents[2]
DATA = reference.DATA_DIR
SCRIPT = ROOT / "scripts" / "train_reference_model.py"


def make(backend: str = "onnxruntime", **kw: object) -> ReferenceDigits:
    return ReferenceDigits(WorkloadSpec(name="reference-digits", backend=backend, **kw))  # type: ignore[arg-type]


def committed_sums() -> dict[str, str]:
    out = {}
    for line in (DATA / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ")
        out[name] = digest
    return out


def test_package_data_matches_sha256sums() -> None:
    sums = committed_sums()
    assert set(sums) == {"reference_digits.onnx", "reference_digits_weights.npz", "digits_eval.npz"}
    for name, digest in sums.items():
        assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == digest, name
    assert (DATA / "reference_digits.onnx").stat().st_size < 1 << 20


def test_eval_set_layout() -> None:
    with np.load(DATA / "digits_eval.npz", allow_pickle=False) as npz:
        assert npz["images"].dtype == np.float32 and npz["images"].shape == (360, 64)
        assert npz["labels"].dtype == np.int64 and npz["labels"].shape == (360,)
        assert 0.0 <= npz["images"].min() and npz["images"].max() <= 1.0
        assert sorted(set(npz["labels"].tolist())) == list(range(10))


def test_class_attributes() -> None:
    assert ReferenceDigits.benchmark == "reference-digits"
    assert ReferenceDigits.model_mapping == "resnet"
    assert ReferenceDigits.mlperf_model == "resnet50"
    assert ReferenceDigits.backends == ("onnxruntime", "torch")


def test_accuracy_all_eval_samples_onnxruntime() -> None:
    w = make(batch_size=50)
    w.load()
    assert w.dataset_size == 360 and w.performance_sample_count == 360
    idx = list(range(360))
    payloads = w.predict(idx)
    assert len(payloads) == 360 and all(len(p) == 8 for p in payloads)
    result = w.accuracy(dict(zip(idx, payloads)))
    assert result.metric == "accuracy" and result.unit == "%"
    assert result.value >= 90.0
    meta = json.loads((DATA / "reference_digits.json").read_text())
    assert result.value == pytest.approx(meta["eval_accuracy"], abs=1e-3)   # what training measured
    assert result.details == {"correct": round(result.value * 3.6), "samples": 360, "dataset_size": 360,
                              "complete": True}
    assert result.line().startswith("accuracy=") and result.line().endswith("%")
    d = w.describe()
    assert d["model_sha256"] == committed_sums()["reference_digits.onnx"] and d["model_verified"] is True
    assert d["providers"] == ["CPUExecutionProvider"] and d["framework"] == "onnxruntime"
    w.close()


def test_payload_round_trip() -> None:
    w = make()
    w.load()
    labels = np.load(DATA / "digits_eval.npz")["labels"]
    # payloads that say exactly the truth score 100%, the truth + 1 scores 0%
    truth = {i: int(labels[i]).to_bytes(8, "little", signed=True) for i in range(360)}
    assert w.accuracy(truth).value == 100.0
    wrong = {i: int((labels[i] + 1) % 10).to_bytes(8, "little", signed=True) for i in range(360)}
    assert w.accuracy(wrong).value == 0.0
    # predict's payloads decode as little-endian int64 class indices in 0..9
    preds = [int.from_bytes(p, "little", signed=True) for p in w.predict([3, 1, 4, 1, 5])]
    assert all(0 <= p <= 9 for p in preds) and preds[1] == preds[3]


def test_accuracy_without_load_reads_labels() -> None:
    labels = np.load(DATA / "digits_eval.npz")["labels"]
    r = make().accuracy({0: int(labels[0]).to_bytes(8, "little"), 1: int(labels[1] + 1).to_bytes(8, "little")})
    assert r.value == 50.0 and r.details is not None and r.details["complete"] is False


@pytest.mark.parametrize("results, message", [
    ({}, "no results"),
    ({0: b"\x00" * 4}, "4-byte payload"),
    ({360: b"\x00" * 8}, "outside the dataset"),
])
def test_accuracy_rejects_bad_logs(results: dict[int, bytes], message: str) -> None:
    with pytest.raises(WorkloadError, match=message):
        make().accuracy(results)


def test_cuda_without_gpu_raises_workload_error() -> None:
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has a CUDA provider")
    with pytest.raises(WorkloadError, match=r"GPU requested \(device=cuda\).*no CUDAExecutionProvider"):
        make(device="cuda").load()


def _copy_data(tmp_path: Path) -> type[ReferenceDigits]:
    data = tmp_path / "data"
    shutil.copytree(DATA, data)
    return type("TmpDigits", (ReferenceDigits,), {"data_dir": data})


def test_tampered_model_is_rejected(tmp_path: Path) -> None:
    cls = _copy_data(tmp_path)
    model = cls.data_dir / "reference_digits.onnx"
    raw = bytearray(model.read_bytes())
    raw[len(raw) // 2] ^= 0x01                      # one bit inside the weights
    model.write_bytes(bytes(raw))
    with pytest.raises(WorkloadConfigError, match=r"reference_digits\.onnx: sha256 .* does not match"):
        cls(WorkloadSpec(name="reference-digits")).load()


def test_tampered_eval_set_is_rejected(tmp_path: Path) -> None:
    cls = _copy_data(tmp_path)
    ev = cls.data_dir / "digits_eval.npz"
    raw = bytearray(ev.read_bytes())
    raw[len(raw) // 2] ^= 0x01                      # one bit of one pixel
    ev.write_bytes(bytes(raw))
    with pytest.raises(WorkloadConfigError, match=r"digits_eval\.npz: sha256"):
        cls(WorkloadSpec(name="reference-digits")).load()


@pytest.mark.parametrize("name, message", [
    ("reference_digits.onnx", r"reference_digits\.onnx: file missing"),
    ("SHA256SUMS", r"SHA256SUMS: cannot read checksum file"),
])
def test_missing_package_file(tmp_path: Path, name: str, message: str) -> None:
    cls = _copy_data(tmp_path)
    (cls.data_dir / name).unlink()
    with pytest.raises(WorkloadConfigError, match=message):
        cls(WorkloadSpec(name="reference-digits")).load()


def test_model_path_override(tmp_path: Path) -> None:
    copy = tmp_path / "mine.onnx"
    shutil.copy(DATA / "reference_digits.onnx", copy)
    w = make(model_path=str(copy))
    w.load()
    assert w.describe()["model_verified"] is False
    assert w.accuracy(dict(zip(range(360), w.predict(list(range(360)))))).value >= 90.0


@pytest.mark.parametrize("content, message", [
    (None, "model file not found"),
    (b"this is not a protobuf", "onnxruntime cannot load it as an ONNX model"),
])
def test_model_path_override_errors(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "bad.onnx"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(WorkloadConfigError, match=message) as exc:
        make(model_path=str(path)).load()
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)


def test_wrong_model_shape_is_config_error(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("Identity", ["input"], ["logits"])], "id",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 64])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 64])])
    path = tmp_path / "identity.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    with pytest.raises(WorkloadConfigError, match=r"expected output \[N,10\]"):
        make(model_path=str(path)).load()


def test_dataset_path_override(tmp_path: Path) -> None:
    with np.load(DATA / "digits_eval.npz") as npz:
        images, labels = npz["images"][:20], npz["labels"][:20]
    path = tmp_path / "small.npz"
    np.savez(path, images=images, labels=labels)
    w = make(dataset_path=str(path))
    w.load()
    assert w.dataset_size == 20
    bad = tmp_path / "bad.npz"
    np.savez(bad, images=images[:, :10], labels=labels)
    with pytest.raises(WorkloadConfigError, match=r"bad\.npz: expected images \[N,64\]"):
        make(dataset_path=str(bad)).load()


@pytest.mark.parametrize("kw, message", [
    ({"backend": "none"}, "runs on onnxruntime or torch, not 'none'"),
    ({"options": {"bogus": 1}}, "workload.options.bogus: unknown option"),
    ({"options": {"threads": 0}}, r"workload.options.threads: expected an integer >= 1"),
])
def test_config_errors(kw: dict[str, object], message: str) -> None:
    with pytest.raises(WorkloadConfigError, match=message):
        make(**kw).load()  # type: ignore[arg-type]


def test_threads_option() -> None:
    w = make(options={"threads": 1})
    w.load()
    assert w.describe()["intra_op_threads"] == 1


def test_onnx_graph_contract() -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    model = onnx.load(DATA / "reference_digits.onnx")
    onnx.checker.check_model(model, full_check=True)
    (inp,), (out,) = model.graph.input, model.graph.output
    assert inp.name == "input" and out.name == "logits"
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == ["N", 64]
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["N", 10]
    assert model.opset_import[0].version == 17 and model.ir_version == 8
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    with np.load(DATA / "reference_digits_weights.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(inits)
        for name in npz.files:
            assert npz[name].dtype == inits[name].dtype == np.float32
            assert np.array_equal(npz[name], inits[name]), name


def test_entry_points_registered() -> None:
    from importlib.metadata import entry_points

    eps = {ep.name: ep for ep in entry_points(group="mlrepro.workloads")}
    from mlrepro.harness.workloads.null import NullWorkload
    from mlrepro.harness.workloads.resnet50 import ResNet50

    assert eps["reference-digits"].load() is ReferenceDigits
    assert eps["null"].load() is NullWorkload
    assert eps["resnet50"].load() is ResNet50


def test_workload_modules_import_no_forbidden_packages() -> None:
    code = (
        "import sys\n"
        "import mlrepro.harness.workloads.reference, mlrepro.harness.workloads.null, "
        "mlrepro.harness.workloads.resnet50, mlrepro.harness.workloads.backends.onnxrt, "
        "mlrepro.harness.workloads.backends.torch_backend\n"
        "bad = [m for m in ('sklearn', 'onnx', 'pydantic', 'typer', 'onnxruntime', 'torch') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_training_is_byte_reproducible(tmp_path: Path) -> None:
    """Re-running the training script gives the committed files, byte for byte (about 5 s)."""
    pytest.importorskip("sklearn")
    pytest.importorskip("onnx")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "eval accuracy: " in proc.stdout
    assert (tmp_path / "SHA256SUMS").read_text() == (DATA / "SHA256SUMS").read_text()
    for name in committed_sums():
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), name
    meta = json.loads((tmp_path / "reference_digits.json").read_text())
    committed = json.loads((DATA / "reference_digits.json").read_text())
    assert meta["eval_accuracy"] == committed["eval_accuracy"]
    assert set(meta["versions"]) == {"python", "numpy", "scikit-learn", "onnx"}
    assert meta["training"]["seed"] == committed["training"]["seed"]
