"""A test-only OpenAI-compatible streaming server (aiohttp) with a deterministic token schedule and faults.

Test code only: it stands in for vLLM / ``transformers serve`` in the client's tests and benchmark.

Schedule (per server, overridable per request with a ``"test"`` object in the JSON body, which
:class:`~mlrepro.harness.serving.GenerationRequest.extra` carries): the first content chunk is written
``ttft_ms`` after the request arrived, then one chunk every ``tpot_ms * tokens_per_chunk``, each with
``tokens_per_chunk`` tokens, ``n_tokens`` tokens in all (default: the request's ``max_tokens``). Writes are
aimed at absolute deadlines from the arrival, so one late write does not shift the ones after it. Token ``i``
is the text ``" t{i}"`` and the id ``1000 + i``.

What it sends is what vLLM sends: ``/v1/completions`` chunks ``{"choices": [{"index": 0, "text", ...}]}``
(with ``token_ids`` when the body asks ``return_token_ids``), ``/v1/chat/completions`` chunks with a role-only
first chunk, a usage-only last chunk when ``stream_options.include_usage`` is set, then ``data: [DONE]``.
With ``--text-only`` it answers a token-id prompt with 400 "prompt must be a string", as ``transformers
serve`` does.

Faults (``fault``, after ``fault_after`` tokens where that applies): ``late_first_token`` (a comment and an
empty chunk at once, content only after ``ttft_ms``), ``two_tokens_in_chunk`` (the first chunk carries two
tokens), ``http_500`` (500 before streaming), ``midstream_500`` (an in-band ``{"error": {..., "code": 500}}``
event then ``[DONE]``, as vLLM reports an engine failure), ``drop`` (the connection is aborted),
``http_429`` (429 with Retry-After), ``malformed`` (an event that is not JSON), ``not_sse`` (a bare JSON
line), ``error_event`` (a flat ``{"object": "error"}`` event, older vLLM/SGLang), ``stall`` (nothing more is
sent), ``no_usage`` (no usage chunk), ``wrong_usage`` (usage one token more than sent), ``json_response`` (a non-streamed JSON answer).

``fault_every`` (``--fault-every N``): only every Nth request (by arrival) gets the fault, the others none, so a
harness run sees failed and successful queries side by side.

Each request is recorded (``GET /test/records``; ``POST /test/reset``): its arrival, every write's
``time.monotonic_ns()`` and token count, the fault, and the highest number of requests in flight at once.
CLI: ``python llm_test_server.py --port 0 [--ttft-ms ...]`` prints ``PORT <n>`` and serves until stdin closes
or SIGTERM/SIGINT, on a select(2) event loop: its timers keep microseconds, where epoll's round up to 1 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import selectors
import signal
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from aiohttp import web

FAULTS = ("late_first_token", "two_tokens_in_chunk", "http_500", "midstream_500", "drop", "http_429",
          "malformed", "not_sse", "error_event", "stall", "no_usage", "wrong_usage", "json_response")


@dataclass(frozen=True)
class Plan:
    """One request's schedule (milliseconds) and fault."""

    ttft_ms: float = 10.0
    tpot_ms: float = 5.0
    tokens_per_chunk: int = 1
    n_tokens: int | None = None
    fault: str | None = None
    fault_after: int = 2
    stall_s: float = 60.0
    text_only: bool = False
    fault_every: int = 0        # > 0: only every fault_every-th request (seq % fault_every == fault_every - 1) faults


@dataclass
class Record:
    """What the server did for one request. Times are ``time.monotonic_ns()``."""

    seq: int
    path: str
    fault: str | None
    recv_ns: int
    tag: str | None = None      # the body's "user" field, else an X-Request-ID header: finds a request again
    prompt_kind: str = ""
    params: dict[str, Any] = field(default_factory=dict)     # the body less prompt/messages/test
    peer_port: int | None = None                              # the client's port: connection reuse shows
    n_tokens: int = 0
    writes: list[tuple[int, int]] = field(default_factory=list)    # (time, tokens in that chunk) for content
    end_ns: int | None = None
    status: int = 200

    @property
    def first_ns(self) -> int | None:
        return self.writes[0][0] if self.writes else None

    @property
    def last_ns(self) -> int | None:
        return self.writes[-1][0] if self.writes else None


