"""resnet50: MLPerf image classification (benchmark ``resnet``) with a user-provided ONNX model and dataset.

Model (``workload.model_path``, required): an ONNX file with one float input ``[N,3,224,224]`` (NCHW; the batch
dimension may be dynamic or fixed -- a fixed batch is padded). The output used (``options.output``, default the
first) is either float logits/probabilities ``[N,C]`` (argmax is taken) or integer class indices ``[N]`` /
``[N,1]``. The MLPerf reference ``resnet50_v1.onnx`` outputs ``ArgMax:0`` over 1001 classes (0 = background):
run it with ``options.label_offset: 1`` (predicted class = model output - label_offset).

Dataset (``workload.dataset_path``, required): a directory laid out like the MLPerf reference's preprocessed
ImageNet validation cache::

    <dataset_path>/val_map.txt            one line per image: "<file> <label>", label = 0-based ImageNet class
    <dataset_path>/<file>.npy             the preprocessed image: float32 [3,224,224] (NCHW, mean/std applied)

``<file>`` may contain sub-directories; if it already ends in ``.npy`` it is used as is. ``options.count``
limits the run to the first N entries (MLPerf's ``--count``). Images are read in :meth:`load_samples`
(the QSL's performance set: ``options.performance_sample_count``, default 1024 as in mlperf.conf).

Payload per sample: the predicted class, a little-endian int64 (MLPerf's ``accuracy-imagenet.py`` needs
``--dtype int64`` to read it). Metric: top-1 accuracy in percent. Backend: onnxruntime only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlrepro.harness.workloads._common import (
    check_options,
    chunks,
    class_payloads,
    classification_accuracy,
    int_option,
    sha256_file,
    str_option,
)
from mlrepro.harness.workloads.backends import available_cpus
from mlrepro.harness.workloads.base import AccuracyResult, Workload, WorkloadConfigError, WorkloadError

IMAGE_SHAPE = (3, 224, 224)
VAL_MAP = "val_map.txt"
PERFORMANCE_SAMPLE_COUNT = 1024
OPTIONS = ("label_offset", "output", "count", "performance_sample_count")
INT_TYPES = ("tensor(int64)", "tensor(int32)")


def parse_val_map(dataset: Path, count: int | None = None) -> tuple[list[Path], np.ndarray]:
    """(.npy paths, int64 labels) from ``<dataset>/val_map.txt``; every listed file must exist."""
    if not dataset.is_dir():
        raise WorkloadConfigError(f"{dataset}: dataset directory not found (workload.dataset_path)")
    vmap = dataset / VAL_MAP
    try:
        text = vmap.read_text(encoding="utf-8")
    except OSError as exc:
        raise WorkloadConfigError(f"{vmap}: cannot read the dataset index ({exc.strerror or exc})") from None
    files: list[Path] = []
    labels: list[int] = []
    for n, line in enumerate(text.splitlines(), 1):
        if count is not None and len(files) >= count:
            break
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2 or not fields[1].isdigit():
            raise WorkloadConfigError(f"{vmap}:{n}: malformed line {line.strip()!r} (expected '<file> <label>')")
        name = fields[0] if fields[0].endswith(".npy") else fields[0] + ".npy"
        path = dataset / name
        if not path.is_file():
            raise WorkloadConfigError(f"{path}: listed in {vmap} line {n} but missing")
        files.append(path)
        labels.append(int(fields[1]))
    if not files:
        raise WorkloadConfigError(f"{vmap}: lists no images")
    return files, np.asarray(labels, dtype=np.int64)


def load_image(path: Path) -> np.ndarray:
    """One preprocessed image as contiguous float32 [3,224,224]. WorkloadConfigError naming the file."""
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001
        raise WorkloadConfigError(f"{path}: not a .npy array ({type(exc).__name__}: {exc})") from None
    if arr.shape == (1, *IMAGE_SHAPE):
        arr = arr[0]
    if arr.shape != IMAGE_SHAPE or not np.issubdtype(arr.dtype, np.floating):
        raise WorkloadConfigError(f"{path}: expected a float array {list(IMAGE_SHAPE)} (NCHW, preprocessed), "
                                  f"got {arr.dtype} {list(arr.shape)}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _dims_match(shape: tuple[Any, ...]) -> bool:
    return len(shape) == 4 and all(not isinstance(d, int) or d == want for d, want in zip(shape[1:], IMAGE_SHAPE))


class ResNet50(Workload):
    benchmark = "resnet"
    mlperf_model = "resnet50"
    backends = ("onnxruntime",)

    def __init__(self, spec: Any) -> None:
        super().__init__(spec)
        self._files: list[Path] = []
        self._labels: np.ndarray | None = None
        self._cache: dict[int, np.ndarray] = {}
        self._backend: Any = None
        self._fixed_batch: int | None = None
        self._int_output = False
        self._offset = 0
        self._facts: dict[str, Any] = {}

    def _load_dataset(self) -> None:
        if not self.spec.dataset_path:
            raise WorkloadConfigError("workload.dataset_path is required for resnet50: a directory with "
                                      f"{VAL_MAP} and preprocessed .npy images")
        count = int_option(self.spec, "count", None, minimum=1)
        self._files, self._labels = parse_val_map(Path(self.spec.dataset_path), count)
        load_image(self._files[0])          # fail early on a wrong layout; the others are checked when loaded

    def load(self) -> None:
        spec = self.spec
        check_options(spec, "resnet50", OPTIONS)
        if spec.backend != "onnxruntime":
            raise WorkloadConfigError(f"workload.backend: resnet50 takes an ONNX model and runs on onnxruntime, "
                                      f"not {spec.backend!r}")
        self._offset = int_option(spec, "label_offset", 0) or 0
        int_option(spec, "performance_sample_count", None, minimum=1)
        if not spec.model_path:
            raise WorkloadConfigError("workload.model_path is required for resnet50: an ONNX ResNet-50 file "
                                      "(e.g. the MLPerf reference resnet50_v1.onnx)")
        model = Path(spec.model_path)
        if not model.is_file():
            raise WorkloadConfigError(f"{model}: model file not found (workload.model_path)")
        self._load_dataset()

        from mlrepro.harness.workloads.backends.onnxrt import OnnxRuntimeBackend

        backend = OnnxRuntimeBackend(spec.device, int_option(spec, "threads", None, minimum=1) or available_cpus(),
                                     str_option(spec, "output", None))
        backend.load(model)
        inp, out = backend.input, backend.output
        assert inp is not None
        if inp.type != "tensor(float)" or not _dims_match(inp.shape):
            raise WorkloadConfigError(f"{model}: input {inp.name!r} is {inp.type} {list(inp.shape)}, "
                                      f"expected tensor(float) [N,{','.join(map(str, IMAGE_SHAPE))}]")
        if out.type in INT_TYPES and (len(out.shape) == 1 or (len(out.shape) == 2 and out.shape[1] in (1, None))):
            self._int_output = True
        elif out.type.startswith("tensor(float") and len(out.shape) == 2:
            self._int_output = False
        else:
            raise WorkloadConfigError(f"{model}: output {out.name!r} is {out.type} {list(out.shape)}, expected "
                                      "float [N,classes] or integer class indices [N] (choose with options.output)")
        self._fixed_batch = inp.shape[0] if isinstance(inp.shape[0], int) and inp.shape[0] > 0 else None
        self._backend = backend
        self._facts = {"workload": "resnet50", "model": str(model), "model_sha256": sha256_file(model),
                       "model_input": inp.name, "model_output": out.name, "label_offset": self._offset,
                       "dataset": str(spec.dataset_path), "dataset_size": len(self._files)}

    @property
    def dataset_size(self) -> int:
        return len(self._files)

    @property
    def performance_sample_count(self) -> int:
        want = int_option(self.spec, "performance_sample_count", PERFORMANCE_SAMPLE_COUNT, minimum=1)
        return min(want or PERFORMANCE_SAMPLE_COUNT, self.dataset_size)

    def load_samples(self, indices: Sequence[int]) -> None:
        for i in indices:
            if i not in self._cache:
                self._cache[i] = load_image(self._files[i])

    def unload_samples(self, indices: Sequence[int]) -> None:
        for i in indices:
            self._cache.pop(i, None)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        n = batch.shape[0]
        fixed = self._fixed_batch
        if fixed is not None and n != fixed:
            if n > fixed:
                return np.concatenate([self._run(batch[s:s + fixed]) for s in range(0, n, fixed)])
            batch = np.concatenate([batch, np.repeat(batch[:1], fixed - n, axis=0)])
        out = np.asarray(self._backend.run(batch))[:n]
        if self._int_output:
            classes = out.reshape(n)
        elif out.ndim == 2:
            classes = np.argmax(out, axis=1)
        else:
            raise WorkloadError(f"model output has shape {list(out.shape)}, expected [N,classes]")
        return classes.astype(np.int64) - self._offset

    def predict(self, indices: Sequence[int]) -> list[bytes]:
        if self._backend is None:
            raise WorkloadError("resnet50: predict() before load()")
        try:
            images = [self._cache[i] for i in indices]
        except KeyError as exc:
            raise WorkloadError(f"resnet50: sample {exc.args[0]} was not loaded by the QSL") from None
        size = self._fixed_batch or self.spec.batch_size
        parts = [self._run(np.stack(c)) for c in chunks(images, size)]
        return class_payloads(np.concatenate(parts))

    def accuracy(self, results: dict[int, bytes]) -> AccuracyResult:
        if self._labels is None:
            self._load_dataset()
        assert self._labels is not None
        return classification_accuracy(results, self._labels)

    def describe(self) -> dict[str, Any]:
        d = dict(self._facts)
        if self._backend is not None:
            d.update(self._backend.describe())
        return d

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None
        self._cache.clear()
