"""Results out of a PersistentVolumeClaim, as ``kubectl cp`` does it: a short-lived helper pod mounts the claim
read-only, ``tar`` runs in it over the ``pods/exec`` WebSocket, and the stream is extracted on the fly with
the safe extraction every fetch uses (no temporary copy: any size works), then verified against the harness's
checksum manifest. The helper pod is deleted in every case; it also ends by itself
(``activeDeadlineSeconds``) if this process dies first.

The helper runs the run's own image (the cluster can pull it; it has ``tar``) under Pod Security
"restricted": non-root (the image's user, who wrote the files), read-only root, no capabilities, no token.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlrepro.errors import RuntimeFailure
from mlrepro.runners.base import verify_results
from mlrepro.runners.kubernetes.diagnose import pod_state
from mlrepro.runners.kubernetes.watch import COLLECT_FOR_LABEL

if TYPE_CHECKING:  # pragma: no cover
    import queue

    from mlrepro.results.rundir import HarnessRun
    from mlrepro.runners.kubernetes.api import Cluster
    from mlrepro.runners.kubernetes.watch import Event

HELPER_LIFETIME_S = 900
EXEC_IDLE_TIMEOUT_S = 120
STDOUT, STDERR = 1, 2


class CollectError(RuntimeFailure):
    """The helper pod could not start, or tar failed in it."""


def helper_pod(run_id: str, claim: str, image: str, arch: str | None = None,
               uid: int | None = None) -> dict[str, Any]:
    """The helper pod that mounts ``claim`` read-only at /results (Pod Security "restricted")."""
    security: dict[str, Any] = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    if uid is not None:
        security |= {"runAsUser": uid, "runAsGroup": uid}
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "activeDeadlineSeconds": HELPER_LIFETIME_S,
        "terminationGracePeriodSeconds": 1,
        "securityContext": security,
        "containers": [{
            "name": "collect",
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            "command": ["sleep", str(HELPER_LIFETIME_S)],
            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
            "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}},
            "volumeMounts": [{"name": "results", "mountPath": "/results", "readOnly": True}],
        }],
        "volumes": [{"name": "results", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}],
    }
    if arch:
        spec["nodeSelector"] = {"kubernetes.io/arch": arch}
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
                     dest: Path, *, start_timeout_s: float, arch: str | None = None, uid: int | None = None,
                     progress: Callable[[str], None] = lambda _m: None) -> HarnessRun:
    """Copy ``<claim>/<run id>`` to ``dest`` through a helper pod and verify it. ``events``: the Monitor queue
    of the helper's pod events (key ``collect:<run id>``). Raises CollectError, KubernetesError,
    UnsafeArchiveError, ChecksumError; the helper pod is deleted whatever happens."""
    from mlrepro.runners.errors import ArchiveError
    from mlrepro.runners.safe_extract import safe_extract

    pod = helper_pod(run_id, claim, image, arch, uid)
    name = pod["metadata"]["name"]
    cluster.create_pod(pod)
    try:
        _wait_running(events, name, start_timeout_s)
        progress(f"copying results from claim {claim} (helper pod {name})")
        ws = cluster.exec_stream(name, ["tar", "cf", "-", "-C", "/results", run_id])
        errors: list[bytes] = []
        received = [0]
        try:
            safe_extract(_stdout_chunks(ws, errors, received), dest, strip_components=1)
            ws.run_forever(timeout=EXEC_IDLE_TIMEOUT_S)   # the rest (tar's end padding, then its exit status)
            errors.append(ws.read_channel(STDERR) or b"")
        except ArchiveError:
            if received[0]:              # tar sent an archive and it was refused (unsafe, too big): that is why
                raise
            # nothing came: tar's own failure (below) says more than "an empty stream"
        finally:
            ws.close()
        code = _returncode(ws)
        if code != 0:
            detail = b"".join(errors).decode("utf-8", "replace").strip().splitlines()
            missing = any("Cannot stat" in line or "No such file" in line for line in detail)
            if missing:
                raise CollectError(f"run {run_id} wrote no results on claim {claim} ({run_id}/ is missing)")
            raise CollectError(f"tar in helper pod {name} failed (exit {code})"
                               + (f": {detail[-1]}" if detail else ""))
    finally:
        cluster.delete("Pod", name, propagation="Background")
    return verify_results(dest, run_id)


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


def _stdout_chunks(ws: Any, errors: list[bytes], received: list[int]) -> Iterator[bytes]:
    """The exec's stdout as it arrives (its size added up in ``received[0]``); stderr kept (bounded) in
    ``errors``."""
    idle_since = time.monotonic()
    while True:
        open_ = ws.is_open()
        if open_:
            ws.update(timeout=5)
        out = ws.read_channel(STDOUT)
        err = ws.read_channel(STDERR)
        if err and sum(map(len, errors)) < 65536:
            errors.append(err)
        if out:
            idle_since = time.monotonic()
            received[0] += len(out)
            yield out
        elif not open_:
            return
        elif time.monotonic() - idle_since > EXEC_IDLE_TIMEOUT_S:
            raise CollectError(f"the copy stalled: no data for {EXEC_IDLE_TIMEOUT_S} s")


def _returncode(ws: Any) -> int:
    """tar's exit status from the exec's status channel (0 when the API server reports Success)."""
    try:
        code = ws.returncode
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        return 1
    return int(code) if code is not None else 1
