"""One cluster run's state from its events (no API server: the clock is passed in), for the cases the stand-in
tests do not reach: a Job that fails without a pod, a deadline passed while pending, the pending timeout, a
Job deleted by someone else, a controller that never ends the Job."""

from __future__ import annotations

from mlrepro.runners.base import RunStatus
from mlrepro.runners.kubernetes.tracker import RunTracker
from mlrepro.runners.kubernetes.watch import Event


def job(name: str = "r1", **conditions: str) -> dict:
    return {"metadata": {"name": name}, "spec": {"activeDeadlineSeconds": 60},
            "status": {"conditions": [{"type": t, "status": "True", "reason": reason, "message": f"{t} because"}
                                      for t, reason in conditions.items()]}}


def pod(name: str, phase: str = "Pending", created: str = "2026-01-01T00:00:00Z", **status: object) -> dict:
    return {"metadata": {"name": name, "creationTimestamp": created}, "spec": {"containers": [{"image": "img"}]},
            "status": {"phase": phase, **status}}


UNSCHEDULABLE = {"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                 "message": "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity."}]}


def test_a_job_that_failed_without_any_pod():
    t = RunTracker("r1", "r1", pending_timeout_s=600, backstop_s=None, now=0)
    step = t.on_event(Event("Job", "MODIFIED", job(Failed="BackoffLimitExceeded")), now=1)
    assert step.refresh_pods and step.outcome is None      # the pods are read once more before judging
    outcome = t.set_pods([], now=1).outcome
    assert outcome is not None and outcome.status == RunStatus.failed
    assert outcome.message == "Job r1 failed: BackoffLimitExceeded: Failed because"


def test_deadline_passed_while_the_pod_was_pending():
    t = RunTracker("r1", "r1", pending_timeout_s=600, backstop_s=None, now=0)
    t.on_event(Event("Pod", "MODIFIED", pod("r1-a", **UNSCHEDULABLE)), now=1)
    t.on_event(Event("Job", "MODIFIED", job(Failed="DeadlineExceeded")), now=60)
    outcome = t.set_pods([pod("r1-a", **UNSCHEDULABLE)], now=60).outcome
    assert outcome is not None and outcome.status == RunStatus.timeout
    assert outcome.message == ("deadline of 60 s exceeded (Job r1) while the pod was pending (unschedulable: 0/2 "
                               "nodes are available: 2 node(s) didn't match Pod's node affinity.)")


def test_pending_timeout_counts_from_when_the_pod_got_stuck():
    t = RunTracker("r1", "r1", pending_timeout_s=30, backstop_s=None, now=0)
    assert t.next_timer(now=0) is None                     # nothing to time yet
    step = t.on_event(Event("Pod", "ADDED", pod("r1-a", **UNSCHEDULABLE)), now=10)
    assert step.messages == ["pod r1-a: Pending (unschedulable: 0/2 nodes are available: 2 node(s) didn't match "
                             "Pod's node affinity.)"]
    assert t.next_timer(now=15) == 25
    assert t.on_timer(now=39).outcome is None
    outcome = t.on_timer(now=40).outcome
    assert outcome is not None and outcome.message.startswith("pod r1-a did not start in 30 s: unschedulable: ")
    # a pod that got scheduled is no longer timed
    t2 = RunTracker("r1", "r1", pending_timeout_s=30, backstop_s=None, now=0)
    t2.on_event(Event("Pod", "ADDED", pod("r1-a", **UNSCHEDULABLE)), now=0)
    t2.on_event(Event("Pod", "MODIFIED", pod("r1-a", "Running")), now=5)
    assert t2.next_timer(now=6) is None


def test_a_job_deleted_by_someone_else_is_a_cancelled_run():
    t = RunTracker("r1", "r1", pending_timeout_s=600, backstop_s=None, now=0)
    t.on_event(Event("Job", "ADDED", job()), now=0)
    outcome = t.on_event(Event("Job", "DELETED", job()), now=1).outcome
    assert outcome is not None and outcome.status == RunStatus.cancelled
    assert outcome.message == "Job r1 was deleted before it ended"


def test_the_backstop_when_no_controller_ends_the_job():
    t = RunTracker("r1", "r1", pending_timeout_s=600, backstop_s=360, now=0)
    assert t.next_timer(now=100) == 260
    outcome = t.on_timer(now=360).outcome
    assert outcome is not None and outcome.status == RunStatus.timeout
    assert "did not end by its deadline" in outcome.message


def test_other_jobs_and_watch_errors_do_not_end_the_run():
    t = RunTracker("r1", "r1", pending_timeout_s=600, backstop_s=None, now=0)
    assert t.on_event(Event("Job", "MODIFIED", job("r2", Complete="")), now=1).outcome is None
    step = t.on_event(Event("Job", "ERROR", {}, "watch jobs: 500 etcd unavailable"), now=2)
    assert step.outcome is None and step.messages == ["watch interrupted (watch jobs: 500 etcd unavailable); resuming"]
