"""The model server's spec: the ONE description of the server a network SUT's client talks to.

:func:`build_server_spec` derives it from the same resolved profile, image and run as the client's JobSpec
(:mod:`mlrepro.render.jobspec`): the server gets the profile's accelerator (the vendor's device-plugin resource or
a DRA claim, its toleration and node labels: the rows of :data:`mlrepro.profiles.vendors.VENDORS`, through the
same helpers as the Job's pod), its cpu/memory and env; the client Job is CPU-only. Every target is a view of it:

* Kubernetes: a Deployment (one replica, a readiness probe on the engine's health path, Pod Security
  "restricted") and a ClusterIP Service (:meth:`ServerSpec.to_k8s_deployment`, :meth:`ServerSpec.to_k8s_service`);
* Docker: the server container on a user network (:func:`mlrepro.runners.docker_config.docker_server_config`);
* native: a subprocess on loopback (:mod:`mlrepro.runners.native`).

What runs is ``mlrepro-serve`` (:mod:`mlrepro.harness.serve`) with the engine and the model: it resolves the model
and execs the engine's command (engines.json), the same way on every target. Where the model comes from
(``serve.model_source``): the image, a PersistentVolumeClaim mounted read-only (Kubernetes), or a host directory
(Docker, native). A hostPath volume breaks Pod Security "restricted": the Kubernetes views refuse it
(:func:`check_kubernetes_server`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from mlrepro import __version__
from mlrepro.harness.serving.engines import engine as engine_of
from mlrepro.profiles.loader import ResolvedProfile
from mlrepro.profiles.model import Profile
from mlrepro.render.podspec import (
    ENV_IMAGE,
    ENV_PROFILE_HASH,
    ENV_RUN_ID,
    PROFILE_SHA256_ANNOTATION,
    DeviceClaim,
    EnvVar,
    GpuRequest,
    RenderError,
    ResourceSpec,
    Scheduling,
    SecurityContext,
    _device_claim,
    _resources,
    _scheduling,
    k8s_escape,
)

SERVER_CONTAINER = "server"
SERVE_COMMAND = ("mlrepro-serve",)
LISTEN_HOST = "0.0.0.0"  # noqa: S104 - the server listens on its pod's / container's address
SERVER_FOR_LABEL = "mlrepro.io/server-for"
COMPONENT = "model-server"
MODEL_VOLUME = "model"
TMP_DIR = "/tmp"
SHM_DIR = "/dev/shm"
#: a writable home on a read-only root filesystem: the engines' caches (Hugging Face, torch) go under it
SERVER_ENV = (("HOME", "/tmp"), ("HF_HOME", "/tmp/hf"), ("XDG_CACHE_HOME", "/tmp/.cache"))
HTTP_PORT_NAME = "http"


@dataclass(frozen=True)
class ModelSource:
    """Where the server's model is: ``image`` (nothing to mount), ``claim`` (a PersistentVolumeClaim of the
    cluster, read-only at ``mount_path``) or ``host-path`` (a host directory, read-only at ``mount_path``)."""

    kind: str
    model: str                      # the model as the server (and the client) sees it
    mount_path: str | None = None
    claim: str | None = None
    host_path: str | None = None

    def native_model(self) -> str:
        """The model as a native process sees it: the host directory in place of the mount path."""
        if self.kind == "host-path" and self.host_path and self.mount_path and self.model.startswith(self.mount_path):
            return self.host_path + self.model[len(self.mount_path):]
        return self.model


@dataclass(frozen=True)
class ServerSpec:
    """The model server of one run (see the module docstring)."""

    name: str                       # Deployment, Service and container name
    run_id: str
    engine: str
    image: str
    platform: str
    model: ModelSource
    served_model_name: str          # --served-model-name ("" : the engine's default)
    engine_args: tuple[str, ...]
    port: int
    health_path: str
    env: tuple[EnvVar, ...]
    security: SecurityContext
    resources: ResourceSpec
    scheduling: Scheduling
    gpu: GpuRequest | None
    device_claim: DeviceClaim | None
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    ready_timeout_s: int

    # ---- the command, every target -----------------------------------------------------------------------
    def args(self, host: str = LISTEN_HOST, port: int | None = None, model: str | None = None) -> tuple[str, ...]:
        """``mlrepro-serve``'s arguments (the engine, the model, where to listen, then the engine's own)."""
        out = ["--engine", self.engine, "--model", model or self.model.model, "--host", host,
               "--port", str(port or self.port)]
        if self.served_model_name:
            out += ["--served-model-name", self.served_model_name]
        if self.engine_args:
            out += ["--", *self.engine_args]
        return tuple(out)

    @property
    def command(self) -> tuple[str, ...]:
        """The server's command line in a container (the Deployment's, the Docker container's)."""
        return SERVE_COMMAND + self.args()

    @property
    def env_dict(self) -> dict[str, str]:
        return {e.name: e.value for e in self.env}

    def url(self, host: str, port: int | None = None) -> str:
        """The API root a client reaches: ``http://HOST:PORT/v1``."""
        return f"http://{host}:{port or self.port}/v1"

    @property
    def selector(self) -> dict[str, str]:
        return {SERVER_FOR_LABEL: self.run_id, "app.kubernetes.io/component": COMPONENT}

    # ---- the Kubernetes view ------------------------------------------------------------------------------
    def to_k8s_container(self) -> dict[str, Any]:
        resources = self.resources.to_k8s(self.device_claim)
        mounts = [{"name": "tmp", "mountPath": TMP_DIR, "readOnly": False},
                  {"name": "dshm", "mountPath": SHM_DIR, "readOnly": False}]
        if self.model.kind == "claim":
            mounts.append({"name": MODEL_VOLUME, "mountPath": self.model.mount_path, "readOnly": True})
        container: dict[str, Any] = {
            "name": SERVER_CONTAINER,
            "image": self.image,
            "imagePullPolicy": "IfNotPresent",
            "command": list(SERVE_COMMAND),
            "args": list(self.args()),
            "workingDir": TMP_DIR,
            "env": [{"name": e.name, "value": k8s_escape(e.value)} for e in self.env],
            "ports": [{"name": HTTP_PORT_NAME, "containerPort": self.port, "protocol": "TCP"}],
            "readinessProbe": {"httpGet": {"path": self.health_path, "port": HTTP_PORT_NAME},
                               "periodSeconds": 5, "timeoutSeconds": 5, "failureThreshold": 3},
            "resources": resources,
            "securityContext": self.security.container_context(),
            "volumeMounts": mounts,
            "terminationMessagePolicy": "FallbackToLogsOnError",
        }
        if not resources:
            del container["resources"]
        return container

    def to_k8s_pod_spec(self) -> dict[str, Any]:
        check_kubernetes_server(self)
        volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {}},
                                         {"name": "dshm", "emptyDir": {"medium": "Memory"}}]
        if self.model.kind == "claim":
            volumes.append({"name": MODEL_VOLUME, "persistentVolumeClaim": {"claimName": self.model.claim,
                                                                           "readOnly": True}})
        spec: dict[str, Any] = {
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": self.security.pod_context(),
            "containers": [self.to_k8s_container()],
            "volumes": volumes,
            **self.scheduling.to_k8s(self.device_claim),
        }
        return spec

    def _metadata(self, name: str) -> dict[str, Any]:
        return {"name": name, "labels": dict(self.labels), "annotations": dict(self.annotations)}

    def to_k8s_deployment(self) -> dict[str, Any]:
        """apps/v1 Deployment: one replica, replaced whole (Recreate: a GPU is not shared with a successor),
        ready when the engine's health path answers."""
        return {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": self._metadata(self.name),
            "spec": {
                "replicas": 1,
                "strategy": {"type": "Recreate"},
                "progressDeadlineSeconds": max(self.ready_timeout_s, 60),
                "selector": {"matchLabels": self.selector},
                "template": {"metadata": {"labels": dict(self.labels), "annotations": dict(self.annotations)},
                             "spec": self.to_k8s_pod_spec()},
            },
        }

    def to_k8s_service(self) -> dict[str, Any]:
        """v1 Service (ClusterIP) in front of the Deployment's pod: the client's ``http://NAME:PORT/v1``."""
        return {"apiVersion": "v1", "kind": "Service", "metadata": self._metadata(self.name),
                "spec": {"type": "ClusterIP", "selector": self.selector,
                         "ports": [{"name": HTTP_PORT_NAME, "port": self.port, "targetPort": HTTP_PORT_NAME,
                                    "protocol": "TCP"}]}}

    def to_k8s_claim_template(self) -> dict[str, Any]:
        """resource.k8s.io/v1 ResourceClaimTemplate of a DRA server: its devices."""
        claim = self.device_claim
        assert claim is not None
        return {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaimTemplate",
                "metadata": self._metadata(claim.template_name),
                "spec": {"spec": {"devices": {"requests": [
                    {"name": claim.name, "exactly": {"deviceClassName": claim.device_class, "count": claim.count}},
                ]}}}}


