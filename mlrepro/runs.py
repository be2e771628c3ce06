"""Operations on recorded runs (``logs``, ``collect``) that work after the launching terminal closed.

Each goes through the run's runner (looked up by the recorded target) and :meth:`Runner.attach`, which
rebuilds the run's handle from its record: the same code reads a live container, a Job's pod or a saved log.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mlrepro.errors import BadInputError
from mlrepro.pipeline import collect_into
from mlrepro.runners import RunnerConfig, get_runner
from mlrepro.state.paths import RunPaths

if TYPE_CHECKING:  # pragma: no cover
    from mlrepro.state.store import RunRecord, RunStore
    from mlrepro.results.submission import CollectReport
    from mlrepro.runners import KubeTarget
    from mlrepro.runners.base import Runner


def _store(state_dir: Path | None) -> tuple[RunStore, Path]:
    from mlrepro.state.store import default_state_dir, open_store

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


def cluster_record(run_id: str, kube: KubeTarget, state_dir: Path) -> RunRecord:
    """A record for a run mlrepro did not launch (e.g. installed with Helm), from its Job on the cluster: the
    objects are named from the run id as `generate` names them. Raises BadInputError when there is no Job."""
    from mlrepro.render.podspec import results_claim_name
    from mlrepro.state.store import RunRecord
    from mlrepro.runners import RunnerConfig
    from mlrepro.runners.kubernetes.diagnose import job_finished
    from mlrepro.runners.kubernetes.runner import KubernetesRunner
    from mlrepro.runners.locations import Pvc, format_location

    runner = KubernetesRunner(RunnerConfig(state_dir=state_dir, kube=kube))
    try:
        job = runner.cluster.get("Job", run_id)
    finally:
        runner.close()
    if job is None:
        raise BadInputError(f"run {run_id} is not recorded here and there is no Job {run_id} in namespace "
                            f"{runner.namespace} (its TTL may have passed)")
    containers = ((job.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or [{}]
    return RunRecord(run_id=run_id, target="kubernetes", image=containers[0].get("image", ""),
                     status="succeeded" if job_finished(job) else "running", job_id=f"{runner.namespace}/{run_id}",
                     results_location=format_location(Pvc(results_claim_name(run_id), runner.namespace,
                                                          runner.context)))


def _record(store: RunStore, run_id: str, kube: KubeTarget | None, state_dir: Path) -> RunRecord:
    """The recorded run ``run_id`` names (its full id or any unique part), or, with ``kube``, one found on the
    cluster by its full id."""
    from mlrepro.state.errors import UnknownRunError

    try:
        return store.resolve(run_id)
    except UnknownRunError:
        if kube is None:
            raise
    return cluster_record(run_id, kube, state_dir)


def stream_logs(run_id: str, follow: bool = False, state_dir: Path | None = None,
                kube: KubeTarget | None = None) -> Iterator[str]:
    """The harness output of a recorded run: live while it runs (with ``follow``, until it ends), else the
    log saved when it ended. ``kube``: where to look for a run that is not recorded here. Raises
    UnknownRunError, or a RuntimeFailure when nothing is left to read."""
    store, state_dir = _store(state_dir)
    record = _record(store, run_id, kube, state_dir)
    if record.status == "pending":
        raise BadInputError(f"run {record.run_id} has not started yet")
    paths = RunPaths.of(state_dir, record.run_id)
    if record.is_terminal and paths.log.is_file():
        yield from paths.log.read_text(encoding="utf-8", errors="replace").splitlines()
        return
    runner = runner_for(record, state_dir)
    try:
        yield from runner.logs(runner.attach(record), follow=follow)
    finally:
        runner.close()


def ensure_local_results(record: RunRecord, state_dir: Path) -> Path:
    """The run's verified results on this machine, fetched from where it ran if only that place has them."""
    from mlrepro.harness.checksums import MANIFEST_NAME

    local = RunPaths.of(state_dir, record.run_id).results
    if (local / MANIFEST_NAME).is_file():
        return local
    if not record.results_location:
        raise BadInputError(f"run {record.run_id} ({record.status}) has no results to collect")
    runner = runner_for(record, state_dir)
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
    from mlrepro.results.submission import CollectReport, RejectedRun

    dirs: list[Path] = []
    failures: list[RejectedRun] = []
    if run_ids:
        store, state_dir = _store(state_dir)
        # an id that names no run is a typo: nothing is collected (exit 2) ...
        records = [_record(store, run_id, kube, state_dir) for run_id in dict.fromkeys(run_ids)]
        for record in records:
            try:     # ... but one run without usable results must not stop the others: it is listed
                dirs.append(ensure_local_results(record, state_dir))
            except MlreproError as exc:
                failures.append(RejectedRun(record.run_id, Path(), "failed", (str(exc),)))
    for source in extra_sources:
        if not source.is_dir():
            raise BadInputError(f"--from {source}: not a directory")
        dirs.append(source)
    if not dirs:
        if failures:
            root = into.absolute()
            return CollectReport(tree=root, sidecar=tl.sidecar_for(root), division=division, submitter=submitter,
                                 rejected=tuple(failures))
        raise BadInputError("collect: no run ids and no --from directory")
    report = collect_into(dirs, into, submitter, division, force, system_overrides=system_overrides)
    return replace(report, rejected=report.rejected + tuple(failures)) if failures else report
