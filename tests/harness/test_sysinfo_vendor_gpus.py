"""AMD and Intel accelerator fields from the vendors' tools, replayed from their real outputs (no GPU here):

* sysinfo_fixtures/amd-smi/mi300a-x4-static.txt -- ``amd-smi static`` on a 4x MI300A node, from AMD's amd-smi
  documentation (ROCm/amdsmi docs/how-to/using-AMD-SMI-CLI-tool.md, "Example output from amd-smi static",
  commit 0ceca28f4139dced5e9b5739a3f393780d7add48), CPU blocks included;
* sysinfo_fixtures/rocm-smi/rx7900xt-product-vram.json -- ``rocm-smi --showproductname --showuse --showmeminfo vram
  --json`` on a Radeon RX 7900 XT, posted in marimo-team/marimo issue #9237;
* sysinfo_fixtures/xpu-smi/pvc-0x020a-discovery-{j.json,d.txt} -- ``xpu-smi discovery -j`` and
  ``xpu-smi discovery -d``, from Intel XPU Manager's user guide (intel/xpumanager doc/smi_user_guide.md,
  commit 57e44f558a3c3f4e7ec3cdfae6ccd8739ffb3be5).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from mlrepro.harness.sysinfo import SystemPaths, collect_system
from mlrepro.harness.sysinfo.amd import (
    AMD_SMI_ARGS,
    gpus_from_amd_smi,
    gpus_from_rocm_smi,
    parse_amd_smi_static,
    query_amd,
)
from mlrepro.harness.sysinfo.intel import parse_discovery_detail, parse_discovery_list, query_xpu_smi
from mlrepro.results.systems import build_system_desc, submission_blockers

FIXTURES = Path(__file__).resolve().parent / "sysinfo_fixtures"
AMD_SMI = (FIXTURES / "amd-smi" / "mi300a-x4-static.txt").read_text()
ROCM_SMI = (FIXTURES / "rocm-smi" / "rx7900xt-product-vram.json").read_text()
XPU_LIST = (FIXTURES / "xpu-smi" / "pvc-0x020a-discovery-j.json").read_text()
XPU_DETAIL = (FIXTURES / "xpu-smi" / "pvc-0x020a-discovery-d.txt").read_text()


def tools(**answers: str | None):
    """(which, run, calls): the named tools exist at /opt/rocm/bin or /usr/bin and answer with the texts given
    (None: the tool exits non-zero)."""
    calls: list[list[str]] = []

    def run(argv: Sequence[str], timeout: float) -> str | None:
        calls.append(list(argv))
        tool = os.path.basename(argv[0])
        if tool == "xpu-smi":
            return answers.get("xpu_list") if argv[1:3] == ["discovery", "-j"] else answers.get("xpu_detail")
        return answers.get(tool.replace("-", "_"))

    names = {"amd_smi": "amd-smi", "rocm_smi": "rocm-smi", "xpu_list": "xpu-smi", "xpu_detail": "xpu-smi"}
    present = {names[k] for k in answers}
    return (lambda name: f"/opt/rocm/bin/{name}" if name in present else None), run, calls


def test_amd_smi_static_blocks_skip_cpus_and_deeper_levels():
    blocks = parse_amd_smi_static(AMD_SMI)
    assert [b["GPU"]["ID"] for b in blocks] == ["0", "1", "2", "3"]          # the 4 CPU blocks are not GPUs
    assert blocks[0]["ASIC"]["MARKET_NAME"] == "MI300A" and blocks[0]["VRAM"]["SIZE"] == "64289 MB"
    assert blocks[0]["DRIVER"] == {"NAME": "amdgpu", "VERSION": "6.9.0-rc5+"}
    assert "CACHE_0" in blocks[0]["CACHE_INFO"] and "CACHE_SIZE" not in blocks[0]["CACHE_INFO"]


def test_four_mi300a_from_amd_smi():
    gpus = gpus_from_amd_smi(AMD_SMI)
    assert len(gpus) == 4 and gpus[0] == {
        "index": 0, "uuid": None, "name": "MI300A", "memory_total_mib": 64289, "driver_version": "6.9.0-rc5+",
        "max_sm_clock_mhz": None, "pcie_gen_max": 5, "pcie_width_max": 16, "compute_capability": None,
        "vendor": "amd", "gfx_target": None, "memory_type": "HBM3", "host_interconnect": "PCIe Gen5 x16"}
    which, run, calls = tools(amd_smi=AMD_SMI, rocm_smi=ROCM_SMI)
    probe = query_amd(which, run)
    assert probe["source"] == "amd-smi" and calls == [["/opt/rocm/bin/amd-smi", *AMD_SMI_ARGS]]


def test_rocm_smi_when_amd_smi_is_absent_or_fails():
    (card,) = gpus_from_rocm_smi(ROCM_SMI)
    assert (card["name"], card["memory_total_mib"], card["memory_type"], card["gfx_target"], card["driver_version"]) \
        == ("Radeon RX 7900 XT", 20464, "GDDR6", "gfx1100", None)
    for answers in ({"rocm_smi": ROCM_SMI}, {"amd_smi": None, "rocm_smi": ROCM_SMI}):
        which, run, calls = tools(**answers)
        probe = query_amd(which, run)
        assert probe["source"] == "rocm-smi" and calls[-1][1:] == ["--showproductname", "--showmeminfo", "vram",
                                                                    "--showdriverversion", "--json"]
    assert gpus_from_rocm_smi("not json") == [] and gpus_from_rocm_smi("[]") == []
    which, run, _ = tools()
    assert query_amd(which, run) is None


def _desc(tmp_path: Path, which, run, backend: str = "torch") -> dict[str, str]:
    system = collect_system(SystemPaths(tmp_path), env={"MLREPRO_TARGET": "kubernetes"}, which=which, run=run)
    return build_system_desc(system, division="closed", submitter="Acme", backend=backend,
                             overrides={"submitter_contact": "ops@example.com", "cooling": "liquid",
                                        "host_networking_topology": "n/a"})


def test_systems_json_of_a_four_mi300a_node(tmp_path: Path):
    (tmp_path / "opt/rocm/.info").mkdir(parents=True)
    (tmp_path / "opt/rocm/.info/version").write_text("6.2.0-66\n")          # as ROCm's packages write it
    which, run, _ = tools(amd_smi=AMD_SMI)
    system = collect_system(SystemPaths(tmp_path), env={}, which=which, run=run)
    assert system["accelerator_probe"] == "amd-smi" and system["cuda"] is None
    assert system["rocm"] == {"rocm": "6.2.0", "hip": None}
    desc = _desc(tmp_path, which, run)
    assert {k: desc[k] for k in desc if k.startswith("accelerator")} == {
        "accelerators_per_node": "4",
        "accelerator_model_name": "MI300A",
        "accelerator_memory_capacity": "63 GiB",
        "accelerator_memory_configuration": "63 GiB HBM3",
        "accelerator_host_interconnect": "PCIe Gen5 x16",
        "accelerator_interconnect": "N/A",                      # amd-smi topology (XGMI) is not read
        "accelerator_interconnect_topology": "",
        "accelerator_frequency": "",
        "accelerator_on-chip_memories": "",
    }
    assert desc["system_size"] == "4x MI300A"
    assert desc["framework"].startswith("PyTorch") and desc["framework"].endswith("(ROCm)")
    assert desc["other_software_stack"].endswith(", ROCm 6.2.0, AMD amdgpu driver 6.9.0-rc5+; run in a Kubernetes pod")
    assert "CUDA" not in desc["other_software_stack"] and "NVIDIA" not in desc["other_software_stack"]
    blockers = [f.field for f in submission_blockers(desc, division="closed") if f.field.startswith("accelerator")]
    assert blockers == ["accelerator_interconnect"]             # to be filled in by hand (XGMI), as the tool says


def test_xpu_smi_discovery_list_and_detail():
    assert [d["device_id"] for d in parse_discovery_list(XPU_LIST)] == [0]
    detail = parse_discovery_detail(XPU_DETAIL)
    assert (detail["Device Name"], detail["Driver Version"], detail["Memory Physical Size"]) == \
        ("Intel(R) Graphics [0x020a]", "16929133", "32768.00 MiB")
    which, run, calls = tools(xpu_list=XPU_LIST, xpu_detail=XPU_DETAIL)
    probe = query_xpu_smi(which, run)
    assert [c[1:] for c in calls] == [["discovery", "-j"], ["discovery", "-d", "0"]]
    assert probe["gpus"] == [{
        "index": 0, "uuid": "00000000-0000-0000-0000-020a00008086", "name": "Intel(R) Graphics [0x020a]",
        "memory_total_mib": 32768, "driver_version": "16929133", "max_sm_clock_mhz": 1400, "pcie_gen_max": 4,
        "pcie_width_max": 16, "compute_capability": None, "vendor": "intel", "kernel_driver": None,
        "memory_type": "HBM2e", "host_interconnect": "PCIe Gen4 x16"}]
    assert parse_discovery_list("{}") == [] and parse_discovery_list("garbage") == []


def test_systems_json_of_an_intel_gpu(tmp_path: Path):
    which, run, _ = tools(xpu_list=XPU_LIST, xpu_detail=XPU_DETAIL)
    desc = _desc(tmp_path, which, run)
    assert (desc["accelerators_per_node"], desc["accelerator_model_name"], desc["accelerator_memory_capacity"],
            desc["accelerator_memory_configuration"], desc["accelerator_host_interconnect"],
            desc["accelerator_frequency"]) == ("1", "Intel(R) Graphics [0x020a]", "32 GiB", "32 GiB HBM2e",
                                              "PCIe Gen4 x16", "1400 MHz")
    assert desc["framework"].endswith("(XPU)") and "Intel GPU driver 16929133" in desc["other_software_stack"]
    assert not [f for f in submission_blockers(desc, division="closed") if f.field.startswith("accelerator")]


def _intel_card(root: Path, card: str, device: str, driver: str, node: bool = True) -> None:
    dev = root / "sys/class/drm" / card / "device"
    dev.mkdir(parents=True)
    for name, value in (("vendor", "0x8086"), ("device", device), ("class", "0x030000")):
        (dev / name).write_text(value + "\n")
    (root / "sys/bus/pci/drivers" / driver).mkdir(parents=True, exist_ok=True)
    (dev / "driver").symlink_to(root / "sys/bus/pci/drivers" / driver)
    if node:
        (root / "dev/dri").mkdir(parents=True, exist_ok=True)
        (root / "dev/dri" / card).touch()


def test_intel_gpu_from_sysfs_in_a_container_only(tmp_path: Path):
    """No xpu-smi: a container that got /dev/dri/card1 of a Battlemage (0xe20b, xe) sees it in sysfs; an integrated
    GPU the container did not get (card0, no node) is not the run's accelerator; and on a host nothing is guessed."""
    _intel_card(tmp_path, "card1", "0xe20b", "xe")
    _intel_card(tmp_path, "card0", "0x9a49", "i915", node=False)
    host = collect_system(SystemPaths(tmp_path), env={}, which=lambda n: None, run=lambda a, t: None)
    assert host["accelerators"] == []
    (tmp_path / ".dockerenv").touch()
    system = collect_system(SystemPaths(tmp_path), env={}, which=lambda n: None, run=lambda a, t: None)
    (gpu,) = system["accelerators"]
    assert system["accelerator_probe"] == "sysfs"
    assert (gpu["name"], gpu["kernel_driver"], gpu["index"]) == ("Intel(R) Graphics [0xe20b]", "xe", 1)
    assert gpu["driver_version"].startswith("xe (Linux ")
