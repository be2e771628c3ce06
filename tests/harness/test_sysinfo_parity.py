"""mlrepro's systems json against MLCommons' mlperf-sysinfo on the same machine: every field mlperf-sysinfo
detects is filled by mlrepro with the same or a better value.

Recorded captures (sysinfo_fixtures/<machine>/mlperf-sysinfo.json, with the probe's inputs of the same
machine, recorded by scripts/sysinfo_snapshot.py) run everywhere; the live comparison runs mlperf-sysinfo
here when it and the tools its probes call are installed (CI installs both).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from sysinfo_support import CAPTURE_CONFIG, FIXTURES, replay, sysinfo_cli, worse_fields

from mlrepro.results.systems import build_system_desc

RECORDED = sorted(p.name for p in FIXTURES.iterdir() if (p / "mlperf-sysinfo.json").is_file())

#: where mlrepro's value differs from mlperf-sysinfo's on purpose, what it is on each recorded machine
BETTER_VALUES: dict[str, dict[str, str]] = {
    "x86-native": {"host_storage_type": "virtual disk (virtio)"},           # mlperf-sysinfo: "SSD + HDD" (zram)
    "x86-docker": {"host_storage_type": "virtual disk (virtio)",
                   "host_network_card_count": "1x Ethernet (virtio_net)"},  # mlperf-sysinfo in the container: 0x
    "arm64-qemu": {"host_storage_type": "virtual disk (virtio)",
                   "host_network_card_count": "1x Ethernet (virtio_net)"},
}


def _desc(system: dict, capture: dict) -> dict[str, str]:
    return build_system_desc(system, division=capture["division"], submitter=capture["submitter"],
                             backend="onnxruntime", overrides=CAPTURE_CONFIG)


def test_there_are_recorded_captures() -> None:
    assert {"x86-native", "x86-docker", "arm64-qemu"} <= set(RECORDED)


@pytest.mark.parametrize("machine", RECORDED)
def test_recorded_capture_same_or_better(machine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fixture = FIXTURES / machine
    capture = json.loads((fixture / "mlperf-sysinfo.json").read_text())
    desc = _desc(replay(fixture, monkeypatch), capture)
    assert worse_fields(desc, capture, better=BETTER_VALUES.get(machine, {})) == []
    for field, value in BETTER_VALUES.get(machine, {}).items():
        assert desc[field] == value, field


def test_recorded_arm64_capture_is_aarch64(monkeypatch: pytest.MonkeyPatch) -> None:
    system = replay(FIXTURES / "arm64-qemu", monkeypatch)
    capture = json.loads((FIXTURES / "arm64-qemu" / "mlperf-sysinfo.json").read_text())
    desc = _desc(system, capture)
    assert system["machine"] == "aarch64" and system["cpu"]["emulated_on"] == "x86_64"
    # mlperf-sysinfo copies lscpu, which shows the host's x86 CPU under qemu without saying so; mlrepro says so
    assert desc["hw_notes"] == "hw"                            # the notes file's text wins ...
    bare = build_system_desc(system, division="open", submitter="Acme", backend="onnxruntime")
    assert "aarch64 emulated by qemu-user on a x86_64 processor" in bare["hw_notes"]   # ... over this
    assert "aarch64 emulated by qemu-user on x86_64" in desc["other_software_stack"]


_PROBE_TOOLS = ("lscpu", "free", "df", "lsblk", "jq", "numactl", "dmidecode", "pstree", "systemctl", "perf")


@pytest.mark.slow
def test_live_capture_same_or_better(tmp_path: Path) -> None:
    """mlperf-sysinfo capture on this machine vs mlrepro's probe (about 20-30 s). Runs only where every tool
    mlperf-sysinfo's probes call is installed: otherwise it would apt-get install them (as root)."""
    exe = sysinfo_cli()
    missing = [t for t in _PROBE_TOOLS if shutil.which(t) is None]
    if missing:
        message = f"mlperf-sysinfo would install {', '.join(missing)} (scripts/ci/setup-sysinfo-tools.sh)"
        if os.environ.get("MLREPRO_REQUIRE_TOOLS") == "1":
            pytest.fail(message + " and MLREPRO_REQUIRE_TOOLS=1")
        pytest.skip(message)
    config = tmp_path / "sysinfo.yaml"
    config.write_text(json.dumps({
        "profile": "inference", "output": {"dir": str(tmp_path / "out")},
        "system": {"name": CAPTURE_CONFIG["system_name"], "category": "datacenter", "availability": "available",
                   "accelerator": "none", "cooling": CAPTURE_CONFIG["cooling"]},
        "nodes": {"include_local": True},
        "submission": {"submitter": "Acme", "contact": CAPTURE_CONFIG["submitter_contact"], "division": "open",
                       "notes": {"hardware": CAPTURE_CONFIG["hw_notes"], "software": CAPTURE_CONFIG["sw_notes"]}}}))
    proc = subprocess.run([exe, "capture", "-c", str(config)], capture_output=True, text=True, timeout=600,
                          check=False, env={**os.environ, "HOME": str(tmp_path / "home"), "NO_COLOR": "1"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    capture = json.loads((tmp_path / "out" / "system_desc.json").read_text())
    from mlrepro.harness.sysinfo import collect_system

    desc = _desc(collect_system(env={**os.environ, "MLREPRO_TARGET": "native"}), capture)
    assert worse_fields(desc, capture, better={"host_storage_type"} & _zram_or_virtio()) == []
    assert desc["host_storage_type"] not in ("", "N/A")


def _zram_or_virtio() -> set[str]:
    """{"host_storage_type"} where this machine has zram or virtio disks (mlperf-sysinfo misnames them)."""
    names = [p.name for p in Path("/sys/block").iterdir()] if Path("/sys/block").is_dir() else []
    return {"host_storage_type"} if any(n.startswith(("zram", "vd")) for n in names) else set()
