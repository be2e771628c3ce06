"""Build a profile's image on the Docker engine (classic builder, through the SDK's low-level API).

1. Check the inputs that are files (a CA bundle): a bad one is an error even when nothing is to be built.
2. Name it: :func:`mlrepro.image.tags.image_name` (content hash of the image inputs only: one image serves
   every scenario, mode and LoadGen setting of a profile).
3. Take the build lock of that content hash (:func:`build_lock`: an ``fcntl`` file lock under
   ``$MLREPRO_CACHE_DIR/build-locks``), so that two builds of the same content -- two launches at once --
   build once: the second waits, then finds the image. Under the lock: if an image with that tag and the
   same ``io.mlrepro.content-hash`` label exists, nothing is built (``skipped``).
4. Make sure the base and builder-base images are on the engine, pulling a missing one; when that fails
   (no registry reachable) :class:`~mlrepro.image.errors.BaseImageUnavailable` says so in one line and
   points to ``mlrepro base-images`` and ``-f air-gapped``.
5. Prepare the wheelhouse on the host (:mod:`mlrepro.image.wheelhouse`); if that fails, build anyway with
   the builder stage using the index (a note says so).
6. Write the context (:func:`mlrepro.image.context.write_build_context`) and stream
   ``APIClient.build(..., platform=profile.platform, pull=False, rm=True, forcerm=True)`` into typed
   events (:mod:`mlrepro.image.progress`) for ``on_event``.
7. The image is built **without a tag**; only a successful build is tagged, so a failed build never
   leaves a tag on a half-built image. A failure raises :class:`BuildStepError` (one-line message naming
   the step, plus the last output lines in ``.tail``).
8. Wheels the builder stage compiled (LoadGen on arm64) are copied out of the builder stage into the
   host cache, so the next build of that platform compiles nothing.

The classic builder leaves the builder and deps stages' images untagged; they carry ``io.mlrepro.stage``
labels and :mod:`mlrepro.image.leftovers` finds and removes them.

No buildx here: each platform is built on its own (one image per profile). Where buildx exists, the
context written by ``mlrepro generate`` can be built for several platforms into a manifest list with
``docker buildx build --platform linux/amd64,linux/arm64`` (the Dockerfile has no platform-specific
lines except what the profile selects).
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlrepro.image.errors import BaseImageUnavailable, BuildError, EngineUnavailable, one_line
from mlrepro.image.progress import BuildEvent, BuildFailed, BuildNote, BuildStreamParser
from mlrepro.image.tags import CONTENT_HASH_LABEL, ImageName, image_name
from mlrepro.profiles.loader import ResolvedProfile
from mlrepro.profiles.model import Profile

if TYPE_CHECKING:  # pragma: no cover
    import docker

COMPILED_MARKER = "build_helper: compiled "
_BUILDX_DIRS = ("~/.docker/cli-plugins", "/usr/local/lib/docker/cli-plugins", "/usr/local/libexec/docker/cli-plugins",
                "/usr/lib/docker/cli-plugins", "/usr/libexec/docker/cli-plugins")
_buildx_noted = False


class BuildStepError(BuildError):
    """A Dockerfile step failed. ``str()`` is one line; ``tail`` holds the step's last output lines."""

    def __init__(self, message: str, *, step: int | None, total: int | None, instruction: str | None,
                 tail: tuple[str, ...]) -> None:
        super().__init__(message)
        self.step, self.total, self.instruction, self.tail = step, total, instruction, tail


@dataclass(frozen=True)
class BuildOptions:
    wheelhouse: bool = True
    """Fetch every wheel on the host first (offline image build). False: the builder stage uses the index."""
    ca_bundle: Path | None = None
    """CA bundle for the builder stage (default: the profile's image.ca_bundle). Unneeded with a wheelhouse."""
    nocache: bool = False
    """Ignore the engine's layer cache (implies a rebuild)."""
    force: bool = False
    """Build even when an image with the content tag exists."""
    context_dir: Path | None = None
    """Write the build context here (kept) instead of a temporary directory."""


