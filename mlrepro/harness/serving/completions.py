"""``POST /v1/completions``, streamed: the request body and the decoding of one chunk.

Body (the OpenAI API's "Create completion", plus vLLM's extensions in its ``CompletionRequest``):
``{"model", "prompt", "max_tokens", "stream": true}``, where ``prompt`` is the text or a list of token ids
(vLLM and SGLang take ids; ``transformers serve`` answers "prompt must be a string"); with
``include_usage`` ``"stream_options": {"include_usage": true}`` (the OpenAI API: a last chunk with
``choices: []`` and ``usage``); with ``return_token_ids`` vLLM's ``"return_token_ids": true`` (each stream
choice then carries ``token_ids``, the delta tokens of that chunk; vLLM
``CompletionResponseStreamChoice.token_ids``). The request's ``extra`` is merged in last.

Chunk: ``{"choices": [{"index": 0, "text": "...", "finish_reason": null|"stop"|"length", "token_ids":
[...]?}], "usage": null|{"completion_tokens": N, ...}}``. Only ``n = 1`` is supported: a choice with another
index is a :class:`~mlrepro.harness.serving.errors.MalformedStream`, as is a chunk of the wrong shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlrepro.harness.serving.errors import MalformedStream
from mlrepro.harness.serving.schema import ChunkDelta

PATH = "/completions"


def build_body(model: str, prompt: str | Sequence[int], max_tokens: int, *, include_usage: bool = True,
               return_token_ids: bool = False, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON body of a streamed completion request (see the module docstring)."""
    body: dict[str, Any] = {"model": model, "prompt": prompt if isinstance(prompt, str) else list(prompt),
                            "max_tokens": max_tokens, "stream": True}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    if return_token_ids:
        body["return_token_ids"] = True
    if extra:
        body.update(extra)
    return body


def usage_tokens(obj: dict[str, Any]) -> int | None:
    """``usage.completion_tokens`` of a chunk, or None. Raises MalformedStream for a non-integer count."""
    usage = obj.get("usage")
    if not usage:
        return None
    n = usage.get("completion_tokens") if isinstance(usage, dict) else None
    if n is None:
        return None
    if type(n) is not int or n < 0:
        raise MalformedStream(f"usage.completion_tokens is not a count: {n!r}")
    return n


def token_ids_of(choice: dict[str, Any]) -> list[int] | None:
    """A choice's ``token_ids`` (vLLM), or None. Raises MalformedStream for anything but a list of ints."""
    ids = choice.get("token_ids")
    if ids is None:
        return None
    if not isinstance(ids, list) or not all(type(t) is int for t in ids):
        raise MalformedStream(f"token_ids is not a list of integers: {str(ids)[:60]}")
    return ids


def only_choice(obj: Any) -> dict[str, Any] | None:
    """The single choice of a chunk, None for a usage-only chunk. Raises MalformedStream otherwise."""
    if not isinstance(obj, dict):
        raise MalformedStream(f"chunk is not a JSON object: {str(obj)[:60]}")
    choices = obj.get("choices")
    if choices is None:
        if "usage" in obj:
            return None
        raise MalformedStream(f"chunk has no choices: {str(obj)[:80]}")
    if not isinstance(choices, list) or len(choices) > 1:
        raise MalformedStream(f"chunk's choices is not a list of one choice: {str(choices)[:80]}")
    if not choices:
        return None
    choice = choices[0]
    if not isinstance(choice, dict) or choice.get("index", 0) != 0:
        raise MalformedStream(f"chunk's choice is not choice 0 (only n = 1 is supported): {str(choice)[:80]}")
    return choice


def decode_chunk(obj: Any) -> ChunkDelta:
    """What one completion chunk adds (see the module docstring). Raises MalformedStream."""
    choice = only_choice(obj)
    n = usage_tokens(obj)
    if choice is None:
        return ChunkDelta(completion_tokens=n)
    text = choice.get("text")
    if text is None:
        text = ""
    elif not isinstance(text, str):
        raise MalformedStream(f"choice text is not a string: {str(text)[:60]}")
    ids = token_ids_of(choice)
    return ChunkDelta(text=text, token_ids=ids, finish_reason=choice.get("finish_reason"), completion_tokens=n,
                      has_content=bool(text) or bool(ids))
