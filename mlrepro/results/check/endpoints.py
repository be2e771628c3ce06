"""Rules of a v6.1 endpoints result (config.yaml, performance/result_summary.json, accuracy/accuracy_results.json:
see :mod:`mlrepro.results.endpoints`), in place of the LoadGen log rules.

Source: the MLCommons submission checker at mlcommons/inference@b66003e with ``is_endpoints_submission``:
checks/performance_check.py (no sample-count, min-query or qsl-seed check; the sample-index and schedule seeds;
min duration; an LLM's TTFT/TPOT p99 against LLM_LATENCY_LIMITS of the scenario it maps the result to, other
benchmarks' p99 latency against their constraint; inferred results; the metric; ENDPOINTS_ALLOWED_MODELS),
checks/accuracy_check.py (a score present; qwen3-vl's against its target; the dataset covered; no truncation
check), checks/compliance_check.py ``compliance_endpoints_check`` (audit/audit_<test>.json must say the test
passed; only TEST04 is required; TEST09's mean output length), checks/measurements_checks.py (no user.conf).

mlrepro's own, beyond it: a missing or unreadable config.yaml / result_summary.json is one finding (the checker
stops with a traceback, or judges the result on nothing); a run that did not complete (state, ``complete``) or
lost samples (``n_samples_failed``) is rejected, as a LoadGen run with errors is; the accuracy targets of every
benchmark are applied to the score (the checker compares only qwen3-vl's; a llama3.1-8b score carries ROUGE-1/2/L/
Lsum and gen_len as the reference prints them).

Public API::

    check_endpoints(ctx, findings)
"""

from __future__ import annotations

from mlrepro.results.check.context import ResultContext, ms, to_float
from mlrepro.results.check.report import ERROR, WARNING, Findings
from mlrepro.results.endpoints import EndpointsFile, EndpointsResult, endpoints_scenario
from mlrepro.results.rounds import EndpointsRules


def check_endpoints(ctx: ResultContext, f: Findings) -> None:
    ep = ctx.result.endpoints
    rules = ctx.round.endpoints
    assert ep is not None and rules is not None
    readable = True
    for file in (ep.config, ep.summary):
        if file.data is None:
            f.error("ENDPOINTS_FILE", file.rel, f"{file.error}: an endpoints result needs it (the official checker "
                    "stops with a traceback)", scope=ctx.scope)
            readable = False
    if ctx.benchmark is None:
        return          # BENCHMARK_UNKNOWN is reported for the result folder
    if ctx.benchmark.name not in rules.models:
        f.error("ENDPOINTS_MODEL", ep.rel, f"{ctx.benchmark.name} may not be submitted as an endpoints result "
                f"(allowed: {', '.join(rules.models)})", scope=ctx.scope)
    if readable:
        _performance(ctx, ep, rules, f)
    _accuracy(ctx, ep, rules, f)
    if ctx.strict:
        _compliance(ctx, ep, rules, f)


