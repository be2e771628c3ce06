"""The LLM token path against real LoadGen, with a test-only LLM whose token schedule is known
(token_workloads.ScheduledLLM): payloads, token counts and LoadGen's TTFT/TPOT arithmetic, read back from
LoadGen's own logs. Nothing here depends on the machine's speed: every check is an identity between numbers
LoadGen logged, or between what the SUT sent and what LoadGen kept."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from token_workloads import tokens_of

from mlrepro.harness.compliance.verification import verify_test06
from mlrepro.harness.core import run_harness
from mlrepro.harness.logparse import parse_detail_file, token_metrics
from mlrepro.harness.spec import RunSpec

QUIET: Callable[[str], None] = lambda m: None
N = 5


def _spec(make_spec: Callable[..., RunSpec], scenario: str, mode: str = "performance", **extra: object) -> RunSpec:
    base = {"Offline": {"min_duration_ms": 100, "min_query_count": 64},
            "SingleStream": {"min_duration_ms": 100, "min_query_count": 64},
            "Server": {"min_duration_ms": 100, "min_query_count": 480},
            "Interactive": {"min_duration_ms": 100, "min_query_count": 480}}[scenario]
    return make_spec(scenario=scenario, mode=mode, workload="scheduled-llm", run_id=f"sched-{scenario}-{mode}",
                     options={"dataset_size": 32, "n_tokens": N}, batch_size=8, settings=base, **extra)


def _entries(run: Path, sub: str) -> list[dict]:
    return json.loads((run / sub / "mlperf_log_accuracy.json").read_text())


@pytest.mark.parametrize("scenario", ["SingleStream", "Server", "Interactive"])
def test_ttft_tpot_are_loadgens_arithmetic_of_what_the_sut_reported(scenario: str, make_spec, tmp_path: Path) -> None:
    spec = _spec(make_spec, scenario)
    result = run_harness(spec, tmp_path, log=QUIET)
    assert result.exit_code == 0, (result.error, result.record["subruns"])
    run = tmp_path / spec.run_id
    detail = parse_detail_file(run / scenario / "performance/run_1/mlperf_log_detail.txt")
    tokens = result.record["subruns"][0]["results"]["tokens"]
    assert tokens == token_metrics(detail)
    res = detail.results
    # TPOT = (latency - TTFT) / (n_tokens - 1) per sample (logging.cc); with n fixed the means obey it too
    # (each mean is an integer division of a sum: a few ns of rounding)
    expected = (res["result_mean_latency_ns"] - res["result_first_token_mean_latency_ns"]) / (N - 1)
    assert abs(res["result_time_to_output_token_mean"] - expected) <= 2
    assert tokens["tpot_ns"]["mean"] == res["result_time_to_output_token_mean"]
    assert tokens["ttft_p99_ns"] == res["result_first_token_99.00_percentile_latency_ns"]
    assert tokens["tpot_p99_ns"] == res["result_time_per_output_token_99.00_percentile_ns"]
    assert set(tokens["ttft_ns"]["percentiles"]) >= {"50.00", "90.00", "99.00"}
    # every first token before its sample's end: TTFT <= latency, TPOT > 0
    assert 0 < res["result_first_token_max_latency_ns"] <= res["result_max_latency_ns"]
    assert tokens["tpot_ns"]["min"] > 0
    if scenario != "SingleStream":
        # the completed tokens/s is the completed samples/s x N up to the samples-1 of LoadGen's QPS formula
        assert tokens["completed_tokens_per_second"] > 0
        # Interactive runs the -interactive model's bounds (mlperf.conf: 500 ms / 30 ms), Server the plain one's
        bound = {"Server": (2_000_000_000, 100_000_000), "Interactive": (500_000_000, 30_000_000)}[scenario]
        assert (tokens["ttft_bound_ns"], tokens["tpot_bound_ns"]) == bound
        assert result.record["workload"]["mlperf_model"] == \
            ("llama3_1-8b-interactive" if scenario == "Interactive" else "llama3_1-8b")
        assert "Run successful" in tokens["early_stopping_ttft_result"]
        assert "Run successful" in tokens["early_stopping_tpot_result"]
        bounds = {t["setting"]: t for t in result.record["calibration"]["targets"][1:]}
        assert bounds["ttft_latency"]["source"] == "mlperf.conf" and bounds["ttft_latency"]["value"] == bound[0]
    assert result.record["subruns"][0]["dispatch"] == "token-stream"


def test_offline_tokens_per_second_and_batches(make_spec, tmp_path: Path) -> None:
    spec = _spec(make_spec, "Offline")
    result = run_harness(spec, tmp_path, log=QUIET)
    assert result.exit_code == 0, result.error
    sub = result.record["subruns"][0]
    tokens, samples_s = sub["results"]["tokens"], sub["results"]["samples_per_second"]
    # both are counts over LoadGen's same duration (results.cc): tokens/s = N x samples/s (6 significant digits)
    assert tokens["tokens_per_second"] == pytest.approx(N * samples_s, rel=1e-5)
    assert sub["dispatch"] == "token-batch"


def test_accuracy_log_holds_the_token_ids_and_counts(make_spec, tmp_path: Path) -> None:
    """Server accuracy run: data = the output's int64 token ids, token_data = the first token's, token_count = N."""
    spec = _spec(make_spec, "Server", mode="accuracy")
    result = run_harness(spec, tmp_path, log=QUIET)
    assert result.exit_code == 0, result.error
    entries = _entries(tmp_path / spec.run_id, "Server/accuracy")
    assert len(entries) == 32
    for e in entries:
        data = np.frombuffer(bytes.fromhex(e["data"]), dtype="<i8")
        assert np.array_equal(data, tokens_of(e["qsl_idx"], N))
        assert np.array_equal(np.frombuffer(bytes.fromhex(e["token_data"]), dtype="<i8"), data[:1])
        assert int(e["token_count"]) == N
    v = verify_test06(tmp_path / spec.run_id / "Server/accuracy/mlperf_log_accuracy.json", "Server", (2,))
    assert v.passed and v.text == ("First token check pass: True\nEOS check pass: True\n"
                                   "Sample length check pass: True\nTEST06 verification complete\n")
    assert result.record["accuracy"]["value"] == 100.0


def test_test06_compliance_run(make_spec, tmp_path: Path) -> None:
    """TEST06 in the harness: a performance run with the round's TEST06 audit.config, verified on its own."""
    spec = _spec(make_spec, "Offline", compliance=[{"test": "TEST06", "settings": {
        "accuracy_log_rng_seed": 720381539243781796, "accuracy_log_sampling_target": 100, "min_query_count": 100,
        "min_duration": 0, "sample_concatenate_permutation": 0}}])
    result = run_harness(spec, tmp_path, log=QUIET)
    assert result.exit_code == 0, result.error
    (audit,) = result.record["compliance"]
    assert audit["test"] == "TEST06" and audit["passed"] is True
    text = (tmp_path / spec.run_id / "Offline/TEST06/verify_accuracy.txt").read_text()
    assert text.splitlines() == ["First token check pass: Skipped", "EOS check pass: True",
                                 "Sample length check pass: True", "TEST06 verification complete"]


