"""What a Job and its pods say about a run: live phase changes, and how it ended (pure functions on the
objects as the API server returns them, so every case is testable without a cluster).

Sources (kubernetes.io, Jobs and Pod lifecycle): a Job ends with condition ``Complete`` or ``Failed`` (reason
``DeadlineExceeded``, ``BackoffLimitExceeded`` or ``PodFailurePolicy``; ``FailureTarget`` comes first and is
final too); a pod that cannot be placed has ``PodScheduled=False`` with reason ``Unschedulable`` and the
scheduler's message; a container that cannot start waits with reason ``ErrImagePull``/``ImagePullBackOff``/
``InvalidImageName``/``CreateContainerConfigError``; one the kernel killed for memory terminates with reason
``OOMKilled``; an evicted or preempted pod has condition ``DisruptionTarget`` (the Job's podFailurePolicy
ignores it: the Job makes a new pod and the attempt does not count).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlrepro.render.podspec import CONTAINER_NAME
from mlrepro.runners.base import RunOutcome, RunStatus, exit_code_meaning, status_from_exit_code

STUCK_WAITING_REASONS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError",
                         "CreateContainerError", "ErrImageNeverPull")
FATAL_WAITING_REASONS = ("InvalidImageName", "ErrImageNeverPull")   # no retry can fix these


def conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``status.conditions`` by type."""
    return {c.get("type", ""): c for c in (obj.get("status") or {}).get("conditions") or []}


