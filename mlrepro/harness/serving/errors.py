"""Why a streamed request failed: one typed error per kind, each with a one-line ``reason``.

Every failure ends that request (no retries: a retried query would distort the latencies LoadGen measures)
and is counted by :class:`ErrorKind`. The kinds and the rule each one follows:

=================  ============================================================================================
``http_429``       the server answered 429 Too Many Requests (:class:`RateLimited`; ``Retry-After`` kept)
``http_4xx``       another 4xx status (a bad request: an unknown model, a prompt too long, ...)
``http_5xx``       a 5xx status before the stream started
``error_event``    an in-band ``data: {"error": {...}}`` event (vLLM's ``create_streaming_error_response``,
                   the OpenAI API) or the older flat ``{"object": "error", "message": ...}``: the server failed
                   after answering 200, often mid-stream (a 500 inside the stream)
``dropped``        the connection closed or reset before the stream's end (``[DONE]``, or a ``finish_reason``
                   with its token count)
``malformed``      the body is not SSE, an event is not JSON or not a completion chunk, the server did not
                   stream, or it gave no token count (neither token ids nor ``usage.completion_tokens``)
``timeout_total``  the request's total time limit passed
``timeout_stall``  no bytes arrived for longer than the between-chunks limit (a stalled stream)
``connect``        no connection (refused, unreachable, connect timeout)
``cancelled``      the client was closed while the request was in flight
``internal``       anything else raised while handling the request (a bug here: reported, not hidden)
=================  ============================================================================================
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Any


class ErrorKind(str, Enum):
    """The failure classes counted by the client (values are stable strings for records and logs)."""

    HTTP_429 = "http_429"
    HTTP_4XX = "http_4xx"
    HTTP_5XX = "http_5xx"
    ERROR_EVENT = "error_event"
    DROPPED = "dropped"
    MALFORMED = "malformed"
    TIMEOUT_TOTAL = "timeout_total"
    TIMEOUT_STALL = "timeout_stall"
    CONNECT = "connect"
    CANCELLED = "cancelled"
    INTERNAL = "internal"


def one_line(text: object, limit: int = 200) -> str:
    """``text`` on one line (whitespace runs collapsed), cut to ``limit`` characters."""
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


class RequestError(Exception):
    """A request that failed. ``kind`` classifies it, ``reason`` says why in one line; ``str()`` is both."""

    kind: ErrorKind = ErrorKind.INTERNAL

    def __init__(self, reason: str, *, kind: ErrorKind | None = None) -> None:
        self.reason = one_line(reason)
        if kind is not None:
            self.kind = kind
        super().__init__(f"{self.kind.value}: {self.reason}")


class HTTPStatusError(RequestError):
    """A non-200 status before any event. ``status`` is the HTTP status; ``kind`` http_429, http_4xx or
    http_5xx."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        kind = (ErrorKind.HTTP_429 if status == 429 else ErrorKind.HTTP_5XX if status >= 500
                else ErrorKind.HTTP_4XX)
        super().__init__(f"HTTP {status}: {message}" if message else f"HTTP {status}", kind=kind)


class RateLimited(HTTPStatusError):
    """HTTP 429. ``retry_after`` is the ``Retry-After`` header's text, or None (kept, never acted on)."""

    def __init__(self, message: str, retry_after: str | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(429, message + (f" (Retry-After: {retry_after})" if retry_after else ""))


class ServerErrorEvent(RequestError):
    """An in-band error event. ``code`` (the HTTP-like code in it, e.g. 500) and ``error_type`` may be None."""

    kind = ErrorKind.ERROR_EVENT

    def __init__(self, message: str, code: int | None = None, error_type: str | None = None) -> None:
        self.code, self.error_type, self.message = code, error_type, one_line(message)
        head = " ".join(x for x in (str(code) if code is not None else "", error_type or "") if x)
        super().__init__(f"server error event{' ' + head if head else ''}: {message}")


class StreamDropped(RequestError):
    """The connection ended before the stream did."""

    kind = ErrorKind.DROPPED


class MalformedStream(RequestError):
    """The stream broke the SSE or OpenAI chunk format, or carried no token count."""

    kind = ErrorKind.MALFORMED


class RequestTimeout(RequestError):
    """A time limit passed: ``kind`` timeout_total or timeout_stall; ``limit_s`` the limit in seconds."""

    def __init__(self, reason: str, *, stall: bool, limit_s: float | None) -> None:
        self.limit_s = limit_s
        super().__init__(reason, kind=ErrorKind.TIMEOUT_STALL if stall else ErrorKind.TIMEOUT_TOTAL)


class ConnectFailed(RequestError):
    """No connection to the server."""

    kind = ErrorKind.CONNECT


class Cancelled(RequestError):
    """The client closed while the request was in flight."""

    kind = ErrorKind.CANCELLED


def error_in_event(obj: Any) -> ServerErrorEvent | None:
    """The error an event's JSON object carries, or None. Two shapes: ``{"error": {"message", "type",
    "code"}}`` (the OpenAI API; vLLM's ``ErrorResponse``/``ErrorInfo``), ``{"error": "text"}``, and the flat
    ``{"object": "error", "message", "type", "code"}`` of older vLLM and SGLang."""
    if not isinstance(obj, dict):
        return None
    err = obj.get("error")
    if err is None and obj.get("object") == "error":
        err = obj
    if err is None:
        return None
    if not isinstance(err, dict):
        return ServerErrorEvent(str(err))
    code = err.get("code")
    try:
        code = int(code) if code is not None else None
    except (TypeError, ValueError):
        code = None
    etype = err.get("type")
    return ServerErrorEvent(str(err.get("message") or json.dumps(err)), code, str(etype) if etype else None)


def error_from_body(status: int, body: bytes, retry_after: str | None = None) -> HTTPStatusError:
    """The typed error for a non-200 response whose (possibly truncated) body is ``body``."""
    text = body.decode("utf-8", "replace")
    message = text
    try:
        found = error_in_event(json.loads(text))
        if found is not None:
            message = f"{found.error_type}: {found.message}" if found.error_type else found.message
        else:
            obj = json.loads(text)
            if isinstance(obj, dict) and "detail" in obj:       # FastAPI's HTTPException body
                message = str(obj["detail"])
    except ValueError:
        pass
    if status == 429:
        return RateLimited(one_line(message), retry_after)
    return HTTPStatusError(status, one_line(message))