def test_test06_catches_padding_and_wrong_counts(tmp_path: Path) -> None:
    def entry(tokens: list[int], count: int, first: list[int]) -> dict:
        return {"seq_id": 0, "qsl_idx": 0, "data": np.array(tokens, "<i8").tobytes().hex(),
                "token_data": np.array(first, "<i8").tobytes().hex(), "token_count": count}

    log = tmp_path / "acc.json"
    log.write_text(json.dumps([entry([5, 6, 2, 2], 4, [5])]))
    v = verify_test06(log, "Server", (2,))
    assert not v.passed and "EOS check pass: False" in v.text and v.text.endswith("TEST06 verification failed\n")
    log.write_text(json.dumps([entry([5, 6, 2], 4, [7])]))
    v = verify_test06(log, "Interactive", (2,))
    assert "First token check pass: False" in v.text and "Sample length check pass: False" in v.text


def test_the_rounds_bounds_are_never_changed(make_spec, tmp_path: Path) -> None:
    """A workload with the round's bounds (mlperf.conf) refuses a profile that changes them (exit 3, one line);
    restating mlperf.conf's value changes nothing and runs."""
    from mlrepro.harness.spec import parse_spec

    base = json.loads(_spec(make_spec, "Interactive").to_json())
    changed = parse_spec({**base, "run_id": "bounds-changed", "settings": {**base["settings"], "ttft_latency": 5e9}})
    result = run_harness(changed, tmp_path, log=QUIET)
    assert result.exit_code == 3 and "ttft_latency is fixed by the round at 500 ms" in result.error, result.error
    same = parse_spec({**base, "run_id": "bounds-restated",
                       "settings": {**base["settings"], "ttft_latency": 5e8, "tpot_latency": 3e7}})
    result = run_harness(same, tmp_path, log=QUIET)
    assert result.exit_code == 0, result.error
