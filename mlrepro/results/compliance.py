"""Compliance tests on the host side: which tests a benchmark needs in a round, their audit.config settings for the
harness, and the compliance folders of a result in the submission tree.

The round's rules say which tests each benchmark needs (``compliance`` of each benchmark) and each test's
audit.config (``compliance.audit`` in common.yaml; TEST01's sampling target per benchmark). mlrepro runs TEST01,
TEST04 and the LLMs' TEST06 (:mod:`mlrepro.harness.compliance`); collect computes TEST01/TEST04's verifications
from the logs; a test whose folder is verification files only (TEST06 of the LLMs: first token, EOS, sample
length; TEST07-09) is placed as the harness verified it (``<scenario>/<TEST>/verify_*.txt`` of the run, with its accuracy log when there is one).
The verification logic of TEST01/TEST04 is :mod:`mlrepro.harness.compliance.verification`.

Tree layout of a compliance folder (v6.x: in the result folder; what the MLCommons checker reads)::

    <result>/TEST01/verify_accuracy.txt  verify_performance.txt
                    accuracy/{mlperf_log_accuracy.json (truncated), accuracy.txt (hash= of the full log)}
                    performance/run_1/{mlperf_log_summary.txt, mlperf_log_detail.txt}
    <result>/TEST04/verify_performance.txt  performance/run_1/{mlperf_log_summary.txt, mlperf_log_detail.txt}

Public API::

    audit_requests(benchmark, version=None) -> tuple[AuditRequest, ...]
    tests_not_run(benchmark, version=None) -> tuple[str, ...]
    compliance_files(test, perf_detail, audit_dir, accuracy_log) -> (files, full_logs)
    verify_only_files(run, test, rel) -> files        (TEST06/TEST07/TEST09: the harness's verifications)
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from mlrepro.harness.compliance.verification import failed, verify_accuracy, verify_performance
from mlrepro.harness.layout import ACCURACY_LOG, DETAIL_LOG, SUMMARY_LOG
from mlrepro.harness.spec import HARNESS_AUDIT_TESTS, AuditRequest
from mlrepro.results.accuracy import truncate_accuracy_log
from mlrepro.results.rounds import load_round

if TYPE_CHECKING:  # pragma: no cover
    from mlrepro.results.rundir import HarnessRun

PERFORMANCE_RUN = "performance/run_1"


def audit_requests(benchmark: str, version: str | None = None) -> tuple[AuditRequest, ...]:
    """The compliance tests mlrepro runs for ``benchmark`` (a checker benchmark name, e.g. ``resnet``) under
    round ``version``, with their audit.config settings; () for a benchmark the round does not know. TEST01 and
    TEST04 for the others, TEST06 for the LLMs (the round names it only for them)."""
    rnd = load_round(version)
    b = rnd.benchmarks.get(benchmark)
    if b is None:
        return ()
    out = []
    for test in b.compliance:
        if test not in HARNESS_AUDIT_TESTS:
            continue
        settings = dict(rnd.compliance.audit[test])
        if test == "TEST01" and b.audit_sampling_target is not None:
            settings["accuracy_log_sampling_target"] = b.audit_sampling_target
        out.append(AuditRequest(test=test, settings=settings))
    return tuple(out)


def tests_not_run(benchmark: str, version: str | None = None) -> tuple[str, ...]:
    """Compliance tests ``benchmark`` needs that mlrepro does not run (gpt-oss-120b's TEST07 and TEST09)."""
    b = load_round(version).benchmarks.get(benchmark)
    return tuple(t for t in (b.compliance if b else ()) if t not in HARNESS_AUDIT_TESTS)


def compliance_files(test: str, perf_detail: Path, audit_dir: Path,
                     accuracy_log: Path | None) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """The tree files of one compliance folder (relative to the result folder) and the full audit accuracy logs
    to keep beside the tree ({sha256: bytes}).

    ``perf_detail``: the performance run's detail log; ``audit_dir``: the test's folder in the harness run that
    ran it (``<Scenario>/<TEST>``); ``accuracy_log``: the accuracy run's full mlperf_log_accuracy.json (TEST01).
    The verifications are computed here, from these logs, whichever runs they came from."""
    run = audit_dir / PERFORMANCE_RUN
    files: dict[str, bytes] = {}
    full: dict[str, bytes] = {}
    for name in (SUMMARY_LOG, DETAIL_LOG):
        files[f"{test}/{PERFORMANCE_RUN}/{name}"] = (run / name).read_bytes()
    perf = verify_performance(test, perf_detail, run / DETAIL_LOG)
    files[f"{test}/{perf.file_name}"] = perf.text.encode("utf-8")
    if test == "TEST01":
        log = (run / ACCURACY_LOG).read_bytes()
        digest = hashlib.sha256(log).hexdigest()
        full[digest] = log
        files[f"{test}/accuracy/{ACCURACY_LOG}"] = truncate_accuracy_log(log)
        files[f"{test}/accuracy/accuracy.txt"] = f"hash={digest}\n".encode()
        acc = verify_accuracy(accuracy_log, run / ACCURACY_LOG) if accuracy_log is not None else \
            failed("TEST01", "accuracy", "no accuracy run to compare with")
        files[f"{test}/{acc.file_name}"] = acc.text.encode("utf-8")
    return files, full


def verify_only_files(run: HarnessRun, test: str, rel: str) -> dict[str, bytes]:
    """The tree files of a verification-only compliance folder (``TEST06``...) from ``run``'s ``rel`` folder
    (``<scenario>/<TEST>``): its verify files as the harness wrote them, and its accuracy log truncated as in an
    accuracy folder (``<TEST>/accuracy/mlperf_log_accuracy.json``; read from ``rel/accuracy/`` or ``rel/``).
    Every file is re-read against the run's checksums (ChecksumError)."""
    from mlrepro.results.rundir import read_verified, verify_only_tests

    files: dict[str, bytes] = {}
    for name in verify_only_tests().get(test, ()):
        if f"{rel}/{name}" in run.manifest:
            files[f"{test}/{name}"] = read_verified(run, f"{rel}/{name}")
    for log in (f"{rel}/accuracy/{ACCURACY_LOG}", f"{rel}/{ACCURACY_LOG}"):
        if log in run.manifest:
            files[f"{test}/accuracy/{ACCURACY_LOG}"] = truncate_accuracy_log(read_verified(run, log))
            break
    return files


def passed(files: Mapping[str, bytes]) -> dict[str, bool]:
    """Per verify file of ``compliance_files`` output: whether it says TEST PASS."""
    return {k: b"TEST PASS" in v for k, v in files.items() if k.rsplit("/", 1)[-1].startswith("verify_")}
