"""Where a run's results live, as a type: a local directory, a Docker volume, a host directory bind-mounted
into the container, or a Kubernetes PersistentVolumeClaim.

Every location is what the harness sees as ``/results`` (its ``--results`` directory): the run's own folder
is ``<location>/<run id>/``. The state store keeps a location as text (:func:`format_location`), read back
with :func:`parse_location`::

    dir:/home/me/.local/state/mlrepro/runs/RUN/results      LocalDir     (native: written there directly)
    bind:/data/results                                      HostDir      (docker --results-dir DIR)
    volume:mlrepro-results-RUN                              DockerVolume (docker, the default)
    pvc:CONTEXT/NAMESPACE/CLAIM                             Pvc          (kubernetes; CONTEXT "" = in-cluster)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Union
from urllib.parse import quote, unquote

from mlrepro.errors import BadInputError


@dataclass(frozen=True)
class LocalDir:
    """A directory on this machine the harness writes to itself (native target)."""
    path: Path

    def describe(self) -> str:
        return str(self.path)


@dataclass(frozen=True)
class HostDir:
    """A host directory bind-mounted at ``/results`` of the container."""
    path: Path

    def describe(self) -> str:
        return f"host directory {self.path}"


@dataclass(frozen=True)
class DockerVolume:
    """A named Docker volume mounted at ``/results``; it outlives the container."""
    name: str

    def describe(self) -> str:
        return f"Docker volume {self.name}"


@dataclass(frozen=True)
class Pvc:
    """A PersistentVolumeClaim mounted at ``/results`` of the Job's pod."""
    claim: str
    namespace: str
    context: str = ""
    """The kubeconfig context the run was launched with ("" = in-cluster configuration)."""

    def describe(self) -> str:
        where = f"context {self.context}, " if self.context else ""
        return f"PersistentVolumeClaim {self.claim} ({where}namespace {self.namespace})"


ResultsLocation = Union[LocalDir, HostDir, DockerVolume, Pvc]  # noqa: UP007 (a runtime alias on 3.10)


def format_location(location: ResultsLocation) -> str:
    """The text the state store keeps (see the module docstring)."""
    if isinstance(location, LocalDir):
        return f"dir:{location.path}"
    if isinstance(location, HostDir):
        return f"bind:{location.path}"
    if isinstance(location, DockerVolume):
        return f"volume:{location.name}"
    return f"pvc:{quote(location.context, safe='')}/{location.namespace}/{location.claim}"


def parse_location(text: str, target: str = "") -> ResultsLocation:
    """Read :func:`format_location`'s text back. Records written before locations had a type hold a bare path
    (native: the results directory; docker: a bind-mounted host directory) or a bare volume name.

    Raises BadInputError for text that names no location.
    """
    kind, sep, rest = text.partition(":")
    if sep and rest:
        if kind == "dir":
            return LocalDir(Path(rest))
        if kind == "bind":
            return HostDir(Path(rest))
        if kind == "volume":
            return DockerVolume(rest)
        if kind == "pvc":
            parts = rest.split("/")
            if len(parts) == 3 and parts[1] and parts[2]:
                return Pvc(claim=parts[2], namespace=parts[1], context=unquote(parts[0]))
    if text.startswith("/"):
        return HostDir(Path(text)) if target == "docker" else LocalDir(Path(text))
    if text and target == "docker" and "/" not in text:
        return DockerVolume(text)
    raise BadInputError(f"results location {text!r} is not one mlrepro wrote")