class LLMTestServer:
    """The app and its records. ``base_url`` once started: ``http://127.0.0.1:PORT/v1``."""

    def __init__(self, plan: Plan | None = None, *, text_only: bool = False, model: str = "test-model") -> None:
        self.plan = plan or Plan()
        self.text_only = text_only
        self.model = model
        self.records: list[Record] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._runner: web.AppRunner | None = None
        self.port = 0
        app = web.Application()
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/health", self._health)
        app.router.add_get("/test/records", self._records)
        app.router.add_post("/test/reset", self._reset)
        self.app = app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, backlog=1024)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def records_json(self) -> dict[str, Any]:
        return {"max_in_flight": self.max_in_flight,
                "records": [asdict(r) | {"first_ns": r.first_ns, "last_ns": r.last_ns} for r in self.records]}

    # -- small endpoints ---------------------------------------------------------------------------------------
    async def _models(self, _: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": self.model, "object": "model",
                                                              "owned_by": "mlrepro-tests"}]})

    async def _health(self, _: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _records(self, _: web.Request) -> web.Response:
        return web.json_response(self.records_json())

    async def _reset(self, _: web.Request) -> web.Response:
        self.records.clear()
        self.max_in_flight = self.in_flight
        return web.json_response({"ok": True})

    # -- streaming ---------------------------------------------------------------------------------------------
    async def _completions(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, chat=False)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, chat=True)

    async def _serve(self, request: web.Request, *, chat: bool) -> web.StreamResponse:
        recv_ns = time.monotonic_ns()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            body = await request.json()
            plan = self.plan
            if isinstance(body.get("test"), dict):
                plan = replace(plan, **body["test"])
            seq = len(self.records)
            if plan.fault_every > 0 and seq % plan.fault_every != plan.fault_every - 1:
                plan = replace(plan, fault=None)
            rec = Record(seq=len(self.records), path=request.path, fault=plan.fault, recv_ns=recv_ns,
                         tag=body.get("user") or request.headers.get("X-Request-ID"),
                         params={k: v for k, v in body.items() if k not in ("prompt", "messages", "test")},
                         peer_port=(request.transport.get_extra_info("peername") or (None, None))[1]
                         if request.transport is not None else None)
            self.records.append(rec)
            return await self._stream(request, body, plan, rec, chat, loop, t0)
        finally:
            self.in_flight -= 1

    async def _stream(self, request: web.Request, body: dict[str, Any], plan: Plan, rec: Record, chat: bool,
                      loop: asyncio.AbstractEventLoop, t0: float) -> web.StreamResponse:
        prompt = body.get("prompt")
        rec.prompt_kind = "messages" if chat else ("text" if isinstance(prompt, str) else "token_ids")
        if (self.text_only or plan.text_only) and not chat and not isinstance(prompt, str):
            rec.status = 400
            return web.json_response({"detail": "prompt must be a string"}, status=400)
        if plan.fault == "http_500":
            rec.status = 500
            return web.json_response({"error": {"message": "the engine crashed (test)", "type": "InternalServerError",
                                                "code": 500}}, status=500)
        if plan.fault == "http_429":
            rec.status = 429
            return web.json_response({"error": {"message": "too many requests (test)", "type": "RateLimitError",
                                                "code": 429}}, status=429, headers={"Retry-After": "2"})
        n = plan.n_tokens if plan.n_tokens is not None else int(body.get("max_tokens") or 16)
        if plan.fault == "json_response":
            return web.json_response({"choices": [{"index": 0, "text": "x", "finish_reason": "length"}]})
        want_ids = bool(body.get("return_token_ids"))
        want_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        obj = "chat.completion.chunk" if chat else "text_completion"

        def chunk(text: str, ids: list[int] | None, finish: str | None) -> bytes:
            choice: dict[str, Any] = {"index": 0, "finish_reason": finish}
            if chat:
                choice["delta"] = {"content": text} if text or finish is None else {}
            else:
                choice["text"] = text
            if want_ids and ids is not None:
                choice["token_ids"] = ids
            return b"data: " + json.dumps({"id": "cmpl-test", "object": obj, "model": self.model,
                                           "choices": [choice]}).encode() + b"\n\n"

        if chat:
            await resp.write(b"data: " + json.dumps({"id": "cmpl-test", "object": obj, "model": self.model,
                                                     "choices": [{"index": 0, "delta": {"role": "assistant",
                                                                                        "content": ""}}]}).encode()
                             + b"\n\n")
        if plan.fault == "late_first_token":
            await resp.write(b": keep-alive\n\n" + chunk("", [] if want_ids else None, None))
        if plan.fault == "error_event" and plan.fault_after == 0:
            await resp.write(b'data: {"object": "error", "message": "bad prompt (test)", "type": '
                             b'"BadRequestError", "param": null, "code": 400}\n\n')
            await resp.write(b"data: [DONE]\n\n")
            return resp
        sent = 0
        first_size = 2 if plan.fault == "two_tokens_in_chunk" else plan.tokens_per_chunk
        while sent < n:
            if plan.fault is not None and sent >= plan.fault_after and await self._fault(resp, plan, rec, request.transport):
                return resp
            size = min(first_size if sent == 0 else plan.tokens_per_chunk, n - sent)
            deadline = t0 + (plan.ttft_ms + plan.tpot_ms * (sent + size - 1)) / 1000.0
            delay = deadline - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            text = "".join(f" t{i}" for i in range(sent, sent + size))
            ids = list(range(1000 + sent, 1000 + sent + size))
            sent += size
            data = chunk(text, ids, "length" if sent == n else None)
            rec.writes.append((time.monotonic_ns(), size))
            rec.n_tokens = sent
            await resp.write(data)
        if plan.fault is not None and plan.fault != "no_usage" and await self._fault(resp, plan, rec, request.transport):
            return resp
        tail = b""
        if want_usage and plan.fault != "no_usage":
            prompt_tokens = len(prompt) if isinstance(prompt, list) else 4
            bad = 1 if plan.fault == "wrong_usage" else 0
            tail += b"data: " + json.dumps({"id": "cmpl-test", "object": obj, "model": self.model, "choices": [],
                                            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": n + bad,
                                                      "total_tokens": prompt_tokens + n + bad}}).encode() + b"\n\n"
        await resp.write(tail + b"data: [DONE]\n\n")
        rec.end_ns = time.monotonic_ns()
        await resp.write_eof()
        return resp

    async def _fault(self, resp: web.StreamResponse, plan: Plan, rec: Record, transport: Any) -> bool:
        """Inject ``plan.fault``; True when the response is over (for ``drop`` and ``stall``, the connection)."""
        f = plan.fault
        if f == "midstream_500":
            await resp.write(b'data: {"error": {"message": "engine died mid-stream (test)", "type": '
                             b'"InternalServerError", "param": null, "code": 500}}\n\ndata: [DONE]\n\n')
        elif f == "error_event":
            await resp.write(b'data: {"object": "error", "message": "bad state (test)", "type": '
                             b'"BadRequestError", "param": null, "code": 400}\n\ndata: [DONE]\n\n')
        elif f == "drop":
            if transport is not None:
                transport.abort()
        elif f == "malformed":
            await resp.write(b'data: {"choices": [{"index": 0, "text": \n\n')
        elif f == "not_sse":
            await resp.write(b'{"choices": [{"index": 0, "text": " x"}]}\n\n')
        elif f == "stall":                      # until the client gives up (or stall_s)
            end = time.monotonic() + plan.stall_s
            while time.monotonic() < end and transport is not None and not transport.is_closing():
                await asyncio.sleep(0.02)
        else:
            return False
        rec.end_ns = time.monotonic_ns()
        return True


