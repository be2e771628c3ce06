"""How the harness runs: natively, in a Docker container or in a Kubernetes pod, and under which limits.

The launcher says which (``MLREPRO_TARGET``: the native runner sets ``native``, the Docker runner
``docker``); without it (``mlrepro-harness`` started by hand, a Kubernetes Job) the process's own view
decides: ``KUBERNETES_SERVICE_HOST`` (set in every pod), cgroup paths, ``/.dockerenv``, ``/run/.containerenv``.
The launcher's word wins because a native run on a machine that is itself a container (a CI runner, a dev
box) is still a native run of the harness. The Docker runner also hands the host's own probe
(``MLREPRO_HOST_SYSTEM``, a JSON file in the read-only config mount): a container's network namespace hides
the host's network cards and an unprivileged container cannot read the DIMM table.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlrepro.harness.sysinfo.cpu import read_text

ENV_TARGET = "MLREPRO_TARGET"
ENV_HOST_SYSTEM = "MLREPRO_HOST_SYSTEM"
ENV_NODE_NAME = "MLREPRO_NODE_NAME"
#: the targets a runner may tell the harness it runs on (MLREPRO_TARGET). The runner table
#: (mlrepro.runners.targets) is the one list of targets; the harness runs in the image without the rest of mlrepro
#: and cannot import it, so the names are repeated here (tests/runners/test_targets.py holds the two equal).
TARGETS = ("native", "docker", "kubernetes")
HOST_KEYS = ("hostname", "machine", "os", "kernel", "cpu", "memory_total_bytes", "memory_dimms", "dmi", "disks",
             "nics", "rdma", "numa_nodes")
"""What a host probe contributes to a container's description (hardware and the host OS)."""
_MAX_HOST_FILE = 1 << 20
_CGROUP_MARKERS = (("kubepods", "kubernetes"), ("docker", "docker"), ("containerd", "containerd"),
                   ("libpod", "podman"), ("lxc", "lxc"))


def detect_container(dockerenv_exists: bool, containerenv_exists: bool, cgroup_text: str | None,
                     env: Mapping[str, str]) -> dict[str, Any]:
    """Whether this process is in a container, and which kind (best effort): ``{"in_container", "kind"}``."""
    kind: str | None = None
    if env.get("KUBERNETES_SERVICE_HOST"):
        kind = "kubernetes"
    if kind is None and cgroup_text:
        for marker, name in _CGROUP_MARKERS:
            if marker in cgroup_text:
                kind = name
                break
    if kind is None and dockerenv_exists:
        kind = "docker"
    if kind is None and containerenv_exists:
        kind = "podman"
    return {"in_container": kind is not None, "kind": kind}


def execution_target(env: Mapping[str, str], container: Mapping[str, Any]) -> tuple[str, str]:
    """``(target, source)``: the launcher's ``MLREPRO_TARGET`` when valid (source ``launcher``), else what
    the process sees (source ``detected``): ``kubernetes``, ``docker`` (any other container runtime is
    reported by its name) or ``native``."""
    told = (env.get(ENV_TARGET) or "").strip().lower()
    if told in TARGETS:
        return told, "launcher"
    kind = container.get("kind")
    return (str(kind) if container.get("in_container") and kind else "native"), "detected"


def cgroup_limits(cgroup_root: Path) -> dict[str, float | int | None]:
    """CPU quota (cores) and memory limit (bytes) of this process's cgroup, v2 (``cpu.max``,
    ``memory.max``) or v1 (``cpu.cfs_quota_us``/``cpu.cfs_period_us``, ``memory.limit_in_bytes``); None
    when unlimited or unreadable. Inside a container the cgroup mount is the container's own."""
    cpus: float | None = None
    memory: int | None = None
    v2_cpu = (read_text(cgroup_root / "cpu.max") or "").split()
    if len(v2_cpu) == 2 and v2_cpu[0].isdigit() and v2_cpu[1].isdigit() and int(v2_cpu[1]) > 0:
        cpus = int(v2_cpu[0]) / int(v2_cpu[1])
    else:
        for cpu_dir in ("cpu,cpuacct", "cpu"):
            quota = (read_text(cgroup_root / cpu_dir / "cpu.cfs_quota_us") or "").strip()
            period = (read_text(cgroup_root / cpu_dir / "cpu.cfs_period_us") or "").strip()
            if quota.lstrip("-").isdigit() and period.isdigit() and int(quota) > 0 and int(period) > 0:
                cpus = int(quota) / int(period)
                break
    for mem_file in (cgroup_root / "memory.max", cgroup_root / "memory" / "memory.limit_in_bytes"):
        text = (read_text(mem_file) or "").strip()
        if text.isdigit() and int(text) < 2**60:   # v1 writes ~2^63 for "no limit"
            memory = int(text)
            break
    return {"cpus": round(cpus, 3) if cpus is not None else None, "memory_bytes": memory}


def cpus_allowed() -> int | None:
    """CPUs this process may run on (its affinity mask), None where the platform cannot tell."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def read_host_probe(env: Mapping[str, str]) -> dict[str, Any] | None:
    """The host's probe the launcher handed over (``MLREPRO_HOST_SYSTEM``), reduced to :data:`HOST_KEYS`;
    None when not given, unreadable, too large or not a JSON object."""
    path = env.get(ENV_HOST_SYSTEM)
    if not path:
        return None
    try:
        with open(path, "rb") as fh:
            data = fh.read(_MAX_HOST_FILE + 1)
        if len(data) > _MAX_HOST_FILE:
            return None
        doc = json.loads(data.decode("utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict):
        return None
    return {k: doc[k] for k in HOST_KEYS if k in doc}


def host_view(system: Mapping[str, Any]) -> dict[str, Any]:
    """What of a full probe goes into the host file the Docker runner writes (see :func:`read_host_probe`)."""
    return {k: system[k] for k in HOST_KEYS if k in system}
