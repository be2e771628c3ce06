"""Assemble the Docker build context of a resolved profile in a directory.

Layout (everything the Dockerfile copies, nothing else)::

    Dockerfile          render_dockerfile(): builder -> os -> deps -> runtime
    requirements.lock   the lock for the profile's platform and Python (hash-pinned; mlrepro.image.lock),
                        plus the hashes of wheels compiled earlier on this host, if the wheelhouse has any
    build_helper.py     runs in the builder stage (Python check; hashes of wheels compiled there)
    harness/            mlrepro_harness-<version>-py3-none-any.whl: only ``mlrepro/__init__.py`` and
                        ``mlrepro/harness/**`` (no tests, no CLI), built here deterministically
    wheels/             wheelhouse.json, plus the wheels (and sdists to compile) when a wheelhouse is given
    ca-bundle.pem       only with a CA bundle; used by the builder stage alone

Without a wheelhouse (``mlrepro generate``) the context is still complete and buildable: the builder's
pip downloads from the package index (hash-checked against the lock) -- through a TLS-intercepting
proxy only when a CA bundle is given. ``mlrepro build`` prepares a wheelhouse on the host first, so the
image build itself needs no network and no CA at all (see :mod:`mlrepro.render.dockerfile`).
The harness wheel comes from :mod:`mlrepro.image.harness_wheel`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from mlrepro.errors import BadInputError
from mlrepro.image.harness_wheel import harness_wheel
from mlrepro.profiles.loader import ResolvedProfile
from mlrepro.render.dockerfile import DockerfileOptions, render_dockerfile

WHEELHOUSE_MANIFEST = "wheelhouse.json"
_OWNED = ("Dockerfile", "requirements.lock", "build_helper.py", "ca-bundle.pem", "harness", "wheels")


@dataclass(frozen=True)
class BuildContext:
    path: Path
    dockerfile: Path
    files: tuple[str, ...]
    """Paths relative to :attr:`path`, sorted."""
    content_hash: str
    """sha256 over every file's path and content."""
    lock_key: str
    offline: bool
    """True when ``wheels/`` holds every locked distribution (pip runs with --no-index)."""
    options: DockerfileOptions


def write_build_context(resolved: ResolvedProfile, out_dir: Path, wheelhouse: Path | None = None,
                        ca_bundle: Path | None = None) -> BuildContext:
    """Write the build context of ``resolved`` into ``out_dir`` (created; mlrepro's own files replaced).

    ``wheelhouse``: a directory made by :func:`mlrepro.image.wheelhouse.prepare_wheelhouse`.
    ``ca_bundle``: a PEM bundle for the builder stage (default: the profile's ``image.ca_bundle``).
    Raises ProfileError / BadInputError for bad inputs, LockError when no lock can be made.
    """
    from mlrepro.image.lock import ensure_lock, with_extra_hashes

    profile = resolved.profile
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in _OWNED:
        target = out_dir / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()

    ca = check_ca_bundle(ca_bundle if ca_bundle is not None else profile.image.ca_bundle)
    lock = ensure_lock(profile)
    lock_text = lock.text
    wheels = out_dir / "wheels"
    wheels.mkdir()
    offline = False
    if wheelhouse is not None:
        manifest = json.loads((Path(wheelhouse) / WHEELHOUSE_MANIFEST).read_text(encoding="utf-8"))
        for name in manifest["files"]:
            _link_or_copy(Path(wheelhouse) / name, wheels / name)
        lock_text = with_extra_hashes(lock_text, {k: tuple(v) for k, v in manifest.get("extra_hashes", {}).items()})
        offline = bool(manifest.get("complete"))
    else:
        manifest = {"complete": False, "files": [], "note": "no wheelhouse: the builder stage uses the package index"}
    (wheels / WHEELHOUSE_MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    (out_dir / "requirements.lock").write_text(lock_text, encoding="utf-8")
    from mlrepro.resources import images_dir

    shutil.copyfile(images_dir() / "build_helper.py", out_dir / "build_helper.py")
    (out_dir / "harness").mkdir()
    name, data = harness_wheel()
    (out_dir / "harness" / name).write_bytes(data)
    if ca is not None:
        shutil.copyfile(ca, out_dir / "ca-bundle.pem")
    options = DockerfileOptions(offline=offline, ca_bundle=ca is not None, harness_wheel=name)
    dockerfile = out_dir / "Dockerfile"
    dockerfile.write_text(render_dockerfile(resolved, options), encoding="utf-8")

    files = tuple(sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*")
                         if p.is_file() and p.relative_to(out_dir).parts[0] in _OWNED))
    return BuildContext(path=out_dir, dockerfile=dockerfile, files=files,
                        content_hash=_tree_hash(out_dir, files), lock_key=lock.key, offline=offline,
                        options=options)


def check_ca_bundle(path: str | Path | None) -> Path | None:
    """The CA bundle at ``path`` (``~`` expanded), or None when none is given. Raises BadInputError, naming
    the file, when it cannot be read or holds no PEM certificate (read: its first MiB)."""
    if path is None:
        return None
    p = Path(path).expanduser()
    try:
        head = p.read_bytes()[:1 << 20]
    except OSError as exc:
        raise BadInputError(f"CA bundle {p}: cannot read: {exc.strerror or exc}") from None
    if b"-----BEGIN CERTIFICATE-----" not in head:
        raise BadInputError(f"CA bundle {p}: not a PEM file (no BEGIN CERTIFICATE)")
    return p


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _tree_hash(root: Path, files: tuple[str, ...]) -> str:
    h = hashlib.sha256()
    for rel in files:
        h.update(rel.encode() + b"\0")
        with (root / rel).open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()