async def _serve_forever(server: LLMTestServer, host: str, port: int) -> None:
    await server.start(host, port)
    print(f"PORT {server.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.buffer.read1(1) else None)
    await stop.wait()
    await server.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--ttft-ms", type=float, default=Plan.ttft_ms)
    p.add_argument("--tpot-ms", type=float, default=Plan.tpot_ms)
    p.add_argument("--tokens-per-chunk", type=int, default=1)
    p.add_argument("--n-tokens", type=int, default=None, help="tokens per answer (default: the request's max_tokens)")
    p.add_argument("--text-only", action="store_true", help="refuse token-id prompts, as transformers serve does")
    p.add_argument("--model", default="test-model")
    p.add_argument("--fault", choices=FAULTS, default=None, help="inject this fault (see the module docstring)")
    p.add_argument("--fault-after", type=int, default=Plan.fault_after, help="tokens before the fault")
    p.add_argument("--fault-every", type=int, default=0, help="only every Nth request faults (default: all)")
    a = p.parse_args(argv)
    plan = Plan(ttft_ms=a.ttft_ms, tpot_ms=a.tpot_ms, tokens_per_chunk=a.tokens_per_chunk, n_tokens=a.n_tokens,
                fault=a.fault, fault_after=a.fault_after, fault_every=a.fault_every)
    # select(2) takes its timeout in microseconds; epoll, asyncio's default, rounds it up to a whole
    # millisecond, which would make every scheduled write up to 1 ms late. (select: < 1024 connections.)
    loop = asyncio.SelectorEventLoop(selectors.SelectSelector())
    try:
        loop.run_until_complete(_serve_forever(LLMTestServer(plan, text_only=a.text_only, model=a.model),
                                               a.host, a.port))
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
