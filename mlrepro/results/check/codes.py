"""The rule codes of ``mlrepro check``: one table, what each means and whether the official MLCommons checker
rejects the same thing (``official``) or mlrepro goes further (``own``). The README's table is this one.

Public API::

    CODES: Mapping[str, Code]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Code:
    code: str
    origin: str            # official | own | crash (the official checker stops with a traceback instead)
    meaning: str


_TABLE = (
    # tree and submitter structure
    ("TREE_ROOT", "crash", "the tree root is not a directory"),
    ("NO_DIVISION", "own", "no closed/, open/ or network/ folder"),
    ("NO_RESULTS", "own", "the tree holds no result at all"),
    ("EMPTY_FOLDER", "own", "a division, submitter, results, system, benchmark, scenario, run or TEST folder is "
                            "empty"),
    ("IGNORED_ENTRY", "own", "an entry of the tree root that is not a division (the checker ignores it)"),
    ("RESULTS_DIR_MISSING", "crash", "a submitter has no results/ folder"),
    ("CODE_DIR_MISSING", "official", "a submitter has no src/ (v6.x) or code/ (v5.x) folder"),
    ("MODEL_MAPPING", "crash", "model_mapping.json is unreadable, not an object, or maps to an unknown benchmark"),
    # systems
    ("SYSTEM_DESC_MISSING", "crash", "results/<system> has no systems/<system>.json"),
    ("SYSTEM_DESC_UNREADABLE", "crash", "a systems json is not valid JSON or not an object"),
    ("SYSTEM_FIELD_MISSING", "official", "a required systems field is missing"),
    ("SYSTEM_FIELD_EMPTY", "official", "a systems field that needs a meaningful value is empty"),
    ("SYSTEM_FIELD_TYPE", "own", "a systems field has a JSON type the round does not expect"),
    ("SYSTEM_FIELD_VALUE", "official", "status or system_type is not an allowed value"),
    ("SYSTEM_MISMATCH", "official", "division or submitter in the systems json differs from the folders"),
    ("NETWORK_MODE", "official", "is_network does not fit the division, or a network SUT name lacks 'Network SUT'"),
    ("SYSTEM_UNUSED", "own", "a systems json no result uses"),
    ("SYSTEM_NOT_READY", "own", "a systems field a reviewer would still refuse (no submitter_contact, N/A where the "
                                "rules need a meaningful value, starter text, empty notes): a warning, with the field"),
    # result folder
    ("SCENARIO_FOLDER", "official", "a scenario folder name that is no scenario"),
    ("BENCHMARK_UNKNOWN", "crash", "a benchmark folder the round does not know (and no mapping names)"),
    ("SCENARIOS_REQUIRED", "official", "closed/network: a required scenario is missing or one is not allowed"),
    ("PERF_MISSING", "crash", "performance/run_1 or its detail log is missing"),
    ("LOG_MISSING", "own", "a LoadGen summary log is missing (of an accuracy run: a warning)"),
    ("DETAIL_UNREADABLE", "crash", "a detail log that does not start with a :::MLLOG entry or has a garbled one"),
    ("DETAIL_INCOMPLETE", "own", "a detail log cut off (no result_validity, or a partial last line)"),
    ("INVALID_RESULT", "own", "LoadGen says INVALID"),
    ("LOADGEN_ERROR", "own", "LoadGen logged errors (official only for accuracy logs)"),
    ("SEEDS", "official", "the RNG seeds are not the round's"),
    ("PERF_SAMPLE_COUNT", "official", "performance_sample_count below the benchmark's"),
    ("EARLY_STOPPING", "official", "the early-stopping condition was not met"),
    ("LATENCY", "official", "the target latency exceeds the benchmark's constraint"),
    ("TOKEN_LATENCY", "official", "LLM: token latencies off, or TTFT/TPOT above the limits"),
    ("MIN_QUERIES", "official", "min_query_count or Offline samples per query below the round's"),
    ("MIN_DURATION", "official", "min_duration below 600 s (a warning in the open division)"),
    ("INFERRED_RESULT", "official", "a result of another scenario's run that may not be inferred"),
    ("RESULT_MISSING", "official", "the detail log has no value for the result metric"),
    # endpoints results (v6.1: the endpoints harness's files instead of LoadGen logs)
    ("ENDPOINTS_FILE", "crash", "an endpoints result's config.yaml or performance/result_summary.json is missing or "
                                "unreadable"),
    ("ENDPOINTS_MODEL", "official", "a benchmark that may not be submitted as an endpoints result"),
    ("ENDPOINTS_RUN", "own", "the endpoints run did not complete (state, complete) or samples failed"),
    # accuracy
    ("ACCURACY_MISSING", "official", "the accuracy folder or one of its files is missing"),
    ("ACCURACY_TARGET", "official", "closed/network: a metric below the target, above its upper limit, or absent"),
    ("ACCURACY_FORMAT", "own", "open: accuracy.txt has no value for the benchmark's metric"),
    ("ACCURACY_HASH", "own", "no hash=, or hash= is not the sha256 of a full accuracy log"),
    ("FULL_LOG_CORRUPT", "own", "the full accuracy log kept beside the tree is not JSON or not the one named"),
    ("TRUNCATION", "official", "mlperf_log_accuracy.json in the tree is larger than 10 KiB"),
    ("DATASET_COVERAGE", "official", "the accuracy run did not cover the dataset (a warning in the open division)"),
    ("EXTRA_ACCURACY_FILES", "official", "files the benchmark's accuracy folder must hold (images, videos)"),
    # measurements
    ("MEASUREMENTS_MISSING", "official", "no measurements json"),
    ("MEASUREMENTS_UNREADABLE", "crash", "the measurements json is not valid JSON or not an object"),
    ("MEASUREMENTS_FIELD", "official", "a measurements field is missing or empty"),
    ("FILE_MISSING", "official", "user.conf or README.md is missing"),
    ("USER_CONF_EMPTY", "official", "user.conf is empty"),
    ("FILE_EMPTY", "official", "README.md is empty"),
    # compliance
    ("COMPLIANCE_MISSING", "official", "closed/network: a compliance test folder or file is missing"),
    ("COMPLIANCE_FAILED", "official", "a compliance verification does not say TEST PASS"),
    ("COMPLIANCE_FILES", "official", "a compliance folder holds other files than the test produces"),
    ("POWER_NOT_CHECKED", "own", "power measurements are present; mlrepro does not check them"),
)

CODES: Mapping[str, Code] = {c: Code(c, o, m) for c, o, m in _TABLE}
