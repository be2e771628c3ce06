"""Typed errors of the Kubernetes target. ``str(err)`` is one line."""

from __future__ import annotations

from mlrepro.errors import BadInputError, RuntimeFailure


class KubeConfigError(BadInputError):
    """No usable kubeconfig / context / in-cluster configuration (exit 2)."""


class ClientTooOldError(BadInputError):
    """The installed ``kubernetes`` client is older than the floor mlrepro needs (exit 2)."""


class ImageNotPushedError(BadInputError):
    """The cluster needs an image from a registry, and none was pushed for this profile (exit 2)."""


class KubernetesError(RuntimeFailure):
    """The API server refused or failed a request, or cannot be reached (exit 1)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
