"""Who refused a request or a Job's pod, and what to tell the user (pure functions on what the API server says).

A 403 from the API server is not always RBAC: authorization and admission both answer ``403 Forbidden`` with a
Status built by ``apierrors.NewForbidden`` (k8s.io/apimachinery/pkg/api/errors): ``reason: Forbidden``,
``details: {name, group, kind}`` and the message ``<resource>[.<group>] ["<name>"] is forbidden: <cause>``. Only
the cause says who refused; each refuser writes it in a fixed form, in the Kubernetes source:

- RBAC (any authorizer): ``User "<user>" cannot <verb> resource "<resource>" in API group "<group>" ...``
  (k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go, ``forbiddenMessage``);
- ResourceQuota: ``exceeded quota: <name>, requested: ..., used: ..., limited: ...``
  (k8s.io/apiserver/pkg/admission/plugin/resourcequota/controller.go);
- LimitRange: ``minimum|maximum <resource> usage per <Container|Pod|PersistentVolumeClaim> is ...`` and
  ``<resource> max limit to request ratio per ...`` (plugin/pkg/admission/limitranger/admission.go);
- Pod Security admission: ``violates PodSecurity "<level>:<version>": ...``
  (k8s.io/pod-security-admission/admission/admission.go).

Admission webhooks answer with their own code (often 403, also 400/422): ``admission webhook "<name>" denied the
request: ...`` (k8s.io/apiserver/pkg/admission/plugin/webhook/errors/statuserror.go); ValidatingAdmissionPolicy:
``ValidatingAdmissionPolicy '<name>' with binding '<binding>' denied request: ...``.

So the Status is read as an object: its ``details`` give the ``<resource> "<name>" is forbidden: `` prefix, and the
cause that follows is matched against those forms at its start only. A pod the Job controller cannot create
leaves no Status for mlrepro, only Warning events ``FailedCreate`` on the Job with the message ``Error creating:
<the same error>`` (k8s.io/kubernetes/pkg/controller/controller_utils.go, ``CreatePods``), read the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mlrepro.image.errors import one_line

RBAC, QUOTA, LIMIT_RANGE, POD_SECURITY, WEBHOOK, POLICY, OTHER = (
    "rbac", "quota", "limitrange", "podsecurity", "webhook", "policy", "other")

ROLE_HINT = "the Role in manifests/rbac.yaml lists what mlrepro needs"
MESSAGE_LIMIT = 600          # characters of the server's message kept (a Pod Security refusal lists every check)
FAILED_CREATE = "FailedCreate"
_ERROR_CREATING = "Error creating: "

_FORBIDDEN = re.compile(r'^(?P<resource>[a-z0-9.-]+)(?: "(?P<name>[^"]*)")? is forbidden: (?P<cause>.*)$', re.S)
_CAUSES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (RBAC, re.compile(r'^User "(?P<user>[^"]*)" cannot (?P<verb>\S+) resource "(?P<what>[^"]*)"')),
    (QUOTA, re.compile(r"^exceeded quota: (?P<quota>[^,]+),")),
    (LIMIT_RANGE, re.compile(r"^\[?(?:(?:minimum|maximum) \S+ usage per (?:Container|Pod|PersistentVolumeClaim) is"
                             r"|\S+ max limit to request ratio per )")),
    (POD_SECURITY, re.compile(r'^violates PodSecurity "(?P<level>[^"]*)"')),
)
_WEBHOOK = re.compile(r'^admission webhook "(?P<webhook>[^"]*)" denied the request')
_POLICY = re.compile(r"^ValidatingAdmissionPolicy '(?P<policy>[^']*)' with binding '[^']*' denied request")


@dataclass(frozen=True)
class Refusal:
    """Who refused (``by``: one of RBAC .. OTHER), the server's own words (``message``, one line) and, where the
    message names it, the quota, policy level or webhook (``who``)."""

    by: str
    message: str
    who: str = ""

    def describe(self) -> str:
        """One line: who refused, the server's message, what to change."""
        if self.by == RBAC:
            return f"forbidden by RBAC: {self.message} ({ROLE_HINT})"
        if self.by == QUOTA:
            return (f"refused by ResourceQuota {self.who}: {self.message} (free quota in the namespace, or lower the "
                    "profile's resources)")
        if self.by == LIMIT_RANGE:
            return (f"refused by a LimitRange: {self.message} (the namespace's LimitRange bounds each container's "
                    "requests and limits)")
        if self.by == POD_SECURITY:
            return (f"refused by Pod Security admission ({self.who}): {self.message} (the namespace's "
                    "pod-security.kubernetes.io/enforce label; mlrepro's pods meet \"restricted\")")
        if self.by == WEBHOOK:
            return f"refused by admission webhook {self.who}: {self.message}"
        if self.by == POLICY:
            return f"refused by ValidatingAdmissionPolicy {self.who}: {self.message}"
        return f"forbidden: {self.message}"


