"""The runner table: every target a run can go to, in one place.

A target has a name, its aliases and its runner class; the CLI's ``--target`` choices and help, the recorded
target of a run, ``mlrepro reproduce --target`` and the run layer all read this table::

    canonical_target("k8s") -> "kubernetes"            (BadInputError for an unknown name)
    get_runner("docker", RunnerConfig(state_dir))       -> DockerRunner
    runner_for_record(record, state_dir)                -> the runner of a recorded run, reaching where it ran
    choose_target("auto", progress)                     -> "docker" when an engine answers, else "native"

Runner modules (and the docker / kubernetes clients) are imported only when a target is used; they import the
contract (:mod:`mlrepro.runners.base`), never this table.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlrepro.errors import BadInputError

if TYPE_CHECKING:  # pragma: no cover
    from mlrepro.runners.base import Progress, Runner, RunnerConfig
    from mlrepro.state.store import RunRecord


@dataclass(frozen=True)
class TargetEntry:
    name: str
    runner: str
    """``module:Class`` of the runner (imported when the target is used)."""
    summary: str
    """What it is, for ``--target`` help."""
    aliases: tuple[str, ...] = ()


TABLE: tuple[TargetEntry, ...] = (
    TargetEntry("native", "mlrepro.runners.native:NativeRunner", "in this Python, no container"),
    TargetEntry("docker", "mlrepro.runners.docker:DockerRunner", "a container on the Docker engine"),
    TargetEntry("kubernetes", "mlrepro.runners.kubernetes.runner:KubernetesRunner", "a Job on a cluster", ("k8s",)),
)
#: ``--target auto``: docker when an engine answers, else native (see :func:`choose_target`)
AUTO = "auto"
#: the canonical target names
TARGETS: tuple[str, ...] = tuple(t.name for t in TABLE)
ALIASES: dict[str, str] = {alias: t.name for t in TABLE for alias in t.aliases}
#: the default ``--target`` of ``mlrepro run``/``calibrate`` (measure where it will run) and of ``launch``
RUN_DEFAULT = AUTO
LAUNCH_DEFAULT = "docker"


def choices(auto: bool = False) -> tuple[str, ...]:
    """Every name ``--target`` takes: the targets, their aliases, and ``auto`` where it is allowed."""
    return ((AUTO,) if auto else ()) + TARGETS + tuple(ALIASES)


def describe(auto: bool = False) -> str:
    """One line for ``--target`` help: ``auto (docker if an engine answers, else native), native (...), ...``."""
    parts = [f"{AUTO} (docker if an engine answers, else native)"] if auto else []
    for t in TABLE:
        parts.append(f"{t.name}" + (f" or {', '.join(t.aliases)}" if t.aliases else "") + f" ({t.summary})")
    return ", ".join(parts)


def canonical_target(name: str) -> str:
    """``"k8s"`` → ``"kubernetes"``; raises BadInputError for an unknown target (``auto`` is resolved by
    :func:`choose_target`, not here)."""
    target = ALIASES.get(name, name)
    if target not in TARGETS:
        raise BadInputError(f"--target: {name!r} is not one of {', '.join(choices())}")
    return target


def choose_target(requested: str, progress: Progress) -> str:
    """``auto`` → docker when an engine answers, else native (said in one line); other names checked and made
    canonical."""
    if requested != AUTO:
        return canonical_target(requested)
    from mlrepro.image.engine import connect, docker_host
    from mlrepro.image.errors import EngineUnavailable

    try:
        connect(timeout=10).close()
    except EngineUnavailable:
        progress(f"no Docker engine reachable at {docker_host()}: running natively (--target native)")
        return "native"
    return "docker"


def get_runner(target: str, config: RunnerConfig) -> Runner:
    """The runner of ``target`` (a name or an alias). Raises BadInputError for an unknown name,
    EngineUnavailable (docker) or a KubernetesError (kubernetes) when the target cannot be reached."""
    name = canonical_target(target)
    module, _, cls = next(t for t in TABLE if t.name == name).runner.partition(":")
    return getattr(importlib.import_module(module), cls)(config)


def runner_for_record(record: RunRecord, state_dir: Path) -> Runner:
    """The runner of a recorded run, configured to reach where it ran (a cluster run: the context and namespace
    of its recorded claim)."""
    from mlrepro.runners.base import KubeTarget, RunnerConfig
    from mlrepro.runners.locations import Pvc, parse_location

    kube = KubeTarget()
    if record.results_location:
        location = parse_location(record.results_location, record.target)
        if isinstance(location, Pvc):
            kube = KubeTarget(context=location.context or None, namespace=location.namespace)
    return get_runner(record.target, RunnerConfig(state_dir=state_dir, kube=kube))
