"""A finished run in one line of the results table (:func:`summarize`), and what else uses its verified results
before it is recorded (:func:`remember_calibration`)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from mlrepro.errors import MlreproError
from mlrepro.flow.options import RunSummary
from mlrepro.state.status import RunStatus

if TYPE_CHECKING:  # pragma: no cover
    from mlrepro.render.jobspec import JobSpec
    from mlrepro.results.rundir import HarnessRun
    from mlrepro.runners.base import Progress, RunOutcome
    from mlrepro.state.calibration_cache import CalibrationCache


def summarize(job: JobSpec, outcome: RunOutcome, run: HarnessRun | None, duration_s: float,
              fetch_error: str = "") -> RunSummary:
    """The run's headline figures from its verified results (``run``: what the runner fetched and verified;
    None when nothing was fetched). A run that ended well but whose results could not be fetched
    (``fetch_error``) or are unusable is a failed run."""
    spec = job.run
    base = RunSummary(spec.run_id, spec.scenario, spec.mode, outcome.status.value, outcome.exit_code,
                      duration_s=duration_s, results_dir=run.path if run is not None else None,
                      message=outcome.message, profile=job.profile_name, run=run)
    if run is None:
        if outcome.status == RunStatus.succeeded:
            return replace(base, status=RunStatus.failed.value, message=f"results not fetched: {fetch_error}")
        return base
    perf = run.performance
    accuracy = run.accuracy_txt.value if run.accuracy_txt else None
    message = base.message if outcome.status != RunStatus.succeeded else ""
    if perf is not None and perf.validity == "INVALID" and perf.invalid_reason:
        message = f"INVALID: {' '.join(perf.invalid_reason.split())}"
    cal = run.calibration or {}
    decision = (cal.get("targets") or [None])[0]
    notes: list[str] = []
    fw = run.framework or {}
    if fw and not fw.get("matches"):
        notes.append(f"{fw.get('package')} {fw.get('installed') or 'not installed'} ran, the profile pins "
                     f"{fw.get('pinned')}")
    if cal.get("retry"):
        notes.append("recalibrated after an INVALID timed run (" + "; ".join(cal["retry"].get("reason") or []) + ")")
    failed: list[str] = []
    for audit in run.audits:
        checks = audit.get("verifications") or []
        verdict = {True: "PASS", False: "FAIL", None: "not verified in the run"}[audit.get("passed")]
        why = "; ".join(f"{v.get('kind')}: {v.get('reason')}" for v in checks if not v.get("passed"))
        notes.append(f"compliance {audit.get('test')}: {verdict}" + (f" ({why})" if why else ""))
        if audit.get("passed") is False:
            failed.append(str(audit.get("test")))
    brief = None
    if isinstance(decision, dict):
        brief = {k: decision.get(k) for k in ("setting", "value", "source", "unit", "measured", "cost_s", "note")
                 if decision.get(k) is not None}
    return replace(base, result=perf.result if perf else None, result_unit=perf.result_unit if perf else "",
                   tokens_per_second=perf.tokens_per_second if perf else None,
                   ttft_p99_ns=perf.ttft_p99_ns if perf else None, tpot_p99_ns=perf.tpot_p99_ns if perf else None,
                   validity=perf.validity if perf else None, accuracy=accuracy, message=message,
                   loadgen_target=brief, notes=tuple(notes), compliance_failed=tuple(failed))


def remember_calibration(cache: CalibrationCache, run: HarnessRun, progress: Progress) -> None:
    """Store (or drop) the run's calibrated target in the cache, from its verified record; a cache problem never
    fails the run."""
    from mlrepro.state.calibration_cache import remember

    try:
        if remember(cache, run.record) == "dropped":
            progress(f"{run.run_id}: cached calibration dropped (it gave an INVALID run)")
    except MlreproError as exc:
        progress(f"calibration cache not updated: {exc}")
