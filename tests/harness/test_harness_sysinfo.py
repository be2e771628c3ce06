"""sysinfo probes over fake /proc files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mlrepro.harness.sysinfo import (
    SystemPaths,
    collect_system,
    detect_container,
    package_versions,
    parse_cpuinfo,
    parse_meminfo,
    parse_nvidia_smi,
    parse_os_release,
    query_gpus,
    read_topology,
)


def _x86_block(proc: int, phys: int, core: int) -> str:
    return (f"processor\t: {proc}\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n"
            f"model name\t: Intel(R) Xeon(R) Platinum 8480+\nphysical id\t: {phys}\nsiblings\t: 4\n"
            f"core id\t\t: {core}\ncpu cores\t: 2\nflags\t\t: fpu avx2 avx512f amx_tile\n\n")


X86 = "".join(_x86_block(p, phys, core) for p, (phys, core) in enumerate(
    [(0, 0), (0, 1), (0, 0), (0, 1), (1, 0), (1, 1), (1, 0), (1, 1)]))

ARM64 = "".join(
    f"processor\t: {i}\nBogoMIPS\t: 243.75\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics\n"
    f"CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x3\nCPU part\t: 0xd0c\nCPU revision\t: 1\n\n"
    for i in range(4))

ARM64_UNKNOWN_PART = "processor\t: 0\nCPU implementer\t: 0x61\nCPU part\t: 0x123\n"
RPI = ARM64.replace("0xd0c", "0xd08") + "Hardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n"


def test_x86_cpuinfo() -> None:
    cpu = parse_cpuinfo(X86)
    assert cpu.model == "Intel(R) Xeon(R) Platinum 8480+" and cpu.vendor == "GenuineIntel"
    assert (cpu.sockets, cpu.cores, cpu.threads) == (2, 4, 8)
    assert "avx512f" in cpu.flags


def test_arm64_cpuinfo_maps_implementer_and_part() -> None:
    cpu = parse_cpuinfo(ARM64)
    assert cpu.model == "ARM Neoverse-N1" and cpu.vendor == "ARM"
    assert cpu.threads == 4 and cpu.sockets is None and cpu.cores is None  # arm64 cpuinfo has no topology
    assert "asimd" in cpu.flags
    assert parse_cpuinfo(ARM64_UNKNOWN_PART).model == "Apple part 0x123"
    assert parse_cpuinfo(RPI).model == "ARM Cortex-A72"


def test_cpuinfo_garbage() -> None:
    assert parse_cpuinfo("") .model is None
    cpu = parse_cpuinfo("no colons here\n\n:::\nprocessor : x\n")
    assert cpu.threads is None and cpu.model is None


def test_topology_from_sysfs(tmp_path: Path) -> None:
    for cpu, (pkg, core) in enumerate([(0, 0), (0, 1), (0, 0), (0, 1)]):
        topo = tmp_path / f"cpu{cpu}" / "topology"
        topo.mkdir(parents=True)
        (topo / "physical_package_id").write_text(f"{pkg}\n")
        (topo / "core_id").write_text(f"{core}\n")
    (tmp_path / "cpufreq").mkdir()
    assert read_topology(tmp_path) == (1, 2)
    assert read_topology(tmp_path / "nothing") is None


def test_meminfo_os_release() -> None:
    assert parse_meminfo("MemTotal:       24684096 kB\nMemFree:  1 kB\n") == 24684096 * 1024
    assert parse_meminfo("garbage") is None
    assert parse_os_release('NAME="Debian GNU/Linux"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n') == \
        "Debian GNU/Linux 12 (bookworm)"
    assert parse_os_release("NAME='Alpine Linux'\n") == "Alpine Linux"
    assert parse_os_release("") is None


def test_container_detection() -> None:
    assert detect_container(False, False, "0::/\n", {}) == {"in_container": False, "kind": None}
    assert detect_container(True, False, "0::/\n", {})["kind"] == "docker"
    assert detect_container(False, False, "12:cpu:/kubepods/burstable/pod1/abc\n", {})["kind"] == "kubernetes"
    assert detect_container(False, False, None, {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}) == {
        "in_container": True, "kind": "kubernetes"}
    assert detect_container(False, True, None, {})["kind"] == "podman"


def test_nvidia_smi() -> None:
    text = "NVIDIA H200, 143771 MiB, 560.35.03\nNVIDIA H200, 143771 MiB, 560.35.03\n\n"
    assert parse_nvidia_smi(text) == [{"name": "NVIDIA H200", "memory_total": "143771 MiB",
                                       "driver_version": "560.35.03"}] * 2
    calls: list[Sequence[str]] = []

    def run(argv: Sequence[str], timeout: float) -> str | None:
        calls.append(argv)
        return text

    assert query_gpus(which=lambda n: None, run=run) == [] and calls == []
    assert len(query_gpus(which=lambda n: "/usr/bin/nvidia-smi", run=run)) == 2
    assert calls[0][0] == "/usr/bin/nvidia-smi" and "--format=csv,noheader" in calls[0]
    assert query_gpus(which=lambda n: "/x", run=lambda a, t: None) == []


def test_package_versions() -> None:
    v = package_versions({"numpy": ("numpy",), "ghost": ("definitely-not-installed-pkg",)})
    assert v["numpy"] and v["ghost"] is None


def test_collect_system_from_fake_files(tmp_path: Path) -> None:
    (tmp_path / "cpuinfo").write_text(ARM64)
    (tmp_path / "meminfo").write_text("MemTotal: 1024 kB\n")
    (tmp_path / "os-release").write_text('PRETTY_NAME="Ubuntu 24.04 LTS"\n')
    (tmp_path / "cgroup").write_text("0::/kubepods.slice/x\n")
    topo = tmp_path / "cpu" / "cpu0" / "topology"
    topo.mkdir(parents=True)
    (topo / "physical_package_id").write_text("0")
    (topo / "core_id").write_text("0")
    paths = SystemPaths(cpuinfo=tmp_path / "cpuinfo", meminfo=tmp_path / "meminfo",
                        os_release=tmp_path / "os-release", dockerenv=tmp_path / "no", containerenv=tmp_path / "no",
                        cgroup=tmp_path / "cgroup", cpu_sysfs=tmp_path / "cpu")
    info = collect_system(paths, env={}, gpu_probe=lambda: [{"name": "GPU"}])
    assert info["cpu"] == {"model": "ARM Neoverse-N1", "vendor": "ARM", "sockets": 1, "cores": 1, "threads": 4}
    assert info["memory_total_bytes"] == 1024 * 1024
    assert info["os"] == "Ubuntu 24.04 LTS"
    assert info["container"] == {"in_container": True, "kind": "kubernetes"}
    assert info["accelerators"] == [{"name": "GPU"}]
    assert set(info["packages"]) == {"numpy", "onnxruntime", "torch", "loadgen"}
    assert info["machine"] and info["kernel"] and info["python"]


def test_collect_system_with_nothing_readable(tmp_path: Path) -> None:
    nowhere = tmp_path / "none"
    paths = SystemPaths(cpuinfo=nowhere, meminfo=nowhere, os_release=nowhere, dockerenv=nowhere,
                        containerenv=nowhere, cgroup=nowhere, cpu_sysfs=nowhere)
    info = collect_system(paths, env={}, gpu_probe=list)
    assert info["memory_total_bytes"] is None and info["os"] is None
    assert info["cpu"]["threads"]  # falls back to os.cpu_count()
    assert info["container"] == {"in_container": False, "kind": None}
