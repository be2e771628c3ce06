"""Verification of the compliance tests TEST01, TEST04 and TEST06 (LLMs): pure functions over LoadGen logs.

The pass/fail logic is the MLCommons rules' (mlcommons/inference compliance/TEST01/verify_accuracy.py,
verify_performance.py and compliance/TEST04/verify_performance.py, read, not copied):

- TEST01 accuracy: every response the audit (a performance run that logs a sample of its responses) logged for a
  sample must equal the accuracy run's response for that sample, and at least one sample must be compared.
  mlrepro compares the whole response (the MLCommons script compares the first element of its data type only).
- TEST01 performance: both runs VALID, same scenario (Server: same target latency), and the audit's result
  within ±10 % of the performance run's (±20 % for SingleStream at most 200,000 ns and MultiStream at most
  1,600,000 ns).
- TEST04 performance: both runs VALID, same scenario (Server: same target latency), and the audit (the same
  sample issued over and over) not more than 10 % faster than the performance run (20 % for short stream
  latencies): a SUT that caches responses fails.

Each verification renders the text of the ``verify_accuracy.txt`` / ``verify_performance.txt`` the submission
tree holds; it ends with a ``TEST PASS`` or ``TEST FAIL`` line (what the MLCommons checker reads).

Public API::

    verify_accuracy(reference_log, audit_log) -> Verification            (TEST01)
    verify_performance(test, reference_detail, audit_detail) -> Verification   (TEST01, TEST04)
    failed(test, kind, why) -> Verification
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlrepro.harness.logparse import Detail, parse_detail_file

VERIFY_ACCURACY = "verify_accuracy.txt"
VERIFY_PERFORMANCE = "verify_performance.txt"
PASS, FAIL = "TEST PASS", "TEST FAIL"
#: the result each scenario's performance is compared on (detail-log keys)
SCORE_KEYS = {"Offline": "result_samples_per_second", "Server": "result_completed_samples_per_sec",
              "SingleStream": "early_stopping_latency_ss", "MultiStream": "early_stopping_latency_ms"}
THRESHOLD = 0.10
RELAXED_THRESHOLD = 0.20
#: short stream latencies get the relaxed threshold (TEST01: reference latency in ns at most this)
RELAXED_BELOW = {"SingleStream": 200_000, "MultiStream": 1_600_000}


@dataclass(frozen=True)
class Verification:
    test: str                  # TEST01 | TEST04 | TEST06
    kind: str                  # accuracy | performance
    passed: bool
    text: str                  # the verify_*.txt content

    @property
    def file_name(self) -> str:
        return VERIFY_ACCURACY if self.kind == "accuracy" else VERIFY_PERFORMANCE

    @property
    def reason(self) -> str:
        """The last line before the verdict (why it failed), or the verdict (TEST06: its failed checks)."""
        if self.test == "TEST06":
            return "; ".join(x for x in self.text.splitlines() if x.endswith(("False", "failed"))) or "pass"
        lines = [x for x in self.text.splitlines() if x.strip()]
        return lines[-1] if lines else ""


def _render(test: str, kind: str, lines: list[str], passed: bool, why: str = "") -> Verification:
    verdict = PASS if passed else (f"{FAIL}: {why}" if why else FAIL)
    return Verification(test, kind, passed, "\n".join([f"{test} {kind} verification (mlrepro)", *lines, verdict])
                        + "\n")


def failed(test: str, kind: str, why: str) -> Verification:
    """A verification that could not compare anything (a reference run is missing): TEST FAIL with ``why``."""
    return _render(test, kind, [], False, why)


def _entries(path: Path) -> tuple[list[dict[str, Any]] | None, str]:
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None, f"{path.name} is missing"
    except (OSError, ValueError, RecursionError) as exc:
        return None, f"{path.name} is not readable JSON ({exc})"
    if not isinstance(data, list) or not all(isinstance(e, dict) and "qsl_idx" in e for e in data):
        return None, f"{path.name} is not a list of LoadGen accuracy entries"
    return data, ""


def verify_accuracy(reference_log: str | Path, audit_log: str | Path) -> Verification:
    """TEST01 accuracy: ``reference_log`` is the accuracy run's full mlperf_log_accuracy.json, ``audit_log`` the
    one the audit run logged."""
    ref, why = _entries(Path(reference_log))
    if ref is None:
        return _render("TEST01", "accuracy", [], False, f"accuracy run: {why}")
    audit, why = _entries(Path(audit_log))
    if audit is None:
        return _render("TEST01", "accuracy", [], False, f"audit run: {why}")
    responses: dict[Any, Any] = {}
    duplicates = ref_mismatch = 0
    for e in ref:
        idx, data = e.get("qsl_idx"), e.get("data")
        if idx in responses:
            duplicates += 1
            ref_mismatch += responses[idx] != data
        else:
            responses[idx] = data
    matched = mismatched = missing = 0
    for e in audit:
        idx = e.get("qsl_idx")
        if idx not in responses:
            missing += 1
            continue
        matched += 1
        mismatched += responses[idx] != e.get("data")
    lines = [f"num_acc_log_entries = {len(ref)}", f"num_acc_log_duplicate_keys = {duplicates}",
             f"num_acc_log_data_mismatch = {ref_mismatch}", f"num_perf_log_entries = {len(audit)}",
             f"num_perf_log_qsl_idx_match = {matched}", f"num_perf_log_data_mismatch = {mismatched}",
             f"num_missing_qsl_idxs = {missing}"]
    if mismatched:
        return _render("TEST01", "accuracy", lines, False, f"{mismatched} response(s) of the performance-mode "
                       "audit differ from the accuracy run's")
    if not matched:
        return _render("TEST01", "accuracy", lines, False, "no logged sample of the audit is in the accuracy log")
    return _render("TEST01", "accuracy", lines, True)


def _result(detail: Detail | None, label: str) -> tuple[str | None, float | None, Any, str]:
    """(scenario, score, target latency, problem) of a performance log."""
    if detail is None:
        return None, None, None, f"{label}: no mlperf_log_detail.txt"
    scenario = detail.get("effective_scenario")
    if detail.validity != "VALID":
        return scenario, None, None, f"{label} results are {detail.validity or 'of unknown validity'}"
    key = SCORE_KEYS.get(scenario) if isinstance(scenario, str) else None
    value = detail.get(key) if key else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return scenario, None, None, f"{label}: no {key or 'result'} in the log"
    return scenario, float(value), detail.get("effective_target_latency_ns"), ""


def _tokens(hex_data: str) -> np.ndarray:
    return np.frombuffer(bytes.fromhex(hex_data), dtype="<i8")


def verify_test06(accuracy_log: str | Path, scenario: str, eos_token_ids: tuple[int, ...]) -> Verification:
    """TEST06 (LLMs) over the audit run's mlperf_log_accuracy.json, as mlcommons/inference
    compliance/TEST06/run_verification.py checks it (payloads read as int64, what mlrepro writes; the script's
    ``--dtype`` default is int32):

    * first token check (not Offline): each logged ``token_data`` (the FirstTokenComplete payload) is a prefix of
      the sample's ``data``;
    * EOS check: no output ends in two or more EOS tokens (a padded response);
    * sample length check: each output has ``token_count`` tokens (the n_tokens given to LoadGen).

    The text is the script's: "First token check pass: True|False|Skipped", "EOS check pass: ...",
    "Sample length check pass: ...", then "TEST06 verification complete" or "TEST06 verification failed"."""
    entries, why = _entries(Path(accuracy_log))
    first_pass: bool | str = "Skipped"
    if entries is None:
        eos_pass = length_pass = False
        if scenario != "Offline":
            first_pass = False
    else:
        eos = set(eos_token_ids)
        try:
            eos_pass = True
            for e in entries:
                data = _tokens(e["data"])
                trailing = 0
                for t in data[::-1][: len(data) - 1]:      # the script stops before index 0
                    if t not in eos:
                        break
                    trailing += 1
                if trailing >= 2:
                    eos_pass = False
                    break
        except (KeyError, ValueError, TypeError):
            eos_pass = False
        if scenario != "Offline":
            try:
                first_pass = all(np.array_equal(_tokens(e["token_data"]),
                                                _tokens(e["data"])[: len(_tokens(e["token_data"]))])
                                 and len(_tokens(e["token_data"])) <= len(_tokens(e["data"])) for e in entries)
            except (KeyError, ValueError, TypeError):
                first_pass = False
        try:
            length_pass = all(len(_tokens(e["data"])) == int(e["token_count"]) for e in entries)
        except (KeyError, ValueError, TypeError):
            length_pass = False
    passed = eos_pass and first_pass is not False and length_pass and entries is not None
    lines = [f"First token check pass: {first_pass}", f"EOS check pass: {eos_pass}",
             f"Sample length check pass: {length_pass}",
             "TEST06 verification complete" if passed else "TEST06 verification failed"]
    if entries is None:
        lines.insert(0, f"# {why}")
    return Verification("TEST06", "accuracy", bool(passed), "\n".join(lines) + "\n")


def verify_performance(test: str, reference_detail: str | Path, audit_detail: str | Path) -> Verification:
    """TEST01 or TEST04 performance: the performance run's detail log against the audit run's."""
    ref_s, ref, ref_lat, why = _result(parse_detail_file(reference_detail), "reference")
    if why:
        return _render(test, "performance", [], False, why)
    test_s, got, test_lat, why = _result(parse_detail_file(audit_detail), "test")
    if why:
        return _render(test, "performance", [], False, why)
    assert ref is not None and got is not None and isinstance(ref_s, str)
    if ref_s != test_s:
        return _render(test, "performance", [], False, "test and reference scenarios do not match")
    if ref_s == "Server" and ref_lat != test_lat:
        return _render(test, "performance", [], False, "Server target latency mismatch")
    latency = ref_s in RELAXED_BELOW
    if test == "TEST04" and latency:        # compared as rates: faster is higher
        ref, got = 1e9 / ref, 1e9 / got
    threshold = THRESHOLD
    if ref_s in RELAXED_BELOW and ref <= RELAXED_BELOW[ref_s]:
        threshold = RELAXED_THRESHOLD
    lines = [f"reference score = {ref:g}", f"test score = {got:g}", f"threshold = {threshold:g}"]
    if test == "TEST04":
        ok = got < ref * (1 + threshold)
        why = f"the repeated-sample run is more than {threshold:.0%} faster (responses cached?)"
    else:
        ok = ref * (1 - threshold) <= got <= ref * (1 + threshold)
        why = f"the audit run's result is not within {threshold:.0%} of the performance run's"
    return _render(test, "performance", lines, ok, "" if ok else why)
