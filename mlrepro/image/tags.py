"""Image tags from content: the same inputs always give the same tag, a changed input never reuses one.

The content hash covers the resolved profile (its canonical-JSON hash), the rendered Dockerfile (so the
templates and the renderer), ``build_helper.py``, the harness wheel (its bytes are deterministic) and the
lock. Not covered, because they do not change the image: where the wheels come from (a host wheelhouse
or the index) and a CA bundle for the builder stage.

``tag_policy: content-hash`` (default) tags ``<profile>-<hash[:12]>``; ``tag_policy: fixed`` uses
``image.tag`` and relies on the ``io.mlrepro.content-hash`` label to notice a stale image.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from mlrepro.image.lock import Lock, ensure_lock
from mlrepro.profiles.loader import ResolvedProfile

TAG_FORMAT = 1
CONTENT_HASH_LABEL = "io.mlrepro.content-hash"
PROFILE_LABEL = "io.mlrepro.profile"
PROFILE_HASH_LABEL = "io.mlrepro.profile-hash"
PLATFORM_LABEL = "io.mlrepro.platform"


@dataclass(frozen=True)
class ImageName:
    repository: str
    """``[registry/]repository`` as the engine names it."""
    tag: str
    content_hash: str

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}"


def content_hash(resolved: ResolvedProfile, lock: Lock, harness_wheel: bytes | None = None) -> str:
    """sha256 hex of everything that determines the image's content."""
    from mlrepro.image.harness_wheel import harness_wheel as make_wheel
    from mlrepro.render.dockerfile import DockerfileOptions, render_dockerfile
    from mlrepro.resources import images_dir

    wheel = harness_wheel if harness_wheel is not None else make_wheel()[1]
    canonical = render_dockerfile(resolved, DockerfileOptions(offline=True, ca_bundle=False))
    parts = {
        "format": TAG_FORMAT,
        "profile": resolved.hash,
        "dockerfile": _sha(canonical.encode()),
        "build_helper": _sha((images_dir() / "build_helper.py").read_bytes()),
        "harness": _sha(wheel),
        "lock": _sha(lock.text.encode()),
    }
    return _sha(json.dumps(parts, sort_keys=True).encode())


def repository(resolved: ResolvedProfile) -> str:
    img = resolved.profile.image
    return f"{img.registry}/{img.repository}" if img.registry else img.repository


def image_name(resolved: ResolvedProfile, lock: Lock | None = None) -> ImageName:
    """Repository, tag and content hash of ``resolved``'s image (resolves the lock if not given)."""
    lock = lock or ensure_lock(resolved.profile)
    digest = content_hash(resolved, lock)
    img = resolved.profile.image
    tag = img.tag if img.tag_policy == "fixed" and img.tag else f"{resolved.profile.name}-{digest[:12]}"
    return ImageName(repository(resolved), tag, digest)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
