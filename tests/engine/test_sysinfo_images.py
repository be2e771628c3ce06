"""The system description from inside the images: the arm64 image (under qemu here) captures aarch64 values.

The arm64-cpu image is built once (test_build.py builds it; a no-op here when its content tag exists, else
several minutes under qemu with the LoadGen wheel from the host cache).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sysinfo_support import sysinfo_validate, validate_problems

from mlrepro.flow import PipelineOptions, run_pipeline
from mlrepro.profiles import resolve_profile
from mlrepro.results.systems import build_system_desc, desc_json

pytestmark = [pytest.mark.docker]

NOTES = {"submitter_contact": "ops@example.com", "cooling": "air", "host_networking_topology": "single host",
         "host_memory_configuration": "virtual machine memory"}


@pytest.fixture(scope="module")
def arm64_image(docker_client, base_image_arm64) -> str:
    from mlrepro.image.builder import build_image

    return build_image(resolve_profile("arm64-cpu", ["air-gapped"]), client=docker_client).ref


@pytest.mark.arm64
@pytest.mark.slow
def test_arm64_image_captures_aarch64_values(arm64_image: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MLREPRO_STATE_DIR", str(tmp_path / "state"))
    resolved = resolve_profile("arm64-cpu", ["air-gapped"], [
        "benchmark.workload=null", "benchmark.modes=[performance]", "benchmark.settings.min_duration_ms=100",
        "benchmark.settings.min_query_count=10", "benchmark.settings.offline_expected_qps=1000"])
    result = run_pipeline(resolved, PipelineOptions(target="docker", image=arm64_image, collect=False, into=None))
    (run,) = result.runs
    assert run.results_dir is not None, run
    system = json.loads((run.results_dir / "system.json").read_text())
    assert system["machine"] == "aarch64" and system["execution"]["target"] == "docker"
    assert system["packages"]["onnxruntime"] and system["packages"]["loadgen"]
    assert system["os"].startswith("Debian GNU/Linux 12")
    if system["cpu"]["emulated_on"]:                       # qemu-user on an x86-64 host, as here
        assert system["cpu"]["emulated_on"] == "x86_64"
    desc = build_system_desc(system, division="open", submitter="Acme", backend="onnxruntime")
    assert desc["hw_notes"].startswith("aarch64")
    if system["cpu"]["emulated_on"]:
        assert "aarch64 emulated by qemu-user on x86_64" in desc["other_software_stack"]
    path = tmp_path / "arm64.json"
    path.write_bytes(desc_json(build_system_desc(system, division="open", submitter="Acme", backend="onnxruntime",
                                                 overrides=NOTES)))
    rc, out = sysinfo_validate(path)
    assert rc == 0 and validate_problems(out) == [], out
