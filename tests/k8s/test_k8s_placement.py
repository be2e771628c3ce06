"""Where the collect helper pod runs: on the run pod's node (a node-local volume can only be mounted there, and
the node has the image already: a fresh node would pull it first), with the run's tolerations (a GPU node is
tainted), living the start timeout plus the copy budget."""

from __future__ import annotations

import shutil

from kubelet import harness_on
from typer.testing import CliRunner

from mlrepro.cli.main import app

cli = CliRunner()


def helper_pods(kube) -> list[dict]:
    return [r.body for r in kube.requests() if r.resource == "pods" and r.verb == "create"]


def test_a_node_local_claim_on_a_tainted_gpu_node_is_collected_there(kube, launch, quick_sets):
    (run,) = launch("nvidia-gpu", sets=[*quick_sets, "results.storage_class=local-path"], pending_timeout_s=10).runs
    assert run.results_dir is not None and (run.results_dir / "checksums.sha256").is_file(), run.message
    assert kube.standin.claim_nodes == {f"{run.run_id}-results": "gpu-node-1"}     # the volume lives there
    (helper,) = helper_pods(kube)
    assert kube.standin.collected == [(helper["metadata"]["name"], "gpu-node-1")]
    spec = helper["spec"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    assert "nvidia.com/gpu" not in str(spec["containers"][0]["resources"])           # tolerated, no GPU asked


def test_the_helper_goes_to_the_run_node_where_the_image_is(kube, launch, quick_sets, tmp_path):
    kube.scenario(harness_on("node-2"))
    (run,) = launch(sets=quick_sets, pending_timeout_s=30).runs
    assert run.results_dir is not None, run.message
    # later, from the record: the pods still exist (the Job's TTL), so their node is known again
    shutil.rmtree(kube.state_dir / "runs" / run.run_id / "results")
    out = cli.invoke(app, ["collect", run.run_id, "--into", str(tmp_path / "sub"), "--submitter", "Acme"])
    assert out.exit_code == 1 and "(not-allowed)" in out.output    # the null workload has no MLPerf model...
    # ... but its results were copied first
    assert (kube.state_dir / "runs" / run.run_id / "results" / run.run_id / "checksums.sha256").is_file()
    helpers = helper_pods(kube)
    assert len(helpers) == 2
    assert [node for _pod, node in kube.standin.collected] == ["node-2", "node-2"]
    assert [pod for pod, _node in kube.kubelet.pulls if "-collect-" in pod] == []   # the image was there
    for helper in helpers:
        spec = helper["spec"]
        assert spec["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] == [{
            "weight": 100, "preference": {"matchFields": [{"key": "metadata.name", "operator": "In",
                                                           "values": ["node-2"]}]}}]
    first, later = helpers
    # its lifetime counts from its start on the node, a pull included: the start timeout plus the copy budget
    from mlrepro.runners.kubernetes.collect import COPY_BUDGET_S

    assert first["spec"]["activeDeadlineSeconds"] == 30 + COPY_BUDGET_S
    assert first["spec"]["containers"][0]["command"] == ["sleep", str(30 + COPY_BUDGET_S)]
    assert later["spec"]["activeDeadlineSeconds"] == 600 + COPY_BUDGET_S               # `collect`'s default
