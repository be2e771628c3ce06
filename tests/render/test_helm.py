"""The Helm chart renders the same objects as `mlrepro generate` (real helm binary), lints strictly, and
its values schema accepts what helm_values writes."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from render_support import BUILTINS, REPO_ROOT, by_kind, find_helm

from mlrepro import __version__
from mlrepro.artifacts import example_inputs
from mlrepro.profiles.loader import ResolvedProfile, profile_hash, resolve_profile
from mlrepro.render.helm_values import dump_values, helm_values
from mlrepro.render.jobspec import build_job_spec
from mlrepro.render.manifests import render_manifests
from mlrepro.render.runspec import build_run_spec


def values_and_objects(resolved: ResolvedProfile, image: str | None = None,
                       run_id: str = "example") -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if image is None:
        image, spec = example_inputs(resolved)
    p = resolved.profile
    spec = build_run_spec(resolved, p.benchmark.scenarios[0], p.benchmark.modes[0], run_id=run_id, image=image)
    job = build_job_spec(resolved, image, spec)
    return helm_values(job), render_manifests(job)


def variants() -> list[ResolvedProfile]:
    return [
        resolve_profile("nvidia-gpu", sets=["accelerator.mig_profile=2g.20gb", "accelerator.count=1",
                                            "accelerator.runtime_class=nvidia", "accelerator.product=NVIDIA-A100",
                                            "scheduling.tolerations=[]", "scheduling.priority_class=high",
                                            "results.storage_class=fast", "results.access_mode=ReadWriteMany",
                                            "job.deadline_seconds=10000000", "job.retries=0"]),
        resolve_profile("x86-cpu", sets=["resources.limits.memory=null", "resources.requests.cpu=null",
                                         "resources.limits.cpu=1500m", "image.user_uid=2147483647",
                                         ("scheduling.tolerations=[{key: dedicated, operator: Equal, value: bench, "
                                          "effect: NoExecute, toleration_seconds: 12345678}]"),
                                         "benchmark.user_conf=*.Offline.target_qps = 10\n"]),
        resolve_profile("nvidia-gpu", sets=["accelerator.request=dra", "accelerator.count=3",
                                            "accelerator.device_class=gpu.example.com"]),
    ]


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm, *args], check=False, capture_output=True, text=True, timeout=60)


# ---- parity ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", BUILTINS)
def test_chart_renders_what_mlrepro_generates(name, resolved_builtins, helm_template):
    values, objs = values_and_objects(resolved_builtins[name])
    assert helm_template(values) == by_kind(objs)


def test_parity_without_any_resources(helm_template):
    resolved = resolve_profile("x86-cpu", sets=["resources.limits.memory=null", "resources.requests.memory=null",
                                                "resources.limits.cpu=null", "resources.requests.cpu=null"])
    values, objs = values_and_objects(resolved)
    assert "resources" not in objs[2]["spec"]["template"]["spec"]["containers"][0]
    assert helm_template(values) == by_kind(objs)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_parity_of_variants(index, helm_template):
    values, objs = values_and_objects(variants()[index], image="registry.local:5000/team/bench:abc",
                                      run_id="x86-cpu-offline-perf-20261128-093012-3fa9")
    assert helm_template(values) == by_kind(objs)


@pytest.mark.parametrize("name", [n for n in BUILTINS if n.startswith("nvidia")])
def test_parity_with_dra(name, helm_template):
    resolved = resolve_profile(name, sets=["accelerator.request=dra"])
    values, objs = values_and_objects(resolved)
    assert [o["kind"] for o in objs] == ["ConfigMap", "PersistentVolumeClaim", "ResourceClaimTemplate", "Job"]
    assert helm_template(values) == by_kind(objs)


def test_dra_below_kubernetes_1_34_is_refused_by_the_chart(helm, chart_dir, tmp_path):
    values, _ = values_and_objects(resolve_profile("nvidia-gpu", sets=["accelerator.request=dra"]))
    path = tmp_path / "values.yaml"
    path.write_text(dump_values(values), encoding="utf-8")
    out = run_helm(helm, "template", "r", str(chart_dir), "-f", str(path), "--kube-version", "1.33.2")
    assert out.returncode != 0
    assert "deviceClaim (accelerator.request: dra) needs Kubernetes 1.34 or newer" in out.stderr
    ok = run_helm(helm, "template", "r", str(chart_dir), "-f", str(path), "--kube-version", "1.34.0")
    assert ok.returncode == 0, ok.stderr


def test_chart_rbac_is_the_manifests_rbac(helm, chart_dir):
    """--set rbac.create=true installs the same launcher Role as manifests/rbac.yaml (and nothing by default)."""
    out = run_helm(helm, "template", "r", str(chart_dir), "--namespace", "mlrepro", "--set", "rbac.create=true",
                   "--show-only", "templates/rbac.yaml")
    assert out.returncode == 0, out.stderr
    chart = {d["kind"]: d for d in yaml.safe_load_all(out.stdout) if d}
    committed = {d["kind"]: d for d in yaml.safe_load_all((REPO_ROOT / "manifests" / "rbac.yaml").read_text()) if d}
    assert chart["Role"]["rules"] == committed["Role"]["rules"]
    assert chart["RoleBinding"]["roleRef"] == committed["RoleBinding"]["roleRef"]
    assert chart["RoleBinding"]["subjects"] == committed["RoleBinding"]["subjects"]
    default = run_helm(helm, "template", "r", str(chart_dir))
    assert "kind: Role" not in default.stdout and "kind: ServiceAccount" not in default.stdout


def test_release_name_changes_nothing(resolved_builtins, helm_template):
    values, objs = values_and_objects(resolved_builtins["nvidia-gpu"])
    assert helm_template(values, release="another-release") == by_kind(objs)


def test_default_values_render_a_valid_run(helm_template):
    import kubernetes_validate

    from mlrepro.harness.spec import parse_spec

    objs = helm_template(None)
    assert [o["kind"] for o in objs] == ["ConfigMap", "Job", "PersistentVolumeClaim"]
    for obj in objs:
        kubernetes_validate.validate(obj, "1.33.0", strict=True)
    parse_spec(json.loads(objs[0]["data"]["run.json"]))   # a spec the harness accepts


# ---- lint, chart metadata, schema -----------------------------------------------------------------------
def test_lint_default_values(helm, chart_dir):
    out = run_helm(helm, "lint", "--strict", str(chart_dir))
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("name", BUILTINS)
def test_lint_profile_values(name, helm, chart_dir, resolved_builtins, tmp_path):
    values, _ = values_and_objects(resolved_builtins[name])
    path = tmp_path / "values.yaml"
    path.write_text(dump_values(values), encoding="utf-8")
    out = run_helm(helm, "lint", "--strict", str(chart_dir), "-f", str(path))
    assert out.returncode == 0, out.stdout + out.stderr


def test_chart_metadata(chart_dir):
    chart = yaml.safe_load((chart_dir / "Chart.yaml").read_text(encoding="utf-8"))
    assert chart["apiVersion"] == "v2" and chart["name"] == "mlrepro" and chart["version"] == "0.1.0"
    assert chart["appVersion"] == __version__, "the version label must match mlrepro's"
    for name in ("_helpers.tpl", "job.yaml", "pvc.yaml", "configmap.yaml", "NOTES.txt"):
        assert (chart_dir / "templates" / name).is_file()


@pytest.fixture(scope="module")
def values_schema(chart_dir) -> dict[str, Any]:
    return json.loads((chart_dir / "values.schema.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", BUILTINS)
def test_generated_values_satisfy_the_schema(name, resolved_builtins, values_schema):
    values, _ = values_and_objects(resolved_builtins[name])
    # Helm drops null entries before validating; the schema accepts them anyway
    jsonschema.validate(yaml.safe_load(dump_values(values)), values_schema)


def test_default_values_satisfy_the_schema(chart_dir, values_schema):
    jsonschema.validate(yaml.safe_load((chart_dir / "values.yaml").read_text(encoding="utf-8")), values_schema)


@pytest.mark.parametrize("bad", [
    {"unknown": 1},
    {"runId": "Not_A_Label"},
    {"profile": {"name": "x", "hash": "short"}},
    {"run": {"scenario": "Batch", "mode": "performance", "spec": "{}"}},
    {"env": [{"name": "MLREPRO_RUN_ID", "value": "x"}]},
    {"resources": {"limits": {"cpu": "two"}}},
    {"job": {"backoffLimit": -1, "activeDeadlineSeconds": 1, "ttlSecondsAfterFinished": 0}},
    {"results": {"size": "1Gi", "accessMode": "ReadWriteOnce", "extra": True}},
])
def test_schema_is_strict(bad, chart_dir, values_schema, helm):
    values = yaml.safe_load((chart_dir / "values.yaml").read_text(encoding="utf-8"))
    values.update(bad)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(values, values_schema)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bad.yaml"
        path.write_text(json.dumps(bad), encoding="utf-8")
        out = run_helm(helm, "template", "r", str(chart_dir), "-f", str(path))
    assert out.returncode != 0 and "schema" in out.stderr


def test_notes_say_how_to_follow_and_collect(helm, chart_dir):
    out = run_helm(helm, "install", "demo", str(chart_dir), "--dry-run=client", "--namespace", "bench")
    assert out.returncode == 0, out.stderr
    notes = out.stdout.split("NOTES:", 1)[1]
    assert "mlrepro logs example -f --namespace bench" in notes
    assert "kubectl --namespace bench logs -f job/example" in notes
    assert "mlrepro collect example --namespace bench --into submission/ --submitter <Org>" in notes


def test_install_tools_is_idempotent():
    if find_helm() != str(REPO_ROOT / ".tools" / "bin" / "helm"):
        pytest.skip("helm was not installed by scripts/install-tools.sh")
    env = {**os.environ, "PATH": "/usr/bin:/bin"}   # no pip needed: nothing to download
    out = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "install-tools.sh")], check=False, capture_output=True, text=True,
                         env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "already installed" in out.stdout and "v4." in out.stdout


# ---- property: arbitrary text survives values → helm → YAML exactly as render_manifests has it -----------
# Unicode spaces other than " " are left out: Helm (Go) writes a value ending in one (e.g. NBSP) as a plain
# scalar and its output loses the trailing space. Characters render refuses (control characters, U+2028/9,
# U+FFFE/F) are left out too: see test_manifests.test_unsafe_characters_are_refused.
NASTY = st.text(alphabet=st.one_of(st.sampled_from(list("'\"\n\r\t #:{}$()[]&*!|>%@`\\-=<~?")),
                                   st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp"),
                                                 blacklist_characters="\ufffe\uffff")), max_size=30)
ENV_NAME = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,12}\Z").filter(lambda n: not n.startswith("MLREPRO_"))


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(env=st.dictionaries(ENV_NAME, NASTY, max_size=4), selector_value=NASTY, user_conf=NASTY)
@example(env={"A": "$(HOME) $$x", "B": "{{ .Values.runId }}", "C": "a # b", "D": "it's \"q\"\nline2",
              "E": "y", "F": "1e3", "G": "0o17", "H": "=", "I": "<<", "J": "ünï €", "K": "", "L": "1:20"},
         selector_value="{{ include \"x\" . }}", user_conf="# comment\n*.Offline.target_qps: 5\n")
def test_parity_with_arbitrary_text(env, selector_value, user_conf, helm_template):
    base = resolve_profile("nvidia-gpu")
    p = base.profile
    profile = p.model_copy(update={
        "env": env,
        "scheduling": p.scheduling.model_copy(update={"node_selector": {"kubernetes.io/arch": "amd64",
                                                                        "example.com/pool": selector_value}}),
        "benchmark": p.benchmark.model_copy(update={"user_conf": user_conf}),
    })
    resolved = ResolvedProfile(profile=profile, hash=profile_hash(profile), sources=())
    values, objs = values_and_objects(resolved, image="reg.example/x:1", run_id="prop")
    assert helm_template(values, go_reader=True) == by_kind(objs)
