"""Ctrl-C on a cluster run, and collecting from the claim afterwards (through the helper pod), including a
result that was changed on the claim after the harness wrote it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from kubelet import runs_until_deleted
from signals_support import with_sigint
from typer.testing import CliRunner

from mlrepro.cli.main import app

cli = CliRunner()
IMAGE = "registry.test/mlrepro/bench@sha256:" + "cd" * 32
# performance and accuracy in one run of the reference workload: a result collect places on its own
SUBMISSION = ["benchmark.settings.min_duration_ms=500",
              "benchmark.scenarios=[Offline]", "benchmark.modes=[submission]"]


def test_ctrl_c_deletes_the_job_with_its_pods_and_marks_the_run_cancelled(kube, quick_sets):
    from mlrepro.state.store import open_store

    kube.scenario(runs_until_deleted("harness: Server scenario, 600 s"))
    argv = [sys.executable, "-m", "mlrepro.cli.main", "launch", "-p", "x86-cpu", "--target", "k8s",
            "--image", IMAGE, *[a for s in quick_sets for a in ("--set", s)]]
    proc = subprocess.Popen(with_sigint(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy())
    store = open_store(kube.state_dir)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(p["status"].get("phase") == "Running" for p in kube.objects("pods")):
        time.sleep(0.1)
    assert [r.status for r in store.list()] == ["running"], proc.communicate(timeout=5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.decode().strip().splitlines()[-1] == "mlrepro: error: interrupted"
    (record,) = store.list()
    assert record.status == "cancelled" and record.message == "interrupted (Ctrl-C)"
    deletes = [r for r in kube.requests() if r.verb == "delete" and r.resource == "jobs"]
    assert [(d.name, d.query.get("propagationPolicy")) for d in deletes] == [(record.run_id, "Background")]
    assert kube.objects("jobs") == [] and kube.objects("pods") == []      # Background: the pods went too
    assert kube.objects("configmaps") == []
    assert len(kube.objects("persistentvolumeclaims")) == 1               # the claim stays


def test_collect_later_through_the_helper_pod_and_a_tampered_file_is_refused(kube, launch, tmp_path):
    from mlrepro.flow.recorded import collect_runs

    (run,) = launch(sets=SUBMISSION).runs
    assert run.status == "succeeded"
    # only the claim holds the results now (another machine, or the local copy removed)
    local = kube.state_dir / "runs" / run.run_id / "results"
    import shutil

    shutil.rmtree(local)
    claim_dir = kube.claims / "bench" / f"{run.run_id}-results" / run.run_id
    summary = claim_dir / "Offline" / "performance" / "run_1" / "mlperf_log_summary.txt"
    original = summary.read_bytes()
    summary.write_bytes(original.replace(b"Result is : INVALID", b"Result is : VALID") + b"\n")
    report = collect_runs([run.run_id], tmp_path / "sub", submitter="Acme", state_dir=kube.state_dir)
    (rejected,) = report.rejected                 # listed (other runs would still be collected), not placed
    assert rejected.kind == "failed" and not report.placed
    assert "mlperf_log_summary.txt differs from the harness's checksums.sha256" in rejected.reasons[0]
    assert not (tmp_path / "sub" / "open" / "Acme" / "results").exists()
    assert not (local / run.run_id).exists()     # nothing unverified left where collect looks
    assert [p for p in kube.objects("pods") if "collect" in p["metadata"]["name"]] == []   # deleted on failure too
    # the original file back: the CLI collects it, the helper pod is gone again
    summary.write_bytes(original)
    out = cli.invoke(app, ["collect", run.run_id, "--into", str(tmp_path / "sub"), "--submitter", "Acme"])
    assert out.exit_code == 0, out.output
    assert list((tmp_path / "sub" / "open" / "Acme" / "results").rglob("mlperf_log_summary.txt"))
    helpers = [r for r in kube.requests() if r.resource == "pods" and r.verb == "create"]
    assert len(helpers) == 3                    # the pipeline's fetch, the refused collect, this one
    for h in helpers:
        spec = h.body["spec"]
        assert spec["securityContext"]["runAsNonRoot"] and spec["automountServiceAccountToken"] is False
        (c,) = spec["containers"]
        assert c["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                        "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}
        assert c["volumeMounts"] == [{"name": "results", "mountPath": "/results", "readOnly": True}]
    assert [p for p in kube.objects("pods") if "collect" in p["metadata"]["name"]] == []


def test_a_link_out_of_the_claim_is_refused(kube, launch, quick_sets, tmp_path):
    from mlrepro.flow.recorded import collect_runs

    (run,) = launch(sets=quick_sets).runs
    import shutil

    shutil.rmtree(kube.state_dir / "runs" / run.run_id / "results")
    claim_dir = kube.claims / "bench" / f"{run.run_id}-results" / run.run_id
    (claim_dir / "evil").symlink_to("/etc/passwd")
    report = collect_runs([run.run_id], tmp_path / "sub", submitter="Acme", state_dir=kube.state_dir)
    (rejected,) = report.rejected
    assert rejected.kind == "failed" and not report.placed and "evil" in rejected.reasons[0]
    assert not (kube.state_dir / "runs" / run.run_id / "results" / run.run_id / "evil").exists()


def test_a_run_without_results_on_its_claim_says_so(kube, launch, quick_sets, tmp_path):
    (run,) = launch(sets=quick_sets).runs
    import shutil

    shutil.rmtree(kube.state_dir / "runs" / run.run_id / "results")
    shutil.rmtree(kube.claims / "bench" / f"{run.run_id}-results" / run.run_id)
    out = cli.invoke(app, ["collect", run.run_id, "--into", str(tmp_path / "sub"), "--submitter", "Acme"])
    assert out.exit_code == 1
    assert out.stderr.strip() == (f"mlrepro: error: run {run.run_id} wrote no results on claim {run.run_id}-results "
                                  f"({run.run_id}/ is missing)")
