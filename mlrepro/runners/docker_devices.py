"""The accelerator's devices on a Docker engine, from the vendor's row (``vendors.VENDORS[...].docker``).

* NVIDIA: a device request with the ``gpu`` capability; the engine must have the ``nvidia`` runtime (NVIDIA
  Container Toolkit), checked in ``docker info`` before anything is created.
* AMD (``/dev/kfd``, ``/dev/dri``) and Intel (``/dev/dri``): the device nodes are passed as they are
  (``--device PATH``) and the container's unprivileged user gets the groups that own them (``--group-add``).
  The ids are taken from the host: the group names of the vendors' docs (video, render) mean whatever the
  *image's* ``/etc/group`` says, and the render group's id differs between distributions, so a name could
  grant nothing. ROCm's and Intel's container guides add the host's ids for the same reason.

The host is only looked at when the engine runs here (a Unix socket and the engine's name is this host's): then
a missing device node stops the run before anything is created, with one line. Behind a remote engine the
devices and the groups' names are passed, and the engine refuses a missing device when the container starts
(the runner reports that as one line too and removes the container).
"""

from __future__ import annotations

import grp
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlrepro.errors import RuntimeFailure
from mlrepro.profiles.vendors import VENDORS, Vendor

if TYPE_CHECKING:  # pragma: no cover
    import docker

GidOf = Callable[[Path], int]
GroupId = Callable[[str], "int | None"]


class GpuRuntimeUnavailable(RuntimeFailure):
    """A GPU was asked for but the engine cannot hand it to a container (no NVIDIA runtime, no device node)."""


@dataclass(frozen=True)
class DeviceAccess:
    """What ``containers.create`` gets for the accelerator: Docker's ``devices`` strings
    (``/dev/kfd:/dev/kfd:rwm``) and ``group_add`` entries (group ids as strings, or names)."""

    devices: tuple[str, ...] = ()
    group_add: tuple[str, ...] = ()


def device_mapping(path: str) -> str:
    """Docker's ``--device`` string for a host node passed at the same path, readable, writable, mknod-able."""
    return f"{path}:{path}:rwm"


def _gid(path: Path) -> int:
    return path.stat().st_gid


def _group_id(name: str) -> int | None:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None


def host_device_access(row: Vendor, root: Path = Path("/"), gid_of: GidOf = _gid,
                       group_id: GroupId = _group_id) -> DeviceAccess:
    """The devices and groups of ``row`` on this host (``root``: tests point it at a fake tree).

    Raises :class:`GpuRuntimeUnavailable` when a device node is missing. The groups are the owners of the
    nodes (``/dev/kfd``, every node under ``/dev/dri``) and the host's groups named by the vendor (video, render),
    as numeric ids; group 0 is never added (it would give the container root's group)."""
    gids: set[int] = set()
    for device in row.docker.devices:
        path = root / device.lstrip("/")
        if not path.exists():
            raise GpuRuntimeUnavailable(
                f"the profile asks for an {row.label} GPU but this Docker engine's host has no {device} "
                f"({_driver_hint(row)}); run on a host with the GPU and its driver, or use a CPU profile")
        # a directory (/dev/dri): the nodes in it (card*, renderD*), not its by-path/ symlinks
        nodes = sorted(p for p in path.iterdir() if not p.is_dir() and not p.is_symlink()) if path.is_dir() \
            else [path]
        gids.update(gid_of(p) for p in nodes)
    for name in row.docker.groups:
        gid = group_id(name)
        if gid is not None:
            gids.add(gid)
    gids.discard(0)
    return DeviceAccess(devices=tuple(device_mapping(d) for d in row.docker.devices),
                        group_add=tuple(str(g) for g in sorted(gids)))


def named_device_access(row: Vendor) -> DeviceAccess:
    """The devices and the vendor's group names as they are (an engine on another host: its ids are unknown)."""
    return DeviceAccess(devices=tuple(device_mapping(d) for d in row.docker.devices), group_add=row.docker.groups)


def _driver_hint(row: Vendor) -> str:
    return {"amd": "the amdgpu driver is not loaded there", "intel": "no i915 or xe driver is loaded there"}.get(
        row.name, "its driver is not loaded there")


def engine_is_local(client: docker.DockerClient, info: dict[str, Any] | None = None) -> bool:
    """True when the engine answers on a Unix socket and calls itself by this host's name: its ``/dev`` is ours."""
    base = str(getattr(client.api, "base_url", ""))
    if not base.startswith("http+docker://localhost"):
        return False
    name = (info if info is not None else client.info() or {}).get("Name")
    return bool(name) and name == socket.gethostname()


def check_nvidia_runtime(info: dict[str, Any]) -> None:
    runtimes = info.get("Runtimes") or {}
    if "nvidia" not in runtimes:
        names = ", ".join(sorted(runtimes)) or "none"
        raise GpuRuntimeUnavailable("the profile asks for a GPU but this Docker engine has no NVIDIA runtime "
                                    f"(runtimes: {names}); install the NVIDIA Container Toolkit or use a CPU profile")


def engine_device_access(client: docker.DockerClient, vendor_name: str, root: Path = Path("/")) -> DeviceAccess:
    """Check that the engine can give the container ``vendor_name``'s GPUs, before anything is created, and
    what to ask for: nothing more for NVIDIA (the device request is part of the config), the device nodes and
    groups for the others. Raises :class:`GpuRuntimeUnavailable` (one line)."""
    row = VENDORS[vendor_name]
    info = client.info() or {}
    if row.docker.device_request:
        check_nvidia_runtime(info)
        return DeviceAccess()
    if engine_is_local(client, info):
        return host_device_access(row, root)
    return named_device_access(row)


def device_kwargs(devices: Sequence[str], group_add: Sequence[str]) -> dict[str, Any]:
    """The ``containers.create`` keywords for device nodes and groups (none when empty)."""
    out: dict[str, Any] = {}
    if devices:
        out["devices"] = list(devices)
    if group_add:
        out["group_add"] = list(group_add)
    return out
