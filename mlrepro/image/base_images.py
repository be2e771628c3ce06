"""Local Debian base images for machines that cannot pull anything.

``debootstrap --variant=minbase`` builds a root filesystem (for arm64 through qemu-user-static and
binfmt_misc), which is archived once into a cached ``layer.tar``. From that layer an image tarball is
written by hand -- ``manifest.json`` plus a config JSON with the right ``architecture``/``variant``
(``docker import`` would label an arm64 rootfs amd64) -- and loaded through the Docker SDK.

Three outcomes, cheapest first (:attr:`BaseImageResult.status`):

``exists``   the tag is in the engine with the expected label and architecture: nothing done;
``loaded``   the cached layer was reused and loaded (seconds);
``created``  debootstrap ran (~30 s amd64, ~2 min arm64 under emulation), then the layer was loaded.

Run ``python -m mlrepro.image.base_images --all`` to create both default images (CI does).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import io
import json
import os
import platform as _platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from mlrepro.image.errors import BaseImageError, one_line

if TYPE_CHECKING:  # pragma: no cover
    import docker

Platform = Literal["linux/amd64", "linux/arm64"]
Status = Literal["exists", "loaded", "created"]

DEFAULT_SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_VARIANT = "minbase"
AMD64_TAG = "mlrepro/debian:bookworm-amd64"
ARM64_TAG = "mlrepro/debian:bookworm-arm64"
DEFAULT_TAGS: dict[str, str] = {"linux/amd64": AMD64_TAG, "linux/arm64": ARM64_TAG}
PLATFORMS: tuple[Platform, ...] = ("linux/amd64", "linux/arm64")
DEFAULT_CACHE_DIR = Path("/var/cache/mlrepro/base-images")

BASE_LABEL = "org.mlrepro.base"
"""Label on every base image: ``<suite>-<arch>`` (e.g. ``bookworm-arm64``)."""

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Newer mtimes in the rootfs are clamped to this instant, and it is the image's "created" time, so an
# unchanged layer always gives the same image ID. 2023-06-10T00:00:00Z, the release of Debian 12.
SOURCE_DATE_EPOCH = int(os.environ.get("SOURCE_DATE_EPOCH", "1686355200"))

_ARCHES: dict[str, tuple[str, str | None]] = {  # platform -> (Debian/OCI architecture, OCI variant)
    "linux/amd64": ("amd64", None),
    "linux/arm64": ("arm64", "v8"),
}
_HOST_ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
_QEMU_BINFMT = {"arm64": "qemu-aarch64", "amd64": "qemu-x86_64"}
_BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")


@dataclass(frozen=True)
class BaseImageResult:
    tag: str
    platform: str
    image_id: str
    status: Status
    layer_path: Path
    """The cached ``layer.tar`` (may not exist when status is ``exists`` and the cache was emptied)."""
    size_bytes: int
    """Image size as the engine reports it (= uncompressed layer size)."""
    seconds: float


def default_tag(platform: str, suite: str = DEFAULT_SUITE) -> str:
    arch, _ = _arch_of(platform)
    return f"mlrepro/debian:{suite}-{arch}"


def label_value(platform: str, suite: str = DEFAULT_SUITE) -> str:
    arch, _ = _arch_of(platform)
    return f"{suite}-{arch}"


def cache_key(suite: str, arch: str, variant: str = DEFAULT_VARIANT) -> str:
    return f"{suite}-{arch}-{variant}"


def cached_layer_path(
    cache_dir: Path, platform: str, suite: str = DEFAULT_SUITE, variant: str = DEFAULT_VARIANT
) -> Path:
    arch, _ = _arch_of(platform)
    return Path(cache_dir) / cache_key(suite, arch, variant) / "layer.tar"


def create_base_image(
    platform: str,
    tag: str | None = None,
    cache_dir: Path = DEFAULT_CACHE_DIR,
    mirror: str = DEFAULT_MIRROR,
    suite: str = DEFAULT_SUITE,
    *,
    client: docker.DockerClient | None = None,
    force: bool = False,
    log: Callable[[str], None] | None = None,
) -> BaseImageResult:
    """Make sure ``tag`` is a Debian ``suite`` minbase image for ``platform`` in the engine.

    ``tag`` defaults to :func:`default_tag`. ``force`` ignores both the engine's image and the cached
    layer (re-runs debootstrap). Needs root (debootstrap) unless the layer is cached.
    Raises :class:`BaseImageError` (and :class:`~mlrepro.image.errors.EngineUnavailable`).
    """
    from mlrepro.image.engine import connect

    started = time.monotonic()
    arch, variant = _arch_of(platform)
    tag = _normalize_tag(tag or default_tag(platform, suite))
    label = label_value(platform, suite)
    say = log or (lambda _msg: None)
    cache_dir = Path(cache_dir)
    layer = cached_layer_path(cache_dir, platform, suite)
    client = client or connect()

    if not force:
        existing = _matching_image(client, tag, label, arch)
        if existing is not None:
            return BaseImageResult(
                tag,
                platform,
                existing.id,
                "exists",
                layer,
                int(existing.attrs.get("Size") or 0),
                time.monotonic() - started,
            )

    try:
        layer.parent.mkdir(parents=True, exist_ok=True)
        with _locked(layer.parent / ".lock"):
            status: Status = "loaded"
            if force or not _layer_ready(layer):
                say(f"debootstrap {suite} {arch} ({DEFAULT_VARIANT}) from {mirror}")
                t0 = time.monotonic()
                _build_layer(layer, arch=arch, suite=suite, mirror=mirror)
                mib = layer.stat().st_size // 2**20
                say(f"rootfs layer {layer} ({mib} MiB) in {time.monotonic() - t0:.0f} s")
                status = "created"
            diff_id = _layer_digest(layer)
            config = image_config(
                arch=arch,
                variant=variant,
                diff_id=diff_id,
                labels={BASE_LABEL: label, f"{BASE_LABEL}.mirror": _public_url(mirror)},
            )
            image = _load(client, layer, diff_id, config, tag)
    except OSError as exc:
        raise BaseImageError(f"base image {tag}: {one_line(exc)} (cache: {cache_dir})") from exc

    actual = image.attrs.get("Architecture")
    if actual != arch:
        raise BaseImageError(f"loaded {tag} but the engine reports architecture {actual!r}, not {arch!r}")
    return BaseImageResult(
        tag, platform, image.id, status, layer, int(image.attrs.get("Size") or 0), time.monotonic() - started
    )


def ensure_base_images(
    platforms: tuple[str, ...] | list[str] = PLATFORMS,
    cache_dir: Path = DEFAULT_CACHE_DIR,
    *,
    client: docker.DockerClient | None = None,
    force: bool = False,
    log: Callable[[str], None] | None = None,
) -> list[BaseImageResult]:
    """Create the default base image (:data:`DEFAULT_TAGS`) of each platform."""
    from mlrepro.image.engine import connect

    client = client or connect()
    return [
        create_base_image(p, DEFAULT_TAGS.get(p), cache_dir, client=client, force=force, log=log)
        for p in platforms
    ]


def verify_base_image(client: docker.DockerClient, tag: str, platform: str) -> str:
    """Run ``uname -m`` in ``tag`` for ``platform``; return its output or raise :class:`BaseImageError`.

    For arm64 on an x86-64 host this proves that qemu emulation (binfmt_misc) works.
    """
    import docker as _docker

    expected = {"amd64": "x86_64", "arm64": "aarch64"}[_arch_of(platform)[0]]
    try:
        out = client.containers.run(tag, ["uname", "-m"], remove=True, platform=platform)
    except _docker.errors.DockerException as exc:
        raise BaseImageError(f"cannot run {tag} for {platform}: {one_line(exc)}") from exc
    machine = out.decode().strip() if isinstance(out, bytes) else str(out).strip()
    if machine != expected:
        raise BaseImageError(f"{tag} for {platform}: uname -m printed {machine!r}, expected {expected!r}")
    return machine


# --- image tarball -------------------------------------------------------------------------------


def image_config(*, arch: str, variant: str | None, diff_id: str, labels: dict[str, str]) -> dict[str, Any]:
    """The image config JSON (Docker image spec v1.2 / OCI) of a single-layer base image."""
    created = datetime.fromtimestamp(SOURCE_DATE_EPOCH, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    config: dict[str, Any] = {
        "architecture": arch,
        "os": "linux",
        "created": created,
        "config": {"Env": [f"PATH={DEFAULT_PATH}"], "Cmd": ["bash"], "Labels": dict(sorted(labels.items()))},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [
            {"created": created, "created_by": f"mlrepro base image: debootstrap --variant={DEFAULT_VARIANT}"}
        ],
    }
    if variant:
        config["variant"] = variant
    return config


def write_image_tarball(out: Path, layer: Path, diff_id: str, config: dict[str, Any], tag: str) -> str:
    """Write a ``docker load``-able tarball of one layer; return the image ID (``sha256:`` of the config)."""
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_hex = hashlib.sha256(config_bytes).hexdigest()
    layer_dir = diff_id.removeprefix("sha256:")
    manifest = [
        {
            "Config": f"{config_hex}.json",
            "RepoTags": [_normalize_tag(tag)],
            "Layers": [f"{layer_dir}/layer.tar"],
        }
    ]
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, f"{config_hex}.json", config_bytes)
        dir_info = tarfile.TarInfo(layer_dir)
        dir_info.type, dir_info.mode, dir_info.mtime = tarfile.DIRTYPE, 0o755, SOURCE_DATE_EPOCH
        tar.addfile(dir_info)
        _add_bytes(tar, f"{layer_dir}/VERSION", b"1.0")
        info = tarfile.TarInfo(f"{layer_dir}/layer.tar")
        info.size, info.mode, info.mtime = layer.stat().st_size, 0o644, SOURCE_DATE_EPOCH
        with layer.open("rb") as fh:
            tar.addfile(info, fh)
        _add_bytes(tar, "manifest.json", json.dumps(manifest, separators=(",", ":")).encode())
    return f"sha256:{config_hex}"


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, SOURCE_DATE_EPOCH
    tar.addfile(info, io.BytesIO(data))


def _load(
    client: docker.DockerClient, layer: Path, diff_id: str, config: dict[str, Any], tag: str
) -> docker.models.images.Image:
    import docker as _docker

    with tempfile.TemporaryDirectory(dir=layer.parent, prefix="image-") as tmp:
        tarball = Path(tmp) / "image.tar"
        write_image_tarball(tarball, layer, diff_id, config, tag)
        try:
            with tarball.open("rb") as fh:
                client.images.load(fh)
            return client.images.get(tag)
        except _docker.errors.DockerException as exc:
            raise BaseImageError(f"docker load of {tag} failed: {one_line(exc)}") from exc


def _matching_image(
    client: docker.DockerClient, tag: str, label: str, arch: str
) -> docker.models.images.Image | None:
    import docker as _docker

    try:
        image = client.images.get(tag)
    except _docker.errors.ImageNotFound:
        return None
    except _docker.errors.DockerException as exc:
        raise BaseImageError(f"cannot inspect {tag}: {one_line(exc)}") from exc
    labels = (image.attrs.get("Config") or {}).get("Labels") or {}
    if labels.get(BASE_LABEL) == label and image.attrs.get("Architecture") == arch:
        return image
    return None


# --- root filesystem layer ------------------------------------------------------------------------


def _build_layer(layer: Path, *, arch: str, suite: str, mirror: str) -> None:
    """debootstrap into a scratch tree next to ``layer``, tar it into ``layer`` (atomically), clean up."""
    for tool in ("debootstrap", "tar"):
        if shutil.which(tool) is None:
            raise BaseImageError(f"{tool} not found: install it (scripts/ci/setup-engine.sh does)")
    if os.geteuid() != 0:
        raise BaseImageError("debootstrap needs root: run as root or create the base images in CI")
    _check_emulation(arch)

    work = Path(tempfile.mkdtemp(dir=layer.parent, prefix="rootfs-"))
    log_path = layer.parent / "debootstrap.log"
    try:
        rootfs = work / "rootfs"
        argv = ["debootstrap", f"--variant={DEFAULT_VARIANT}", f"--arch={arch}", suite, str(rootfs), mirror]
        with log_path.open("wb") as log_fh:
            proc = subprocess.run(argv, stdout=log_fh, stderr=subprocess.STDOUT, check=False)
        if proc.returncode != 0:
            raise BaseImageError(
                f"debootstrap {suite} {arch} failed (exit {proc.returncode}): "
                f"{_last_line(log_path)} (log: {log_path})"
            )
        _trim_rootfs(rootfs)
        _unmount_under(rootfs)
        tmp_layer = layer.with_name(layer.name + ".tmp")
        argv = [
            "tar",
            "--sort=name",
            "--numeric-owner",
            "--xattrs",
            "--xattrs-include=security.capability",
            f"--mtime=@{SOURCE_DATE_EPOCH}",
            "--clamp-mtime",
            "-C",
            str(rootfs),
            "-cf",
            str(tmp_layer),
            ".",
        ]
        proc = subprocess.run(argv, capture_output=True, check=False)
        if proc.returncode != 0:
            tmp_layer.unlink(missing_ok=True)
            raise BaseImageError(
                f"tar of the {arch} rootfs failed (exit {proc.returncode}): "
                f"{one_line(proc.stderr.decode(errors='replace'))}"
            )
        digest = _sha256_file(tmp_layer)
        os.replace(tmp_layer, layer)
        _digest_file(layer).write_text(digest + "\n")
    finally:
        _remove_tree(work)


def _trim_rootfs(rootfs: Path) -> None:
    """Drop what Debian's own images drop: downloaded .debs, apt lists and caches, host identity."""
    for pattern in ("var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*_*"):
        for path in rootfs.glob(pattern):
            path.unlink(missing_ok=True)
    for name in ("etc/resolv.conf", "etc/hostname"):  # copied from the host; the engine bind-mounts its own
        path = rootfs / name
        if path.is_file() and not path.is_symlink():
            path.write_text("")


