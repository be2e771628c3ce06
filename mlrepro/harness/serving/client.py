"""The asynchronous engine: one asyncio event loop in one thread streams every request, at most
``max_concurrency`` at a time (an ``asyncio.Semaphore``; no thread per query).

:class:`StreamingClient` is what an LLM SUT drives. :meth:`StreamingClient.submit` is thread-safe (LoadGen's
issue callback runs on LoadGen's thread): it hands the request to the loop and returns at once. On the loop
thread, for each request, ``on_first_token(request, FirstToken)`` is called at the first chunk that carries
content, and ``on_done(GenerationResult)`` exactly once when the request ends, successfully or with a typed
:class:`~mlrepro.harness.serving.errors.RequestError` (never a retry, never a hang: the total and the
between-chunks timeouts end a stalled stream). Callbacks run on the loop thread: keep them short (LoadGen's
``FirstTokenComplete``/``QuerySamplesComplete`` are); an exception in one is counted
(:attr:`StreamingClient.callback_errors`) and logged, and the request's result is not changed by it.

Times are ``time.monotonic_ns()``: a chunk's time is when the read that completed it returned, taken once per
read, before any parsing. The token count is the server's (token ids, else ``usage.completion_tokens``;
:mod:`mlrepro.harness.serving.schema`), never a re-tokenization of the text.

:meth:`StreamingClient.generate` is the same engine as a coroutine, for code already on the client's loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp

from mlrepro.harness.serving import chat, completions
from mlrepro.harness.serving.engines import engines
from mlrepro.harness.serving.errors import (
    Cancelled,
    ConnectFailed,
    ErrorKind,
    MalformedStream,
    RequestError,
    RequestTimeout,
    StreamDropped,
    error_from_body,
    error_in_event,
    one_line,
)
from mlrepro.harness.serving.schema import (
    ChunkDelta,
    CountSource,
    FirstToken,
    GenerationRequest,
    GenerationResult,
)
from mlrepro.harness.serving.sse import DONE, SSEError, SSEParser

log = logging.getLogger(__name__)

OnFirstToken = Callable[[GenerationRequest, FirstToken], None]
OnDone = Callable[[GenerationResult], None]

#: what the client should send to each server engine (engines.json): token-id prompts where the engine takes
#: them, vLLM's ``return_token_ids`` where it exists (vLLM ``CompletionRequest.return_token_ids``).
ENGINE_DEFAULTS: dict[str, dict[str, Any]] = {
    name: {"prompt_format": e.prompt_format, "return_token_ids": e.return_token_ids}
    for name, e in engines().items()
}

_ERROR_BODY_BYTES = 8192


@dataclass(frozen=True)
class Timeouts:
    """Per-request limits in seconds (None: no limit). ``between_chunks_s`` is the longest wait for any bytes,
    the response's first bytes included (so it also bounds the time to first token: set it above the longest
    TTFT the run may see); ``total_s`` bounds the whole request from the moment it is sent."""

    connect_s: float | None = 10.0
    between_chunks_s: float | None = 120.0
    total_s: float | None = 1800.0


@dataclass(frozen=True)
class ClientConfig:
    """Where and how to stream. ``base_url`` ends with the API root, e.g. ``http://127.0.0.1:8000/v1``.

    ``api``: ``completions`` (``/v1/completions``) or ``chat`` (``/v1/chat/completions``, text prompts only).
    ``prompt_format``: send the request's ``prompt_token_ids`` (``token_ids``) or ``prompt_text`` (``text``).
    ``return_token_ids``: ask for vLLM's per-chunk ``token_ids``. ``include_usage``: ask for the usage chunk
    (``stream_options.include_usage``). ``headers``: sent with every request (``Authorization``...).
    Raises ValueError for an inconsistent configuration.
    """

    base_url: str
    model: str
    api: Literal["completions", "chat"] = "completions"
    prompt_format: Literal["text", "token_ids"] = "text"
    return_token_ids: bool = False
    include_usage: bool = True
    max_concurrency: int = 64
    timeouts: Timeouts = field(default_factory=Timeouts)
    headers: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        if self.api not in ("completions", "chat"):
            raise ValueError(f"api must be 'completions' or 'chat', not {self.api!r}")
        if self.prompt_format not in ("text", "token_ids"):
            raise ValueError(f"prompt_format must be 'text' or 'token_ids', not {self.prompt_format!r}")
        if self.api == "chat" and self.prompt_format != "text":
            raise ValueError("chat completions take text prompts: prompt_format must be 'text'")
        if self.max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, not {self.max_concurrency}")
        if not self.include_usage and not self.return_token_ids:
            raise ValueError("the token count must come from the server: set include_usage or return_token_ids")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, not {self.base_url!r}")

    @classmethod
    def for_engine(cls, engine: str, base_url: str, model: str, **overrides: Any) -> ClientConfig:
        """The configuration :data:`ENGINE_DEFAULTS` gives ``engine`` (vllm, sglang, transformers, openai); chat
        completions (``api="chat"``) take text prompts with every engine."""
        if engine not in ENGINE_DEFAULTS:
            raise ValueError(f"unknown server engine {engine!r}: one of {', '.join(sorted(ENGINE_DEFAULTS))}")
        settings = {**ENGINE_DEFAULTS[engine], **overrides}
        if settings.get("api") == "chat":       # chat messages are text, whatever the engine's completions take
            settings["prompt_format"] = "text"
        return cls(base_url=base_url, model=model, **settings)

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + (completions.PATH if self.api == "completions" else chat.PATH)


class _Stream:
    """What one request has received so far (loop thread only)."""

    __slots__ = ("content_chunks", "done_ns", "finish", "first_ns", "ids", "missing_ids", "parts", "request",
                 "sent_ns", "submit_ns", "usage")

    def __init__(self, request: GenerationRequest, submit_ns: int) -> None:
        self.request, self.submit_ns = request, submit_ns
        self.sent_ns: int | None = None
        self.first_ns: int | None = None
        self.done_ns: int | None = None
        self.parts: list[str] = []
        self.ids: list[int] = []
        self.missing_ids = 0          # content chunks without token_ids
        self.content_chunks = 0
        self.finish: str | None = None
        self.usage: int | None = None

    def result(self, done_ns: int, error: RequestError | None, want_ids: bool) -> GenerationResult:
        n: int | None = None
        source: CountSource | None = None
        ids: tuple[int, ...] | None = None
        if error is None:
            if want_ids and self.missing_ids == 0 and (self.ids or self.content_chunks == 0):
                ids, n, source = tuple(self.ids), len(self.ids), "token_ids"
                if self.usage is not None and self.usage != n:
                    error = MalformedStream(f"the server's token ids ({n}) and usage.completion_tokens "
                                            f"({self.usage}) disagree")
            elif self.usage is not None:
                n, source = self.usage, "usage"
            else:
                error = MalformedStream("the server gave no token count: no token_ids in its chunks and no "
                                        "usage.completion_tokens (stream_options.include_usage)")
        if error is not None:
            n, source, ids = None, None, None
        return GenerationResult(
            request_id=self.request.id, submit_ns=self.submit_ns, sent_ns=self.sent_ns,
            first_token_ns=self.first_ns, done_ns=done_ns, n_tokens=n, count_source=source, token_ids=ids,
            text="".join(self.parts), finish_reason=self.finish, content_chunks=self.content_chunks,
            error=error, usage_completion_tokens=self.usage)


class StreamingClient:
    """The streaming client (see the module docstring). Use as a context manager, or :meth:`start` /
    :meth:`close`. Counters (:meth:`failure_counts`, :attr:`completed`, :attr:`max_in_flight`) may be read
    from any thread."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self._build = completions.build_body if config.api == "completions" else chat.build_body
        self._decode: Callable[[Any], ChunkDelta] = (completions.decode_chunk if config.api == "completions"
                                                     else chat.decode_chunk)
        self._url = config.url
        self._headers = {"Content-Type": "application/json", "Accept": "text/event-stream",
                         **(config.headers or {})}
        t = config.timeouts
        self._timeout = aiohttp.ClientTimeout(total=t.total_s, sock_connect=t.connect_s,
                                              sock_read=t.between_chunks_s)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._session: aiohttp.ClientSession | None = None
        self._sem: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._cv = threading.Condition()
        self._closed = False
        self._pending = 0
        self._in_flight = 0
        self.max_in_flight = 0
        self.completed = 0
        self.callback_errors = 0
        self.last_callback_error: BaseException | None = None
        self._failures: Counter[ErrorKind] = Counter()

    # -- life cycle -----------------------------------------------------------------------------------------
    def start(self) -> StreamingClient:
        """Start the loop thread (idempotent). Raises RuntimeError if the loop cannot start."""
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._thread_main, name="mlrepro-llm-client", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._start_error is not None:
            raise RuntimeError(f"LLM client loop did not start: {self._start_error}") from self._start_error
        return self

    def __enter__(self) -> StreamingClient:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._open())
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._start_error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _open(self) -> None:
        self._sem = asyncio.Semaphore(self.config.max_concurrency)
        connector = aiohttp.TCPConnector(limit=self.config.max_concurrency, limit_per_host=0,
                                         ttl_dns_cache=None)
        self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)

    async def _shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop: requests still queued or in flight end with a ``cancelled`` error (their ``on_done`` is
        called), the connections close and the loop thread ends. Idempotent. Raises RuntimeError when called
        from a callback (the loop thread)."""
        if self._thread is not None and threading.current_thread() is self._thread:
            raise RuntimeError("close() from a client callback would wait for itself: call it from another thread")
        with self._cv:
            if self._closed:
                return
            self._closed = True
        if self._thread is None or self._loop is None or self._start_error is not None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        try:
            fut.result(timeout_s)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout_s)

    # -- submitting -----------------------------------------------------------------------------------------
    def submit(self, request: GenerationRequest, on_first_token: OnFirstToken | None = None,
               on_done: OnDone | None = None) -> None:
        """Queue ``request`` (thread-safe; returns at once). Raises RuntimeError if the client is not
        running, ValueError if the request lacks the prompt form the configuration sends."""
        self.submit_many(((request, on_first_token, on_done),))

    def submit_many(self, items: Iterable[tuple[GenerationRequest, OnFirstToken | None, OnDone | None]]) -> None:
        """Queue several requests with one wake-up of the loop (LoadGen's Offline issues thousands at once)."""
        batch = list(items)
        key = "prompt_token_ids" if self.config.prompt_format == "token_ids" else "prompt_text"
        for req, _, _ in batch:
            if getattr(req, key) is None:
                raise ValueError(f"request {req.id}: {key} is needed (prompt_format {self.config.prompt_format})")
        now = time.monotonic_ns()
        with self._cv:
            if self._closed or self._loop is None:
                raise RuntimeError("the LLM client is not running (start() it; it may have been closed)")
            self._pending += len(batch)
        self._loop.call_soon_threadsafe(self._spawn, batch, now)

    def _spawn(self, batch: list[tuple[GenerationRequest, OnFirstToken | None, OnDone | None]],
               submit_ns: int) -> None:
        loop = self._loop
        assert loop is not None
        for req, on_first, on_done in batch:
            task = loop.create_task(self._run(req, on_first, on_done, submit_ns))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, req: GenerationRequest, on_first: OnFirstToken | None, on_done: OnDone | None,
                   submit_ns: int) -> None:
        try:
            result = await self.generate(req, on_first, submit_ns=submit_ns)
        except BaseException as exc:  # noqa: BLE001 - a request must end with a result whatever happens
            result = GenerationResult(req.id, submit_ns, None, None, time.monotonic_ns(),
                                      error=RequestError(f"{type(exc).__name__}: {exc}"))
        if on_done is not None:
            self._call(on_done, result)
        with self._cv:
            self._pending -= 1
            self.completed += 1
            if result.error is not None:
                self._failures[result.error.kind] += 1
            if self._pending == 0:
                self._cv.notify_all()

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - a caller's bug must not end the loop or the request
            with self._cv:
                self.callback_errors += 1
                self.last_callback_error = exc
            log.exception("LLM client callback %s raised", getattr(fn, "__name__", fn))

    # -- waiting and counting ------------------------------------------------------------------------------
    def wait_idle(self, timeout_s: float | None = None) -> bool:
        """Block until every submitted request has ended (its ``on_done`` returned). False on timeout."""
        with self._cv:
            return self._cv.wait_for(lambda: self._pending == 0, timeout_s)

    @property
    def pending(self) -> int:
        """Requests submitted and not yet ended."""
        with self._cv:
            return self._pending

    def failure_counts(self) -> dict[str, int]:
        """Failed requests by :class:`ErrorKind` value (only kinds that occurred)."""
        with self._cv:
            return {k.value: n for k, n in self._failures.items()}

    @property
    def failed(self) -> int:
        with self._cv:
            return sum(self._failures.values())

    # -- the engine -----------------------------------------------------------------------------------------
    async def generate(self, req: GenerationRequest, on_first: OnFirstToken | None = None, *,
                       submit_ns: int | None = None) -> GenerationResult:
        """Stream one request on this client's loop and return its result (never raises a RequestError:
        it is in the result). Waits for a concurrency slot first."""
        assert self._sem is not None and self._session is not None, "start() the client first"
        if submit_ns is None:
            submit_ns = time.monotonic_ns()
        st = _Stream(req, submit_ns)
        error: RequestError | None = None
        acquired = False
        try:
            await self._sem.acquire()
            acquired = True
            self._in_flight += 1
            if self._in_flight > self.max_in_flight:
                self.max_in_flight = self._in_flight
            await self._stream(req, st, on_first)
        except RequestError as exc:
            error = exc
        except asyncio.CancelledError:
            error = Cancelled("the client closed with the request " + ("in flight" if acquired else "queued"))
        except aiohttp.ConnectionTimeoutError:
            error = ConnectFailed(f"connect timeout after {self.config.timeouts.connect_s} s to {self._url}")
        except aiohttp.SocketTimeoutError:
            t = self.config.timeouts.between_chunks_s
            where = "before the response" if st.sent_ns is not None and st.content_chunks == 0 else "mid-stream"
            error = RequestTimeout(f"no bytes for {t} s {where} (between-chunks limit; "
                                   f"{st.content_chunks} content chunks received)", stall=True, limit_s=t)
        except aiohttp.ClientConnectorError as exc:
            error = ConnectFailed(f"cannot connect to {self._url}: {exc.os_error or exc}")
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            error = StreamDropped(f"connection lost after {st.content_chunks} content chunks: "
                                  f"{type(exc).__name__}: {exc}")
        except TimeoutError:
            t = self.config.timeouts.total_s
            error = RequestTimeout(f"request not finished within {t} s (total limit; {st.content_chunks} "
                                   f"content chunks received)", stall=False, limit_s=t)
        except aiohttp.ClientError as exc:
            error = StreamDropped(f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # noqa: BLE001 - reported as this request's failure, never hidden
            error = RequestError(f"{type(exc).__name__}: {exc}")
        finally:
            if acquired:
                self._in_flight -= 1
                self._sem.release()
        done_ns = st.done_ns if st.done_ns is not None and error is None else time.monotonic_ns()
        return st.result(done_ns, error, self.config.return_token_ids)

    async def _stream(self, req: GenerationRequest, st: _Stream, on_first: OnFirstToken | None) -> None:
        cfg = self.config
        prompt = req.prompt_token_ids if cfg.prompt_format == "token_ids" else req.prompt_text
        body = self._build(cfg.model, prompt, req.max_tokens, include_usage=cfg.include_usage,  # type: ignore[arg-type]
                           return_token_ids=cfg.return_token_ids, extra=dict(req.extra) if req.extra else None)
        data = json.dumps(body, separators=(",", ":")).encode()
        assert self._session is not None
        decode = self._decode
        st.sent_ns = time.monotonic_ns()
        async with self._session.post(self._url, data=data, headers=self._headers) as resp:
            if resp.status != 200:
                raw = await resp.content.read(_ERROR_BODY_BYTES)
                raise error_from_body(resp.status, raw, resp.headers.get("Retry-After"))
            ctype = resp.headers.get("Content-Type", "")
            if not ctype.startswith("text/event-stream"):
                raise MalformedStream(f"the server did not stream: Content-Type {ctype or 'missing'!r}")
            parser = SSEParser()
            ended = False
            async for block in resp.content.iter_any():
                now = time.monotonic_ns()
                bad: SSEError | None = None
                try:
                    events = parser.feed(block)
                except SSEError as exc:          # the events before the bad line still count
                    events, bad = exc.events, exc
                for ev in events:
                    if ev.data == DONE or ev.data.strip() == DONE:
                        ended = True
                        break
                    try:
                        obj = json.loads(ev.data)
                    except ValueError:
                        raise MalformedStream(f"event data is not JSON: {one_line(ev.data, 80)!r}") from None
                    err = error_in_event(obj)
                    if err is not None:
                        raise err
                    d = decode(obj)
                    if d.has_content:
                        st.content_chunks += 1
                        if st.first_ns is None:
                            st.first_ns = now
                            if on_first is not None:
                                ids = tuple(d.token_ids) if d.token_ids is not None else None
                                self._call(on_first, req, FirstToken(now, d.text, ids))
                        if d.token_ids is None:
                            st.missing_ids += 1
                    if d.text:
                        st.parts.append(d.text)
                    if d.token_ids:
                        st.ids.extend(d.token_ids)
                    if d.finish_reason:
                        st.finish = d.finish_reason
                    if d.completion_tokens is not None:
                        st.usage = d.completion_tokens
                if ended:
                    st.done_ns = now
                    break
                if bad is not None:
                    raise MalformedStream(str(bad))
            if not ended:
                try:
                    parser.close()
                except SSEError as exc:
                    raise StreamDropped(f"connection closed mid-event after {st.content_chunks} content "
                                        f"chunks ({exc})") from None
                if st.finish is None:
                    raise StreamDropped(f"connection closed before [DONE] or a finish_reason, after "
                                        f"{st.content_chunks} content chunks")
                st.done_ns = time.monotonic_ns()
