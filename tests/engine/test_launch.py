"""The laptop path on a real engine: launch the benchmark container, fetch, collect, check; and its failures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from signals_support import with_sigint
from sysinfo_support import sysinfo_validate, validate_problems

from mlrepro.flow import PipelineOptions, run_pipeline
from mlrepro.profiles import resolve_profile

pytestmark = [pytest.mark.docker]

# with the quick overlay: no LoadGen target anywhere, the harness calibrates in the container
SHORT = ["benchmark.settings.min_duration_ms=500", "benchmark.modes=[performance]"]
# what no probe sees (a container sees neither the DIMMs nor, here, any DMI table)
SYSTEM_NOTES = {"submitter_contact": "ops@example.com", "cooling": "air", "host_networking_topology": "single host",
                "host_memory_configuration": "virtual machine memory"}
# a long run: Offline for two minutes (after a few seconds of calibration)
LONG = ["benchmark.scenarios=[Offline]", "benchmark.settings.min_duration_ms=120000"]



def launch(sets: list[str], tmp_path: Path, image: str, **options) -> object:
    resolved = resolve_profile("x86-cpu", ["air-gapped", "quick"], SHORT + sets)
    opts = PipelineOptions(target="docker", image=image, into=options.pop("into", None),
                           collect=options.pop("collect", False), submitter="Acme", **options)
    return run_pipeline(resolved, opts)


def containers_of(client, run_id: str) -> list:
    return client.containers.list(all=True, filters={"label": f"mlrepro.io/run-id={run_id}"})


def test_launch_offline_performance_and_accuracy_then_collect(docker_client, x86_image, tmp_path, state):
    result = launch(["benchmark.scenarios=[Offline]", "benchmark.modes=[performance,accuracy]"], tmp_path, x86_image,
                    into=tmp_path / "sub", collect=True, system_overrides=SYSTEM_NOTES)
    assert result.target == "docker" and result.ok, result.runs
    perf, acc = result.runs
    assert perf.validity == "VALID" and perf.result and perf.result > 100
    assert acc.accuracy is not None and acc.accuracy >= 90.0
    # the container ran non-root, in a container, and its system description says so
    system = json.loads((perf.results_dir / "system.json").read_text())
    assert system["container"]["in_container"] and system["execution"]["target"] == "docker"
    assert system["execution"]["source"] == "launcher" and system["execution"]["limits"]["cpus"] == 2.0
    assert system["host"]["os"] and "packages" not in system["host"]    # the runner's probe of the host
    record = json.loads((perf.results_dir / "record.json").read_text())
    assert record["image"]["reference"] == x86_image
    # containers are removed; the results volume too once its results are verified here (the local copy is
    # what collect reads later)
    import docker

    assert containers_of(docker_client, perf.run_id) == []
    with pytest.raises(docker.errors.NotFound):
        docker_client.volumes.get(f"mlrepro-results-{perf.run_id}")
    assert (perf.results_dir / "checksums.sha256").is_file()
    tree = tmp_path / "sub" / "open" / "Acme"
    (res,) = result.collect_report.placed
    assert (res.path / "performance" / "run_1" / "mlperf_log_detail.txt").is_file()
    assert (res.path / "accuracy" / "accuracy.txt").read_text().startswith("accuracy=")
    (sysfile,) = (tree / "systems").glob("*.json")
    desc = json.loads(sysfile.read_text())
    assert "; run in a Docker container limited to 2 CPUs, 2 GiB" in desc["other_software_stack"]
    assert desc["submitter_contact"] == "ops@example.com" and desc["cooling"] == "air"
    assert result.collect_report.system_findings == {sysfile.stem: ()}
    rc, out = sysinfo_validate(sysfile)
    assert rc == 0 and validate_problems(out) == [], out


def test_every_scenario_is_valid_in_a_container(docker_client, x86_image, tmp_path, state):
    """All four scenarios, calibrated inside the container (the Server latency bound relaxed to 100 ms: a bound,
    not a speed, so that a loaded CI machine's hiccups in a short run cannot fail it)."""
    result = launch(["benchmark.scenarios=[Offline,Server,SingleStream,MultiStream]",
                     "benchmark.settings.Server.server_target_latency_ns=100000000"], tmp_path, x86_image)
    assert [r.validity for r in result.runs] == ["VALID"] * 4, [(r.scenario, r.message) for r in result.runs]
    for run in result.runs:
        record = json.loads((run.results_dir / "record.json").read_text())
        (target,) = record["calibration"]["targets"]
        assert target["source"] in ("calibrated", "cached") and target["value"] > 0
        assert record["system"] == "system.json" and record["calibration"]["fingerprint"]


def test_container_exiting_non_zero_is_a_failed_run(docker_client, x86_image, tmp_path, state):
    result = launch(["benchmark.workload=resnet50"], tmp_path, x86_image)  # no model file: bad spec, exit 3
    (run,) = result.runs
    assert run.status == "failed" and run.exit_code == 3 and not result.ok
    assert "model" in run.message.lower()


def test_deadline_is_enforced(docker_client, x86_image, tmp_path, state):
    started = time.monotonic()
    result = launch(["job.deadline_seconds=3", *LONG], tmp_path, x86_image)
    (run,) = result.runs
    assert run.status == "timeout" and "deadline" in run.message
    assert time.monotonic() - started < 60
    assert containers_of(docker_client, run.run_id) == []


def test_tampered_volume_is_refused_and_nothing_placed(docker_client, x86_image, base_image, tmp_path, state):
    from mlrepro.flow.recorded import collect_runs
    from mlrepro.results.errors import ChecksumError

    result = launch([], tmp_path, x86_image, keep_results=True)
    (run,) = result.runs
    assert run.status == "succeeded"
    docker_client.volumes.get(f"mlrepro-results-{run.run_id}")     # kept (--keep-volume)
    # only the volume holds the results now; someone edits a log in it
    import shutil

    shutil.rmtree(run.results_dir)
    volume = f"mlrepro-results-{run.run_id}"
    summary = f"/results/{run.run_id}/Offline/performance/run_1/mlperf_log_summary.txt"
    docker_client.containers.run(base_image, ["sh", "-c", f"echo 'Result is : VALID' >> {summary}"], remove=True,
                                 volumes={volume: {"bind": "/results", "mode": "rw"}})
    report = collect_runs([run.run_id], tmp_path / "sub", submitter="Acme")
    (rejected,) = report.rejected
    assert not report.ok and rejected.run_id == run.run_id and "mlperf_log_summary.txt" in rejected.reasons[0]
    assert not (tmp_path / "sub" / "open" / "Acme" / "results").exists()
    assert ChecksumError.__name__  # the checksum check is what refused it (see the reason)


def test_symlink_out_of_the_volume_is_rejected(docker_client, x86_image, base_image, tmp_path):
    from mlrepro.runners.docker import fetch_from_volume
    from mlrepro.runners.errors import UnsafeArchiveError

    volume = docker_client.volumes.create()
    try:
        docker_client.containers.run(base_image, ["sh", "-c", "mkdir -p /results/r1 && echo x > /results/r1/a "
                                                  "&& ln -s /etc/shadow /results/r1/evil"], remove=True,
                                     volumes={volume.name: {"bind": "/results", "mode": "rw"}})
        with pytest.raises(UnsafeArchiveError, match="evil"):
            fetch_from_volume(docker_client, volume.name, x86_image, "r1", tmp_path / "out")
        assert not (tmp_path / "out").exists()
    finally:
        volume.remove(force=True)


def test_concurrent_launches_keep_state_consistent(docker_client, x86_image, tmp_path, state):
    from mlrepro.state.store import open_store

    results: list = []
    threads = [threading.Thread(target=lambda: results.append(launch([], tmp_path, x86_image))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run_ids = {r.runs[0].run_id for r in results}
    assert len(run_ids) == 2 and all(r.ok for r in results)
    records = {r.run_id: r for r in open_store(state).list()}
    assert set(records) == run_ids and all(r.status == "succeeded" for r in records.values())


def test_ctrl_c_stops_and_removes_the_container(docker_client, x86_image, tmp_path, state):
    from mlrepro.state.store import open_store

    argv = [sys.executable, "-m", "mlrepro.cli.main", "launch", "-p", "x86-cpu", "-f", "air-gapped", "-f", "quick",
            "--image", x86_image, *[arg for pair in zip(["--set"] * len(LONG), LONG) for arg in pair]]
    proc = subprocess.Popen(with_sigint(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy())
    store = open_store(state)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        running = [r for r in store.list() if r.status == "running"]
        if running:
            break
        time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("the run never started")
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    records = store.list()          # every run of the launch was recorded up front: none is left pending
    assert records and all(r.status == "cancelled" and r.message == "interrupted (Ctrl-C)" for r in records)
    for record in records:
        assert containers_of(docker_client, record.run_id) == []


def test_gpu_profile_on_an_engine_without_nvidia_runtime_fails_clearly(docker_client, x86_image, tmp_path, state):
    if "nvidia" in (docker_client.info().get("Runtimes") or {}):
        pytest.skip("this engine has an NVIDIA runtime")
    resolved = resolve_profile("nvidia-gpu", ["quick"], sets=SHORT)
    result = run_pipeline(resolved, PipelineOptions(target="docker", image=x86_image, into=None, collect=False))
    (run,) = result.runs
    assert run.status == "failed"
    assert run.message.startswith("the profile asks for a GPU but this Docker engine has no NVIDIA runtime")
    assert containers_of(docker_client, run.run_id) == []


@pytest.mark.parametrize("profile,device", [("amd-gpu", "/dev/kfd"), ("intel-gpu", "/dev/dri")])
def test_amd_or_intel_profile_on_a_host_without_the_device_fails_before_anything_starts(
        docker_client, base_image, tmp_path, state, profile, device):
    if os.path.exists(device):
        pytest.skip(f"this engine's host has {device}")
    resolved = resolve_profile(profile, ["quick"], sets=SHORT)
    volumes_before = {v.name for v in docker_client.volumes.list()}
    result = run_pipeline(resolved, PipelineOptions(target="docker", image=base_image, into=None, collect=False))
    (run,) = result.runs
    vendor = "AMD" if profile == "amd-gpu" else "Intel"
    assert run.status == "failed"
    assert run.message.startswith(f"the profile asks for an {vendor} GPU but this Docker engine's host has no {device}")
    assert "\n" not in run.message
    assert containers_of(docker_client, run.run_id) == []
    assert {v.name for v in docker_client.volumes.list()} == volumes_before


def test_the_engine_records_the_amd_devices_and_groups_it_was_asked_for(docker_client, base_image, tmp_path):
    """The exact request the runner makes, as the engine keeps it (created, never started: the nodes of a fake
    host tree need not exist on the engine's host until the container starts)."""
    from mlrepro.profiles.vendors import VENDORS
    from mlrepro.render.jobspec import build_job_spec
    from mlrepro.render.runspec import build_run_spec
    from mlrepro.runners.docker_config import docker_run_config, write_config_dir
    from mlrepro.runners.docker_devices import host_device_access

    root = tmp_path / "host"
    for name in ("kfd", "dri/card0", "dri/renderD128"):
        (root / "dev" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "dev" / name).touch()
    gids = {"kfd": 992, "card0": 44, "renderD128": 992}
    access = host_device_access(VENDORS["amd"], root, gid_of=lambda p: gids[p.name], group_id=lambda name: None)
    resolved = resolve_profile("amd-gpu", sets=["resources.limits.cpu=1", "resources.requests.cpu=1"])  # 2-core engine
    spec = build_run_spec(resolved, "Offline", "performance", run_id="amd-request-test")
    pod = build_job_spec(resolved, base_image, spec).pod
    cfg = docker_run_config(pod, write_config_dir(pod, tmp_path / "config"), extra_env={"MLREPRO_TARGET": "docker"})
    from dataclasses import replace

    kwargs = replace(cfg, devices=list(access.devices), group_add=list(access.group_add),
                     name=f"mlrepro-test-{os.getpid()}").create_kwargs()
    container = docker_client.containers.create(**kwargs)
    try:
        host = docker_client.api.inspect_container(container.id)["HostConfig"]
        assert host["Devices"] == [
            {"PathOnHost": "/dev/kfd", "PathInContainer": "/dev/kfd", "CgroupPermissions": "rwm"},
            {"PathOnHost": "/dev/dri", "PathInContainer": "/dev/dri", "CgroupPermissions": "rwm"}]
        assert host["GroupAdd"] == ["44", "992"]
        assert not host.get("DeviceRequests") and host["Privileged"] is False
        assert host["CapDrop"] == ["ALL"] and host["ReadonlyRootfs"] is True
    finally:
        container.remove(force=True)
