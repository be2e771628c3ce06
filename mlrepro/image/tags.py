"""Image tags from content: the same inputs always give the same tag, a changed input never reuses one.

The content hash covers the image's inputs and nothing else (:class:`ImageInputs`):

* the rendered Dockerfile (canonical form: offline, no CA) -- which holds the base and builder-base images,
  the Python version and how it is installed, the OS packages, the user id, the backend and the image's
  labels (profile name, platform, description), and through the templates and the renderer;
* ``build_helper.py``, the harness wheel (its bytes are deterministic), and the lock (the framework and every
  pip package, hash-pinned).

Run settings are **not** inputs: LoadGen settings, scenarios, modes, env, resources, scheduling, job policy,
results. They reach the container at run time through the run spec and the PodSpec, so one image serves every
scenario, mode and setting of a profile (``build -f air-gapped`` and ``launch -f air-gapped -f quick`` share
it). Also not covered, because they do not change the image: where the wheels come from (a host wheelhouse or
the index) and a CA bundle for the builder stage.

``tag_policy: content-hash`` (default) tags ``<profile>-<hash[:12]>``; ``tag_policy: fixed`` uses
``image.tag`` and relies on the ``io.mlrepro.content-hash`` label to notice a stale image. The label
``io.mlrepro.image-inputs`` holds each input's own digest (``dockerfile=<12 hex>,lock=...``), so two images
can be told apart by what differs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from mlrepro.image.lock import Lock, ensure_lock
from mlrepro.profiles.loader import ResolvedProfile

TAG_FORMAT = 2
"""Bumped when the hash's definition changes (2: image inputs only, no profile hash)."""
CONTENT_HASH_LABEL = "io.mlrepro.content-hash"
IMAGE_INPUTS_LABEL = "io.mlrepro.image-inputs"
PROFILE_LABEL = "io.mlrepro.profile"
PLATFORM_LABEL = "io.mlrepro.platform"
STAGE_LABEL = "io.mlrepro.stage"
"""``builder`` / ``deps`` on the intermediate stages' images (untagged by the classic builder), ``runtime``
on the image itself; images built before the label existed have none (they are runtime images)."""
WHEEL_SOURCE_LABEL = "io.mlrepro.wheel-source"
"""On the intermediate stages' images: ``wheelhouse`` / ``index`` (``+ca``), see
:func:`mlrepro.render.dockerfile.wheel_source`; absent on images built before it existed."""
CONTENT_HASH_ARG = "MLREPRO_CONTENT_HASH"
IMAGE_INPUTS_ARG = "MLREPRO_IMAGE_INPUTS"
"""Build args carrying the two label values: the Dockerfile is one of the inputs, so it cannot hold them."""


@dataclass(frozen=True)
class ImageName:
    repository: str
    """``[registry/]repository`` as the engine names it."""
    tag: str
    content_hash: str
    inputs: ImageInputs | None = None

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}"

    def build_args(self) -> dict[str, str]:
        """The build args that fill the ``io.mlrepro.content-hash`` / ``io.mlrepro.image-inputs`` labels."""
        args = {CONTENT_HASH_ARG: self.content_hash}
        if self.inputs is not None:
            args[IMAGE_INPUTS_ARG] = self.inputs.label()
        return args


@dataclass(frozen=True)
class ImageInputs:
    """sha256 hex digests of each input of the image (see the module docstring)."""

    dockerfile: str
    build_helper: str
    harness: str
    lock: str

    @property
    def content_hash(self) -> str:
        """sha256 hex over the format and every input digest: the image's identity."""
        parts = {"format": TAG_FORMAT, "dockerfile": self.dockerfile, "build_helper": self.build_helper,
                 "harness": self.harness, "lock": self.lock}
        return _sha(json.dumps(parts, sort_keys=True).encode())

    def label(self) -> str:
        """``dockerfile=<12 hex>,build-helper=...,harness=...,lock=...`` (the image-inputs label)."""
        return ",".join(f"{k}={v[:12]}" for k, v in (("dockerfile", self.dockerfile),
                                                       ("build-helper", self.build_helper),
                                                       ("harness", self.harness), ("lock", self.lock)))


def image_inputs(resolved: ResolvedProfile, lock: Lock, harness_wheel: bytes | None = None) -> ImageInputs:
    """The digests of the inputs of ``resolved``'s image. ``harness_wheel`` defaults to the one built from
    this checkout. Raises ProfileError for values a Dockerfile cannot carry."""
    from mlrepro.image.harness_wheel import harness_wheel as make_wheel
    from mlrepro.render.dockerfile import DockerfileOptions, render_dockerfile
    from mlrepro.resources import images_dir

    wheel = harness_wheel if harness_wheel is not None else make_wheel()[1]
    canonical = render_dockerfile(resolved, DockerfileOptions(offline=True, ca_bundle=False))
    return ImageInputs(dockerfile=_sha(canonical.encode()),
                       build_helper=_sha((images_dir() / "build_helper.py").read_bytes()),
                       harness=_sha(wheel), lock=_sha(lock.text.encode()))


def content_hash(resolved: ResolvedProfile, lock: Lock, harness_wheel: bytes | None = None) -> str:
    """sha256 hex of everything that determines the image's content (:func:`image_inputs`)."""
    return image_inputs(resolved, lock, harness_wheel).content_hash


def repository(resolved: ResolvedProfile) -> str:
    img = resolved.profile.image
    return f"{img.registry}/{img.repository}" if img.registry else img.repository


def image_name(resolved: ResolvedProfile, lock: Lock | None = None) -> ImageName:
    """Repository, tag and content hash of ``resolved``'s image (resolves the lock if not given)."""
    lock = lock or ensure_lock(resolved.profile)
    inputs = image_inputs(resolved, lock)
    digest = inputs.content_hash
    img = resolved.profile.image
    tag = img.tag if img.tag_policy == "fixed" and img.tag else f"{resolved.profile.name}-{digest[:12]}"
    return ImageName(repository(resolved), tag, digest, inputs)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