def _check_emulation(arch: str) -> None:
    host = _HOST_ARCHES.get(_platform.machine())
    if host == arch:
        return
    entry = _BINFMT_DIR / _QEMU_BINFMT.get(arch, f"qemu-{arch}")
    try:
        enabled = entry.read_text().splitlines()[0].strip() == "enabled"
    except (OSError, IndexError):
        enabled = False
    if not enabled:
        raise BaseImageError(
            f"cannot debootstrap {arch} on a {_platform.machine()} host: {entry} is not enabled "
            "(install qemu-user-static and binfmt-support; scripts/ci/setup-engine.sh does)"
        )


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()).rstrip("/") + "/"
    mounts = []
    with open("/proc/self/mounts", encoding="utf-8") as fh:
        for line in fh:
            fields = line.split()
            if len(fields) > 1:
                point = fields[1].encode().decode("unicode_escape")  # \040 for spaces
                if point.startswith(prefix):
                    mounts.append(point)
    return sorted(mounts, key=len, reverse=True)


def _unmount_under(path: Path) -> None:
    """debootstrap mounts proc/sys in the target and may leave them behind on failure."""
    for point in _mounts_under(path):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    left = _mounts_under(path)
    if left:
        raise BaseImageError(f"cannot unmount {left[0]} inside the debootstrap tree; remove {path} by hand")


