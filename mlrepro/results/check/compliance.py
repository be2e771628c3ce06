"""Rules of a result's compliance tests (closed and network divisions; the open division needs none).

Which tests a benchmark needs is round data (``compliance`` of each benchmark); what a test folder must hold
and how its verification reads is ``compliance`` in common.yaml. Source: the MLCommons submission checker,
checks/compliance_check.py, and compliance/TEST01, TEST04 of mlcommons/inference@b66003e. The performance run
of TEST01/TEST04 is held to every rule of a performance run (mlrepro.results.check.performance).

Public API::

    check_compliance(ctx, findings)
"""

from __future__ import annotations

import re

from mlrepro.results.check.context import ResultContext, to_float
from mlrepro.results.check.performance import check_performance_run
from mlrepro.results.check.report import Findings
from mlrepro.results.rounds import ComplianceTest
from mlrepro.results.tree import ComplianceEntry

PASS = "TEST PASS"


def check_compliance(ctx: ResultContext, f: Findings) -> None:
    if not ctx.strict or ctx.benchmark is None:
        return
    rules = ctx.round.compliance
    for test in ctx.benchmark.compliance:
        entry = ctx.result.compliance.get(test)
        spec = rules.tests.get(test)
        if entry is None or spec is None:
            continue
        if not entry.exists:
            f.error("COMPLIANCE_MISSING", entry.rel, f"{ctx.benchmark.name} needs compliance test {test}",
                    scope=ctx.scope)
            continue
        _test(entry, spec, ctx, f)


def _test(entry: ComplianceEntry, spec: ComplianceTest, ctx: ResultContext, f: Findings) -> None:
    scope = ctx.scope
    for name in spec.verify:
        if name not in entry.verify:
            f.error("COMPLIANCE_MISSING", f"{entry.rel}/{name}", "required file is missing", scope=scope)
    if spec.performance:
        perf_rel = f"{entry.rel}/performance/run_1"
        if entry.performance is None:
            f.error("COMPLIANCE_MISSING", perf_rel, f"{spec.name} has no performance run", scope=scope)
        else:
            rules = ctx.round.compliance
            extra = set(entry.performance.files) ^ set(rules.performance_files)
            extra -= set(rules.performance_optional)
            if extra:
                f.error("COMPLIANCE_FILES", perf_rel, f"expected exactly {', '.join(rules.performance_files)}; "
                        f"differs in {', '.join(sorted(extra))}", scope=scope)
            check_performance_run(entry.performance, ctx, f, kind=spec.name)
        text = entry.verify.get("verify_performance.txt")
        if text is not None and PASS not in text:
            f.error("COMPLIANCE_FAILED", f"{entry.rel}/verify_performance.txt", f"{spec.name} performance "
                    "verification does not say TEST PASS", scope=scope)
    if spec.name == "TEST01":
        _test01_accuracy(entry, spec, ctx, f)
    elif spec.lines or spec.any_line:
        for name in spec.verify:
            text = entry.verify.get(name)
            if text is None:
                continue
            lines = {line.strip() for line in text.splitlines()}
            failed = [want for want in spec.lines if want not in lines]
            if spec.any_line and not lines & set(spec.any_line):
                failed.append(" or ".join(spec.any_line))
            if failed:
                f.error("COMPLIANCE_FAILED", f"{entry.rel}/{name}", f"{spec.name}: missing {'; '.join(failed)}",
                        scope=scope)
    elif not spec.performance:
        for name in spec.verify:
            text = entry.verify.get(name)
            if text is not None and PASS not in text:
                f.error("COMPLIANCE_FAILED", f"{entry.rel}/{name}", f"{spec.name} does not say TEST PASS",
                        scope=scope)


def _test01_accuracy(entry: ComplianceEntry, spec: ComplianceTest, ctx: ResultContext, f: Findings) -> None:
    """TEST01 accuracy: verify_accuracy.txt has a "TEST PASS" line (deterministic results), else the accuracy
    folder holds the baseline and compliance accuracy of the sampled results and they agree within the
    benchmark's delta."""
    text = entry.verify.get("verify_accuracy.txt")
    if text is None:
        return
    if PASS in {line.strip() for line in text.splitlines()}:
        return
    scope = ctx.scope
    acc_rel = f"{entry.rel}/accuracy"
    if entry.accuracy_files is None:
        f.error("COMPLIANCE_FAILED", f"{entry.rel}/verify_accuracy.txt", "TEST01 accuracy verification failed "
                "and there is no accuracy folder with the baseline and compliance accuracy", scope=scope)
        return
    extra = set(entry.accuracy_files) ^ set(spec.nondeterministic_files)
    extra -= set(ctx.round.compliance.performance_optional)
    if extra:
        f.error("COMPLIANCE_FILES", acc_rel, f"expected exactly {', '.join(spec.nondeterministic_files)}; differs "
                f"in {', '.join(sorted(extra))}", scope=scope)
        return
    bench = ctx.benchmark
    assert bench is not None
    base = _values(entry.accuracy_texts.get("baseline_accuracy.txt", ()), ctx)
    comp = _values(entry.accuracy_texts.get("compliance_accuracy.txt", ()), ctx)
    for t in bench.accuracy_targets(ctx.scenario):
        b, c = base.get(t.metric), comp.get(t.metric)
        if not b or not c:
            f.error("COMPLIANCE_FAILED", acc_rel, f"TEST01: no {t.metric} in the baseline or compliance accuracy",
                    scope=scope)
            return
        delta = abs(1 - b / c) * 100
        allowed = bench.delta_percent(t.metric, ctx.round.accuracy_delta_percent)
        if delta > allowed:
            f.error("COMPLIANCE_FAILED", acc_rel, f"TEST01: {t.metric} differs by {delta:.3f}% between the accuracy "
                    f"run and the performance-mode samples (at most {allowed}%)", scope=scope)
            return


def _values(lines: tuple[str, ...], ctx: ResultContext) -> dict[str, float]:
    bench = ctx.benchmark
    assert bench is not None
    out: dict[str, float] = {}
    for line in lines:
        for t in bench.accuracy_targets(ctx.scenario):
            pattern: re.Pattern[str] = ctx.round.accuracy_patterns[t.metric]
            m = pattern.match(line)
            value = to_float(m.group(1)) if m else None
            if value is not None:
                out[t.metric] = value
    return out
