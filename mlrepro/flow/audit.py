"""``mlrepro compliance``: run the compliance tests (TEST01, TEST04; TEST06 of the LLMs) of runs already made, then
verify them.

For each performance (or submission) run: a new harness run in mode "audit" on the same target, with the run's
spec and its final user.conf (its calibrated or pinned targets, nothing calibrated anew) and the tests' audit
settings from the round's rules; it records ``audit_of`` so that ``collect`` puts its compliance folders into the
audited run's result. The audit goes through the same per-run flow as every run (:func:`mlrepro.flow.execute.
execute`). The verifications compare the audit with the audited performance run and, for TEST01's accuracy,
with the run's own accuracy run (submission mode) or an accuracy run of the same profile and scenario among the
given run ids; TEST06 (LLMs) is the audit run's own verification of its sampled outputs. Without ``--test``,
each run gets the tests the round names for its benchmark.

Public API::

    audit_runs(run_ids, tests, *, resolved=None, target=None, progress, state_dir=None) -> list[AuditResult]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from mlrepro.errors import BadInputError
from mlrepro.harness.compliance.verification import (
    VERIFY_ACCURACY,
    Verification,
    failed,
    verify_accuracy,
    verify_performance,
)
from mlrepro.harness.layout import ACCURACY_LOG, DETAIL_LOG, RUN_JSON, USER_CONF
from mlrepro.harness.spec import AUDIT_TESTS, HARNESS_AUDIT_TESTS, AuditRequest, CalibrationRequest, load_spec
from mlrepro.runners.base import Progress, no_progress
from mlrepro.state.status import RunStatus

if TYPE_CHECKING:  # pragma: no cover
    from mlrepro.profiles.loader import ResolvedProfile
    from mlrepro.results.rundir import HarnessRun


@dataclass(frozen=True)
class AuditResult:
    run_id: str                          # the audited run
    audit_run_id: str
    status: str                          # the audit run's status (succeeded, failed ...)
    verifications: tuple[Verification, ...]
    message: str = ""

    @property
    def passed(self) -> bool:
        return self.status == RunStatus.succeeded.value and bool(self.verifications) \
            and all(v.passed for v in self.verifications)


def parse_tests(tests: Sequence[str]) -> tuple[str, ...]:
    """The tests asked for, upper-cased, each once (empty: each run's own, :func:`tests_for`); BadInputError for
    one mlrepro does not run."""
    out = tuple(dict.fromkeys(t.strip().upper() for t in tests if t.strip()))
    bad = [t for t in out if t not in HARNESS_AUDIT_TESTS]
    if bad:
        raise BadInputError(f"--test: {', '.join(bad)}: mlrepro runs {', '.join(HARNESS_AUDIT_TESTS)}")
    return out


def is_llm_run(run: HarnessRun) -> bool:
    """An LLM run: its performance run has token figures (LoadGen's token latencies)."""
    return run.performance is not None and run.performance.tokens is not None


def tests_for(run: HarnessRun, wanted: Sequence[str], version: str | None = None) -> tuple[str, ...]:
    """The tests to run for ``run``: ``wanted``, or by default those the round names for its benchmark among the
    ones mlrepro runs (TEST06 for an LLM, TEST01 and TEST04 for the others; an LLM's open-division model: its
    model mapping's). BadInputError for TEST06 of a run that is not an LLM run (it checks token outputs)."""
    from mlrepro.results.compliance import audit_requests

    llm = is_llm_run(run)
    if wanted:
        if "TEST06" in wanted and not llm:
            raise BadInputError(f"--test TEST06: run {run.run_id} is not an LLM run (TEST06 checks the first token, "
                                "EOS and length of generated tokens)")
        return tuple(wanted)
    benchmark = run.model_mapping.get(run.benchmark, run.benchmark)
    named = tuple(r.test for r in audit_requests(benchmark, version))
    return named or (("TEST06",) if llm else AUDIT_TESTS)


def _requests(run: HarnessRun, tests: Sequence[str], version: str | None) -> tuple[AuditRequest, ...]:
    from mlrepro.results.compliance import audit_requests
    from mlrepro.results.rounds import load_round

    benchmark = run.model_mapping.get(run.benchmark, run.benchmark)
    known = {r.test: r for r in audit_requests(benchmark, version)}
    defaults = load_round(version).compliance.audit
    return tuple(known.get(t) or AuditRequest(test=t, settings=dict(defaults[t])) for t in tests)


def _profile(run: HarnessRun, resolved: ResolvedProfile | None) -> ResolvedProfile:
    """The profile the run used: ``resolved`` (checked against the run's profile hash), else the one its recorded
    command line resolves to."""
    from mlrepro.profiles.loader import ProfileRequest, resolve_profile

    if resolved is None:
        request = ProfileRequest.from_argv(run.reproduce_argv)
        if request is None:
            raise BadInputError(f"run {run.run_id} records no profile command line: give -p (and -f/--set) "
                                "as it was run")
        resolved = resolve_profile(request.profile, request.overlays, request.sets)
    if run.profile_hash and resolved.hash != run.profile_hash:
        raise BadInputError(f"run {run.run_id} ran profile {run.profile_hash[:19]}..., the profile given resolves "
                            f"to {resolved.hash[:19]}...: give the profile it was run with")
    return resolved


def audit_runs(run_ids: Sequence[str], tests: Sequence[str] = (), *, resolved: ResolvedProfile | None = None,
               target: str | None = None, version: str | None = None, progress: Progress = no_progress,
               state_dir: Path | None = None) -> list[AuditResult]:
    """Audit every performance/submission run among ``run_ids`` (whole ids or unique parts of them; accuracy
    runs among them serve as TEST01's references). Raises UnknownRunError for unknown runs, BadInputError for a
    part several ids contain, runs without a VALID performance run, or a profile that is not the one the run
    used."""
    from mlrepro.flow.execute import execute
    from mlrepro.flow.recorded import open_state, verified_results
    from mlrepro.render.jobspec import build_job_spec
    from mlrepro.render.runspec import new_run_id
    from mlrepro.runners.base import RunnerConfig
    from mlrepro.runners.targets import choose_target, get_runner

    wanted = parse_tests(tests)
    store, state_dir = open_state(state_dir)
    found = [store.resolve(text) for text in run_ids]            # whole ids or unique parts, as logs/collect take
    records = {rec.run_id: rec for rec in found}
    runs = {rid: verified_results(rec, state_dir) for rid, rec in records.items()}
    audited = [r for r in runs.values() if r.performance is not None]
    if not audited:
        raise BadInputError("no performance or submission run among the given runs: compliance tests audit "
                            "performance runs")
    for r in audited:
        if r.performance is None or r.performance.validity != "VALID" or r.problems:
            raise BadInputError(f"run {r.run_id}: only a VALID, complete performance run can be audited "
                                f"({'; '.join(r.problems) or 'not VALID'})")
    out: list[AuditResult] = []
    for run in audited:
        profile = _profile(run, resolved)
        record = records[run.run_id]
        tgt = choose_target(target or record.target, progress)
        spec = load_spec(run.path / RUN_JSON)
        run_tests = tests_for(run, wanted, version)
        audit = replace(spec, run_id=new_run_id(profile.profile.name, spec.scenario, "audit"), mode="audit",
                        settings={}, user_conf=(run.path / USER_CONF).read_text(encoding="utf-8"),
                        calibration=CalibrationRequest(), compliance=_requests(run, run_tests, version),
                        audit_of=run.run_id, image=record.image or spec.image, reproduce=())
        progress(f"{audit.run_id}: compliance {', '.join(run_tests)} of run {run.run_id} on {tgt}")
        runner = get_runner(tgt, RunnerConfig(state_dir=state_dir, image=audit.image or None))
        try:
            job = build_job_spec(profile, audit.image if tgt != "native" else "", audit)
            runner.check(job)
            (summary,) = execute(runner, [job], store=store, state_dir=state_dir, target=tgt, progress=progress)
        finally:
            runner.close()
        verdicts: list[Verification] = []
        if summary.run is not None and summary.status == RunStatus.succeeded.value:
            verdicts = _verify(run, runs, summary.run, spec.scenario, run_tests)
        out.append(AuditResult(run.run_id, audit.run_id, summary.status, tuple(verdicts), summary.message))
    return out


def _accuracy_reference(run: HarnessRun, runs: dict[str, HarnessRun]) -> Path | None:
    candidates = [run] + sorted((r for r in runs.values() if r.run_id != run.run_id and r.accuracy is not None
                                 and r.scenario == run.scenario and r.profile_hash == run.profile_hash),
                                key=lambda r: r.finished_at, reverse=True)
    for r in candidates:
        if r.accuracy is not None and r.accuracy_log_rel:
            return r.path / r.accuracy_log_rel
    return None


def _in_audit(audit: HarnessRun, audit_dir: Path, test: str) -> Verification:
    """A test the audit run verified on its own (TEST06: its accuracy log with the model's EOS ids, which only
    the harness knows): the harness's verdict and verify file."""
    entry = next((a for a in audit.audits if a.get("test") == test), None)
    path = audit_dir / test / VERIFY_ACCURACY
    if entry is None or entry.get("passed") is None or not path.is_file():
        return failed(test, "accuracy", f"the audit run {audit.run_id} wrote no {test} verification")
    return Verification(test, "accuracy", entry["passed"] is True, path.read_text(encoding="utf-8"))


def _verify(run: HarnessRun, runs: dict[str, HarnessRun], audit: HarnessRun, scenario: str,
            tests: Sequence[str]) -> list[Verification]:
    assert run.performance is not None
    perf_detail = run.path / run.performance.detail_rel
    audit_dir = audit.path / scenario
    out: list[Verification] = []
    for test in tests:
        if test == "TEST06":
            out.append(_in_audit(audit, audit_dir, test))
            continue
        logs = audit_dir / test / "performance" / "run_1"
        if test == "TEST01":
            ref = _accuracy_reference(run, runs)
            out.append(verify_accuracy(ref, logs / ACCURACY_LOG) if ref is not None else
                       failed(test, "accuracy", f"{test} needs the accuracy run of the same profile and "
                              "scenario: pass its run id too (mlrepro runs lists it)"))
        out.append(verify_performance(test, perf_detail, logs / DETAIL_LOG))
    return out
