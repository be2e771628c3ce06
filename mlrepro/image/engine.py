"""Connection to the Docker engine.

``docker`` is imported inside the functions so that importing this module (and the CLI) stays cheap.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from mlrepro.image.errors import EngineUnavailable, one_line

if TYPE_CHECKING:  # pragma: no cover
    import docker

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"


def docker_host() -> str:
    """The engine address the SDK will use: ``$DOCKER_HOST`` or the default Unix socket."""
    return os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST


def connect(timeout: int = 120) -> docker.DockerClient:
    """Return a client for the engine named by the environment (``DOCKER_HOST``, ``DOCKER_TLS_VERIFY``...).

    The engine is pinged, so a returned client is known to answer. Raises :class:`EngineUnavailable`
    with a one-line message otherwise.
    """
    import docker
    import requests

    host = docker_host()
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        raise EngineUnavailable(f"no Docker engine reachable at {host}: {one_line(exc)}") from exc
    return client


def engine_available() -> bool:
    """True if :func:`connect` would succeed now."""
    try:
        client = connect(timeout=10)
    except EngineUnavailable:
        return False
    client.close()
    return True