def check_kubernetes_server(server: ServerSpec) -> None:
    """A server Kubernetes can run under Pod Security "restricted": no hostPath. Raises RenderError."""
    if server.model.kind == "host-path":
        raise RenderError("serve.model_source: host-path mounts a hostPath volume, which Pod Security 'restricted' "
                          "forbids: on Kubernetes put the model on a claim (serve.model_source: claim, "
                          "serve.model_claim) or in the image")


def server_name(run_id: str) -> str:
    """The server's Deployment, Service and container name: ``<run id>-server``, shortened with a digest to fit
    a DNS-1035 label (a Service name: at most 63 characters, starting with a letter)."""
    name = f"{run_id}-server"
    if len(name) > 63:
        digest = hashlib.sha256(run_id.encode("utf-8")).hexdigest()[:6]
        name = f"{run_id[:63 - len(digest) - 8].rstrip('-')}-{digest}-server"
    if not name[0].isalpha():
        name = ("s-" + name)[:63].rstrip("-")
    return name


def server_labels(resolved: ResolvedProfile, run_id: str) -> dict[str, str]:
    """The server's labels: the Monitor routes its pod's events by ``mlrepro.io/server-for`` (never by
    ``mlrepro.io/run-id``, which is the client Job's)."""
    return {
        "app.kubernetes.io/name": "mlrepro",
        "app.kubernetes.io/instance": run_id,
        "app.kubernetes.io/component": COMPONENT,
        "app.kubernetes.io/managed-by": "mlrepro",
        "app.kubernetes.io/version": __version__,
        "mlrepro.io/profile": resolved.profile.name,
        "mlrepro.io/profile-hash": resolved.short_hash,
        SERVER_FOR_LABEL: run_id,
    }


