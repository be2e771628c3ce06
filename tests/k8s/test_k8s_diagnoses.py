"""How a run on the cluster ends when it does not end well: one diagnosis per way, as users see it (the run's
status, exit code and one-line message; live lines while it goes)."""

from __future__ import annotations

import pytest
from kubelet import deadline_exceeded, evicted_then_harness, exits, oom_killed, stuck


def one_run(launch, sets, **options):
    messages: list[str] = []
    result = launch(sets=sets, messages=messages, **options)
    (run,) = result.runs
    return run, messages


def test_unschedulable_ends_with_the_schedulers_message(kube, launch, quick_sets):
    msg = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu. preemption: 0/3 nodes are available."
    kube.scenario(stuck("unschedulable", msg))
    run, messages = one_run(launch, quick_sets, pending_timeout_s=0.5)
    assert run.status == "failed" and run.exit_code is None
    assert run.message.startswith(f"pod {run.run_id}-") and "did not start in" in run.message
    assert run.message.endswith(f"unschedulable: {msg}")
    assert any(f"Pending (unschedulable: {msg})" in m for m in messages)   # told live, before giving up
    assert kube.objects("jobs") == [] and kube.objects("pods") == []     # given up: nothing left pending


@pytest.mark.parametrize("reason", ["ErrImagePull", "ImagePullBackOff"])
def test_image_pull_failure(kube, launch, quick_sets, reason):
    detail = 'failed to pull "registry.test/mlrepro/bench@sha256:abab": 401 Unauthorized'
    kube.scenario(stuck(reason, detail))
    run, _ = one_run(launch, quick_sets, pending_timeout_s=0.5)
    assert run.status == "failed"
    assert f"cannot pull image registry.test/mlrepro/bench@sha256:{'ab' * 32}: {reason}: {detail}" in run.message


def test_invalid_image_name_fails_at_once(kube, launch, quick_sets):
    kube.scenario(stuck("InvalidImageName", 'couldn\'t parse image reference "x@@y"'))
    run, _ = one_run(launch, quick_sets, pending_timeout_s=3600)   # no waiting can fix it
    assert run.status == "failed" and "InvalidImageName" in run.message and " in " not in run.message.split(":")[0]


def test_oom_killed(kube, launch, quick_sets):
    kube.scenario(oom_killed())
    run, messages = one_run(launch, quick_sets)
    assert run.status == "failed" and run.exit_code == 137
    assert run.message == "killed: out of memory (OOMKilled; raise resources.limits.memory)"
    assert any("Failed (exit 137 (killed by signal 9), OOMKilled)" in m for m in messages)


def test_deadline_exceeded(kube, launch, quick_sets):
    kube.scenario(deadline_exceeded())
    run, _ = one_run(launch, quick_sets + ["job.deadline_seconds=2"])
    assert run.status == "timeout" and run.exit_code is None
    assert run.message == f"deadline of 2 s exceeded (Job {run.run_id})"


@pytest.mark.parametrize("code,status,name", [(4, "invalid", "INVALID"), (1, "failed", "RUNTIME_FAILURE"),
                                              (130, "cancelled", "INTERRUPTED")])
def test_harness_exit_codes_as_on_the_local_path(kube, launch, quick_sets, code, status, name):
    kube.scenario(exits(code, "harness: Offline performance", f"harness: the last line before exit {code}"))
    run, _ = one_run(launch, quick_sets)
    assert run.status == status and run.exit_code == code
    assert run.message == f"harness exit {code} ({name}): harness: the last line before exit {code}"


def test_bad_spec_from_the_real_harness_fails_the_job_at_once(kube, launch, quick_sets):
    # resnet50 without a model file: the harness exits 3 (BAD_SPEC); the podFailurePolicy fails the Job, no retry
    run, _ = one_run(launch, [*quick_sets, "benchmark.workload=resnet50", "job.retries=3"])
    assert run.status == "failed" and run.exit_code == 3
    assert run.message.startswith("harness exit 3 (BAD_SPEC): ") and "model" in run.message.lower()
    (job,) = kube.objects("jobs")
    assert job["status"]["failed"] == 1     # one pod, not retries+1
    assert len([p for p in kube.objects("pods") if p["metadata"]["labels"].get("job-name") == run.run_id]) == 1


def test_evicted_pod_is_retried_and_not_counted(kube, launch, quick_sets):
    kube.scenario(evicted_then_harness())
    run, messages = one_run(launch, quick_sets)
    assert run.status == "succeeded" and run.exit_code == 0 and run.validity == "VALID"
    told = [m for m in messages if "was disrupted" in m]
    assert len(told) == 1 and "PreemptionByScheduler: Preempted in order to admit critical pod" in told[0]
    assert "this attempt does not count" in told[0]
    # the saved log is the counted attempt's, not the preempted one's
    log = (kube.state_dir / "runs" / run.run_id / "harness.log").read_text()
    assert "will be preempted" not in log and "VALID" in log
