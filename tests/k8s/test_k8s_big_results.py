"""Results of a GiB come off the claim with memory that does not grow with them: `mlrepro collect` of a run whose
results hold a 1 GiB file (a sparse file on the claim: no disk, but every byte is read, tarred and sent over the
TLS WebSocket of `pods/exec`), in a process of its own whose peak resident set is measured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml
from kubelet import harness_then_big_file
from typer.testing import CliRunner

from mlrepro.cli.main import app

cli = CliRunner()
HERE = Path(__file__).resolve().parent
BIG = 1 << 30                       # 1 GiB
BIG_FILE = "Offline/performance/run_1/mlperf_log_trace.json"
PEAK_LIMIT_KIB = 100 * 1024         # what collecting may add to the process's resident set, whatever the size


def install_job(kube, tmp_path: Path) -> str:
    """`generate`'s objects created as `kubectl apply -f` would (no record here): the run's id."""
    from kubernetes import client, config

    from mlrepro.artifacts import generate_artifacts
    from mlrepro.profiles import resolve_profile

    resolved = resolve_profile("x86-cpu", ["quick"], ["benchmark.settings.min_duration_ms=300",
                                                      "benchmark.scenarios=[Offline]", "benchmark.modes=[submission]"])
    out = generate_artifacts(resolved, tmp_path / "out", image="registry.test/mlrepro/bench:x86-cpu-1")
    api = config.new_client_from_config(config_file=str(kube.kubeconfig))
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    for obj in yaml.safe_load_all((tmp_path / "out" / "manifests.yaml").read_text()):
        {"Job": batch.create_namespaced_job, "ConfigMap": core.create_namespaced_config_map,
         "PersistentVolumeClaim": core.create_namespaced_persistent_volume_claim}[obj["kind"]]("bench", obj)
    return out.run_id


def collect_measured(args: list[str], out: Path, timeout_s: float = 600) -> dict:
    """Run `mlrepro ARGS` in a child (peak_memory.py); stop it as soon as its resident set is more than
    PEAK_LIMIT_KIB above its start (a copy held in memory is on its way to a GiB: no need to wait for it)."""
    proc = subprocess.Popen([sys.executable, str(HERE / "peak_memory.py"), str(out), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    assert proc.stdout is not None
    head = json.loads(proc.stdout.readline() or "{}")
    assert head, proc.communicate(timeout=60)
    deadline, highest = time.monotonic() + timeout_s, 0
    while proc.poll() is None:
        try:
            rss = next(int(line.split()[1]) for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                       if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            rss = 0
        highest = max(highest, rss - head["start_kib"])
        if highest > PEAK_LIMIT_KIB or time.monotonic() > deadline:
            proc.kill()
            proc.communicate(timeout=60)
            raise AssertionError(f"collect grew by {highest // 1024} MiB (limit {PEAK_LIMIT_KIB // 1024} MiB)"
                                 if highest > PEAK_LIMIT_KIB else f"collect did not end in {timeout_s:.0f} s")
        time.sleep(0.05)                 # sampling the child's memory, not waiting for an event
    _, err = proc.communicate(timeout=60)
    result = json.loads(out.read_text())
    result["stderr"] = err
    return result


def test_a_gib_of_results_is_collected_with_flat_memory(kube, tmp_path):
    kube.scenario(harness_then_big_file(BIG_FILE, BIG))
    run_id = install_job(kube, tmp_path)
    follow = cli.invoke(app, ["logs", run_id, "-f", "--namespace", "bench"])    # returns when the Job has ended
    assert follow.exit_code == 0 and follow.stdout.strip().splitlines()[-1] == "mlrepro-harness: VALID"
    on_claim = kube.claims / "bench" / f"{run_id}-results" / run_id / BIG_FILE
    assert on_claim.stat().st_size == BIG
    result = collect_measured(["collect", run_id, "--namespace", "bench", "--into", str(tmp_path / "sub"),
                               "--submitter", "Acme"], tmp_path / "peak.json")
    try:
        assert result["exit_code"] == 0, result["stderr"]
        assert result["peak_kib"] - result["start_kib"] <= PEAK_LIMIT_KIB, result
        fetched = kube.state_dir / "runs" / run_id / "results" / run_id / BIG_FILE
        assert fetched.stat().st_size == BIG          # every byte crossed the exec stream (and matched its sha256)
        assert [pod for pod, _node in kube.standin.collected] and list((tmp_path / "sub").rglob("accuracy.txt"))
    finally:
        for path in (kube.state_dir / "runs" / run_id / "results").rglob("mlperf_log_trace.json"):
            path.unlink()                              # a GiB on disk: not left for pytest's kept temp dirs


def test_the_exec_is_opened_without_a_capture_and_read_a_message_at_a_time(kube, tmp_path):
    """What the copy above stands on, one level down: the client is told ``capture_all=False`` (``stream()`` does
    not pass it on: kubernetes-client/python issue #2302), so it keeps no second copy, and ExecStream gives each
    stdout message as it comes, then the command's exit status."""
    from mlrepro.runners.base import KubeTarget
    from mlrepro.runners.kubernetes.api import Cluster
    from mlrepro.runners.kubernetes.config import connect
    from mlrepro.runners.kubernetes.execstream import ExecStream

    run_dir = kube.claims / "bench" / "c" / "run"
    run_dir.mkdir(parents=True)
    (run_dir / "data").write_bytes(b"x" * (200 * 1024))
    pod = {"metadata": {"name": "reader"}, "spec": {
        "containers": [{"name": "c", "image": "i", "volumeMounts": [{"name": "r", "mountPath": "/results"}]}],
        "volumes": [{"name": "r", "persistentVolumeClaim": {"claimName": "c"}}]}, "status": {"phase": "Running"}}
    kube.server.call(lambda: kube.standin.state.create("", "pods", "bench", pod))
    cluster = Cluster(connect(KubeTarget()))
    ws = cluster.exec_stream("reader", ["tar", "cf", "-", "-C", "/results", "run"])
    assert type(ws._all).__name__ == "_IgnoredIO"          # the client's own switch, set
    out = ExecStream(ws, idle_timeout_s=60)
    sizes = [len(chunk) for chunk in out.stdout()]
    out.close()
    assert max(sizes) <= 32 * 1024 and sum(sizes) >= 200 * 1024 and out.exit_code == 0
    missing = ExecStream(cluster.exec_stream("reader", ["test", "-d", "/results/nothing"]), idle_timeout_s=60)
    missing.drain()
    missing.close()
    assert missing.exit_code == 1 and missing.received == 0
