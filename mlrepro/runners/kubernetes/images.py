"""The image a cluster runs: a reference it can pull, by digest.

A cluster cannot see this machine's engine, so the image must be in a registry. The default is the digest
recorded by the last push of this exact image (``mlrepro build --push`` / ``mlrepro push`` record it, with the
image's content hash: Dockerfile + harness + lock, no run setting); with ``--registry`` mlrepro builds (a no-op
when up to date) and pushes it first; ``--image`` names any reference instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlrepro.runners.base import Progress
from mlrepro.runners.kubernetes.errors import ImageNotPushedError

if TYPE_CHECKING:  # pragma: no cover
    from mlrepro.profiles.loader import ResolvedProfile


def cluster_image(resolved: ResolvedProfile, registry: str | None, progress: Progress) -> str:
    """``repository@sha256:...`` of the profile's image as pushed (see the module docstring).

    Raises ImageNotPushedError (exit 2) when nothing was pushed and no registry is given; BuildError,
    RegistryError, EngineUnavailable when building or pushing fails.
    """
    from mlrepro.image.images import pushed_images
    from mlrepro.image.tags import image_name

    name = image_name(resolved)
    pushes = pushed_images(resolved.profile.name)  # one image serves every run setting: match by content
    same = [p for p in pushes if p.content_hash == name.content_hash]
    if same and registry is None:
        latest = same[-1]
        progress(f"image {latest.digest_ref} (pushed {latest.pushed_at} as {latest.ref})")
        return latest.digest_ref
    if registry is not None:
        from mlrepro.image.images import push_image
        from mlrepro.runners.docker import build_for_target

        ref = build_for_target(resolved, progress)
        pushed = push_image(ref, registry=registry)
        progress(f"pushed {pushed.ref} → {pushed.digest_ref}")
        return pushed.digest_ref
    p = resolved.profile.name
    if pushes:
        raise ImageNotPushedError(
            f"the last push of {p} ({pushes[-1].ref}) is of other content than {name.ref} (harness, lock or "
            f"templates changed since): push again with `mlrepro build -p {p} --push --registry REGISTRY`, or "
            "pass --registry REGISTRY (build + push) or --image REF")
    raise ImageNotPushedError(
        f"no pushed image of {p} ({name.ref}): a cluster cannot pull from this machine's engine; push it with "
        f"`mlrepro build -p {p} --push --registry REGISTRY`, or pass --registry REGISTRY (build + push) or "
        "--image REF")