def _performance(ctx: ResultContext, ep: EndpointsResult, rules: EndpointsRules, f: Findings) -> None:
    bench, rnd, scope = ctx.benchmark, ctx.round, ctx.scope
    assert bench is not None
    values = ep.performance_values
    summary, config = ep.summary.rel, ep.config.rel
    data = ep.summary.data or {}
    state, complete = data.get("state"), data.get("complete")
    if state != "complete" or complete is not True:
        f.error("ENDPOINTS_RUN", summary, f"the run did not complete (state {state!r}, complete {complete!r}): "
                "its figures are partial", scope=scope)
    failed = to_float(values.get("num_errors"))
    if failed:
        f.error("ENDPOINTS_RUN", summary, f"{failed:g} sample(s) failed (n_samples_failed): every query must be "
                "answered", scope=scope)
    wrong = []
    for name in ("sample_index_rng_seed", "schedule_rng_seed"):
        got, want = values.get(f"effective_{name}"), rnd.seeds.get(name)
        if got != want:
            wrong.append(f"{name} {got!r} (expected {want})")
    if wrong:
        f.error("SEEDS", config, f"not the {rnd.version} seeds (settings.runtime dataloader_random_seed, "
                f"scheduler_random_seed): {'; '.join(wrong)}", scope=scope)
    if not bench.min_duration_exempt:
        duration = to_float(values.get("effective_min_duration_ms"))
        if duration is None:
            f.error("MIN_DURATION", config, "no settings.runtime.min_duration_ms (the official checker stops with "
                    "a traceback)", scope=scope)
        elif duration < rnd.min_duration_ms:
            f.add(ERROR if ctx.strict else WARNING, "MIN_DURATION", config, f"min_duration is {duration:g} ms, MLPerf "
                  f"requires {rnd.min_duration_ms} ms (the official checker rejects it"
                  + (")" if ctx.strict else "; a short open-division run cannot avoid it)"), scope=scope)
    scenario = endpoints_scenario(ep, rules, ctx.scenario)
    if scenario is None:
        f.error("RESULT_MISSING", config, "config.yaml has no type (offline or online): the scenario of the run is "
                "unknown (the official checker stops with a traceback)", scope=scope)
        return
    _inferred(ctx, scenario, config, f)
    if bench.llm:
        _token_latency(ctx, ep, scenario, f)
    else:
        limit = bench.latency_ns.get(ctx.scenario)
        p99 = to_float(values.get("result_99.00_percentile_latency_ns"))
        if limit and p99 is not None and p99 > limit:
            f.error("LATENCY", summary, f"99th percentile latency {p99:g} ns is above the {bench.name} "
                    f"{ctx.scenario} constraint of {limit} ns", scope=scope)
    if ctx.result.metric is None:
        f.error("RESULT_MISSING", summary, f"no result metric for a {scenario} {bench.name} result (tps, qps or "
                "n_samples_issued and duration_ns)", scope=scope)


def _inferred(ctx: ResultContext, scenario: str, path: str, f: Findings) -> None:
    folder = ctx.scenario
    pair = (scenario.lower(), folder.lower())
    if pair[0] == pair[1] or pair == ("server", "interactive") or ctx.result.scenario is None:
        return
    stype = ctx.system_type or ""
    if "edge" not in stype.lower() or (scenario, folder) not in ctx.round.inferable:
        f.error("INFERRED_RESULT", path, f"config.yaml's run is a {scenario} run, the folder says {folder} "
                f"(system_type {stype!r})", scope=ctx.scope)


def _token_latency(ctx: ResultContext, ep: EndpointsResult, scenario: str, f: Findings) -> None:
    """TTFT/TPOT p99 (result_summary.json's early-stopping estimates) of a Server or Interactive run."""
    bench = ctx.benchmark
    assert bench is not None
    if scenario not in ("Server", "Interactive"):
        return
    path = ep.summary.rel
    limits = bench.token_latency_ns.get(scenario)
    if not limits:
        f.error("TOKEN_LATENCY", path, f"no TTFT/TPOT limits for {bench.name} {scenario} in {ctx.round.version}",
                scope=ctx.scope)
        return
    ttft = to_float(ep.performance_values.get("result_first_token_99.00_percentile_latency_ns"))
    tpot = to_float(ep.performance_values.get("result_time_per_output_token_99.00_percentile_ns"))
    if ttft is None or tpot is None:
        f.error("TOKEN_LATENCY", path, "no 99th percentile TTFT/TPOT (ttft/tpot early_stopping_percentiles \"99.0\"; "
                "streaming off?)", scope=ctx.scope)
    elif not (ttft < limits["ttft"] and tpot < limits["tpot"]):
        f.error("TOKEN_LATENCY", path, f"99th percentile TTFT {ms(ttft)} / TPOT {ms(tpot)}; {scenario} needs "
                f"below {ms(limits['ttft'])} / {ms(limits['tpot'])}", scope=ctx.scope)


