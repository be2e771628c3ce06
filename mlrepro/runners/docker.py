"""Docker target: the benchmark container on a local engine, configured from the same PodSpec as the Job (and
a model server's container, from the run's ServerSpec, on a user network the client joins).

Results go to a named volume (``mlrepro-results-<run id>``) or a host directory the user names; the run
spec is bind-mounted read-only; the container runs non-root with a read-only root filesystem, no
capabilities and no-new-privileges; the accelerator comes as the vendor needs it (a device request for NVIDIA,
device nodes and their groups for AMD and Intel: :mod:`mlrepro.runners.docker_devices`).
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from mlrepro.errors import BadInputError, RuntimeFailure
from mlrepro.harness.record import IMAGE_DIGEST_ENV
from mlrepro.harness.sysinfo.runtime import ENV_HOST_SYSTEM, ENV_TARGET
from mlrepro.image.errors import one_line
from mlrepro.runners.base import (
    Progress,
    RunHandle,
    RunnerConfig,
    RunOutcome,
    RunStatus,
    ServerHandle,
    ServerNotReady,
    no_progress,
    status_from_exit_code,
    verify_results,
)
from mlrepro.runners.docker_config import (
    default_results,
    docker_run_config,
    docker_server_config,
    network_name,
    write_config_dir,
)
from mlrepro.runners.docker_devices import engine_device_access
from mlrepro.runners.locations import DockerVolume, HostDir, parse_location
from mlrepro.runners.logfile import last_line
from mlrepro.state.paths import RunPaths
from mlrepro.state.state_id import state_labels

if TYPE_CHECKING:  # pragma: no cover
    import docker

    from mlrepro.profiles.loader import ResolvedProfile
    from mlrepro.render.jobspec import JobSpec
    from mlrepro.results.rundir import HarnessRun
    from mlrepro.state.store import RunRecord

STOP_GRACE_S = 10


class ContainerError(RuntimeFailure):
    """The engine refused to create or start the container, or lost it."""


def build_for_target(resolved: ResolvedProfile, progress: Progress, client: docker.DockerClient | None = None) -> str:
    """Build (or find, when up to date) the profile's image on the local engine; its reference."""
    from mlrepro.image.builder import build_image
    from mlrepro.image.progress import BuildNote, StepStarted

    def on_event(event: object) -> None:
        if isinstance(event, BuildNote):
            progress(f"build: {event.message}")
        elif isinstance(event, StepStarted):
            progress(f"build: step {event.step}/{event.total}: {event.instruction}")

    result = build_image(resolved, client=client, on_event=on_event)
    progress(f"image {result.ref} ({'up to date' if result.skipped else f'built in {result.seconds:.0f} s'})")
    return result.ref


HOST_SYSTEM_FILE = "host-system.json"
"""The host's own probe, written beside the run spec in the read-only config mount (see sysinfo.runtime)."""


