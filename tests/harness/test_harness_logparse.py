"""logparse: real-looking summaries and detail logs, and garbage that must never crash it."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from mlrepro.harness.logparse import (
    parse_detail,
    parse_detail_file,
    parse_log_dir,
    parse_summary,
    parse_summary_file,
)

OFFLINE = """================================================
MLPerf Results Summary
================================================
SUT name : PySUT
Scenario : Offline
Mode     : PerformanceOnly
Samples per second: 466830
Result is : VALID
  Min duration satisfied : Yes
  Min queries satisfied : Yes
  Early stopping satisfied: Yes

================================================
Additional Stats
================================================
Min latency (ns)                : 1178158482
Max latency (ns)                : 1178158483
Mean latency (ns)               : 1178158482
50.00 percentile latency (ns)   : 1178158482
90.00 percentile latency (ns)   : 1178158482
99.90 percentile latency (ns)   : 1178158483

================================================
Test Parameters Used
================================================
samples_per_query : 550000
target_qps : 500000
qsl_rng_seed : 2085463073848966840
schedule_rng_seed : 16159082839903944936

1 warning encountered. See detailed log.

No errors encountered during test.
"""

SERVER = """================================================
MLPerf Results Summary
================================================
SUT name : PySUT
Scenario : Server
Mode     : PerformanceOnly
Completed samples per second    : 50286.99
Result is : INVALID
  Performance constraints satisfied : NO
  Min duration satisfied : Yes
  Min queries satisfied : Yes
  Early stopping satisfied: NO
Recommendations:
 * Reduce target QPS to improve latency.
Early Stopping Result:
 * Run unsuccessful.

================================================
Additional Stats
================================================
Scheduled samples per second : 50289.87
Min latency (ns)                : 2165
99.00 percentile latency (ns)   : 1745600

================================================
Test Parameters Used
================================================
target_qps : 50000

No warnings encountered during test.