def _accuracy(ctx: ResultContext, ep: EndpointsResult, rules: EndpointsRules, f: Findings) -> None:
    bench, scope = ctx.benchmark, ctx.scope
    assert bench is not None
    path = ep.accuracy.rel
    if ep.accuracy.data is None:
        f.error("ACCURACY_MISSING", path, f"{ep.accuracy.error}: an endpoints result needs its accuracy results",
                scope=scope)
        return
    if ep.accuracy_score is None:
        f.error("ACCURACY_MISSING", path, "no accuracy_scores entry with a score", scope=scope)
        return
    targets = bench.accuracy_targets(ctx.scenario)
    values = ep.metrics
    if ctx.strict:
        problems = []
        for t in targets:
            v = to_float(values.get(t.metric))
            if v is None:
                problems.append(f"{t.metric} not in the score")
            elif v < t.value:
                problems.append(f"{t.metric} {values[t.metric]} < {t.value:.6g}")
        for u in bench.accuracy_upper:
            v = to_float(values.get(u.metric))
            if v is not None and v > u.value:
                problems.append(f"{u.metric} {values[u.metric]} > {u.value:.6g}")
        if problems:
            f.error("ACCURACY_TARGET", path, f"{bench.name} {ctx.scenario}: {'; '.join(problems)}", scope=scope)
    elif targets and not all(t.metric in values for t in targets):
        names = ", ".join(t.metric for t in targets)
        f.warn("ACCURACY_FORMAT", path, f"no readable value of {names} in the score", scope=scope)
    expected = bench.expected_accuracy_samples(ctx.scenario)
    count = ep.accuracy_values.get("effective_accuracy_sample_count")
    if expected is not None and count != expected:
        f.add(ERROR if ctx.strict else WARNING, "DATASET_COVERAGE", path, f"the accuracy run covered {count} "
              f"samples (accuracy_scores total_samples), the {bench.name} dataset has {expected} (the official "
              "checker rejects it" + (")" if ctx.strict else "; a short open-division run cannot avoid it)"),
              scope=scope)


def _audit(file: EndpointsFile) -> tuple[str | None, bool | None, str | None]:
    """(test name, passed, problem) of an audit file."""
    if file.data is None:
        return None, None, file.error
    test, passed = file.data.get("test"), file.data.get("passed")
    return (test if isinstance(test, str) else None), (passed if isinstance(passed, bool) else None), None


def _compliance(ctx: ResultContext, ep: EndpointsResult, rules: EndpointsRules, f: Findings) -> None:
    bench, scope = ctx.benchmark, ctx.scope
    assert bench is not None
    for test in bench.compliance:
        if test == "TEST09":
            mean = to_float(ep.performance_values.get("mean_output_tokens"))
            low, high = rules.test09_mean_output_tokens
            if mean is None or not low <= mean <= high:
                f.error("COMPLIANCE_FAILED", ep.summary.rel, f"TEST09: mean output length "
                        f"(output_sequence_lengths.avg) {mean} is outside [{low}, {high}]", scope=scope)
        name = rules.compliance.get(test)
        file = ep.audits.get(test)
        if name is None or file is None:
            continue
        if not file.exists:
            if test in rules.required_audits:
                f.error("COMPLIANCE_MISSING", file.rel, f"{bench.name} needs compliance test {test} ({name})",
                        scope=scope)
            continue
        got, passed, problem = _audit(file)
        if problem:
            f.error("COMPLIANCE_FAILED", file.rel, f"{test}: the audit {problem}", scope=scope)
        elif got != name:
            f.error("COMPLIANCE_FAILED", file.rel, f"{test}: the audit is of test {got!r}, not {name!r}", scope=scope)
        elif passed is not True:
            f.error("COMPLIANCE_FAILED", file.rel, f"{test} ({name}) did not pass", scope=scope)
