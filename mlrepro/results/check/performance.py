"""Rules of a performance run (``performance/run_1`` of a result, and the performance run of TEST01/TEST04).

Source: the MLCommons submission checker, checks/performance_check.py (sample count, seeds, early stopping and
latency constraints, min queries, min duration, network SUT name, LLM token latencies, inferred results, the
result metric) at mlcommons/inference@b66003e. mlrepro's own: INVALID results, LoadGen errors in performance
logs, cut-off and garbled detail logs, missing summary logs (codes in mlrepro.results.check.codes).

Public API::

    check_loadgen_log(run, ctx, findings, *, kind) -> bool        (False: the log cannot be judged further)
    check_performance(ctx, findings)
    check_performance_run(run, ctx, findings)
"""

from __future__ import annotations

from mlrepro.results.check.context import ResultContext, ms, to_float
from mlrepro.results.check.report import ERROR, WARNING, Findings
from mlrepro.results.tree import LoadgenRun


def check_loadgen_log(run: LoadgenRun, ctx: ResultContext, f: Findings, *, kind: str) -> bool:
    """Readability, completeness, LoadGen errors of one LoadGen output folder (``kind``: performance |
    accuracy | TEST01 ...). False when the detail log is missing or cut off (nothing more to judge)."""
    scope = ctx.scope
    d = run.detail
    if d is None:
        f.error("PERF_MISSING" if kind != "accuracy" else "ACCURACY_MISSING", run.detail_rel,
                f"the {kind} run has no {run.detail_rel.rsplit('/', 1)[-1]} (the official checker stops with a "
                "traceback)", scope=scope)
        return False
    if run.detail_error:
        f.error("DETAIL_UNREADABLE", run.detail_rel, run.detail_error, scope=scope)
    elif not d.starts_with_entry:
        f.error("DETAIL_UNREADABLE", run.detail_rel, "the first line is not a :::MLLOG entry (the official "
                "checker stops with a traceback)", scope=scope)
    elif d.first_garbled_line is not None:
        f.error("DETAIL_UNREADABLE", run.detail_rel, f"line {d.first_garbled_line} is not a readable :::MLLOG "
                "entry (the official checker stops with a traceback)", scope=scope)
    # LoadGen ends a performance log with result_validity and the result entries, every log with power_end
    last_key = "power_end" if kind == "accuracy" else "result_validity"
    incomplete = not d.ends_cleanly or last_key not in d
    if incomplete:
        what = f"has no {last_key} entry" if last_key not in d else "ends in the middle of an entry"
        f.error("DETAIL_INCOMPLETE", run.detail_rel, f"the log is cut off: it {what}", scope=scope)
    if not run.has_summary:
        if kind == "accuracy":      # the official checker reads none; published results omit it
            f.warn("LOG_MISSING", run.summary_rel, "the accuracy run has no mlperf_log_summary.txt (the official "
                   "checker does not read it)", scope=scope)
        else:
            f.error("LOG_MISSING", run.summary_rel, f"the {kind} run has no mlperf_log_summary.txt", scope=scope)
    if d.errors:
        first = d.errors[0]
        more = f" (and {len(d.errors) - 1} more)" if len(d.errors) > 1 else ""
        f.error("LOADGEN_ERROR", run.detail_rel, f"LoadGen error {first.key}: {first.value}{more}", scope=scope)
    return not incomplete


def check_performance(ctx: ResultContext, f: Findings) -> None:
    """The performance run of a result folder."""
    r = ctx.result
    run = r.performance
    if run is None:
        f.error("PERF_MISSING", f"{r.rel}/{ctx.round.files.performance_dir}", "no performance run folder (the "
                "official checker stops with a traceback)", scope=ctx.scope)
        return
    check_performance_run(run, ctx, f, kind="performance")
    if r.power:
        f.warn("POWER_NOT_CHECKED", f"{r.rel}/{ctx.round.files.power_dir}", "power measurements are not checked "
               "by mlrepro: run the official checker (its power checks) as well", scope=ctx.scope)


