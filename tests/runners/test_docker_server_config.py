"""The model server's container is the Docker view of the same ServerSpec the Deployment comes from: its command,
env and user, the accelerator as the vendor's row says (a device request for NVIDIA, device nodes for AMD), the
model's host directory read-only (in the client too), the run's network and the engine's health check."""

from __future__ import annotations

from pathlib import Path

from mlrepro.profiles import resolve_profile
from mlrepro.render.jobspec import build_job_spec
from mlrepro.render.manifests import render_manifests
from mlrepro.render.runspec import build_run_spec
from mlrepro.render.serverspec import SERVER_ENV
from mlrepro.runners.docker_config import docker_run_config, docker_server_config, network_name, write_config_dir

#: the nvidia-gpu profile with vLLM in its image (the engine --serve vllm runs)
VLLM = ["framework.backend=vllm", "framework.version=0.33.0"]
LLM = ["benchmark.workload=smollm2-135m-demo"]


def job_of(profile: str, *sets: str):  # noqa: ANN201
    resolved = resolve_profile(profile, sets=[*LLM, *sets])
    spec = build_run_spec(resolved, "Offline", "performance", run_id="r1", image="img:tag", target="docker")
    return build_job_spec(resolved, "img:tag", spec)


def test_the_server_container_is_the_deployments_container() -> None:
    job = job_of("nvidia-gpu", *VLLM, "serve.engine=vllm", "serve.args=[--max-num-seqs, '64']")
    assert job.server is not None
    deployment = next(o for o in render_manifests(job) if o["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    cfg = docker_server_config(job.server, network_name("r1"))
    assert cfg.entrypoint == container["command"] == ["mlrepro-serve"] and cfg.command == container["args"]
    assert cfg.environment == {e["name"]: e["value"] for e in container["env"]}
    assert {k: cfg.environment[k] for k, _ in SERVER_ENV} == dict(SERVER_ENV)     # a writable HOME under /tmp
    assert cfg.user == "10001:10001" and cfg.read_only and cfg.cap_drop == ["ALL"]
    assert cfg.name == job.server.name == deployment["metadata"]["name"]
    assert cfg.network == "mlrepro-net-r1"
    kwargs = cfg.create_kwargs()
    assert kwargs["network"] == "mlrepro-net-r1"
    assert kwargs["healthcheck"]["test"] == ["CMD", "mlrepro-serve", "--check", "http://127.0.0.1:8000/health"]
    assert [(r.count, r.capabilities) for r in kwargs["device_requests"]] == [(1, [["gpu"]])]   # the GPU: here
    assert set(cfg.tmpfs) == {"/tmp", "/dev/shm"}


def test_the_client_container_has_no_gpu_and_joins_the_servers_url(tmp_path: Path) -> None:
    job = job_of("nvidia-gpu", *VLLM, "serve.engine=vllm")
    cfg = docker_run_config(job.pod, write_config_dir(job.pod, tmp_path / "config"))
    assert cfg.gpu_count == 0 and "device_requests" not in cfg.create_kwargs()
    assert job.run.workload.options["server"]["base_url"] == f"http://{job.server.name}:8000/v1"
    assert job.run.workload.backend == "openai" and job.run.workload.device == "cpu"


def test_an_amd_server_gets_the_device_nodes() -> None:
    job = job_of("amd-gpu", "serve.engine=sglang")
    cfg = docker_server_config(job.server, "n")
    assert not cfg.gpu_device_request and cfg.gpu_vendor == "amd"
    assert cfg.devices == ["/dev/kfd:/dev/kfd:rwm", "/dev/dri:/dev/dri:rwm"]


def test_a_model_on_a_host_directory_is_mounted_read_only_in_both(tmp_path: Path) -> None:
    job = job_of("x86-cpu-llm", "serve.engine=transformers", "serve.model_source=host-path",
                 "serve.host_path=/srv/models", "serve.model=/models/m.gguf")
    server = docker_server_config(job.server, "n")
    assert server.mounts == [{"target": "/models", "source": "/srv/models", "type": "bind", "read_only": True}]
    client = docker_run_config(job.pod, write_config_dir(job.pod, tmp_path / "config"))
    assert {"target": "/models", "source": "/srv/models", "type": "bind", "read_only": True} in client.mounts
    native = build_run_spec(resolve_profile("x86-cpu-llm", sets=[*LLM, "serve.engine=transformers",
                                                             "serve.model_source=host-path",
                                                             "serve.host_path=/srv/models",
                                                             "serve.model=/models/m.gguf"]),
                            "Offline", "performance", run_id="r2", target="native")
    assert native.workload.options["server"]["model"] == "/srv/models/m.gguf"     # natively: the host's path
