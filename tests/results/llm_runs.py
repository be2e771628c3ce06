"""Harness run directories of an LLM (llama3.1-8b) made of real LoadGen logs: the v6.1 Intel llama3_1-8b result
(Offline and Server on a two-socket Xeon, real token latencies) put into the layout the harness writes, around a
genuine run directory of the test harness (its record.json, run.json, system.json, checksums.sha256 written with
mlrepro.harness.checksums.write_manifest).

What is not the Intel result's own, and why:
- the accuracy runs' mlperf_log_summary.txt: the Intel tree has none (the harness always writes LoadGen's); it is
  the real accuracy-run summary of the v6.0 MiTAC llama2-70b result of the same scenario;
- mlperf_log_accuracy.json: the tree keeps only the truncated log; the run's log is the complete entries of it
  (real token payloads, int32 as Intel's SUT returned them) and accuracy.txt's hash= names that log;
- an Interactive run: the Server run with its TTFT/TPOT p99 and requested targets set within the Interactive
  limits (500 ms / 30 ms), since a CPU cannot meet them;
- TEST06: verify_accuracy.txt with the lines the reference's compliance/TEST06/run_verification.py prints.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from check_testutil import FIXTURES, INTEL, INTEL_RES, TEST06_PASS, mllog_set
from results_testutil import clone_run

INTEL_TREE = FIXTURES / INTEL[0] / INTEL[1]
MITAC_RES = next((FIXTURES / "v6.0" / "closed_MiTAC" / "closed" / "MiTAC" / "results").glob("*/llama2-70b-99"))
BASE_RUN = "run-offline-sub"            # the genuine harness run every LLM run is cloned from
INTERACTIVE_TTFT_P99_NS = 450_000_000
INTERACTIVE_TPOT_P99_NS = 28_000_000


def complete_entries(truncated: bytes) -> bytes:
    """The complete entries of a truncated mlperf_log_accuracy.json (first and last 4 KiB) as a whole log."""
    head, _, tail = truncated.partition(b"\n\n...\n\n")
    entries = []
    for part in (head, tail):
        for line in part.decode().splitlines():
            line = line.strip().rstrip(",")
            if line.startswith("{") and line.endswith("}"):
                entries.append(json.loads(line))
    assert entries, "no complete entry in the truncated log"
    return ("[\n" + ",\n".join(json.dumps(e) for e in entries) + "\n]\n").encode()


def _scenario_files(dest: Path, scenario: str, test06: bool) -> None:
    source = "Server" if scenario == "Interactive" else scenario
    intel = INTEL_TREE / INTEL_RES / source
    perf = dest / scenario / "performance" / "run_1"
    perf.mkdir(parents=True)
    for name in ("mlperf_log_summary.txt", "mlperf_log_detail.txt"):
        shutil.copy(intel / "performance" / "run_1" / name, perf / name)
    acc = dest / scenario / "accuracy"
    acc.mkdir()
    shutil.copy(intel / "accuracy" / "mlperf_log_detail.txt", acc / "mlperf_log_detail.txt")
    shutil.copy(MITAC_RES / source / "accuracy" / "mlperf_log_summary.txt", acc / "mlperf_log_summary.txt")
    log = complete_entries((intel / "accuracy" / "mlperf_log_accuracy.json").read_bytes())
    (acc / "mlperf_log_accuracy.json").write_bytes(log)
    lines = [x for x in (intel / "accuracy" / "accuracy.txt").read_text().splitlines() if not x.startswith("hash=")]
    (acc / "accuracy.txt").write_text("\n".join(lines + [f"hash={hashlib.sha256(log).hexdigest()}"]) + "\n")
    for f in (dest / scenario).rglob("*"):
        if f.is_file():
            f.chmod(0o644)          # the fixtures are read-only
    if scenario == "Interactive":
        detail = perf / "mlperf_log_detail.txt"
        mllog_set(detail, "result_first_token_99.00_percentile_latency_ns", INTERACTIVE_TTFT_P99_NS)
        mllog_set(detail, "result_time_per_output_token_99.00_percentile_ns", INTERACTIVE_TPOT_P99_NS)
        mllog_set(detail, "requested_server_ttft_latency", 500_000_000)
        mllog_set(detail, "requested_server_tpot_latency", 30_000_000)
    if test06:
        (dest / scenario / "TEST06").mkdir()
        (dest / scenario / "TEST06" / "verify_accuracy.txt").write_text(TEST06_PASS)
    shutil.copy(INTEL_TREE / INTEL_RES / source / "user.conf", dest / "user.conf")
    (dest / "user.conf").chmod(0o644)


def llm_run(runs: Path, dst_parent: Path, run_id: str, scenario: str, *, test06: bool = True,
            benchmark: str = "llama3.1-8b", model_mapping: str = "", finished_at: str | None = None) -> Path:
    """A submission-mode run directory of ``benchmark`` (a workload named so; ``model_mapping``: the checker
    benchmark an open-division model maps to) and ``scenario`` (Offline, Server, Interactive), with TEST06 when
    ``test06``. ``runs``: the harness_runs copy holding BASE_RUN."""
    def edit(dst: Path) -> None:
        shutil.rmtree(dst / "Offline")
        _scenario_files(dst, scenario, test06)
        workload: dict[str, Any] = {"name": benchmark, "benchmark": benchmark, "model_mapping": model_mapping,
                                    "backend": "transformers", "device": "cpu", "batch_size": 16,
                                    "mlperf_model": "llama3_1-8b", "model_path": "/models/Llama-3.1-8B-Instruct",
                                    "dataset_path": "/data/cnn_eval.json", "options": {}}
        for name in ("record.json", "run.json"):
            data = json.loads((dst / name).read_text())
            data.update(scenario=scenario, mode="submission", workload=workload)
            if name == "record.json":
                data["settings"] = {**data["settings"], "short_run": False, "overrides": {}}
                data["calibration"] = None
                data["compliance"] = [{"test": "TEST06", "directory": f"{scenario}/TEST06", "passed": True,
                                       "verifications": [{"file": "verify_accuracy.txt", "kind": "accuracy",
                                                          "passed": True, "reason": "TEST06 verification complete"}]}
                                      ] if test06 else []
            (dst / name).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return clone_run(runs / BASE_RUN, dst_parent, run_id, finished_at=finished_at, edit=edit)
