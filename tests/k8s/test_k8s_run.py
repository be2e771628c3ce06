"""A run on the cluster path end to end against the API stand-in: the Job applied, followed by watch, the
real harness run by the test's kubelet, results collected through the helper pod, placed in the tree."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from mlrepro.cli.main import app

cli = CliRunner()


# the reference workload, short (as tests/runners/test_pipeline_native.py runs it natively)
REFERENCE = ["benchmark.settings.min_duration_ms=500",
             "benchmark.modes=[performance,accuracy]"]


def test_success_collects_into_the_same_tree_as_local_runs(kube, launch, tmp_path):
    messages: list[str] = []
    result = launch(sets=REFERENCE, messages=messages, into=tmp_path / "sub", collect=True)
    assert result.target == "kubernetes" and result.ok, result.runs
    perf, acc = result.runs
    assert perf.validity == "VALID" and perf.result and perf.result > 0
    assert perf.exit_code == 0 and acc.exit_code == 0
    # the objects mlrepro created are the ones `generate` renders, applied server-side, idempotently
    jobs = {j["metadata"]["name"]: j for j in kube.objects("jobs")}
    assert set(jobs) == {perf.run_id, acc.run_id}
    applies = [r for r in kube.requests() if r.verb == "patch" and r.content_type.startswith("application/apply-patch")]
    assert {r.resource for r in applies} == {"configmaps", "persistentvolumeclaims", "jobs"}
    assert all(r.query.get("fieldManager") == "mlrepro" for r in applies)
    # live phase changes were reported
    assert any(f"{perf.run_id}: pod {perf.run_id}-" in m and "Running (on node node-1)" in m for m in messages)
    # one watch connection per kind, for both runs
    assert kube.standin.watch_connections == {"jobs": 1, "pods": 1}
    # the ConfigMap is gone after the run, the claim stays, the helper pods are deleted
    assert kube.objects("configmaps") == []
    assert len(kube.objects("persistentvolumeclaims")) == 2
    assert [p for p in kube.objects("pods") if "collect" in p["metadata"]["name"]] == []
    # the results were placed in the tree exactly as local runs are
    report = result.collect_report
    assert report is not None and len(report.placed) == 1 and not report.rejected
    placed = report.placed[0].path
    assert (placed / "performance" / "run_1" / "mlperf_log_summary.txt").is_file()
    assert (placed / "accuracy" / "accuracy.txt").read_text().startswith("accuracy=")
    # and `mlrepro runs` / `logs` / `check` work from the record
    rows = json.loads(cli.invoke(app, ["runs", "--output", "json"]).stdout)
    assert {(r["run_id"], r["target"], r["status"]) for r in rows} == {(perf.run_id, "kubernetes", "succeeded"),
                                                                      (acc.run_id, "kubernetes", "succeeded")}
    logs = cli.invoke(app, ["logs", perf.run_id])
    assert logs.exit_code == 0 and "VALID" in logs.stdout
    assert cli.invoke(app, ["check", str(tmp_path / "sub")]).exit_code == 0
