"""Operations on recorded runs (``logs``, ``collect``) that work after the launching terminal closed."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Mapping, Sequence

from mlrepro.errors import BadInputError
from mlrepro.pipeline import collect_into, local_results_dir, log_file
from mlrepro.runners.logfile import follow_lines

if TYPE_CHECKING:  # pragma: no cover
    from mlrepro.results.state import RunRecord, RunStore
    from mlrepro.results.submission import CollectReport


def _store_and_dirs(state_dir: Path | None) -> tuple["RunStore", Path]:
    from mlrepro.results.state import default_state_dir, open_store

    state_dir = state_dir or default_state_dir()
    return open_store(state_dir), state_dir / "runs"


def stream_logs(run_id: str, follow: bool = False, state_dir: Path | None = None) -> Iterator[str]:
    store, work_dir = _store_and_dirs(state_dir)
    record = store.get(run_id)
    if record.target == "docker" and record.status in ("pending", "running"):
        yield from _docker_logs(record, follow)
        return
    path = log_file(work_dir, run_id)
    if not path.is_file():
        raise BadInputError(f"run {run_id} has no saved log ({path})")
    yield from follow_lines(path, follow, lambda: store.get(run_id).status in ("pending", "running"), poll_s=0.2)


def _docker_logs(record: "RunRecord", follow: bool) -> Iterator[str]:
    from mlrepro.image.engine import connect
    from mlrepro.runners.base import RunHandle
    from mlrepro.runners.docker import DockerRunner

    runner = DockerRunner(connect(), Path("."), pod_for=lambda _s: None)  # type: ignore[arg-type,return-value]
    handle = RunHandle(run_id=record.run_id, target="docker", ref=record.job_id,
                       results_location=record.results_location)
    yield from runner.logs(handle, follow=follow)


def ensure_local_results(record: "RunRecord", work_dir: Path) -> Path:
    """The run's results on this machine, fetched from its Docker volume if only the volume has them."""
    local = local_results_dir(work_dir, record.run_id)
    if (local / "checksums.sha256").is_file():
        return local
    if record.target != "docker" or not record.results_location or record.results_location.startswith("/"):
        if record.results_location.startswith("/") and Path(record.results_location, record.run_id).is_dir():
            return Path(record.results_location, record.run_id)
        raise BadInputError(f"run {record.run_id} ({record.status}) has no results to collect at {local}")
    from mlrepro.image.engine import connect
    from mlrepro.runners.docker import fetch_from_volume

    if local.exists():
        shutil.rmtree(local)
    return fetch_from_volume(connect(), record.results_location, record.image, record.run_id, local)


def collect_runs(run_ids: Sequence[str], into: Path, *, submitter: str, division: str = "open",
                 force: bool = False, state_dir: Path | None = None,
                 extra_sources: Sequence[Path] = (),
                 system_overrides: Mapping[str, str] | None = None) -> "CollectReport":
    """Collect recorded runs (by id) and/or harness results directories (``extra_sources``);
    ``system_overrides`` are systems-json fields (notes file, contact) that win over the probed values."""
    dirs: list[Path] = []
    if run_ids:
        store, work_dir = _store_and_dirs(state_dir)
        records = [store.get(run_id) for run_id in dict.fromkeys(run_ids)]
        dirs = [ensure_local_results(r, work_dir) for r in records]
    for source in extra_sources:
        if not source.is_dir():
            raise BadInputError(f"--from {source}: not a directory")
        dirs.append(source)
    return collect_into(dirs, into, submitter, division, force, system_overrides=system_overrides)
