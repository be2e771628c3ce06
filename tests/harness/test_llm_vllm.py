"""The vllm backend, tested by what it asks vLLM to generate. vLLM needs CUDA and cannot be installed here, so a
stand-in ``vllm`` module (this file: it records every call and streams made-up tokens) takes its place in
``sys.modules``; the harness, LoadGen and the backend are the real ones. What is checked is the backend's side of
vLLM's API (mlcommons/inference language/llama3.1-8b/SUT_VLLM.py uses the same): ``LLM(model, dtype,
tensor_parallel_size, ...)`` and ``LLM.generate([TokensPrompt(prompt_token_ids=...)], SamplingParams(temperature=0,
top_p=1, top_k=1, seed=42, max_tokens, min_tokens))`` for Offline; ``AsyncLLMEngine.from_engine_args(
AsyncEngineArgs(...))`` and ``engine.generate(prompt, params, request_id)`` (cumulative outputs) per sample for
Server. scripts/device/llm_vllm.sh runs the real thing on a GPU."""

from __future__ import annotations

import json
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlrepro.harness.core import run_harness
from mlrepro.harness.spec import parse_spec
from mlrepro.harness.workloads.llm import HERE, benchmarks

EOS = 2
CALLS: dict[str, list[Any]] = {}


class _Tokenizer:
    eos_token_id = EOS

    def __len__(self) -> int:
        return 49152

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return " ".join(f"w{i}" for i in ids if not (skip_special_tokens and i == EOS))


@dataclass
class _Completion:
    token_ids: list[int]


@dataclass
class _Output:
    outputs: list[_Completion]
    finished: bool = False


def _answer(prompt: dict[str, Any], params: Any) -> list[int]:
    ids = prompt["prompt_token_ids"]
    return [100 + (ids[-1] + k) % 50 for k in range(params.max_tokens - 1)] + [EOS]


@dataclass
class SamplingParams:
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    seed: int | None = None
    max_tokens: int = 16
    min_tokens: int = 0


class LLM:
    def __init__(self, **kw: Any) -> None:
        CALLS.setdefault("LLM", []).append(kw)

    def get_tokenizer(self) -> _Tokenizer:
        return _Tokenizer()

    def generate(self, prompts: list[dict[str, Any]], params: SamplingParams, use_tqdm: bool = True) -> list[_Output]:
        CALLS.setdefault("LLM.generate", []).append((prompts, params))
        return [_Output([_Completion(_answer(p, params))], True) for p in prompts]


@dataclass
class AsyncEngineArgs:
    kw: dict[str, Any] = field(default_factory=dict)

    def __init__(self, **kw: Any) -> None:
        self.kw = kw


class AsyncLLMEngine:
    @classmethod
    def from_engine_args(cls, args: AsyncEngineArgs) -> AsyncLLMEngine:
        CALLS.setdefault("AsyncLLMEngine", []).append(args.kw)
        return cls()

    async def get_tokenizer(self) -> _Tokenizer:
        return _Tokenizer()

    async def generate(self, prompt: dict[str, Any], params: SamplingParams, request_id: str) -> Any:
        CALLS.setdefault("engine.generate", []).append((prompt, params, request_id))
        tokens = _answer(prompt, params)
        for k in range(1, len(tokens) + 1):          # cumulative outputs, as vLLM's default output kind
            yield _Output([_Completion(tokens[:k])], k == len(tokens))


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    CALLS.clear()
    mod = types.ModuleType("vllm")
    mod.__version__ = "stand-in"
    mod.LLM, mod.SamplingParams, mod.AsyncLLMEngine, mod.AsyncEngineArgs = LLM, SamplingParams, AsyncLLMEngine, \
        AsyncEngineArgs
    inputs = types.ModuleType("vllm.inputs")
    inputs.TokensPrompt = lambda prompt_token_ids: {"prompt_token_ids": prompt_token_ids}
    mod.inputs = inputs
    monkeypatch.setitem(sys.modules, "vllm", mod)
    monkeypatch.setitem(sys.modules, "vllm.inputs", inputs)
    return CALLS


def _spec(scenario: str, settings: dict[str, float], tmp_path: Path) -> Any:
    model = tmp_path / "hf"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text("{}")
    return parse_spec({"run_id": f"vllm-{scenario}", "scenario": scenario, "mode": "performance",
                       "workload": {"name": "llama3.1-8b", "backend": "vllm", "device": "cuda", "batch_size": 8,
                                    "model_path": str(model), "options": {"tensor_parallel_size": 2},
                                    "dataset_path": str(HERE / benchmarks()["smollm2-135m-demo"]["dataset"]["packaged"])},
                       "settings": settings})


def test_offline_uses_the_batch_api_with_the_reference_sampling(fake_vllm: dict, tmp_path: Path) -> None:
    result = run_harness(_spec("Offline", {"min_duration_ms": 0, "min_query_count": 32}, tmp_path), tmp_path,
                         log=lambda m: None)
    assert result.exit_code == 0, result.error
    (llm_kw,) = fake_vllm["LLM"]
    assert llm_kw == {"model": str(tmp_path / "hf"), "dtype": "auto", "tensor_parallel_size": 2,
                      "gpu_memory_utilization": 0.9}
    assert "AsyncLLMEngine" not in fake_vllm
    # the harness's untimed warm-up (2 tokens, one sample) starts each LoadGen test: the probe's and the run's
    warmups = [c for c in fake_vllm["LLM.generate"] if c[1].max_tokens == 2]
    calls = [c for c in fake_vllm["LLM.generate"] if c[1].max_tokens != 2]
    assert len(warmups) == 2 and all(len(p) == 1 for p, _ in warmups)
    dataset = json.loads((HERE / benchmarks()["smollm2-135m-demo"]["dataset"]["packaged"]).read_text())
    for prompts, params in calls:
        assert params == SamplingParams(temperature=0.0, top_p=1, top_k=1, seed=42, max_tokens=128, min_tokens=1)
        assert all(p["prompt_token_ids"] in [r["tok_input"] for r in dataset] for p in prompts)
    assert max(len(p) for p, _ in calls) == 8                  # batches of the spec's batch size
    tokens = result.record["subruns"][0]["results"]["tokens"]
    assert tokens["tokens_per_second"] > 0


def test_server_streams_one_request_per_sample(fake_vllm: dict, tmp_path: Path) -> None:
    spec = _spec("Server", {"min_duration_ms": 0, "min_query_count": 480, "server_target_qps": 2000}, tmp_path)
    result = run_harness(spec, tmp_path, log=lambda m: None)
    assert result.record["subruns"][0]["validity"] == "VALID", result.error
    assert len(fake_vllm["AsyncLLMEngine"]) == 1 and "LLM" not in fake_vllm
    gens = [c for c in fake_vllm["engine.generate"] if c[1].max_tokens != 2]
    ids = [rid for _, _, rid in gens]
    assert len(ids) == len(set(ids)) >= 480                     # a request per sample, unique request ids
    assert all(p == SamplingParams(0.0, 1, 1, 42, 128, 1) for _, p, _ in gens)
    entries = json.loads((tmp_path / spec.run_id / "Server/performance/run_1/mlperf_log_accuracy.json").read_text())
    tokens = result.record["subruns"][0]["results"]["tokens"]
    assert tokens["completed_tokens_per_second"] > 0 and tokens["tpot_ns"]["mean"] > 0
    for e in entries:                                            # sampled responses, if any: 128 tokens, EOS last
        data = np.frombuffer(bytes.fromhex(e["data"]), "<i8")
        assert len(data) == 128 and data[-1] == EOS
