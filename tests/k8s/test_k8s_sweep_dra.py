"""Sweeps (profiles x scenarios x modes under a concurrency limit, one group, failures listed with their
diagnosis) and Dynamic Resource Allocation (a ResourceClaimTemplate the pod claims; refused below 1.34)."""

from __future__ import annotations

import json

from kubelet import exits, oom_killed
from typer.testing import CliRunner

from mlrepro.cli.main import app

cli = CliRunner()
IMAGE = "registry.test/mlrepro/bench@sha256:" + "ef" * 32


def test_a_sweep_goes_on_past_a_failed_item_and_lists_it_at_the_end(kube, launch, quick_sets):
    kube.scenario(None, arm64_cpu_offline_acc=oom_killed())
    most_running, submitted_before_first_start = [0], []

    def count(group, plural, type_, obj):   # seen from the cluster: Jobs queued, Jobs resumed and not ended
        jobs = [o for (_, p, _, _), o in kube.standin.state.objects.items() if p == "jobs"]
        running = [j for j in jobs if not j["spec"].get("suspend") and not any(
            c["type"] in ("Complete", "Failed") for c in (j.get("status") or {}).get("conditions", []))]
        if running and not submitted_before_first_start:
            submitted_before_first_start.append(len(jobs))
        most_running[0] = max(most_running[0], len(running))

    kube.server.call(lambda: kube.standin.state.listeners.append(count))
    messages: list[str] = []
    result = launch(profile="x86-cpu,arm64-cpu", sets=quick_sets, modes=["performance", "accuracy"], parallel=2,
                    messages=messages)
    assert len(result.runs) == 4 and not result.ok
    (failed,) = result.failures
    assert failed.run_id.startswith("arm64-cpu-offline-acc-") and failed.profile == "arm64-cpu"
    assert failed.message == "killed: out of memory (OOMKilled; raise resources.limits.memory)"
    ok = [r for r in result.runs if r.status == "succeeded"]
    assert len(ok) == 3 and all(r.results_dir is not None and (r.results_dir / "checksums.sha256").is_file()
                                for r in ok)   # each collected on its own
    assert submitted_before_first_start == [4]   # the whole sweep queued (suspended Jobs) before one started
    assert most_running[0] == 2                   # --parallel 2: two at a time
    assert kube.standin.watch_connections == {"jobs": 1, "pods": 1}
    # one group in `mlrepro runs`
    rows = json.loads(cli.invoke(app, ["runs", "--output", "json"]).stdout)
    assert {r["group"] for r in rows} == {result.group} and len(rows) == 4
    table = cli.invoke(app, ["runs"]).stdout
    assert f"launch {result.group}: 4 run(s), 1 failed, 3 succeeded" in table
    # and the results table ends with the failure and its diagnosis
    import io

    from mlrepro.cli.common import console as make_console
    from mlrepro.cli.report import print_results
    buf = io.StringIO()
    c = make_console()
    c.file = buf
    print_results(c, result)
    lines = buf.getvalue().strip().splitlines()
    at = lines.index(f"1 of 4 run(s) did not succeed (mlrepro runs --group {result.group}):")
    assert f"{failed.run_id}: killed: out of memory (OOMKilled; raise resources.limits.memory)" in lines[at + 1:]


def test_dra_run_claims_its_devices_through_a_resource_claim_template(kube, launch, quick_sets):
    kube.scenario(exits(1, "harness: CUDA requested but no GPU is visible"))
    (run,) = launch("nvidia-gpu", sets=quick_sets + ["accelerator.request=dra", "accelerator.count=2"]).runs
    assert run.status == "failed" and run.exit_code == 1
    applied = [r.body for r in kube.requests() if r.verb == "patch" and r.content_type.startswith("application/apply")]
    assert [o["kind"] for o in applied] == ["ConfigMap", "PersistentVolumeClaim", "ResourceClaimTemplate", "Job"]
    rct, job = applied[2], applied[3]
    assert rct["apiVersion"] == "resource.k8s.io/v1" and rct["metadata"]["name"] == f"{run.run_id}-gpu"
    assert rct["spec"]["spec"]["devices"]["requests"] == [
        {"name": "gpu", "exactly": {"deviceClassName": "gpu.nvidia.com", "count": 2}}]
    pod = job["spec"]["template"]["spec"]
    assert pod["resourceClaims"] == [{"name": "gpu", "resourceClaimTemplateName": f"{run.run_id}-gpu"}]
    (container,) = pod["containers"]
    assert container["resources"]["claims"] == [{"name": "gpu"}]
    assert "nvidia.com/gpu" not in container["resources"].get("limits", {})   # no device-plugin request as well
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert kube.objects("resourceclaimtemplates") == []     # the ended run's template is deleted


def test_dra_on_a_cluster_older_than_1_34_is_refused_before_anything_is_created(kube, quick_sets):
    kube.standin.git_version = "v1.33.5"
    args = ["launch", "-p", "nvidia-gpu", "--target", "k8s", "--image", IMAGE, "--set", "accelerator.request=dra",
            *[a for s in quick_sets for a in ("--set", s)]]
    out = cli.invoke(app, args)
    assert out.exit_code == 2, out.output
    assert out.stderr.strip() == (
        "mlrepro: error: accelerator.request: dra needs Kubernetes 1.34 or newer (resource.k8s.io/v1), but the "
        "cluster's version (standin) is 1.33: use accelerator.request: device-plugin on this cluster")
    assert [r for r in kube.requests() if r.verb in ("patch", "create")] == []
