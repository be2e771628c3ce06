"""Results out of a PersistentVolumeClaim, as ``kubectl cp`` does it: a short-lived helper pod mounts the claim
read-only, ``tar`` runs in it over the ``pods/exec`` WebSocket, and the stream is extracted on the fly with
the safe extraction every fetch uses, then verified against the harness's checksum manifest. The stream is read
one message at a time (execstream.py), so memory stays flat whatever the size of the results (accuracy logs
and traces reach GBs). The helper pod is deleted in every case; it also ends by itself
(``activeDeadlineSeconds``) if this process dies first.

The helper runs the run's own image (the cluster can pull it; it has ``tar``) under Pod Security
"restricted": non-root (the image's user, who wrote the files), read-only root, no capabilities, no token.
Where it runs (:class:`Placement`): on the run pod's node when it is known (a node-local volume, local-path or
local NVMe, can only be mounted there, and that node has the image already: a fresh node would pull a
multi-GB CUDA image to run tar), as a preferred node affinity on the node's name, so a claim on network storage
is still read when that node is gone; with the run's tolerations (a tainted GPU node accepts no pod that does
not tolerate its taint); on the run's architecture. It lives the start timeout (scheduling, a pull) plus
COPY_BUDGET_S for the copy.
"""

from __future__ import annotations

import math
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlrepro.errors import RuntimeFailure
from mlrepro.runners.base import verify_results
from mlrepro.runners.kubernetes.diagnose import pod_state
from mlrepro.runners.kubernetes.execstream import ExecStalled, ExecStream
from mlrepro.runners.kubernetes.watch import COLLECT_FOR_LABEL

if TYPE_CHECKING:  # pragma: no cover
    import queue
    from collections.abc import Callable

    from mlrepro.results.rundir import HarnessRun
    from mlrepro.runners.kubernetes.api import Cluster
    from mlrepro.runners.kubernetes.watch import Event

COPY_BUDGET_S = 3600
"""Seconds the copy may take once the helper runs: 64 GiB (safe_extract's limit) at 18 MB/s."""
EXEC_IDLE_TIMEOUT_S = 120
"""Seconds without a single message from tar before the copy is given up (a stall, not a slow copy)."""
NODE_NAME_FIELD = "metadata.name"


class CollectError(RuntimeFailure):
    """The helper pod could not start, or tar failed in it."""


@dataclass(frozen=True)
class Placement:
    """Where the helper pod may run and as whom: ``node`` the run pod's node (None: unknown), ``arch`` its
    ``kubernetes.io/arch``, ``tolerations`` the run pod's (as Kubernetes dicts), ``uid`` its user."""

    node: str | None = None
    arch: str | None = None
    tolerations: tuple[dict[str, Any], ...] = ()
    uid: int | None = None


def helper_lifetime_s(start_timeout_s: float) -> int:
    """The helper pod's ``activeDeadlineSeconds``: it counts from the pod's start on its node, pulling the image
    included, so the start timeout plus the copy budget (seconds)."""
    return int(math.ceil(start_timeout_s)) + COPY_BUDGET_S


def helper_pod(run_id: str, claim: str, image: str, placement: Placement = Placement(), *,
               lifetime_s: int = COPY_BUDGET_S) -> dict[str, Any]:
    """The helper pod that mounts ``claim`` read-only at /results (Pod Security "restricted"), placed as
    ``placement`` says, ending by itself after ``lifetime_s`` seconds."""
    security: dict[str, Any] = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    if placement.uid is not None:
        security |= {"runAsUser": placement.uid, "runAsGroup": placement.uid}
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "activeDeadlineSeconds": lifetime_s,
        "terminationGracePeriodSeconds": 1,
        "securityContext": security,
        "containers": [{
            "name": "collect",
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            "command": ["sleep", str(lifetime_s)],
            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
            "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}},
            "volumeMounts": [{"name": "results", "mountPath": "/results", "readOnly": True}],
        }],
        "volumes": [{"name": "results", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}],
    }
    if placement.arch:
        spec["nodeSelector"] = {"kubernetes.io/arch": placement.arch}
    if placement.node:
        spec["affinity"] = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 100,
            "preference": {"matchFields": [{"key": NODE_NAME_FIELD, "operator": "In", "values": [placement.node]}]},
        }]}}
    if placement.tolerations:
        spec["tolerations"] = [dict(t) for t in placement.tolerations]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{run_id}-collect-{secrets.token_hex(2)}",
            "labels": {"app.kubernetes.io/name": "mlrepro", "app.kubernetes.io/component": "collector",
                       "app.kubernetes.io/managed-by": "mlrepro", COLLECT_FOR_LABEL: run_id},
        },
        "spec": spec,
    }


