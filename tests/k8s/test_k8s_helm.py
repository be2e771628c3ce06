"""The chart on a (stand-in) cluster with the real helm binary: install renders the same Job as `mlrepro
generate`; a second `upgrade --install` with the same values changes nothing; an upgrade to a new rendering
replaces the run (new Job, old claim kept) without tripping over the immutable Job template; an upgrade that
would change an existing Job's template stops with one clear message instead."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def helm() -> str:
    local = REPO / ".tools" / "bin" / "helm"
    path = str(local) if local.is_file() else shutil.which("helm")
    if path is None:
        message = "helm not found (run `make install` or scripts/install-tools.sh)"
        if os.environ.get("MLREPRO_REQUIRE_TOOLS") == "1":
            pytest.fail(message + " and MLREPRO_REQUIRE_TOOLS=1")
        pytest.skip(message)
    return path


def generated(tmp_path: Path, name: str, **kwargs):
    from mlrepro.artifacts import generate_artifacts
    from mlrepro.profiles import resolve_profile

    return generate_artifacts(resolve_profile("x86-cpu"), tmp_path / name, **kwargs)


def test_install_upgrade_and_a_new_run_through_helm(kube, helm, tmp_path):
    import yaml

    def run_helm(*args: str) -> subprocess.CompletedProcess[str]:
        # no OpenAPI document is served by the stand-in: helm's client-side schema check is off (the objects are
        # validated with kubernetes-validate after the test, as everything sent to the stand-in is)
        return subprocess.run([helm, *args, "--kubeconfig", str(kube.kubeconfig), "--namespace", "bench",
                               "--disable-openapi-validation"], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "HOME": str(tmp_path)})

    kube.scenario(None)
    kube.kubelet.scenario_for = lambda job: _idle      # the chart's Jobs are not run here, only installed
    first = generated(tmp_path, "first", image="reg.test/mlrepro/bench:x86-cpu-1")
    out = run_helm("install", "bench", str(REPO / "helm" / "mlrepro"), "-f", str(first.out_dir / "values.yaml"))
    assert out.returncode == 0, out.stderr
    (job,) = kube.objects("jobs")
    rendered = next(d for d in yaml.safe_load_all((first.out_dir / "manifests.yaml").read_text()) if d["kind"] == "Job")
    assert job["metadata"]["name"] == first.run_id and job["spec"] == rendered["spec"]   # the same Job
    uid = job["metadata"]["uid"]

    again = run_helm("upgrade", "--install", "bench", str(REPO / "helm" / "mlrepro"), "-f",
                     str(first.out_dir / "values.yaml"))
    assert again.returncode == 0, again.stderr
    assert [j["metadata"]["uid"] for j in kube.objects("jobs")] == [uid]                 # untouched

    second = generated(tmp_path, "second", image="reg.test/mlrepro/bench:x86-cpu-2")
    up = run_helm("upgrade", "bench", str(REPO / "helm" / "mlrepro"), "-f", str(second.out_dir / "values.yaml"))
    assert up.returncode == 0, up.stderr
    assert [j["metadata"]["name"] for j in kube.objects("jobs")] == [second.run_id]       # the new run's Job
    claims = {c["metadata"]["name"] for c in kube.objects("persistentvolumeclaims")}
    assert claims == {f"{first.run_id}-results", f"{second.run_id}-results"}           # the old results kept
    assert f"mlrepro collect {second.run_id} --namespace bench" in up.stdout             # NOTES

    # the same run id with other content: one clear message, no request that changes the Job
    before = len(kube.requests())
    changed = generated(tmp_path, "changed", image="reg.test/mlrepro/bench:x86-cpu-3", run_id=second.run_id)
    bad = run_helm("upgrade", "bench", str(REPO / "helm" / "mlrepro"), "-f", str(changed.out_dir / "values.yaml"))
    assert bad.returncode != 0
    assert (f"Job {second.run_id} already exists with another run spec or profile, and a Job's pod template "
            "cannot change") in bad.stderr
    assert not [r for r in kube.requests()[before:] if r.resource == "jobs" and r.verb in ("patch", "update")]


async def _idle(ctx) -> None:
    return None
