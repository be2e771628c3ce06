"""The engine-neutral pod spec: the ONE description of how the harness container runs.

:func:`build_pod_spec` derives it from a resolved profile, an image reference and a run spec. Every engine
is a view of it: :meth:`PodSpec.to_k8s_pod_template` feeds the Job manifest and the Helm values, and the
Docker runner maps the same fields to ``docker run`` settings (image, command/args, env, working dir,
``uid:gid``, read-only root with a tmpfs at ``/tmp``, the spec files mounted read-only at ``/config``,
results at ``/results``, CPU/memory limits, the accelerator's devices, labels). So the laptop path and the
cluster path cannot drift. What the accelerator needs on each target (Kubernetes resource, node labels, taint,
DRA device class; Docker device request or device nodes and groups) comes from the vendor's row of
:data:`mlrepro.profiles.vendors.VENDORS`.

Env values are literal on every engine: Kubernetes would expand ``$(VAR)`` in them, so the Kubernetes
view escapes ``$`` as ``$$`` (:func:`k8s_escape`); Docker gets them as they are.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from mlrepro import __version__
from mlrepro.errors import BadInputError
from mlrepro.harness.spec import RunSpec
from mlrepro.harness.sysinfo.runtime import ENV_HOST_SYSTEM, ENV_NODE_NAME, ENV_TARGET
from mlrepro.profiles.loader import ResolvedProfile
from mlrepro.profiles.model import CLIENT_RESOURCES, Profile, Resources
from mlrepro.profiles.quantity import parse_quantity
from mlrepro.profiles.vendors import VENDORS, Vendor

CONTAINER_NAME = "harness"
HARNESS_COMMAND = ("mlrepro-harness",)
CONFIG_DIR = "/config"
RESULTS_DIR = "/results"
TMP_DIR = "/tmp"
SPEC_FILE = "run.json"
USER_CONF_FILE = "user.conf"
HARNESS_ARGS = ("--spec", f"{CONFIG_DIR}/{SPEC_FILE}", "--results", RESULTS_DIR)
WORKING_DIR = TMP_DIR  # writable on a read-only root filesystem

ENV_RUN_ID = "MLREPRO_RUN_ID"
ENV_PROFILE_HASH = "MLREPRO_PROFILE_HASH"
ENV_IMAGE = "MLREPRO_IMAGE"
RESERVED_ENV = (ENV_RUN_ID, ENV_PROFILE_HASH, ENV_IMAGE, ENV_TARGET, ENV_HOST_SYSTEM, ENV_NODE_NAME)
"""Set by mlrepro (here or by a runner: how the run ran, the host's probe); a profile cannot set them."""
DEVICE_CLAIM_NAME = "gpu"
#: what only the Kubernetes view sets: how the run ran and the node it ran on (downward API), for the system
#: description (mlrepro.harness.sysinfo.runtime)
K8S_RUNTIME_ENV: tuple[dict[str, Any], ...] = (
    {"name": ENV_TARGET, "value": "kubernetes"},
    {"name": ENV_NODE_NAME, "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
)

ARCH_LABEL = "kubernetes.io/arch"
GPU_PRODUCT_LABEL = VENDORS["nvidia"].product_label
"""NVIDIA's product label; each vendor's is ``Vendor.product_label``."""
PROFILE_SHA256_ANNOTATION = "mlrepro.io/profile-sha256"
RUN_SPEC_SHA256_ANNOTATION = "mlrepro.io/run-spec-sha256"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# Characters no manifest string may hold: control characters other than tab/newline/CR (NUL cannot be in an
# environment; DEL and C1 break Go's YAML reader, which Helm and kubectl use; NEL is a line break in YAML 1.1),
# the Unicode line/paragraph separators (line breaks in YAML 1.1, not in 1.2), surrogates and U+FFFE/U+FFFF.
_BAD_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")


class RenderError(BadInputError):
    """The inputs cannot make a valid pod (bad run id, contradicting scheduling, reserved env name)."""


def _frozen(d: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(d))


@dataclass(frozen=True)
class EnvVar:
    name: str
    value: str  # literal; see k8s_escape


@dataclass(frozen=True)
class ConfigMapSource:
    """Files the harness reads at CONFIG_DIR. On Kubernetes a ConfigMap; on Docker a read-only bind mount."""
    name: str
    files: Mapping[str, str]


@dataclass(frozen=True)
class PvcSource:
    """Where results go. On Kubernetes a PersistentVolumeClaim; on Docker a host directory or a volume."""
    claim_name: str
    size: str
    access_mode: str
    storage_class: str | None = None


@dataclass(frozen=True)
class EmptyDirSource:
    """Scratch space (``/tmp``) on a read-only root filesystem. On Docker a tmpfs."""


@dataclass(frozen=True)
class ModelClaimSource:
    """A model server's model on an existing PersistentVolumeClaim (never made by mlrepro), mounted read-only:
    the client of the server reads its tokenizer (and hashes it) there too. Kubernetes only."""
    claim_name: str


@dataclass(frozen=True)
class HostPathSource:
    """A host directory holding the model, mounted read-only (Docker; natively the path is read as it is).
    Kubernetes refuses it: a hostPath volume breaks Pod Security "restricted"."""
    path: str


VolumeSource = ConfigMapSource | PvcSource | EmptyDirSource | ModelClaimSource | HostPathSource


@dataclass(frozen=True)
class Volume:
    name: str
    mount_path: str
    read_only: bool
    source: VolumeSource


@dataclass(frozen=True)
class Toleration:
    key: str | None = None
    operator: str = "Exists"
    value: str | None = None
    effect: str | None = None
    toleration_seconds: int | None = None

    def to_k8s(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.key is not None:
            out["key"] = self.key
        out["operator"] = self.operator
        if self.value is not None:
            out["value"] = self.value
        if self.effect is not None:
            out["effect"] = self.effect
        if self.toleration_seconds is not None:
            out["tolerationSeconds"] = self.toleration_seconds
        return out


@dataclass(frozen=True)
class Scheduling:
    node_selector: Mapping[str, str] = field(default_factory=lambda: _frozen({}))
    tolerations: tuple[Toleration, ...] = ()
    runtime_class: str | None = None
    priority_class: str | None = None

    def to_k8s(self, device_claim: DeviceClaim | None = None) -> dict[str, Any]:
        """The PodSpec fields of this placement (nodeSelector, tolerations, runtimeClassName, priorityClassName)
        and of a DRA ``device_claim`` (resourceClaims), each only when set: the Job's pod and a model server's
        pod are placed the same way."""
        spec: dict[str, Any] = {}
        if self.node_selector:
            spec["nodeSelector"] = dict(self.node_selector)
        if self.tolerations:
            spec["tolerations"] = [t.to_k8s() for t in self.tolerations]
        if self.runtime_class:
            spec["runtimeClassName"] = self.runtime_class
        if self.priority_class:
            spec["priorityClassName"] = self.priority_class
        if device_claim is not None:
            spec["resourceClaims"] = [{"name": device_claim.name,
                                       "resourceClaimTemplateName": device_claim.template_name}]
        return spec


@dataclass(frozen=True)
class ResourceSpec:
    """Kubernetes quantities as strings; ``limits`` holds the accelerator resource (e.g. nvidia.com/gpu: "1")."""
    requests: Mapping[str, str]
    limits: Mapping[str, str]

    def to_k8s(self, device_claim: DeviceClaim | None = None) -> dict[str, Any]:
        """The container's ``resources``: requests and limits where set, the DRA claim it uses; {} for none."""
        out: dict[str, Any] = {key: dict(values) for key, values in (("requests", self.requests),
                                                                   ("limits", self.limits)) if values}
        if device_claim is not None:
            out["claims"] = [{"name": device_claim.name}]
        return out


@dataclass(frozen=True)
class GpuRequest:
    vendor: str          # a key of vendors.VENDORS: "nvidia", "amd", "intel"
    resource: str        # device-plugin resource: nvidia.com/gpu, nvidia.com/mig-1g.10gb, amd.com/gpu...; "" with DRA
    count: int
    mig_profile: str | None = None
    product: str | None = None

    @property
    def vendor_row(self) -> Vendor:
        """What the vendor's devices need on each target (vendors.VENDORS)."""
        return VENDORS[self.vendor]


@dataclass(frozen=True)
class DeviceClaim:
    """A DRA device request (``resource.k8s.io/v1``): the pod claims ``count`` devices of ``device_class``
    through a ResourceClaimTemplate named ``template_name``; the container uses the claim ``name``."""
    name: str            # the claim's name in the pod and the container ("gpu")
    template_name: str   # <run id>-gpu
    device_class: str    # gpu.nvidia.com
    count: int


@dataclass(frozen=True)
class SecurityContext:
    uid: int
    gid: int
    run_as_non_root: bool = True
    read_only_root_filesystem: bool = True
    allow_privilege_escalation: bool = False
    drop_capabilities: tuple[str, ...] = ("ALL",)
    seccomp_profile: str = "RuntimeDefault"

    def container_context(self) -> dict[str, Any]:
        """The container's securityContext (Pod Security "restricted": no escalation, read-only root, non-root,
        every capability dropped)."""
        return {"allowPrivilegeEscalation": self.allow_privilege_escalation,
                "readOnlyRootFilesystem": self.read_only_root_filesystem, "runAsNonRoot": self.run_as_non_root,
                "capabilities": {"drop": list(self.drop_capabilities)}}

    def pod_context(self) -> dict[str, Any]:
        """The pod's securityContext: the uid/gid, fsGroup (RWO volumes writable by them), the seccomp profile."""
        return {"runAsNonRoot": self.run_as_non_root, "runAsUser": self.uid, "runAsGroup": self.gid,
                "fsGroup": self.gid, "seccompProfile": {"type": self.seccomp_profile}}


@dataclass(frozen=True)
class PodSpec:
    name: str                               # Job / container name stem: the run id
    run_id: str
    image: str
    platform: str                           # linux/amd64 | linux/arm64
    command: tuple[str, ...]
    args: tuple[str, ...]
    env: tuple[EnvVar, ...]
    working_dir: str
    security: SecurityContext
    volumes: tuple[Volume, ...]
    resources: ResourceSpec
    scheduling: Scheduling
    gpu: GpuRequest | None
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    device_claim: DeviceClaim | None = None
    """Dynamic Resource Allocation: the devices come from a ResourceClaimTemplate instead of ``gpu.resource``."""

    # ---- accessors for runners -------------------------------------------------------------------------
    @property
    def env_dict(self) -> dict[str, str]:
        return {e.name: e.value for e in self.env}

    @property
    def user(self) -> str:
        """``uid:gid`` as ``docker run --user`` takes it."""
        return f"{self.security.uid}:{self.security.gid}"

    def _volume(self, kind: type) -> Volume:
        return next(v for v in self.volumes if isinstance(v.source, kind))

    @property
    def config_volume(self) -> Volume:
        return self._volume(ConfigMapSource)

    @property
    def results_volume(self) -> Volume:
        return self._volume(PvcSource)

    @property
    def config_files(self) -> Mapping[str, str]:
        """File name → text of what is mounted at CONFIG_DIR (run.json, user.conf)."""
        source = self.config_volume.source
        assert isinstance(source, ConfigMapSource)
        return source.files

    @property
    def tmpfs_paths(self) -> tuple[str, ...]:
        return tuple(v.mount_path for v in self.volumes if isinstance(v.source, EmptyDirSource))

    @property
    def host_path_mounts(self) -> tuple[tuple[str, str], ...]:
        """(host directory, mount path) of each read-only host directory (a model server's model)."""
        return tuple((v.source.path, v.mount_path) for v in self.volumes if isinstance(v.source, HostPathSource))

    @property
    def gpu_count(self) -> int:
        return self.gpu.count if self.gpu else 0

    @property
    def cpu_limit_nanocpus(self) -> int | None:
        cpu = self.resources.limits.get("cpu")
        return int(parse_quantity(cpu) * 10**9) if cpu is not None else None

    @property
    def memory_limit_bytes(self) -> int | None:
        mem = self.resources.limits.get("memory")
        return int(parse_quantity(mem)) if mem is not None else None

    @property
    def memory_request_bytes(self) -> int | None:
        mem = self.resources.requests.get("memory")
        return int(parse_quantity(mem)) if mem is not None else None

    # ---- the Kubernetes view ---------------------------------------------------------------------------
    def to_k8s_container(self) -> dict[str, Any]:
        resources = self.resources.to_k8s(self.device_claim)
        container: dict[str, Any] = {
            "name": CONTAINER_NAME,
            "image": self.image,
            "imagePullPolicy": "IfNotPresent",
            "command": list(self.command),
            "args": list(self.args),
            "workingDir": self.working_dir,
            "env": [{"name": e.name, "value": k8s_escape(e.value)} for e in self.env]
                   + [dict(e) for e in K8S_RUNTIME_ENV],
            "resources": resources,
            "securityContext": self.security.container_context(),
            "volumeMounts": [{"name": v.name, "mountPath": v.mount_path, "readOnly": v.read_only}
                             for v in self.volumes],
            "terminationMessagePolicy": "FallbackToLogsOnError",
        }
        if not resources:
            del container["resources"]
        return container

    def to_k8s_pod_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": self.security.pod_context(),
            "containers": [self.to_k8s_container()],
            "volumes": [_k8s_volume(v) for v in self.volumes],
            **self.scheduling.to_k8s(self.device_claim),
        }
        return spec

    def to_k8s_pod_template(self) -> dict[str, Any]:
        return {"metadata": {"labels": dict(self.labels), "annotations": dict(self.annotations)},
                "spec": self.to_k8s_pod_spec()}


def _k8s_volume(v: Volume) -> dict[str, Any]:
    src = v.source
    if isinstance(src, ConfigMapSource):
        return {"name": v.name, "configMap": {"name": src.name}}
    if isinstance(src, PvcSource):
        return {"name": v.name, "persistentVolumeClaim": {"claimName": src.claim_name}}
    if isinstance(src, ModelClaimSource):
        return {"name": v.name, "persistentVolumeClaim": {"claimName": src.claim_name, "readOnly": True}}
    if isinstance(src, HostPathSource):
        raise RenderError("serve.model_source: host-path mounts a hostPath volume, which Pod Security 'restricted' "
                          "forbids: on Kubernetes put the model on a claim (serve.model_source: claim, "
                          "serve.model_claim) or in the image")
    return {"name": v.name, "emptyDir": {}}


def k8s_escape(value: str) -> str:
    """Keep an env value literal on Kubernetes, which expands ``$(VAR)`` and turns ``$$`` into ``$``."""
    return value.replace("$", "$$")


def config_map_name(run_id: str) -> str:
    return f"{run_id}-config"


def results_claim_name(run_id: str) -> str:
    return f"{run_id}-results"


def device_claim_template_name(run_id: str) -> str:
    """The ResourceClaimTemplate of a DRA run (each pod of the Job gets its own claim from it)."""
    return f"{run_id}-gpu"


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def standard_labels(resolved: ResolvedProfile, run_spec: RunSpec) -> dict[str, str]:
    """The labels on every object of a run (pod, Job, ConfigMap, PVC; Docker container labels)."""
    return {
        "app.kubernetes.io/name": "mlrepro",
        "app.kubernetes.io/instance": run_spec.run_id,
        "app.kubernetes.io/component": "benchmark",
        "app.kubernetes.io/managed-by": "mlrepro",
        "app.kubernetes.io/version": __version__,
        "mlrepro.io/profile": resolved.profile.name,
        "mlrepro.io/profile-hash": resolved.short_hash,
        "mlrepro.io/run-id": run_spec.run_id,
        "mlrepro.io/scenario": run_spec.scenario,
        "mlrepro.io/mode": run_spec.mode,
    }


def standard_annotations(resolved: ResolvedProfile, spec_text: str) -> dict[str, str]:
    return {PROFILE_SHA256_ANNOTATION: resolved.hash, RUN_SPEC_SHA256_ANNOTATION: sha256_text(spec_text)}


def _check_inputs(resolved: ResolvedProfile, run_spec: RunSpec) -> None:
    if not _DNS_LABEL.match(run_spec.run_id):
        raise RenderError(f"run id {run_spec.run_id!r} must be a DNS label (a-z, 0-9, '-', at most 63 "
                          "characters): it names the Job and labels every object")
    if run_spec.profile_hash and run_spec.profile_hash != resolved.hash:
        raise RenderError(f"run spec {run_spec.run_id!r} was built from another profile "
                          f"(hash {run_spec.profile_hash[:12]}, not {resolved.short_hash})")
    p = resolved.profile
    for name in RESERVED_ENV:
        if name in p.env:
            raise RenderError(f"env.{name} is set by mlrepro and cannot be set in a profile")
    texts = [(f"env.{k}", v) for k, v in p.env.items()]
    texts += [(f"scheduling.node_selector.{k}", f"{k}{v}") for k, v in p.scheduling.node_selector.items()]
    texts += [("run spec", run_spec.to_json()), ("benchmark.user_conf", run_spec.user_conf)]
    for where, text in texts:
        check_text(where, text)


def check_text(where: str, text: str) -> None:
    """Raise RenderError when ``text`` holds a character YAML readers (PyYAML, Go) do not all keep as is."""
    bad = _BAD_CHAR.search(text)
    if bad:
        raise RenderError(f"{where}: the character U+{ord(bad.group()):04X} at offset {bad.start()} cannot be "
                          "carried through Kubernetes/Helm YAML (control characters other than tab and newline "
                          "are not allowed)")


def _scheduling(p: Profile, cpu_only: bool = False) -> Scheduling:
    """The pod's scheduling: the profile's node selector and tolerations, its architecture and, unless
    ``cpu_only`` (a model server's client), the accelerator's product label and taint toleration (a CPU-only pod
    does not tolerate the accelerator's taint even where the profile lists it: GPU nodes stay the server's)."""
    node_selector = dict(p.scheduling.node_selector)
    wanted = {ARCH_LABEL: p.arch}
    row = p.accelerator.vendor_row
    if not cpu_only and p.accelerator.enabled and p.accelerator.product and row is not None:
        wanted[row.product_label] = p.accelerator.product
    for key, value in wanted.items():
        if node_selector.setdefault(key, value) != value:
            raise RenderError(f"scheduling.node_selector.{key} is {node_selector[key]!r} but the profile "
                              f"needs {value!r}")
    acc = p.accelerator
    tolerations = [Toleration(key=t.key, operator=t.operator, value=t.value, effect=t.effect,
                              toleration_seconds=t.toleration_seconds) for t in p.scheduling.tolerations
                   if not (cpu_only and acc.enabled and t.key == acc.taint_key)]   # a GPU node's taint: the server's
    gpu = acc.enabled and not cpu_only
    if gpu and not any(_tolerates_no_schedule(t, acc.taint_key) for t in tolerations):
        tolerations.append(Toleration(key=acc.taint_key, operator="Exists", effect="NoSchedule"))
    return Scheduling(node_selector=_frozen(node_selector), tolerations=tuple(tolerations),
                      runtime_class=acc.runtime_class if gpu else None,
                      priority_class=p.scheduling.priority_class)


def _tolerates_no_schedule(t: Toleration, key: str) -> bool:
    return t.operator == "Exists" and t.key in (key, None) and t.effect in ("NoSchedule", None)


def _resources(p: Profile, override: Resources | None = None, cpu_only: bool = False,
               base: Resources | None = None) -> tuple[ResourceSpec, GpuRequest | None]:
    """cpu/memory (``base``, default the profile's; ``override``'s values where it sets them: a model server's or
    its client's) and, unless ``cpu_only``, the accelerator."""
    r = base or p.resources

    def pick(kind: str, name: str) -> str | None:
        """The override's value where it was given (its defaults are not), else the profile's."""
        if override is not None and kind in override.model_fields_set:
            sub = getattr(override, kind)
            if name in sub.model_fields_set:
                return getattr(sub, name)
        return getattr(getattr(r, kind), name)

    requests = {k: v for k in ("cpu", "memory") if (v := pick("requests", k)) is not None}
    limits = {k: v for k in ("cpu", "memory") if (v := pick("limits", k)) is not None}
    gpu = None
    acc = p.accelerator
    if acc.enabled and not cpu_only:
        dra = acc.request == "dra"
        gpu = GpuRequest(vendor=acc.vendor, resource="" if dra else acc.resource_name, count=acc.count,
                         mig_profile=acc.mig_profile, product=acc.product)
        if not dra:
            limits[acc.resource_name] = str(acc.count)
    return ResourceSpec(requests=_frozen(requests), limits=_frozen(limits)), gpu


def _device_claim(p: Profile, run_id: str) -> DeviceClaim | None:
    acc = p.accelerator
    if not acc.enabled or acc.request != "dra":
        return None
    return DeviceClaim(name=DEVICE_CLAIM_NAME, template_name=device_claim_template_name(run_id),
                       device_class=acc.dra_device_class, count=acc.count)


def build_pod_spec(resolved: ResolvedProfile, image: str, run_spec: RunSpec) -> PodSpec:
    """The pod that runs ``run_spec`` of ``resolved`` in ``image``. Raises RenderError on bad inputs.

    With a model server (``serve``), this pod is its LoadGen client: CPU-only (``serve.client_resources``, no
    accelerator, toleration or product label: those go to the server, :mod:`mlrepro.render.serverspec`), and
    the server's model claim or host directory mounted read-only where the server has it (the client reads the
    tokenizer there)."""
    _check_inputs(resolved, run_spec)
    p = resolved.profile
    client = p.serve.enabled
    run_id = run_spec.run_id
    spec_text = run_spec.to_json()
    env = [EnvVar(k, v) for k, v in p.env.items()]
    env += [EnvVar(ENV_RUN_ID, run_id), EnvVar(ENV_PROFILE_HASH, resolved.hash), EnvVar(ENV_IMAGE, image)]
    volumes = (
        Volume("config", CONFIG_DIR, True,
               ConfigMapSource(config_map_name(run_id),
                               _frozen({SPEC_FILE: spec_text, USER_CONF_FILE: run_spec.user_conf}))),
        Volume("results", RESULTS_DIR, False,
               PvcSource(results_claim_name(run_id), size=p.results.size, access_mode=p.results.access_mode,
                         storage_class=p.results.storage_class)),
        Volume("tmp", TMP_DIR, False, EmptyDirSource()),
    )
    serve = p.serve
    if client and serve.model_source == "claim" and serve.model_claim:
        volumes += (Volume("model", serve.model_mount, True, ModelClaimSource(serve.model_claim)),)
    elif client and serve.model_source == "host-path" and serve.host_path:
        volumes += (Volume("model", serve.model_mount, True, HostPathSource(serve.host_path)),)
    resources, gpu = _resources(p, serve.client_resources, cpu_only=True, base=CLIENT_RESOURCES) if client \
        else _resources(p)
    uid = p.image.user_uid
    return PodSpec(
        name=run_id, run_id=run_id, image=image, platform=p.platform,
        command=HARNESS_COMMAND, args=HARNESS_ARGS, env=tuple(env), working_dir=WORKING_DIR,
        security=SecurityContext(uid=uid, gid=uid), volumes=volumes, resources=resources,
        scheduling=_scheduling(p, cpu_only=client), gpu=gpu,
        labels=_frozen(standard_labels(resolved, run_spec)),
        annotations=_frozen(standard_annotations(resolved, spec_text)),
        device_claim=None if client else _device_claim(p, run_id),
    )