def fetch_from_claim(cluster: Cluster, events: queue.SimpleQueue[Event], run_id: str, claim: str, image: str,
                     dest: Path, *, start_timeout_s: float, placement: Placement = Placement(),
                     progress: Callable[[str], None] = lambda _m: None) -> HarnessRun:
    """Copy ``<claim>/<run id>`` to ``dest`` through a helper pod and verify it. ``events``: the Monitor queue
    of the helper's pod events (key ``collect:<run id>``); ``start_timeout_s``: seconds the helper may take to
    run. Raises CollectError, KubernetesError (AdmissionRefused when the helper pod is refused),
    UnsafeArchiveError, ChecksumError; the helper pod is deleted whatever happens."""
    from mlrepro.runners.errors import ArchiveError
    from mlrepro.runners.safe_extract import safe_extract

    pod = helper_pod(run_id, claim, image, placement, lifetime_s=helper_lifetime_s(start_timeout_s))
    name = pod["metadata"]["name"]
    cluster.create_pod(pod)
    try:
        _wait_running(events, name, start_timeout_s)
        if _run(cluster, name, ["test", "-d", f"/results/{run_id}"]) == 1:   # by its exit status: any locale
            raise CollectError(f"run {run_id} wrote no results on claim {claim} ({run_id}/ is missing)")
        progress(f"copying results from claim {claim} (helper pod {name})")
        out = ExecStream(cluster.exec_stream(name, ["tar", "cf", "-", "-C", "/results", run_id]),
                         EXEC_IDLE_TIMEOUT_S)
        try:
            safe_extract(out.stdout(), dest, strip_components=1)
            out.drain()                  # the rest: tar's end padding, then its exit status
        except ExecStalled as exc:
            raise CollectError(f"the copy from helper pod {name} stalled: {exc}") from None
        except ArchiveError:
            if out.received:             # tar sent an archive and it was refused (unsafe, too big): that is why
                raise
            out.drain()                  # nothing came: tar's own failure (below) says more than "an empty stream"
        finally:
            out.close()
        code = out.exit_code
        if code != 0:
            detail = [line for line in out.stderr.strip().splitlines() if line.strip()]
            if code is None:
                why = out.failure or "the exec ended without tar's exit status"
                raise CollectError(f"tar in helper pod {name} did not finish: {why}")
            raise CollectError(f"tar in helper pod {name} failed (exit {code})"
                               + (f": {detail[-1]}" if detail else ""))
    finally:
        cluster.delete("Pod", name, propagation="Background")
    return verify_results(dest, run_id)


def _run(cluster: Cluster, pod: str, command: list[str]) -> int | None:
    """Run a short command in the helper pod; its exit status (None: it did not run to one)."""
    out = ExecStream(cluster.exec_stream(pod, command), EXEC_IDLE_TIMEOUT_S)
    try:
        out.drain()
    except ExecStalled as exc:
        raise CollectError(f"{' '.join(command)} in helper pod {pod} stalled: {exc}") from None
    finally:
        out.close()
    return out.exit_code


def _wait_running(events: queue.SimpleQueue[Event], name: str, timeout_s: float) -> None:
    import queue as queue_mod

    deadline = time.monotonic() + timeout_s
    last = None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            why = f": {last.stuck}" if last is not None and last.stuck else ""
            raise CollectError(f"helper pod {name} did not start in {timeout_s:.0f} s{why}")
        try:
            event = events.get(timeout=remaining)
        except queue_mod.Empty:
            continue
        if event.type == "ERROR":
            raise CollectError(f"cannot follow helper pod {name}: {event.error}")
        if (event.obj.get("metadata") or {}).get("name") != name:
            continue
        if event.type == "DELETED":
            raise CollectError(f"helper pod {name} was deleted before it started")
        last = pod_state(event.obj)
        if last.phase == "Running":
            return
        if last.phase in ("Succeeded", "Failed") or last.fatal:
            raise CollectError(f"helper pod {name} ended before the copy: {last.describe()}")