def refusal_of(message: str, kind: str | None = None, name: str | None = None) -> Refusal | None:
    """The refusal an API error message states, or None when it is not one of the forms above. ``kind``/``name``
    (a Status's ``details``) must then be the resource and name the message's prefix gives."""
    text = one_line(message, MESSAGE_LIMIT)
    for by, pattern in ((WEBHOOK, _WEBHOOK), (POLICY, _POLICY)):
        m = pattern.match(text)
        if m:
            return Refusal(by, text, m.group(1))
    m = _FORBIDDEN.match(text)
    if m is None:
        return None
    if kind and m.group("resource").split(".", 1)[0] != kind:
        return None
    if name is not None and (m.group("name") or "") != name:
        return None
    cause = m.group("cause")
    for by, pattern in ((WEBHOOK, _WEBHOOK), (POLICY, _POLICY)):   # a webhook's error wrapped by NewForbidden
        w = pattern.match(cause)
        if w:
            return Refusal(by, text, w.group(1))
    for by, pattern in _CAUSES:
        c = pattern.match(cause)
        if c:
            who = c.groupdict().get("quota") or c.groupdict().get("level") or ""
            return Refusal(by, text, who.strip())
    return Refusal(OTHER, text)


def status_refusal(status: dict[str, Any]) -> Refusal | None:
    """The refusal a Status object (the body of a failed request) states, or None when it states none (not a
    Status, or another error)."""
    if not isinstance(status, dict) or status.get("kind") not in (None, "Status"):
        return None
    message = str(status.get("message") or "")
    details = status.get("details") if isinstance(status.get("details"), dict) else {}
    if status.get("code") == 403 or status.get("reason") == "Forbidden":
        found = refusal_of(message, details.get("kind") or None, details.get("name"))
        return found or Refusal(OTHER, one_line(message, MESSAGE_LIMIT))
    return refusal_of(message) if _WEBHOOK.match(message) or _POLICY.match(message) else None


@dataclass(frozen=True)
class FailedCreate:
    """The latest FailedCreate event of a Job: how often the controller tried, and why it could not."""

    refusal: Refusal
    count: int

    def describe(self) -> str:
        times = f", {self.count} attempts" if self.count > 1 else ""
        return f"the Job controller cannot create its pod (FailedCreate{times}): {self.refusal.describe()}"


def failed_create(events: list[dict[str, Any]]) -> FailedCreate | None:
    """The latest Warning ``FailedCreate`` event among a Job's ``events`` (core/v1 Event objects), or None."""
    failed = [e for e in events if e.get("reason") == FAILED_CREATE and e.get("type", "Warning") == "Warning"]
    if not failed:
        return None
    latest = max(failed, key=_event_time)
    message = str(latest.get("message") or "")
    if message.startswith(_ERROR_CREATING):
        message = message[len(_ERROR_CREATING):]
    refusal = refusal_of(message) or Refusal(OTHER, one_line(message, MESSAGE_LIMIT))
    return FailedCreate(refusal, sum(int(e.get("count") or 1) for e in failed))


def _event_time(event: dict[str, Any]) -> tuple[str, int]:
    """When the event last happened (RFC 3339, to the second: lastTimestamp is, eventTime is finer) and its
    resourceVersion (a later write has a larger one on etcd-backed servers) to break ties."""
    series = event.get("series") if isinstance(event.get("series"), dict) else {}
    when = (series.get("lastObservedTime") or event.get("lastTimestamp") or event.get("eventTime")
            or (event.get("metadata") or {}).get("creationTimestamp") or "")
    rv = str((event.get("metadata") or {}).get("resourceVersion") or "")
    return str(when)[:19], int(rv) if rv.isdigit() else 0
