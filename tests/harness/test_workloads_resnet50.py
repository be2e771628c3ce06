"""resnet50 with a tiny synthetic ONNX model and a synthetic preprocessed dataset: accuracy and every error path."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper

from mlrepro.harness.spec import WorkloadSpec
from mlrepro.harness.workloads.base import WorkloadConfigError, WorkloadError
from mlrepro.harness.workloads.resnet50 import ResNet50

# The tiny model: GlobalAveragePool -> Flatten -> MatMul W [3,1000]. W maps channel c to class CLASS_OF[c], so an
# image whose channel c is the brightest is classified CLASS_OF[c].
CLASS_OF = (5, 7, 9)


def tiny_model(path: Path, batch: Any = "N", hw: int = 224, argmax: bool = False, classes: int = 1000) -> Path:
    w = np.zeros((3, classes), dtype=np.float32)
    for c, k in enumerate(CLASS_OF):
        w[c, k] = 1.0
    nodes = [
        helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "W"], ["logits"]),
    ]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, classes])]
    if argmax:       # MLPerf-reference style: the first output is the class index
        nodes.append(helper.make_node("ArgMax", ["logits"], ["classes"], axis=1, keepdims=0))
        outputs.insert(0, helper.make_tensor_value_info("classes", TensorProto.INT64, [batch]))
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                                                             [batch, 3, hw, hw])],
                              outputs, initializer=[numpy_helper.from_array(w, "W")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    return path


def image(channel: int) -> np.ndarray:
    img = np.zeros((3, 224, 224), dtype=np.float32)
    img[channel] = 1.0
    return img


def dataset(root: Path, labels: Sequence[int], names: Sequence[str] | None = None) -> Path:
    """Image i has channel i%3 bright (predicted CLASS_OF[i%3]); val_map lists ``labels``."""
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, label in enumerate(labels):
        name = names[i] if names else f"ILSVRC2012_val_{i + 1:08d}.JPEG"
        target = root / (name if name.endswith(".npy") else name + ".npy")
        target.parent.mkdir(parents=True, exist_ok=True)
        np.save(target, image(i % 3))
        lines.append(f"{name} {label}")
    (root / "val_map.txt").write_text("\n".join(lines) + "\n")
    return root


def truth(n: int) -> list[int]:
    return [CLASS_OF[i % 3] for i in range(n)]


def make(model: Path | None, data: Path | None, **kw: Any) -> ResNet50:
    return ResNet50(WorkloadSpec(name="resnet50", model_path=str(model) if model else None,
                                 dataset_path=str(data) if data else None, **kw))


def run_all(w: ResNet50) -> dict[int, bytes]:
    idx = list(range(w.dataset_size))
    w.load_samples(idx)
    return dict(zip(idx, w.predict(idx)))


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return tiny_model(tmp_path / "tiny.onnx")


def test_class_attributes() -> None:
    assert (ResNet50.benchmark, ResNet50.mlperf_model, ResNet50.backends) == ("resnet", "resnet50", ("onnxruntime",))


def test_top1_accuracy(tmp_path: Path, model: Path) -> None:
    labels = truth(6)
    labels[4] = 0                                          # one wrong label -> 5/6
    w = make(model, dataset(tmp_path / "val", labels), batch_size=4)
    w.load()
    assert w.dataset_size == 6 and w.performance_sample_count == 6
    results = run_all(w)
    preds = [int.from_bytes(results[i], "little", signed=True) for i in range(6)]
    assert preds == truth(6)
    r = w.accuracy(results)
    assert r.metric == "accuracy" and r.value == pytest.approx(500 / 6)
    assert r.line() == "accuracy=83.333%"
    d = w.describe()
    assert d["model_output"] == "logits" and d["label_offset"] == 0 and len(d["model_sha256"]) == 64
    w.unload_samples(list(range(6)))
    with pytest.raises(WorkloadError, match="sample 0 was not loaded"):
        w.predict([0])
    w.close()


def test_argmax_output_with_label_offset(tmp_path: Path) -> None:
    """Like the MLPerf reference model: int64 ArgMax output over 1001 classes, offset 1."""
    m = tiny_model(tmp_path / "ref.onnx", argmax=True, classes=1001)
    w = make(m, dataset(tmp_path / "val", [k - 1 for k in truth(5)]), options={"label_offset": 1})
    w.load()
    assert w.describe()["model_output"] == "classes"
    assert w.accuracy(run_all(w)).value == 100.0
    # the float output can be chosen instead
    w2 = make(m, tmp_path / "val", options={"label_offset": 1, "output": "logits"})
    w2.load()
    assert w2.accuracy(run_all(w2)).value == 100.0


def test_fixed_batch_model_is_padded(tmp_path: Path) -> None:
    m = tiny_model(tmp_path / "b2.onnx", batch=2)
    w = make(m, dataset(tmp_path / "val", truth(5)), batch_size=8)
    w.load()
    assert w.accuracy(run_all(w)).value == 100.0          # batches of 2, the last one padded


def test_count_and_subdirectories(tmp_path: Path, model: Path) -> None:
    names = ["a/x.JPEG", "b/y.npy", "z.JPEG", "w.JPEG"]
    w = make(model, dataset(tmp_path / "val", truth(4), names), options={"count": 3})
    w.load()
    assert w.dataset_size == 3
    assert w.accuracy(run_all(w)).value == 100.0


def test_cuda_without_gpu(tmp_path: Path, model: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has a CUDA provider")
    with pytest.raises(WorkloadError, match=r"GPU requested \(device=cuda\)"):
        make(model, dataset(tmp_path / "val", truth(3)), device="cuda").load()


def _line_error(tmp_path: Path, model: Path, text: str) -> str:
    data = dataset(tmp_path / "val", truth(3))
    (data / "val_map.txt").write_text(text)
    with pytest.raises(WorkloadConfigError) as exc:
        make(model, data).load()
    return str(exc.value)


def test_malformed_val_map_names_the_line(tmp_path: Path, model: Path) -> None:
    msg = _line_error(tmp_path, model, "ILSVRC2012_val_00000001.JPEG 5\n\nILSVRC2012_val_00000002.JPEG\n")
    assert "val_map.txt:3: malformed line" in msg
    msg = _line_error(tmp_path, model, "ILSVRC2012_val_00000001.JPEG five\n")
    assert "val_map.txt:1: malformed line" in msg
    assert "lists no images" in _line_error(tmp_path, model, "\n")


def test_listed_file_missing(tmp_path: Path, model: Path) -> None:
    data = dataset(tmp_path / "val", truth(3))
    (data / "ILSVRC2012_val_00000002.JPEG.npy").unlink()
    with pytest.raises(WorkloadConfigError, match=r"ILSVRC2012_val_00000002\.JPEG\.npy: listed in .*line 2 but missing"):
        make(model, data).load()


def test_bad_image_array(tmp_path: Path, model: Path) -> None:
    data = dataset(tmp_path / "val", truth(2))
    np.save(data / "ILSVRC2012_val_00000001.JPEG.npy", np.zeros((224, 224, 3), np.float32))   # NHWC
    with pytest.raises(WorkloadConfigError, match=r"expected a float array \[3, 224, 224\]"):
        make(model, data).load()


def _wrong_input(tmp_path: Path) -> Path:
    return tiny_model(tmp_path / "small.onnx", hw=32)


def _not_onnx(tmp_path: Path) -> Path:
    p = tmp_path / "model.onnx"
    p.write_bytes(b"\x00garbage, not a protobuf\xff" * 10)
    return p


@pytest.mark.parametrize("model_maker, data_maker, kw, message", [
    (lambda t: None, "ok", {}, "workload.model_path is required"),
    (lambda t: t / "absent.onnx", "ok", {}, r"absent\.onnx: model file not found"),
    (_not_onnx, "ok", {}, r"model\.onnx: onnxruntime cannot load it as an ONNX model"),
    (_wrong_input, "ok", {}, r"small\.onnx: input 'image' is tensor\(float\) \['N', 3, 32, 32\]"),
    ("tiny", None, {}, "workload.dataset_path is required"),
    ("tiny", "absent", {}, r"absent: dataset directory not found"),
    ("tiny", "no-map", {}, r"val_map\.txt: cannot read the dataset index"),
    ("tiny", "ok", {"backend": "torch"}, "runs on onnxruntime, not 'torch'"),
    ("tiny", "ok", {"options": {"labels_offset": 1}}, "workload.options.labels_offset: unknown option"),
    ("tiny", "ok", {"options": {"output": "nope"}}, "no output named 'nope'"),
    ("tiny", "ok", {"options": {"count": 0}}, "workload.options.count: expected an integer >= 1"),
])
def test_config_errors(tmp_path: Path, model_maker: Any, data_maker: str | None, kw: dict[str, Any],
                       message: str) -> None:
    m = tiny_model(tmp_path / "tiny.onnx") if model_maker == "tiny" else model_maker(tmp_path)
    data: Path | None = None
    if data_maker == "ok":
        data = dataset(tmp_path / "val", truth(2))
    elif data_maker == "absent":
        data = tmp_path / "absent"
    elif data_maker == "no-map":
        data = tmp_path / "empty"
        data.mkdir()
    with pytest.raises(WorkloadConfigError, match=message) as exc:
        make(m, data, **kw).load()
    assert "\n" not in str(exc.value)


def test_accuracy_rejects_wrong_payload(tmp_path: Path, model: Path) -> None:
    w = make(model, dataset(tmp_path / "val", truth(2)))
    w.load()
    with pytest.raises(WorkloadError, match="expected 8"):
        w.accuracy({0: np.float32(5).tobytes()})
