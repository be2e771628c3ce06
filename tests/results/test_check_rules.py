"""One rule at a time: a copy of a real tree the official checker accepts, with only that rule broken, gives an
error (or warning) of that rule's code on the right path, and nothing else."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from check_testutil import codes, cut_before, edit_json, mllog_drop, mllog_set, paths, real_tree

from mlrepro.results.check import check_tree
from mlrepro.results.check.codes import CODES

MITAC = ("v6.0", "closed_MiTAC")
REDHAT = ("v5.1", "closed_RedHat")
COREWEAVE = ("v6.0", "open_CoreWeave")

M = "closed/MiTAC"
SYS = f"{M}/systems/8xMI350X_2xEPYC-9755.json"
RES = f"{M}/results/8xMI350X_2xEPYC-9755"
OFF = f"{RES}/llama2-70b-99/Offline"
SRV = f"{RES}/llama2-70b-99/Server"
INT = f"{RES}/llama2-70b-99/Interactive"
PERF = "performance/run_1/mlperf_log_detail.txt"
ACC = "accuracy/mlperf_log_detail.txt"
R = "closed/RedHat"
RH_SYS = "XE8640_4xH100_vLLM"
RH_OFF = f"{R}/results/{RH_SYS}/llama3.1-8b/Offline"
CW = "open/CoreWeave"
CW_OFF = f"{CW}/results/GB300-NVL72_GB300-288GB_aarch64x64_TRT/deepseek-r1/Offline"


@dataclass(frozen=True)
class Case:
    id: str
    tree: tuple[str, str]
    mutate: Callable[[Path], None]
    errors: frozenset[str]                 # exactly these error codes
    path: str                              # a finding of the first code (sorted) names this path
    warnings: frozenset[str] = frozenset()


def case(id: str, tree: tuple[str, str], mutate: Callable[[Path], None], errors: set[str] | str, path: str,
         warnings: set[str] = frozenset()) -> Case:   # type: ignore[assignment]
    return Case(id, tree, mutate, frozenset({errors} if isinstance(errors, str) else errors), path,
                frozenset(warnings))


def write(rel: str, text: str | bytes) -> Callable[[Path], None]:
    def go(root: Path) -> None:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return go


def remove(rel: str) -> Callable[[Path], None]:
    def go(root: Path) -> None:
        p = root / rel
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    return go


def mkdir(rel: str) -> Callable[[Path], None]:
    return lambda root: (root / rel).mkdir(parents=True)


def rename(rel: str, new: str) -> Callable[[Path], None]:
    return lambda root: (root / rel).rename(root / rel.rsplit("/", 1)[0] / new)


def setlog(rel: str, key: str, value: object) -> Callable[[Path], None]:
    return lambda root: mllog_set(root / rel, key, value)


def sysjson(rel: str = SYS, **changes: object) -> Callable[[Path], None]:
    return lambda root: edit_json(root / rel, **changes)


def replace(rel: str, old: str, new: str) -> Callable[[Path], None]:
    def go(root: Path) -> None:
        p = root / rel
        text = p.read_text()
        assert old in text, (rel, old)
        p.write_text(text.replace(old, new))
    return go


def append_error(rel: str) -> Callable[[Path], None]:
    line = (':::MLLOG {"key": "error_generic_message", "value": "SUT returned a wrong response count", '
            '"time_ms": 1.0, "namespace": "mlperf::logging", "event_type": "POINT_IN_TIME", '
            '"metadata": {"is_error": true, "is_warning": false, "file": "x.cc", "line_no": 1, '
            '"pid": 1, "tid": 1}}\n')

    def go(root: Path) -> None:
        p = root / rel
        lines = p.read_text().splitlines(keepends=True)
        p.write_text("".join(lines[:5] + [line] + lines[5:]))
    return go


def garble(rel: str) -> Callable[[Path], None]:
    def go(root: Path) -> None:
        p = root / rel
        lines = p.read_text().splitlines(keepends=True)
        lines[10] = lines[10][:40] + "\n"
        p.write_text("".join(lines))
    return go


def cut(rel: str, key: str) -> Callable[[Path], None]:
    return lambda root: cut_before(root / rel, key)


def cut_mid_line(rel: str) -> Callable[[Path], None]:
    def go(root: Path) -> None:
        p = root / rel
        data = p.read_bytes()
        p.write_bytes(data[:len(data) - 40])
    return go


def hash_of_truncated(rel: str) -> Callable[[Path], None]:
    def go(root: Path) -> None:
        txt = root / rel / "accuracy/accuracy.txt"
        digest = hashlib.sha256((root / rel / "accuracy/mlperf_log_accuracy.json").read_bytes()).hexdigest()
        lines = [x for x in txt.read_text().splitlines() if not x.startswith("hash=")]
        txt.write_text("\n".join(lines + [f"hash={digest}"]) + "\n")
    return go


def untruncated_log(rel: str) -> Callable[[Path], None]:
    def go(root: Path) -> None:
        entries = [{"seq_id": i, "qsl_idx": i, "data": "00" * 40} for i in range(200)]
        data = json.dumps(entries, indent=1).encode()
        (root / rel / "accuracy/mlperf_log_accuracy.json").write_bytes(data)
        replace(f"{rel}/accuracy/accuracy.txt", "hash=", "hash_was=")(root)
        with open(root / rel / "accuracy/accuracy.txt", "a") as f:
            f.write(f"hash={hashlib.sha256(data).hexdigest()}\n")
    return go


def compose(*steps: Callable[[Path], None]) -> Callable[[Path], None]:
    def go(root: Path) -> None:
        for s in steps:
            s(root)
    return go


CASES = [
    # structure
    case("empty-division", MITAC, mkdir("open"), "EMPTY_FOLDER", "open"),
    case("empty-benchmark", MITAC, mkdir(f"{RES}/llama2-70b-99.9-extra"), "EMPTY_FOLDER", f"{RES}/llama2-70b-99.9-extra"),
    case("empty-scenario", MITAC, mkdir(f"{RES}/llama2-70b-99/Offline/performance/run_2"), "EMPTY_FOLDER",
         f"{OFF}/performance/run_2"),
    case("empty-TEST01", MITAC, mkdir(f"{OFF}/TEST01"), "EMPTY_FOLDER", f"{OFF}/TEST01"),
    case("no-results-dir", MITAC, remove(f"{M}/results"), {"RESULTS_DIR_MISSING", "NO_RESULTS"}, ".",
         warnings={"SYSTEM_UNUSED"}),
    case("no-src", MITAC, remove(f"{M}/src"), "CODE_DIR_MISSING", f"{M}/src"),
    case("no-code-v5", REDHAT, remove(f"{R}/code"), "CODE_DIR_MISSING", f"{R}/code"),
    case("ignored-root-dir", MITAC, mkdir("assets/x"), set(), "assets", warnings={"IGNORED_ENTRY"}),
    case("model-mapping-garbage", COREWEAVE, write(f"{CW}/model_mapping.json", "{nope"), "MODEL_MAPPING",
         f"{CW}/model_mapping.json"),
    case("benchmark-unknown", MITAC, rename(f"{RES}/llama2-70b-99", "llama9-70b"), "BENCHMARK_UNKNOWN",
         f"{RES}/llama9-70b"),
    case("open-benchmark-unmapped", COREWEAVE, rename(f"{CW_OFF.rsplit('/', 1)[0]}", "my-model"),
         "BENCHMARK_UNKNOWN", f"{CW}/results/GB300-NVL72_GB300-288GB_aarch64x64_TRT/my-model"),
    case("scenario-missing", MITAC, remove(OFF), "SCENARIOS_REQUIRED", f"{RES}/llama2-70b-99"),
    case("scenario-folder", MITAC, rename(INT, "Interactiv"), {"SCENARIO_FOLDER", "SCENARIOS_REQUIRED"},
         f"{RES}/llama2-70b-99"),
    # systems
    case("system-missing", MITAC, remove(SYS), "SYSTEM_DESC_MISSING", SYS),
    case("system-not-json", MITAC, write(SYS, "{ not json"), "SYSTEM_DESC_UNREADABLE", SYS),
    case("system-not-object", MITAC, write(SYS, "[1, 2]"), "SYSTEM_DESC_UNREADABLE", SYS),
    case("system-field-missing", MITAC, sysjson(cooling=...), "SYSTEM_FIELD_MISSING", SYS),
    case("system-field-empty", MITAC, sysjson(accelerators_per_node=0), "SYSTEM_FIELD_EMPTY", SYS),
    case("system-field-type", MITAC, sysjson(host_memory_capacity=["3 TB"]), set(), SYS,
         warnings={"SYSTEM_FIELD_TYPE"}),
    case("system-status", MITAC, sysjson(status="soon"), "SYSTEM_FIELD_VALUE", SYS),
    case("system-type", MITAC, sysjson(system_type="cloud"), "SYSTEM_FIELD_VALUE", SYS),
    case("system-submitter", MITAC, sysjson(submitter="Someone"), "SYSTEM_MISMATCH", SYS),
    case("system-division", MITAC, sysjson(division="open"), "SYSTEM_MISMATCH", SYS),
    case("system-unused", MITAC, lambda root: shutil.copy(root / SYS, root / M / "systems/spare.json"), set(),
         f"{M}/systems/spare.json", warnings={"SYSTEM_UNUSED"}),
    case("system-unused-garbage", MITAC, write(f"{M}/systems/spare.json", "{"), "SYSTEM_DESC_UNREADABLE",
         f"{M}/systems/spare.json"),
    # performance run
    case("perf-detail-missing", MITAC, remove(f"{OFF}/{PERF}"), "PERF_MISSING", f"{OFF}/{PERF}"),
    case("perf-folder-missing", MITAC, remove(f"{OFF}/performance"), "PERF_MISSING", f"{OFF}/performance/run_1"),
    case("perf-summary-missing", MITAC, remove(f"{OFF}/performance/run_1/mlperf_log_summary.txt"), "LOG_MISSING",
         f"{OFF}/performance/run_1/mlperf_log_summary.txt"),
    case("perf-cut-before-validity", MITAC, cut(f"{OFF}/{PERF}", "result_validity"), "DETAIL_INCOMPLETE",
         f"{OFF}/{PERF}"),
    case("perf-cut-mid-line", MITAC, cut_mid_line(f"{OFF}/{PERF}"), "DETAIL_INCOMPLETE", f"{OFF}/{PERF}"),
    case("perf-garbled", MITAC, garble(f"{OFF}/{PERF}"), "DETAIL_UNREADABLE", f"{OFF}/{PERF}"),
    case("perf-not-a-log", MITAC, write(f"{OFF}/{PERF}", "hello\n"), {"DETAIL_UNREADABLE", "DETAIL_INCOMPLETE"},
         f"{OFF}/{PERF}"),
    case("invalid", MITAC, compose(setlog(f"{OFF}/{PERF}", "result_validity", "INVALID"),
                                   replace(f"{OFF}/performance/run_1/mlperf_log_summary.txt", "Result is : VALID",
                                           "Result is : INVALID")),
         "INVALID_RESULT", f"{OFF}/performance/run_1/mlperf_log_summary.txt"),
    case("loadgen-error-perf", MITAC, append_error(f"{OFF}/{PERF}"), "LOADGEN_ERROR", f"{OFF}/{PERF}"),
    case("loadgen-error-accuracy", MITAC, append_error(f"{OFF}/{ACC}"), "LOADGEN_ERROR", f"{OFF}/{ACC}"),
    case("seeds", MITAC, setlog(f"{OFF}/{PERF}", "effective_schedule_rng_seed", 0), "SEEDS", f"{OFF}/{PERF}"),
    case("perf-sample-count", MITAC, setlog(f"{OFF}/{PERF}", "effective_performance_sample_count", 1000),
         "PERF_SAMPLE_COUNT", f"{OFF}/{PERF}"),
    case("early-stopping", MITAC, setlog(f"{SRV}/{PERF}", "early_stopping_met", False), "EARLY_STOPPING",
         f"{SRV}/{PERF}"),
    case("latency-constraint", MITAC, setlog(f"{SRV}/{PERF}", "effective_target_latency_ns", 30_000_000_000),
         "LATENCY", f"{SRV}/{PERF}"),
    case("ttft-server", MITAC, setlog(f"{SRV}/{PERF}", "result_first_token_99.00_percentile_latency_ns",
                                      2_500_000_000), "TOKEN_LATENCY", f"{SRV}/{PERF}"),
    case("ttft-interactive-limits", MITAC, setlog(f"{INT}/{PERF}", "result_first_token_99.00_percentile_latency_ns",
                                                  460_000_000), "TOKEN_LATENCY", f"{INT}/{PERF}"),
    case("token-latencies-off", MITAC, setlog(f"{OFF}/{PERF}", "requested_use_token_latencies", False),
         "TOKEN_LATENCY", f"{OFF}/{PERF}"),
    case("offline-samples-per-query", MITAC, setlog(f"{OFF}/{PERF}", "effective_samples_per_query", 1000),
         "MIN_QUERIES", f"{OFF}/{PERF}"),
    case("min-duration-closed", MITAC, setlog(f"{OFF}/{PERF}", "effective_min_duration_ms", 60000), "MIN_DURATION",
         f"{OFF}/{PERF}"),
    case("min-duration-open", COREWEAVE, setlog(f"{CW_OFF}/{PERF}", "effective_min_duration_ms", 60000), set(),
         f"{CW_OFF}/{PERF}", warnings={"MIN_DURATION"}),
    case("inferred-on-datacenter", MITAC, setlog(f"{OFF}/{PERF}", "effective_scenario", "MultiStream"),
         {"INFERRED_RESULT", "RESULT_MISSING"}, f"{OFF}/{PERF}"),
    case("result-missing", MITAC, lambda root: mllog_drop(root / OFF / PERF, "result_tokens_per_second"),
         "RESULT_MISSING", f"{OFF}/{PERF}"),
    case("power-present", MITAC, write(f"{OFF}/performance/power/server.json", "{}"), set(),
         f"{OFF}/performance/power", warnings={"POWER_NOT_CHECKED"}),
    # accuracy
    case("accuracy-folder-missing", MITAC, remove(f"{OFF}/accuracy"), "ACCURACY_MISSING", f"{OFF}/accuracy"),
    case("accuracy-log-missing", MITAC, remove(f"{OFF}/accuracy/mlperf_log_accuracy.json"), "ACCURACY_MISSING",
         f"{OFF}/accuracy/mlperf_log_accuracy.json"),
    case("accuracy-detail-missing", MITAC, remove(f"{OFF}/{ACC}"), "ACCURACY_MISSING", f"{OFF}/{ACC}"),
    case("accuracy-detail-cut", MITAC, cut(f"{OFF}/{ACC}", "power_end"), "DETAIL_INCOMPLETE", f"{OFF}/{ACC}"),
    case("accuracy-below-target", MITAC, replace(f"{OFF}/accuracy/accuracy.txt", "'rouge1': 44.4576",
                                                 "'rouge1': 40.1"), "ACCURACY_TARGET", f"{OFF}/accuracy/accuracy.txt"),
    case("accuracy-above-limit", MITAC, replace(f"{OFF}/accuracy/accuracy.txt", "'tokens_per_sample': 284.0",
                                                "'tokens_per_sample': 400.0"), "ACCURACY_TARGET",
         f"{OFF}/accuracy/accuracy.txt"),
    case("accuracy-open-no-metric", COREWEAVE, replace(f"{CW_OFF}/accuracy/accuracy.txt", "'exact_match'", "'em'"),
         set(), f"{CW_OFF}/accuracy/accuracy.txt", warnings={"ACCURACY_FORMAT"}),
    case("accuracy-no-hash", MITAC, replace(f"{OFF}/accuracy/accuracy.txt", "hash=", "sha="), "ACCURACY_HASH",
         f"{OFF}/accuracy/accuracy.txt"),
    case("accuracy-hash-of-truncated-log", MITAC, hash_of_truncated(OFF), "ACCURACY_HASH",
         f"{OFF}/accuracy/accuracy.txt"),
    case("accuracy-log-not-truncated", MITAC, untruncated_log(OFF), "TRUNCATION",
         f"{OFF}/accuracy/mlperf_log_accuracy.json"),
    case("dataset-coverage-closed", MITAC, setlog(f"{OFF}/{ACC}", "effective_accuracy_sample_count", 5000),
         "DATASET_COVERAGE", f"{OFF}/{ACC}"),
    case("dataset-coverage-open", COREWEAVE, setlog(f"{CW_OFF}/{ACC}", "effective_accuracy_sample_count", 400),
         set(), f"{CW_OFF}/{ACC}", warnings={"DATASET_COVERAGE"}),
    # measurements
    case("measurements-missing", MITAC, remove(f"{OFF}/measurements.json"), "MEASUREMENTS_MISSING",
         f"{OFF}/measurements.json"),
    case("measurements-garbage", MITAC, write(f"{OFF}/measurements.json", "{"), "MEASUREMENTS_UNREADABLE",
         f"{OFF}/measurements.json"),
    case("measurements-field", MITAC, sysjson(f"{OFF}/measurements.json", retraining=...), "MEASUREMENTS_FIELD",
         f"{OFF}/measurements.json"),
    case("measurements-field-empty", MITAC, sysjson(f"{OFF}/measurements.json", weight_data_types=""),
         "MEASUREMENTS_FIELD", f"{OFF}/measurements.json"),
    case("user-conf-missing", MITAC, remove(f"{OFF}/user.conf"), "FILE_MISSING", f"{OFF}/user.conf"),
    case("user-conf-empty", MITAC, write(f"{OFF}/user.conf", ""), "USER_CONF_EMPTY", f"{OFF}/user.conf"),
    case("readme-empty", MITAC, write(f"{OFF}/README.md", ""), "FILE_EMPTY", f"{OFF}/README.md"),
    case("v5-measurements-missing", REDHAT,
         remove(f"{R}/measurements/{RH_SYS}/llama3.1-8b/Offline/{RH_SYS}.json"), "MEASUREMENTS_MISSING",
         f"{R}/measurements/{RH_SYS}/llama3.1-8b/Offline/{RH_SYS}[_Offline].json"),
    case("v5-user-conf-missing", REDHAT, remove(f"{R}/measurements/{RH_SYS}/llama3.1-8b/Offline/user.conf"),
         "FILE_MISSING", f"{R}/measurements/{RH_SYS}/llama3.1-8b/Offline/user.conf"),
    # compliance
    case("compliance-missing", MITAC, remove(f"{OFF}/TEST06"), "COMPLIANCE_MISSING", f"{OFF}/TEST06"),
    case("compliance-failed", MITAC, replace(f"{OFF}/TEST06/verify_accuracy.txt", "EOS check pass: True",
                                             "EOS check pass: False"), "COMPLIANCE_FAILED",
         f"{OFF}/TEST06/verify_accuracy.txt"),
    case("compliance-verify-missing", MITAC, remove(f"{OFF}/TEST06/verify_accuracy.txt"), "COMPLIANCE_MISSING",
         f"{OFF}/TEST06/verify_accuracy.txt"),
    case("v5-compliance-missing", REDHAT, remove(f"{R}/compliance/{RH_SYS}/llama3.1-8b/Offline/TEST06"),
         "COMPLIANCE_MISSING", f"{R}/compliance/{RH_SYS}/llama3.1-8b/Offline/TEST06"),
]


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_one_broken_rule(tmp_path: Path, c: Case) -> None:
    root = real_tree(tmp_path, *c.tree)
    assert check_tree(root, version=c.tree[0]).ok
    c.mutate(root)
    report = check_tree(root, version=c.tree[0])
    assert codes(report) == set(c.errors), [str(f) for f in report.findings]
    assert codes(report, "warning") == set(c.warnings), [str(f) for f in report.findings]
    main = sorted(c.errors or c.warnings)[0]
    assert c.path in paths(report, main), [str(f) for f in report.findings]
    assert report.ok == (not c.errors)


def test_every_code_is_documented() -> None:
    for c in CASES:
        for code in c.errors | c.warnings:
            assert code in CODES


def test_root_that_is_no_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    report = check_tree(tmp_path / "file")
    assert [(f.code, f.severity) for f in report.findings] == [("TREE_ROOT", "error")]


def test_empty_division_only(tmp_path: Path) -> None:
    (tmp_path / "t" / "open").mkdir(parents=True)
    report = check_tree(tmp_path / "t")
    assert codes(report) == {"EMPTY_FOLDER", "NO_RESULTS"}
    assert paths(report, "EMPTY_FOLDER") == ["open"]


def test_empty_tree(tmp_path: Path) -> None:
    report = check_tree(tmp_path)
    assert codes(report) == {"NO_DIVISION"} and not report.ok
