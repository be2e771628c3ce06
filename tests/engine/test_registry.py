"""Login, push and pull against a real docker-registry with htpasswd auth."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from mlrepro.image.engine import connect
from mlrepro.image.errors import RegistryAuthError, RegistryError
from mlrepro.image.registry import RegistryAuth, login, pull, push

pytestmark = [pytest.mark.docker, pytest.mark.registry]


def test_push_then_pull_by_digest(docker_client: Any, registry: Any, base_image: str) -> None:
    ref = f"{registry.host}/mlrepro-test/debian:roundtrip-{uuid.uuid4().hex[:8]}"
    base = docker_client.images.get(base_image)
    assert base.tag(ref)
    auth = login(docker_client, registry.host, registry.username, registry.password)
    try:
        digest = push(docker_client, ref, auth)
        assert digest.startswith("sha256:") and len(digest) == 71
    finally:
        docker_client.images.remove(ref)
    repository = ref.rsplit(":", 1)[0]
    pulled = pull(docker_client, f"{repository}@{digest}", auth)
    try:
        assert pulled.id == base.id
        assert f"{repository}@{digest}" in pulled.attrs["RepoDigests"]
    finally:
        docker_client.images.remove(f"{repository}@{digest}")


def test_wrong_password_is_a_registry_auth_error_without_the_password(
    docker_client: Any, registry: Any
) -> None:
    wrong = f"wrong-{uuid.uuid4().hex}"
    with pytest.raises(RegistryAuthError) as err:
        login(docker_client, registry.host, registry.username, wrong)
    message = str(err.value)
    assert registry.host in message and registry.username in message
    assert wrong not in message and registry.password not in message
    assert "\n" not in message
    assert err.value.exit_code == 1


def test_push_with_wrong_or_no_credentials_is_refused(registry: Any, base_image: str) -> None:
    client = connect()  # a fresh client: no credentials cached by an earlier login
    ref = f"{registry.host}/mlrepro-test/debian:denied"
    client.images.get(base_image).tag(ref)
    try:
        bad = RegistryAuth(registry.host, registry.username, f"wrong-{uuid.uuid4().hex}")
        with pytest.raises(RegistryAuthError) as err:
            push(client, ref, bad)
        assert bad.password not in str(err.value)
        with pytest.raises(RegistryAuthError, match="no credentials"):
            push(client, ref)
    finally:
        client.images.remove(ref)
        client.close()


def test_pull_of_a_missing_tag_is_a_plain_registry_error(docker_client: Any, registry: Any) -> None:
    auth = RegistryAuth(registry.host, registry.username, registry.password)
    with pytest.raises(RegistryError) as err:
        pull(docker_client, f"{registry.host}/mlrepro-test/absent:nope", auth)
    assert not isinstance(err.value, RegistryAuthError)
    assert registry.password not in str(err.value)


def test_failed_push_leaves_the_local_tags_as_they_were(registry: Any, base_image: str, tmp_path: Any) -> None:
    """A refused push removes the registry tag it added, and points a tag it moved back where it was."""
    import contextlib
    import io

    import docker

    from mlrepro.image.images import push_image

    client = connect()  # a fresh client: no credentials cached by an earlier login
    name = f"mlrepro-test/pushfail-{uuid.uuid4().hex[:8]}"
    dockerfile = f"FROM {base_image}\nLABEL io.mlrepro.test={name}\n".encode()
    image, _ = client.images.build(fileobj=io.BytesIO(dockerfile), tag=f"{name}:src", rm=True)
    target = f"{registry.host}/{name}:src"
    events: list[Any] = []
    try:
        with pytest.raises(RegistryAuthError):
            push_image(f"{name}:src", client=client, registry=registry.host, record_path=tmp_path / "r.json",
                       on_event=events.append)
        assert target not in client.images.get(image.id).tags
        assert not (tmp_path / "r.json").exists()
        assert any(e.error for e in events)  # the stream was handed over as it came, the refusal included
        # a tag that named another image before the push names it again after the failure
        client.images.get(base_image).tag(target)
        with pytest.raises(RegistryAuthError):
            push_image(f"{name}:src", client=client, registry=registry.host, record_path=tmp_path / "r.json")
        assert client.images.get(target).id == client.images.get(base_image).id
        assert client.images.get(f"{name}:src").id == image.id
    finally:
        for ref in (target, f"{name}:src"):
            with contextlib.suppress(docker.errors.ImageNotFound):
                client.images.remove(ref)
        client.close()
