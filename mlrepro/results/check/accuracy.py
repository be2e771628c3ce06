"""Rules of a result's ``accuracy/`` folder.

Source: the MLCommons submission checker, checks/accuracy_check.py (accuracy.txt against the targets and upper
limits, hash= present, the truncated log, LoadGen errors, dataset coverage, extra files) at
mlcommons/inference@b66003e. mlrepro's own: hash= must name a full log (not the truncated copy; the kept full
log when mlrepro collected the tree), cut-off logs, open-division format (codes in mlrepro.results.check.codes).

Public API::

    evaluate_accuracy(lines, round_, benchmark, scenario) -> AccuracyVerdict
    check_accuracy(ctx, findings)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from mlrepro.results.check.context import ResultContext, to_float
from mlrepro.results.check.performance import check_loadgen_log
from mlrepro.results.check.report import ERROR, WARNING, Findings
from mlrepro.results.rounds import Benchmark, Round

_HASH_RE = re.compile(r"^hash=([\w\d]+)$")


@dataclass(frozen=True)
class AccuracyVerdict:
    """accuracy.txt judged as the official checker reads it: line by line, each target metric's pattern, until
    every target was met and a hash= line was seen."""

    values: dict[str, str]                 # metric -> the last value read
    met: tuple[str, ...]                   # metrics that reached their target
    below: tuple[str, ...]                 # "ROUGE1 44.1 < 44.2" messages
    above: tuple[str, ...]                 # upper-limit violations
    unreadable: tuple[str, ...]            # values that are no numbers
    missing: tuple[str, ...]               # target metrics never found
    hash: str | None

    @property
    def passed(self) -> bool:
        return not (self.below or self.above or self.unreadable or self.missing) and self.hash is not None


def evaluate_accuracy(lines: Iterable[str], round_: Round, benchmark: Benchmark, scenario: str) -> AccuracyVerdict:
    """Judge accuracy.txt ``lines`` (with or without line ends) against ``benchmark``'s targets for
    ``scenario`` (the folder's canonical scenario)."""
    targets = benchmark.accuracy_targets(scenario)
    uppers = benchmark.accuracy_upper
    patterns = round_.accuracy_patterns
    values: dict[str, str] = {}
    seen = [False] * len(targets)
    below: list[str] = []
    above: list[str] = []
    unreadable: list[str] = []
    digest = None
    for line in lines:
        m = _HASH_RE.match(line)
        if m and targets:
            digest = m.group(1)
        for i, t in enumerate(targets):
            m = patterns[t.metric].match(line)
            if not m:
                continue
            values[t.metric] = m.group(1)
            value = to_float(m.group(1))
            if value is None:
                unreadable.append(f"{t.metric} {m.group(1)!r}")
            elif value >= t.value:
                seen[i] = True
            else:
                below.append(f"{t.metric} {m.group(1)} < {t.value:.6g}")
        for u in uppers:
            m = patterns[u.metric].match(line)
            value = to_float(m.group(1)) if m else None
            if value is not None and value > u.value:
                above.append(f"{u.metric} {m.group(1)} > {u.value:.6g}")   # type: ignore[union-attr]
        if all(seen) and digest:
            break
    missing = tuple(t.metric for t, ok in zip(targets, seen) if not ok and t.metric not in values)
    return AccuracyVerdict(values=values, met=tuple(t.metric for t, ok in zip(targets, seen) if ok),
                           below=tuple(below), above=tuple(above), unreadable=tuple(unreadable), missing=missing,
                           hash=digest)


def check_accuracy(ctx: ResultContext, f: Findings) -> None:
    r = ctx.result
    scope = ctx.scope
    acc = r.accuracy
    rnd = ctx.round
    if acc is None:
        f.error("ACCURACY_MISSING", f"{r.rel}/{rnd.files.accuracy_dir}", "no accuracy folder", scope=scope)
        return
    for name in rnd.files.accuracy_required:
        if name not in acc.run.files and name != "mlperf_log_detail.txt":
            f.error("ACCURACY_MISSING", f"{acc.rel}/{name}", "required file is missing", scope=scope)
    readable = check_loadgen_log(acc.run, ctx, f, kind="accuracy")
    bench = ctx.benchmark
    if bench is None:
        return
    _accuracy_txt(ctx, f)
    _hash(ctx, f)
    if acc.log_size is not None and acc.log_size > rnd.max_accuracy_log_bytes:
        f.error("TRUNCATION", acc.log_rel, f"{acc.log_size} bytes: the tree keeps it truncated to at most "
                f"{rnd.max_accuracy_log_bytes} bytes (hash= names the full log)", scope=scope)
    d = acc.run.detail
    if readable and d is not None:
        expected = bench.expected_accuracy_samples(ctx.scenario)
        count = d.get("effective_accuracy_sample_count")
        if count is None:
            count = d.get("qsl_reported_total_count")
        if expected is not None and count != expected:
            strict = ctx.strict
            f.add(ERROR if strict else WARNING, "DATASET_COVERAGE", acc.run.detail_rel,
                  f"the accuracy run covered {count} samples, the {bench.name} dataset has {expected} (the official "
                  "checker rejects it" + (")" if strict else "; a short open-division run cannot avoid it)"),
                  scope=scope)
    for folder, stems in bench.extra_accuracy_files.items():
        files = acc.subdirs.get(folder)
        if files is None:
            f.error("EXTRA_ACCURACY_FILES", f"{acc.rel}/{folder}", f"{bench.name} needs an accuracy/{folder}/ "
                    "folder", scope=scope)
            continue
        have = {name.split(".")[0] for name in files}
        lacking = [s for s in stems if s not in have]
        if lacking:
            f.error("EXTRA_ACCURACY_FILES", f"{acc.rel}/{folder}", f"missing {', '.join(lacking)}", scope=scope)


def _accuracy_txt(ctx: ResultContext, f: Findings) -> None:
    acc = ctx.result.accuracy
    bench = ctx.benchmark
    assert acc is not None and bench is not None
    if acc.txt_lines is None:
        return        # reported as ACCURACY_MISSING
    verdict = evaluate_accuracy(acc.txt_lines, ctx.round, bench, ctx.scenario)
    path, scope = acc.txt_rel, ctx.scope
    if ctx.strict:
        problems = [*(f"{m} not found" for m in verdict.missing), *verdict.below, *verdict.above,
                    *(f"{u} is not a number" for u in verdict.unreadable)]
        if problems:
            f.error("ACCURACY_TARGET", path, f"{bench.name} {ctx.scenario}: {'; '.join(problems)}", scope=scope)
    elif verdict.missing or verdict.unreadable:
        names = ", ".join(t.metric for t in bench.accuracy_targets(ctx.scenario))
        f.warn("ACCURACY_FORMAT", path, f"no readable value of {names} (the {bench.name} pattern)", scope=scope)


def _hash(ctx: ResultContext, f: Findings) -> None:
    acc = ctx.result.accuracy
    assert acc is not None
    if acc.txt_lines is None:
        return
    path, scope = acc.txt_rel, ctx.scope
    digest = acc.values.hash.lower() if acc.values and acc.values.hash else None
    if digest is None:
        f.error("ACCURACY_HASH", path, "no hash=<sha256 of the full mlperf_log_accuracy.json> line", scope=scope)
        return
    if acc.full_log_rel is not None:
        if acc.full_log_error:
            f.error("FULL_LOG_CORRUPT", acc.full_log_rel, f"the kept full accuracy log {acc.full_log_error}",
                    scope=scope)
        if acc.full_log_sha256 != digest:
            f.error("FULL_LOG_CORRUPT", acc.full_log_rel, f"the kept full accuracy log's sha256 is "
                    f"{acc.full_log_sha256}, not the {digest} accuracy.txt names", scope=scope)
        elif acc.full_log_matches is False:
            f.error("ACCURACY_HASH", acc.log_rel, "the tree's mlperf_log_accuracy.json is neither the kept full log "
                    "nor its truncation", scope=scope)
        return
    if acc.log_sha256 is None:
        return        # reported as ACCURACY_MISSING
    if acc.log_truncated:
        if acc.log_sha256 == digest:
            f.error("ACCURACY_HASH", path, "hash= is the sha256 of the truncated log in the tree, not of the full "
                    "mlperf_log_accuracy.json", scope=scope)
        elif ctx.result.record is not None and ctx.sidecar_has_full_logs:
            f.error("ACCURACY_HASH", path, f"hash= {digest[:16]}... names no full accuracy log kept beside the tree",
                    scope=scope)
    elif acc.log_size is not None and acc.log_size <= ctx.round.max_accuracy_log_bytes and \
            acc.log_sha256 != digest:
        f.error("ACCURACY_HASH", path, f"hash= {digest[:16]}... is not the sha256 of mlperf_log_accuracy.json "
                f"({acc.log_sha256[:16]}...), which is whole (not truncated)", scope=scope)

