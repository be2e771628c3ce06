"""The streaming client against the test server (llm_test_server.py, its own process, real HTTP and SSE on
loopback): timing against what the server actually sent, LoadGen's TTFT/TPOT, every fault's typed error and
count, bounded concurrency, thread-safe submission, closing.

No absolute latency is asserted. Both processes read CLOCK_MONOTONIC, so the bounds are causal (the client
cannot see a chunk before the server wrote it) or relative to the server's own measured schedule.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from llm_serving_support import RunningServer, running_test_server

from mlrepro.harness.serving import (
    ClientConfig,
    ErrorKind,
    FirstToken,
    GenerationRequest,
    GenerationResult,
    StreamingClient,
    Timeouts,
    result_latencies,
    token_latencies,
)


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with running_test_server() as s:
        yield s


@pytest.fixture(autouse=True)
def _reset(server: RunningServer) -> None:
    server.reset()


def run(server: RunningServer, plans: list[dict[str, Any]], *, max_tokens: int = 8, prompt_text: str | None = "hi",
        prompt_token_ids: list[int] | None = None, **config: Any) -> tuple[list[GenerationResult],
                                                                           dict[int, FirstToken], StreamingClient]:
    """Submit one request per plan (``extra={"test": plan, "user": "r<i>"}``), wait, return the results by
    request id, the first tokens and the (closed) client."""
    config.setdefault("timeouts", Timeouts(connect_s=10, between_chunks_s=30, total_s=60))
    results: list[GenerationResult] = []
    firsts: dict[int, FirstToken] = {}
    lock = threading.Lock()

    def on_done(r: GenerationResult) -> None:
        with lock:
            results.append(r)

    def on_first(req: GenerationRequest, ft: FirstToken) -> None:
        assert req.id not in firsts
        firsts[req.id] = ft

    with StreamingClient(ClientConfig(server.base_url, "test-model", **config)) as client:
        client.submit_many((GenerationRequest(i, max_tokens, prompt_text=prompt_text, prompt_token_ids=prompt_token_ids,
                                              extra={"test": plan, "user": f"r{i}"}), on_first, on_done)
                           for i, plan in enumerate(plans))
        assert client.wait_idle(120), "requests still pending"
    results.sort(key=lambda r: r.request_id)
    assert [r.request_id for r in results] == list(range(len(plans))), "one on_done per request"
    return results, firsts, client


SCHEDULE = {"ttft_ms": 120.0, "tpot_ms": 25.0}


@pytest.mark.parametrize("token_ids", [False, True], ids=["usage", "token_ids"])
def test_times_and_loadgen_latencies_follow_what_the_server_sent(server: RunningServer, token_ids: bool) -> None:
    n = 10
    results, firsts, client = run(server, [SCHEDULE] * 4, max_tokens=n, return_token_ids=token_ids)
    recs = server.by_tag()
    assert client.failure_counts() == {}
    for r in results:
        rec = recs[f"r{r.request_id}"]
        assert r.ok, r.error
        assert r.n_tokens == n and r.count_source == ("token_ids" if token_ids else "usage")
        assert r.token_ids == (tuple(range(1000, 1000 + n)) if token_ids else None)
        assert r.output_source == ("token_ids" if token_ids else "text")
        assert r.text == "".join(f" t{i}" for i in range(n))
        # the first token is the first content chunk: its text, and not seen before the server wrote it
        assert firsts[r.request_id].text == " t0" and firsts[r.request_id].time_ns == r.first_token_ns
        assert r.submit_ns <= r.sent_ns <= rec["recv_ns"]
        assert rec["first_ns"] <= r.first_token_ns and rec["last_ns"] <= r.done_ns
        # LoadGen's TTFT/TPOT from the client's events against the same from the server's own clock
        mine = result_latencies(r, issue_ns=r.sent_ns)
        theirs = token_latencies(rec["recv_ns"], rec["first_ns"], rec["last_ns"], n)
        assert mine.tpot_ns == (mine.latency_ns - mine.ttft_ns) / (n - 1)
        assert theirs.ttft_ns <= mine.ttft_ns <= theirs.ttft_ns * 1.5
        assert abs(mine.tpot_ns - theirs.tpot_ns) <= 0.2 * theirs.tpot_ns
        assert theirs.ttft_ns >= SCHEDULE["ttft_ms"] * 1e6        # the server kept its schedule (sleeps only)


def test_late_first_token_after_a_comment_and_an_empty_chunk(server: RunningServer) -> None:
    results, firsts, _ = run(server, [{"fault": "late_first_token", "ttft_ms": 300.0, "tpot_ms": 5.0}],
                             return_token_ids=True)
    r, rec = results[0], server.by_tag()["r0"]
    assert r.ok and r.n_tokens == 8
    assert firsts[0].text == " t0" and firsts[0].token_ids == (1000,)
    assert r.first_token_ns >= rec["first_ns"] >= rec["recv_ns"] + 300e6


@pytest.mark.parametrize("token_ids", [False, True], ids=["usage", "token_ids"])
def test_two_tokens_in_one_chunk_count_as_two(server: RunningServer, token_ids: bool) -> None:
    results, firsts, _ = run(server, [{"fault": "two_tokens_in_chunk", "ttft_ms": 20.0, "tpot_ms": 10.0}],
                             max_tokens=9, return_token_ids=token_ids)
    r = results[0]
    assert r.ok and r.n_tokens == 9 and r.content_chunks == 8
    assert firsts[0].text == " t0 t1"
    assert firsts[0].token_ids == ((1000, 1001) if token_ids else None)
    lat = result_latencies(r, issue_ns=r.sent_ns)
    assert lat.tpot_ns == (r.done_ns - r.first_token_ns) / 8        # n_tokens - 1, not chunks - 1


FAULTS = [
    ("http_500", ErrorKind.HTTP_5XX, "HTTP 500"),
    ("midstream_500", ErrorKind.ERROR_EVENT, "500 InternalServerError: engine died mid-stream"),
    ("drop", ErrorKind.DROPPED, "connection lost after 2 content chunks"),
    ("http_429", ErrorKind.HTTP_429, "Retry-After: 2"),
    ("malformed", ErrorKind.MALFORMED, "not JSON"),
    ("not_sse", ErrorKind.MALFORMED, "not an SSE field line"),
    ("error_event", ErrorKind.ERROR_EVENT, "400 BadRequestError: bad state"),
    ("wrong_usage", ErrorKind.MALFORMED, "disagree"),
    ("json_response", ErrorKind.MALFORMED, "did not stream"),
]


def test_every_fault_is_its_typed_error_and_counted(server: RunningServer) -> None:
    plans = [{"fault": f, "ttft_ms": 10.0, "tpot_ms": 5.0} for f, _, _ in FAULTS] + [{"ttft_ms": 10.0}] * 2
    results, firsts, client = run(server, plans, return_token_ids=True)
    for (fault, kind, words), r in zip(FAULTS, results):
        assert r.error is not None, fault
        assert (r.error.kind, r.n_tokens) == (kind, None), fault
        assert words in r.error.reason and "\n" not in r.error.reason, (fault, r.error.reason)
    assert all(r.ok for r in results[len(FAULTS):])
    assert client.failure_counts() == dict(Counter(k.value for _, k, _ in FAULTS))
    assert client.failed == len(FAULTS) and client.completed == len(plans)
    # what arrived before a mid-stream failure is kept: the first token was reported
    assert results[1].first_token_ns is not None and 1 in firsts and results[1].text == " t0 t1"


def test_no_token_count_from_the_server_is_an_error_not_a_guess(server: RunningServer) -> None:
    results, _, client = run(server, [{"fault": "no_usage"}])
    assert results[0].error is not None and "no token count" in results[0].error.reason
    assert results[0].text == "".join(f" t{i}" for i in range(8))      # the text is kept, never re-tokenized
    assert client.failure_counts() == {"malformed": 1}
    results, _, _ = run(server, [{"fault": "no_usage"}], return_token_ids=True)     # token ids suffice
    assert results[0].ok and results[0].count_source == "token_ids" and results[0].n_tokens == 8


def test_a_stalled_stream_ends_at_the_between_chunks_limit(server: RunningServer) -> None:
    results, _, client = run(server, [{"fault": "stall", "fault_after": 3, "ttft_ms": 10.0, "tpot_ms": 5.0}],
                             timeouts=Timeouts(between_chunks_s=0.4, total_s=60))
    r = results[0]
    assert r.error is not None and r.error.kind is ErrorKind.TIMEOUT_STALL and "mid-stream" in r.error.reason
    assert r.done_ns - server.by_tag()["r0"]["last_ns"] >= 0.4e9
    assert client.failure_counts() == {"timeout_stall": 1}


def test_a_slow_stream_ends_at_the_total_limit(server: RunningServer) -> None:
    results, _, _ = run(server, [{"ttft_ms": 10.0, "tpot_ms": 100.0}], max_tokens=50,
                        timeouts=Timeouts(between_chunks_s=30, total_s=0.5))
    r = results[0]
    assert r.error is not None and r.error.kind is ErrorKind.TIMEOUT_TOTAL
    assert r.done_ns - r.sent_ns >= 0.5e9 and 0 < r.content_chunks < 50


def test_token_prompts_to_a_text_only_server_fail_with_its_reason(server: RunningServer) -> None:
    results, _, _ = run(server, [{"text_only": True}], prompt_text=None, prompt_token_ids=[1, 2, 3],
                        prompt_format="token_ids")
    assert results[0].error is not None and results[0].error.kind is ErrorKind.HTTP_4XX
    assert "prompt must be a string" in results[0].error.reason
    results, _, _ = run(server, [{"text_only": True}], prompt_token_ids=[1, 2, 3], prompt_format="text")
    assert results[0].ok and server.by_tag()["r0"]["prompt_kind"] == "text"


def test_token_id_prompts_are_sent_as_ids(server: RunningServer) -> None:
    results, _, _ = run(server, [{}], prompt_text=None, prompt_token_ids=[5, 6, 7], prompt_format="token_ids")
    assert results[0].ok and server.by_tag()["r0"]["prompt_kind"] == "token_ids"


def test_chat_first_token_is_the_first_content_not_the_role_chunk(server: RunningServer) -> None:
    results, firsts, _ = run(server, [{"ttft_ms": 150.0, "tpot_ms": 5.0}], api="chat")
    r, rec = results[0], server.by_tag()["r0"]
    assert r.ok and r.n_tokens == 8 and r.text.startswith(" t0 t1")
    assert firsts[0].text == " t0" and r.first_token_ns >= rec["first_ns"]


def test_concurrency_is_bounded(server: RunningServer) -> None:
    results, _, client = run(server, [{"ttft_ms": 60.0, "tpot_ms": 10.0}] * 12, max_tokens=4, max_concurrency=3)
    assert all(r.ok for r in results)
    recs = server.records()
    assert recs["max_in_flight"] == 3 == client.max_in_flight
    # ending a stream at [DONE] returns its connection to the pool: no connection per request
    assert len({r["peer_port"] for r in recs["records"]}) <= 3
    # the requests queued behind the limit were sent later than submitted
    assert sum(r.sent_ns - r.submit_ns > 50e6 for r in results) >= 6


def test_no_connection_is_a_connect_error() -> None:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]          # bound, never listening: refused
        cfg = ClientConfig(f"http://127.0.0.1:{port}/v1", "m")
        done: list[GenerationResult] = []
        with StreamingClient(cfg) as client:
            client.submit(GenerationRequest(0, 4, prompt_text="x"), on_done=done.append)
            assert client.wait_idle(30)
    assert done[0].error is not None and done[0].error.kind is ErrorKind.CONNECT
    assert client.failure_counts() == {"connect": 1}


def test_submit_from_many_threads_and_a_raising_callback(server: RunningServer) -> None:
    done: list[GenerationResult] = []
    lock = threading.Lock()

    def on_done(r: GenerationResult) -> None:
        with lock:
            done.append(r)

    def bad_first(req: GenerationRequest, ft: FirstToken) -> None:
        raise RuntimeError("a buggy SUT")

    with StreamingClient(ClientConfig(server.base_url, "test-model", max_concurrency=8)) as client:
        def worker(k: int) -> None:
            for j in range(10):
                client.submit(GenerationRequest(k * 100 + j, 3, prompt_text="x", extra={"test": {"ttft_ms": 5.0,
                                                                                                 "tpot_ms": 1.0}}),
                              bad_first if j == 0 else None, on_done)
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert client.wait_idle(60)
        assert client.callback_errors == 4 and isinstance(client.last_callback_error, RuntimeError)
    assert sorted(r.request_id for r in done) == sorted(k * 100 + j for k in range(4) for j in range(10))
    assert all(r.ok for r in done)


def test_close_ends_queued_and_in_flight_requests_as_cancelled(server: RunningServer) -> None:
    done: list[GenerationResult] = []
    client = StreamingClient(ClientConfig(server.base_url, "test-model", max_concurrency=2)).start()
    for i in range(5):
        client.submit(GenerationRequest(i, 4, prompt_text="x", extra={"test": {"fault": "stall", "fault_after": 1}}),
                      on_done=done.append)
    assert not client.wait_idle(0.5)
    client.close()
    assert sorted(r.request_id for r in done) == list(range(5))
    assert {r.error.kind for r in done if r.error} == {ErrorKind.CANCELLED} and len(done) == 5
    reasons = Counter(r.error.reason for r in done if r.error)
    assert reasons == {"the client closed with the request in flight": 2, "the client closed with the request queued": 3}
    with pytest.raises(RuntimeError, match="not running"):
        client.submit(GenerationRequest(9, 1, prompt_text="x"))


def test_a_request_without_the_configured_prompt_form_is_refused(server: RunningServer) -> None:
    with StreamingClient(ClientConfig(server.base_url, "m", prompt_format="token_ids")) as client:
        with pytest.raises(ValueError, match="prompt_token_ids is needed"):
            client.submit(GenerationRequest(0, 1, prompt_text="only text"))
        assert client.pending == 0


def test_close_from_a_callback_is_refused_not_a_deadlock(server: RunningServer) -> None:
    client = StreamingClient(ClientConfig(server.base_url, "test-model")).start()
    try:
        client.submit(GenerationRequest(0, 2, prompt_text="x"), on_done=lambda r: client.close())
        assert client.wait_idle(30)
        assert client.callback_errors == 1 and "another thread" in str(client.last_callback_error)
    finally:
        client.close()
