"""One cluster run's state from its events (no API server: the clock is passed in), for the cases the stand-in
tests do not reach: a Job that fails without a pod, a deadline passed while pending, the pending timeout, a
Job deleted by someone else, a controller that never ends the Job, a Job that makes no pod (its FailedCreate
events, or none)."""

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
    assert t.next_timer(now=0) == 30                       # no pod yet: its events are read after 30 s
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


def failed_create(message: str, count: int = 1, when: str = "2026-01-01T00:00:05Z") -> dict:
    return {"metadata": {"name": "r1.1", "resourceVersion": "7"}, "type": "Warning", "reason": "FailedCreate",
            "message": f"Error creating: {message}", "count": count, "lastTimestamp": when,
            "involvedObject": {"kind": "Job", "name": "r1"}}


def test_no_pod_for_the_pending_timeout_reads_the_events_and_fails_with_the_refusal():
    t = RunTracker("r1", "r1", pending_timeout_s=30, backstop_s=None, now=0)
    t.on_event(Event("Job", "ADDED", job()), now=1)
    assert t.on_timer(now=29).read_events is False
    step = t.on_timer(now=30)
    assert step.read_events and step.outcome is None
    quota = 'pods "r1-x" is forbidden: exceeded quota: gpus, requested: requests.nvidia.com/gpu=1, used: ' \
            "requests.nvidia.com/gpu=8, limited: requests.nvidia.com/gpu=8"
    events = [failed_create("pods \"r1-w\" is forbidden: an older message", when="2026-01-01T00:00:01Z"),
              failed_create(quota, count=4)]
    outcome = t.on_events(events, now=31).outcome
    assert outcome is not None and outcome.status == RunStatus.failed and outcome.exit_code is None
    assert outcome.message == ("Job r1 made no pod in 31 s: the Job controller cannot create its pod (FailedCreate, "
                               f"5 attempts): refused by ResourceQuota gpus: {quota} (free quota in the namespace, or "
                               "lower the profile's resources)")


def test_no_pod_and_no_failed_create_event_waits_on_and_says_so_once():
    t = RunTracker("r1", "r1", pending_timeout_s=30, backstop_s=None, now=0)
    t.on_event(Event("Job", "ADDED", {**job(), "spec": {"suspend": True}}), now=1)
    assert t.on_timer(now=30).read_events
    first = t.on_events([], now=30)
    assert first.outcome is None and first.messages == ["Job r1: no pod after 30 s (it is suspended (queued?)); "
                                                        "still waiting"]
    assert t.next_timer(now=30) == 30                    # asked again after another pending timeout
    assert t.on_timer(now=60).read_events and t.on_events([], now=60).messages == []
    t.on_event(Event("Pod", "ADDED", pod("r1-a")), now=61)
    assert t.next_timer(now=61) is None                  # a pod came: nothing more to time
