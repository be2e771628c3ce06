"""Operations on recorded runs (``logs``, ``collect``) that work after the launching terminal closed.

Each goes through the run's runner (looked up by the recorded target) and :meth:`Runner.attach`, which
rebuilds the run's handle from its record: the same code reads a live container, a Job's pod or a saved log.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mlrepro.errors import BadInputError
from mlrepro.pipeline import collect_into
from mlrepro.runners import RunnerConfig, get_runner
from mlrepro.runners.paths import RunPaths

if TYPE_CHECKING:  # pragma: no cover
    from mlrepro.results.state import RunRecord, RunStore
    from mlrepro.results.submission import CollectReport
    from mlrepro.runners.base import Runner


def _store(state_dir: Path | None) -> tuple[RunStore, Path]:
    from mlrepro.results.state import default_state_dir, open_store

    state_dir = state_dir or default_state_dir()
    return open_store(state_dir), state_dir


def runner_for(record: RunRecord, state_dir: Path) -> Runner:
    """The runner of a recorded run, configured to reach where it ran (its cluster and namespace)."""
    from mlrepro.runners import KubeTarget
    from mlrepro.runners.locations import Pvc, parse_location

    kube = KubeTarget()
    if record.target == "kubernetes" and record.results_location:
        location = parse_location(record.results_location, record.target)
        if isinstance(location, Pvc):
            kube = KubeTarget(context=location.context or None, namespace=location.namespace)
    return get_runner(record.target, RunnerConfig(state_dir=state_dir, kube=kube))


def stream_logs(run_id: str, follow: bool = False, state_dir: Path | None = None) -> Iterator[str]:
    """The harness output of a recorded run: live while it runs (with ``follow``, until it ends), else the
    log saved when it ended. Raises UnknownRunError, or a RuntimeFailure when nothing is left to read."""
    store, state_dir = _store(state_dir)
    record = store.get(run_id)
    if record.status == "pending":
        raise BadInputError(f"run {run_id} has not started yet")
    paths = RunPaths.of(state_dir, run_id)
    if record.is_terminal and paths.log.is_file():
        yield from paths.log.read_text(encoding="utf-8", errors="replace").splitlines()
        return
    runner = runner_for(record, state_dir)
    yield from runner.logs(runner.attach(record), follow=follow)


def ensure_local_results(record: RunRecord, state_dir: Path) -> Path:
    """The run's verified results on this machine, fetched from where it ran if only that place has them."""
    from mlrepro.harness.checksums import MANIFEST_NAME

    local = RunPaths.of(state_dir, record.run_id).results
    if (local / MANIFEST_NAME).is_file():
        return local
    if not record.results_location:
        raise BadInputError(f"run {record.run_id} ({record.status}) has no results to collect")
    runner = runner_for(record, state_dir)
    return runner.fetch_results(runner.attach(record), local)


def collect_runs(run_ids: Sequence[str], into: Path, *, submitter: str, division: str = "open",
                 force: bool = False, state_dir: Path | None = None,
                 extra_sources: Sequence[Path] = ()) -> CollectReport:
    """Collect recorded runs (by id) and/or harness results directories (``extra_sources``)."""
    dirs: list[Path] = []
    if run_ids:
        store, state_dir = _store(state_dir)
        records = [store.get(run_id) for run_id in dict.fromkeys(run_ids)]
        dirs = [ensure_local_results(r, state_dir) for r in records]
    for source in extra_sources:
        if not source.is_dir():
            raise BadInputError(f"--from {source}: not a directory")
        dirs.append(source)
    return collect_into(dirs, into, submitter, division, force)
