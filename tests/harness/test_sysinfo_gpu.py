"""Accelerator fields from the device the run saw: nvidia-smi outputs replayed (no GPU here), torch absent.

The outputs in sysinfo_fixtures/nvidia-smi/ are in nvidia-smi's own formats (``--query-gpu ...
--format=csv,noheader,nounits`` and ``topo -m``, drivers 470-560) with the values those products report.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from mlrepro.harness.sysinfo import SystemPaths, collect_system
from mlrepro.harness.sysinfo.gpu import (
    BASIC_FIELDS,
    interconnect,
    memory_type,
    parse_query_gpu,
    parse_topology,
    query_nvidia_smi,
    visible,
)
from mlrepro.results.systems import build_system_desc, submission_blockers

SMI = Path(__file__).resolve().parent / "sysinfo_fixtures" / "nvidia-smi"


def smi(query: str | None = None, topo: str | None = None, basic: str | None = None):
    """(which, run, calls) answering like nvidia-smi with the recorded files named."""
    calls: list[list[str]] = []

    def run(argv: Sequence[str], timeout: float) -> str | None:
        calls.append(list(argv))
        if argv[1] == "topo":
            return (SMI / topo).read_text() if topo else None
        if "compute_cap" in argv[1]:
            return (SMI / query).read_text() if query else None   # an old driver rejects the field: no output
        return (SMI / basic).read_text() if basic else None

    return (lambda name: "/usr/bin/nvidia-smi" if name == "nvidia-smi" else None), run, calls


def test_parse_query_and_topology() -> None:
    gpus = parse_query_gpu((SMI / "h100x8-query.csv").read_text())
    assert len(gpus) == 8 and gpus[0] == {
        "index": 0, "uuid": "GPU-5b1c3f0e-7a2d-4c55-9e61-0d8f2a4b7c10", "name": "NVIDIA H100 80GB HBM3",
        "memory_total_mib": 81559, "driver_version": "550.54.15", "max_sm_clock_mhz": 1980, "pcie_gen_max": 5,
        "pcie_width_max": 16, "compute_capability": "9.0"}
    assert parse_query_gpu("0, x, NVIDIA L4, [N/A], 535.1, [Not Supported], 4, 16, 8.9\n")[0]["memory_total_mib"] \
        is None
    assert parse_query_gpu("garbage\n\n1, 2\n") == []
    topo = parse_topology((SMI / "h100x8-topo.txt").read_text())
    assert list(topo) == [f"GPU{i}" for i in range(8)] and topo["GPU0"] == ["X"] + ["NV18"] * 7
    assert interconnect(topo, 8) == {"kind": "NVLink", "links": "NV18", "topology": "Mesh"}
    pcie = parse_topology((SMI / "a100-pcie-x2-topo.txt").read_text())
    assert interconnect(pcie, 2) == {"kind": "PCIe", "links": None, "topology": "Direct"}
    assert interconnect({}, 1) == {"kind": None, "links": None, "topology": None}
    assert parse_topology("\x1b[4m\tGPU0\tGPU1\x1b[0m\nGPU0\t X \tNV4\nGPU1\tNV4\t X \n")["GPU1"] == ["NV4", "X"]


def test_memory_types_from_data_sheets() -> None:
    table = {"NVIDIA H100 80GB HBM3": "HBM3", "NVIDIA H100 PCIe": "HBM2e", "NVIDIA H100 NVL": "HBM3",
             "NVIDIA H200": "HBM3e", "NVIDIA GH200 480GB": "HBM3", "NVIDIA GH200 144G HBM3e": "HBM3e",
             "NVIDIA B200": "HBM3e", "NVIDIA A100-SXM4-80GB": "HBM2e", "NVIDIA A100-PCIE-40GB": "HBM2",
             "NVIDIA L4": "GDDR6", "NVIDIA L40S": "GDDR6", "Tesla T4": "GDDR6", "NVIDIA GeForce RTX 4090": "GDDR6X",
             "NVIDIA RTX 6000 Ada Generation": "GDDR6", "NVIDIA GeForce RTX 5090": "GDDR7", "Mystery GPU": None}
    assert {name: memory_type(name) for name in table} == table


def test_cuda_visible_devices_narrows_what_the_run_sees() -> None:
    gpus = parse_query_gpu((SMI / "h100x8-query.csv").read_text())
    assert [g["index"] for g in visible(gpus, "3,1")] == [3, 1]
    assert [g["index"] for g in visible(gpus, "GPU-7353c83a")] == [3]       # a UUID prefix
    assert visible(gpus, "") == [] and visible(gpus, "-1") == []
    assert [g["index"] for g in visible(gpus, "0,99,2")] == [0]             # CUDA stops at an invalid entry
    assert visible(gpus, None) == gpus


def test_eight_nvlinked_h100(tmp_path: Path) -> None:
    which, run, calls = smi("h100x8-query.csv", "h100x8-topo.txt")
    probe = query_nvidia_smi(which=which, run=run)
    assert probe is not None and probe["source"] == "nvidia-smi" and len(probe["gpus"]) == 8
    assert calls[1] == ["/usr/bin/nvidia-smi", "topo", "-m"]
    assert probe["gpus"][0]["memory_type"] == "HBM3" and probe["gpus"][0]["host_interconnect"] == "PCIe Gen5 x16"
    # a container given two of them (CUDA_VISIBLE_DEVICES): the description is of those two
    two = query_nvidia_smi(which=which, run=run, cuda_visible="0,1")
    assert len(two["gpus"]) == 2 and two["interconnect"] == {"kind": "NVLink", "links": "NV18", "topology": "Mesh"}


def _desc(tmp_path: Path, env: dict[str, str], which, run) -> dict[str, str]:
    system = collect_system(SystemPaths(tmp_path), env=env, which=which, run=run)
    return build_system_desc(system, division="closed", submitter="Acme", backend="onnxruntime",
                             overrides={"submitter_contact": "ops@example.com", "cooling": "air",
                                        "host_networking_topology": "n/a"})


def test_systems_json_of_an_h100_server(tmp_path: Path) -> None:
    which, run, _ = smi("h100x8-query.csv", "h100x8-topo.txt")
    env = {"CUDA_VERSION": "12.6.3", "NV_CUDNN_VERSION": "9.5.1.17", "MLREPRO_TARGET": "docker"}
    desc = _desc(tmp_path, env, which, run)
    assert {k: desc[k] for k in desc if k.startswith("accelerator")} == {
        "accelerators_per_node": "8",
        "accelerator_model_name": "NVIDIA H100 80GB HBM3",
        "accelerator_memory_capacity": "80 GiB",
        "accelerator_memory_configuration": "80 GiB HBM3",
        "accelerator_host_interconnect": "PCIe Gen5 x16",
        "accelerator_interconnect": "NVLink (NV18)",
        "accelerator_interconnect_topology": "Mesh",
        "accelerator_frequency": "1980 MHz",
        "accelerator_on-chip_memories": "48 KiB shared memory per block (compute capability 9.0)",
    }
    assert desc["system_size"] == "8x NVIDIA H100 80GB HBM3"
    assert desc["framework"].startswith("ONNX Runtime") and desc["framework"].endswith("(CUDA execution provider)")
    assert "CUDA 12.6.3, cuDNN 9.5.1.17, NVIDIA driver 550.54.15; run in a Docker container" in \
        desc["other_software_stack"]
    assert not [f for f in submission_blockers(desc, division="closed") if f.field.startswith("accelerator")]


def test_systems_json_of_one_l4_and_a_grace_hopper(tmp_path: Path) -> None:
    which, run, calls = smi("l4x1-query.csv")
    desc = _desc(tmp_path, {}, which, run)
    assert not any(c[1] == "topo" for c in calls)                    # one GPU: no topology to ask for
    assert (desc["accelerators_per_node"], desc["accelerator_model_name"], desc["accelerator_memory_capacity"],
            desc["accelerator_memory_configuration"], desc["accelerator_host_interconnect"]) == \
        ("1", "NVIDIA L4", "23 GiB", "23 GiB GDDR6", "PCIe Gen4 x16")
    assert desc["accelerator_interconnect"] == "none (1 accelerator)"
    assert desc["accelerator_interconnect_topology"] == ""
    assert not [f for f in submission_blockers(desc, division="closed") if f.field.startswith("accelerator")]
    which, run, _ = smi("gh200-query.csv")
    gh = _desc(tmp_path, {}, which, run)
    assert gh["accelerator_host_interconnect"] == "NVLink-C2C" and gh["accelerator_memory_capacity"] == "96 GiB"


def test_two_pcie_a100_and_an_old_driver(tmp_path: Path) -> None:
    which, run, _ = smi("a100-pcie-x2-query.csv", "a100-pcie-x2-topo.txt")
    desc = _desc(tmp_path, {}, which, run)
    assert (desc["accelerator_interconnect"], desc["accelerator_interconnect_topology"],
            desc["accelerator_memory_configuration"]) == ("PCIe", "Direct", "80 GiB HBM2e")
    # driver 470 does not know compute_cap: the query is repeated with the basic fields
    which, run, calls = smi(basic="t4-old-driver-basic.csv")
    probe = query_nvidia_smi(which=which, run=run)
    assert calls[1][1] == f"--query-gpu={','.join(BASIC_FIELDS)}"
    assert probe["gpus"][0]["name"] == "Tesla T4" and probe["gpus"][0]["max_sm_clock_mhz"] is None
    old = _desc(tmp_path, {}, which, run)
    assert (old["accelerator_memory_capacity"], old["accelerator_frequency"], old["accelerator_host_interconnect"]) \
        == ("15 GiB", "", "N/A")
    assert [f.field for f in submission_blockers(old, division="closed") if f.field.startswith("accelerator")] == \
        ["accelerator_host_interconnect"]


def test_no_nvidia_smi_and_no_torch_means_no_accelerator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    system = collect_system(SystemPaths(tmp_path), env={"NVIDIA_VISIBLE_DEVICES": "all"}, which=lambda n: None,
                            run=lambda a, t: None)
    assert system["accelerators"] == [] and system["accelerator_probe"] is None
    # a failing nvidia-smi (no driver loaded) is the same as none
    which, run, _ = smi()
    assert query_nvidia_smi(which=which, run=run) is None