def _remove_tree(path: Path) -> None:
    if not path.exists():
        return
    _unmount_under(path)  # never let rmtree descend into a mounted /proc or /sys
    shutil.rmtree(path, ignore_errors=True)


def _last_line(log_path: Path) -> str:
    try:
        lines = [ln for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    return one_line(lines[-1]) if lines else "no output"


# --- cache --------------------------------------------------------------------------------------


def _digest_file(layer: Path) -> Path:
    return layer.with_name(layer.name + ".sha256")


def _layer_ready(layer: Path) -> bool:
    return layer.is_file() and layer.stat().st_size > 0


def _layer_digest(layer: Path) -> str:
    """``sha256:<hex>`` of the layer, from the sidecar file when it is newer than the layer."""
    sidecar = _digest_file(layer)
    try:
        if sidecar.stat().st_mtime >= layer.stat().st_mtime:
            value = sidecar.read_text().strip()
            if value.startswith("sha256:") and len(value) == 71:
                return value
    except OSError:
        pass
    value = _sha256_file(layer)
    sidecar.write_text(value + "\n")
    return value


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return f"sha256:{h.hexdigest()}"


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """Serialise concurrent creators of the same cache entry (parallel test sessions, CI jobs)."""
    with lock_path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --- helpers ------------------------------------------------------------------------------------


def _arch_of(platform: str) -> tuple[str, str | None]:
    try:
        return _ARCHES[platform]
    except KeyError:
        raise BaseImageError(
            f"unsupported base image platform {platform!r} (supported: {', '.join(_ARCHES)})"
        ) from None


def _public_url(url: str) -> str:
    """The mirror URL without credentials (it ends up in an image label)."""
    parts = urlsplit(url)
    if not (parts.username and parts.hostname):
        return url
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _normalize_tag(tag: str) -> str:
    """``name`` -> ``name:latest``; a registry port (``host:5001/name``) is not a tag."""
    if "@" in tag:
        raise BaseImageError(f"a base image tag cannot be a digest reference: {tag!r}")
    last = tag.rsplit("/", 1)[-1]
    return tag if ":" in last else f"{tag}:latest"


# --- command line -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    from mlrepro.errors import MlreproError

    parser = argparse.ArgumentParser(
        prog="python -m mlrepro.image.base_images",
        description="Create local Debian base images (no registry needed).",
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="both linux/amd64 and linux/arm64")
    which.add_argument("--platform", action="append", choices=PLATFORMS, help="one platform (repeatable)")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=DEFAULT_CACHE_DIR,
        help=f"where rootfs layers are kept between runs (default {DEFAULT_CACHE_DIR})",
    )
    parser.add_argument("--mirror", default=DEFAULT_MIRROR)
    parser.add_argument("--suite", default=DEFAULT_SUITE)
    parser.add_argument("--force", action="store_true", help="re-run debootstrap even if cached")
    parser.add_argument("--verify", action="store_true", help="run `uname -m` in each image afterwards")
    args = parser.parse_args(argv)

    def log(msg: str) -> None:
        print(f"base-images: {msg}", flush=True)

    from mlrepro.image.engine import connect

    try:
        client = connect()
        for plat in PLATFORMS if args.all else args.platform:
            tag = default_tag(plat, args.suite)
            r = create_base_image(
                plat, tag, args.cache_dir, args.mirror, args.suite, client=client, force=args.force, log=log
            )
            log(
                f"{r.tag} {r.status} id={r.image_id[:19]} size={r.size_bytes / 2**20:.0f}MiB "
                f"in {r.seconds:.1f}s"
            )
            if args.verify:
                log(f"{r.tag} runs: uname -m = {verify_base_image(client, r.tag, plat)}")
    except MlreproError as exc:
        print(f"base-images: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
