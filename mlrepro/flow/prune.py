"""``mlrepro prune``: remove what mlrepro created and no longer needs, with a dry run and the space it frees.

What goes (:func:`plan_prune`), and why each is safe:

* a run's **results volume** (``mlrepro-results-<run id>``) when the run's results are on this machine, verified
  (then the volume is a second copy), or when the run failed, was cancelled or timed out (its results are unusable;
  its log and record stay in the state directory), or when no run record names it any more;
* **stopped containers** of mlrepro runs and of its collect helpers (label ``mlrepro.io/run-id`` /
  ``mlrepro.io/helper``), a model server's included: a running one is never touched;
* a run's **network** (``mlrepro-net-<run id>``, a model server's run) once no container is on it and its run
  has ended (or no run record names it);

volumes and containers only when they carry **this state directory's id** (label ``mlrepro.io/state-id``,
:mod:`mlrepro.state.state_id`): several state directories may share one engine, and a volume another one made
holds results nobody here can know to be collected. Those of another state directory, and unlabelled ones (made
before the label existed), are listed in ``PrunePlan.kept`` with the reason and never removed.
* **builder images** the multi-stage build left untagged (:func:`mlrepro.image.leftovers.builder_leftovers`; the newest
  per profile and platform stays as build cache);
* with ``older_than``: runs that ended before that long ago (their work directory and record, and their volume).

Runs that are pending or running, and their volumes and containers, are never touched.

Public API::

    plan_prune(*, state_dir=None, older_than_s=None, client=None) -> PrunePlan
    apply_prune(plan, *, client=None) -> PruneReport
    parse_age(text) -> float          ("7d", "12h", "30m", "90s" -> seconds; BadInputError)
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlrepro.errors import BadInputError

if TYPE_CHECKING:  # pragma: no cover
    import docker

    from mlrepro.state.store import RunRecord

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_ENDED_UNUSABLE = ("failed", "cancelled", "timeout")


def parse_age(text: str) -> float:
    """``7d``, ``12h``, ``30m``, ``90s``, ``2w`` as seconds. Raises BadInputError naming the value."""
    m = _AGE.match(text)
    if not m:
        raise BadInputError(f"--older-than {text!r}: expected a number and a unit s, m, h, d or w (e.g. 7d)")
    return float(m.group(1)) * _UNIT_S[m.group(2)]


@dataclass(frozen=True)
class PruneItem:
    kind: str            # volume | container | network | image | run
    name: str            # volume name, container name, image id, run id
    bytes: int | None    # space it frees (None: the engine does not say)
    reason: str


@dataclass
class PrunePlan:
    items: list[PruneItem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)     # e.g. "no Docker engine: only the state directory"
    kept: list[PruneItem] = field(default_factory=list)  # mlrepro's objects left alone: another state dir's, unlabelled
    state_dir: Path | None = None

    @property
    def bytes(self) -> int:
        return sum(i.bytes or 0 for i in self.items)


@dataclass
class PruneReport:
    removed: list[PruneItem] = field(default_factory=list)
    failed: list[tuple[PruneItem, str]] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(i.bytes or 0 for i in self.removed)


def _dir_bytes(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def _has_verified_copy(state_dir: Path, run_id: str) -> bool:
    from mlrepro.harness.checksums import MANIFEST_NAME, verify_manifest
    from mlrepro.state.paths import RunPaths

    local = RunPaths.of(state_dir, run_id).results
    try:
        return (local / MANIFEST_NAME).is_file() and verify_manifest(local).ok
    except Exception:  # noqa: BLE001 - an unreadable copy is no copy
        return False


def _old(record: RunRecord, older_than_s: float | None) -> bool:
    from mlrepro.state.store import utcnow

    if older_than_s is None or not record.is_terminal:
        return False
    when = record.ended_at or record.created_at
    return when is not None and utcnow() - when > timedelta(seconds=older_than_s)


def _volume_reason(record: RunRecord | None, state_dir: Path, older_than_s: float | None) -> str | None:
    if record is None:
        return "no run record names it"
    if not record.is_terminal:
        return None
    if _old(record, older_than_s):
        return f"run ended {record.status} before the --older-than limit"
    if record.status in _ENDED_UNUSABLE:
        return f"run {record.status}: its log and record stay in the state directory"
    if _has_verified_copy(state_dir, record.run_id):
        return "results fetched and verified on this machine"
    return None


def docker_errors():  # noqa: ANN201 - the docker SDK's errors module, imported when the engine is used
    import docker.errors

    return docker.errors


def _not_ours(kind: str, name: str, labels: dict[str, str] | None, own_id: str) -> str | None:
    """Why an engine object of mlrepro is not this state directory's to remove (None: it is)."""
    from mlrepro.state.state_id import STATE_DIR_LABEL, STATE_ID_LABEL

    labels = labels or {}
    found = labels.get(STATE_ID_LABEL)
    command = {"volume": "docker volume rm", "network": "docker network rm"}.get(kind, "docker rm")
    by_hand = f"remove by hand: {command} {name}"
    if found is None:
        return f"no state label (made before mlrepro labelled them): {by_hand}"
    if found != own_id:
        where = labels.get(STATE_DIR_LABEL)
        if where and not Path(where).is_dir():   # no state directory can ever prune it
            return f"made by a state directory that is gone ({where}): {by_hand}"
        return "made by another state directory" + (f" ({where})" if where else f" (state id {found})")
    return None


