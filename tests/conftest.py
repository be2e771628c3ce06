"""Shared fixtures.

Real-engine fixtures (``docker_client``, ``registry``, ``base_image``, ``base_image_arm64``) skip when
what they need is missing -- unless ``MLREPRO_REQUIRE_DOCKER=1`` (CI), where they fail instead.
Tests marked ``@pytest.mark.docker`` get ``docker_client`` and those marked ``@pytest.mark.registry``
get ``registry`` automatically, so the skip/fail rule applies to them even without naming the fixture.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest


def _require_docker() -> bool:
    return os.environ.get("MLREPRO_REQUIRE_DOCKER") == "1"


def _unavailable(reason: str) -> NoReturn:
    """Skip, or fail under ``MLREPRO_REQUIRE_DOCKER=1``."""
    if _require_docker():
        pytest.fail(f"{reason} (MLREPRO_REQUIRE_DOCKER=1)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _real_engine_markers(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("docker") is not None:
        request.getfixturevalue("docker_client")
    if request.node.get_closest_marker("registry") is not None:
        request.getfixturevalue("registry")


@pytest.fixture
def sigint_delivered() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt in this process for the test, whatever disposition pytest inherited (a
    parent that ignores SIGINT, such as a background job of a non-interactive shell, passes SIG_IGN on)."""
    import signal

    saved = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, saved)


# --- Docker engine -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A ``docker.DockerClient`` for the engine named by ``DOCKER_HOST`` (or the default socket)."""
    from mlrepro.image.engine import connect
    from mlrepro.image.errors import EngineUnavailable

    try:
        client = connect()
    except EngineUnavailable as exc:
        _unavailable(f"no Docker engine: {exc}")
    yield client
    client.close()


# --- registry ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Registry:
    """A running registry with htpasswd authentication (no TLS: loopback)."""

    host: str
    """``127.0.0.1:PORT``: the registry part of image references and the SDK's ``registry=``."""
    username: str
    password: str = field(repr=False)
    data_dir: Path | None = None
    """Storage root when the fixture started the registry itself; None for an external one."""

    @property
    def url(self) -> str:
        return f"http://{self.host}"


def _v2_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(f"{url}/v2/", timeout=2) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _external_registry() -> Registry | None:
    """The registry of scripts/ci/start-registry.sh, when its env file was sourced."""
    host = os.environ.get("MLREPRO_REGISTRY")
    if not host:
        return None
    password = os.environ.get("MLREPRO_REGISTRY_PASSWORD")
    password_file = os.environ.get("MLREPRO_REGISTRY_PASSWORD_FILE")
    if not password and password_file:
        password = Path(password_file).read_text().strip()
    if not password:
        _unavailable("MLREPRO_REGISTRY is set but neither MLREPRO_REGISTRY_PASSWORD nor ..._PASSWORD_FILE")
    registry = Registry(host, os.environ.get("MLREPRO_REGISTRY_USER", "mlrepro"), password)
    if _v2_status(registry.url) != 401:
        _unavailable(f"registry {host} (MLREPRO_REGISTRY) does not answer GET /v2/ with 401")
    return registry


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A real docker-registry with htpasswd auth.

    Uses the one named by ``MLREPRO_REGISTRY`` (+ ``MLREPRO_REGISTRY_USER``, ``MLREPRO_REGISTRY_PASSWORD``
    or ``MLREPRO_REGISTRY_PASSWORD_FILE``) if set; otherwise starts its own on a free loopback port in a
    temporary directory and stops it at the end of the session.
    """
    external = _external_registry()
    if external is not None:
        yield external
        return
    for tool in ("docker-registry", "htpasswd"):
        if shutil.which(tool) is None:
            _unavailable(f"{tool} not installed (apt-get install docker-registry apache2-utils)")

    root = tmp_path_factory.mktemp("registry")
    username, password = "mlrepro-test", secrets.token_urlsafe(24)
    htpasswd = subprocess.run(
        ["htpasswd", "-niB", username], input=password, text=True, capture_output=True, check=False
    )
    if htpasswd.returncode != 0:
        _unavailable(f"htpasswd failed: {htpasswd.stderr.strip()}")
    (root / "htpasswd").write_text(htpasswd.stdout)
    host = f"127.0.0.1:{_free_port()}"
    (root / "config.yml").write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: {host}\n  secret: {secrets.token_hex(16)}\n"
        f"auth:\n  htpasswd:\n    realm: mlrepro-test\n    path: {root / 'htpasswd'}\n"
    )
    log = (root / "registry.log").open("wb")
    proc = subprocess.Popen(
        ["docker-registry", "serve", str(root / "config.yml")],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    reg = Registry(host, username, password, root / "data")
    try:
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            status = _v2_status(reg.url)
            if status is not None:
                break
            time.sleep(0.1)
        if status != 401:
            tail = (root / "registry.log").read_text(errors="replace").strip().splitlines()[-1:]
            _unavailable(
                f"docker-registry on {host} did not come up (GET /v2/ -> {status}; "
                f"exit {proc.poll()}; {' '.join(tail)})"
            )
        yield reg
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


# --- base images -------------------------------------------------------------------------------


def _base_cache_dir() -> Path:
    """``$MLREPRO_BASE_CACHE``, else /var/cache/mlrepro/base-images if writable, else ~/.cache."""
    from mlrepro.image.base_images import DEFAULT_CACHE_DIR

    env = os.environ.get("MLREPRO_BASE_CACHE")
    if env:
        return Path(env)
    probe = DEFAULT_CACHE_DIR if DEFAULT_CACHE_DIR.exists() else DEFAULT_CACHE_DIR.parent.parent
    if os.access(probe, os.W_OK):
        return DEFAULT_CACHE_DIR
    return Path.home() / ".cache" / "mlrepro" / "base-images"


@pytest.fixture(scope="session")
def base_cache_dir() -> Path:
    return _base_cache_dir()


def _ensure_base(client: Any, platform: str, cache_dir: Path) -> str:
    from mlrepro.image.base_images import DEFAULT_TAGS, create_base_image
    from mlrepro.image.errors import BaseImageError

    try:
        return create_base_image(platform, DEFAULT_TAGS[platform], cache_dir, client=client).tag
    except BaseImageError as exc:
        _unavailable(f"cannot create the {platform} base image: {exc}")


@pytest.fixture(scope="session")
def base_image(docker_client: Any, base_cache_dir: Path) -> str:
    """Tag of the local Debian bookworm amd64 base (``mlrepro/debian:bookworm-amd64``), created if missing
    (debootstrap, ~40 s, root only)."""
    return _ensure_base(docker_client, "linux/amd64", base_cache_dir)


@pytest.fixture(scope="session")
def base_image_arm64(docker_client: Any, base_cache_dir: Path) -> str:
    """Tag of the arm64 base (``mlrepro/debian:bookworm-arm64``), created if missing -- several minutes
    under qemu: mark tests that use it ``slow`` and ``arm64``."""
    return _ensure_base(docker_client, "linux/arm64", base_cache_dir)
