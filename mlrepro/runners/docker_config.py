"""PodSpec → ``docker run`` settings: the local view of the same pod the Kubernetes Job runs.

Pure data (no engine), so tests can assert the mapping field by field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from mlrepro.render.podspec import PodSpec
from mlrepro.render.serverspec import ServerSpec
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
    network: str | None = None
    """The user network the container joins (a model server's run: the server and its client)."""
    healthcheck: dict[str, Any] | None = None
    """The engine's health check (a model server): ``docker ps`` and the runner read its state."""

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
        if self.network:
            kwargs["network"] = self.network
        if self.healthcheck:
            kwargs["healthcheck"] = dict(self.healthcheck)
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
    model_mounts = [{"target": target, "source": source, "type": "bind", "read_only": True}
                    for source, target in pod.host_path_mounts]
    return DockerRunConfig(
        image=pod.image,
        name=CONTAINER_PREFIX + pod.run_id,
        entrypoint=list(pod.command),
        command=list(pod.args),
        environment=pod.env_dict | dict(extra_env or {}),
        user=pod.user,
        working_dir=pod.working_dir,
        labels=dict(pod.labels) | dict(pod.annotations),
        mounts=[config_mount, results_mount, *model_mounts],
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


#: the health check's cadence (nanoseconds, as the Engine API takes them)
HEALTH_INTERVAL_NS = 2_000_000_000
HEALTH_TIMEOUT_NS = 5_000_000_000


def server_container_name(server: ServerSpec) -> str:
    """The server container's name: the run's server name (the client reaches it by it on the run's network)."""
    return server.name


def network_name(run_id: str) -> str:
    """The user network of a run with a model server."""
    return f"mlrepro-net-{run_id}"


def docker_server_config(server: ServerSpec, network: str, extra_env: Mapping[str, str] | None = None) -> DockerRunConfig:
    """The model server's container: the ServerSpec's command, env and user, a read-only root with a tmpfs at /tmp
    (and a larger /dev/shm for the engines), no capabilities, its accelerator as the vendor's row says (a device
    request for NVIDIA, device nodes and groups for AMD and Intel), the host directory of the model read-only, on
    the run's user network under its name, with the engine's health check (``mlrepro-serve --check``)."""
    from mlrepro.render.serverspec import SERVE_COMMAND, SHM_DIR, TMP_DIR

    row = server.gpu.vendor_row if server.gpu is not None else None
    mounts: list[dict[str, Any]] = []
    if server.model.kind == "host-path" and server.model.host_path and server.model.mount_path:
        mounts.append({"target": server.model.mount_path, "source": server.model.host_path, "type": "bind",
                       "read_only": True})
    limits, requests = server.resources.limits, server.resources.requests
    from mlrepro.profiles.quantity import parse_quantity

    health = f"http://127.0.0.1:{server.port}{server.health_path}"
    return DockerRunConfig(
        image=server.image,
        name=server_container_name(server),
        entrypoint=list(SERVE_COMMAND),
        command=list(server.args()),
        environment=server.env_dict | dict(extra_env or {}),
        user=f"{server.security.uid}:{server.security.gid}",
        working_dir=TMP_DIR,
        labels=dict(server.labels) | dict(server.annotations),
        mounts=mounts,
        tmpfs={TMP_DIR: "rw,nosuid,nodev,size=1g", SHM_DIR: "rw,nosuid,nodev,size=1g"},
        read_only=server.security.read_only_root_filesystem,
        cap_drop=list(server.security.drop_capabilities),
        security_opt=["no-new-privileges:true"] if not server.security.allow_privilege_escalation else [],
        nano_cpus=int(parse_quantity(limits["cpu"]) * 10**9) if "cpu" in limits else None,
        mem_limit=int(parse_quantity(limits["memory"])) if "memory" in limits else None,
        mem_reservation=int(parse_quantity(requests["memory"])) if "memory" in requests else None,
        gpu_count=server.gpu.count if server.gpu else 0,
        platform=server.platform,
        gpu_vendor=row.name if row else None,
        gpu_device_request=bool(row and row.docker.device_request),
        devices=[device_mapping(d) for d in row.docker.devices] if row else [],
        group_add=list(row.docker.groups) if row else [],
        network=network,
        healthcheck={"test": ["CMD", *SERVE_COMMAND, "--check", health], "interval": HEALTH_INTERVAL_NS,
                     "timeout": HEALTH_TIMEOUT_NS, "retries": 3,
                     "start_period": int(server.ready_timeout_s) * 1_000_000_000},
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