@dataclass(frozen=True)
class BuildResult:
    ref: str
    """``[registry/]repository:tag`` of the image."""
    image_id: str
    profile: str
    platform: str
    profile_hash: str
    content_hash: str
    skipped: bool
    """True when the image already existed and nothing was built."""
    seconds: float
    size_bytes: int
    steps: int = 0
    cached_steps: int = 0
    source_builds: tuple[str, ...] = ()
    """Locked sdists the builder stage had to turn into wheels (no wheel for the platform, none cached)."""
    compiled: tuple[str, ...] = ()
    """Wheels the builder stage compiled in this build (empty when that step came from the layer cache)."""
    cached_wheels: tuple[str, ...] = ()
    """Wheels compiled by an earlier build and taken from the host cache."""
    offline: bool | None = None
    """The image build used only the host wheelhouse (None when skipped)."""
    context_hash: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


def planned_image(resolved: ResolvedProfile) -> ImageName:
    """Repository, tag and content hash ``build_image`` would produce (no engine needed)."""
    return image_name(resolved)


def find_existing(client: docker.DockerClient, name: ImageName) -> Any | None:
    """The local image tagged ``name.ref`` whose content-hash label matches, else None."""
    import docker as _docker

    try:
        image = client.images.get(name.ref)
    except _docker.errors.ImageNotFound:
        return None
    except _docker.errors.DockerException as exc:
        raise EngineUnavailable(f"cannot inspect {name.ref}: {one_line(exc)}") from exc
    labels = (image.attrs.get("Config") or {}).get("Labels") or {}
    return image if labels.get(CONTENT_HASH_LABEL) == name.content_hash else None


def build_image(resolved: ResolvedProfile, options: BuildOptions | None = None, *,
                client: docker.DockerClient | None = None,
                on_event: Callable[[BuildEvent], None] | None = None) -> BuildResult:
    """Build (or find) the image of ``resolved``; see the module docstring. Raises BadInputError (a CA bundle
    that cannot be read), BuildError subclasses (BaseImageUnavailable, BuildStepError), EngineUnavailable,
    LockError, ProfileError."""
    from mlrepro.image.context import check_ca_bundle
    from mlrepro.image.engine import connect

    started = time.monotonic()
    options = options or BuildOptions()
    emit = on_event or (lambda _e: None)
    notes: list[str] = []

    def note(message: str) -> None:
        notes.append(message)
        emit(BuildNote(message))

    profile = resolved.profile
    check_ca_bundle(options.ca_bundle if options.ca_bundle is not None else profile.image.ca_bundle)
    name = image_name(resolved)
    client = client or connect()
    with build_lock(name.content_hash, lambda: note(f"waiting for another build of {name.ref} (same content) "
                                                    "to finish")):
        if not options.force and not options.nocache:
            existing = find_existing(client, name)
            if existing is not None:
                note(f"{name.ref} is up to date (content {name.content_hash[:12]}): nothing to build")
                return BuildResult(ref=name.ref, image_id=existing.id, profile=profile.name,
                                   platform=profile.platform, profile_hash=resolved.hash,
                                   content_hash=name.content_hash, skipped=True,
                                   seconds=time.monotonic() - started,
                                   size_bytes=int(existing.attrs.get("Size") or 0), notes=tuple(notes))
        ensure_base_images_present(client, profile, note)
        _note_buildx(note)
        return _build(client, resolved, name, options, emit, note, notes, started)


