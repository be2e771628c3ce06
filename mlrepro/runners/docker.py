"""Docker target: the benchmark container on a local engine, configured from the same PodSpec as the Job.

Results go to a named volume (``mlrepro-results-<run id>``) or a host directory the user names; the run
spec is bind-mounted read-only; the container runs non-root with a read-only root filesystem, no
capabilities and no-new-privileges; GPUs come through Docker device requests.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from mlrepro.errors import RuntimeFailure
from mlrepro.harness.spec import RunSpec
from mlrepro.harness.sysinfo.runtime import ENV_HOST_SYSTEM, ENV_TARGET
from mlrepro.image.errors import one_line
from mlrepro.render.podspec import PodSpec
from mlrepro.runners.base import RunHandle, RunOutcome, RunStatus, status_from_exit_code
from mlrepro.runners.docker_config import docker_run_config, write_config_dir

if TYPE_CHECKING:  # pragma: no cover
    import docker

LOG_NAME = "harness.log"
HOST_SYSTEM_FILE = "host-system.json"
"""The host's own probe, written beside the run spec in the read-only config mount (see sysinfo.runtime)."""


class GpuRuntimeUnavailable(RuntimeFailure):
    """A GPU was asked for but the engine has no NVIDIA runtime."""


class ContainerError(RuntimeFailure):
    """The engine refused to create or start the container, or lost it."""


def check_gpu_support(client: "docker.DockerClient") -> None:
    runtimes = (client.info() or {}).get("Runtimes") or {}
    if "nvidia" not in runtimes:
        names = ", ".join(sorted(runtimes)) or "none"
        raise GpuRuntimeUnavailable("the profile asks for a GPU but this Docker engine has no NVIDIA runtime "
                                    f"(runtimes: {names}); install the NVIDIA Container Toolkit or use a CPU profile")


