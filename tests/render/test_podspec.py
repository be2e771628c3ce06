"""The engine-neutral PodSpec: what every engine (Kubernetes Job, Helm, docker run) is derived from."""

from __future__ import annotations

import dataclasses
import json

import pytest

from mlrepro import __version__
from mlrepro.errors import BadInputError
from mlrepro.profiles.loader import resolve_profile
from mlrepro.render.podspec import (
    CONFIG_DIR,
    RESULTS_DIR,
    ConfigMapSource,
    EmptyDirSource,
    PvcSource,
    RenderError,
    Toleration,
    build_pod_spec,
    k8s_escape,
    sha256_text,
)
from mlrepro.render.runspec import build_run_spec


def pod_for(name: str = "x86-cpu", sets: tuple[str, ...] = (), run_id: str = "run-1", image: str = "reg/x:1"):
    resolved = resolve_profile(name, sets=sets)
    spec = build_run_spec(resolved, resolved.profile.benchmark.scenarios[0], resolved.profile.benchmark.modes[0],
                          run_id=run_id, image=image)
    return resolved, spec, build_pod_spec(resolved, image, spec)


def test_cpu_pod_basics():
    resolved, _, pod = pod_for()
    assert pod.name == pod.run_id == "run-1"
    assert pod.image == "reg/x:1" and pod.platform == "linux/amd64"
    assert pod.command == ("mlrepro-harness",)
    assert pod.args == ("--spec", "/config/run.json", "--results", "/results")
    assert pod.working_dir == "/tmp"
    assert pod.env_dict == {"OMP_NUM_THREADS": "2", "MLREPRO_RUN_ID": "run-1",
                            "MLREPRO_PROFILE_HASH": resolved.hash, "MLREPRO_IMAGE": "reg/x:1"}
    assert pod.user == "10001:10001"
    assert pod.gpu is None and pod.gpu_count == 0
    assert dict(pod.resources.requests) == {"cpu": "1", "memory": "1Gi"}
    assert dict(pod.resources.limits) == {"cpu": "2", "memory": "2Gi"}
    assert pod.cpu_limit_nanocpus == 2_000_000_000
    assert pod.memory_limit_bytes == 2 * 2**30
    assert pod.memory_request_bytes == 2**30
    assert dict(pod.scheduling.node_selector) == {"kubernetes.io/arch": "amd64"}
    assert pod.scheduling.tolerations == ()
    assert pod.scheduling.runtime_class is None


def test_volumes_and_config_files():
    _, spec, pod = pod_for()
    assert [(v.name, v.mount_path, v.read_only) for v in pod.volumes] == [
        ("config", CONFIG_DIR, True), ("results", RESULTS_DIR, False), ("tmp", "/tmp", False)]
    cfg = pod.config_volume.source
    assert isinstance(cfg, ConfigMapSource) and cfg.name == "run-1-config"
    assert dict(pod.config_files) == {"run.json": spec.to_json(), "user.conf": ""}
    res = pod.results_volume.source
    assert isinstance(res, PvcSource)
    assert (res.claim_name, res.size, res.access_mode, res.storage_class) == ("run-1-results", "1Gi",
                                                                              "ReadWriteOnce", None)
    assert isinstance(pod.volumes[2].source, EmptyDirSource)
    assert pod.tmpfs_paths == ("/tmp",)


def test_labels_and_annotations():
    resolved, spec, pod = pod_for(run_id="x86-cpu-offline-perf-20261128-093012-3fa9")
    assert dict(pod.labels) == {
        "app.kubernetes.io/name": "mlrepro",
        "app.kubernetes.io/instance": spec.run_id,
        "app.kubernetes.io/component": "benchmark",
        "app.kubernetes.io/managed-by": "mlrepro",
        "app.kubernetes.io/version": __version__,
        "mlrepro.io/profile": "x86-cpu",
        "mlrepro.io/profile-hash": resolved.short_hash,
        "mlrepro.io/run-id": spec.run_id,
        "mlrepro.io/scenario": "Offline",
        "mlrepro.io/mode": "performance",
    }
    assert len(resolved.short_hash) == 12
    assert dict(pod.annotations) == {"mlrepro.io/profile-sha256": resolved.hash,
                                     "mlrepro.io/run-spec-sha256": sha256_text(spec.to_json())}