def _build(client: docker.DockerClient, resolved: ResolvedProfile, name: ImageName, options: BuildOptions,
           emit: Callable[[BuildEvent], None], note: Callable[[str], None], notes: list[str],
           started: float) -> BuildResult:
    """Steps 5-8 of the module docstring, under the build lock."""
    profile = resolved.profile
    tmp = Path(tempfile.mkdtemp(prefix="mlrepro-build-"))
    try:
        from mlrepro.image.context import write_build_context
        from mlrepro.image.lock import ensure_lock
        from mlrepro.image.wheelhouse import WheelhouseError, prepare_wheelhouse

        house = None
        if options.wheelhouse:
            try:
                house = prepare_wheelhouse(ensure_lock(profile), tmp / "wheelhouse", log=note)
            except WheelhouseError as exc:
                note(f"no host wheelhouse ({exc}); the builder stage will use the package index")
        if house is not None and house.local_wheels:
            note(f"using wheels compiled by an earlier build: {', '.join(house.local_wheels)}")
        context_dir = Path(options.context_dir) if options.context_dir else tmp / "context"
        context = write_build_context(resolved, context_dir, house.path if house else None, options.ca_bundle)
        parser, image_id = _run_build(client, context.path, profile.platform, name, options.nocache, emit)
        compiled = tuple(line.split()[2] for line in parser.outputs if line.startswith(COMPILED_MARKER))
        client.api.tag(image_id, name.repository, name.tag)
        if house is not None and house.sdists:  # also after a cached builder step: the host cache may lack it
            _export_compiled(client, context.path, resolved, name, note)
        image = client.images.get(image_id)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return BuildResult(
        ref=name.ref, image_id=image_id, profile=profile.name, platform=profile.platform, profile_hash=resolved.hash,
        content_hash=name.content_hash, skipped=False, seconds=time.monotonic() - started,
        size_bytes=int(image.attrs.get("Size") or 0), steps=len(parser.finished),
        cached_steps=sum(1 for s in parser.finished if s.cached), compiled=compiled,
        source_builds=house.sdists if house else (), cached_wheels=house.local_wheels if house else (),
        offline=context.offline,
        context_hash=context.content_hash, notes=tuple(notes))


def build_lock_path(content_hash: str) -> Path:
    """The lock file of builds of ``content_hash``: ``$MLREPRO_CACHE_DIR/build-locks/<hash[:32]>.lock``."""
    from mlrepro.image.lock import cache_dir

    return cache_dir() / "build-locks" / f"{content_hash[:32]}.lock"


