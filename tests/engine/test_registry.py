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
