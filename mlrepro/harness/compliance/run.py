"""Compliance tests in the harness: each requested test (``spec.compliance``) is one more LoadGen performance run,
in the same process, container and device as the timed run and with its TestSettings (the run's user.conf:
calibrated or pinned targets, never targets of its own), plus the test's ``audit.config``, which LoadGen reads
for that run only. Then it is verified against this run's performance and accuracy runs when the run has them
(mode "submission"); otherwise ``collect`` and ``mlrepro compliance`` verify it against the runs it audits.

TEST06 (LLMs, mlcommons/inference compliance/TEST06): a performance run whose audit.config logs the responses of
~100 samples (``accuracy_log_sampling_target``), verified on its own (first token, EOS, sample length:
:func:`mlrepro.harness.compliance.verification.verify_test06`) into ``verify_accuracy.txt``.

Layout: ``<run>/<Scenario>/<TEST>/`` (see :mod:`mlrepro.harness.layout`). The audit.config settings come from the
round's rules (mlrepro.results.rounds, ``compliance.audit``), the pass/fail logic is
:mod:`mlrepro.harness.compliance.verification`.

Public API::

    audit_config_text(request) -> str
    run_audits(lg, workload, settings, spec, layout, say, *, fail_fast) -> list[AuditOutcome]
    verify_in_run(test, layout) -> list[Verification]
    audit_dict(outcome) -> dict        (the record's "compliance" entries)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from mlrepro.harness.checksums import atomic_write_text
from mlrepro.harness.compliance.verification import Verification, verify_accuracy, verify_performance, verify_test06
from mlrepro.harness.layout import ACCURACY_LOG, DETAIL_LOG, RunLayout
from mlrepro.harness.loadgen_runner import LoadgenSession, set_mode
from mlrepro.harness.logparse import ParsedLogs, parse_log_dir
from mlrepro.harness.spec import AuditRequest, RunSpec
from mlrepro.harness.workloads.base import Workload

PERFORMANCE_RUN = "performance/run_1"


@dataclass
class AuditOutcome:
    test: str
    directory: str                              # relative to the run dir
    audit_config: str
    logs: ParsedLogs | None = None
    verifications: list[Verification] = field(default_factory=list)
    error: str | None = None

    @property
    def passed(self) -> bool | None:
        """True / False once verified, None when nothing could be verified in this run."""
        if not self.verifications:
            return None
        return all(v.passed for v in self.verifications)


def audit_config_text(request: AuditRequest) -> str:
    """The audit.config of a test: one ``*.*.<setting> = <value>`` line per setting (LoadGen applies the
    wildcard model and scenario to the run it is handed to)."""
    lines = [f"# {request.test} audit.config written by mlrepro (settings from the round's rules)"]
    lines += [f"*.*.{key} = {value}" for key, value in request.settings.items()]
    return "\n".join(lines) + "\n"


def verify_in_run(test: str, layout: RunLayout, workload: Workload | None = None) -> list[Verification]:
    """The verifications of ``test`` against this run's own performance and accuracy runs (those it has). TEST06
    (LLMs) needs no other run: its audit run's accuracy log is checked on its own, with the workload's EOS ids."""
    folder = layout.compliance_dir(test)
    audit_detail = folder / PERFORMANCE_RUN / DETAIL_LOG
    out: list[Verification] = []
    if test == "TEST06":
        eos = tuple(getattr(workload, "eos_token_ids", ()) or ())
        return [verify_test06(folder / PERFORMANCE_RUN / ACCURACY_LOG, layout.scenario, eos)]
    if test == "TEST01" and (layout.accuracy_dir / ACCURACY_LOG).is_file():
        out.append(verify_accuracy(layout.accuracy_dir / ACCURACY_LOG, folder / PERFORMANCE_RUN / ACCURACY_LOG))
    if (layout.performance_dir / DETAIL_LOG).is_file():
        out.append(verify_performance(test, layout.performance_dir / DETAIL_LOG, audit_detail))
    return out


def run_audits(lg: ModuleType, workload: Workload, settings: Any, spec: RunSpec, layout: RunLayout,
               say: Callable[[str], None], *, fail_fast: bool = False) -> list[AuditOutcome]:
    """Run every compliance test of ``spec`` with ``settings`` (the timed run's TestSettings) and verify each
    against this run's own sub-runs. Raises what a LoadGen session raises (the caller records it)."""
    outcomes: list[AuditOutcome] = []
    for request in spec.compliance:
        folder = layout.compliance_dir(request.test)
        folder.mkdir(parents=True, exist_ok=True)
        text = audit_config_text(request)
        config = folder / "audit.config"
        atomic_write_text(config, text)
        outdir = folder / PERFORMANCE_RUN
        outcome = AuditOutcome(test=request.test, directory=layout.relative(folder), audit_config=text)
        outcomes.append(outcome)
        say(f"mlrepro-harness: {spec.scenario} compliance {request.test} -> {outcome.directory}")
        set_mode(lg, settings, "performance")
        session = LoadgenSession(lg, workload, settings, spec.scenario, "performance", outdir, config,
                                 spec.enable_trace, fail_fast=fail_fast)
        info = session.run()
        outcome.logs = parse_log_dir(outdir)
        if info.failure is not None:
            outcome.error = f"{type(info.failure).__name__}: {info.failure}"
            raise info.failure
        outcome.verifications = verify_in_run(request.test, layout, workload)
        for v in outcome.verifications:
            atomic_write_text(folder / v.file_name, v.text)
        verdict = _unverified(request.test) if outcome.passed is None else ("PASS" if outcome.passed else "FAIL")
        detail = "; ".join(f"{v.kind} {'pass' if v.passed else v.reason}" for v in outcome.verifications)
        say(f"mlrepro-harness: {spec.scenario} {request.test}: {verdict}" + (f" ({detail})" if detail else ""))
    return outcomes


def _unverified(test: str) -> str:
    """What a test this run cannot verify waits for (``mlrepro compliance`` / ``collect`` verify it)."""
    needs = "the performance run it audits" + (" and an accuracy run of the same profile" if test == "TEST01" else "")
    return f"not verified in this run (mlrepro compliance and collect verify it against {needs})"


def audit_dict(o: AuditOutcome) -> dict[str, Any]:
    d = o.logs.detail if o.logs else None
    return {
        "test": o.test,
        "directory": o.directory,
        "audit_config": o.audit_config,
        "validity": o.logs.validity if o.logs else None,
        "audit_config_used": bool(d and any("audit.config" in str(w.value) for w in d.warnings)),
        "passed": o.passed,
        "verifications": [{"kind": v.kind, "passed": v.passed, "file": v.file_name, "reason": v.reason}
                          for v in o.verifications],
        "loadgen_errors": [e.to_dict() for e in d.errors][:50] if d else [],
        "error": o.error,
    }