def test_gpu_pod():
    _, _, pod = pod_for("nvidia-gpu")
    assert pod.gpu is not None and pod.gpu_count == 1
    assert pod.gpu.resource == "nvidia.com/gpu"
    assert dict(pod.resources.limits)["nvidia.com/gpu"] == "1"
    assert "nvidia.com/gpu" not in pod.resources.requests
    # the profile already tolerates the taint: not added twice
    assert pod.scheduling.tolerations == (Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule"),)
    assert pod.env_dict["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"


def test_gpu_toleration_added_and_product_selected():
    _, _, pod = pod_for("nvidia-gpu", sets=("scheduling.tolerations=[]", "accelerator.product=NVIDIA-H100-80GB-HBM3",
                                            "accelerator.taint_key=example.com/gpu", "accelerator.count=4",
                                            "accelerator.runtime_class=nvidia"))
    assert pod.scheduling.tolerations == (Toleration(key="example.com/gpu", operator="Exists", effect="NoSchedule"),)
    assert dict(pod.scheduling.node_selector) == {"kubernetes.io/arch": "amd64",
                                                   "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert pod.scheduling.runtime_class == "nvidia"
    assert pod.gpu_count == 4 and dict(pod.resources.limits)["nvidia.com/gpu"] == "4"


def test_mig_resource():
    _, _, pod = pod_for("nvidia-gpu", sets=("accelerator.mig_profile=1g.10gb",))
    assert pod.gpu is not None and pod.gpu.resource == "nvidia.com/mig-1g.10gb"
    assert dict(pod.resources.limits)["nvidia.com/mig-1g.10gb"] == "1"
    assert "nvidia.com/gpu" not in pod.resources.limits


def test_arm64_selects_arm_nodes():
    _, _, pod = pod_for("arm64-cpu")
    assert pod.platform == "linux/arm64"
    assert dict(pod.scheduling.node_selector) == {"kubernetes.io/arch": "arm64"}
    _, _, gpu = pod_for("nvidia-gpu-arm64")
    assert dict(gpu.scheduling.node_selector) == {"kubernetes.io/arch": "arm64",
                                                   "nvidia.com/gpu.product": "NVIDIA-GH200-480GB"}


def test_arch_selector_added_when_missing():
    _, _, pod = pod_for("arm64-cpu", sets=("scheduling.node_selector={}",))
    assert dict(pod.scheduling.node_selector) == {"kubernetes.io/arch": "arm64"}


def test_contradicting_arch_selector_is_an_error():
    with pytest.raises(RenderError, match="kubernetes.io/arch"):
        pod_for("x86-cpu", sets=("scheduling.node_selector={kubernetes.io/arch: arm64}",))


def test_unset_limits_are_omitted():
    _, _, pod = pod_for(sets=("resources.limits.memory=null", "resources.limits.cpu=null"))
    assert dict(pod.resources.limits) == {}
    assert pod.cpu_limit_nanocpus is None and pod.memory_limit_bytes is None
    assert "limits" not in pod.to_k8s_container()["resources"]


def test_millicpu_quantities():
    _, _, pod = pod_for(sets=("resources.limits.cpu=1500m", "resources.limits.memory=1500M"))
    assert pod.cpu_limit_nanocpus == 1_500_000_000
    assert pod.memory_limit_bytes == 1_500_000_000


@pytest.mark.parametrize("run_id", ["Bad", "with_underscore", "-lead", "x" * 64, "", "a/b"])
def test_run_id_must_be_a_dns_label(run_id):
    resolved = resolve_profile("x86-cpu")
    spec = dataclasses.replace(build_run_spec(resolved, "Offline", "performance", run_id="ok"), run_id=run_id)
    with pytest.raises(RenderError, match="DNS label"):
        build_pod_spec(resolved, "img:1", spec)
    assert issubclass(RenderError, BadInputError)


def test_run_spec_of_another_profile_is_refused():
    spec = build_run_spec(resolve_profile("nvidia-gpu"), "Offline", "performance", run_id="r")
    with pytest.raises(RenderError, match="another profile"):
        build_pod_spec(resolve_profile("x86-cpu"), "img:1", spec)


def test_reserved_env_names_are_refused():
    with pytest.raises(RenderError, match="MLREPRO_RUN_ID"):
        pod_for(sets=("env.MLREPRO_RUN_ID=mine",))


def test_env_is_literal_on_every_engine():
    _, _, pod = pod_for(sets=("env.A=$(HOME)/x$$y",))
    assert pod.env_dict["A"] == "$(HOME)/x$$y"               # docker: as is
    container_env = pod.to_k8s_container()["env"]
    env = {e["name"]: e["value"] for e in container_env if "value" in e}
    assert env["A"] == "$$(HOME)/x$$$$y"                      # kubernetes: $$ -> $ on expansion
    # the Kubernetes view says how the run ran and the node it ran on (downward API), for the system description
    assert env["MLREPRO_TARGET"] == "kubernetes"
    assert {"name": "MLREPRO_NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}} in container_env
    assert k8s_escape("no dollars") == "no dollars"


def test_security_context():
    _, _, pod = pod_for(sets=("image.user_uid=20000",))
    s = pod.security
    assert (s.uid, s.gid) == (20000, 20000)
    assert s.run_as_non_root and s.read_only_root_filesystem and not s.allow_privilege_escalation
    assert s.drop_capabilities == ("ALL",) and s.seccomp_profile == "RuntimeDefault"
    pod_sc = pod.to_k8s_pod_spec()["securityContext"]
    assert pod_sc == {"runAsNonRoot": True, "runAsUser": 20000, "runAsGroup": 20000, "fsGroup": 20000,
                      "seccompProfile": {"type": "RuntimeDefault"}}


def test_pod_spec_is_frozen():
    _, _, pod = pod_for()
    with pytest.raises(dataclasses.FrozenInstanceError):
        pod.image = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        pod.labels["x"] = "y"  # type: ignore[index]


def test_pod_template_view():
    _, _, pod = pod_for("nvidia-gpu", sets=("scheduling.priority_class=bench",))
    tpl = pod.to_k8s_pod_template()
    assert tpl["metadata"] == {"labels": dict(pod.labels), "annotations": dict(pod.annotations)}
    spec = tpl["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec["automountServiceAccountToken"] is False
    assert spec["priorityClassName"] == "bench"
    (container,) = spec["containers"]
    assert container["name"] == "harness"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert [v["name"] for v in spec["volumes"]] == ["config", "results", "tmp"]


def test_generate_names_the_image_that_build_makes(tmp_path):
    """One source for the image reference: what `generate` writes is what `build` tags (and push records)."""
    import yaml

    from mlrepro.artifacts import generate_artifacts
    from mlrepro.image.builder import planned_image

    resolved = resolve_profile("x86-cpu", sets=("image.registry=registry.example.com:5000/team",))
    planned = planned_image(resolved)
    assert planned.ref == f"registry.example.com:5000/team/mlrepro/bench:x86-cpu-{planned.content_hash[:12]}"
    out = generate_artifacts(resolved, tmp_path)
    assert out.image == planned.ref
    job = next(d for d in yaml.safe_load_all((tmp_path / "manifests.yaml").read_text()) if d["kind"] == "Job")
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == planned.ref
    assert yaml.safe_load((tmp_path / "values.yaml").read_text())["image"] == planned.ref
    assert json.loads((tmp_path / "run.json").read_text())["image"] == planned.ref


def test_deterministic():
    a = pod_for()[2]
    b = pod_for()[2]
    assert a == b
    assert a.to_k8s_pod_template() == b.to_k8s_pod_template()


def test_how_the_run_ran_is_not_for_profiles_to_set() -> None:
    resolved = resolve_profile("x86-cpu", sets=["env.MLREPRO_TARGET=native"])
    with pytest.raises(RenderError, match="env.MLREPRO_TARGET is set by mlrepro"):
        build_pod_spec(resolved, "img:tag", build_run_spec(resolved, "Offline", "performance", run_id="r1"))
