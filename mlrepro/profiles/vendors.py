"""The accelerator vendors as data: what ``accelerator.vendor`` decides, for every target.

One row per vendor. The profile schema (defaults and cross-field rules), the pod spec (Kubernetes resource,
toleration, node labels, DRA device class), the Docker runner (device request or device nodes and groups)
and the harness (torch device) read this table; nothing else branches on a vendor's name. A new vendor, or a
new profile for a known vendor (``amd-gpu-llm``), is a row here or a profile file, not code.

Sources of each fact (checked 2026-11):

* NVIDIA -- device plugin resource ``nvidia.com/gpu``, MIG resources ``nvidia.com/mig-<profile>``, GPU feature
  discovery labels ``nvidia.com/gpu.product`` / ``nvidia.com/gpu.present`` (NVIDIA k8s-device-plugin and GPU
  operator docs); DRA DeviceClass ``gpu.nvidia.com`` (kubernetes-sigs/dra-driver-nvidia-gpu); Docker gets the
  GPUs through a device request with the ``gpu`` capability (NVIDIA Container Toolkit).
* AMD -- resource ``amd.com/gpu`` (ROCm/k8s-device-plugin README); node labeller label
  ``amd.com/gpu.product-name`` (e.g. ``AMD_Instinct_MI300X_OAM``, ROCm/k8s-device-plugin
  cmd/k8s-node-labeller and docs/advanced/node-labelling.md); the AMD GPU operator's NodeFeatureRule labels
  GPU nodes ``feature.node.kubernetes.io/amd-gpu: "true"`` (ROCm/gpu-operator
  helm-charts-k8s/templates/gpu-nfd-default-rule.yaml); DRA DeviceClass ``gpu.amd.com``
  (ROCm/gpu-operator helm-charts-k8s/templates/dra-driver-deviceclass.yaml). A container needs ``/dev/kfd``
  and ``/dev/dri`` and the groups owning them (video, render): ROCm docs, "Running ROCm Docker containers"
  (``--device=/dev/kfd --device=/dev/dri --group-add video``). ROCm runs on x86-64 Linux only (ROCm system
  requirements).
* Intel -- resources ``gpu.intel.com/i915`` and ``gpu.intel.com/xe`` (one per kernel driver; xe for Battlemage /
  Arc Pro B-series and newer, i915 for Flex/Max: intel/intel-device-plugins-for-kubernetes
  cmd/gpu_plugin/README.md); NFD rule label ``intel.feature.node.kubernetes.io/gpu: "true"``
  (deployments/nfd/overlays/node-feature-rules/node-feature-rules.yaml, which the plugin's NFD install uses to
  place the plugin itself) and product label ``gpu.intel.com/product`` (cmd/gpu_plugin/labels.md); DRA
  DeviceClass ``gpu.intel.com`` (intel/intel-resource-drivers-for-kubernetes). A container needs ``/dev/dri`` and
  the render group (Intel GPU docs, "Docker": ``--device /dev/dri --group-add render``).
* Taints: no vendor mandates one. NVIDIA's default is the resource name, and Kubernetes' ExtendedResourceToleration
  admission plugin tolerates taints named after the extended resource a pod asks for, so the resource name is
  the default taint key for every vendor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

VendorName = Literal["none", "nvidia", "amd", "intel"]
#: what a base image's name says it was built for (see :func:`image_stack`)
Stack = Literal["cuda", "rocm", "oneapi"]


@dataclass(frozen=True)
class DockerAccess:
    """What ``docker run`` needs for this vendor's devices (the container runs unprivileged)."""

    device_request: bool = False
    """A Docker device request with the ``gpu`` capability (NVIDIA Container Toolkit); then the engine must have
    the ``nvidia`` runtime."""
    devices: tuple[str, ...] = ()
    """Host device nodes (or directories of them) passed as they are: ``--device PATH``."""
    groups: tuple[str, ...] = ()
    """Host groups whose members may open those nodes; the runner adds the owning groups' ids (``--group-add``)."""


