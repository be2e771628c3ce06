"""Getting the exact image a recorded run used (Docker engine).

The record names the image by reference (``repo:<profile>-<content hash[:12]>``) and digest: a repository
digest (``repo@sha256:...``, once pushed or pulled) or the image id (``sha256:...``, a local build). In order:

1. the engine has an image with that digest → ``local``;
2. a repository digest is pulled by digest → ``pulled``;
3. the image is rebuilt from the recorded profile (re-resolved from the recorded command line) and its content
   hash (tag and ``io.mlrepro.content-hash`` label: Dockerfile, build helper, harness code, lock) is checked against
   the recorded reference → ``rebuilt`` (another digest: builds are not bit-for-bit reproducible).

Public API::

    ImageSource(reference, how, digest, content_hash_matches, message)
    obtain_image(reference, digest, resolved, progress) -> ImageSource     RuntimeFailure: no engine, build failed
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlrepro.runners.base import Progress, no_progress

if TYPE_CHECKING:  # pragma: no cover
    from mlrepro.profiles.loader import ResolvedProfile


@dataclass(frozen=True)
class ImageSource:
    reference: str                  # what the rerun runs (an image id or a digest reference: exact)
    how: str                        # local | pulled | rebuilt
    digest: str | None              # the digest of what runs
    content_hash_matches: bool      # local/pulled: True (same digest); rebuilt: the recorded content hash
    message: str                    # one line for the drift report


def _tag_hash(reference: str | None) -> str | None:
    """The content-hash prefix of an mlrepro tag (``x86-cpu-0123456789ab`` → ``0123456789ab``)."""
    if not reference or ":" not in reference.rsplit("/", 1)[-1]:
        return None
    tag = reference.rsplit(":", 1)[1]
    head, _, tail = tag.rpartition("-")
    return tail if head and len(tail) == 12 and all(c in "0123456789abcdef" for c in tail) else None


def obtain_image(reference: str | None, digest: str | None, resolved: ResolvedProfile,
                 progress: Progress = no_progress) -> ImageSource:
    """The recorded image, or the closest one (see the module's docstring). Raises EngineUnavailable without
    an engine, BuildError when the rebuild fails."""
    import docker

    from mlrepro.image.engine import connect
    from mlrepro.image.tags import CONTENT_HASH_LABEL
    from mlrepro.runners.docker import build_for_target, image_digest

    client = connect()
    try:
        if digest:
            found = image_digest(client, digest)
            if found is not None:
                return ImageSource(digest, "local", digest, True, f"the recorded image {digest} is on the engine")
            if "@" in digest:
                progress(f"pulling {digest}")
                try:
                    client.images.pull(digest)
                    return ImageSource(digest, "pulled", digest, True, f"pulled the recorded image {digest}")
                except docker.errors.APIError as exc:
                    progress(f"cannot pull {digest} ({str(exc).splitlines()[0][:200]}): rebuilding")
        progress(f"the recorded image {digest or reference or '(none recorded)'} is not here: rebuilding it "
                 "from the recorded profile")
        ref = build_for_target(resolved, progress, client)
        built = client.images.get(ref)
        content = ((built.attrs.get("Config") or {}).get("Labels") or {}).get(CONTENT_HASH_LABEL, "")
        new_digest = image_digest(client, ref)
        want = _tag_hash(reference)
        matches = bool(want) and content.startswith(want)
        what = (f"content hash {content[:12]} = the recorded {want}" if matches else
                f"content hash {content[:12]} is not the recorded {want or '(none: no mlrepro tag recorded)'}")
        return ImageSource(new_digest or ref, "rebuilt", new_digest, matches,
                           f"rebuilt {ref} from the recorded profile: {what}")
    finally:
        client.close()
