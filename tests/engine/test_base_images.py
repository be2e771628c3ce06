"""The local Debian base images, on the real engine."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from mlrepro.image.base_images import (
    AMD64_TAG,
    ARM64_TAG,
    BASE_LABEL,
    cached_layer_path,
    create_base_image,
)

pytestmark = pytest.mark.docker


def _run(client: Any, image: str, argv: list[str], platform: str | None = None) -> str:
    out = client.containers.run(image, argv, remove=True, platform=platform)
    return out.decode().strip()


def test_amd64_base_exists_with_metadata(docker_client: Any, base_image: str) -> None:
    assert base_image == AMD64_TAG
    attrs = docker_client.images.get(base_image).attrs
    assert attrs["Architecture"] == "amd64"
    assert attrs["Os"] == "linux"
    assert attrs["Config"]["Cmd"] == ["bash"]
    assert any(e.startswith("PATH=/usr/local/sbin:") for e in attrs["Config"]["Env"])
    assert attrs["Config"]["Labels"][BASE_LABEL] == "bookworm-amd64"


def test_amd64_base_runs_debian_12(docker_client: Any, base_image: str) -> None:
    assert _run(docker_client, base_image, ["uname", "-m"]) == "x86_64"
    assert _run(docker_client, base_image, ["cat", "/etc/debian_version"]).startswith("12")
    # Default Cmd is bash, and the shadow group survived the tarball (ownership is kept numerically).
    assert _run(docker_client, base_image, ["stat", "-c", "%G", "/etc/shadow"]) == "shadow"


def test_second_create_is_a_noop(docker_client: Any, base_image: str, base_cache_dir: Path) -> None:
    before = docker_client.images.get(base_image).id
    started = time.monotonic()
    result = create_base_image("linux/amd64", base_image, base_cache_dir, client=docker_client)
    assert result.status == "exists"
    assert result.image_id == before
    assert time.monotonic() - started < 5


def test_cached_layer_loads_without_debootstrap(
    docker_client: Any, base_image: str, base_cache_dir: Path
) -> None:
    if not cached_layer_path(base_cache_dir, "linux/amd64").is_file():
        pytest.skip("the amd64 layer is not cached (image created elsewhere)")
    tag = "mlrepro-test/debian:cache-check"
    try:
        result = create_base_image("linux/amd64", tag, base_cache_dir, client=docker_client)
        assert result.status == "loaded"
        # Same layer + fixed config -> same image ID as the base: reproducible from the cache.
        assert result.image_id == docker_client.images.get(base_image).id
    finally:
        docker_client.images.remove(tag)


@pytest.mark.arm64
@pytest.mark.slow
def test_arm64_base_has_arm64_metadata_and_runs_under_qemu(docker_client: Any, base_image_arm64: str) -> None:
    assert base_image_arm64 == ARM64_TAG
    attrs = docker_client.images.get(base_image_arm64).attrs
    assert attrs["Architecture"] == "arm64"
    assert attrs.get("Variant") == "v8"
    assert attrs["Config"]["Labels"][BASE_LABEL] == "bookworm-arm64"
    assert _run(docker_client, base_image_arm64, ["uname", "-m"], platform="linux/arm64") == "aarch64"
    assert _run(docker_client, base_image_arm64, ["cat", "/etc/debian_version"]).startswith("12")


@pytest.mark.arm64
@pytest.mark.slow
def test_arm64_base_builds_with_platform_flag(docker_client: Any, base_image_arm64: str) -> None:
    """`docker import` images fail here ("does not match the specified platform"); ours must not."""
    import io

    dockerfile = f"FROM {base_image_arm64}\nRUN uname -m > /machine\n".encode()
    tag = "mlrepro-test/arm64-build:probe"
    image, _ = docker_client.images.build(
        fileobj=io.BytesIO(dockerfile), platform="linux/arm64", tag=tag, rm=True
    )
    try:
        assert image.attrs["Architecture"] == "arm64"
        assert _run(docker_client, tag, ["cat", "/machine"], platform="linux/arm64") == "aarch64"
    finally:
        docker_client.images.remove(tag)