def default_server_model(p: Profile) -> str | None:
    """The model the server loads: ``serve.model``, else ``benchmark.model_path``, else the workload's packaged
    model (an LLM entry's ``model``); None when there is none."""
    if p.serve.model:
        return p.serve.model
    if p.benchmark.model_path:
        return p.benchmark.model_path
    from mlrepro.harness.registry import load_workload_class

    try:
        cls = load_workload_class(p.benchmark.workload)
    except Exception:  # noqa: BLE001 - an unknown workload is reported where it is run
        return None
    entry = getattr(cls, "entry", None)
    return str(entry["model"]) if isinstance(entry, dict) and entry.get("model") else None


def build_server_spec(resolved: ResolvedProfile, image: str, run_id: str) -> ServerSpec | None:
    """The server of a run of ``resolved`` (None when the profile starts none: no ``serve.engine``, or an
    existing ``serve.endpoint``). Raises RenderError when the profile names no model for it."""
    p = resolved.profile
    serve = p.serve
    if not serve.starts_server:
        return None
    e = engine_of(str(serve.engine))
    model = default_server_model(p)
    if not model:
        raise RenderError(f"serve.model: the {e.name} server needs a model (serve.model or benchmark.model_path): "
                          f"workload {p.benchmark.workload} has none packaged")
    source = ModelSource(kind=serve.model_source, model=model,
                         mount_path=serve.model_mount if serve.model_source != "image" else None,
                         claim=serve.model_claim, host_path=serve.host_path)
    env = [EnvVar(k, v) for k, v in p.env.items() if k not in dict(SERVER_ENV)]
    env += [EnvVar(k, v) for k, v in serve.env.items() if k not in dict(SERVER_ENV)]
    env += [EnvVar(k, v) for k, v in SERVER_ENV]
    env += [EnvVar(ENV_RUN_ID, run_id), EnvVar(ENV_PROFILE_HASH, resolved.hash), EnvVar(ENV_IMAGE, image)]
    resources, gpu = _resources(p, serve.resources)
    name = server_name(run_id)
    claim = _device_claim(p, name)
    uid = p.image.user_uid
    return ServerSpec(
        name=name, run_id=run_id, engine=e.name, image=image, platform=p.platform, model=source,
        served_model_name=serve.served_model or (p.benchmark.workload if "{name}" in e.served_model else ""),
        engine_args=tuple(serve.args), port=serve.port or e.port or 8000, health_path=e.health_path,
        env=tuple(env), security=SecurityContext(uid=uid, gid=uid), resources=resources, scheduling=_scheduling(p),
        gpu=gpu, device_claim=claim,
        labels=MappingProxyType(server_labels(resolved, run_id)),
        annotations=MappingProxyType({PROFILE_SHA256_ANNOTATION: resolved.hash}),
        ready_timeout_s=serve.ready_timeout_seconds,
    )