class DockerRunner:
    target = "docker"

    def __init__(self, config: RunnerConfig, client: docker.DockerClient | None = None) -> None:
        from mlrepro.image.engine import connect

        self.config = config
        self.client = client or connect()
        self._deadlines: dict[str, float] = {}
        self._networks: dict[str, str] = {}         # run id -> the user network its server and client share
        self._host_system: str | None = None
        self.device_root = Path("/")
        """Where the engine host's /dev is read when the engine runs here (docker_devices)."""

    def host_system_json(self) -> str:
        """This host's probe (hardware and OS only), taken once per runner: the container cannot see the
        host's network cards (own network namespace) nor, unprivileged, its DIMM table."""
        if self._host_system is None:
            import json

            from mlrepro.harness.sysinfo import collect_system, host_view

            self._host_system = json.dumps(host_view(collect_system()), indent=2, sort_keys=True) + "\n"
        return self._host_system

    def _paths(self, run_id: str) -> RunPaths:
        return RunPaths.of(self.config.state_dir, run_id)

    def prepare(self, resolved: ResolvedProfile, progress: Progress = no_progress) -> str:
        return self.config.image or build_for_target(resolved, progress, self.client)

    def launch(self, job: JobSpec) -> RunHandle:
        import docker

        pod = job.pod
        paths = self._paths(job.run_id)
        config_dir = write_config_dir(pod, paths.config_dir)
        host_file = config_dir / HOST_SYSTEM_FILE
        host_file.write_text(self.host_system_json(), encoding="utf-8")
        host_file.chmod(0o644)
        results: HostDir | DockerVolume = default_results(job.run_id)
        user = None
        if self.config.results_dir is not None:
            results = HostDir(host_results_dir(self.config.results_dir))
            user = results_user()
        extra_env = {ENV_TARGET: self.target,
                     ENV_HOST_SYSTEM: f"{pod.config_volume.mount_path.rstrip('/')}/{HOST_SYSTEM_FILE}"}
        cfg = docker_run_config(pod, config_dir, results, extra_env=extra_env)
        labels = state_labels(self.config.state_dir)      # prune removes only objects of its own state directory
        cfg = replace(cfg, labels={**cfg.labels, **labels})
        if job.run_id in self._networks:           # the client of a model server: on the server's network
            cfg = replace(cfg, network=self._networks[job.run_id])
        if user is not None:
            cfg = replace(cfg, user=user)
        elif isinstance(results, HostDir):   # root launched it: the image's user writes the run's folder
            prepare_run_folder(results.path / job.run_id, cfg.user)
        digest = image_digest(self.client, cfg.image)
        if digest:   # recorded by the harness as the run's image digest (mlrepro reproduce gets that image)
            cfg = replace(cfg, environment={**cfg.environment, IMAGE_DIGEST_ENV: digest})
        if cfg.gpu_count and cfg.gpu_vendor:   # before anything is created on the engine
            access = engine_device_access(self.client, cfg.gpu_vendor, self.device_root)
            if not cfg.gpu_device_request:
                cfg = replace(cfg, devices=list(access.devices), group_add=list(access.group_add))
        try:
            if isinstance(results, DockerVolume):   # made here, not by the mount, so that it carries the labels
                self.client.volumes.create(name=results.name,
                                           labels={**labels, "mlrepro.io/run-id": job.run_id})
            container = self.client.containers.create(**cfg.create_kwargs())
        except docker.errors.ImageNotFound:
            self._drop_empty_volume(results)
            raise ContainerError(f"image {cfg.image} not found on the engine: build it first "
                                 f"(mlrepro build -p {job.profile_name})") from None
        except docker.errors.APIError as exc:
            self._drop_empty_volume(results)
            raise ContainerError(f"cannot create container {cfg.name}: {one_line(exc.explanation or exc)}") \
                from None
        try:
            container.start()
        except docker.errors.APIError as exc:
            self._remove(container.id)       # created but never started: nothing of it may stay behind
            raise ContainerError(f"cannot start container {cfg.name}: {one_line(exc.explanation or exc)}") from None
        self._deadlines[job.run_id] = float(job.policy.deadline_seconds)
        return RunHandle(run_id=job.run_id, target=self.target, ref=container.id, results=results,
                         log_path=paths.log, image=job.image)

    def _drop_empty_volume(self, results: HostDir | DockerVolume) -> None:
        """Remove the results volume :meth:`launch` made for a container that could not be created (it is
        empty); best effort: ``mlrepro prune`` removes it otherwise (the run is recorded as failed)."""
        if isinstance(results, DockerVolume):
            try:
                remove_volume(self.client, results.name)
            except ContainerError:
                pass

    def _container(self, handle: RunHandle):  # -> docker.models.containers.Container
        import docker

        try:
            return self.client.containers.get(handle.ref)
        except docker.errors.NotFound:
            raise ContainerError(f"container of run {handle.run_id} is gone") from None

    def wait(self, handle: RunHandle, progress: Progress = no_progress) -> RunOutcome:
        import requests

        container = self._container(handle)
        limit = self._deadlines.get(handle.run_id)
        try:
            result = container.wait(timeout=limit) if limit else container.wait()
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            self._stop(container)
            self._save_logs(handle)
            return RunOutcome(RunStatus.timeout, None, f"deadline of {limit:.0f} s exceeded: container stopped")
        code = int(result.get("StatusCode", 1))
        self._save_logs(handle)
        if isinstance(handle.results, HostDir):
            own_results(handle.results.path / handle.run_id)
        container.reload()
        if code == 137 and (container.attrs.get("State") or {}).get("OOMKilled"):
            return RunOutcome(RunStatus.failed, code, "killed: out of memory (raise resources.limits.memory)")
        return RunOutcome(status_from_exit_code(code), code, last_line(handle.log_path))

    def _save_logs(self, handle: RunHandle) -> None:
        import docker

        try:
            data = self._container(handle).logs(stdout=True, stderr=True)
        except (ContainerError, docker.errors.APIError):
            return
        handle.log_path.parent.mkdir(parents=True, exist_ok=True)
        handle.log_path.write_bytes(data)

    def logs(self, handle: RunHandle, follow: bool = False) -> Iterator[str]:
        import docker

        try:
            container = self.client.containers.get(handle.ref)
        except docker.errors.NotFound:
            if not handle.log_path.is_file():
                raise RuntimeFailure(f"run {handle.run_id} has no container and no saved log "
                                     f"({handle.log_path})") from None
            yield from handle.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
            return
        buffer = b""
        for chunk in container.logs(stream=True, follow=follow, stdout=True, stderr=True):
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                yield line.decode("utf-8", "replace")
        if buffer:
            yield buffer.decode("utf-8", "replace")

    def fetch_results(self, handle: RunHandle, dest: Path) -> HarnessRun:
        """Copy ``/results/<run id>`` out through the engine API (from the container while it exists, else
        from its volume), or from the bind-mounted host directory; safely extracted, then verified."""
        import docker

        from mlrepro.runners.safe_extract import safe_extract

        shutil.rmtree(dest, ignore_errors=True)
        if isinstance(handle.results, HostDir):
            src = handle.results.path / handle.run_id
            if not src.is_dir():
                raise ContainerError(f"run {handle.run_id} wrote no results ({src} is missing)")
            with tempfile.TemporaryFile() as archive:  # through the same checks as an engine archive
                with tarfile.open(fileobj=archive, mode="w") as tar:
                    tar.add(src, arcname=handle.run_id)
                archive.seek(0)
                safe_extract(archive, dest, strip_components=1)
            return verify_results(dest, handle.run_id)
        try:
            container = self.client.containers.get(handle.ref)
        except docker.errors.NotFound:
            assert isinstance(handle.results, DockerVolume)
            fetch_from_volume(self.client, handle.results.name, handle.image, handle.run_id, dest,
                              labels=state_labels(self.config.state_dir))
            return verify_results(dest, handle.run_id)
        try:
            stream, _ = container.get_archive(f"/results/{handle.run_id}")
        except docker.errors.NotFound:
            raise ContainerError(f"run {handle.run_id} wrote no results (/results/{handle.run_id} is missing)") \
                from None
        safe_extract(stream, dest, strip_components=1)
        return verify_results(dest, handle.run_id)

    def cleanup(self, handle: RunHandle, *, release_results: bool = False) -> None:
        """Remove the container; its results volume too with ``release_results`` (they were fetched and
        verified on this machine). A directory given with --results-dir is the user's: never removed."""
        self._deadlines.pop(handle.run_id, None)
        self._remove(handle.ref)
        if release_results and isinstance(handle.results, DockerVolume):
            remove_volume(self.client, handle.results.name)

    def cancel(self, handle: RunHandle) -> None:
        """Stop the container (the harness gets SIGTERM, writes its record and exits 130; SIGKILL after
        STOP_GRACE_S), keep its output, remove it. Idempotent, safe against a concurrent removal."""
        import docker

        try:
            container = self.client.containers.get(handle.ref)
        except docker.errors.NotFound:
            return
        self._stop(container)
        self._save_logs(handle)
        self._remove(handle.ref)
        if isinstance(handle.results, HostDir):
            own_results(handle.results.path / handle.run_id)

    def _remove(self, ref: str) -> None:
        import docker

        try:
            self.client.containers.get(ref).remove(force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.status_code != 409:    # 409: a removal is already in progress (a concurrent cancel)
                raise ContainerError(f"cannot remove container {ref[:12]}: {one_line(exc.explanation or exc)}") \
                    from None

    def check(self, job: JobSpec) -> None:
        """A --results-dir whose parent does not exist, or a model on a cluster's claim, is refused before anything
        starts."""
        if job.server is not None and job.server.model.kind == "claim":
            raise BadInputError("serve.model_source: claim is a Kubernetes PersistentVolumeClaim; a Docker run takes "
                                "the model from the image or a host directory (serve.model_source: host-path)")
        if self.config.results_dir is not None:
            root = self.config.results_dir.expanduser().absolute()
            if not root.is_dir() and not root.parent.is_dir():
                raise BadInputError(f"--results-dir {self.config.results_dir}: {root.parent} does not exist "
                                    "(create it first)")

    def submit(self, jobs: Sequence[JobSpec]) -> None:
        return None

    def close(self) -> None:
        return None

    # ---- the model server: a container on the run's user network ------------------------------------------
    def start_server(self, job: JobSpec, progress: Progress = no_progress) -> tuple[JobSpec, ServerHandle]:
        """A user network for the run (labelled, so prune finds it), the server container on it under its name
        (the client's URL names it), with the accelerator and the engine's health check."""
        import docker

        server = job.server
        if server is None:
            raise ContainerError(f"run {job.run_id} has no model server to start")
        labels = {**state_labels(self.config.state_dir), "mlrepro.io/run-id": job.run_id}
        net = network_name(job.run_id)
        cfg = docker_server_config(server, net, extra_env={ENV_TARGET: self.target})
        cfg = replace(cfg, labels={**cfg.labels, **labels})      # prune finds a stopped server as a run's container
        if cfg.gpu_count and cfg.gpu_vendor:
            access = engine_device_access(self.client, cfg.gpu_vendor, self.device_root)
            if not cfg.gpu_device_request:
                cfg = replace(cfg, devices=list(access.devices), group_add=list(access.group_add))
        try:
            self.client.networks.create(net, driver="bridge", labels=labels, check_duplicate=True)
        except docker.errors.APIError as exc:
            raise ContainerError(f"cannot create network {net}: {one_line(exc.explanation or exc)}") from None
        self._networks[job.run_id] = net
        try:
            container = self.client.containers.create(**cfg.create_kwargs())
            container.start()
        except docker.errors.ImageNotFound:
            self._drop_network(net)
            raise ContainerError(f"image {cfg.image} not found on the engine: build it first "
                                 f"(mlrepro build -p {job.profile_name})") from None
        except docker.errors.APIError as exc:
            self._remove(cfg.name)
            self._drop_network(net)
            raise ContainerError(f"cannot start the model server {cfg.name}: {one_line(exc.explanation or exc)}") \
                from None
        url = server.url(cfg.name)
        progress(f"model server {server.engine} starting (container {cfg.name}, {url} on network {net})")
        return job, ServerHandle(run_id=job.run_id, target=self.target, name=cfg.name, ref=container.id, url=url,
                                 log_path=self._paths(job.run_id).server_log,
                                 ready_timeout_s=float(server.ready_timeout_s), network=net)

    def wait_server(self, server: ServerHandle, progress: Progress = no_progress) -> None:
        """Until the health check says healthy; the container's end (out of memory, an error: its last log
        lines) or the ready timeout is a ServerNotReady."""
        import time

        import docker

        from mlrepro.runners.native import SERVER_POLL_S

        started = time.monotonic()
        while True:
            try:
                container = self.client.containers.get(server.ref)
            except docker.errors.NotFound:
                raise ServerNotReady(f"the model server container {server.name} is gone") from None
            state = container.attrs.get("State") or {}
            health = (state.get("Health") or {}).get("Status")
            if health == "healthy":
                progress(f"model server ready in {time.monotonic() - started:.0f} s ({server.url})")
                return
            if state.get("Status") in ("exited", "dead") or health == "unhealthy":
                tail = self._server_tail(server)
                if state.get("OOMKilled"):
                    raise ServerNotReady(f"the model server was killed: out of memory (raise serve.resources.limits."
                                         f"memory): {tail}")
                what = f"exited with status {state.get('ExitCode')}" if state.get("Status") != "running" \
                    else "failed its health check"
                raise ServerNotReady(f"the model server {what} before it was ready: {tail or 'no output'}")
            if time.monotonic() - started > server.ready_timeout_s:
                raise ServerNotReady(f"the model server did not get ready within {server.ready_timeout_s:.0f} s "
                                     f"(serve.ready_timeout_seconds): {self._server_tail(server) or 'no output'}")
            time.sleep(SERVER_POLL_S)

    def _server_tail(self, server: ServerHandle, lines: int = 5) -> str:
        import docker

        try:
            text = self.client.containers.get(server.ref).logs(tail=lines * 4).decode("utf-8", "replace")
        except docker.errors.APIError:
            return ""
        kept = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
        return " | ".join(kept[-lines:])

    def stop_server(self, server: ServerHandle, keep: bool = False) -> None:
        """Its log saved at ``server.log_path``; then (unless ``keep``) the container and the run's network go."""
        import docker

        try:
            data = self.client.containers.get(server.ref).logs(stdout=True, stderr=True)
        except docker.errors.APIError:
            data = None
        if data is not None:
            server.log_path.parent.mkdir(parents=True, exist_ok=True)
            server.log_path.write_bytes(data)
        if keep:
            return
        try:
            container = self.client.containers.get(server.ref)
        except docker.errors.NotFound:
            container = None
        if container is not None:
            self._stop(container)
            self._remove(server.ref)
        if server.network:
            self._drop_network(server.network)
        self._networks.pop(server.run_id, None)

    def _drop_network(self, name: str) -> None:
        import docker

        try:
            self.client.networks.get(name).remove()
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            raise ContainerError(f"cannot remove network {name}: {one_line(exc.explanation or exc)}") from None

    def attach(self, record: RunRecord) -> RunHandle:
        paths = self._paths(record.run_id)
        results = parse_location(record.results_location, self.target) if record.results_location \
            else default_results(record.run_id)
        return RunHandle(run_id=record.run_id, target=self.target, ref=record.job_id, results=results,
                         log_path=paths.log, image=record.image)

    def discover(self, run_id: str) -> RunRecord:
        """Every run of this target is launched, and recorded, by this machine: BadInputError."""
        raise BadInputError(f"run {run_id} is not recorded here (a {self.target} run is only known to the "
                            "state directory that launched it)")

    @staticmethod
    def _stop(container) -> None:  # noqa: ANN001 - docker.models.containers.Container
        import docker

        try:
            container.stop(timeout=STOP_GRACE_S)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError:
            try:
                container.kill()
            except docker.errors.APIError:   # gone or already stopping: either way it is not running on
                pass


def host_results_dir(results_dir: Path) -> Path:
    """The absolute ``results_dir``, mounted at /results (the harness writes ``<results_dir>/<run id>/``); made
    when its parent exists (a missing parent is a typo more often than a wish: BadInputError). Raises
    RuntimeFailure when it cannot be made."""
    root = results_dir.expanduser().absolute()
    if not root.is_dir():
        if not root.parent.is_dir():
            raise BadInputError(f"--results-dir {results_dir}: {root.parent} does not exist (create it first)")
        if root.exists():
            raise BadInputError(f"--results-dir {results_dir}: not a directory")
    try:
        root.mkdir(exist_ok=True)
    except OSError as exc:
        raise RuntimeFailure(f"--results-dir: cannot create {root} ({exc.strerror or exc})") from None
    return root


def results_user() -> str | None:
    """Who the container runs as when it writes into a host directory: the invoking user (``uid:gid``), so
    the results on the host are theirs. None for root: the container keeps the image's non-root user, and
    the results are given to root after the run (:func:`own_results`)."""
    uid, gid = os.getuid(), os.getgid()
    return None if uid == 0 else f"{uid}:{gid}"


def prepare_run_folder(path: Path, user: str) -> None:
    """Make ``path`` and give it to the container's ``uid:gid`` (root only), so the non-root harness can write
    it; :func:`own_results` gives it back when the run ends."""
    uid, _, gid = user.partition(":")
    try:
        path.mkdir(exist_ok=True)
        os.chown(path, int(uid), int(gid or uid))
    except (OSError, ValueError) as exc:
        raise RuntimeFailure(f"--results-dir: cannot prepare {path} ({getattr(exc, 'strerror', None) or exc})") \
            from None


def own_results(path: Path) -> None:
    """Give ``path`` and everything under it to the invoking user (root only: others own them already)."""
    if os.getuid() != 0 or not path.exists():
        return
    for dirpath, dirnames, filenames in os.walk(path):
        for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
            os.lchown(name, 0, 0)


def remove_volume(client: docker.DockerClient, name: str) -> bool:
    """Remove a results volume; False when it was already gone. Raises ContainerError when the engine refuses
    (in use by a container)."""
    import docker

    try:
        client.volumes.get(name).remove(force=True)
    except docker.errors.NotFound:
        return False
    except docker.errors.APIError as exc:
        raise ContainerError(f"cannot remove volume {name}: {one_line(exc.explanation or exc)}") from None
    return True


def fetch_from_volume(client: docker.DockerClient, volume: str, image: str, run_id: str, dest: Path,
                      labels: Mapping[str, str] | None = None) -> Path:
    """Copy ``<volume>/<run id>`` to ``dest`` through the engine API, with a created (never started) container
    (labelled ``mlrepro.io/helper=collect`` plus ``labels``: the state directory's, see
    :mod:`mlrepro.state.state_id`).

    Used when the run's own container is gone: the volume outlives it.
    """
    import docker
    from docker.types import Mount

    from mlrepro.runners.safe_extract import safe_extract

    try:
        client.volumes.get(volume)
    except docker.errors.NotFound:
        raise ContainerError(f"results volume {volume} of run {run_id} does not exist") from None
    try:
        helper = client.containers.create(image, entrypoint=["true"], mounts=[Mount("/results", volume,
                                                                                   read_only=True)],
                                          network_disabled=True,
                                          labels={**(labels or {}), "mlrepro.io/helper": "collect"})
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


def image_digest(client: docker.DockerClient, ref: str) -> str | None:
    """The digest that names ``ref``'s image exactly: its repository digest (``repo@sha256:...``, known once
    pushed or pulled) for ``ref``'s repository, else its image id (``sha256:...``, the digest of its config,
    which is what a local build has). None when the engine does not have it."""
    import docker

    from mlrepro.image.registry import ImageRef

    try:
        image = client.images.get(ref)
    except (docker.errors.ImageNotFound, docker.errors.APIError):
        return None
    repository = ImageRef.parse(ref).repository
    for repo_digest in image.attrs.get("RepoDigests") or ():
        if repo_digest.split("@", 1)[0] == repository:
            return repo_digest
    return image.id