class DockerRunner:
    target = "docker"

    def __init__(self, client: "docker.DockerClient", work_dir: Path, pod_for: Callable[[RunSpec], PodSpec],
                 deadline_s: float | None = None, results_dir: Path | None = None) -> None:
        self.client = client
        self.work_dir = work_dir
        self.pod_for = pod_for
        self.deadline_s = deadline_s
        self.results_dir = results_dir      # bind mount instead of a named volume, when given
        self._host_system: str | None = None

    def host_system_json(self) -> str:
        """This host's probe (hardware and OS only), taken once per runner: the container cannot see the
        host's network cards (own network namespace) nor, unprivileged, its DIMM table."""
        if self._host_system is None:
            import json

            from mlrepro.harness.sysinfo import collect_system, host_view

            self._host_system = json.dumps(host_view(collect_system()), indent=2, sort_keys=True) + "\n"
        return self._host_system

    def launch(self, spec: RunSpec) -> RunHandle:
        import docker

        pod = self.pod_for(spec)
        run_dir = self.work_dir / spec.run_id
        config_dir = write_config_dir(pod, run_dir / "config")
        host_file = config_dir / HOST_SYSTEM_FILE
        host_file.write_text(self.host_system_json(), encoding="utf-8")
        host_file.chmod(0o644)
        results_source = None
        if self.results_dir is not None:
            host_dir = (self.results_dir / spec.run_id).resolve()
            host_dir.mkdir(parents=True, exist_ok=True)
            results_source = str(host_dir)
        extra_env = {ENV_TARGET: self.target,
                     ENV_HOST_SYSTEM: f"{pod.config_volume.mount_path.rstrip('/')}/{HOST_SYSTEM_FILE}"}
        cfg = docker_run_config(pod, config_dir, results_source, extra_env=extra_env)
        if cfg.gpu_count:
            check_gpu_support(self.client)
        try:
            container = self.client.containers.create(**cfg.create_kwargs())
            container.start()
        except docker.errors.ImageNotFound:
            raise ContainerError(f"image {cfg.image} not found on the engine: build it first "
                                 f"(mlrepro build -p {pod.labels.get('mlrepro.io/profile', '...')})") from None
        except docker.errors.APIError as exc:
            raise ContainerError(f"cannot start container {cfg.name}: {one_line(exc.explanation or exc)}") from None
        location = results_source or next(m["source"] for m in cfg.mounts if m["target"] == "/results")
        return RunHandle(run_id=spec.run_id, target=self.target, ref=container.id, results_location=location,
                         extra={"log": str(run_dir / LOG_NAME), "container": cfg.name, "started": str(time.time())})

    def _container(self, handle: RunHandle):
        import docker

        try:
            return self.client.containers.get(handle.ref)
        except docker.errors.NotFound:
            raise ContainerError(f"container of run {handle.run_id} is gone") from None

    def wait(self, handle: RunHandle, timeout_s: float | None = None) -> RunOutcome:
        import requests

        container = self._container(handle)
        limit = timeout_s if timeout_s is not None else self.deadline_s
        try:
            result = container.wait(timeout=limit) if limit else container.wait()
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            self._stop(container)
            self._save_logs(handle)
            return RunOutcome(RunStatus.timeout, None, f"deadline of {limit:.0f} s exceeded: container stopped")
        except KeyboardInterrupt:
            self.cancel(handle)
            raise
        code = int(result.get("StatusCode", 1))
        self._save_logs(handle)
        lines = Path(handle.extra["log"]).read_text(encoding="utf-8", errors="replace").strip().splitlines()
        if code == 137 and (container.attrs.get("State") or {}).get("OOMKilled"):
            return RunOutcome(RunStatus.failed, code, "killed: out of memory (raise resources.limits.memory)")
        return RunOutcome(status_from_exit_code(code), code, lines[-1] if lines else "")

    def _save_logs(self, handle: RunHandle) -> None:
        try:
            data = self._container(handle).logs(stdout=True, stderr=True)
        except ContainerError:
            return
        path = Path(handle.extra["log"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def logs(self, handle: RunHandle, follow: bool = False) -> Iterator[str]:
        import docker

        try:
            container = self.client.containers.get(handle.ref)
        except docker.errors.NotFound:
            path = Path(handle.extra.get("log", ""))
            if path.is_file():
                yield from path.read_text(encoding="utf-8", errors="replace").splitlines()
            return
        buffer = b""
        for chunk in container.logs(stream=True, follow=follow, stdout=True, stderr=True):
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                yield line.decode("utf-8", "replace")
        if buffer:
            yield buffer.decode("utf-8", "replace")

    def fetch_results(self, handle: RunHandle, dest: Path) -> Path:
        """Copy ``/results/<run id>`` out of the (stopped) container through the engine API, safely."""
        import docker

        from mlrepro.results.safe_extract import safe_extract

        container = self._container(handle)
        try:
            stream, _ = container.get_archive(f"/results/{handle.run_id}")
        except docker.errors.NotFound:
            raise ContainerError(f"run {handle.run_id} wrote no results (/results/{handle.run_id} is missing)") \
                from None
        safe_extract(stream, dest, strip_components=1)
        return dest

    def remove(self, handle: RunHandle) -> None:
        """Remove the container (the results volume stays)."""
        import docker

        try:
            self.client.containers.get(handle.ref).remove(force=True)
        except docker.errors.NotFound:
            pass

    def cancel(self, handle: RunHandle) -> None:
        import docker

        try:
            container = self.client.containers.get(handle.ref)
        except docker.errors.NotFound:
            return
        self._stop(container)
        self._save_logs(handle)
        container.remove(force=True)

    @staticmethod
    def _stop(container) -> None:
        import docker

        try:
            container.stop(timeout=10)
        except docker.errors.APIError:
            container.kill()


def fetch_from_volume(client: "docker.DockerClient", volume: str, image: str, run_id: str, dest: Path) -> Path:
    """Copy ``<volume>/<run id>`` to ``dest`` through the engine API, with a created (never started) container.

    Used by ``collect`` when the run's own container is gone: the volume outlives it.
    """
    import docker
    from docker.types import Mount

    from mlrepro.results.safe_extract import safe_extract

    try:
        client.volumes.get(volume)
    except docker.errors.NotFound:
        raise ContainerError(f"results volume {volume} of run {run_id} does not exist") from None
    try:
        helper = client.containers.create(image, entrypoint=["true"], mounts=[Mount("/results", volume,
                                                                                   read_only=True)],
                                          network_disabled=True, labels={"mlrepro.io/helper": "collect"})
    except docker.errors.ImageNotFound:
        raise ContainerError(f"image {image} is needed to read volume {volume} but is not on the engine") from None
    try:
        try:
            stream, _ = helper.get_archive(f"/results/{run_id}")
        except docker.errors.NotFound:
            raise ContainerError(f"volume {volume} holds no results of run {run_id}") from None
        safe_extract(stream, dest, strip_components=1)
    finally:
        helper.remove(force=True)
    return dest
