"""Kubernetes manifests of a run, built as data from the PodSpec: ConfigMap, PersistentVolumeClaim, Job (and a
model server's Deployment and Service, from its ServerSpec).

Nothing here templates YAML text: objects are dicts, serialised by :func:`dump_manifests`. The YAML is
written for every reader: PyYAML (YAML 1.1), kubectl/Helm (Go, which reads ``y``, ``1e3`` or ``0o17``
unquoted as non-strings). Only strings that every reader takes as strings are left plain.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import yaml

from mlrepro.harness.exit_codes import EXIT_BAD_SPEC
from mlrepro.render.jobspec import JobSpec
from mlrepro.render.podspec import CONTAINER_NAME, ConfigMapSource, PodSpec, PvcSource

# Helm keeps the results claim on `helm uninstall`; harmless for kubectl. On both, so both views are equal.
KEEP_ANNOTATION = {"helm.sh/resource-policy": "keep"}


def _metadata(pod: PodSpec, name: str, extra_annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"name": name, "labels": dict(pod.labels),
            "annotations": {**pod.annotations, **(extra_annotations or {})}}


def config_map(pod: PodSpec) -> dict[str, Any]:
    src = pod.config_volume.source
    assert isinstance(src, ConfigMapSource)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _metadata(pod, src.name),
            "data": dict(src.files)}


def results_claim(pod: PodSpec) -> dict[str, Any]:
    src = pod.results_volume.source
    assert isinstance(src, PvcSource)
    spec: dict[str, Any] = {"accessModes": [src.access_mode], "resources": {"requests": {"storage": src.size}}}
    if src.storage_class:
        spec["storageClassName"] = src.storage_class
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": _metadata(pod, src.claim_name, KEEP_ANNOTATION), "spec": spec}


def job(spec: JobSpec, suspend: bool = False) -> dict[str, Any]:
    """The batch/v1 Job of a run: the pod template plus the job policy. ``suspend``: created queued (no pod)
    until ``spec.suspend`` is set to false -- how a sweep submits every Job at once under a concurrency limit."""
    pod, policy = spec.pod, spec.policy
    obj = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(pod, spec.name),
        "spec": {
            "backoffLimit": policy.retries,
            "activeDeadlineSeconds": policy.deadline_seconds,
            "ttlSecondsAfterFinished": policy.ttl_seconds,
            "podFailurePolicy": {"rules": [
                # evictions, preemptions, node drains: not the benchmark's fault, do not count a retry
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
                # an invalid configuration cannot be fixed by retrying
                {"action": "FailJob", "onExitCodes": {"containerName": CONTAINER_NAME, "operator": "In",
                                                      "values": [EXIT_BAD_SPEC]}},
            ]},
            "template": pod.to_k8s_pod_template(),
        },
    }
    if suspend:
        obj["spec"]["suspend"] = True
    return obj


def device_claim_template(pod: PodSpec) -> dict[str, Any]:
    """The resource.k8s.io/v1 ResourceClaimTemplate of a DRA run: ``count`` devices of the DeviceClass."""
    claim = pod.device_claim
    assert claim is not None
    return {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaimTemplate",
            "metadata": _metadata(pod, claim.template_name),
            "spec": {"spec": {"devices": {"requests": [
                {"name": claim.name, "exactly": {"deviceClassName": claim.device_class, "count": claim.count}},
            ]}}}}


def server_manifests(spec: JobSpec) -> list[dict[str, Any]]:
    """The model server of a run (``serve.engine``; none otherwise): the ResourceClaimTemplate of a DRA server,
    its Deployment and its Service (mlrepro.render.serverspec), in apply order."""
    server = spec.server
    if server is None:
        return []
    objs = [server.to_k8s_claim_template()] if server.device_claim is not None else []
    return [*objs, server.to_k8s_deployment(), server.to_k8s_service()]


def render_manifests(spec: JobSpec, suspend: bool = False, server: bool = True) -> list[dict[str, Any]]:
    """ConfigMap, PersistentVolumeClaim, the ResourceClaimTemplate of a DRA run, the model server's objects
    (:func:`server_manifests`) and the Job of one run, in apply order (the Job last: its pod needs the others;
    its client waits for the server's health path). ``suspend``: see :func:`job`. ``server`` False: without the
    server's objects (the Kubernetes runner applies them first, and waits for the server, on its own)."""
    objs = [config_map(spec.pod), results_claim(spec.pod)]
    if spec.pod.device_claim is not None:
        objs.append(device_claim_template(spec.pod))
    return [*objs, *(server_manifests(spec) if server else []), job(spec, suspend)]


# ---- YAML ----------------------------------------------------------------------------------------------
_PLAIN = re.compile(r"^[A-Za-z_/][A-Za-z0-9_./-]*$")
# plain words YAML 1.1 readers (PyYAML, Go's yaml) resolve to booleans or null
_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:  # never emit &anchors / *aliases
        return True


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    if "\n" in data:
        style = "|"          # falls back to double quotes when a literal block cannot hold it exactly
    elif _PLAIN.match(data) and data.lower() not in _WORDS:
        style = None
    else:
        style = '"'
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _represent_str)


def dump_yaml(obj: Any) -> str:
    """One YAML document, readable alike by PyYAML and Go (kubectl, Helm)."""
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1 << 20)


def dump_manifests(objs: Iterable[dict[str, Any]]) -> str:
    """A multi-document YAML stream (``---`` before each object), for ``kubectl apply -f``."""
    return yaml.dump_all(list(objs), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1 << 20,
                         explicit_start=True)
