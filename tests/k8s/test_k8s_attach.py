"""After the launching terminal: `logs -f` of a running cluster run streams its pod's log until the Job ends;
a Job mlrepro did not launch (installed with Helm from `generate`'s output) is followed and collected by name."""

from __future__ import annotations

import threading
import time

from kubelet import Ctx, harness_job
from typer.testing import CliRunner

from mlrepro.cli.main import app

cli = CliRunner()


def slow_start(ctx_wait_s: float = 0.5):
    async def scenario(ctx: Ctx) -> None:
        await ctx.pause(ctx_wait_s)       # the follower attaches before the pod exists
        await harness_job(ctx)

    return scenario


def test_logs_follow_streams_a_running_pod_until_the_job_ends(kube, launch, quick_sets):
    from mlrepro.state.store import open_store

    kube.scenario(slow_start())
    done: list = []
    thread = threading.Thread(target=lambda: done.append(launch(sets=quick_sets)), daemon=True)
    thread.start()
    store = open_store(kube.state_dir)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not [r for r in store.list() if r.status == "running"]:
        time.sleep(0.05)
    (record,) = store.list()
    out = cli.invoke(app, ["logs", record.run_id, "-f"])
    thread.join(60)
    assert out.exit_code == 0, out.output
    lines = out.stdout.strip().splitlines()
    assert lines[-1] == "mlrepro-harness: VALID" and any("Offline performance run" in line for line in lines)
    assert done and done[0].ok


def test_a_job_installed_without_mlrepro_is_followed_and_collected_by_name(kube, tmp_path, monkeypatch):
    """`helm install -f values.yaml` (or `kubectl apply -f manifests.yaml`) of `generate`'s output: no record
    here; `logs`/`collect` find the run on the cluster by its id."""
    import yaml
    from kubernetes import client, config

    from mlrepro.artifacts import generate_artifacts
    from mlrepro.profiles import resolve_profile

    resolved = resolve_profile("x86-cpu", ["quick"], ["benchmark.settings.min_duration_ms=500",
                                                      "benchmark.scenarios=[Offline]", "benchmark.modes=[submission]"])
    out = generate_artifacts(resolved, tmp_path / "out", image="registry.test/mlrepro/bench:x86-cpu-1")
    api = config.new_client_from_config(config_file=str(kube.kubeconfig))
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    for obj in yaml.safe_load_all((tmp_path / "out" / "manifests.yaml").read_text()):
        if obj["kind"] == "Job":
            obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] = "Helm"    # what Helm does to it
            batch.create_namespaced_job("bench", obj)
        elif obj["kind"] == "ConfigMap":
            core.create_namespaced_config_map("bench", obj)
        else:
            core.create_namespaced_persistent_volume_claim("bench", obj)
    logs = cli.invoke(app, ["logs", out.run_id, "-f", "--namespace", "bench"])
    assert logs.exit_code == 0, logs.output
    assert logs.stdout.strip().splitlines()[-1] == "mlrepro-harness: VALID"
    collected = cli.invoke(app, ["collect", out.run_id, "--namespace", "bench", "--into", str(tmp_path / "sub"),
                                 "--submitter", "Acme"])
    assert collected.exit_code == 0, collected.output
    assert list((tmp_path / "sub" / "open" / "Acme" / "results").rglob("accuracy.txt"))
    unknown = cli.invoke(app, ["collect", "no-such-run", "--namespace", "bench", "--into", str(tmp_path / "sub"),
                               "--submitter", "Acme"])
    assert unknown.exit_code == 2
    assert unknown.stderr.strip() == ("mlrepro: error: run no-such-run is not recorded here and there is no Job "
                                      "no-such-run in namespace bench (its TTL may have passed)")
