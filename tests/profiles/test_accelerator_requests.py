"""What cannot work on a cluster is refused when the profile is resolved, blaming the key the user set."""

from __future__ import annotations

import pytest

from mlrepro.profiles.errors import ProfileError
from mlrepro.profiles.loader import resolve_profile


@pytest.mark.parametrize("sets,message", [
    (["accelerator.mig_profile=1g.10gb", "accelerator.count=2"],
     "--set: accelerator.count: count 2 with mig_profile 1g.10gb: a container can use only one MIG slice (one CUDA "
     "process sees one MIG device); use count: 1 or whole GPUs"),
    (["accelerator.request=dra", "accelerator.mig_profile=1g.10gb"],
     "--set: accelerator.request: mig_profile with request 'dra' is not supported: MIG slices go through the "
     "device plugin (request: device-plugin)"),
    (["accelerator.device_class=gpu.example.com"],
     "--set: accelerator.device_class: device_class is only used with request: dra"),
])
def test_refused(sets, message):
    with pytest.raises(ProfileError) as err:
        resolve_profile("nvidia-gpu", sets=sets)
    assert str(err.value) == message


def test_dra_on_a_cpu_profile_is_refused():
    with pytest.raises(ProfileError, match="request 'dra' needs an accelerator"):
        resolve_profile("x86-cpu", sets=["accelerator.request=dra"])


def test_dra_and_one_mig_slice_are_accepted():
    assert resolve_profile("nvidia-gpu", sets=["accelerator.request=dra", "accelerator.count=4"]) \
        .profile.accelerator.dra_device_class == "gpu.nvidia.com"
    assert resolve_profile("nvidia-gpu", sets=["accelerator.mig_profile=3g.40gb"]).profile.accelerator.resource_name \
        == "nvidia.com/mig-3g.40gb"
