"""The hand-written image tarball and the registry-message parsing (no engine needed)."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest

from mlrepro.image.base_images import _normalize_tag, default_tag, image_config, write_image_tarball
from mlrepro.image.errors import BaseImageError, RegistryAuthError, RegistryError
from mlrepro.image.registry import ImageRef, PushEvent, digest_from_events, registry_error_code


def test_image_tarball_is_docker_loadable_layout(tmp_path: Path) -> None:
    layer = tmp_path / "layer.tar"
    with tarfile.open(layer, "w") as tar:
        (tmp_path / "hello").write_text("hi")
        tar.add(tmp_path / "hello", arcname="./hello")
    diff_id = "sha256:" + hashlib.sha256(layer.read_bytes()).hexdigest()
    config = image_config(
        arch="arm64", variant="v8", diff_id=diff_id, labels={"org.mlrepro.base": "bookworm-arm64"}
    )
    image_id = write_image_tarball(tmp_path / "image.tar", layer, diff_id, config, "mlrepro/debian:t")

    with tarfile.open(tmp_path / "image.tar") as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        (entry,) = manifest
        assert entry["RepoTags"] == ["mlrepro/debian:t"]
        config_bytes = tar.extractfile(entry["Config"]).read()  # type: ignore[union-attr]
        assert image_id == "sha256:" + hashlib.sha256(config_bytes).hexdigest()
        assert entry["Config"] == image_id.removeprefix("sha256:") + ".json"
        layer_bytes = tar.extractfile(entry["Layers"][0]).read()  # type: ignore[union-attr]
    assert layer_bytes == layer.read_bytes()
    loaded = json.loads(config_bytes)
    assert loaded["architecture"] == "arm64" and loaded["variant"] == "v8" and loaded["os"] == "linux"
    assert loaded["rootfs"] == {"type": "layers", "diff_ids": [diff_id]}
    assert loaded["config"]["Cmd"] == ["bash"]
    # Deterministic: the same inputs give the same image ID.
    assert write_image_tarball(tmp_path / "again.tar", layer, diff_id, config, "other:tag") == image_id


def test_amd64_config_has_no_variant() -> None:
    config = image_config(arch="amd64", variant=None, diff_id="sha256:" + "0" * 64, labels={})
    assert "variant" not in config and config["architecture"] == "amd64"


def test_tags() -> None:
    assert default_tag("linux/arm64") == "mlrepro/debian:bookworm-arm64"
    assert _normalize_tag("127.0.0.1:5001/x/y") == "127.0.0.1:5001/x/y:latest"
    assert _normalize_tag("x/y:1") == "x/y:1"
    with pytest.raises(BaseImageError):
        default_tag("linux/riscv64")


def test_image_ref_parse() -> None:
    ref = ImageRef.parse("127.0.0.1:5001/team/img:v1")
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        "127.0.0.1:5001",
        "127.0.0.1:5001/team/img",
        "v1",
        None,
    )
    ref = ImageRef.parse("team/img@sha256:" + "a" * 64)
    assert ref.registry is None and ref.tag is None and ref.digest == "sha256:" + "a" * 64
    assert ImageRef.parse("localhost/img").registry == "localhost"
    assert str(ImageRef.parse("r.example/img:1")) == "r.example/img:1"


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("unauthorized: authentication required", "unauthorized"),
        ("denied: requested access to the resource is denied", "denied"),
        ("no basic auth credentials", "unauthorized"),
        ('Head "http://127.0.0.1:5001/v2/x/manifests/y": no basic auth credentials', "unauthorized"),
        ("login attempt to http://127.0.0.1:5001/v2/ failed with status: 401 Unauthorized", "unauthorized"),
        ("manifest for r/x:y not found: manifest unknown: manifest unknown", None),
        ("An image does not exist locally with the tag: r/x", None),
        ("", None),
    ],
)
def test_registry_error_code(message: str, code: str | None) -> None:
    assert registry_error_code(message) == code


def test_push_stream_events() -> None:
    events = [
        PushEvent.from_json(o)
        for o in [
            {"status": "The push refers to repository [r/x]"},
            {"status": "Pushed", "id": "f3b0", "progressDetail": {}},
            {"status": "t: digest: sha256:" + "b" * 64 + " size: 529"},
            {"progressDetail": {}, "aux": {"Tag": "t", "Digest": "sha256:" + "b" * 64, "Size": 529}},
        ]
    ]
    assert digest_from_events(events, "127.0.0.1:5001/x:t") == "sha256:" + "b" * 64
    denied = [
        PushEvent.from_json(
            {
                "errorDetail": {"message": "unauthorized: authentication required"},
                "error": "unauthorized: authentication required",
            }
        )
    ]
    with pytest.raises(RegistryAuthError):
        digest_from_events(denied, "127.0.0.1:5001/x:t")
    with pytest.raises(RegistryError, match="without reporting a digest"):
        digest_from_events(events[:2], "127.0.0.1:5001/x:t")