@contextlib.contextmanager
def build_lock(content_hash: str, on_wait: Callable[[], None] = lambda: None) -> Iterator[None]:
    """Hold the exclusive build lock of ``content_hash`` (``flock``: per open file, so threads and processes
    both wait); ``on_wait`` is called once when another holder makes this one wait. Where the cache directory
    cannot be written the build goes on unlocked (two concurrent builds may then both build)."""
    path = build_lock_path(content_hash)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = path.open("a")
    except OSError:
        yield
        return
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            on_wait()
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_base_images_present(client: docker.DockerClient, profile: Profile,
                               note: Callable[[str], None] = lambda _m: None) -> None:
    """Make sure the builder-base and base images of ``profile`` are on the engine for its platform, pulling
    the missing ones. Raises BaseImageUnavailable (one line, with the way out) when a pull fails,
    EngineUnavailable when the engine does not answer."""
    import docker as _docker
    import requests

    from mlrepro.image.base_images import DEFAULT_TAGS
    from mlrepro.image.registry import ImageRef

    for ref in dict.fromkeys((profile.builder_image, profile.base_image)):
        if _local_image_for(client, ref, profile.arch) is not None:
            continue
        note(f"pulling the base image {ref} ({profile.platform})")
        parsed = ImageRef.parse(ref)
        try:
            for obj in client.api.pull(parsed.repository, tag=parsed.digest or parsed.tag or "latest",
                                       platform=profile.platform, stream=True, decode=True):
                if isinstance(obj, dict) and (obj.get("error") or obj.get("errorDetail")):
                    detail = obj.get("errorDetail") if isinstance(obj.get("errorDetail"), dict) else {}
                    raise _docker.errors.APIError(str(detail.get("message") or obj.get("error")))
        except (_docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            reason = one_line(getattr(exc, "explanation", None) or exc, 200)
            if ref in DEFAULT_TAGS.values():
                hint = f"create it with `mlrepro base-images --platform {profile.platform}`"
            elif profile.framework.source == "image":
                hint = (f"its {profile.framework.backend} build is the vendor's and comes only with that image "
                        "(framework.source: image), so the local Debian bases cannot stand in: `docker load` the "
                        "image into this engine (saved where a registry is reachable) or build where one is")
            else:
                hint = "without a registry, create local Debian bases with `mlrepro base-images` and build with " \
                       "`-f air-gapped`"
            raise BaseImageUnavailable(f"base image {ref} ({profile.platform}) is not on this engine and cannot "
                                       f"be pulled ({reason}): {hint}") from None
        if _local_image_for(client, ref, profile.arch) is None:
            raise BaseImageUnavailable(f"base image {ref}: pulled, but the engine has no {profile.platform} "
                                       "image under that name")


def _local_image_for(client: docker.DockerClient, ref: str, arch: str) -> Any | None:
    """The local image ``ref`` if its architecture is ``arch``, else None."""
    import docker as _docker
    import requests

    try:
        image = client.images.get(ref)
    except _docker.errors.ImageNotFound:
        return None
    except (_docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise EngineUnavailable(f"cannot inspect {ref}: {one_line(exc)}") from exc
    return image if image.attrs.get("Architecture") == arch else None


def _run_build(client: docker.DockerClient, path: Path, platform: str, name: ImageName, nocache: bool,
               emit: Callable[[BuildEvent], None], target: str | None = None) -> tuple[BuildStreamParser, str]:
    """Stream one untagged build; return the parser and the image ID, or raise BuildStepError."""
    import docker as _docker
    import requests

    parser = BuildStreamParser()
    kwargs: dict[str, Any] = {"path": str(path), "dockerfile": "Dockerfile", "platform": platform, "decode": True,
                              "rm": True, "forcerm": True, "pull": False, "nocache": nocache,
                              "buildargs": name.build_args()}
    if target:
        kwargs["target"] = target
    try:
        for obj in client.api.build(**kwargs):
            for event in parser.feed(obj):
                emit(event)
        for event in parser.close():
            emit(event)
    except _docker.errors.APIError as exc:  # refused before any step ran (bad platform, bad context)
        failure = BuildFailed(None, None, None, one_line(exc.explanation or exc))
        emit(failure)
        raise BuildStepError(f"build of {name.ref} refused by the engine: {failure.message}", step=None,
                             total=None, instruction=None, tail=()) from None
    except (_docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise EngineUnavailable(f"build of {name.ref}: engine error: {one_line(exc)}") from exc
    failure = parser.failure
    if failure is None and parser.image_id is None:
        failure = BuildFailed(parser.step, parser.total, parser.instruction, "the build ended without an image",
                              tuple(parser.tail))
        emit(failure)
    if failure is not None:
        where = (f"step {failure.step}/{failure.total} `{one_line(failure.instruction or '', 160)}`"
                 if failure.step else "before the first step")
        raise BuildStepError(f"build of {name.ref} failed at {where}: {one_line(failure.message)}",
                             step=failure.step, total=failure.total, instruction=failure.instruction,
                             tail=failure.tail)
    assert parser.image_id is not None
    return parser, parser.image_id


def _export_compiled(client: docker.DockerClient, context: Path, resolved: ResolvedProfile, name: ImageName,
                     note: Callable[[str], None]) -> None:
    """Copy the wheels the builder stage compiled into the host cache (a cached ``--target builder``)."""
    import docker as _docker

    from mlrepro.image.wheelhouse import store_built_wheels

    profile = resolved.profile
    _, builder_id = _run_build(client, context, profile.platform, name, False, lambda _e: None, target="builder")
    container = client.containers.create(builder_id, command=["true"], platform=profile.platform)
    try:
        stream, _ = container.get_archive("/wheels")
        data = io.BytesIO(b"".join(stream))
    except _docker.errors.DockerException as exc:
        note(f"could not copy the compiled wheels out of the builder stage: {one_line(exc)}")
        return
    finally:
        container.remove(force=True)  # the builder image stays (labelled, untagged): the stage's layer cache
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=data) as tar:
        for member in tar.getmembers():
            if member.isfile():
                fh = tar.extractfile(member)
                if fh is not None:
                    files[os.path.basename(member.name)] = fh.read()
    records = json.loads(files.get("built.json", b"[]"))
    stored = store_built_wheels(profile.platform, profile.image.python, files, records)
    if stored:
        note(f"cached the compiled wheels for the next {profile.platform} build: {', '.join(p.name for p in stored)}")


def _note_buildx(note: Callable[[str], None]) -> None:
    global _buildx_noted
    if _buildx_noted:
        return
    _buildx_noted = True
    if shutil.which("docker-buildx") or any(Path(d).expanduser().joinpath("docker-buildx").exists() for d in _BUILDX_DIRS):
        note("buildx is available: `docker buildx build --platform linux/amd64,linux/arm64` on a generated context "
             "makes a multi-platform manifest list; mlrepro builds one platform per profile")
    else:
        note("buildx not available: building per platform")
