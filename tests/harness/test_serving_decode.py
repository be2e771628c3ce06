"""Request bodies and chunk decoding per API (completions, chat) and the typed errors of error bodies/events."""

from __future__ import annotations

import pytest

from mlrepro.harness.serving import chat, completions
from mlrepro.harness.serving.client import ClientConfig
from mlrepro.harness.serving.errors import (
    ErrorKind,
    HTTPStatusError,
    MalformedStream,
    RateLimited,
    error_from_body,
    error_in_event,
)


def test_completion_bodies_token_ids_or_text() -> None:
    b = completions.build_body("m", [1, 2, 3], 128, return_token_ids=True, extra={"temperature": 0})
    assert b == {"model": "m", "prompt": [1, 2, 3], "max_tokens": 128, "stream": True,
                 "stream_options": {"include_usage": True}, "return_token_ids": True, "temperature": 0}
    b = completions.build_body("m", "text", 8, include_usage=False)
    assert b == {"model": "m", "prompt": "text", "max_tokens": 8, "stream": True}
    b = chat.build_body("m", "hi", 8)
    assert b["messages"] == [{"role": "user", "content": "hi"}] and "return_token_ids" not in b


def test_completion_chunks() -> None:
    d = completions.decode_chunk({"choices": [{"index": 0, "text": " a", "token_ids": [5, 6]}]})
    assert (d.text, d.token_ids, d.has_content) == (" a", [5, 6], True)
    d = completions.decode_chunk({"choices": [{"index": 0, "text": "", "finish_reason": "length"}]})
    assert not d.has_content and d.finish_reason == "length"
    d = completions.decode_chunk({"choices": [], "usage": {"completion_tokens": 9, "prompt_tokens": 3}})
    assert d.completion_tokens == 9 and not d.has_content
    # a chunk with token ids but no text yet (a partial UTF-8 character held back) carries a token
    assert completions.decode_chunk({"choices": [{"index": 0, "text": "", "token_ids": [7]}]}).has_content


def test_chat_role_only_chunk_is_not_content() -> None:
    assert not chat.decode_chunk({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}).has_content
    d = chat.decode_chunk({"choices": [{"index": 0, "delta": {"content": "Hi"}}]})
    assert d.text == "Hi" and d.has_content
    d = chat.decode_chunk({"choices": [{"index": 0, "delta": {"reasoning_content": "hmm"}}]})
    assert d.has_content and d.text == ""


@pytest.mark.parametrize("obj", [
    [1, 2], {"id": "x"}, {"choices": [{"index": 1, "text": "a"}]}, {"choices": "a"},
    {"choices": [{"index": 0, "text": 5}]}, {"choices": [{"index": 0, "text": "a", "token_ids": ["x"]}]},
    {"choices": [], "usage": {"completion_tokens": -1}},
])
def test_chunks_of_the_wrong_shape_are_malformed(obj: object) -> None:
    with pytest.raises(MalformedStream):
        completions.decode_chunk(obj)


def test_in_band_errors_both_shapes() -> None:
    e = error_in_event({"error": {"message": "boom", "type": "InternalServerError", "code": 500}})
    assert e is not None and (e.code, e.error_type, e.kind) == (500, "InternalServerError", ErrorKind.ERROR_EVENT)
    e = error_in_event({"object": "error", "message": "bad", "type": "BadRequestError", "code": 400})
    assert e is not None and e.code == 400 and "bad" in e.reason
    assert error_in_event({"choices": []}) is None


def test_error_bodies() -> None:
    e = error_from_body(429, b'{"error": {"message": "slow down", "type": "RateLimitError", "code": 429}}', "3")
    assert isinstance(e, RateLimited) and e.kind is ErrorKind.HTTP_429 and e.retry_after == "3"
    e = error_from_body(400, b'{"detail": "prompt must be a string."}')
    assert isinstance(e, HTTPStatusError) and e.kind is ErrorKind.HTTP_4XX and "prompt must be a string" in e.reason
    e = error_from_body(503, b"<html>\n  upstream\n  gone</html>")
    assert e.kind is ErrorKind.HTTP_5XX and "\n" not in str(e)


def test_config_rules() -> None:
    with pytest.raises(ValueError, match="text prompts"):
        ClientConfig("http://h/v1", "m", api="chat", prompt_format="token_ids")
    with pytest.raises(ValueError, match="token count must come from the server"):
        ClientConfig("http://h/v1", "m", include_usage=False)
    c = ClientConfig.for_engine("vllm", "http://h:8000/v1/", "m")
    assert (c.prompt_format, c.return_token_ids, c.url) == ("token_ids", True, "http://h:8000/v1/completions")
    assert ClientConfig.for_engine("transformers", "http://h/v1", "m", api="chat").url == "http://h/v1/chat/completions"
