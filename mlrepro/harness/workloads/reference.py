"""reference-digits: a small real model on a real labelled dataset that ships with mlrepro (no download).

Model: an MLP 64-64-10 trained by ``scripts/train_reference_model.py`` (reproducible, byte-identical output) on
scikit-learn's handwritten digits; eval set = the last 360 of the 1,797 8x8 images, pixels scaled to [0, 1].
Package data (``data/``): ``reference_digits.onnx`` (onnxruntime), ``reference_digits_weights.npz`` (the same
weights for the torch backend), ``digits_eval.npz`` (images float32 [360,64], labels int64 [360]) and
``SHA256SUMS``, checked at load time.

Payload per sample: the predicted class, a little-endian int64. Metric: top-1 accuracy in percent.
In the open division the benchmark name ``reference-digits`` maps to the checker's ``resnet`` (same task:
image classification) through ``model_mapping.json``.

Options: ``model_path`` overrides the model file (an ``.onnx`` for onnxruntime, a weights ``.npz`` for torch; it
is then checked for format, not hash), ``dataset_path`` an ``.npz`` with the same ``images``/``labels`` layout,
``options.threads`` the CPU threads.
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
    read_sha256sums,
    sha256_file,
    verify_file,
)
from mlrepro.harness.workloads.backends import Backend, make_backend
from mlrepro.harness.workloads.base import AccuracyResult, Workload, WorkloadConfigError

DATA_DIR = Path(__file__).resolve().parent / "data"
MODEL_FILES = {"onnxruntime": "reference_digits.onnx", "torch": "reference_digits_weights.npz"}
EVAL_FILE = "digits_eval.npz"
SUMS_FILE = "SHA256SUMS"
EVAL_SIZE = 360
N_FEATURES = 64
N_CLASSES = 10


def load_eval_set(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images float32 [N,64], labels int64 [N]) from an ``.npz``. WorkloadConfigError naming the file."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            images, labels = np.asarray(npz["images"]), np.asarray(npz["labels"])
    except FileNotFoundError:
        raise WorkloadConfigError(f"{path}: dataset file not found") from None
    except Exception as exc:  # noqa: BLE001 - bad zip, missing key, pickled data...
        raise WorkloadConfigError(f"{path}: not a digits dataset .npz with 'images' and 'labels' "
                                  f"({type(exc).__name__}: {exc})") from None
    if (images.ndim != 2 or images.shape[1] != N_FEATURES or labels.shape != (images.shape[0],)
            or images.shape[0] == 0 or not np.issubdtype(labels.dtype, np.integer)):
        raise WorkloadConfigError(f"{path}: expected images [N,{N_FEATURES}] and integer labels [N], "
                                  f"got {images.shape} / {labels.shape} {labels.dtype}")
    return np.ascontiguousarray(images, dtype=np.float32), labels.astype(np.int64)


class ReferenceDigits(Workload):
    benchmark = "reference-digits"
    #: the checker benchmark of the same task, for the open division's model_mapping.json
    model_mapping = "resnet"
    mlperf_model = "resnet50"
    backends = ("onnxruntime", "torch")
    #: where the package data lives (tests may point a subclass elsewhere)
    data_dir: Path = DATA_DIR

    def __init__(self, spec: Any) -> None:
        super().__init__(spec)
        self._backend: Backend | None = None
        self._images: np.ndarray | None = None
        self._labels: np.ndarray | None = None
        self._facts: dict[str, Any] = {}

    def _load_dataset(self, sums: dict[str, str] | None) -> None:
        if self.spec.dataset_path:
            path = Path(self.spec.dataset_path)
            digest = None
        else:
            path = self.data_dir / EVAL_FILE
            digest = verify_file(path, sums or read_sha256sums(self.data_dir / SUMS_FILE), self.data_dir / SUMS_FILE)
        self._images, self._labels = load_eval_set(path)
        self._facts.update(dataset=str(path), dataset_sha256=digest or sha256_file(path),
                           dataset_size=int(self._labels.shape[0]))

    def load(self) -> None:
        spec = self.spec
        check_options(spec, self.benchmark, ())
        if spec.backend not in self.backends:
            raise WorkloadConfigError(f"workload.backend: {self.benchmark} runs on "
                                      f"{' or '.join(self.backends)}, not {spec.backend!r}")
        sums_file = self.data_dir / SUMS_FILE
        sums = read_sha256sums(sums_file)
        if spec.model_path:
            model = Path(spec.model_path)
            if not model.is_file():
                raise WorkloadConfigError(f"{model}: model file not found (workload.model_path)")
            digest = sha256_file(model)
        else:
            model = self.data_dir / MODEL_FILES[spec.backend]
            digest = verify_file(model, sums, sums_file)
        self._load_dataset(sums)
        backend = make_backend(spec.backend, spec.device, int_option(spec, "threads", None, minimum=1))
        backend.load(model)
        self._backend = backend
        probe = np.zeros((1, N_FEATURES), dtype=np.float32)
        try:
            out = backend.run(probe)
        except Exception as exc:  # noqa: BLE001
            raise WorkloadConfigError(f"{model}: the model does not accept input [N,{N_FEATURES}] ({exc})") from None
        if np.shape(out) != (1, N_CLASSES):
            raise WorkloadConfigError(f"{model}: expected output [N,{N_CLASSES}] logits, got shape {np.shape(out)}")
        self._facts.update(model=str(model), model_sha256=digest, model_verified=not spec.model_path)

    @property
    def dataset_size(self) -> int:
        return EVAL_SIZE if self._labels is None else int(self._labels.shape[0])

    @property
    def performance_sample_count(self) -> int:
        return self.dataset_size

    def load_samples(self, indices: Sequence[int]) -> None:
        """Nothing to do: the whole eval set (92 KB) stays in memory."""

    def unload_samples(self, indices: Sequence[int]) -> None:
        """Nothing to do (see :meth:`load_samples`)."""

    def logits(self, indices: Sequence[int]) -> np.ndarray:
        assert self._backend is not None and self._images is not None, "load() first"
        images, size = self._images, self.spec.batch_size
        parts = [self._backend.run(images[np.asarray(c, dtype=np.int64)]) for c in chunks(indices, size)]
        return np.concatenate(parts) if len(parts) != 1 else parts[0]

    def predict(self, indices: Sequence[int]) -> list[bytes]:
        return class_payloads(np.argmax(self.logits(indices), axis=1))

    def accuracy(self, results: dict[int, bytes]) -> AccuracyResult:
        if self._labels is None:
            self._load_dataset(None)
        assert self._labels is not None
        return classification_accuracy(results, self._labels)

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"workload": self.benchmark, "model_mapping": self.model_mapping, **self._facts}
        if self._backend is not None:
            d.update(self._backend.describe())
        return d

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None
