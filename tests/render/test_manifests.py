"""Kubernetes manifests: schema validation per Kubernetes version, Pod Security "restricted", the committed
manifests/ (drift), RBAC, and YAML that every reader takes the same way."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from render_support import BUILTINS, REPO_ROOT, GoYamlLoader

from mlrepro.artifacts import example_inputs, example_manifests_text
from mlrepro.harness.exit_codes import EXIT_BAD_SPEC
from mlrepro.profiles.loader import ResolvedProfile, builtin_profile_names, profile_hash, resolve_profile
from mlrepro.render.jobspec import build_job_spec
from mlrepro.render.manifests import dump_manifests, dump_yaml, render_manifests
from mlrepro.render.podspec import RenderError
from mlrepro.render.runspec import build_run_spec

# Kubernetes minor versions every manifest must validate against (strict: unknown fields are errors).
_LATEST = ".".join(kubernetes_validate.latest_version().split(".")[:2]) + ".0"
K8S_VERSIONS = sorted({"1.31.0", "1.33.0", "1.35.0", _LATEST}, key=lambda v: tuple(int(x) for x in v.split(".")))
MANIFESTS_DIR = REPO_ROOT / "manifests"
ALLOWED_VOLUME_TYPES = {"configMap", "persistentVolumeClaim", "emptyDir"}


def example_objects(resolved: ResolvedProfile) -> list[dict[str, Any]]:
    image, spec = example_inputs(resolved)
    return render_manifests(build_job_spec(resolved, image, spec))


def pod_spec_of(job: dict[str, Any]) -> dict[str, Any]:
    return job["spec"]["template"]["spec"]


def by_kind(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in objs}


def gpu_variants() -> list[ResolvedProfile]:
    return [resolve_profile("nvidia-gpu", sets=["accelerator.mig_profile=1g.10gb", "accelerator.runtime_class=nvidia",
                                                "accelerator.product=NVIDIA-A100-SXM4-80GB",
                                                "scheduling.tolerations=[]", "scheduling.priority_class=batch-high",
                                                "results.storage_class=fast-ssd", "results.access_mode=ReadWriteOncePod"]),
            resolve_profile("x86-cpu", sets=["resources.limits.memory=null", "resources.requests.cpu=null",
                                             ("scheduling.tolerations=[{key: dedicated, operator: Equal, value: bench, "
                                              "effect: NoExecute, toleration_seconds: 600}]")])]


# ---- schema validation ----------------------------------------------------------------------------------
def test_validator_is_strict():
    """Guard: the validator rejects an unknown field (so the tests below can fail)."""
    job = by_kind(example_objects(resolve_profile("x86-cpu")))["Job"]
    bad = copy.deepcopy(job)
    pod_spec_of(bad)["containers"][0]["gpus"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, "1.33.0", strict=True)


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_manifests_validate(name, version, resolved_builtins):
    for obj in example_objects(resolved_builtins[name]):
        kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_variant_manifests_validate(version):
    for resolved in gpu_variants():
        for obj in example_objects(resolved):
            kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_rbac_validates(version):
    docs = [d for d in yaml.safe_load_all((MANIFESTS_DIR / "rbac.yaml").read_text(encoding="utf-8")) if d]
    assert [d["kind"] for d in docs] == ["ServiceAccount", "Role", "RoleBinding"]
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_committed_manifests_validate_with_the_cli():
    files = sorted(str(p) for p in MANIFESTS_DIR.glob("*.yaml"))
    cli = Path(sys.executable).with_name("kubernetes-validate")
    cmd = [str(cli)] if cli.exists() else [sys.executable, "-m", "kubernetes_validate"]
    for version in ("1.31.0", "1.35.0"):
        out = subprocess.run(cmd + ["--strict", "--quiet", "-k", version, *files], check=False, capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr


# ---- content -------------------------------------------------------------------------------------------
def role_grants(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
            for v in rule["verbs"]}


def test_rbac_rules():
    """The Role grants exactly the calls the runner makes (mlrepro.runners.kubernetes.api.API_CALLS): no more."""
    from mlrepro.runners.kubernetes.api import API_CALLS

    docs = {d["kind"]: d for d in yaml.safe_load_all((MANIFESTS_DIR / "rbac.yaml").read_text(encoding="utf-8")) if d}
    rules = {(g, r): set(rule["verbs"]) for rule in docs["Role"]["rules"]
             for g in rule["apiGroups"] for r in rule["resources"]}
    assert role_grants(docs["Role"]) == set(API_CALLS)
    assert not any("*" in verbs for verbs in rules.values())
    binding = docs["RoleBinding"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "mlrepro-launcher"}
    assert binding["subjects"][0]["name"] == docs["ServiceAccount"]["metadata"]["name"]
    namespaces = {d["metadata"]["namespace"] for d in docs.values()} | {binding["subjects"][0]["namespace"]}
    assert len(namespaces) == 1


@pytest.mark.parametrize("name", BUILTINS)
def test_restricted_pod_security(name, resolved_builtins):
    """The Pod Security Standard "restricted" checks, field by field."""
    spec = pod_spec_of(by_kind(example_objects(resolved_builtins[name]))["Job"])
    psc = spec["securityContext"]
    assert psc["runAsNonRoot"] is True
    assert psc["runAsUser"] > 0 and psc["runAsGroup"] > 0 and psc["fsGroup"] > 0
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "sysctls" not in psc
    for key in ("hostNetwork", "hostPID", "hostIPC", "hostUsers"):
        assert not spec.get(key)
    for volume in spec["volumes"]:
        assert set(volume) - {"name"} <= ALLOWED_VOLUME_TYPES, volume
    containers = spec["containers"] + spec.get("initContainers", [])
    assert [c["name"] for c in containers] == ["harness"]
    for c in containers:
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["readOnlyRootFilesystem"] is True
        assert sc.get("runAsNonRoot", True) is True and sc.get("runAsUser", 1) != 0
        assert not sc.get("privileged")
        assert sc.get("seccompProfile", {"type": "RuntimeDefault"})["type"] in ("RuntimeDefault", "Localhost")
        assert all("hostPort" not in p for p in c.get("ports", []))
    mounts = {m["mountPath"]: m for m in spec["containers"][0]["volumeMounts"]}
    assert mounts["/tmp"]["readOnly"] is False and mounts["/config"]["readOnly"] is True
    assert spec["automountServiceAccountToken"] is False


@pytest.mark.parametrize("name", BUILTINS)
def test_job_policy(name, resolved_builtins):
    resolved = resolved_builtins[name]
    job = by_kind(example_objects(resolved))["Job"]["spec"]
    policy = resolved.profile.job
    assert job["backoffLimit"] == policy.retries
    assert job["activeDeadlineSeconds"] == policy.deadline_seconds
    assert job["ttlSecondsAfterFinished"] == policy.ttl_seconds
    assert job["template"]["spec"]["restartPolicy"] == "Never"
    assert job["podFailurePolicy"]["rules"] == [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        {"action": "FailJob", "onExitCodes": {"containerName": "harness", "operator": "In", "values": [EXIT_BAD_SPEC]}},
    ]
    assert EXIT_BAD_SPEC == 3


@pytest.mark.parametrize("name", BUILTINS)
def test_metadata_on_every_object(name, resolved_builtins):
    resolved = resolved_builtins[name]
    objs = example_objects(resolved)
    assert [o["kind"] for o in objs] == ["ConfigMap", "PersistentVolumeClaim", "Job"]
    metas = [o["metadata"] for o in objs] + [by_kind(objs)["Job"]["spec"]["template"]["metadata"]]
    for meta in metas:
        labels = meta["labels"]
        assert labels["app.kubernetes.io/name"] == "mlrepro"
        assert labels["app.kubernetes.io/instance"] == "example"
        assert labels["app.kubernetes.io/managed-by"] == "mlrepro"
        assert labels["mlrepro.io/profile-hash"] == resolved.short_hash
        assert labels["mlrepro.io/run-id"] == "example"
        assert meta["annotations"]["mlrepro.io/profile-sha256"] == resolved.hash
        assert "namespace" not in meta


def test_config_map_and_claim():
    resolved = resolve_profile("x86-cpu", sets=["benchmark.user_conf=*.Offline.target_qps = 100\n",
                                                "results.size=5Gi", "results.storage_class=standard"])
    image, spec = example_inputs(resolved)
    objs = by_kind(render_manifests(build_job_spec(resolved, image, spec)))
    assert objs["ConfigMap"]["data"] == {"run.json": spec.to_json(), "user.conf": "*.Offline.target_qps = 100\n"}
    claim = objs["PersistentVolumeClaim"]
    assert claim["metadata"]["name"] == "example-results"
    assert claim["spec"] == {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}},
                             "storageClassName": "standard"}
    volumes = {v["name"]: v for v in pod_spec_of(objs["Job"])["volumes"]}
    assert volumes["config"]["configMap"]["name"] == objs["ConfigMap"]["metadata"]["name"]
    assert volumes["results"]["persistentVolumeClaim"]["claimName"] == "example-results"


def test_gpu_scheduling():
    mig, _ = gpu_variants()
    spec = pod_spec_of(by_kind(example_objects(mig))["Job"])
    assert spec["containers"][0]["resources"]["limits"]["nvidia.com/mig-1g.10gb"] == "1"
    assert spec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert spec["runtimeClassName"] == "nvidia"
    assert spec["priorityClassName"] == "batch-high"
    assert spec["nodeSelector"] == {"kubernetes.io/arch": "amd64", "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}


def test_arm64_node_selector(resolved_builtins):
    for name in ("arm64-cpu", "nvidia-gpu-arm64"):
        spec = pod_spec_of(by_kind(example_objects(resolved_builtins[name]))["Job"])
        assert spec["nodeSelector"]["kubernetes.io/arch"] == "arm64"


# ---- committed manifests: no drift ---------------------------------------------------------------------
def test_committed_manifests_are_current():
    names = builtin_profile_names()
    on_disk = sorted(p.name for p in MANIFESTS_DIR.glob("*.yaml"))
    assert on_disk == sorted([f"{n}.yaml" for n in names] + ["rbac.yaml"]), \
        "manifests/ does not match the built-in profiles: run `make manifests`"
    stale = [n for n in names
             if (MANIFESTS_DIR / f"{n}.yaml").read_text(encoding="utf-8") != example_manifests_text(resolve_profile(n))]
    assert not stale, f"manifests/ is out of date for {', '.join(stale)}: run `make manifests`"


def test_render_script_check_mode():
    out = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "render_manifests.py"), "--check"],
                         check=False, capture_output=True, text=True, cwd=REPO_ROOT)
    assert out.returncode == 0, out.stderr


def test_render_script_writes_and_prunes(tmp_path):
    (tmp_path / "gone-profile.yaml").write_text("stale\n")
    (tmp_path / "rbac.yaml").write_text("kept\n")
    script = str(REPO_ROOT / "scripts" / "render_manifests.py")
    out = subprocess.run([sys.executable, script, "--out", str(tmp_path), "--check"], check=False,
                         capture_output=True, text=True)
    assert out.returncode == 1 and "make manifests" in out.stderr
    subprocess.run([sys.executable, script, "--out", str(tmp_path)], check=True, capture_output=True)
    assert sorted(p.name for p in tmp_path.glob("*.yaml")) == sorted(
        [f"{n}.yaml" for n in builtin_profile_names()] + ["rbac.yaml"])
    assert (tmp_path / "rbac.yaml").read_text() == "kept\n"
    assert (tmp_path / "x86-cpu.yaml").read_text() == (MANIFESTS_DIR / "x86-cpu.yaml").read_text()


def test_deterministic_output():
    a = dump_manifests(example_objects(resolve_profile("nvidia-gpu")))
    b = dump_manifests(example_objects(resolve_profile("nvidia-gpu")))
    assert a == b
    assert a.startswith("---\napiVersion: v1\nkind: ConfigMap\n")


# ---- YAML that every reader reads alike -----------------------------------------------------------------
GO_AMBIGUOUS = ["y", "n", "Y", "yes", "No", "on", "OFF", "true", "null", "~", "", "1e3", "0o17", "0O17",
                "0X1F", "0x1f", "0b101", "1_000", "1:20", "2001-12-14", "=", "<<", ".inf", "-.5", "+1", "007",
                "1.0", "3"]


@pytest.mark.parametrize("text", GO_AMBIGUOUS)
def test_ambiguous_strings_are_quoted(text):
    line = dump_yaml({"k": text}).strip()
    assert line.startswith(('k: "', "k: '")), line
    assert yaml.safe_load(line) == {"k": text}
    assert yaml.load(line, Loader=GoYamlLoader) == {"k": text}


def test_multiline_text_is_a_literal_block():
    text = dump_yaml({"user.conf": "a = 1\nb = 2\n"})
    assert text == "user.conf: |\n  a = 1\n  b = 2\n"


# Text with what breaks naive YAML templating: quotes, newlines, $(...), {{ }}, '#', ': ', unicode.
NASTY = st.text(alphabet=st.one_of(st.sampled_from(list("'\"\n\r\t #:{}$()[],&*!|>%@`\\-=<~?")),
                                   st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"),
                                                 blacklist_characters="\ufffe\uffff")), max_size=40)
ENV_NAME = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,20}\Z").filter(lambda n: not n.startswith("MLREPRO_"))


def variant(base: ResolvedProfile, env: dict[str, str], selector: dict[str, str], user_conf: str) -> ResolvedProfile:
    """A profile with arbitrary text in the fields that reach the manifests (validation bypassed on purpose:
    the serialisation must hold for any string)."""
    p = base.profile
    profile = p.model_copy(update={
        "env": env,
        "scheduling": p.scheduling.model_copy(update={"node_selector": {**selector, "kubernetes.io/arch": p.arch}}),
        "benchmark": p.benchmark.model_copy(update={"user_conf": user_conf}),
    })
    return ResolvedProfile(profile=profile, hash=profile_hash(profile), sources=())


def objects_for(resolved: ResolvedProfile) -> list[dict[str, Any]]:
    spec = build_run_spec(resolved, "Offline", "performance", run_id="prop-run", image="reg.example/x:1")
    return render_manifests(build_job_spec(resolved, "reg.example/x:1", spec))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(env=st.dictionaries(ENV_NAME, NASTY, max_size=4),
       selector=st.dictionaries(NASTY.filter(lambda k: k != "kubernetes.io/arch"), NASTY, max_size=3),
       user_conf=NASTY)
@example(env={"A": "$(HOME)", "B": "{{ .Values.x }}", "C": "# not a comment", "D": "'\"\n", "E": "y", "F": "1e3"},
         selector={"y": "n", "=": "<<", "é": "日本語"}, user_conf="*.Offline.target_qps = 1\n# c\n")
def test_yaml_round_trip(env, selector, user_conf):
    objs = objects_for(variant(resolve_profile("x86-cpu"), env, selector, user_conf))
    text = dump_manifests(objs)
    assert list(yaml.safe_load_all(text)) == objs
    assert list(yaml.load_all(text, Loader=GoYamlLoader)) == objs     # read as Go reads plain scalars


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\x9f", "\u2028", "\u2029", "\ufffe"])
@pytest.mark.parametrize("where", ["env", "user_conf"])
def test_unsafe_characters_are_refused(char, where):
    """Characters Go's YAML reader (kubectl, Helm) rejects or reads differently are refused with the key."""
    base = resolve_profile("x86-cpu")
    env, conf = ({"BAD": f"a{char}b"}, "") if where == "env" else ({}, f"x{char}")
    with pytest.raises(RenderError, match="env.BAD" if where == "env" else "user_conf"):
        objects_for(variant(base, env, {}, conf))


@pytest.mark.parametrize("char", ["\t", "\n", "\r", "\xa0", "\u200b", "\ufeff", "\U0001F600", "é"])
def test_other_characters_are_kept(char):
    objs = objects_for(variant(resolve_profile("x86-cpu"), {"OK": f"a{char}b{char}"}, {}, char))
    text = dump_manifests(objs)
    assert list(yaml.safe_load_all(text)) == objs
