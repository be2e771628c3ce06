"""What a Kubernetes version can run: checks of a pod against the cluster version a user names.

Source of the rules: Kubernetes release notes -- Dynamic Resource Allocation (``resource.k8s.io/v1``) is GA
in 1.34 (earlier versions serve only beta/alpha DRA APIs, which the manifests do not use).
"""

from __future__ import annotations

import re

from mlrepro.render.podspec import PodSpec, RenderError

DRA_MIN_VERSION = (1, 34)
_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+].*)?$")


def parse_kubernetes_version(text: str, where: str = "--kubernetes-version") -> tuple[int, int]:
    """``"1.34"``, ``"v1.34.2"`` or ``"1.34.1+k3s1"`` → ``(1, 34)``. Raises RenderError on anything else."""
    m = _VERSION.match(text.strip())
    if not m:
        raise RenderError(f"{where}: {text!r} is not a Kubernetes version (e.g. 1.34 or v1.34.2)")
    return int(m.group(1)), int(m.group(2))


def check_kubernetes_version(pod: PodSpec, version: str, where: str = "--kubernetes-version",
                             dra: bool | None = None) -> None:
    """Raise RenderError when ``pod`` (``dra``: or its model server) needs an API that Kubernetes ``version``
    does not serve."""
    have = parse_kubernetes_version(version, where)
    if (pod.device_claim is not None if dra is None else dra) and have < DRA_MIN_VERSION:
        raise RenderError(f"accelerator.request: dra needs Kubernetes {DRA_MIN_VERSION[0]}.{DRA_MIN_VERSION[1]} or "
                          f"newer (resource.k8s.io/v1), but {where} is {have[0]}.{have[1]}: use "
                          "accelerator.request: device-plugin on this cluster")
