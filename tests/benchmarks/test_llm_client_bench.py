"""The LLM client benchmark's bookkeeping: requests matched to what the server did, and the sustained rate."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import llm_client as B  # noqa: E402


def _rec(tag, recv, first, last, n=16):
    return {"tag": tag, "recv_ns": recv, "first_ns": first, "last_ns": last, "n_tokens": n}


def test_requests_are_matched_by_tag_or_by_start_order() -> None:
    recs = [_rec("a", 0, 10_000_000, 40_000_000), _rec(None, 5_000_000, 16_000_000, 46_000_000),
            _rec(None, 1_000_000, 11_000_000, 41_000_000)]
    out = B.RunOutcome("x", 10.0, keyed=[("a", None, 10.5, 2.1)])
    B.match_server(out, recs[:1])
    assert out.vs_server_ttft_ms == [0.5] and abs(out.vs_server_tpot_ms[0] - 0.1) < 1e-9
    # no tags: the i-th request started goes with the i-th to arrive
    out = B.RunOutcome("x", 10.0, keyed=[(None, 4_900_000, 12.0, 2.0), (None, 900_000, 10.2, 2.0)])
    B.match_server(out, recs[1:])
    assert [round(x, 3) for x in out.vs_server_ttft_ms] == [0.2, 1.0]


def _summary(rate, ttft_p99, tpot_p99=0.1, failed=0):
    return {"rate": rate, "failed": failed, "error": None,
            "ttft_error_ms": {"p50": 0.5, "p99": ttft_p99}, "tpot_error_ms": {"p50": 0.0, "p99": tpot_p99},
            "error_vs_server_ms": {"ttft": {"p99": ttft_p99}, "tpot": {"p99": tpot_p99}}}


def test_sustained_rate_stops_at_the_first_rate_that_fails() -> None:
    table = B.sustained_table({"c": [_summary(10, 0.8), _summary(50, 0.9), _summary(100, 1.5), _summary(200, 0.7)],
                               "d": [_summary(10, 3.0)], "e": [_summary(10, 0.5, failed=1)]})
    assert table["schedule_p99_le_1ms"] == {"c": 50, "d": None, "e": None}
    assert table["server_p99_le_2ms"]["c"] == 200 and table["schedule_p99_le_5ms"]["d"] == 10
