"""The system probe over fake /proc and /sys trees (and replayed dmidecode output)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mlrepro.harness.sysinfo import SystemPaths, collect_system, host_view, package_versions
from mlrepro.harness.sysinfo.cpu import (
    detect_emulation,
    format_caches,
    human_size,
    nominal_frequency_ghz,
    parse_cache_size,
    parse_cpuinfo,
    read_caches,
    read_max_frequency_mhz,
    read_topology,
)
from mlrepro.harness.sysinfo.host import (
    parse_dmidecode_memory,
    parse_meminfo,
    parse_os_release,
    read_dimms,
    read_disks,
    read_dmi_identity,
    read_nics,
    read_rdma,
)
from mlrepro.harness.sysinfo.runtime import (
    cgroup_limits,
    detect_container,
    execution_target,
    read_host_probe,
)


def _x86_block(proc: int, phys: int, core: int) -> str:
    return (f"processor\t: {proc}\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n"
            f"model name\t: Intel(R) Xeon(R) Platinum 8480+\nphysical id\t: {phys}\nsiblings\t: 4\n"
            f"core id\t\t: {core}\ncpu cores\t: 2\nflags\t\t: fpu avx2 avx512f amx_tile hypervisor\n\n")


X86 = "".join(_x86_block(p, phys, core) for p, (phys, core) in enumerate(
    [(0, 0), (0, 1), (0, 0), (0, 1), (1, 0), (1, 1), (1, 0), (1, 1)]))

ARM64 = "".join(
    f"processor\t: {i}\nBogoMIPS\t: 243.75\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics\n"
    f"CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x3\nCPU part\t: 0xd0c\nCPU revision\t: 1\n\n"
    for i in range(4))

ARM64_UNKNOWN_PART = "processor\t: 0\nCPU implementer\t: 0x61\nCPU part\t: 0x123\n"
RPI = ARM64.replace("0xd0c", "0xd08") + "Hardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n"

# `dmidecode -t memory` layout (dmidecode 3.x): two populated DDR5 slots and an empty one
DMIDECODE = """# dmidecode 3.4
Getting SMBIOS data from sysfs.
SMBIOS 3.3.0 present.

Handle 0x0040, DMI type 17, 92 bytes
Memory Device
\tTotal Width: 80 bits
\tData Width: 64 bits
\tSize: 64 GB
\tForm Factor: DIMM
\tLocator: P0_CPU0_DIMM_A1
\tType: DDR5
\tSpeed: 5600 MT/s
\tManufacturer: Samsung
\tConfigured Memory Speed: 4800 MT/s

Handle 0x0041, DMI type 17, 92 bytes
Memory Device
\tSize: 65536 MB
\tType: DDR5
\tSpeed: 4800 MT/s
\tManufacturer: Samsung

