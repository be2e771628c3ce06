"""The state of one run on a cluster, fed by watch events: what to tell the user, and when the run is over.

Pure logic (no API calls, the clock passed in), so each diagnosis is a plain unit of behaviour:
:meth:`RunTracker.on_event` takes a Job or pod event and returns progress lines and, once known, the outcome;
:meth:`RunTracker.on_timer` gives up on a pod that has been unable to start for ``pending_timeout_s``, and when
the Job has made no pod at all for that long asks for its events (:meth:`RunTracker.on_events`): a pod that
admission refused (Pod Security, a ResourceQuota, a LimitRange, a webhook) never exists, and the Job has no
condition to say so, only FailedCreate events; without one the Job may be queued (suspended) and is waited for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlrepro.runners.base import RunOutcome, RunStatus
from mlrepro.runners.kubernetes.admission import failed_create
from mlrepro.runners.kubernetes.diagnose import PodState, job_finished, job_outcome, pod_state, stuck_outcome
from mlrepro.runners.kubernetes.watch import Event


@dataclass
class Step:
    messages: list[str] = field(default_factory=list)
    outcome: RunOutcome | None = None
    refresh_pods: bool = False
    """The Job ended: read its pods once more before judging (their last update may still be in flight)."""
    read_events: bool = False
    """No pod after the pending timeout: read the Job's events and pass them to :meth:`RunTracker.on_events`."""


class RunTracker:
    def __init__(self, run_id: str, job_name: str, pending_timeout_s: float, backstop_s: float | None,
                 now: float) -> None:
        self.run_id, self.job_name = run_id, job_name
        self.pending_timeout_s = pending_timeout_s
        self.backstop_at = now + backstop_s if backstop_s else None
        self.job: dict[str, Any] | None = None
        self.pods: dict[str, PodState] = {}
        self._told: dict[str, str] = {}
        self._stuck_since: dict[str, float] = {}
        self._disruptions_told: set[str] = set()
        self.job_seen = False
        self._started = now
        self._no_pod_since: float | None = now      # until the first pod: when the wait for one (re)started
        self._no_pod_told = False

    # ---- events -----------------------------------------------------------------------------------------
    def on_event(self, event: Event, now: float) -> Step:
        step = Step()
        if event.type == "ERROR":
            step.messages.append(f"watch interrupted ({event.error}); resuming")
            return step
        meta = event.obj.get("metadata") or {}
        if event.kind == "Job":
            if meta.get("name") != self.job_name:
                return step
            if event.type == "DELETED":
                if self.job is None or not job_finished(self.job):
                    step.outcome = RunOutcome(RunStatus.cancelled, None,
                                              f"Job {self.job_name} was deleted before it ended")
                return step
            self.job, self.job_seen = event.obj, True
            if job_finished(event.obj):
                step.refresh_pods = True
            return step
        if event.kind == "Pod":
            if event.type == "DELETED":
                self._stuck_since.pop(meta.get("name", ""), None)
                return step
            self._pod(pod_state(event.obj), now, step)
        return step

    def set_pods(self, pods: list[dict[str, Any]], now: float) -> Step:
        """The Job's pods as listed after it ended; then the outcome."""
        step = Step()
        for obj in pods:
            self._pod(pod_state(obj), now, step)
        if self.job is not None:
            step.outcome = job_outcome(self.job, list(self.pods.values()))
        return step

    def _pod(self, state: PodState, now: float, step: Step) -> None:
        self.pods[state.name] = state
        self._no_pod_since = None
        if self._told.get(state.name) != state.key:
            self._told[state.name] = state.key
            step.messages.append(state.describe())
        if state.disrupted and state.name not in self._disruptions_told:
            self._disruptions_told.add(state.name)
            step.messages.append(f"pod {state.name} was disrupted ({state.disrupted}): the Job retries the run; "
                                 "this attempt does not count")
        if state.stuck and state.phase == "Pending":
            since = self._stuck_since.setdefault(state.name, now)
            if state.fatal:
                step.outcome = stuck_outcome(state, now - since)
        else:
            self._stuck_since.pop(state.name, None)

    # ---- time -------------------------------------------------------------------------------------------
    def next_timer(self, now: float) -> float | None:
        """Seconds until :meth:`on_timer` has something to decide (None: nothing pending)."""
        times = [since + self.pending_timeout_s for since in self._stuck_since.values()]
        if self._no_pod_since is not None:
            times.append(self._no_pod_since + self.pending_timeout_s)
        if self.backstop_at is not None:
            times.append(self.backstop_at)
        return max(0.0, min(times) - now) if times else None

    def on_timer(self, now: float) -> Step:
        step = Step()
        for name, since in list(self._stuck_since.items()):
            if now - since >= self.pending_timeout_s:
                step.outcome = stuck_outcome(self.pods[name], now - since)
                return step
        if self._no_pod_since is not None and now - self._no_pod_since >= self.pending_timeout_s:
            step.read_events = True
            self._no_pod_since = now                     # asked again after another pending timeout
            return step
        if self.backstop_at is not None and now >= self.backstop_at:
            step.outcome = RunOutcome(RunStatus.timeout, None, f"Job {self.job_name} did not end by its deadline "
                                                               "(is the Job controller running?)")
        return step

    def on_events(self, events: list[dict[str, Any]], now: float, unreadable: str = "") -> Step:
        """The Job's events, read because it has made no pod for the pending timeout: a FailedCreate event ends
        the run with its message (the Job is then deleted by the runner); none: the wait goes on, said once.
        ``unreadable``: why the events could not be read (the wait goes on too)."""
        step = Step()
        if self.pods:                                    # a pod came meanwhile
            return step
        refused = failed_create(events)
        waited = now - self._started
        if refused is not None:
            step.outcome = RunOutcome(RunStatus.failed, None, f"Job {self.job_name} made no pod in {waited:.0f} s: "
                                                              f"{refused.describe()}")
        elif not self._no_pod_told:
            self._no_pod_told = True
            suspended = bool(((self.job or {}).get("spec") or {}).get("suspend"))
            why = ("it is suspended (queued?)" if suspended else f"its events cannot be read: {unreadable}"
                   if unreadable else "no FailedCreate event: its controller may be slow")
            step.messages.append(f"Job {self.job_name}: no pod after {waited:.0f} s ({why}); still waiting")
        return step
