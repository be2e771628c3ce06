"""Operations on recorded runs (``logs``, ``collect``, and the inputs of ``compliance``) that work after the
launching terminal closed.

Each goes through the run's runner from the runner table (:func:`mlrepro.runners.targets.runner_for_record`)
and :meth:`Runner.attach`, which rebuilds the run's handle from its record: the same code reads a live container,
a Job's pod or a saved log. A run this machine did not launch (a Job installed with Helm) is found through
:meth:`Runner.discover`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mlrepro.errors import BadInputError
from mlrepro.runners.targets import runner_for_record
from mlrepro.state.errors import UnknownRunError
from mlrepro.state.paths import RunPaths
from mlrepro.state.status import RunStatus

if TYPE_CHECKING:  # pragma: no cover
    from mlrepro.results.rundir import HarnessRun
    from mlrepro.results.submission import CollectReport
    from mlrepro.runners.base import KubeTarget
    from mlrepro.state.store import RunRecord, RunStore


def open_state(state_dir: Path | None) -> tuple[RunStore, Path]:
    """The run store of ``state_dir`` (default: the state directory) and that directory."""
    from mlrepro.state.store import default_state_dir, open_store

    state_dir = state_dir or default_state_dir()
    return open_store(state_dir), state_dir


def find_record(store: RunStore, run_id: str, kube: KubeTarget | None, state_dir: Path) -> RunRecord:
    """The recorded run ``run_id`` names (its full id or any unique part), or, with ``kube``, one the cluster has
    by its full id (:meth:`Runner.discover`). Raises UnknownRunError, BadInputError for an ambiguous part or a
    Job the cluster does not have."""
    from mlrepro.runners.base import RunnerConfig
    from mlrepro.runners.targets import get_runner

    try:
        return store.resolve(run_id)
    except UnknownRunError:
        if kube is None:
            raise
    runner = get_runner("kubernetes", RunnerConfig(state_dir=state_dir, kube=kube))
    try:
        return runner.discover(run_id)
    finally:
        runner.close()


def stream_logs(run_id: str, follow: bool = False, state_dir: Path | None = None,
                kube: KubeTarget | None = None) -> Iterator[str]:
    """The harness output of a recorded run: live while it runs (with ``follow``, until it ends), else the
    log saved when it ended. ``kube``: where to look for a run that is not recorded here. Raises
    UnknownRunError, or a RuntimeFailure when nothing is left to read."""
    store, state_dir = open_state(state_dir)
    record = find_record(store, run_id, kube, state_dir)
    if record.status == RunStatus.pending.value:
        raise BadInputError(f"run {record.run_id} has not started yet")
    paths = RunPaths.of(state_dir, record.run_id)
    if record.is_terminal and paths.log.is_file():
        yield from paths.log.read_text(encoding="utf-8", errors="replace").splitlines()
        return
    runner = runner_for_record(record, state_dir)
    try:
        yield from runner.logs(runner.attach(record), follow=follow)
    finally:
        runner.close()


def verified_results(record: RunRecord, state_dir: Path) -> HarnessRun:
    """The run's results on this machine, verified (each file hashed once), fetched from where it ran when only
    that place has them (or the copy here no longer matches its checksums). Raises BadInputError for a run
    without results, ChecksumError and the runner's errors."""
    from mlrepro.results.errors import ChecksumError
    from mlrepro.runners.base import verify_results

    local = RunPaths.of(state_dir, record.run_id).results
    if local.is_dir():
        try:
            return verify_results(local, record.run_id, copy=False)
        except ChecksumError:
            if not record.results_location:
                raise
    if not record.results_location:
        raise BadInputError(f"run {record.run_id} ({record.status}) has no results to collect")
    runner = runner_for_record(record, state_dir)
    try:
        return runner.fetch_results(runner.attach(record), local)
    finally:
        runner.close()


def collect_runs(run_ids: Sequence[str], into: Path, *, submitter: str, division: str = "open",
                 force: bool = False, state_dir: Path | None = None,
                 extra_sources: Sequence[Path] = (), kube: KubeTarget | None = None,
                 system_overrides: Mapping[str, str] | None = None) -> CollectReport:
    """Collect recorded runs (by id) and/or harness results directories (``extra_sources``). ``kube``: where
    to find runs that are not recorded here (their claims are read through a helper pod);
    ``system_overrides`` are systems-json fields (notes file, contact) that win over the probed values."""
    from dataclasses import replace

    from mlrepro.errors import MlreproError
    from mlrepro.results import layout as tl
    from mlrepro.results.submission import CollectReport, RejectedRun, collect

    runs: list[HarnessRun | Path] = []
    failures: list[RejectedRun] = []
    if run_ids:
        store, state_dir = open_state(state_dir)
        # an id that names no run is a typo: nothing is collected (exit 2) ...
        records = [find_record(store, run_id, kube, state_dir) for run_id in dict.fromkeys(run_ids)]
        for record in records:
            try:     # ... but one run without usable results must not stop the others: it is listed
                runs.append(verified_results(record, state_dir))
            except MlreproError as exc:
                failures.append(RejectedRun(record.run_id, Path(), "failed", (str(exc),)))
    for source in extra_sources:
        if not source.is_dir():
            raise BadInputError(f"--from {source}: not a directory")
        runs.append(source)
    if not runs:
        if failures:
            root = into.absolute()
            return CollectReport(tree=root, sidecar=tl.sidecar_for(root), division=division, submitter=submitter,
                                 rejected=tuple(failures))
        raise BadInputError("collect: no run ids and no --from directory")
    report = collect(runs, into, submitter=submitter, division=division, force=force,
                     system_overrides=system_overrides)
    return replace(report, rejected=report.rejected + tuple(failures)) if failures else report