Handle 0x0042, DMI type 17, 92 bytes
Memory Device
\tSize: No Module Installed
\tType: Unknown
"""


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def fake_machine(root: Path) -> None:
    """A two-socket machine: 4 cores, 8 NUMA-less threads, two disks, one NIC, one RDMA port."""
    write(root, "proc/cpuinfo", X86)
    write(root, "proc/meminfo", "MemTotal:       24684096 kB\nMemFree:  1 kB\n")
    write(root, "etc/os-release", 'NAME="Ubuntu"\nPRETTY_NAME="Ubuntu 24.04.1 LTS"\n')
    write(root, "proc/1/cgroup", "0::/\n")
    for cpu in range(8):
        base = f"sys/devices/system/cpu/cpu{cpu}"
        write(root, f"{base}/cpufreq/cpuinfo_max_freq", "3800000\n")
        for index, (level, kind, size, shared) in enumerate([(1, "Data", "48K", str(cpu)),
                                                              (1, "Instruction", "32K", str(cpu)),
                                                              (2, "Unified", "2048K", str(cpu)),
                                                              (3, "Unified", "105M", str(cpu // 4))]):
            for name, value in (("level", level), ("type", kind), ("size", size), ("shared_cpu_list", shared)):
                write(root, f"{base}/cache/index{index}/{name}", f"{value}\n")
    for node in (0, 1):
        (root / f"sys/devices/system/node/node{node}").mkdir(parents=True)
    write(root, "sys/class/dmi/id/sys_vendor", "Dell Inc.\n")
    write(root, "sys/class/dmi/id/product_name", "PowerEdge R760\n")
    for name, sectors, rota in (("nvme0n1", 7501476528, "0"), ("sda", 1953525168, "1"), ("zram0", 8388608, "0"),
                                ("loop0", 1024, "0")):
        write(root, f"sys/block/{name}/size", f"{sectors}\n")
        write(root, f"sys/block/{name}/queue/rotational", f"{rota}\n")
        write(root, f"sys/block/{name}/removable", "0\n")
    write(root, "sys/block/sdb/size", "62914560\n")
    write(root, "sys/block/sdb/removable", "1\n")                     # a USB stick: not storage
    write(root, "sys/block/nvme0n1/device/model", "SAMSUNG MZQL27T6HBLA\n")
    for iface, speed in (("eno1", "25000"), ("docker0", "-1")):
        write(root, f"sys/class/net/{iface}/speed", f"{speed}\n")
        write(root, f"sys/class/net/{iface}/type", "1\n")
    dev = root / "sys/devices/pci0000:00/0000:31:00.0"
    dev.mkdir(parents=True)
    (dev / "driver").symlink_to("../../../bus/pci/drivers/ice")
    (root / "sys/class/net/eno1/device").symlink_to("../../../devices/pci0000:00/0000:31:00.0")
    write(root, "sys/class/infiniband/mlx5_0/ports/1/link_layer", "InfiniBand\n")
    write(root, "sys/class/infiniband/mlx5_0/ports/1/rate", "400 Gb/sec (4X NDR)\n")
    write(root, "sys/fs/cgroup/cpu.max", "200000 100000\n")
    write(root, "sys/fs/cgroup/memory.max", "max\n")


def test_x86_cpuinfo() -> None:
    cpu = parse_cpuinfo(X86)
    assert cpu.model == "Intel(R) Xeon(R) Platinum 8480+" and cpu.vendor == "GenuineIntel"
    assert (cpu.sockets, cpu.cores, cpu.threads) == (2, 4, 8)
    assert "avx512f" in cpu.flags and cpu.isa == "x86_64"


def test_arm64_cpuinfo_maps_implementer_and_part() -> None:
    cpu = parse_cpuinfo(ARM64)
    assert cpu.model == "ARM Neoverse-N1" and cpu.vendor == "ARM" and cpu.isa == "aarch64"
    assert cpu.threads == 4 and cpu.sockets is None and cpu.cores is None  # arm64 cpuinfo has no topology
    assert "asimd" in cpu.flags
    assert parse_cpuinfo(ARM64_UNKNOWN_PART).model == "Apple part 0x123"
    assert parse_cpuinfo(RPI).model == "ARM Cortex-A72"


def test_cpuinfo_garbage() -> None:
    assert parse_cpuinfo("").model is None
    cpu = parse_cpuinfo("no colons here\n\n:::\nprocessor : x\n")
    assert cpu.threads is None and cpu.model is None


def test_topology_from_sysfs(tmp_path: Path) -> None:
    for cpu, (pkg, core) in enumerate([(0, 0), (0, 1), (0, 0), (0, 1)]):
        write(tmp_path, f"cpu{cpu}/topology/physical_package_id", f"{pkg}\n")
        write(tmp_path, f"cpu{cpu}/topology/core_id", f"{core}\n")
    (tmp_path / "cpufreq").mkdir()
    assert read_topology(tmp_path) == (1, 2)
    assert read_topology(tmp_path / "nothing") is None


def test_caches_like_lscpu(tmp_path: Path) -> None:
    fake_machine(tmp_path)
    levels = read_caches(tmp_path / "sys/devices/system/cpu")
    # lscpu on this layout: L1d 384 KiB (8 instances), L1i 256 KiB (8), L2 16 MiB (8), L3 210 MiB (2)
    assert format_caches(levels) == ("L1d: 384 KiB (8 instances); L1i: 256 KiB (8 instances); "
                                     "L2: 16 MiB (8 instances); L3: 210 MiB (2 instances)")
    assert format_caches(levels[:0]) == ""
    assert [human_size(n) for n in (512, 98304, 1572864, 2**30 + 2**28, 3 * 2**40)] == \
        ["512 B", "96 KiB", "1.5 MiB", "1.25 GiB", "3 TiB"]
    assert [parse_cache_size(s) for s in ("48K", "32M", " 2048K\n", "x", "")] == \
        [48 * 1024, 32 * 2**20, 2048 * 1024, None, None]


def test_frequency(tmp_path: Path) -> None:
    fake_machine(tmp_path)
    assert read_max_frequency_mhz(tmp_path / "sys/devices/system/cpu") == 3800.0
    assert read_max_frequency_mhz(tmp_path / "nothing") is None
    assert nominal_frequency_ghz("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz") == 2.5
    assert nominal_frequency_ghz("AMD EPYC 9654") is None


def test_emulation_detected_from_the_hosts_cpuinfo() -> None:
    assert detect_emulation("aarch64", parse_cpuinfo(X86)) == "x86_64"     # qemu-user: host cpuinfo shows
    assert detect_emulation("x86_64", parse_cpuinfo(ARM64)) == "aarch64"
    assert detect_emulation("x86_64", parse_cpuinfo(X86)) is None
    assert detect_emulation("aarch64", parse_cpuinfo(ARM64)) is None


def test_meminfo_os_release() -> None:
    assert parse_meminfo("MemTotal:       24684096 kB\nMemFree:  1 kB\n") == 24684096 * 1024
    assert parse_meminfo("garbage") is None
    assert parse_os_release('NAME="Debian GNU/Linux"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n') == \
        "Debian GNU/Linux 12 (bookworm)"
    assert parse_os_release("NAME='Alpine Linux'\n") == "Alpine Linux"
    assert parse_os_release("") is None


def test_dmi_identity_drops_placeholders(tmp_path: Path) -> None:
    write(tmp_path, "sys_vendor", "To Be Filled By O.E.M.\n")
    write(tmp_path, "product_name", "ProLiant DL380 Gen11\n")
    assert read_dmi_identity(tmp_path) == {"product": "ProLiant DL380 Gen11"}
    assert read_dmi_identity(tmp_path / "none") == {}


def test_dimms_from_dmidecode(tmp_path: Path) -> None:
    dimms = parse_dmidecode_memory(DMIDECODE)
    assert dimms == [{"size_bytes": 64 * 2**30, "type": "DDR5", "speed_mts": 4800, "manufacturer": "Samsung"}] * 2
    table = tmp_path / "DMI"
    calls: list[list[str]] = []

    def run(argv, timeout):
        calls.append(list(argv))
        return DMIDECODE

    assert read_dimms(lambda n: "/usr/sbin/dmidecode", run, table) == []            # table unreadable: not run
    table.write_bytes(b"\0")
    assert len(read_dimms(lambda n: "/usr/sbin/dmidecode", run, table)) == 2
    assert calls == [["/usr/sbin/dmidecode", "-t", "memory"]]
    assert read_dimms(lambda n: None, run, table) == []                                # not installed


def test_disks_nics_rdma(tmp_path: Path) -> None:
    fake_machine(tmp_path)
    assert read_disks(tmp_path / "sys/block") == [
        {"name": "nvme0n1", "size_bytes": 7501476528 * 512, "kind": "NVMe SSD", "model": "SAMSUNG MZQL27T6HBLA"},
        {"name": "sda", "size_bytes": 1953525168 * 512, "kind": "HDD", "model": None}]
    assert read_nics(tmp_path / "sys/class/net") == [
        {"name": "eno1", "driver": "ice", "speed_mbps": 25000, "type": "Ethernet"}]
    assert read_rdma(tmp_path / "sys/class/infiniband") == [
        {"name": "mlx5_0", "link_layer": "InfiniBand", "rate": "400 Gb/sec (4X NDR)"}]
    for reader in (read_disks, read_nics, read_rdma):
        assert reader(tmp_path / "none") == []


def test_container_detection() -> None:
    assert detect_container(False, False, "0::/\n", {}) == {"in_container": False, "kind": None}
    assert detect_container(True, False, "0::/\n", {})["kind"] == "docker"
    assert detect_container(False, False, "12:cpu:/kubepods/burstable/pod1/abc\n", {})["kind"] == "kubernetes"
    assert detect_container(False, False, None, {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}) == {
        "in_container": True, "kind": "kubernetes"}
    assert detect_container(False, True, None, {})["kind"] == "podman"


def test_execution_target_prefers_the_launchers_word() -> None:
    in_docker = {"in_container": True, "kind": "docker"}
    # a native run on a machine that is itself a container is a native run
    assert execution_target({"MLREPRO_TARGET": "native"}, in_docker) == ("native", "launcher")
    assert execution_target({"MLREPRO_TARGET": "docker"}, in_docker) == ("docker", "launcher")
    assert execution_target({}, in_docker) == ("docker", "detected")
    assert execution_target({}, {"in_container": True, "kind": "kubernetes"}) == ("kubernetes", "detected")
    assert execution_target({"MLREPRO_TARGET": "bogus"}, {"in_container": False, "kind": None}) == \
        ("native", "detected")


def test_cgroup_limits_v1_and_v2(tmp_path: Path) -> None:
    write(tmp_path, "v2/cpu.max", "150000 100000\n")
    write(tmp_path, "v2/memory.max", "2147483648\n")
    assert cgroup_limits(tmp_path / "v2") == {"cpus": 1.5, "memory_bytes": 2**31}
    write(tmp_path, "v2u/cpu.max", "max 100000\n")
    write(tmp_path, "v2u/memory.max", "max\n")
    assert cgroup_limits(tmp_path / "v2u") == {"cpus": None, "memory_bytes": None}
    write(tmp_path, "v1/cpu,cpuacct/cpu.cfs_quota_us", "200000\n")
    write(tmp_path, "v1/cpu,cpuacct/cpu.cfs_period_us", "100000\n")
    write(tmp_path, "v1/memory/memory.limit_in_bytes", "9223372036854771712\n")   # v1's "unlimited"
    assert cgroup_limits(tmp_path / "v1") == {"cpus": 2.0, "memory_bytes": None}


def test_host_probe_file(tmp_path: Path) -> None:
    path = tmp_path / "host.json"
    path.write_text(json.dumps({"nics": [{"name": "eno1"}], "os": "Ubuntu 22.04", "packages": {"x": "1"}}))
    assert read_host_probe({"MLREPRO_HOST_SYSTEM": str(path)}) == {"nics": [{"name": "eno1"}], "os": "Ubuntu 22.04"}
    assert read_host_probe({}) is None
    assert read_host_probe({"MLREPRO_HOST_SYSTEM": str(tmp_path / "missing")}) is None
    path.write_text("[1, 2]")
    assert read_host_probe({"MLREPRO_HOST_SYSTEM": str(path)}) is None
    path.write_bytes(b"{" + b" " * (1 << 20) + b"}")
    assert read_host_probe({"MLREPRO_HOST_SYSTEM": str(path)}) is None          # larger than 1 MiB


def test_package_versions() -> None:
    v = package_versions({"numpy": ("numpy",), "ghost": ("definitely-not-installed-pkg",)})
    assert v["numpy"] and v["ghost"] is None


def test_collect_system_from_a_fake_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_machine(tmp_path)
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    info = collect_system(SystemPaths(tmp_path), env={"MLREPRO_TARGET": "native"}, which=lambda n: None,
                          run=lambda a, t: None)
    assert info["schema"] == 2
    cpu = info["cpu"]
    assert (cpu["model"], cpu["sockets"], cpu["cores"], cpu["threads"]) == ("Intel(R) Xeon(R) Platinum 8480+", 2, 4, 8)
    assert cpu["max_mhz"] == 3800.0 and cpu["hypervisor"] is True and cpu["emulated_on"] is None
    assert [c["name"] for c in cpu["caches"]] == ["L1d", "L1i", "L2", "L3"]
    assert info["numa_nodes"] == 2 and info["memory_total_bytes"] == 24684096 * 1024
    assert info["os"] == "Ubuntu 24.04.1 LTS" and info["dmi"] == {"vendor": "Dell Inc.", "product": "PowerEdge R760"}
    assert [d["name"] for d in info["disks"]] == ["nvme0n1", "sda"] and len(info["nics"]) == 1
    assert info["accelerators"] == [] and info["accelerator_probe"] is None and info["cuda"] is None
    assert info["execution"]["target"] == "native" and info["execution"]["source"] == "launcher"
    assert info["execution"]["limits"] == {"cpus": 2.0, "memory_bytes": None}
    assert set(info["packages"]) == {"numpy", "onnxruntime", "torch", "transformers", "vllm", "loadgen"}
    assert "host" not in info and info["probe_seconds"] < 5
    assert set(host_view(info)) == {"hostname", "machine", "os", "kernel", "cpu", "memory_total_bytes",
                                    "memory_dimms", "dmi", "disks", "nics", "rdma", "numa_nodes"}
    json.dumps(info)  # JSON-ready


def test_collect_system_with_nothing_readable(tmp_path: Path) -> None:
    info = collect_system(SystemPaths(tmp_path / "none"), env={}, which=lambda n: None, run=lambda a, t: None)
    assert info["memory_total_bytes"] is None and info["os"] is None
    assert info["cpu"]["threads"] == os.cpu_count()  # falls back to os.cpu_count()
    assert info["cpu"]["caches"] == [] and info["disks"] == [] and info["nics"] == [] and info["dmi"] == {}
    assert info["container"] == {"in_container": False, "kind": None}
    assert info["execution"]["target"] == "native" and info["execution"]["source"] == "detected"


def test_collect_system_carries_the_hosts_probe(tmp_path: Path) -> None:
    host = tmp_path / "host-system.json"
    host.write_text(json.dumps({"nics": [{"name": "eno1", "driver": "ice", "speed_mbps": 25000,
                                          "type": "Ethernet"}], "os": "Ubuntu 22.04.4 LTS"}))
    info = collect_system(SystemPaths(tmp_path / "none"), env={"MLREPRO_TARGET": "docker",
                                                                "MLREPRO_HOST_SYSTEM": str(host)},
                          which=lambda n: None, run=lambda a, t: None)
    assert info["host"]["os"] == "Ubuntu 22.04.4 LTS" and info["execution"]["target"] == "docker"


def test_module_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    from mlrepro.harness.sysinfo import main

    assert main([]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["schema"] == 2 and out["cpu"]["threads"]
    assert main(["--host"]) == 0
    assert "packages" not in json.loads(capsys.readouterr().out)
