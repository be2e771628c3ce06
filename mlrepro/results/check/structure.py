"""Tree- and submitter-level rules: divisions, empty folders, results/ and code folders, model_mapping.json,
the scenarios each benchmark needs (closed and network divisions).

Source: the MLCommons submission checker (loader.py: the walk, ``check_scenarios``; measurements_checks.py:
the code folder) at mlcommons/inference@b66003e; the empty-folder and no-result rules are mlrepro's own.
"""

from __future__ import annotations

from collections import defaultdict

from mlrepro.results.check.report import Findings
from mlrepro.results.rounds import Round
from mlrepro.results.tree import ResultEntry, SubmissionTree


def check_structure(tree: SubmissionTree, round_: Round, f: Findings) -> None:
    """Add the tree-level findings of ``tree`` to ``f``."""
    if not tree.divisions:
        f.error("NO_DIVISION", ".", f"no division folder ({', '.join(round_.divisions)})")
    elif not tree.results:
        f.error("NO_RESULTS", ".", "the tree holds no result folder (results/<system>/<benchmark>/<scenario>)")
    for entry in tree.ignored:
        f.warn("IGNORED_ENTRY", entry.rstrip("/"), "not a division folder: the checker ignores it")
    for rel in tree.empty_dirs:
        f.error("EMPTY_FOLDER", rel, "empty folder", scope=rel)
    for r in tree.results:
        for rel in r.empty_dirs:
            f.error("EMPTY_FOLDER", rel, "empty folder", scope=r.rel)
    for sub in tree.submitters:
        has_results = bool(sub.result_systems)
        if not sub.has_results:
            f.error("RESULTS_DIR_MISSING", f"{sub.rel}/results", "the submitter has no results/ folder (the "
                    "official checker stops with a traceback)", scope=sub.rel)
        if has_results and not sub.has_code:
            f.error("CODE_DIR_MISSING", f"{sub.rel}/{round_.layout.code_dir}",
                    f"the {round_.version} layout needs a {round_.layout.code_dir}/ folder with the code of every "
                    "result", scope=sub.rel)
        mapping_rel = f"{sub.rel}/model_mapping.json"
        if sub.model_mapping_error:
            f.error("MODEL_MAPPING", mapping_rel, f"{sub.model_mapping_error} (the official checker stops with "
                    "a traceback)", scope=sub.rel)
        for name, target in sub.model_mapping.items():
            if not isinstance(target, str) or target not in round_.benchmarks:
                f.warn("MODEL_MAPPING", mapping_rel, f"{name!r} maps to {target!r}, which is not a {round_.version} "
                       "benchmark")
    _scenarios(tree, round_, f)


def _scenarios(tree: SubmissionTree, round_: Round, f: Findings) -> None:
    """Closed/network: each benchmark folder has the scenarios its system type requires and no others."""
    groups: dict[tuple[str, str, str, str], list[ResultEntry]] = defaultdict(list)
    for r in tree.results:
        if r.division in ("closed", "network"):
            groups[(r.division, r.submitter, r.system, r.benchmark_folder)].append(r)
    for results in groups.values():
        first = results[0]
        bench = round_.benchmarks.get(first.benchmark)
        system = tree.system(first)
        data = system.data if system is not None else None
        stype = data.get("system_type") if data else None
        if bench is None or not isinstance(stype, str) or stype not in round_.system_types:
            continue        # reported as BENCHMARK_UNKNOWN, SYSTEM_DESC_* or SYSTEM_FIELD_VALUE
        folder = first.rel.rsplit("/", 1)[0]
        rule = bench.scenarios.get(round_.system_types[stype])
        if rule is None:
            f.error("SCENARIOS_REQUIRED", folder, f"{bench.name} is not a {stype} benchmark in {round_.version} "
                    "(the official checker stops with a traceback)", scope=folder)
            continue
        present = {r.scenario_folder.lower() for r in results}
        required = {s.lower() for s in rule.required}
        allowed = required | {s.lower() for s in rule.optional}
        missing = sorted(s for s in rule.required if s.lower() not in present)
        if rule.one_of and not present & {s.lower() for s in rule.one_of}:
            missing.append(f"one of {' or '.join(rule.one_of)}")
        unknown = sorted(r.scenario_folder for r in results if r.scenario_folder.lower() not in allowed)
        if missing:
            f.error("SCENARIOS_REQUIRED", folder, f"{_article(stype)} {stype} {bench.name} submission needs {', '.join(missing)}",
                    scope=folder)
        if unknown:
            f.error("SCENARIOS_REQUIRED", folder, f"{', '.join(unknown)}: not a scenario of {bench.name} for a "
                    f"{stype} system in {round_.version}", scope=folder)


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"
