"""Typed errors of the image-building layer (engine, base images, registry).

All derive from :class:`mlrepro.errors.RuntimeFailure` (exit code 1); ``str(err)`` is one line.
"""

from __future__ import annotations

from mlrepro.errors import RuntimeFailure


class EngineUnavailable(RuntimeFailure):
    """No Docker engine answers at the configured address (``DOCKER_HOST`` or the default socket)."""


class BuildError(RuntimeFailure):
    """An image could not be built or loaded."""


class BaseImageUnavailable(BuildError):
    """A base image of the profile is not on the engine and cannot be pulled (no registry reachable)."""


class BaseImageError(BuildError):
    """A local Debian base image could not be created (debootstrap, tar, docker load)."""


class RegistryError(RuntimeFailure):
    """A registry operation (login, push, pull) failed for a reason other than credentials."""


class RegistryAuthError(RegistryError):
    """The registry rejected the credentials, or asked for some and none were given.

    The message names the registry and the user, never the password.
    """


def one_line(text: object, limit: int = 300) -> str:
    """Collapse whitespace so an external message fits the one-line rule; truncate very long ones."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."
