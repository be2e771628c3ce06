#!/usr/bin/env python3
"""Train the reference-digits model reproducibly and write the workload's package data.

Data: scikit-learn's bundled handwritten digits (``sklearn.datasets.load_digits``: 1,797 8x8 images, pixel
values 0..16, shipped inside scikit-learn, no download). Pixels are scaled by 1/16 (exact in binary floating
point). Split: deterministic and unshuffled, the first 1,437 images train, the last 360 are the eval set.

Model: an MLP 64 -> 64 (ReLU) -> 10 in float32, trained with mini-batch Adam (batch 32, 40 epochs, shuffled
each epoch) on the mean squared error against one-hot targets. (MSE rather than softmax cross-entropy keeps the
training free of exp/log, whose results differ between libm/SIMD implementations; it also scored better here.)

Bit-exact reproducibility: the training uses only IEEE-754 operations that are correctly rounded everywhere
(+, -, *, /, sqrt, max) in an order this script fixes itself: a matrix product is an array of exact element-wise
products followed by a pairwise halving sum written out here (no BLAS, no numpy reduction whose order could depend
on the CPU or the numpy version, no FMA, no pow/exp/log). The initial weights and the shuffles come from a
hand-written SplitMix64 generator, not from numpy's RNG streams. Output files carry no timestamps: the ``.npz``
archives are written with a fixed zip date and no compression, the ONNX model has fixed IR version and producer
fields. Running the script twice (or on another machine) therefore gives byte-identical files; the test suite
re-runs it and compares against ``SHA256SUMS``. The versions used are recorded in ``reference_digits.json``.

Outputs (default ``mlrepro/harness/workloads/data``):
  reference_digits.onnx          input "input" float32 [N,64], output "logits" float32 [N,10], opset 17
  reference_digits_weights.npz   the same float32 initializers (fc1.weight [64,64] (in,out), fc1.bias, fc2.*)
  digits_eval.npz                images float32 [360,64] (scaled), labels int64 [360]
  SHA256SUMS                     sha256 of the three files above (``sha256sum -c`` format)
  reference_digits.json          accuracy, seed, split, hyper-parameters, tool versions (not hashed)

Needs numpy, scikit-learn and onnx (dev dependencies; the harness image needs none of them but numpy).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import platform
import sys
import zipfile
from pathlib import Path

import numpy as np

SEED = 20240917
N_TRAIN = 1437
HIDDEN = 64
EPOCHS = 40
BATCH = 32
LR = 0.003
BETA1, BETA2, EPS = 0.9, 0.999, 1e-8
OPSET = 17
IR_VERSION = 8            # the IR version that goes with opset 17; fixed so the bytes do not depend on onnx
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "mlrepro" / "harness" / "workloads" / "data"

MODEL_FILE = "reference_digits.onnx"
WEIGHTS_FILE = "reference_digits_weights.npz"
EVAL_FILE = "digits_eval.npz"
SUMS_FILE = "SHA256SUMS"
META_FILE = "reference_digits.json"

F32 = np.float32


# ---------------------------------------------------------------- deterministic arithmetic helpers
class SplitMix64:
    """A tiny, fully specified PRNG (SplitMix64): its stream never changes with the numpy version."""

    MASK = (1 << 64) - 1

    def __init__(self, seed: int) -> None:
        self.state = seed & self.MASK

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & self.MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & self.MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & self.MASK
        return z ^ (z >> 31)

    def uniform(self, count: int) -> np.ndarray:
        """``count`` doubles in [0, 1) (53-bit mantissas)."""
        return np.array([(self.next() >> 11) * (1.0 / (1 << 53)) for _ in range(count)], dtype=np.float64)

    def permutation(self, n: int) -> np.ndarray:
        """Fisher-Yates shuffle of range(n) (integer arithmetic only)."""
        perm = list(range(n))
        for i in range(n - 1, 0, -1):
            j = self.next() % (i + 1)
            perm[i], perm[j] = perm[j], perm[i]
        return np.array(perm, dtype=np.int64)


def tree_sum(a: np.ndarray, axis: int) -> np.ndarray:
    """Sum over ``axis`` by explicit pairwise halving (an odd last slice is carried to the next level): the
    order of the additions is fixed by this code, not by BLAS, SIMD width or numpy's reduction loops."""
    a = np.moveaxis(a, axis, 0)
    while a.shape[0] > 1:
        half = a.shape[0] // 2
        s = a[:half] + a[half:2 * half]
        a = np.concatenate([s, a[2 * half:]]) if a.shape[0] % 2 else s
    return a[0]


def matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x [n,k] @ w [k,m]: exact element-wise products, then :func:`tree_sum` over k (no BLAS, no FMA)."""
    return tree_sum(x[:, :, None] * w[None, :, :], axis=1)


def matmul_tn(x: np.ndarray, d: np.ndarray) -> np.ndarray:
    """x.T @ d for x [n,k], d [n,m], summing over the n samples with :func:`tree_sum`."""
    return tree_sum(x[:, :, None] * d[:, None, :], axis=0)


# ---------------------------------------------------------------- data, training
def load_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (np.asarray(digits.data, dtype=np.float64) / 16.0).astype(F32)     # k/16 is exact in float32
    y = np.asarray(digits.target, dtype=np.int64)
    if x.shape != (1797, 64) or y.shape != (1797,):
        raise SystemExit(f"unexpected digits data shape {x.shape}")
    return x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:]


def init_params(rng: SplitMix64) -> dict[str, np.ndarray]:
    """Glorot-uniform float32 weights, zero biases. Weights are stored (in, out) as ONNX MatMul wants."""
    params: dict[str, np.ndarray] = {}
    for name, fan_in, fan_out in (("fc1", 64, HIDDEN), ("fc2", HIDDEN, 10)):
        limit = math.sqrt(6.0 / (fan_in + fan_out))                        # sqrt is correctly rounded
        u = rng.uniform(fan_in * fan_out)
        params[f"{name}.weight"] = ((u * 2.0 - 1.0) * limit).astype(F32).reshape(fan_in, fan_out)
        params[f"{name}.bias"] = np.zeros(fan_out, dtype=F32)
    return params


def forward(params: dict[str, np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h = np.maximum(matmul(x, params["fc1.weight"]) + params["fc1.bias"], F32(0))
    return h, matmul(h, params["fc2.weight"]) + params["fc2.bias"]


def train(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Mini-batch Adam on the mean squared error against one-hot targets, all in float32."""
    rng = SplitMix64(SEED)
    params = init_params(rng)
    target = np.zeros((x.shape[0], 10), dtype=F32)
    target[np.arange(x.shape[0]), y] = 1
    m = {k: np.zeros_like(p) for k, p in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    b1, b2, lr, eps, one = F32(BETA1), F32(BETA2), F32(LR), F32(EPS), F32(1)
    b1t, b2t = F32(1), F32(1)                       # beta**t by repeated multiplication (pow() is not exact)
    for _epoch in range(EPOCHS):
        perm = rng.permutation(x.shape[0])
        for start in range(0, x.shape[0], BATCH):
            idx = perm[start:start + BATCH]
            xb, tb = x[idx], target[idx]
            h, out = forward(params, xb)
            d_out = (out - tb) * F32(2.0 / (xb.shape[0] * 10))   # d/d(out) of mean((out - target)^2)
            d_h = np.where(h > 0, matmul(d_out, params["fc2.weight"].T), F32(0))
            grads = {
                "fc2.weight": matmul_tn(h, d_out), "fc2.bias": tree_sum(d_out, axis=0),
                "fc1.weight": matmul_tn(xb, d_h), "fc1.bias": tree_sum(d_h, axis=0),
            }
            b1t, b2t = b1t * b1, b2t * b2
            for k, g in grads.items():
                m[k] = b1 * m[k] + (one - b1) * g
                v[k] = b2 * v[k] + (one - b2) * (g * g)
                params[k] = params[k] - lr * (m[k] / (one - b1t)) / (np.sqrt(v[k] / (one - b2t)) + eps)
    return params


def accuracy(params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    """Percent correct, computed with the same fixed-order arithmetic."""
    return float(np.mean(np.argmax(forward(params, x)[1], axis=1) == y) * 100.0)


# ---------------------------------------------------------------- deterministic file writers
def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An ``np.load``-compatible .npz with a fixed member order, fixed zip date and no compression."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arrays[name]), version=(1, 0),
                                      allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue())
    return buf.getvalue()


def onnx_bytes(params: dict[str, np.ndarray]) -> bytes:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(params[k], name=k) for k in sorted(params)]
    nodes = [
        helper.make_node("MatMul", ["input", "fc1.weight"], ["fc1.mm"], name="fc1_matmul"),
        helper.make_node("Add", ["fc1.mm", "fc1.bias"], ["fc1.out"], name="fc1_add"),
        helper.make_node("Relu", ["fc1.out"], ["relu1"], name="relu1"),
        helper.make_node("MatMul", ["relu1", "fc2.weight"], ["fc2.mm"], name="fc2_matmul"),
        helper.make_node("Add", ["fc2.mm", "fc2.bias"], ["logits"], name="fc2_add"),
    ]
    graph = helper.make_graph(
        nodes, "reference_digits",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="mlrepro", producer_version="1",
                              doc_string="mlrepro reference-digits MLP 64-64-10, see scripts/train_reference_model.py")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString(deterministic=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", type=Path, default=DEFAULT_OUT, help="where to write the files")
    args = ap.parse_args(argv)
    out: Path = args.out_dir
    out.mkdir(parents=True, exist_ok=True)

    x_train, y_train, x_eval, y_eval = load_data()
    params = train(x_train, y_train)
    train_acc = accuracy(params, x_train, y_train)
    eval_acc = accuracy(params, x_eval, y_eval)

    files = {
        MODEL_FILE: onnx_bytes(params),
        WEIGHTS_FILE: npz_bytes(params),
        EVAL_FILE: npz_bytes({"images": x_eval, "labels": y_eval}),
    }
    sums = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    for name, data in files.items():
        (out / name).write_bytes(data)
    (out / SUMS_FILE).write_text("".join(f"{sums[n]}  {n}\n" for n in sorted(sums)), encoding="utf-8")

    import onnx
    import sklearn

    meta = {
        "model": MODEL_FILE,
        "architecture": f"MLP 64-{HIDDEN}(ReLU)-10, float32",
        "dataset": "sklearn.datasets.load_digits (1797 8x8 images, pixels scaled by 1/16)",
        "split": {"train": f"first {N_TRAIN}", "eval": f"last {1797 - N_TRAIN}", "shuffled": False},
        "training": {"seed": SEED, "rng": "SplitMix64 (glorot-uniform init, per-epoch Fisher-Yates shuffle)",
                     "optimizer": "Adam", "loss": "mean squared error vs one-hot", "epochs": EPOCHS,
                     "batch_size": BATCH, "lr": LR, "betas": [BETA1, BETA2], "eps": EPS, "dtype": "float32",
                     "arithmetic": "fixed-order element-wise (no BLAS), see the script's docstring"},
        "train_accuracy": round(train_acc, 4),
        "eval_accuracy": round(eval_acc, 4),
        "eval_samples": int(y_eval.shape[0]),
        "sha256": sums,
        "versions": {"python": platform.python_version(), "numpy": np.__version__,
                     "scikit-learn": sklearn.__version__, "onnx": onnx.__version__},
    }
    (out / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"train accuracy: {train_acc:.3f}%  eval accuracy: {eval_acc:.3f}% ({y_eval.shape[0]} samples)")
    for name in sorted(sums):
        print(f"{sums[name]}  {out / name} ({len(files[name])} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
