"""Produce genuine harness run directories for the results tests (run as a script in a subprocess).

``python make_runs.py OUT`` runs the real harness (``mlrepro.harness.core.run_harness``, real LoadGen) with the
tiny workload below on a few specs and writes ``OUT/<run_id>/`` for each; it prints a JSON map
run_id -> exit code. A subprocess keeps LoadGen's per-process state out of the pytest process.
"""

from __future__ import annotations

import json
import struct
import sys
from collections.abc import Sequence
from typing import Any

from mlrepro.harness.workloads.base import AccuracyResult, Workload, WorkloadError

PROFILE_HASH = "sha256:" + "cd" * 32


class TinyClassifier(Workload):
    """Arithmetic labels, wrong on every 10th sample (accuracy 90%)."""

    benchmark = "tiny-classifier"
    model_mapping = "resnet"
    mlperf_model = "resnet50"
    backends = ("none",)

    def load(self) -> None:
        o = self.spec.options
        self._size = int(o.get("dataset_size", 64))
        self._fail_after = o.get("fail_after")
        self._calls = 0

    @property
    def dataset_size(self) -> int:
        return self._size

    @property
    def performance_sample_count(self) -> int:
        return self._size

    def load_samples(self, indices: Sequence[int]) -> None:
        pass

    def unload_samples(self, indices: Sequence[int]) -> None:
        pass

    def predict(self, indices: Sequence[int]) -> list[bytes]:
        self._calls += 1
        if self._fail_after is not None and self._calls > int(self._fail_after):
            raise WorkloadError("tiny accelerator fell off the bus")
        return [struct.pack("<i", (i * 7) % 10 if i % 10 else 99) for i in indices]

    def accuracy(self, results: dict[int, bytes]) -> AccuracyResult:
        good = sum(1 for i, b in results.items() if struct.unpack_from("<i", b)[0] == (i * 7) % 10)
        return AccuracyResult("accuracy", 100.0 * good / max(1, len(results)))

    def describe(self) -> dict[str, Any]:
        # like the reference workload, describe() names the checker benchmark it maps to
        return {"framework": "none", "model_sha256": "0" * 64, "model_mapping": self.model_mapping}


class _EP:
    def __init__(self, name: str, obj: Any) -> None:
        self.name, self.value, self._obj = name, f"{__name__}:{obj.__name__}", obj

    def load(self) -> Any:
        return self._obj


def install() -> None:
    from mlrepro.harness import registry

    original = registry._entry_points
    registry._entry_points = lambda: {**original(), "tiny": _EP("tiny", TinyClassifier)}


# no targets: the harness calibrates them on whatever machine runs the tests
OFFLINE_OK = {"min_duration_ms": 100, "min_query_count": 1}
SINGLE_OK = {"min_duration_ms": 200, "min_query_count": 100}
# a pinned target is used as given: 22 samples finish long before 2 s on any machine -> INVALID (no retry)
OFFLINE_INVALID = {"min_duration_ms": 2000, "min_query_count": 1, "offline_expected_qps": 10}


def specs() -> list[dict[str, Any]]:
    def spec(run_id: str, scenario: str, mode: str, settings: dict[str, float], size: int = 600,
             **options: Any) -> dict[str, Any]:
        return {"run_id": run_id, "scenario": scenario, "mode": mode, "settings": settings,
                "workload": {"name": "tiny", "backend": "none", "batch_size": 16,
                             "options": {"dataset_size": size, **options}},
                "profile_name": "x86-cpu", "profile_hash": PROFILE_HASH,
                "image": "localhost/mlrepro/x86-cpu:test"}

    return [
        spec("run-offline-sub", "Offline", "submission", OFFLINE_OK),          # VALID, perf + accuracy
        spec("run-single-perf", "SingleStream", "performance", SINGLE_OK),      # merged with the next one
        spec("run-single-acc", "SingleStream", "accuracy", SINGLE_OK),
        spec("run-offline-invalid", "Offline", "submission", OFFLINE_INVALID),  # INVALID
        spec("run-offline-failed", "Offline", "performance", OFFLINE_OK, fail_after=3),   # exit 1
        spec("run-multi-perf", "MultiStream", "performance",                    # no accuracy run: incomplete
             {"min_duration_ms": 200}),
    ]


def main(out: str) -> int:
    install()
    from mlrepro.harness.core import run_harness
    from mlrepro.harness.spec import parse_spec

    codes = {}
    for s in specs():
        result = run_harness(parse_spec(s), out, log=lambda m: None)
        codes[s["run_id"]] = result.exit_code
    print(json.dumps(codes))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
