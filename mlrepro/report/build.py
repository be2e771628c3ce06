"""From a submission tree (read by :mod:`mlrepro.results.tree`, checked by :mod:`mlrepro.results.check`) to the
rows, problems and comparison a report shows.

Public API::

    read_report(root, *, version=None, sidecar=None, compare=None, compare_version=None) -> TreeReport
        TreeReadError (BadInputError): a root is not a directory; UnknownRoundError: unknown round
    rows_of(tree, check_report) -> tuple[ResultRow, ...]
    compare_rows(base_root, base_rows, other_root, other_rows) -> Comparison
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from mlrepro.report.model import Change, Comparison, Problem, ResultRow, TreeReport
from mlrepro.results.check import CheckReport, check_read_tree
from mlrepro.results.tree import ResultEntry, SubmissionTree, read_tree


def _accelerator(system: dict | None) -> str | None:
    """``8 x AMD Instinct MI350X`` from the systems json (``CPU only`` with no accelerator), None without one."""
    if not system:
        return None
    name = str(system.get("accelerator_model_name") or "").strip()
    count = str(system.get("accelerators_per_node") or "").strip()
    if not name or name.upper() == "N/A" or count in ("0", ""):
        return "CPU only" if name.upper() in ("N/A", "") else name
    return f"{count} x {name}"


def _row(tree: SubmissionTree, r: ResultEntry, errors: int, warnings: int) -> ResultRow:
    system = tree.system(r)
    data = dict(system.data) if system is not None and system.data is not None else None
    rec = r.record
    tokens = r.tokens
    return ResultRow(
        path=r.rel, division=r.division, submitter=r.submitter, system=r.system,
        system_name=str(data.get("system_name")) if data and data.get("system_name") else None,
        accelerator=_accelerator(data), benchmark=r.benchmark_folder, mlperf_benchmark=r.benchmark,
        scenario=r.scenario or r.scenario_folder, metric=r.metric.name if r.metric else None,
        value=r.metric.value if r.metric else None, unit=r.metric.unit if r.metric else "",
        inferred=bool(r.metric and r.metric.inferred),
        latency_ms={p: ns / 1e6 for p, ns in sorted(r.latency_ns.items(), key=lambda kv: float(kv[0]))},
        accuracy=dict(r.accuracy_values), validity=r.validity, run_date=r.run_date,
        profile_name=rec.profile_name if rec else None, profile_hash=rec.profile_hash if rec else None,
        image_digest=rec.image_digest if rec else None, run_id=rec.performance_run if rec else None,
        errors=errors, warnings=warnings, tokens_per_second=tokens.tokens_per_second if tokens else None,
        ttft_ms=_ms(tokens.ttft_ns) if tokens else {}, tpot_ms=_ms(tokens.tpot_ns) if tokens else {},
        endpoints=r.endpoints is not None)


def _ms(ns: Mapping[str, float]) -> dict[str, float]:
    return {p: v / 1e6 for p, v in sorted(ns.items(), key=lambda kv: float(kv[0]))}


def rows_of(tree: SubmissionTree, check: CheckReport) -> tuple[ResultRow, ...]:
    """One row per result folder of ``tree``, with the counts of ``check``'s findings on it."""
    counts = {row.path: (row.errors, row.warnings) for row in check.rows}
    return tuple(_row(tree, r, *counts.get(r.rel, (0, 0))) for r in tree.results)


def _problems(check: CheckReport) -> tuple[Problem, ...]:
    return tuple(Problem(f.severity, f.code, f.path, f.message) for f in check.findings)


def _key(r: ResultRow) -> tuple[str, str, str]:
    return (r.system, r.benchmark, r.scenario)


def _pair(base: Iterable[ResultRow], other: Iterable[ResultRow], key) -> tuple[list[Change], list, list]:  # type: ignore[no-untyped-def]
    by_key = {}
    for r in other:
        by_key.setdefault(key(r), r)
    changes, only_base = [], []
    used = set()
    for r in base:
        o = by_key.get(key(r))
        if o is not None and key(r) not in used:
            used.add(key(r))
            changes.append(Change(r, o))
        else:
            only_base.append(r)
    only_other = [r for r in other if key(r) not in used]
    return changes, only_base, only_other


def compare_rows(base_root: Path, base: Sequence[ResultRow], other_root: Path,
                 other: Sequence[ResultRow]) -> Comparison:
    """Pair the results of two trees by (system, benchmark, scenario). A reproduction usually ran on another
    machine, so what is left is then paired by (benchmark, scenario) when each side has one system left."""
    changes, only_base, only_other = _pair(base, other, _key)
    matched_by = "system, benchmark and scenario"
    if only_base and only_other and len({r.system for r in only_base}) == 1 and \
            len({r.system for r in only_other}) == 1:
        more, only_base, only_other = _pair(only_base, only_other, lambda r: (r.benchmark, r.scenario))
        if more:
            changes += more
            matched_by = "benchmark and scenario (one system on each side)" if len(more) == len(changes) \
                else "system, benchmark and scenario; the rest by benchmark and scenario"
    return Comparison(base=base_root, other=other_root, changes=tuple(changes), only_base=tuple(only_base),
                      only_other=tuple(only_other), matched_by=matched_by)


def read_report(root: str | Path, *, version: str | None = None, sidecar: str | Path | None = None,
                compare: str | Path | None = None, compare_version: str | None = None) -> TreeReport:
    """Read, check and tabulate the tree at ``root`` (round ``version``, default the newest), and compare it
    with the tree at ``compare`` (round ``compare_version``, default ``version``) when given. Content problems
    of either tree are ``Problem`` entries, never exceptions. Raises TreeReadError when a root is not a
    directory, UnknownRoundError for an unknown round."""
    tree = read_tree(root, version, sidecar=sidecar)
    check = check_read_tree(tree)
    rows = rows_of(tree, check)
    if compare is None:
        return TreeReport(root=tree.root, version=tree.version, rows=rows, problems=_problems(check))
    other_tree = read_tree(compare, compare_version or version)
    other_check = check_read_tree(other_tree)
    other_rows = rows_of(other_tree, other_check)
    return TreeReport(root=tree.root, version=tree.version, rows=rows, problems=_problems(check),
                      comparison=compare_rows(tree.root, rows, other_tree.root, other_rows),
                      other_problems=_problems(other_check))
