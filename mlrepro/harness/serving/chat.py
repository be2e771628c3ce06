"""``POST /v1/chat/completions``, streamed: the request body and the decoding of one chunk.

Body (the OpenAI API's "Create chat completion"): ``{"model", "messages": [{"role": "user", "content":
TEXT}], "max_tokens", "stream": true}`` (``max_tokens``: deprecated by OpenAI for ``max_completion_tokens``
but accepted by OpenAI, vLLM, SGLang and ``transformers serve`` alike), ``stream_options`` and vLLM's
``return_token_ids`` as for completions. Chat prompts are text (a chat template is applied by the server).

Chunk: ``{"choices": [{"index": 0, "delta": {"role"?, "content"?, "reasoning_content"?|"reasoning"?},
"finish_reason", "token_ids"?}], "usage"?}``. The first chunk of OpenAI and vLLM streams is role-only
(``{"role": "assistant", "content": ""}``): it has no content and is not the first token. Reasoning text
(vLLM's ``reasoning_content``/``reasoning``) is output: it counts as content for the first token, but only
``content`` goes into the result's text.
"""

from __future__ import annotations

from typing import Any

from mlrepro.harness.serving.completions import only_choice, token_ids_of, usage_tokens
from mlrepro.harness.serving.errors import MalformedStream
from mlrepro.harness.serving.schema import ChunkDelta

PATH = "/chat/completions"


def build_body(model: str, prompt: str, max_tokens: int, *, include_usage: bool = True,
               return_token_ids: bool = False, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON body of a streamed chat completion with one user message ``prompt``."""
    if not isinstance(prompt, str):
        raise TypeError("chat completions take a text prompt")
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": prompt}],
                            "max_tokens": max_tokens, "stream": True}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    if return_token_ids:
        body["return_token_ids"] = True
    if extra:
        body.update(extra)
    return body


def decode_chunk(obj: Any) -> ChunkDelta:
    """What one chat chunk adds (see the module docstring). Raises MalformedStream."""
    choice = only_choice(obj)
    n = usage_tokens(obj)
    if choice is None:
        return ChunkDelta(completion_tokens=n)
    delta = choice.get("delta") or {}
    if not isinstance(delta, dict):
        raise MalformedStream(f"choice delta is not an object: {str(delta)[:60]}")
    text = delta.get("content") or ""
    reasoning = delta.get("reasoning_content") or delta.get("reasoning") or ""
    if not isinstance(text, str) or not isinstance(reasoning, str):
        raise MalformedStream(f"delta content is not a string: {str(delta)[:60]}")
    ids = token_ids_of(choice)
    return ChunkDelta(text=text, token_ids=ids, finish_reason=choice.get("finish_reason"), completion_tokens=n,
                      has_content=bool(text) or bool(reasoning) or bool(ids))