2 ERRORS encountered. See detailed log.
"""

SINGLE = """Scenario : SingleStream
Mode     : PerformanceOnly
90.0th percentile latency (ns) : 4032
Result is : VALID
QPS w/ loadgen overhead         : 156162.65
QPS w/o loadgen overhead        : 252716.70
"""


def _mllog(key: str, value: object, error: bool = False, warning: bool = False) -> str:
    return ":::MLLOG " + json.dumps({"key": key, "value": value, "time_ms": 1.5, "namespace": "mlperf::logging",
                                     "event_type": "POINT_IN_TIME",
                                     "metadata": {"is_error": error, "is_warning": warning, "file": "x.cc"}})


DETAIL = "\n".join([
    _mllog("loadgen_version", "6.0.17 @ d6147c7eb7"),
    _mllog("effective_scenario", "Server"),
    _mllog("effective_test_mode", "PerformanceOnly"),
    _mllog("requested_qsl_rng_seed", 2085463073848966840),
    _mllog("effective_qsl_rng_seed", 2085463073848966840),
    _mllog("effective_sample_index_rng_seed", 2747215439041700203),
    _mllog("effective_schedule_rng_seed", 16159082839903944936),
    _mllog("effective_target_qps", 50000),
    "this line is garbage",
    ":::MLLOG {\"key\": \"truncated",
    _mllog("error_invalid_config", "Multiple conf files are used.", error=True),
    _mllog("warning_generic_message", "Logging allocation detected", warning=True),
    _mllog("result_validity", "VALID"),
    _mllog("result_completed_samples_per_sec", 50287),
    _mllog("early_stopping_met", True),
])


def test_offline_summary() -> None:
    s = parse_summary(OFFLINE)
    assert (s.scenario, s.mode, s.validity, s.is_valid) == ("Offline", "PerformanceOnly", "VALID", True)
    assert s.samples_per_second == 466830 and s.completed_samples_per_second is None
    assert s.min_latency_ns == 1178158482 and s.max_latency_ns == 1178158483
    assert s.latency_percentiles_ns == {"50.00": 1178158482, "90.00": 1178158482, "99.90": 1178158483}
    assert s.min_duration_satisfied is True and s.early_stopping_satisfied is True
    assert s.test_parameters["qsl_rng_seed"] == "2085463073848966840"
    assert s.test_parameters["schedule_rng_seed"] == "16159082839903944936"
    assert (s.warning_count, s.error_count) == (1, 0)
    assert s.result_latency_ns is None


def test_server_summary() -> None:
    s = parse_summary(SERVER)
    assert s.validity == "INVALID" and not s.is_valid
    assert s.completed_samples_per_second == 50286.99 and s.scheduled_samples_per_second == 50289.87
    assert s.performance_constraints_satisfied is False and s.early_stopping_satisfied is False
    assert s.latency_percentiles_ns == {"99.00": 1745600}
    assert (s.warning_count, s.error_count) == (0, 2)


def test_single_stream_summary() -> None:
    s = parse_summary(SINGLE)
    assert s.result_latency_percentile == 90.0 and s.result_latency_ns == 4032
    assert s.qps_with_loadgen_overhead == 156162.65 and s.qps_without_loadgen_overhead == 252716.70


def test_summary_with_garbled_values() -> None:
    s = parse_summary("Scenario : \nResult is : MAYBE\nSamples per second: fast\n90.0th percentile latency (ns) : x\n"
                      "Min duration satisfied : perhaps\nMean latency (ns) : nan\n")
    assert s.scenario is None and s.validity is None and s.samples_per_second is None
    assert s.result_latency_ns is None and s.min_duration_satisfied is None and s.mean_latency_ns is None


def test_detail_log() -> None:
    d = parse_detail(DETAIL)
    assert d.loadgen_version == "6.0.17 @ d6147c7eb7"
    assert (d.scenario, d.mode, d.validity) == ("Server", "PerformanceOnly", "VALID")
    assert d.seeds == {"qsl_rng_seed": 2085463073848966840, "sample_index_rng_seed": 2747215439041700203,
                       "schedule_rng_seed": 16159082839903944936}
    assert d.effective["effective_target_qps"] == 50000
    assert d.requested["requested_qsl_rng_seed"] == 2085463073848966840
    assert d.results["result_completed_samples_per_sec"] == 50287 and d.results["early_stopping_met"] is True
    assert [e.key for e in d.errors] == ["error_invalid_config"]
    assert [e.key for e in d.warnings] == ["warning_generic_message"]
    assert d.errors[0].to_dict() == {"key": "error_invalid_config", "value": "Multiple conf files are used.",
                                     "time_ms": 1.5}
    assert d.garbled_lines == 2 and d.entry_count == 13


def test_detail_without_seeds_or_result() -> None:
    d = parse_detail(_mllog("effective_qsl_rng_seed", "zero") + "\n" + _mllog("result_validity", "SO-SO"))
    assert d.seeds == {"qsl_rng_seed": None, "sample_index_rng_seed": None, "schedule_rng_seed": None}
    assert d.validity is None


def test_files_and_dirs(tmp_path: Path) -> None:
    assert parse_summary_file(tmp_path / "missing.txt") is None
    assert parse_detail_file(tmp_path / "missing.txt") is None
    logs = parse_log_dir(tmp_path)
    assert logs.summary is None and logs.detail is None and logs.validity is None
    (tmp_path / "mlperf_log_detail.txt").write_text(DETAIL)
    assert parse_log_dir(tmp_path).validity == "VALID"   # falls back to the detail's result_validity
    (tmp_path / "mlperf_log_summary.txt").write_bytes(SERVER.encode() + b"\xff\xfe binary tail")
    assert parse_log_dir(tmp_path).validity == "INVALID"  # the summary wins


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_garbage_never_crashes(text: str) -> None:
    parse_summary(text)
    parse_detail(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(
    st.sampled_from([OFFLINE, SERVER, SINGLE, DETAIL]).map(lambda t: t.splitlines()),
    st.lists(st.text(max_size=80), max_size=5),
    st.lists(st.builds(lambda k, v: f":::MLLOG {json.dumps({'key': k, 'value': v, 'metadata': v})}",
                       st.text(max_size=20), st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                                                          lambda c: st.lists(c) | st.dictionaries(st.text(), c),
                                                          max_leaves=5)), max_size=5),
), max_size=6))
def test_mixed_real_and_garbled_lines_never_crash(chunks: list[list[str]]) -> None:
    text = "\n".join(line for chunk in chunks for line in chunk)
    s, d = parse_summary(text), parse_detail(text)
    assert s.validity in (None, "VALID", "INVALID") and d.validity in (None, "VALID", "INVALID")