@dataclass(frozen=True)
class Vendor:
    name: VendorName
    label: str
    """How people write it: NVIDIA, AMD, Intel."""
    resources: tuple[str, ...]
    """Device-plugin resources of the vendor; the first is the default."""
    product_label: str
    """Node label whose value ``accelerator.product`` selects."""
    presence_label: tuple[str, str] | None
    """The feature-discovery label its GPU nodes carry (NFD rule of the vendor's install); the built-in profiles
    of the vendor select on it."""
    dra_device_class: str
    docker: DockerAccess
    torch_device: str
    """What torch calls the device: ``cuda`` (CUDA, and ROCm's HIP build) or ``xpu``."""
    torch_build: str
    """How a torch build for this vendor shows it (checked when the image's torch is used): ``cuda``
    (``torch.version.cuda``), ``hip`` (``torch.version.hip``), ``xpu`` (``torch.xpu``)."""
    stacks: tuple[Stack, ...]
    """Base image stacks that can drive the vendor's GPUs."""
    platforms: tuple[str, ...]
    backends: tuple[str, ...]
    """``framework.backend`` values with a device build for this vendor."""
    resource_pattern: str | None = None
    """More valid resource names (NVIDIA's MIG slices), as a regular expression."""
    mig: bool = False
    runtime: str | None = None
    """Docker runtime the engine must have for the device request."""

    @property
    def default_resource(self) -> str:
        return self.resources[0]

    def accepts_resource(self, name: str) -> bool:
        return name in self.resources or bool(self.resource_pattern and re.fullmatch(self.resource_pattern, name))


VENDORS: dict[str, Vendor] = {
    "nvidia": Vendor(
        name="nvidia", label="NVIDIA", resources=("nvidia.com/gpu",), resource_pattern=r"nvidia\.com/mig-[0-9]+g\.[0-9]+gb",
        product_label="nvidia.com/gpu.product", presence_label=("nvidia.com/gpu.present", "true"),
        dra_device_class="gpu.nvidia.com", docker=DockerAccess(device_request=True), runtime="nvidia",
        torch_device="cuda", torch_build="cuda", stacks=("cuda",), platforms=("linux/amd64", "linux/arm64"),
        backends=("onnxruntime-gpu", "torch", "transformers", "vllm"), mig=True),
    "amd": Vendor(
        name="amd", label="AMD", resources=("amd.com/gpu",),
        product_label="amd.com/gpu.product-name", presence_label=("feature.node.kubernetes.io/amd-gpu", "true"),
        dra_device_class="gpu.amd.com", docker=DockerAccess(devices=("/dev/kfd", "/dev/dri"), groups=("video", "render")),
        torch_device="cuda", torch_build="hip", stacks=("rocm",), platforms=("linux/amd64",), backends=("torch",)),
    "intel": Vendor(
        name="intel", label="Intel", resources=("gpu.intel.com/xe", "gpu.intel.com/i915"),
        product_label="gpu.intel.com/product", presence_label=("intel.feature.node.kubernetes.io/gpu", "true"),
        dra_device_class="gpu.intel.com", docker=DockerAccess(devices=("/dev/dri",), groups=("render",)),
        torch_device="xpu", torch_build="xpu", stacks=("oneapi",), platforms=("linux/amd64",), backends=("torch",)),
}
"""Every vendor but ``none`` (no accelerator)."""

NVIDIA_DEFAULT_RESOURCE = VENDORS["nvidia"].default_resource
"""The schema's default resource when no vendor is named (kept so a CPU profile's hash does not move)."""

#: base image name -> stack; the first match wins. Names from the vendors' registries: nvidia/cuda,
#: nvcr.io/nvidia/pytorch; rocm/dev-ubuntu-*, rocm/pytorch, rocm/vllm; intel/oneapi-*,
#: intel/intel-extension-for-pytorch:*-xpu, intel/deep-learning-essentials.
_STACK_PATTERNS: tuple[tuple[str, Stack], ...] = (
    (r"(^|/)rocm/|(^|[/:_.-])rocm[0-9._-]", "rocm"),
    (r"(^|/)nvidia/cuda[:@]|(^|/)nvcr\.io/nvidia/|(^|[:/_.-])cuda[0-9._-]|-cudnn", "cuda"),
    (r"(^|/)intel/(oneapi|deep-learning-essentials)|(^|/)intel/intel-extension-for-pytorch:.*xpu|[:_-]xpu([._-]|$)",
     "oneapi"),
)


def vendor(name: str) -> Vendor | None:
    """The row of ``name``; None for ``none``."""
    return VENDORS.get(name)


def image_stack(ref: str) -> Stack | None:
    """``cuda``, ``rocm`` or ``oneapi`` when a base image's reference names one (``nvidia/cuda:12.6...``,
    ``rocm/pytorch:rocm6.4...``, ``intel/oneapi-basekit``...); None for a plain OS or Python image."""
    for pattern, stack in _STACK_PATTERNS:
        if re.search(pattern, ref.lower()):
            return stack
    return None


def stack_vendor(stack: Stack) -> Vendor:
    """The vendor whose GPUs a stack drives."""
    return next(v for v in VENDORS.values() if stack in v.stacks)
