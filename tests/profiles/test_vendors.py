"""The vendor table decides what an AMD or Intel accelerator needs, and refuses what cannot work on it: one line
per problem, naming the key the user set."""

from __future__ import annotations

import pytest

from mlrepro.profiles.errors import ProfileError
from mlrepro.profiles.loader import builtin_profile_names, resolve_profile
from mlrepro.profiles.vendors import VENDORS, image_stack

CUDA_BASE = "nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04"


@pytest.mark.parametrize("profile,sets,message", [
    ("amd-gpu", ["framework.source=lock", "framework.backend=onnxruntime-gpu"],
     "--set: framework.backend: 'onnxruntime-gpu' is built for CUDA only and cannot drive AMD GPUs (use "
     "framework.backend: torch)"),
    ("intel-gpu", ["framework.source=lock", "framework.backend=onnxruntime-gpu"],
     "--set: framework.backend: 'onnxruntime-gpu' is built for CUDA only and cannot drive Intel GPUs (use "
     "framework.backend: torch)"),
    ("amd-gpu", [f"image.base={CUDA_BASE}"],
     f"--set: image.base: '{CUDA_BASE}' is a CUDA image: AMD GPUs need a ROCm base image"),
    ("intel-gpu", [f"image.base={CUDA_BASE}"],
     f"--set: image.base: '{CUDA_BASE}' is a CUDA image: Intel GPUs need a oneAPI base image"),
    ("intel-gpu", ["accelerator.mig_profile=1g.10gb"],
     "--set: accelerator.mig_profile: MIG is an NVIDIA feature: Intel GPUs have no mig_profile"),
    ("amd-gpu", ["accelerator.mig_profile=3g.40gb"],
     "--set: accelerator.mig_profile: MIG is an NVIDIA feature: AMD GPUs have no mig_profile"),
    ("amd-gpu", ["accelerator.resource=nvidia.com/gpu"],
     "--set: accelerator.resource: nvidia.com/gpu is an NVIDIA resource: AMD GPUs are amd.com/gpu"),
    ("intel-gpu", ["accelerator.resource=amd.com/gpu"],
     "--set: accelerator.resource: amd.com/gpu is an AMD resource: Intel GPUs are gpu.intel.com/xe or "
     "gpu.intel.com/i915"),
    ("amd-gpu", ["accelerator.resource=amd.com/gpu-partition"],
     "--set: accelerator.resource: amd.com/gpu-partition is not a resource of its device plugin: AMD GPUs are "
     "amd.com/gpu"),
    ("nvidia-gpu", ["accelerator.resource=gpu.intel.com/xe"],
     "--set: accelerator.resource: gpu.intel.com/xe is an Intel resource: NVIDIA GPUs are nvidia.com/gpu"),
    ("amd-gpu", ["accelerator.request=dra", "accelerator.device_class=gpu.nvidia.com"],
     "--set: accelerator.device_class: gpu.nvidia.com is another vendor's DRA device class: AMD GPUs are "
     "gpu.amd.com"),
    ("nvidia-gpu", ["image.base=rocm/pytorch:rocm7.2_ubuntu24.04_py3.12_pytorch_release_2.9.1"],
     "--set: image.base: 'rocm/pytorch:rocm7.2_ubuntu24.04_py3.12_pytorch_release_2.9.1' is a ROCm image: NVIDIA "
     "GPUs need a CUDA base image"),
    # a ROCm base on arm64: ROCm publishes x86-64 builds only, whatever the accelerator
    ("x86-cpu", ["image.base=rocm/dev-ubuntu-24.04:6.4.1", "platform=linux/arm64",
                 "scheduling.node_selector={kubernetes.io/arch: arm64}"],
     "--set: image.base: 'rocm/dev-ubuntu-24.04:6.4.1' is a ROCm image, built for linux/amd64 only, but platform is "
     "linux/arm64"),
])
def test_refused(profile, sets, message):
    with pytest.raises(ProfileError) as err:
        resolve_profile(profile, sets=sets)
    assert str(err.value) == message


def test_an_amd_gpu_on_arm64_is_refused_for_the_platform_and_the_rocm_image():
    with pytest.raises(ProfileError) as err:
        resolve_profile("amd-gpu", sets=["platform=linux/arm64"])
    lines = str(err.value).splitlines()
    assert "--set: platform: AMD GPUs need linux/amd64: its GPU software stack is not built for linux/arm64" in lines
    assert any(line.startswith("--set: platform: 'rocm/pytorch:") and line.endswith(
        "is a ROCm image, built for linux/amd64 only, but platform is linux/arm64") for line in lines)


