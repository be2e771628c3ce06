"""Helpers of the check tests: copies of the real submission fixtures and small editors of LoadGen logs."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from pathlib import Path
from typing import Any

from mlrepro.results.check import CheckReport

FIXTURES = Path("/work/shared/fixtures/real-submissions")
#: every real tree: (round folder, tree folder)
REAL_TREES = tuple(sorted((p.parent.name, p.name) for p in FIXTURES.glob("v*/*") if p.is_dir()))


def real_tree(dest: Path, rnd: str, name: str) -> Path:
    """A writable copy of a real fixture tree without its official-verdict.json."""
    root = dest / name
    shutil.copytree(FIXTURES / rnd / name, root, ignore=shutil.ignore_patterns("official-verdict.json"))
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            os.chmod(p, os.stat(p).st_mode | stat.S_IWUSR)
    os.chmod(root, os.stat(root).st_mode | stat.S_IWUSR)
    return root


def verdict(rnd: str, name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / rnd / name / "official-verdict.json").read_text())


def mllog_set(path: Path, key: str, value: Any) -> None:
    """Set the value of the (first) :::MLLOG entry ``key`` of a detail log."""
    text = path.read_text()
    pattern = re.compile(r'(:::MLLOG \{"key": "' + re.escape(key) + r'", "value": )(.*?)(, "time_ms")')
    new, n = pattern.subn(lambda m: m.group(1) + json.dumps(value) + m.group(3), text, count=1)
    assert n == 1, f"{key} not in {path}"
    path.write_text(new)


def mllog_drop(path: Path, key: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    kept = [x for x in lines if not x.startswith(f':::MLLOG {{"key": "{key}"')]
    assert len(kept) < len(lines), f"{key} not in {path}"
    path.write_text("".join(kept))


def cut_before(path: Path, key: str) -> None:
    """Cut a detail log at the line of ``key`` (a log ended before it, at a line boundary)."""
    text = path.read_text()
    i = text.index(f':::MLLOG {{"key": "{key}"')
    path.write_text(text[:i])


def edit_json(path: Path, **changes: Any) -> None:
    data = json.loads(path.read_text())
    for k, v in changes.items():
        if v is ...:
            del data[k]
        else:
            data[k] = v
    path.write_text(json.dumps(data, indent=2))


#: warnings about a systems json's readiness for review (tests/results/test_systems_desc.py and
#: test_check.py::test_systems_readiness cover them): real accepted trees and test trees carry them by nature,
#: the rule tests look at everything else
READINESS = "SYSTEM_NOT_READY"


def codes(report: CheckReport, severity: str = "error") -> set[str]:
    return {f.code for f in report.findings if f.severity == severity and f.code != READINESS}


def paths(report: CheckReport, code: str) -> list[str]:
    return [f.path for f in report.findings if f.code == code]


def to_closed(tree: Path, submitter: str, benchmark: str = "resnet") -> Path:
    """Move an open-division tree mlrepro collected to the closed division (its model folder renamed to the
    MLPerf benchmark, the systems json's division changed). Returns the closed submitter folder."""
    sub = tree / "open" / submitter
    closed = tree / "closed" / submitter
    closed.parent.mkdir()
    shutil.move(str(sub), str(closed))
    shutil.rmtree(tree / "open")
    (closed / "model_mapping.json").unlink()
    for bench in list((closed / "results").glob("*/*")):
        bench.rename(bench.parent / benchmark)
    for sysfile in (closed / "systems").glob("*.json"):
        sysfile.write_text(sysfile.read_text().replace('"division": "open"', '"division": "closed"'))
    return closed


# --- the v6.1 LLM tree, completed ------------------------------------------------------------------------------

INTEL = ("v6.1", "closed_Intel_llm")
INTEL_RES = "closed/Intel/results/1-node-2S-GNR_128C/llama3_1-8b"
#: placeholders for the three files per result the public copy of the Intel v6.1 tree lacked (fixture README):
#: with them the official checker accepts both results (its verdict, run here: ACCEPTED_INTEL_VERDICT)
PLACEHOLDER_MEASUREMENTS = {"input_data_types": "int64", "retraining": "No",
                            "starting_weights_filename": "meta-llama/Llama-3.1-8B-Instruct",
                            "weight_data_types": "int8", "weight_transformations": "quantization"}
#: TEST06 verification as the reference's compliance/TEST06/run_verification.py prints it
TEST06_PASS = ("First token check pass: Skipped\nEOS check pass: True\nSample length check pass: True\n"
               "TEST06 verification complete\n")
#: what the official checker (mlcommons/inference tools/submission @ b66003e, scripts/official_check.py) says
#: about completed_intel_tree(): both results accepted
ACCEPTED_INTEL_VERDICT = {"exit_code": 0, "summary": "Results=2, NoResults=0, Power Results=0"}


def completed_intel_tree(dest: Path) -> Path:
    """The real v6.1 Intel llama3_1-8b tree (Offline, Server) with placeholder measurements.json, README.md and
    TEST06/verify_accuracy.txt in both result folders: a real LLM tree both checkers accept."""
    root = real_tree(dest, *INTEL)
    for scenario in ("Offline", "Server"):
        res = root / INTEL_RES / scenario
        (res / "measurements.json").write_text(json.dumps(PLACEHOLDER_MEASUREMENTS, indent=2) + "\n")
        (res / "README.md").write_text(f"# llama3_1-8b {scenario}\n\nPlaceholder: the public copy lacked it.\n")
        (res / "TEST06").mkdir()
        (res / "TEST06" / "verify_accuracy.txt").write_text(TEST06_PASS)
    return root


GPT_RES = "closed/Intel/results/1-node-2S-GNR_128C/gpt-oss-120b"


def gpt_oss_tree(dest: Path) -> Path:
    """The completed Intel tree relabelled as a gpt-oss-120b result (for the rules only gpt-oss has: TEST07 and
    TEST09, exact_match and tokens_per_sample): the folder renamed, accuracy.txt in gpt-oss's form, the accuracy
    runs' sample count gpt-oss's 4,395, the Server run's TPOT under gpt-oss's 80 ms, TEST06 replaced by
    TEST07/TEST09 verifications that pass. The official checker accepts it (test_check_llm)."""
    root = completed_intel_tree(dest)
    bench = root / INTEL_RES
    bench.rename(root / GPT_RES)
    for scenario in ("Offline", "Server"):
        res = root / GPT_RES / scenario
        txt = res / "accuracy" / "accuracy.txt"
        digest = [line for line in txt.read_text().splitlines() if line.startswith("hash=")][0]
        txt.write_text("{'exact_match': 84.1021, 'tokens_per_sample': 1263.5}\n\n" + digest + "\n")
        mllog_set(res / "accuracy" / "mlperf_log_detail.txt", "effective_accuracy_sample_count", 4395)
        shutil.rmtree(res / "TEST06")
        (res / "TEST07").mkdir()
        (res / "TEST07" / "verify_accuracy.txt").write_text("exact_match in performance mode: 84.0\nTEST PASS\n")
        (res / "TEST09").mkdir()
        (res / "TEST09" / "verify_output_len.txt").write_text("mean output length: 1263.5\nTEST PASS\n")
    server = root / GPT_RES / "Server" / "performance" / "run_1" / "mlperf_log_detail.txt"
    mllog_set(server, "result_time_per_output_token_99.00_percentile_ns", 79_000_000)
    mllog_set(server, "requested_server_tpot_latency", 80_000_000)
    return root
