"""Untagged images mlrepro's builds leave on the engine, and removing them (the library of ``mlrepro prune``).

The classic builder keeps the last image of every stage that is not the target: after each build the
``builder`` stage (wheels, compilers) and the ``deps`` stage (the virtual environment) stay as untagged
images. mlrepro labels them (``io.mlrepro.stage``, ``io.mlrepro.profile``, ``io.mlrepro.platform``,
``io.mlrepro.content-hash``: ``images/partials/stage_labels.j2``), so they are found by label, never by
guessing. A runtime image whose tag moved on (a ``--force``/``--no-cache`` rebuild, a ``fixed`` tag) is
untagged too and is found by its ``io.mlrepro.content-hash`` label (stage ``runtime``).

``keep_latest`` (default True) keeps the newest ``builder`` and ``deps`` image per (stage, profile, platform,
wheel source): their parent chains are the engine's layer cache for those stages, which the next build of
that profile reuses when only the harness or a label changed. The wheel source (``io.mlrepro.wheel-source``:
``wheelhouse`` for ``build``'s air-gapped default, ``index`` for a context without one, ``+ca`` with a CA
bundle) gives the builder stage different layers, so each way of building keeps its own cache: an index
build does not cost the next air-gapped build its cache. Measured (``benchmarks/prune_cache.py``, README "Build and
push"): an x86-cpu air-gapped rebuild after a harness-only change took 5.0 s with them and 52.6 s without
(the wheels and the venv are redone: 10.5x, a lower bound), for 368 MB they hold; arm64 under qemu: 8.3 s
and 282.9 s (34x), 354 MB. Older ones share most of those layers with the newest, so removing them frees only
what is theirs; ``keep_latest=False`` removes the newest too.

Not found: untagged stage images built before these labels existed (they carry only their base's labels);
``docker image prune`` removes those. Images a container (even a stopped one) uses are never listed.

Public API::

    builder_leftovers(client=None, keep_latest=True) -> list[ImageLeftover]     newest first; each with
        image_id, stage, profile, platform, content_hash, size_bytes, freed_bytes, created, reason
    remove_images(client, ids, dry_run=False) -> RemovalResult                  removed, freed_bytes, failed
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from mlrepro.image.errors import EngineUnavailable, one_line
from mlrepro.image.tags import CONTENT_HASH_LABEL, PLATFORM_LABEL, PROFILE_LABEL, STAGE_LABEL, WHEEL_SOURCE_LABEL

if TYPE_CHECKING:  # pragma: no cover
    import docker

CACHE_STAGES = ("builder", "deps")
"""Stages whose newest image is kept as layer cache by ``keep_latest``."""


@dataclass(frozen=True)
class ImageLeftover:
    image_id: str
    """``sha256:...``"""
    stage: str
    """``builder``, ``deps`` or ``runtime`` (an untagged runtime image)."""
    profile: str
    platform: str
    content_hash: str
    """The content hash of the build that left it (``unset`` for a build not run by mlrepro build)."""
    size_bytes: int
    """The image's size as ``docker images`` shows it (layers shared with other images included)."""
    freed_bytes: int
    """What removing it frees once the leftovers listed before it are removed (its own layers and the untagged
    parents no other image uses): summed over the list, what removing them all frees."""
    created: datetime
    """When the engine created it (UTC)."""

    @property
    def reason(self) -> str:
        """One line: why it may go."""
        what = (f"untagged {self.stage} stage of {self.profile} {self.platform}" if self.stage in CACHE_STAGES
                else f"untagged image of {self.profile} {self.platform} (its tag moved on)")
        return f"{what}, content {self.content_hash[:12]}"


@dataclass(frozen=True)
class RemovalResult:
    removed: tuple[str, ...]
    """Image IDs the engine deleted (with ``dry_run``: would delete), including untagged parent images that
    only the removed images used (the engine removes those with them)."""
    freed_bytes: int
    """Bytes of the removed images' own layers: for each removed image, its size minus its parent's."""
    failed: tuple[tuple[str, str], ...]
    """(image ID, one-line reason) of images the engine refused to remove (in use, has child images)."""
    dry_run: bool


