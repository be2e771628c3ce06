"""Runners: one contract (:mod:`mlrepro.runners.base`), one module per target, looked up here by name.

    get_runner("docker", RunnerConfig(state_dir)) -> DockerRunner

This is the only place that maps a target name to a runner; the pipeline, ``logs`` and ``collect`` all come
through it. Runner modules (and the docker / kubernetes clients) are imported only when a target is used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mlrepro.errors import BadInputError

if TYPE_CHECKING:  # pragma: no cover
    from mlrepro.runners.base import Runner

TARGETS = ("native", "docker", "kubernetes")
ALIASES = {"k8s": "kubernetes"}
DEFAULT_PENDING_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class KubeTarget:
    """Which cluster and namespace, resolved as kubectl does (see mlrepro.runners.kubernetes.config)."""

    context: str | None = None
    """kubeconfig context (default: the current one; in a pod without a kubeconfig: the in-cluster config)."""
    namespace: str | None = None
    """default: the context's namespace, else the pod's own namespace in-cluster, else "default"."""
    kubeconfig: Path | None = None
    """default: $KUBECONFIG (several files merged), else ~/.kube/config."""


@dataclass(frozen=True)
class RunnerConfig:
    """What a runner needs besides the job: where this machine keeps runs, and target options."""

    state_dir: Path
    image: str | None = None
    """Run this image instead of preparing one (docker, kubernetes)."""
    results_dir: Path | None = None
    """docker: bind-mount ``<results_dir>/<run id>`` at /results instead of a named volume per run."""
    registry: str | None = None
    """kubernetes: when no push of the image is recorded, build and push it to this registry."""
    kube: KubeTarget = field(default_factory=KubeTarget)
    pending_timeout_s: float = DEFAULT_PENDING_TIMEOUT_S
    """kubernetes: give up on a pod that stays unschedulable or cannot pull its image this long."""


def canonical_target(name: str) -> str:
    """``"k8s"`` → ``"kubernetes"``; raises BadInputError for an unknown target."""
    target = ALIASES.get(name, name)
    if target not in TARGETS:
        raise BadInputError(f"--target: {name!r} is not one of {', '.join(TARGETS)} (or k8s)")
    return target


def get_runner(target: str, config: RunnerConfig) -> Runner:
    """The runner of ``target`` (a name of TARGETS or an alias). Raises BadInputError for an unknown name,
    EngineUnavailable (docker) or a KubernetesError (kubernetes) when the target cannot be reached."""
    target = canonical_target(target)
    if target == "native":
        from mlrepro.runners.native import NativeRunner

        return NativeRunner(config)
    if target == "docker":
        from mlrepro.runners.docker import DockerRunner

        return DockerRunner(config)
    from mlrepro.runners.kubernetes.runner import KubernetesRunner

    return KubernetesRunner(config)