def test_the_air_gapped_debian_base_cannot_carry_a_vendor_framework():
    """The local Debian base has no ROCm/XPU torch and its python3 comes from apt: refused, not built."""
    with pytest.raises(ProfileError) as err:
        resolve_profile("amd-gpu", ["air-gapped"])
    assert str(err.value) == ("<overlay:air-gapped>: image.python_install: source 'image' takes the framework from "
                              "the base image's Python, but python_install 'apt' installs another python3 (use "
                              "python_install: preinstalled)")


def test_the_vendor_decides_resource_taint_and_device_class():
    amd = resolve_profile("amd-gpu", sets=["accelerator.request=dra", "accelerator.count=2"]).profile.accelerator
    assert (amd.resource, amd.taint_key, amd.dra_device_class) == ("amd.com/gpu", "amd.com/gpu", "gpu.amd.com")
    i915 = resolve_profile("intel-gpu", sets=["accelerator.resource=gpu.intel.com/i915"]).profile.accelerator
    assert (i915.resource_name, i915.taint_key) == ("gpu.intel.com/i915", "gpu.intel.com/i915")
    xe = resolve_profile("intel-gpu", sets=["accelerator.request=dra"]).profile.accelerator
    assert xe.dra_device_class == "gpu.intel.com"
    # a vendor named on a CPU profile gets its defaults, not NVIDIA's
    cpu_amd = resolve_profile("x86-cpu", sets=["accelerator.vendor=amd", "accelerator.count=1",
                                               "framework.backend=torch"]).profile
    assert (cpu_amd.accelerator.resource, cpu_amd.accelerator.taint_key, cpu_amd.device) == \
        ("amd.com/gpu", "amd.com/gpu", "cuda")
    # a taint the profile names is kept
    assert resolve_profile("amd-gpu", sets=["accelerator.taint_key=dedicated"]).profile.accelerator.taint_key \
        == "dedicated"


def test_nvidia_profiles_keep_their_hash_and_defaults():
    """The vendor table moved NVIDIA's defaults, not their values: a CPU or NVIDIA profile resolves as before."""
    gpu = resolve_profile("nvidia-gpu").profile.accelerator
    assert (gpu.resource, gpu.taint_key, gpu.dra_device_class) == ("nvidia.com/gpu", "nvidia.com/gpu", "gpu.nvidia.com")
    assert resolve_profile("x86-cpu").short_hash == "1d616e822e3e"      # manifests/x86-cpu.yaml before vendors


@pytest.mark.parametrize("ref,stack", [
    ("nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04", "cuda"),
    ("nvcr.io/nvidia/pytorch:25.01-py3", "cuda"),
    ("pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime", "cuda"),
    ("rocm/pytorch:rocm7.2_ubuntu24.04_py3.12_pytorch_release_2.9.1", "rocm"),
    ("rocm/vllm:rocm7.0.0_vllm_0.10.2_20251006", "rocm"),
    ("rocm/dev-ubuntu-24.04:6.4.1", "rocm"),
    ("intel/intel-extension-for-pytorch:2.8.10-xpu", "oneapi"),
    ("intel/oneapi-basekit:2025.2.0-0-devel-ubuntu24.04", "oneapi"),
    ("intel/deep-learning-essentials:2025.2.0-0-devel-ubuntu24.04", "oneapi"),
    ("intel/vllm:0.14.1-xpu", "oneapi"),
    ("python:3.11-slim-bookworm", None),
    ("mlrepro/debian:bookworm-amd64", None),
    ("ubuntu:24.04", None),
])
def test_image_stack(ref, stack):
    assert image_stack(ref) == stack


def test_builtin_profiles_select_on_their_vendors_discovery_label():
    """The node label of each built-in GPU profile is the one in the vendor table (one place for the fact)."""
    for name in builtin_profile_names():
        p = resolve_profile(name).profile
        row = p.accelerator.vendor_row
        if row is None or row.name == "nvidia":    # NVIDIA's plain device plugin sets no discovery label
            continue
        key, value = row.presence_label
        assert p.scheduling.node_selector[key] == value, name


def test_every_vendor_row_is_consistent():
    for name, row in VENDORS.items():
        assert row.name == name and row.accepts_resource(row.default_resource)
        assert row.torch_device in ("cuda", "xpu") and row.platforms and row.backends
        # either the NVIDIA device request or device nodes: never both, never neither
        assert row.docker.device_request != bool(row.docker.devices)
        assert all(d.startswith("/dev/") for d in row.docker.devices)