def _engine_items(client: docker.DockerClient, records: dict[str, RunRecord], state_dir: Path,
                  older_than_s: float | None, plan: PrunePlan) -> None:
    from mlrepro.runners.docker_config import VOLUME_PREFIX
    from mlrepro.state.state_id import state_id

    own_id = state_id(state_dir)

    usage: dict[str, Any] = client.df() or {}
    sizes = {v.get("Name"): (v.get("UsageData") or {}).get("Size") for v in usage.get("Volumes") or []}
    container_sizes = {c.get("Id"): c.get("SizeRw") for c in usage.get("Containers") or []}
    for c in client.containers.list(all=True, filters={"label": "mlrepro.io/run-id"}) + \
            client.containers.list(all=True, filters={"label": "mlrepro.io/helper"}):
        if c.status in ("running", "restarting", "paused"):
            continue
        size = container_sizes.get(c.id)
        kept = _not_ours("container", c.name, c.labels, own_id)
        if kept is not None:
            plan.kept.append(PruneItem("container", c.name, int(size) if size and size > 0 else None, kept))
            continue
        run_id = c.labels.get("mlrepro.io/run-id", "")
        record = records.get(run_id)
        if record is not None and not record.is_terminal:
            continue
        plan.items.append(PruneItem("container", c.name, int(size) if size and size > 0 else None,
                                    f"stopped ({c.status})"))
    for n in client.networks.list(filters={"label": "mlrepro.io/run-id"}):
        kept = _not_ours("network", n.name, n.attrs.get("Labels"), own_id)
        if kept is not None:
            plan.kept.append(PruneItem("network", n.name, None, kept))
            continue
        record = records.get((n.attrs.get("Labels") or {}).get("mlrepro.io/run-id", ""))
        if record is not None and not record.is_terminal:
            continue
        try:
            n.reload()                          # the list leaves out the containers on it
        except docker_errors().NotFound:
            continue
        if not n.attrs.get("Containers"):
            plan.items.append(PruneItem("network", n.name, None, "its run has ended" if record is not None
                                        else "no run record names it"))
    for v in client.volumes.list():
        if not v.name.startswith(VOLUME_PREFIX):
            continue
        size = sizes.get(v.name)
        kept = _not_ours("volume", v.name, v.attrs.get("Labels"), own_id)
        if kept is not None:
            plan.kept.append(PruneItem("volume", v.name, int(size) if size and size > 0 else None, kept))
            continue
        run_id = v.name[len(VOLUME_PREFIX):]
        reason = _volume_reason(records.get(run_id), state_dir, older_than_s)
        if reason is not None:
            plan.items.append(PruneItem("volume", v.name, int(size) if size and size > 0 else None, reason))
    try:
        from mlrepro.image.leftovers import builder_leftovers
    except ImportError:  # pragma: no cover - the image package always has it
        return
    for leftover in builder_leftovers(client):
        plan.items.append(PruneItem("image", leftover.image_id, leftover.freed_bytes, leftover.reason))


def plan_prune(*, state_dir: Path | None = None, older_than_s: float | None = None,
               client: docker.DockerClient | None = None, engine: bool = True) -> PrunePlan:
    """What :func:`apply_prune` would remove (nothing is removed here). ``client``: the engine to look at
    (default: connect if one answers; ``engine=False`` looks at the state directory only)."""
    from mlrepro.state.paths import RunPaths
    from mlrepro.state.store import default_state_dir, open_store

    state_dir = state_dir or default_state_dir()
    plan = PrunePlan(state_dir=state_dir)
    with open_store(state_dir) as store:
        records = {r.run_id: r for r in store.list()}
    for record in records.values():
        if _old(record, older_than_s):
            root = RunPaths.of(state_dir, record.run_id).root
            plan.items.append(PruneItem("run", record.run_id, _dir_bytes(root) if root.exists() else 0,
                                        f"ended {record.status} before the --older-than limit"))
    if engine:
        own = client is None
        if own:
            from mlrepro.image.engine import connect
            from mlrepro.image.errors import EngineUnavailable

            try:
                client = connect(timeout=10)
            except EngineUnavailable as exc:
                plan.notes.append(f"no Docker engine ({exc}): volumes, containers and images not looked at")
                return plan
        try:
            _engine_items(client, records, state_dir, older_than_s, plan)
        finally:
            if own:
                client.close()
    return plan


def apply_prune(plan: PrunePlan, *, client: docker.DockerClient | None = None) -> PruneReport:
    """Remove every item of ``plan``; an item that cannot be removed is reported, the others go on."""
    report = PruneReport()
    needs_engine = any(i.kind != "run" for i in plan.items)
    own = client is None and needs_engine
    if own:
        from mlrepro.image.engine import connect

        client = connect(timeout=10)
    try:
        for item in plan.items:
            try:
                _remove(item, client, plan.state_dir)
            except Exception as exc:  # noqa: BLE001 - one stubborn item must not stop the rest
                report.failed.append((item, str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
            else:
                report.removed.append(item)
    finally:
        if own and client is not None:
            client.close()
    return report


def _remove(item: PruneItem, client: docker.DockerClient | None, state_dir: Path | None) -> None:
    if item.kind == "run":
        from mlrepro.state.paths import RunPaths
        from mlrepro.state.store import open_store

        assert state_dir is not None
        shutil.rmtree(RunPaths.of(state_dir, item.name).root, ignore_errors=True)
        with open_store(state_dir) as store:
            store.remove(item.name)
        return
    import docker

    assert client is not None
    try:
        if item.kind == "volume":
            client.volumes.get(item.name).remove(force=True)
        elif item.kind == "container":
            client.containers.get(item.name).remove(force=False, v=False)
        elif item.kind == "network":
            client.networks.get(item.name).remove()
        elif item.kind == "image":
            from mlrepro.image.leftovers import remove_images

            remove_images(client, [item.name])
    except docker.errors.NotFound:
        return


def summary_rows(items: Iterable[PruneItem]) -> list[dict[str, Any]]:
    return [{"kind": i.kind, "name": i.name, "bytes": i.bytes, "reason": i.reason} for i in items]
