"""SSE framing (mlrepro.harness.serving.sse): the WHATWG rules the OpenAI streams use, and what breaks them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlrepro.harness.serving.sse import SSEError, SSEEvent, SSEParser, is_done

STREAM = (b'data: {"a": 1}\n\n'
          b": keep-alive comment\n\n"
          b"event: message\nid: 7\ndata: line one\ndata: line two\n\n"
          b"data:no-space\r\n\r\n"
          b"retry: 10\n\n"                       # no data: not dispatched
          b"data: [DONE]\n\n")
EVENTS = [SSEEvent('{"a": 1}'), SSEEvent("line one\nline two", "message", "7"), SSEEvent("no-space", None, "7"),
          SSEEvent("[DONE]", None, "7")]


def test_events_comments_multiline_and_done() -> None:
    p = SSEParser()
    events = p.feed(STREAM)
    assert events == EVENTS
    assert is_done(events[-1]) and not is_done(events[0])
    assert p.close() == []


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_slicing_gives_the_same_events(cuts: list[int]) -> None:
    p = SSEParser()
    bounds = [0, *sorted(cuts), len(STREAM)]
    got = [e for a, b in zip(bounds, bounds[1:]) for e in p.feed(STREAM[a:b])]
    assert got == EVENTS


def test_cr_line_ends_split_across_reads() -> None:
    p = SSEParser()
    assert p.feed(b"data: x\r") == []
    assert p.feed(b"\ndata: y\r") == []
    assert p.feed(b"\n\r\n") == [SSEEvent("x\ny")]
    assert p.feed(b"data: z\r\r") == []         # a lone CR at the end waits: it may start a CRLF
    assert p.feed(b"data: w\n\n") == [SSEEvent("z"), SSEEvent("w")]


def test_a_line_that_is_not_sse_fails_keeping_the_events_before_it() -> None:
    p = SSEParser()
    with pytest.raises(SSEError, match="not an SSE field line") as info:
        p.feed(b'data: {"ok": 1}\n\n{"choices": []}\n\n')
    assert info.value.events == [SSEEvent('{"ok": 1}')]


def test_end_inside_an_event_or_a_line_is_an_error() -> None:
    p = SSEParser()
    p.feed(b"data: half\n")
    with pytest.raises(SSEError, match="inside an SSE event"):
        p.close()
    p = SSEParser()
    p.feed(b"data: no newline")
    with pytest.raises(SSEError, match="inside an SSE line"):
        p.close()


def test_bounded_buffers_and_utf8() -> None:
    with pytest.raises(SSEError, match="longer than"):
        SSEParser(max_event_bytes=64).feed(b"data: " + b"x" * 100)
    with pytest.raises(SSEError, match="longer than"):
        SSEParser(max_event_bytes=64).feed(b"data: " + b"x" * 40 + b"\ndata: " + b"y" * 40 + b"\n")
    with pytest.raises(SSEError, match="not UTF-8"):
        SSEParser().feed(b"data: \xff\xfe\n\n")
    assert SSEParser().feed("data: héllo ✓\n\n".encode()) == [SSEEvent("héllo ✓")]
