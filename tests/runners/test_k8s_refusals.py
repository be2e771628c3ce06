"""Who refused a request or a pod, from the Status or event the API server wrote (pure functions): each refuser's
message form, as the Kubernetes source writes it, and the one line mlrepro makes of it."""

from __future__ import annotations

import pytest

from mlrepro.runners.kubernetes import admission as a


def status(message: str, code: int = 403, reason: str = "Forbidden", **details: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason,
            "message": message, "details": details}


@pytest.mark.parametrize("body, by, who", [
    (status('jobs.batch is forbidden: User "system:serviceaccount:ns:x" cannot create resource "jobs" in API group '
            '"batch" in the namespace "ns"', kind="jobs", group="batch"), a.RBAC, ""),
    (status('pods "p-1" is forbidden: User "u" cannot delete resource "pods" in API group "" in the namespace "ns"',
            kind="pods", name="p-1"), a.RBAC, ""),
    (status('persistentvolumeclaims "r-results" is forbidden: exceeded quota: storage, requested: '
            "requests.storage=1Gi, used: requests.storage=10Gi, limited: requests.storage=10Gi",
            kind="persistentvolumeclaims", name="r-results"), a.QUOTA, "storage"),
    (status('pods "p" is forbidden: [minimum cpu usage per Container is 100m, but request is 50m, maximum memory '
            "usage per Container is 128Mi, but limit is 256Mi]", kind="pods", name="p"), a.LIMIT_RANGE, ""),
    (status('pods "p" is forbidden: violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true)',
            kind="pods", name="p"), a.POD_SECURITY, "baseline:latest"),
    (status('admission webhook "validate.kyverno.svc-fail" denied the request: policy require-team: label team is '
            "required", code=400, reason="BadRequest"), a.WEBHOOK, "validate.kyverno.svc-fail"),
    (status('pods "p" is forbidden: admission webhook "v.gatekeeper.sh" denied the request: [images] not allowed',
            kind="pods", name="p"), a.WEBHOOK, "v.gatekeeper.sh"),
    (status("ValidatingAdmissionPolicy 'no-gpu' with binding 'no-gpu-b' denied request: GPUs need approval",
            code=422, reason="Invalid"), a.POLICY, "no-gpu"),
    (status('pods "p" is forbidden: something a custom plugin says', kind="pods", name="p"), a.OTHER, ""),
])
def test_the_status_says_who_refused(body, by, who):
    refusal = a.status_refusal(body)
    assert refusal is not None and (refusal.by, refusal.who) == (by, who)
    assert refusal.message == body["message"]
    assert ("manifests/rbac.yaml" in refusal.describe()) == (by == a.RBAC)      # RBAC is blamed only when it spoke


def test_a_prefix_that_is_not_the_details_is_not_trusted():
    body = status('pods "other" is forbidden: exceeded quota: q, requested: x', kind="pods", name="p")
    assert a.status_refusal(body) == a.Refusal(a.OTHER, body["message"])


def test_errors_that_are_no_refusal_are_left_alone():
    assert a.status_refusal(status('jobs.batch "x" not found', code=404, reason="NotFound")) is None
    assert a.status_refusal({"kind": "Table"}) is None
    assert a.failed_create([{"reason": "SuccessfulCreate", "type": "Normal", "message": "Created pod: p"}]) is None
