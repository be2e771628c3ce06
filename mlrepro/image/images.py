"""Images mlrepro built (found by their ``io.mlrepro.profile`` label), pushing them, and the push record.

Every push is recorded with its manifest digest, so a run can name exactly the image it used
(``repository@sha256:...``) -- in ``$MLREPRO_STATE_DIR/images.json`` (default
``$XDG_STATE_HOME/mlrepro/images.json``, i.e. ``~/.local/state/mlrepro/images.json``).

Credentials: explicit ``username`` + ``password`` (the CLI reads the password from stdin, never from an
argument) are checked with a login first; otherwise the engine API gets the auths of the Docker config
(``~/.docker/config.json``, what ``docker login`` wrote), which the SDK loads itself. Messages name the
registry and the user, never the password.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlrepro.image.errors import EngineUnavailable, RegistryError, one_line
from mlrepro.image.tags import CONTENT_HASH_LABEL, IMAGE_INPUTS_LABEL, PLATFORM_LABEL, PROFILE_LABEL, STAGE_LABEL

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

    import docker

    from mlrepro.image.registry import PushEvent

RECORD_FORMAT = 2
"""2: records name the profile and the content hash (format 1 named the profile's hash)."""


@dataclass(frozen=True)
class BuiltImage:
    image_id: str
    tags: tuple[str, ...]
    profile: str
    content_hash: str
    image_inputs: str
    """The ``io.mlrepro.image-inputs`` label: each input's digest (empty on images built before it existed)."""
    platform: str
    architecture: str
    size_bytes: int
    created: str
    digests: tuple[str, ...]
    """``repository@sha256:...`` for every registry it was pushed to or pulled from (RepoDigests)."""

    @property
    def tag(self) -> str | None:
        return self.tags[0] if self.tags else None


@dataclass(frozen=True)
class PushResult:
    ref: str
    """``registry/repository:tag`` that was pushed."""
    digest: str
    """Manifest digest ``sha256:...``."""
    digest_ref: str
    """``registry/repository@sha256:...``: pull this to get exactly this image."""
    record: Path


def list_images(client: docker.DockerClient | None = None, profile: str | None = None) -> list[BuiltImage]:
    """Local images built by mlrepro (label ``io.mlrepro.profile``), newest first; only ``profile``'s if given."""
    import docker as _docker

    from mlrepro.image.engine import connect

    client = client or connect()
    label = f"{PROFILE_LABEL}={profile}" if profile else PROFILE_LABEL
    try:
        images = client.images.list(filters={"label": label})
    except _docker.errors.DockerException as exc:
        raise EngineUnavailable(f"cannot list images: {one_line(exc)}") from exc
    # the builder/deps stages' images carry a stage label (older ones only their base's labels); a runtime
    # image has a content hash and no stage label or ``runtime``
    result = [_built_image(img.attrs) for img in images
              if ((img.attrs.get("Config") or {}).get("Labels") or {}).get(STAGE_LABEL, "runtime") == "runtime"]
    result = [r for r in result if r.content_hash]
    return sorted(result, key=lambda r: (r.created, r.image_id), reverse=True)


def _built_image(attrs: dict[str, Any]) -> BuiltImage:
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    arch = str(attrs.get("Architecture") or "")
    variant = attrs.get("Variant")
    return BuiltImage(
        image_id=str(attrs.get("Id", "")),
        tags=tuple(t for t in attrs.get("RepoTags") or () if t != "<none>:<none>"),
        profile=labels.get(PROFILE_LABEL, ""),
        content_hash=labels.get(CONTENT_HASH_LABEL, "") if labels.get(CONTENT_HASH_LABEL) != "unset" else "",
        image_inputs=labels.get(IMAGE_INPUTS_LABEL, "") if labels.get(IMAGE_INPUTS_LABEL) != "unset" else "",
        platform=labels.get(PLATFORM_LABEL, f"{attrs.get('Os', 'linux')}/{arch}" + (f"/{variant}" if variant else "")),
        architecture=arch,
        size_bytes=int(attrs.get("Size") or 0),
        created=str(attrs.get("Created") or ""),
        digests=tuple(attrs.get("RepoDigests") or ()),
    )


def push_image(ref: str, *, client: docker.DockerClient | None = None, registry: str | None = None,
               username: str | None = None, password: str | None = None,
               record_path: Path | None = None,
               on_event: Callable[[PushEvent], None] | None = None) -> PushResult:
    """Push the local image ``ref``; with ``registry``, first tag it ``registry/<repository>:<tag>``.

    ``on_event`` gets every message of the engine's push stream as it comes (per layer: Preparing, Waiting,
    Pushing with bytes, Pushed, Layer already exists). Returns the manifest digest and records it
    (:func:`record_push`). When the push fails, a tag this call added is removed again (a tag it moved is
    put back), so a failed push leaves the local image as it was. Raises RegistryAuthError, RegistryError,
    EngineUnavailable.
    """
    import docker as _docker

    from mlrepro.image.engine import connect
    from mlrepro.image.registry import ImageRef, login, push

    client = client or connect()
    try:
        image = client.images.get(ref)
    except _docker.errors.ImageNotFound:
        raise RegistryError(f"no local image {ref}: build it first (mlrepro build)") from None
    except _docker.errors.DockerException as exc:
        raise EngineUnavailable(f"cannot inspect {ref}: {one_line(exc)}") from exc
    parsed = ImageRef.parse(ref)
    target = ref
    if registry:
        repo = parsed.repository
        if parsed.registry:
            repo = repo.split("/", 1)[1]
        target = f"{registry}/{repo}:{parsed.tag or 'latest'}"
    target_ref = ImageRef.parse(target)
    if target_ref.registry is None:
        raise RegistryError(f"{target} names no registry: set image.registry in the profile or pass a registry")
    auth = None
    if username is not None:
        if password is None:
            raise RegistryError("a username needs a password (read from stdin with --password-stdin)")
        auth = login(client, target_ref.registry, username, password)  # before tagging: a refusal changes nothing
    with _temporary_tag(client, image, target):
        digest = push(client, target, auth, on_event=on_event)
    labels = (image.attrs.get("Config") or {}).get("Labels") or {}
    path = record_push(target, digest, content_hash=labels.get(CONTENT_HASH_LABEL, ""),
                       profile=labels.get(PROFILE_LABEL, ""), path=record_path)
    return PushResult(ref=target, digest=digest, digest_ref=f"{target_ref.repository}@{digest}", record=path)


@contextlib.contextmanager
def _temporary_tag(client: docker.DockerClient, image: Any, target: str) -> Iterator[None]:
    """Tag ``image`` as ``target`` for the block; if the block raises, undo it (remove the tag, or point it back
    at the image it named before)."""
    import docker as _docker

    from mlrepro.image.registry import ImageRef

    try:
        before = client.images.get(target).id
    except _docker.errors.ImageNotFound:
        before = None
    except _docker.errors.DockerException as exc:
        raise EngineUnavailable(f"cannot inspect {target}: {one_line(exc)}") from exc
    if before == image.id:
        yield
        return
    parsed = ImageRef.parse(target)
    try:
        image.tag(parsed.repository, tag=parsed.tag or "latest")
    except _docker.errors.DockerException as exc:
        raise EngineUnavailable(f"cannot tag {target}: {one_line(exc)}") from exc
    try:
        yield
    except BaseException:
        with contextlib.suppress(_docker.errors.DockerException):
            if before is None:
                client.images.remove(target, noprune=True)
            else:
                client.api.tag(before, parsed.repository, parsed.tag or "latest", force=True)
        raise


# --- the push record -----------------------------------------------------------------------------

def state_file() -> Path:
    env = os.environ.get("MLREPRO_STATE_DIR")
    if env:
        return Path(env) / "images.json"
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    return base / "mlrepro" / "images.json"


@dataclass(frozen=True)
class PushRecord:
    profile: str
    """The ``io.mlrepro.profile`` label of the image (empty in records of format 1)."""
    ref: str
    digest: str
    digest_ref: str
    content_hash: str
    pushed_at: str


def record_push(ref: str, digest: str, *, content_hash: str, profile: str = "", path: Path | None = None) -> Path:
    """Append a push to the record (atomic replace, file-locked); returns the record's path."""
    from mlrepro.image.registry import ImageRef

    path = Path(path) if path else state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = PushRecord(profile=profile, ref=ref, digest=digest,
                       digest_ref=f"{ImageRef.parse(ref).repository}@{digest}", content_hash=content_hash,
                       pushed_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    with (path.parent / (path.name + ".lock")).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        doc = _read(path)
        doc["format"] = RECORD_FORMAT
        doc["pushes"].append(asdict(entry))
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    return path


def pushed_images(profile: str | None = None, path: Path | None = None, *,
                  content_hash: str | None = None) -> list[PushRecord]:
    """Recorded pushes, oldest first; only those of the profile named ``profile`` and/or of the image
    ``content_hash`` if given. One image serves every run setting of a profile, so a push made with one set of
    overlays is found by a launch with another (same content hash)."""
    doc = _read(Path(path) if path else state_file())
    records = [PushRecord(**{k: str(e.get(k, "")) for k in PushRecord.__dataclass_fields__}) for e in doc["pushes"]]
    return [r for r in records if (profile is None or r.profile == profile)
            and (content_hash is None or r.content_hash == content_hash)]


def _read(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(doc, dict) and isinstance(doc.get("pushes"), list):
            return doc
    except (OSError, ValueError):
        pass
    return {"format": RECORD_FORMAT, "pushes": []}
