"""The result to reproduce: a result folder of a submission tree (``mlrepro collect`` wrote it), or a run id of
this machine's run store (its runs are collected into a scratch tree first). Everything comes from the tree and
its ``<tree>.mlrepro`` sibling: the runs' records (``src/mlrepro/<run id>/``), the result folder's user.conf and
LoadGen logs, the systems description.

Public API::

    Original                                        (frozen dataclass)
    from_result_folder(path, version=None) -> Original
    from_run_id(run_id, state_dir, version=None) -> Original
    ReproduceInputError (BadInputError): not a result folder, no record, unknown run, nothing to pair with
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlrepro.errors import BadInputError
from mlrepro.profiles.loader import ProfileRequest
from mlrepro.results.tree import ResultEntry, RunFiles, SubmissionTree, read_result_text, read_run_files, read_tree

RESULT_DEPTH = 6          # <division>/<submitter>/results/<system>/<benchmark>/<scenario> below the tree root


class ReproduceInputError(BadInputError):
    """What to reproduce cannot be read: not a result folder, no mlrepro record, an unknown run."""


@dataclass(frozen=True)
class Original:
    tree: SubmissionTree
    result: ResultEntry
    performance: RunFiles                 # the performance run's records
    accuracy: RunFiles | None             # the accuracy run's (None: the same run did both, mode submission)
    user_conf: str | None                 # the result folder's user.conf: what the performance run loaded
    request: ProfileRequest               # -p / -f / --set of the recorded command line
    argv: tuple[str, ...]                 # the recorded command line (record.reproduce.argv)
    target: str                           # the target it ran on (native | docker | kubernetes)
    problems: tuple[str, ...] = ()        # what the tree lacks (missing records...): one line each

    @property
    def scenario(self) -> str:
        return self.result.scenario or self.result.scenario_folder

    @property
    def modes(self) -> tuple[str, ...]:
        """The modes to rerun: ``submission`` when one run did both, else performance and accuracy."""
        return ("submission",) if self.accuracy is None else ("performance", "accuracy")

    @property
    def record(self) -> Mapping[str, Any]:
        return self.performance.record or {}


def _argv(files: RunFiles) -> tuple[str, ...]:
    for doc in (files.record, files.reproduce):
        if not doc:
            continue
        argv = doc.get("reproduce", {}).get("argv") if isinstance(doc.get("reproduce"), dict) else doc.get("argv")
        if isinstance(argv, list) and all(isinstance(a, str) for a in argv) and argv:
            return tuple(argv)
    return ()


def _target(argv: tuple[str, ...]) -> str:
    """The target of a recorded command line (the last ``--target``, as given or ``--target=NAME``), made
    canonical by the runner table; ``native`` when it names none."""
    from mlrepro.profiles.loader import option_values
    from mlrepro.runners.targets import canonical_target

    given = option_values(argv, {"--target": "target"})["target"]
    return canonical_target(given[-1]) if given else "native"


def from_result_folder(path: str | Path, version: str | None = None) -> Original:
    """The original behind a result folder ``<tree>/<division>/<submitter>/results/<system>/<benchmark>/<scenario>``.
    Raises ReproduceInputError when it is not one, or when mlrepro's records of its runs are not in the tree."""
    folder = Path(path).absolute()
    if not folder.is_dir():
        raise ReproduceInputError(f"{path}: not a directory")
    parts = folder.parts
    if len(parts) <= RESULT_DEPTH or parts[-4] != "results":
        raise ReproduceInputError(f"{path}: not a result folder (<tree>/<division>/<submitter>/results/<system>/"
                                  "<benchmark>/<scenario>)")
    root = folder.parents[RESULT_DEPTH - 1]
    tree = read_tree(root, version)
    rel = folder.relative_to(root).as_posix()
    result = next((r for r in tree.results if r.rel == rel), None)
    if result is None:
        raise ReproduceInputError(f"{path}: the tree at {root} has no such result folder")
    if result.record is None:
        raise ReproduceInputError(f"{rel}: no mlrepro record (its README.md names no runs): only results that "
                                  "mlrepro collected can be reproduced")
    perf = read_run_files(tree, result, result.record.performance_run)
    acc = None if result.record.accuracy_run == result.record.performance_run else \
        read_run_files(tree, result, result.record.accuracy_run)
    problems = list(perf.errors) + (list(acc.errors) if acc else [])
    argv = _argv(perf)
    request = ProfileRequest.from_argv(argv)
    if request is None:
        name = (perf.record or {}).get("profile_name") or result.record.profile_name
        if not name:
            raise ReproduceInputError(f"{perf.rel}: no record.json or reproduce.json with the command line "
                                      f"({'; '.join(problems) or 'no profile named'})")
        problems.append(f"{perf.rel}: the record has no command line: resolving the built-in profile {name}")
        request = ProfileRequest(str(name))
    user_conf = read_result_text(tree, result, "user.conf")
    if user_conf is None:
        problems.append(f"{rel}/user.conf is missing: the recorded targets are pinned from record.json")
    return Original(tree=tree, result=result, performance=perf, accuracy=acc, user_conf=user_conf, request=request,
                    argv=argv, target=_target(argv), problems=tuple(problems))


def from_run_id(run_id: str, state_dir: Path, version: str | None = None) -> Original:
    """The original behind a run of this machine's run store: the run (mode submission), or the run and the
    run of the same launch that completes it (performance + accuracy, same profile hash and scenario), collected
    into ``<state dir>/reproduce/<run id>/original`` (collect again changes nothing). ``run_id``: the whole id or
    any unique part of it (:meth:`RunStore.resolve`, as ``logs`` and ``collect`` take it). Raises UnknownRunError
    for an unknown run, BadInputError for a part several ids contain, ReproduceInputError for a run without a
    partner."""
    from mlrepro.results.submission import collect
    from mlrepro.state.paths import RunPaths
    from mlrepro.state.store import open_store

    with open_store(state_dir) as store:
        run = store.resolve(run_id)
        run_id = run.run_id
        runs = [run]
        if run.mode in ("performance", "accuracy"):
            other = "accuracy" if run.mode == "performance" else "performance"
            partner = next((r for r in store.list() if r.group_id == run.group_id and r.mode == other
                            and r.scenario == run.scenario and r.profile_hash == run.profile_hash
                            and r.status == "succeeded"), None)
            if partner is None:
                raise ReproduceInputError(f"run {run_id}: no {other} run of the same launch to pair it with; a "
                                          "result needs both (reproduce a result folder instead)")
            runs.append(partner)
        elif run.mode != "submission":
            raise ReproduceInputError(f"run {run_id}: mode {run.mode} has no result to reproduce")
    dirs = [RunPaths.of(state_dir, r.run_id).results for r in runs]
    missing = [str(d) for d in dirs if not d.is_dir()]
    if missing:
        raise ReproduceInputError(f"run {run_id}: its results are not on this machine ({missing[0]})")
    root = state_dir / "reproduce" / run_id / "original"
    report = collect(dirs, root, submitter="mlrepro", division="open")
    placed = list(report.results)
    if not placed:
        why = "; ".join(f"{r.run_id}: {'; '.join(r.reasons)}" for r in report.rejected) or "nothing placed"
        raise ReproduceInputError(f"run {run_id}: its results make no result folder ({why})")
    folder = Path(placed[0].path)
    return from_result_folder(folder if folder.is_absolute() else root / folder, version)