def check_performance_run(run: LoadgenRun, ctx: ResultContext, f: Findings, *, kind: str) -> None:
    """Every rule of a performance-mode LoadGen run (``kind``: performance, TEST01, TEST04)."""
    if not check_loadgen_log(run, ctx, f, kind=kind):
        return
    d = run.detail
    assert d is not None
    path, scope, bench, rnd = run.detail_rel, ctx.scope, ctx.benchmark, ctx.round
    validity = run.validity
    if validity == "INVALID" or d.validity == "INVALID":
        reason = d.get("result_invalid_reason")
        f.error("INVALID_RESULT", run.summary_rel if run.summary_validity == "INVALID" else path,
                "LoadGen says the result is INVALID" + (f" ({reason})" if reason else ""), scope=scope)
    log_scenario = d.get("effective_scenario")
    if not isinstance(log_scenario, str):
        f.error("RESULT_MISSING", path, "the log has no effective_scenario", scope=scope)
        return
    if bench is None:
        return        # BENCHMARK_UNKNOWN is reported for the result folder

    def need(key: str, code: str) -> float | None:
        value = to_float(d.get(key))
        if value is None:
            f.error(code, path, f"the log has no {key}", scope=scope)
        return value

    if bench.performance_sample_count is not None:
        count = need("effective_performance_sample_count", "PERF_SAMPLE_COUNT")
        if count is not None and count < bench.performance_sample_count:
            f.error("PERF_SAMPLE_COUNT", path, f"performance_sample_count is {count:g}, {bench.name} needs at least "
                    f"{bench.performance_sample_count}", scope=scope)
    wrong = [f"{name} {d.get('effective_' + name)!r} (expected {want})" for name, want in rnd.seeds.items()
             if d.get(f"effective_{name}") != want]
    if wrong:
        f.error("SEEDS", path, f"not the {rnd.version} seeds: {'; '.join(wrong)}", scope=scope)
    _latency(run, ctx, f, log_scenario)
    if log_scenario not in rnd.early_stopping_scenarios:
        required = bench.min_queries.get(log_scenario)
        if required:
            count = need("effective_min_query_count", "MIN_QUERIES")
            if count is not None and count < required:
                f.error("MIN_QUERIES", path, f"min_query_count is {count:g}, {bench.name} {log_scenario} needs "
                        f"{required}", scope=scope)
    if log_scenario == "Offline" and ctx.division == "closed" and bench.offline_min_samples_per_query:
        spq = need("effective_samples_per_query", "MIN_QUERIES")
        if spq is not None and spq < bench.offline_min_samples_per_query:
            f.error("MIN_QUERIES", path, f"the Offline query has {spq:g} samples, {bench.name} needs at least "
                    f"{bench.offline_min_samples_per_query}", scope=scope)
    if not bench.min_duration_exempt:
        duration = need("effective_min_duration_ms", "MIN_DURATION")
        if duration is not None and duration < rnd.min_duration_ms:
            severity = ERROR if ctx.strict else WARNING
            f.add(severity, "MIN_DURATION", path, f"min_duration is {duration:g} ms, MLPerf requires "
                  f"{rnd.min_duration_ms} ms (the official checker rejects it"
                  + (")" if ctx.strict else "; a short open-division run cannot avoid it)"), scope=scope)
    if ctx.network_mode:
        sut = d.get("sut_name")
        if not isinstance(sut, str) or rnd.network_sut_name not in sut:
            f.error("NETWORK_MODE", path, f"a network-mode SUT name must contain {rnd.network_sut_name!r}, got "
                    f"{sut!r}", scope=scope)
    if bench.llm:
        _token_latency(run, ctx, f, log_scenario)
    _inferred(run, ctx, f, log_scenario)
    key = rnd.result_key(bench, log_scenario)
    if key is None or to_float(d.get(key)) is None:
        f.error("RESULT_MISSING", path, f"the log has no numeric {key or 'result'} for a {log_scenario} "
                f"{bench.name} result", scope=scope)


def _latency(run: LoadgenRun, ctx: ResultContext, f: Findings, log_scenario: str) -> None:
    d = run.detail
    assert d is not None and ctx.benchmark is not None
    path, scope = run.detail_rel, ctx.scope
    if log_scenario in ctx.round.early_stopping_scenarios:
        if d.get("early_stopping_met") is not True:
            f.error("EARLY_STOPPING", path, f"the early-stopping condition was not met "
                    f"({d.get('early_stopping_result') or 'no early_stopping_met entry'})", scope=scope)
        limit = ctx.benchmark.latency_ns.get(log_scenario)
        target = to_float(d.get("effective_target_latency_ns"))
        if limit and target is not None and target > limit:
            f.error("LATENCY", path, f"target latency {target:g} ns is above the {ctx.benchmark.name} "
                    f"{log_scenario} constraint of {limit} ns", scope=scope)
    else:
        limit = ctx.benchmark.latency_ns.get(ctx.scenario)
        p99 = to_float(d.get("result_99.00_percentile_latency_ns"))
        if limit and p99 is not None and p99 > limit:
            f.error("LATENCY", path, f"99th percentile latency {p99:g} ns is above the {ctx.benchmark.name} "
                    f"constraint of {limit} ns", scope=scope)


