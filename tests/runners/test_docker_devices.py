"""Device nodes and groups of AMD and Intel GPUs on a Docker engine's host, read from a host tree (tests point
the root at a directory laid out like /dev; the group ids are given as a host would have them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlrepro.profiles.vendors import VENDORS
from mlrepro.runners.docker_devices import (
    DeviceAccess,
    GpuRuntimeUnavailable,
    check_nvidia_runtime,
    host_device_access,
    named_device_access,
)

# Ubuntu 24.04 host: video = 44, render = 992 (a dynamic id: it differs from host to host)
HOST_GROUPS = {"video": 44, "render": 992}


def dev_tree(root: Path, *names: str) -> dict[Path, int]:
    """Nodes under root/dev (files stand in for character devices) and the group owning each, as on a ROCm host:
    /dev/kfd and /dev/dri/renderD* belong to render, /dev/dri/card* to video; by-path/ holds symlinks."""
    gids: dict[Path, int] = {}
    for name in names:
        path = root / "dev" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        gids[path] = HOST_GROUPS["render"] if "render" in name or name == "kfd" else HOST_GROUPS["video"]
    by_path = root / "dev" / "dri" / "by-path"
    if (root / "dev" / "dri").is_dir():
        by_path.mkdir()
        (by_path / "pci-0000:83:00.0-render").symlink_to("../renderD128")
    return gids


def test_amd_host_gives_kfd_dri_and_the_owning_groups(tmp_path: Path):
    gids = dev_tree(tmp_path, "kfd", "dri/card0", "dri/renderD128", "dri/card1", "dri/renderD129")
    access = host_device_access(VENDORS["amd"], tmp_path, gid_of=gids.__getitem__, group_id=HOST_GROUPS.get)
    assert access.devices == ("/dev/kfd:/dev/kfd:rwm", "/dev/dri:/dev/dri:rwm")
    assert access.group_add == ("44", "992")              # numeric: the image's /etc/group does not know render


def test_intel_host_gives_dri_and_render(tmp_path: Path):
    gids = dev_tree(tmp_path, "dri/card0", "dri/renderD128")
    access = host_device_access(VENDORS["intel"], tmp_path, gid_of=gids.__getitem__,
                                group_id=lambda name: HOST_GROUPS.get(name) if name == "render" else None)
    assert access == DeviceAccess(devices=("/dev/dri:/dev/dri:rwm",), group_add=("44", "992"))


def test_root_group_is_never_added(tmp_path: Path):
    gids = {p: 0 for p in dev_tree(tmp_path, "kfd", "dri/renderD128")}
    access = host_device_access(VENDORS["amd"], tmp_path, gid_of=gids.__getitem__, group_id=lambda name: None)
    assert access.group_add == ()


@pytest.mark.parametrize("vendor,present,message", [
    ("amd", ["dri/renderD128"], "the profile asks for an AMD GPU but this Docker engine's host has no /dev/kfd "
                                "(the amdgpu driver is not loaded there); run on a host with the GPU and its driver, "
                                "or use a CPU profile"),
    ("amd", [], "the profile asks for an AMD GPU but this Docker engine's host has no /dev/kfd "),
    ("intel", ["kfd"], "the profile asks for an Intel GPU but this Docker engine's host has no /dev/dri (no i915 or "
                       "xe driver is loaded there)"),
])
def test_a_host_without_the_devices_fails_with_one_line(tmp_path: Path, vendor, present, message):
    dev_tree(tmp_path, *present)
    with pytest.raises(GpuRuntimeUnavailable) as err:
        host_device_access(VENDORS[vendor], tmp_path, gid_of=lambda p: 44, group_id=HOST_GROUPS.get)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_a_remote_engine_gets_the_vendors_group_names():
    assert named_device_access(VENDORS["amd"]).group_add == ("video", "render")


def test_nvidia_needs_the_nvidia_runtime():
    check_nvidia_runtime({"Runtimes": {"runc": {}, "nvidia": {}}})
    with pytest.raises(GpuRuntimeUnavailable, match=r"no NVIDIA runtime \(runtimes: runc\)"):
        check_nvidia_runtime({"Runtimes": {"runc": {}}})
