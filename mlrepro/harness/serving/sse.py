"""Server-sent events framing for the OpenAI-compatible streaming APIs: bytes in, events out.

The rules are the WHATWG HTML "server-sent events" parsing rules as the OpenAI API, vLLM, SGLang and
``transformers serve`` use them (``data: {json}\\n\\n`` ... ``data: [DONE]\\n\\n``):

* lines end with LF, CRLF or a lone CR (a CR at the end of a read may be the first half of a CRLF: it waits);
* a blank line ends an event; an event whose ``data`` buffer is empty is not dispatched (spec);
* ``data:`` lines of one event are joined with ``\\n`` (multi-line events); one space after the colon is dropped;
* a line starting with ``:`` is a comment (keep-alives, ``: ping``) and is skipped;
* ``event:``, ``id:`` and ``retry:`` are kept on the event (none of these APIs uses them for content).

One departure from the spec, on purpose: a line whose field is none of ``data``, ``event``, ``id`` and
``retry`` (say, a bare JSON line from a server that streams NDJSON instead of SSE, or a truncated ``dat``)
raises :class:`SSEError` instead of being ignored, so a broken stream is reported, never silently skipped.
So does bytes that are not UTF-8, a line or event longer than ``max_event_bytes``, and :meth:`SSEParser.close`
with a partial line or event still buffered (the stream ended inside an event).

``[DONE]`` (the OpenAI end-of-stream sentinel) is an ordinary event here; :func:`is_done` recognises it.
"""

from __future__ import annotations

from dataclasses import dataclass

DONE = "[DONE]"
_FIELDS = frozenset({"event", "id", "retry"})


class SSEError(ValueError):
    """The byte stream is not well-formed SSE; ``str()`` is a one-line reason. ``events``: the events the
    failing :meth:`SSEParser.feed` completed before the bad line (they arrived; the caller may use them)."""

    def __init__(self, reason: str, events: list[SSEEvent] | None = None) -> None:
        super().__init__(reason)
        self.events: list[SSEEvent] = events or []


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event: its joined ``data`` and, rarely used by these APIs, ``event`` and ``id``."""

    data: str
    event: str | None = None
    id: str | None = None


def is_done(event: SSEEvent) -> bool:
    """True for the ``data: [DONE]`` sentinel that ends an OpenAI stream."""
    return event.data.strip() == DONE


def _clip(line: str, n: int = 60) -> str:
    return repr(line if len(line) <= n else line[:n] + "...")


class SSEParser:
    """Incremental SSE parser: :meth:`feed` any slicing of the body, get the events it completes.

    Not thread-safe; one parser per stream. ``max_event_bytes`` bounds the buffered bytes of one line
    and of one event (default 4 MiB), so a server that never sends a newline cannot exhaust memory.
    """

    __slots__ = ("_buf", "_data", "_event", "_id", "_size", "max_event_bytes")

    def __init__(self, max_event_bytes: int = 4 << 20) -> None:
        self.max_event_bytes = max_event_bytes
        self._buf = b""
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None
        self._size = 0

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """The events completed by ``chunk`` (in order). Raises SSEError on a framing violation."""
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            tail = b""
            if buf.endswith(b"\r"):          # may be the CR of a CRLF split across reads: decided next time
                buf, tail = buf[:-1], b"\r"
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n") + tail
        lines = buf.split(b"\n")
        rest = lines.pop()
        self._buf = rest
        out: list[SSEEvent] = []
        for raw in lines:
            if not raw:
                if self._data:
                    out.append(SSEEvent("\n".join(self._data), self._event, self._id))
                self._data, self._event, self._size = [], None, 0
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise SSEError(f"SSE line is not UTF-8: {raw[:40]!r}", out) from None
            if line[0] == ":":
                continue
            field, sep, value = line.partition(":")
            if sep and value[:1] == " ":
                value = value[1:]
            if field == "data":
                self._size += len(raw)
                if self._size > self.max_event_bytes:
                    raise SSEError(f"SSE event longer than {self.max_event_bytes} bytes", out)
                self._data.append(value)
            elif field in _FIELDS:
                if field == "event":
                    self._event = value
                elif field == "id":
                    self._id = value
            else:
                raise SSEError(f"not an SSE field line: {_clip(line)}", out)
        if len(rest) > self.max_event_bytes:
            raise SSEError(f"SSE line longer than {self.max_event_bytes} bytes without a line end", out)
        return out

    def close(self) -> list[SSEEvent]:
        """The body ended: the events a held final CR completes. Raises SSEError if a partial line or an
        undispatched event is left (the stream ended inside an event)."""
        rest, self._buf = self._buf, b""
        out = self.feed(rest[:-1] + b"\n") if rest.endswith(b"\r") else []
        if self._buf:
            raise SSEError(f"stream ended inside an SSE line: {self._buf[:60]!r}")
        if rest and not rest.endswith(b"\r"):
            raise SSEError(f"stream ended inside an SSE line: {rest[:60]!r}")
        if self._data:
            self._data, self._event, self._id, self._size = [], None, None, 0
            raise SSEError("stream ended inside an SSE event (no blank line after its data)")
        return out
