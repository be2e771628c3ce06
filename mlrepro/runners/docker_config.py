"""PodSpec → ``docker run`` settings: the local view of the same pod the Kubernetes Job runs.

Pure data (no engine), so tests can assert the mapping field by field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from mlrepro.render.podspec import PodSpec
from mlrepro.runners.docker_devices import device_kwargs, device_mapping
from mlrepro.runners.locations import DockerVolume, HostDir

VOLUME_PREFIX = "mlrepro-results-"
CONTAINER_PREFIX = "mlrepro-"


@dataclass(frozen=True)
class DockerRunConfig:
    image: str
    name: str
    entrypoint: list[str]
    command: list[str]
    environment: dict[str, str]
    user: str
    working_dir: str
    labels: dict[str, str]
    mounts: list[dict[str, Any]]          # docker.types.Mount keyword arguments
    tmpfs: dict[str, str]
    read_only: bool
    cap_drop: list[str]
    security_opt: list[str]
    nano_cpus: int | None
    mem_limit: int | None
    mem_reservation: int | None
    gpu_count: int
    platform: str
    gpu_vendor: str | None = None
    """The accelerator's vendor (a key of vendors.VENDORS); None without one."""
    gpu_device_request: bool = False
    """Ask for ``gpu_count`` GPUs through a device request (NVIDIA); else ``devices`` and ``group_add``."""
    devices: list[str] = field(default_factory=list)
    """Host device nodes passed as they are (``/dev/kfd:/dev/kfd:rwm``)."""
    group_add: list[str] = field(default_factory=list)
    """Groups of the container's user: the vendor's group names here; the runner puts the host's ids in."""
    extra: dict[str, Any] = field(default_factory=dict)

    def create_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``client.containers.create``: the accelerator as a device request (NVIDIA) or
        as device nodes and groups (AMD, Intel)."""
        from docker.types import Mount

        kwargs: dict[str, Any] = {
            "image": self.image, "name": self.name, "entrypoint": self.entrypoint, "command": self.command,
            "environment": self.environment, "user": self.user, "working_dir": self.working_dir,
            "labels": self.labels, "mounts": [Mount(**m) for m in self.mounts], "tmpfs": self.tmpfs,
            "read_only": self.read_only, "cap_drop": self.cap_drop, "security_opt": self.security_opt,
            "platform": self.platform, "detach": True,
        }
        if self.nano_cpus:
            kwargs["nano_cpus"] = self.nano_cpus
        if self.mem_limit:
            kwargs["mem_limit"] = self.mem_limit
        if self.mem_reservation:
            kwargs["mem_reservation"] = self.mem_reservation
        if self.gpu_count and self.gpu_device_request:
            from docker.types import DeviceRequest

            kwargs["device_requests"] = [DeviceRequest(count=self.gpu_count, capabilities=[["gpu"]])]
        if self.gpu_count:
            kwargs.update(device_kwargs(self.devices, self.group_add))
        return kwargs


def results_volume_name(run_id: str) -> str:
    return VOLUME_PREFIX + run_id


def default_results(run_id: str) -> DockerVolume:
    """The results location of a Docker run unless a host directory is given: ``mlrepro-results-<run id>``."""
    return DockerVolume(results_volume_name(run_id))


def docker_run_config(pod: PodSpec, config_dir: Path, results: HostDir | DockerVolume | None = None,
                      extra_env: Mapping[str, str] | None = None) -> DockerRunConfig:
    """Map the pod to container settings.

    ``config_dir`` is a host directory holding the pod's config files (mounted read-only where the
    ConfigMap would be); ``results`` is mounted where the claim would be: a named volume (default
    ``mlrepro-results-<run id>``) or a host directory (bind mount); ``extra_env`` is what only the Docker
    target sets (how the run ran, where the host's probe is), added to the pod's environment.
    """
    location = results or default_results(pod.run_id)
    row = pod.gpu.vendor_row if pod.gpu is not None else None
    if isinstance(location, HostDir):
        results_mount = {"target": pod.results_volume.mount_path, "source": str(location.path), "read_only": False,
                         "type": "bind"}
    else:
        results_mount = {"target": pod.results_volume.mount_path, "source": location.name, "read_only": False,
                         "type": "volume"}
    config_mount = {"target": pod.config_volume.mount_path, "source": str(config_dir.resolve()), "type": "bind",
                    "read_only": True}
    return DockerRunConfig(
        image=pod.image,
        name=CONTAINER_PREFIX + pod.run_id,
        entrypoint=list(pod.command),
        command=list(pod.args),
        environment=pod.env_dict | dict(extra_env or {}),
        user=pod.user,
        working_dir=pod.working_dir,
        labels=dict(pod.labels) | dict(pod.annotations),
        mounts=[config_mount, results_mount],
        tmpfs={path: "rw,nosuid,nodev,size=256m" for path in pod.tmpfs_paths},
        read_only=pod.security.read_only_root_filesystem,
        cap_drop=list(pod.security.drop_capabilities),
        security_opt=["no-new-privileges:true"] if not pod.security.allow_privilege_escalation else [],
        nano_cpus=pod.cpu_limit_nanocpus,
        mem_limit=pod.memory_limit_bytes,
        mem_reservation=pod.memory_request_bytes,
        gpu_count=pod.gpu_count,
        platform=pod.platform,
        gpu_vendor=row.name if row else None,
        gpu_device_request=bool(row and row.docker.device_request),
        devices=[device_mapping(d) for d in row.docker.devices] if row else [],
        group_add=list(row.docker.groups) if row else [],
    )


def write_config_dir(pod: PodSpec, config_dir: Path) -> Path:
    """Write the pod's config files (run.json, user.conf) where the read-only bind mount expects them."""
    config_dir.mkdir(parents=True, exist_ok=True)
    for name, text in pod.config_files.items():
        path = config_dir / name
        path.write_text(text, encoding="utf-8")
        path.chmod(0o644)
    config_dir.chmod(0o755)
    return config_dir
