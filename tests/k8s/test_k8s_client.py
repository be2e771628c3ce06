"""The kubernetes client mlrepro needs: the floor pyproject.toml asks pip for is the one the runner checks, and an
older client is refused in one line before anything is sent (exec over TLS loses messages before 37.0.2:
kubernetes-client/python PR #2650; ResourceV1Api from 34.1.0; ``_content_type`` from 36.0.0). The whole k8s
suite runs against the stand-in over TLS, with the client installed here."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

import pytest

from mlrepro.runners.kubernetes.config import CLIENT_FLOOR, check_client
from mlrepro.runners.kubernetes.errors import ClientTooOldError

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_the_floor_pip_is_given_is_the_one_the_runner_checks():
    (floor,) = re.findall(r'"kubernetes>=([0-9.]+)"', PYPROJECT.read_text(encoding="utf-8"))
    assert tuple(int(x) for x in floor.split(".")) == CLIENT_FLOOR >= (37, 0, 2)
    check_client(version("kubernetes"))                 # what is installed here meets it


@pytest.mark.parametrize("old", ["36.0.3", "30.1.0", "37.0.2rc1", "37.0.1"])
def test_an_older_client_is_refused_in_one_line(old):
    with pytest.raises(ClientTooOldError) as err:
        check_client(old)
    assert err.value.exit_code == 2
    assert str(err.value) == (f"the kubernetes client {old} is older than 37.0.2, which the cluster path needs (exec "
                              "over TLS, DRA, server-side apply): pip install 'kubernetes>=37.0.2'")


def test_the_stand_in_speaks_tls_only(kube):
    import urllib.request

    assert kube.server.url.startswith("https://")
    plain = kube.server.url.replace("https://", "http://") + "/version"
    with pytest.raises(OSError):
        urllib.request.urlopen(plain, timeout=10).read()      # loopback: the test's own server