def builder_leftovers(client: docker.DockerClient | None = None, keep_latest: bool = True) -> list[ImageLeftover]:
    """Untagged images left by mlrepro builds (see the module docstring), newest first; with ``keep_latest``
    without the newest builder/deps image of each (stage, profile, platform, wheel source). Raises
    EngineUnavailable."""
    import docker as _docker
    import requests

    from mlrepro.image.engine import connect

    client = client or connect()
    try:
        listed = client.api.images(filters={"dangling": True, "label": CONTENT_HASH_LABEL})
        every = {row["Id"]: row for row in client.api.images(all=True)}
        in_use = {c.get("ImageID") for c in client.api.containers(all=True)}
    except (_docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise EngineUnavailable(f"cannot list images: {one_line(exc)}") from exc
    found = [row for row in listed if row.get("Id") not in in_use and not _tags(row)]
    found.sort(key=lambda row: (int(row.get("Created") or 0), str(row.get("Id"))), reverse=True)
    if keep_latest:
        seen: set[tuple[str, str, str, str]] = set()
        kept = []
        for row in found:
            labels = row.get("Labels") or {}
            key = (labels.get(STAGE_LABEL, "runtime"), labels.get(PROFILE_LABEL, ""), labels.get(PLATFORM_LABEL, ""),
                   labels.get(WHEEL_SOURCE_LABEL, ""))
            if key[0] in CACHE_STAGES and key not in seen:
                seen.add(key)
                continue
            kept.append(row)
        found = kept
    groups = _closure([str(row["Id"]) for row in found], every, in_use)
    return [_leftover(row, _own_bytes(groups[str(row["Id"])], every)) for row in found]


def remove_images(client: docker.DockerClient | None, ids: Iterable[str], *, dry_run: bool = False) -> RemovalResult:
    """Remove the untagged images ``ids`` (never forced: an image in use stays, listed in ``failed``), newest
    first so that children go before their parents. ``dry_run`` removes nothing and reports what would go:
    the images and the untagged parents only they use. Raises EngineUnavailable."""
    import docker as _docker
    import requests

    from mlrepro.image.engine import connect

    client = client or connect()
    wanted = list(dict.fromkeys(ids))
    try:
        every = {row["Id"]: row for row in client.api.images(all=True)}
        in_use = {c.get("ImageID") for c in client.api.containers(all=True)}
    except (_docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise EngineUnavailable(f"cannot list images: {one_line(exc)}") from exc
    wanted.sort(key=lambda i: int(every.get(i, {}).get("Created") or 0), reverse=True)
    if dry_run:
        groups = _closure([i for i in wanted if i in every and i not in in_use], every, in_use)
        removed = [image_id for group in groups.values() for image_id in group]
        failed = tuple((i, "in use by a container") for i in wanted if i in in_use)
        failed += tuple((i, "has dependent child images") for i, group in groups.items() if i not in removed)
        return RemovalResult(tuple(removed), _own_bytes(removed, every), failed, True)
    deleted: list[str] = []
    refused: list[tuple[str, str]] = []
    for image_id in wanted:
        try:
            answer = client.api.remove_image(image_id)
        except _docker.errors.ImageNotFound:
            continue  # gone already (removed with a child, or by someone else)
        except _docker.errors.APIError as exc:
            refused.append((image_id, one_line(exc.explanation or exc, 200)))
            continue
        except (_docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise EngineUnavailable(f"cannot remove {image_id[:19]}: {one_line(exc)}") from exc
        # "Deleted" names images and also the layers that went with them: keep the images
        deleted += [str(d["Deleted"]) for d in answer or ()
                    if isinstance(d, Mapping) and d.get("Deleted") and str(d["Deleted"]) in every]
    return RemovalResult(tuple(deleted), _own_bytes(deleted, every), tuple(refused), False)


# --- helpers ------------------------------------------------------------------------------------------

def _tags(row: Mapping[str, Any]) -> list[str]:
    return [t for t in row.get("RepoTags") or () if t != "<none>:<none>"]


def _leftover(row: Mapping[str, Any], freed: int) -> ImageLeftover:
    labels = row.get("Labels") or {}
    return ImageLeftover(image_id=str(row.get("Id", "")), stage=labels.get(STAGE_LABEL, "runtime"),
                         profile=labels.get(PROFILE_LABEL, ""), platform=labels.get(PLATFORM_LABEL, ""),
                         content_hash=labels.get(CONTENT_HASH_LABEL, ""), size_bytes=int(row.get("Size") or 0),
                         freed_bytes=freed,
                         created=datetime.fromtimestamp(int(row.get("Created") or 0), tz=timezone.utc))


def _closure(ids: list[str], every: Mapping[str, Mapping[str, Any]], in_use: set[Any]) -> dict[str, list[str]]:
    """For each of ``ids``, removed in this order: it and the untagged ancestors the engine deletes with it
    (not used by a container, every child already deleted: what ``DELETE /images/{id}`` without ``noprune``
    does)."""
    children: dict[str, set[str]] = {}
    for image_id, row in every.items():
        if row.get("ParentId"):
            children.setdefault(str(row["ParentId"]), set()).add(image_id)
    done: set[str] = set()
    groups: dict[str, list[str]] = {}
    for root in ids:
        if root in done or not children.get(root, set()) <= done:
            groups[root] = []  # an ancestor of one listed before it (deleted with it), or the parent of others
            continue
        group = [root]
        done.add(root)
        parent = str(every.get(root, {}).get("ParentId") or "")
        while (parent and parent in every and parent not in done and parent not in in_use
               and not _tags(every[parent]) and children.get(parent, set()) <= done):
            group.append(parent)
            done.add(parent)
            parent = str(every[parent].get("ParentId") or "")
        groups[root] = group
    return groups


def _own_bytes(ids: Iterable[str], every: Mapping[str, Mapping[str, Any]]) -> int:
    """Sum over ``ids`` of the image's size minus its parent's (its own layer): what deleting them frees."""
    total = 0
    for image_id in ids:
        row = every.get(image_id)
        if row is None:
            continue
        parent = every.get(str(row.get("ParentId") or ""))
        own = int(row.get("Size") or 0) - (int(parent.get("Size") or 0) if parent else 0)
        total += max(own, 0)
    return total
