"""Pods that admission refuses: the Job's pod (the run fails with the FailedCreate event's message once no pod has
come for the pending timeout, instead of waiting out the Job's deadline), and the helper pod of collect (403:
who refused it, RBAC or quota or Pod Security or a LimitRange, said from the Status the API server returned)."""

from __future__ import annotations

import re
import shutil

import pytest
from policies import LimitRangeMin, PodSecurity, RbacDenial, ResourceQuota, restricted_checks
from typer.testing import CliRunner

from mlrepro.cli.main import app

cli = CliRunner()


def host_users(pod: dict) -> str | None:
    """A Pod Security level stricter than "restricted" (as a later version of the standard may be: user
    namespaces), which mlrepro's pods do not meet."""
    return None if pod["spec"].get("hostUsers") is False else "hostUsers != false (pod must set spec.hostUsers=false)"


STRICTER = PodSecurity(level="restricted:v1.99", checks=[*restricted_checks(), host_users])


@pytest.mark.parametrize("rule, refusal", [
    (ResourceQuota("compute", "requests.cpu", "500m"),
     "refused by ResourceQuota compute: pods \"{pod}\" is forbidden: exceeded quota: compute, requested: "
     "requests.cpu=1, used: requests.cpu=0, limited: requests.cpu=500m (free quota in the namespace, or lower the "
     "profile's resources)"),
    (STRICTER,
     "refused by Pod Security admission (restricted:v1.99): pods \"{pod}\" is forbidden: violates PodSecurity "
     "\"restricted:v1.99\": hostUsers != false (pod must set spec.hostUsers=false) (the namespace's "
     "pod-security.kubernetes.io/enforce label; mlrepro's pods meet \"restricted\")"),
], ids=["quota", "pod-security"])
def test_a_pod_refused_at_admission_fails_the_run_with_the_event_message(kube, launch, quick_sets, rule, refusal):
    kube.standin.admission[:] = [rule]
    messages: list[str] = []
    (run,) = launch(sets=[*quick_sets, "job.deadline_seconds=60"], messages=messages, pending_timeout_s=0.5).runs
    assert run.status == "failed" and run.exit_code is None
    m = re.fullmatch(rf"Job {run.run_id} made no pod in \d+ s: the Job controller cannot create its pod "
                     r"\(FailedCreate(?:, (\d+) attempts)?\): (.*)", run.message)
    assert m is not None, run.message
    pod = re.search(r'pods "([^"]+)"', m.group(2)).group(1)
    assert pod.startswith(f"{run.run_id}-") and m.group(2) == refusal.format(pod=pod)
    assert kube.objects("jobs") == [] and kube.objects("pods") == []     # given up: the Job is deleted
    events = kube.objects("events")
    assert events and all(e["reason"] == "FailedCreate" and e["involvedObject"]["kind"] == "Job" for e in events)


def test_the_job_is_waited_for_when_it_has_no_failed_create_event(kube, launch, quick_sets):
    """A Job with no pod and no FailedCreate event (a controller that is slow, a queue) is not given up."""
    from kubelet import Ctx, harness_job

    async def slow_controller(ctx: Ctx) -> None:
        while not [e for e in ctx.kubelet.standin.requests_log if e.resource == "events"]:
            await ctx.pause(0.05)              # until the runner has looked at the Job's events once
        await harness_job(ctx)

    kube.scenario(slow_controller)
    messages: list[str] = []
    (run,) = launch(sets=quick_sets, messages=messages, pending_timeout_s=0.5).runs
    assert run.status == "succeeded", run.message
    told = [m for m in messages if "no pod after" in m]
    assert len(told) == 1 and "no FailedCreate event" in told[0] and told[0].endswith("still waiting")


@pytest.mark.parametrize("setup, says", [
    (lambda s: s.rbac_denials.append(RbacDenial("", "pods", "create")),
     'forbidden by RBAC: pods is forbidden: User "system:serviceaccount:bench:mlrepro-launcher" cannot create '
     'resource "pods" in API group "" in the namespace "bench" (the Role in manifests/rbac.yaml lists what mlrepro '
     "needs)"),
    (lambda s: s.admission.append(ResourceQuota("pods", "count/pods", "0")),
     'refused by ResourceQuota pods: pods "{pod}" is forbidden: exceeded quota: pods, requested: count/pods=1, '
     "used: count/pods=0, limited: count/pods=0 (free quota in the namespace, or lower the profile's resources)"),
    (lambda s: s.admission.__setitem__(slice(None), [STRICTER]),
     'refused by Pod Security admission (restricted:v1.99): pods "{pod}" is forbidden: violates PodSecurity '
     '"restricted:v1.99": hostUsers != false (pod must set spec.hostUsers=false) (the namespace\'s '
     'pod-security.kubernetes.io/enforce label; mlrepro\'s pods meet "restricted")'),
    (lambda s: s.admission.append(LimitRangeMin("memory", "64Mi")),
     'refused by a LimitRange: pods "{pod}" is forbidden: minimum memory usage per Container is 64Mi, but request '
     "is 32Mi (the namespace's LimitRange bounds each container's requests and limits)"),
], ids=["rbac", "quota", "pod-security", "limitrange"])
def test_a_refused_helper_pod_says_who_refused_it(kube, launch, quick_sets, tmp_path, setup, says):
    (run,) = launch(sets=quick_sets).runs
    assert run.status == "succeeded"
    shutil.rmtree(kube.state_dir / "runs" / run.run_id / "results")     # only the claim has the results now
    kube.server.call(lambda: setup(kube.standin))
    out = cli.invoke(app, ["collect", run.run_id, "--into", str(tmp_path / "sub"), "--submitter", "Acme"])
    assert out.exit_code == 1
    (line,) = out.stderr.strip().splitlines()
    m = re.fullmatch(rf"mlrepro: error: create Pod ({run.run_id}-collect-[0-9a-f]{{4}}): (.*)", line)
    assert m is not None, line
    assert m.group(2) == says.format(pod=m.group(1))