def _token_latency(run: LoadgenRun, ctx: ResultContext, f: Findings, log_scenario: str) -> None:
    d = run.detail
    bench = ctx.benchmark
    assert d is not None and bench is not None
    path, scope = run.detail_rel, ctx.scope
    if not d.get("requested_use_token_latencies"):
        f.error("TOKEN_LATENCY", path, f"{bench.name} is an LLM benchmark: use_token_latencies must be on",
                scope=scope)
        return
    if log_scenario not in ("Server", "Interactive"):
        return
    # The folder's scenario picks the limits: an Interactive result is a LoadGen Server run held to the
    # Interactive limits (the official checker applies the Server ones to it).
    limits = bench.token_latency_ns.get(ctx.scenario) or bench.token_latency_ns.get(log_scenario)
    if not limits:
        f.error("TOKEN_LATENCY", path, f"no TTFT/TPOT limits for {bench.name} {ctx.scenario} in "
                f"{ctx.round.version}", scope=scope)
        return
    ttft = to_float(d.get("result_first_token_99.00_percentile_latency_ns"))
    tpot = to_float(d.get("result_time_per_output_token_99.00_percentile_ns"))
    wanted = (to_float(d.get("requested_server_ttft_latency")), to_float(d.get("requested_server_tpot_latency")))
    if ttft is None or tpot is None:
        f.error("TOKEN_LATENCY", path, "the log has no 99th percentile TTFT/TPOT", scope=scope)
    elif not ctx.strict and None not in wanted and any(w > limits[k] for w, k in zip(wanted, ("ttft", "tpot"))) \
            and ttft <= wanted[0] and tpot <= wanted[1]:
        # an open-division model held to bounds of its own (the SmolLM2 demo's, calibrated on its system and
        # recorded in its user.conf): met; LoadGen's verdict is not one against the round's limits of the benchmark
        # it maps to, whatever its p99s (the official checker compares only the p99s, with the Server limits)
        meets = ttft < limits["ttft"] and tpot < limits["tpot"]
        official = bench.token_latency_ns.get(log_scenario) or limits
        rejects = not (ttft < official["ttft"] and tpot < official["tpot"])
        f.warn("TOKEN_LATENCY", path, f"99th percentile TTFT {ms(ttft)} / TPOT {ms(tpot)} meet the run's own "
                  f"bounds {ms(wanted[0])} / {ms(wanted[1])}"
                  + (f" and {bench.name} {ctx.scenario}'s {ms(limits['ttft'])} / {ms(limits['tpot'])}, but LoadGen judged "
                     "the run by its own bounds" if meets else
                     f", not {bench.name} {ctx.scenario}'s {ms(limits['ttft'])} / {ms(limits['tpot'])}")
                  + (" (the official checker rejects it" if rejects else
                     f" (the official checker, which compares the p99s with {log_scenario}'s limits, accepts it")
                  + "; an open-division model may be held to bounds of its own)", scope=scope)
        return
    elif not (ttft < limits["ttft"] and tpot < limits["tpot"]):
        f.error("TOKEN_LATENCY", path, f"99th percentile TTFT {ms(ttft)} / TPOT {ms(tpot)}; {ctx.scenario} "
                f"needs below {ms(limits['ttft'])} / {ms(limits['tpot'])}", scope=scope)
        return
    # LoadGen's own verdict (early stopping on TTFT/TPOT) used the targets it was given: a run with looser targets
    # than the folder's limits (mlperf.conf's Server entries in an Interactive folder) was never judged by them
    if any(w is not None and w > limits[k] for w, k in zip(wanted, ("ttft", "tpot"))):
        shown = " / ".join(ms(w) for w in wanted)
        f.error("TOKEN_LATENCY", path, f"LoadGen ran with TTFT/TPOT targets {shown}, "
                f"looser than {ctx.scenario}'s {ms(limits['ttft'])} / {ms(limits['tpot'])} (not the mlperf.conf entries "
                f"of {ctx.scenario})", scope=scope)


def _inferred(run: LoadgenRun, ctx: ResultContext, f: Findings, log_scenario: str) -> None:
    folder = ctx.scenario
    pair = (log_scenario.lower(), folder.lower())
    if pair[0] == pair[1] or pair == ("server", "interactive") or ctx.result.scenario is None:
        return
    path, scope = run.detail_rel, ctx.scope
    stype = ctx.system_type or ""
    if folder == "Interactive":
        f.error("INFERRED_RESULT", path, f"an Interactive result needs a LoadGen Server run, not {log_scenario}",
                scope=scope)
    elif "edge" not in stype.lower():
        f.error("INFERRED_RESULT", path, f"a {log_scenario} run in a {folder} folder: only edge systems may "
                f"infer results (system_type {stype!r})", scope=scope)
    elif (log_scenario, folder) not in ctx.round.inferable:
        f.error("INFERRED_RESULT", path, f"a {folder} result cannot be inferred from a {log_scenario} run",
                scope=scope)
