"""Authorization and admission of the stand-in, with the messages the real plugins write (so the runner reads
what a cluster would send): an RBAC rule that does not grant a call, a ResourceQuota, a LimitRange and Pod
Security admission.

Each admission rule looks at a pod about to be created (by mlrepro: its helper pod; by the Job controller: the
Job's pod) and returns the cause of a refusal, or None. The stand-in turns a cause into what the API server
returns: ``403 Forbidden`` with the Status of ``apierrors.NewForbidden`` (``pods "NAME" is forbidden: CAUSE``,
details name and kind) to a request, and a Warning ``FailedCreate`` event ``Error creating: ...`` on the Job
to the controller.

Message forms, from the Kubernetes source: RBAC k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go;
quota k8s.io/apiserver/pkg/admission/plugin/resourcequota/controller.go; LimitRange
plugin/pkg/admission/limitranger/admission.go; Pod Security k8s.io/pod-security/policy/check_*.go and
k8s.io/pod-security-admission/admission/admission.go.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlrepro.profiles.quantity import parse_quantity

Check = Callable[[dict[str, Any]], str | None]


@dataclass(frozen=True)
class RbacDenial:
    """The launcher's Role does not grant ``verb`` on ``resource`` of ``group``."""

    group: str
    resource: str
    verb: str
    user: str = "system:serviceaccount:bench:mlrepro-launcher"

    def matches(self, group: str, resource: str, verb: str) -> bool:
        return (group, resource, verb) == (self.group, self.resource, self.verb)

    def message(self, namespace: str | None, name: str | None) -> str:
        plural = self.resource.split("/", 1)[0]
        qualified = f"{plural}.{self.group}" if self.group else plural
        target = f' "{name}"' if name and self.verb != "create" else ""
        return (f'{qualified}{target} is forbidden: User "{self.user}" cannot {self.verb} resource "{self.resource}" '
                f'in API group "{self.group}" in the namespace "{namespace}"')


def _requests(container: dict[str, Any]) -> dict[str, str]:
    resources = container.get("resources") or {}
    return {**(resources.get("limits") or {}), **(resources.get("requests") or {})}   # requests default to limits


def _running_pods(state: Any, ns: str) -> list[dict[str, Any]]:
    return [o for o in state.list("", "pods", ns) if (o.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]


@dataclass
class ResourceQuota:
    """``hard`` of ``resource`` (``count/pods`` or ``requests.<name>``) summed over the namespace's live pods."""

    name: str
    resource: str
    hard: str

    def _amount(self, pod: dict[str, Any]) -> float:
        if self.resource == "count/pods":
            return 1
        key = self.resource.removeprefix("requests.")
        return sum(float(parse_quantity(_requests(c)[key])) for c in pod["spec"].get("containers", [])
                   if key in _requests(c))

    def admit(self, state: Any, ns: str, pod: dict[str, Any]) -> str | None:
        requested = self._amount(pod)
        if not requested:
            return None
        used = sum(self._amount(p) for p in _running_pods(state, ns))
        if used + requested <= float(parse_quantity(self.hard)):
            return None
        return (f"exceeded quota: {self.name}, requested: {self.resource}={_fmt(requested)}, used: "
                f"{self.resource}={_fmt(used)}, limited: {self.resource}={self.hard}")


@dataclass
class LimitRangeMin:
    """A LimitRange ``min`` for ``resource`` per Container."""

    resource: str
    minimum: str

    def admit(self, state: Any, ns: str, pod: dict[str, Any]) -> str | None:
        for c in pod["spec"].get("containers", []):
            asked = _requests(c).get(self.resource)
            if asked is not None and parse_quantity(asked) < parse_quantity(self.minimum):
                return f"minimum {self.resource} usage per Container is {self.minimum}, but request is {asked}"
        return None


def restricted_checks() -> list[Check]:
    """The Pod Security Standard "restricted" checks that mlrepro's pods could fail (kubernetes.io "Pod Security
    Standards"; the texts of k8s.io/pod-security/policy)."""

    def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
        return list(pod["spec"].get("containers", [])) + list(pod["spec"].get("initContainers", []))

    def psc(pod: dict[str, Any]) -> dict[str, Any]:
        return pod["spec"].get("securityContext") or {}

    def escalation(pod: dict[str, Any]) -> str | None:
        bad = [c["name"] for c in containers(pod)
               if (c.get("securityContext") or {}).get("allowPrivilegeEscalation") is not False]
        return (f'allowPrivilegeEscalation != false (container "{bad[0]}" must set '
                "securityContext.allowPrivilegeEscalation=false)") if bad else None

    def capabilities(pod: dict[str, Any]) -> str | None:
        bad = [c["name"] for c in containers(pod)
               if "ALL" not in (((c.get("securityContext") or {}).get("capabilities") or {}).get("drop") or [])]
        return (f'unrestricted capabilities (container "{bad[0]}" must set securityContext.capabilities.drop='
                '["ALL"])') if bad else None

    def non_root(pod: dict[str, Any]) -> str | None:
        pod_level = psc(pod).get("runAsNonRoot") is True
        bad = [c["name"] for c in containers(pod) if not (pod_level or (c.get("securityContext") or {}).get(
            "runAsNonRoot") is True)]
        return "runAsNonRoot != true (pod or container must set securityContext.runAsNonRoot=true)" if bad else None

    def seccomp(pod: dict[str, Any]) -> str | None:
        ok = ("RuntimeDefault", "Localhost")
        pod_level = (psc(pod).get("seccompProfile") or {}).get("type") in ok
        bad = [c["name"] for c in containers(pod) if not (pod_level or ((c.get("securityContext") or {}).get(
            "seccompProfile") or {}).get("type") in ok)]
        return (f'seccompProfile (pod or container "{bad[0]}" must set securityContext.seccompProfile.type to '
                '"RuntimeDefault" or "Localhost")') if bad else None

    def volumes(pod: dict[str, Any]) -> str | None:
        allowed = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected",
                   "secret"}
        bad = sorted({k for v in pod["spec"].get("volumes", []) for k in v if k != "name" and k not in allowed})
        return f"restricted volume types (volume types {', '.join(bad)} are not allowed)" if bad else None

    return [escalation, capabilities, non_root, seccomp, volumes]


@dataclass
class PodSecurity:
    """Pod Security admission enforcing ``level`` (the namespace's pod-security.kubernetes.io/enforce label)."""

    level: str = "restricted:latest"
    checks: list[Check] = field(default_factory=restricted_checks)

    def admit(self, state: Any, ns: str, pod: dict[str, Any]) -> str | None:
        failed = [text for check in self.checks if (text := check(pod))]
        return f'violates PodSecurity "{self.level}": {", ".join(failed)}' if failed else None


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{int(value * 1000)}m"
