"""The local container is configured from the same PodSpec as the Kubernetes Job."""

from pathlib import Path

from mlrepro.profiles import resolve_profile
from mlrepro.render.jobspec import build_job_spec
from mlrepro.render.manifests import render_manifests
from mlrepro.render.runspec import build_run_spec
from mlrepro.runners.docker_config import docker_run_config, results_volume_name, write_config_dir
from mlrepro.runners.locations import HostDir


def pod_and_job(profile: str, *sets: str):
    resolved = resolve_profile(profile, sets=list(sets))
    spec = build_run_spec(resolved, "Offline", "performance", run_id="r1")
    job_spec = build_job_spec(resolved, "img:tag", spec)
    job = next(o for o in render_manifests(job_spec) if o["kind"] == "Job")
    return job_spec.pod, job["spec"]["template"]["spec"]["containers"][0]


def test_cpu_container_matches_the_job_container(tmp_path: Path):
    pod, container = pod_and_job("x86-cpu")
    cfg = docker_run_config(pod, write_config_dir(pod, tmp_path / "config"))
    assert cfg.image == container["image"]
    assert cfg.entrypoint == container["command"] and cfg.command == container["args"]
    # the same environment, but what only the Kubernetes view sets (how the run ran, the node: K8S_RUNTIME_ENV)
    from mlrepro.render.podspec import K8S_RUNTIME_ENV

    k8s_only = {e["name"] for e in K8S_RUNTIME_ENV}
    assert cfg.environment == {e["name"]: e["value"] for e in container["env"] if e["name"] not in k8s_only}
    assert cfg.working_dir == container["workingDir"]
    assert cfg.user == "10001:10001"
    assert cfg.read_only and cfg.cap_drop == ["ALL"] and cfg.security_opt == ["no-new-privileges:true"]
    assert cfg.nano_cpus == 2 * 10**9 and cfg.mem_limit == 2 * 2**30 and cfg.mem_reservation == 2**30
    assert cfg.gpu_count == 0
    mounts = {m["target"]: m for m in cfg.mounts}
    assert set(mounts) == {m["mountPath"] for m in container["volumeMounts"]} - {"/tmp"}
    assert mounts["/config"]["read_only"] and mounts["/config"]["type"] == "bind"
    assert mounts["/results"] == {"target": "/results", "source": results_volume_name("r1"), "read_only": False,
                                  "type": "volume"}
    assert "/tmp" in cfg.tmpfs
    assert cfg.labels["mlrepro.io/run-id"] == "r1" and cfg.labels["app.kubernetes.io/managed-by"] == "mlrepro"
    # the config files are what the ConfigMap holds
    assert (tmp_path / "config" / "run.json").read_text() == pod.config_files["run.json"]


def test_gpu_profile_asks_for_devices_and_bind_mount_results(tmp_path: Path):
    pod, container = pod_and_job("nvidia-gpu", "accelerator.count=2")
    cfg = docker_run_config(pod, tmp_path, HostDir(Path("/data/results")))
    assert cfg.gpu_count == 2 == int(container["resources"]["limits"]["nvidia.com/gpu"])
    kwargs = cfg.create_kwargs()
    (request,) = kwargs["device_requests"]
    assert request["Count"] == 2 and request["Capabilities"] == [["gpu"]]
    results = next(m for m in kwargs["mounts"] if m["Target"] == "/results")
    assert results["Type"] == "bind" and results["Source"] == "/data/results"


def test_arm64_profile_platform(tmp_path: Path):
    pod, _ = pod_and_job("arm64-cpu")
    assert docker_run_config(pod, tmp_path).platform == "linux/arm64"


def test_docker_only_environment_is_added_not_in_the_pod(tmp_path: Path):
    pod, container = pod_and_job("x86-cpu")
    extra = {"MLREPRO_TARGET": "docker", "MLREPRO_HOST_SYSTEM": "/config/host-system.json"}
    cfg = docker_run_config(pod, tmp_path, extra_env=extra)
    from mlrepro.render.podspec import K8S_RUNTIME_ENV

    k8s_only = {e["name"] for e in K8S_RUNTIME_ENV}
    assert cfg.environment == {e["name"]: e["value"] for e in container["env"] if e["name"] not in k8s_only} | extra
    assert "MLREPRO_TARGET" not in pod.env_dict        # the Job's pod does not claim Docker


def test_amd_profile_passes_kfd_and_dri_with_their_groups_and_no_device_request(tmp_path: Path):
    pod, container = pod_and_job("amd-gpu", "accelerator.count=2")
    cfg = docker_run_config(pod, tmp_path)
    assert cfg.gpu_count == 2 == int(container["resources"]["limits"]["amd.com/gpu"])
    assert (cfg.gpu_vendor, cfg.gpu_device_request) == ("amd", False)
    kwargs = cfg.create_kwargs()
    assert "device_requests" not in kwargs
    assert kwargs["devices"] == ["/dev/kfd:/dev/kfd:rwm", "/dev/dri:/dev/dri:rwm"]
    assert kwargs["group_add"] == ["video", "render"]      # names; the runner puts the engine host's ids in
    assert kwargs["cap_drop"] == ["ALL"] and kwargs["security_opt"] == ["no-new-privileges:true"]
    assert "privileged" not in kwargs


def test_intel_profile_passes_dri_with_the_render_group(tmp_path: Path):
    pod, container = pod_and_job("intel-gpu")
    kwargs = docker_run_config(pod, tmp_path).create_kwargs()
    assert container["resources"]["limits"]["gpu.intel.com/xe"] == "1"
    assert "device_requests" not in kwargs
    assert (kwargs["devices"], kwargs["group_add"]) == (["/dev/dri:/dev/dri:rwm"], ["render"])


def test_nvidia_and_cpu_profiles_pass_no_device_nodes(tmp_path: Path):
    for profile in ("nvidia-gpu", "x86-cpu"):
        pod, _ = pod_and_job(profile)
        kwargs = docker_run_config(pod, tmp_path).create_kwargs()
        assert "devices" not in kwargs and "group_add" not in kwargs
    pod, _ = pod_and_job("amd-gpu", "accelerator.request=dra")     # DRA is a cluster feature: Docker gets the nodes
    assert docker_run_config(pod, tmp_path).create_kwargs()["devices"][0] == "/dev/kfd:/dev/kfd:rwm"