def _true(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    c = conditions(obj).get(kind)
    return c if c is not None and c.get("status") == "True" else None


def _container_status(pod: dict[str, Any]) -> dict[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return next((s for s in statuses if s.get("name") == CONTAINER_NAME), statuses[0] if statuses else {})


def _last_line(text: str) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


@dataclass(frozen=True)
class PodState:
    """One pod, summarised."""

    name: str
    phase: str                          # Pending | Running | Succeeded | Failed | Unknown
    node: str = ""
    stuck: str = ""                     # why it cannot start: "unschedulable: ...", "cannot pull image ...: ..."
    fatal: bool = False                 # stuck in a way no waiting can fix
    disrupted: str = ""                 # evicted / preempted: why
    exit_code: int | None = None
    reason: str = ""                    # terminated reason (OOMKilled, Error, Completed)
    message: str = ""                   # terminated message (the log tail: FallbackToLogsOnError)
    created: str = ""

    @property
    def key(self) -> str:
        """What changes when something worth telling the user changes."""
        return f"{self.phase}|{self.node}|{self.stuck}|{self.disrupted}|{self.exit_code}"

    def describe(self) -> str:
        """One line: ``pod X: Pending (unschedulable: 0/3 nodes ...)``."""
        detail = self.disrupted or self.stuck
        if not detail and self.phase == "Running" and self.node:
            detail = f"on node {self.node}"
        if not detail and self.exit_code is not None:
            detail = exit_code_meaning(self.exit_code) + (f", {self.reason}" if self.reason == "OOMKilled" else "")
        return f"pod {self.name}: {self.phase}" + (f" ({detail})" if detail else "")


def pod_state(pod: dict[str, Any]) -> PodState:
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    phase = status.get("phase") or "Pending"
    stuck, fatal, disrupted = "", False, ""
    scheduled = conditions(pod).get("PodScheduled")
    if phase == "Pending" and scheduled is not None and scheduled.get("status") == "False" \
            and scheduled.get("reason") == "Unschedulable":
        stuck = f"unschedulable: {scheduled.get('message') or 'no node fits'}"
    cs = _container_status(pod)
    waiting = (cs.get("state") or {}).get("waiting") or {}
    if waiting.get("reason") in STUCK_WAITING_REASONS:
        image = cs.get("image") or ((pod.get("spec") or {}).get("containers") or [{}])[0].get("image", "")
        what = "cannot pull image" if "Image" in waiting["reason"] else "cannot create the container for"
        stuck = f"{what} {image}: {waiting['reason']}" + (f": {waiting['message']}" if waiting.get("message") else "")
        fatal = waiting["reason"] in FATAL_WAITING_REASONS
    target = _true(pod, "DisruptionTarget")
    if target is not None:
        disrupted = f"{target.get('reason') or 'disrupted'}: {target.get('message') or 'the pod was disrupted'}"
    elif phase == "Failed" and status.get("reason") in ("Evicted", "Preempting", "Shutdown", "NodeShutdown"):
        disrupted = f"{status['reason']}: {status.get('message') or 'the node evicted the pod'}"
    terminated = (cs.get("state") or {}).get("terminated") or {}
    exit_code = terminated.get("exitCode")
    return PodState(name=meta.get("name", ""), phase=phase, node=(pod.get("spec") or {}).get("nodeName") or "",
                    stuck=stuck, fatal=fatal, disrupted=disrupted,
                    exit_code=int(exit_code) if exit_code is not None else None,
                    reason=terminated.get("reason") or "", message=_last_line(terminated.get("message") or ""),
                    created=meta.get("creationTimestamp") or "")


def job_finished(job: dict[str, Any]) -> bool:
    return any(_true(job, kind) for kind in ("Complete", "SuccessCriteriaMet", "Failed", "FailureTarget"))


def job_outcome(job: dict[str, Any], pods: list[PodState]) -> RunOutcome | None:
    """How the run ended, or None while the Job goes on. ``pods``: the Job's pods (any order)."""
    name = (job.get("metadata") or {}).get("name", "")
    counted = [p for p in pods if not p.disrupted]
    last = max(counted or pods, key=lambda p: (p.created, p.name), default=None)
    if _true(job, "Complete") or _true(job, "SuccessCriteriaMet"):
        return RunOutcome(RunStatus.succeeded, 0, last.message if last and last.message else "")
    failed = _true(job, "Failed") or _true(job, "FailureTarget")
    if failed is None:
        return None
    reason = failed.get("reason") or ""
    if reason == "DeadlineExceeded":
        deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
        where = ""
        if last is not None and (last.stuck or last.phase == "Pending"):
            where = f" while the pod was pending ({last.stuck or 'not started'})"
        return RunOutcome(RunStatus.timeout, None, f"deadline of {deadline} s exceeded (Job {name}){where}")
    if last is not None and last.exit_code is not None:
        if last.reason == "OOMKilled":
            return RunOutcome(RunStatus.failed, last.exit_code,
                              "killed: out of memory (OOMKilled; raise resources.limits.memory)")
        status = status_from_exit_code(last.exit_code)
        text = f"harness {exit_code_meaning(last.exit_code)}"
        return RunOutcome(status, last.exit_code, text + (f": {last.message}" if last.message else ""))
    if last is not None and last.stuck:
        return RunOutcome(RunStatus.failed, None, f"Job {name} failed ({reason}): {last.stuck}")
    return RunOutcome(RunStatus.failed, None, f"Job {name} failed: {reason or 'Failed'}: "
                                              f"{failed.get('message') or 'no message'}")


def stuck_outcome(state: PodState, waited_s: float) -> RunOutcome:
    """The diagnosis of a pod that never started (given up by mlrepro after ``waited_s``)."""
    how = "" if state.fatal else f" in {waited_s:.0f} s"
    return RunOutcome(RunStatus.failed, None, f"pod {state.name} did not start{how}: {state.stuck}")


# ---- a model server's pod (a Deployment's: restartPolicy Always) ---------------------------------------------
@dataclass(frozen=True)
class ServerPodState:
    """A model server's pod, summarised: ``pod`` as for a Job's, whether it is Ready (its readiness probe: the
    engine's health path), and why it cannot get there on its own (``crash``: CrashLoopBackOff or killed out of
    memory, with its restarts and last exit)."""

    pod: PodState
    ready: bool = False
    crash: str = ""
    restarts: int = 0

    @property
    def key(self) -> str:
        return f"{self.pod.key}|{self.ready}|{self.crash}|{self.restarts}"

    def describe(self) -> str:
        base = self.pod.describe()
        if self.ready:
            return base.replace(": Running", ": Running, ready", 1)
        return base + (f" ({self.crash})" if self.crash else "")


def server_pod_state(pod: dict[str, Any]) -> ServerPodState:
    """How a model server's pod stands (see :class:`ServerPodState`)."""
    state = pod_state(pod)
    ready = state.phase == "Running" and _true(pod, "Ready") is not None
    cs = _container_status(pod)
    restarts = int(cs.get("restartCount") or 0)
    waiting = (cs.get("state") or {}).get("waiting") or {}
    last = (cs.get("lastState") or {}).get("terminated") or {}
    crash = ""
    if last.get("reason") == "OOMKilled" or state.reason == "OOMKilled":
        crash = "killed: out of memory (OOMKilled; raise serve.resources.limits.memory)"
    elif waiting.get("reason") == "CrashLoopBackOff":
        code = last.get("exitCode")
        crash = (f"CrashLoopBackOff: it keeps crashing ({restarts} restart{'s' if restarts != 1 else ''}"
                 + (f", last {exit_code_meaning(int(code))}" if code is not None else "") + ")")
    return ServerPodState(pod=state, ready=ready, crash=crash, restarts=restarts)
