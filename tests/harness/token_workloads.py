"""A test-only LLM with a known token schedule: a real TokenWorkload (no model), so that what LoadGen logs can
be checked against what the SUT did, exactly and on any machine.

``scheduled-llm`` options: ``dataset_size`` (default 16), ``n_tokens`` (tokens per output, default 5),
``first_s`` (seconds before the first token, default 0.004), ``token_s`` (seconds per later token, default 0.002).
Sample ``i`` outputs the token ids ``[1000 + i, 1001 + i, ...]`` (``n_tokens`` of them).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from mlrepro.harness.workloads.base import AccuracyResult, TokenCallback, TokenWorkload


def tokens_of(idx: int, n: int) -> np.ndarray:
    return np.arange(1000 + idx, 1000 + idx + n, dtype=np.int64)


class ScheduledLLM(TokenWorkload):
    benchmark = "scheduled-llm"
    mlperf_model = "llama3_1-8b"
    backends = ("none", "transformers")

    def load(self) -> None:
        o = self.spec.options
        self._size = int(o.get("dataset_size", 16))
        self.n = int(o.get("n_tokens", 5))
        self.first_s = float(o.get("first_s", 0.004))
        self.token_s = float(o.get("token_s", 0.002))
        self.batches: list[int] = []          # the batch sizes generate() was handed

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

    def generate(self, indices: Sequence[int], on_first: TokenCallback | None, on_done: TokenCallback) -> None:
        self.batches.append(len(indices))
        time.sleep(self.first_s)
        for row, i in enumerate(indices):
            if on_first is not None:
                on_first(row, tokens_of(i, self.n)[:1])
        time.sleep(self.token_s * (self.n - 1))
        for row, i in enumerate(indices):
            on_done(row, tokens_of(i, self.n))

    def accuracy(self, results: dict[int, bytes]) -> AccuracyResult:
        good = sum(np.array_equal(np.frombuffer(b, dtype="<i8"), tokens_of(i, self.n)) for i, b in results.items())
        return AccuracyResult("exact", 100.0 * good / max(1, len(results)))

    def describe(self) -> dict[str, Any]:
        return {"framework": "scheduled", "n_tokens": self.n}


class ScheduledDemoLLM(ScheduledLLM):
    """The same LLM with bounds of its own, like the SmolLM2 demo: an open-division model whose TTFT/TPOT bounds
    the harness calibrates on the system (``latency_bounds = "calibrated"``)."""

    benchmark = "scheduled-demo-llm"
    latency_bounds = "calibrated"
