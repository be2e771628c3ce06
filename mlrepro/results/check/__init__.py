"""``mlrepro check``: a submission tree judged by the rules of an MLPerf inference round.

It agrees with the official MLCommons checker (mlcommons/inference, tools/submission, commit b66003e) on what
that checker rejects, reports as one clear finding what makes it stop with a traceback, and goes further with
its own rule codes (INVALID results, LoadGen errors, cut-off logs, hash= that names no full accuracy log, empty
folders and files, a tree without results...). v6.1 endpoints results (no LoadGen logs: config.yaml,
result_summary.json, accuracy_results.json) are read and judged as the checker does (check.endpoints). Every code is in :mod:`mlrepro.results.check.codes`; the rules
of each round are data (:mod:`mlrepro.results.rounds`); the tree is read once by :mod:`mlrepro.results.tree`.

Severities: ``error`` (the tree is not submittable; exit 1) and ``warning``. In the open division a run shorter
than 600 s and an accuracy run over part of the dataset are warnings (a short open run cannot avoid them).

Public API::

    check_tree(root, *, sidecar=None, version=None, jobs=None) -> CheckReport
    check_read_tree(tree: SubmissionTree) -> CheckReport
    Finding, SummaryRow, CheckReport          (mlrepro.results.check.report)
"""

from __future__ import annotations

from pathlib import Path

from mlrepro.results import layout as tl
from mlrepro.results.check.accuracy import check_accuracy
from mlrepro.results.check.compliance import check_compliance
from mlrepro.results.check.context import ResultContext
from mlrepro.results.check.endpoints import check_endpoints
from mlrepro.results.check.measurements import check_measurements
from mlrepro.results.check.performance import check_performance
from mlrepro.results.check.report import CheckReport, Finding, Findings, SummaryRow
from mlrepro.results.check.structure import check_structure
from mlrepro.results.check.systems import check_systems
from mlrepro.results.rounds import load_round
from mlrepro.results.tree import ResultEntry, SubmissionTree, read_tree

__all__ = ["CheckReport", "Finding", "SummaryRow", "check_read_tree", "check_tree"]


def check_tree(root: str | Path, *, sidecar: str | Path | None = None, version: str | None = None,
               jobs: int | None = None) -> CheckReport:
    """Check the submission tree at ``root`` with the rules of round ``version`` (default: the newest).

    ``sidecar``: mlrepro's folder of kept full accuracy logs (default ``<root>.mlrepro`` when it exists).
    ``jobs``: worker processes that read large trees (default 1, see mlrepro.results.tree.read_tree). Content problems are findings,
    never exceptions; raises UnknownRoundError for an unknown round."""
    round_ = load_round(version)
    root_p = Path(root).absolute()
    if not root_p.is_dir():
        finding = Finding("error", "TREE_ROOT", str(root), "the tree root is not a directory")
        return CheckReport(tree=root_p, version=round_.version, findings=(finding,), rows=(), results_checked=0,
                           systems_checked=0)
    return check_read_tree(read_tree(root_p, round_.version, sidecar=sidecar, jobs=jobs))


def check_read_tree(tree: SubmissionTree) -> CheckReport:
    """Check a tree already read by :func:`mlrepro.results.tree.read_tree` (with the rules of the round it was
    read with): for callers that show the tree too (``mlrepro report``), so that it is read once."""
    round_ = load_round(tree.version)
    root_p = tree.root
    f = Findings()
    check_structure(tree, round_, f)
    systems = check_systems(tree, round_, f)
    has_full_logs = tree.sidecar is not None and (tree.sidecar / tl.FULL_ACCURACY).is_dir()
    shared = len(f.items)          # findings so far are about the tree, submitters and systems
    spans: list[tuple[ResultEntry, int, int]] = []
    for r in tree.results:
        start = len(f.items)
        system = tree.system(r)
        ctx = ResultContext(round=round_, result=r, benchmark=round_.benchmarks.get(r.benchmark),
                            system=system.data if system is not None else None,
                            sidecar_has_full_logs=has_full_logs)
        _check_result(ctx, f)
        spans.append((r, start, len(f.items)))
    findings = tuple(f.items)
    wide = [x for x in findings[:shared] if x.scope]
    rows = tuple(_row(r, [x for x in wide if x.covers(r.rel)] + list(findings[a:b])) for r, a, b in spans)
    return CheckReport(tree=root_p, version=round_.version, findings=findings, rows=rows,
                       results_checked=len(tree.results), systems_checked=systems)


def _check_result(ctx: ResultContext, f: Findings) -> None:
    r = ctx.result
    if r.scenario is None:
        f.error("SCENARIO_FOLDER", r.rel, f"{r.scenario_folder!r} is not a scenario "
                f"({', '.join(ctx.round.scenarios)}, in any letter case)", scope=r.rel)
    if ctx.benchmark is None:
        how = " and model_mapping.json does not map it" if r.division == "open" else ""
        f.error("BENCHMARK_UNKNOWN", r.rel.rsplit("/", 1)[0], f"{r.benchmark_folder!r} is not a "
                f"{ctx.round.version} benchmark{how} (the official checker stops with a traceback)", scope=r.rel)
    if r.endpoints is not None:         # an endpoints result: no LoadGen logs
        check_endpoints(ctx, f)
        check_measurements(ctx, f)
        return
    check_performance(ctx, f)
    check_accuracy(ctx, f)
    check_measurements(ctx, f)
    check_compliance(ctx, f)


def _row(r: ResultEntry, mine: list[Finding]) -> SummaryRow:
    acc = ", ".join(f"{k}={v}" for k, v in r.accuracy_values.items())
    return SummaryRow(division=r.division, submitter=r.submitter, system=r.system, benchmark=r.benchmark_folder,
                      mlperf_benchmark=r.benchmark, scenario=r.scenario_folder,
                      metric=r.metric.name if r.metric else "", value=r.metric.value if r.metric else None,
                      unit=r.metric.unit if r.metric else "", validity=r.validity or "",
                      accuracy=acc, errors=sum(1 for x in mine if x.severity == "error"),
                      warnings=sum(1 for x in mine if x.severity == "warning"), path=r.rel)
