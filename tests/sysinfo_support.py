"""Helpers shared by the system-description tests: replay a recorded probe, compare a systems json with
mlperf-sysinfo's capture field by field, run mlperf-sysinfo (validate, capture).

A fixture directory (tests/harness/sysinfo_fixtures/<name>, written by scripts/sysinfo_snapshot.py) holds
``root/`` (the kernel files the probe reads), ``commands/`` (nvidia-smi / dmidecode output), ``meta.json``
(uname machine and release, environment) and ``mlperf-sysinfo.json`` (MLCommons' capture of the same machine).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "harness" / "sysinfo_fixtures"
SYSINFO_CLI = REPO_ROOT / ".tools" / "bin" / "mlperf-sysinfo"

# mlperf-sysinfo's config for the recorded captures (scripts in the fixtures' README): the values no probe sees
CAPTURE_CONFIG = {"submitter_contact": "ops@example.com", "cooling": "air", "hw_notes": "hw", "sw_notes": "sw",
                  "system_name": "devbox"}

_COMMAND_FILES = {"--query-gpu=" + ",".join(("index", "uuid", "name", "memory.total", "driver_version",
                                              "clocks.max.sm", "pcie.link.gen.max", "pcie.link.width.max",
                                              "compute_cap")): "nvidia-smi-query.csv",
                  "--query-gpu=index,uuid,name,memory.total,driver_version": "nvidia-smi-basic.csv",
                  "topo": "nvidia-smi-topo.txt", "-t": "dmidecode-memory.txt"}


def replayer(commands: Path) -> tuple[Any, Any]:
    """``(which, run)`` for collect_system that answer from recorded command outputs in ``commands/``."""
    def which(name: str) -> str | None:
        prefix = "nvidia-smi" if name == "nvidia-smi" else "dmidecode"
        return f"/usr/bin/{name}" if commands.is_dir() and any(commands.glob(f"{prefix}-*")) else None

    def run(argv: Sequence[str], timeout: float) -> str | None:
        name = _COMMAND_FILES.get(argv[1]) if len(argv) > 1 else None
        path = commands / name if name else None
        return path.read_text() if path is not None and path.is_file() else None

    return which, run


def replay(fixture: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The system.json mlrepro's probe gives on the recorded machine."""
    from mlrepro.harness.sysinfo import SystemPaths, collect_system

    meta = json.loads((fixture / "meta.json").read_text())
    monkeypatch.setattr("platform.machine", lambda: meta["machine"])
    monkeypatch.setattr("platform.release", lambda: meta["kernel"])
    which, run = replayer(fixture / "commands")
    env = dict(meta.get("env", {}))
    if (fixture / "host-system.json").is_file():     # a Docker run: the runner's probe of the host
        env["MLREPRO_HOST_SYSTEM"] = str(fixture / "host-system.json")
    return collect_system(SystemPaths(fixture / "root"), env=env, which=which, run=run)


# --- same or better ------------------------------------------------------------------------------------

_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([KMGTP])(i?B)?", re.IGNORECASE)


def _bytes(text: str) -> float:
    """Sum of the sizes in a text ("252 GB HDD", "23.5 GiB", "25G"); G read as 2**30 and 10**9 alike."""
    total = 0.0
    for number, unit, _ in _SIZE.findall(text):
        total += float(number) * 1024 ** "KMGTP".index(unit.upper()) * 1024
    return total


def _close(ours: str, theirs: str, tolerance: float = 0.10) -> bool:
    a, b = _bytes(ours), _bytes(theirs)
    # mlperf-sysinfo mixes SI (free --si: "25G" = 25e9) and binary (df -h: "252G" = 252 GiB) sizes
    return a > 0 and b > 0 and min(abs(a - b), abs(a - b * 10**9 / 2**30)) / b <= tolerance


def _tokens(text: str) -> set[str]:
    return {t for t in re.split(r"[^a-z0-9.]+", text.lower()) if t}


def _numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"[0-9]+(?:\.[0-9]+)?", text)]


def _count(text: str) -> str:
    return text.split("x", 1)[0].strip()


#: field -> check(ours, theirs) for fields mlperf-sysinfo fills; a field not listed must be equal
COMPARATORS: dict[str, Any] = {
    "host_memory_capacity": _close,
    "host_storage_capacity": lambda o, t: _close(o, t, 0.15),
    "accelerator_memory_capacity": _close,
    "host_processor_frequency": lambda o, t: _numbers(o)[:1] == _numbers(t)[:1],
    "accelerator_frequency": lambda o, t: _numbers(o)[:1] == [round(x) for x in _numbers(t)[:1]],
    # ours names the kind (and driver, speed): "Ethernet (virtio_net)" for "Ethernet"
    "host_networking": lambda o, t: o.startswith(t) or _tokens(t) <= _tokens(o),
    "host_network_card_count": lambda o, t: _count(o) == _count(t) and _tokens(t.split("x", 1)[1]) <= _tokens(o),
    # "Debian GNU/Linux 12 (bookworm), kernel ..." for "debian 12"
    "operating_system": lambda o, t: _tokens(t) <= _tokens(o),
    # every version mlperf-sysinfo names is in ours ("CUDA 12.4, cuDNN 9.1.0.70, Driver 550.127.05")
    "other_software_stack": lambda o, t: all(v in o for v in re.findall(r"[0-9]+(?:\.[0-9]+)+", t)),
    "accelerator_memory_configuration": lambda o, t: _tokens(t) <= _tokens(o),
    "accelerator_interconnect": lambda o, t: o.lower().startswith(t.lower()),
}
#: why mlrepro's value may differ from mlperf-sysinfo's on purpose; a test naming a field here asserts
#: mlrepro's exact value for its machine instead of comparing
BETTER = {
    "host_storage_type": "zram (compressed RAM) is not storage and a virtio disk's rotational flag is the "
                         "hypervisor's default: mlrepro says 'virtual disk (virtio)' where mlperf-sysinfo "
                         "says 'SSD + HDD'",
    "host_network_card_count": "in a container's network namespace mlperf-sysinfo counts 0 cards; mlrepro "
                               "uses the host's probe the Docker runner hands over",
}


def _filled(value: Any) -> bool:
    return value not in (None, "", 0) and str(value).strip() not in ("", "N/A", "Not available") \
        and not str(value).lower().startswith("not detected")


def worse_fields(ours: Mapping[str, Any], theirs: Mapping[str, Any], better: Iterable[str] = ()) -> list[str]:
    """Fields mlperf-sysinfo filled where mlrepro's value is missing, empty or not the same or better.
    ``better``: fields (documented in :data:`BETTER`) the caller checks against mlrepro's exact value."""
    skip = set(better)
    assert skip <= set(BETTER), f"undocumented: {sorted(skip - set(BETTER))}"
    problems = []
    for field, value in theirs.items():
        if field == "mlperf_sysinfo" or not _filled(value):
            continue
        mine = ours.get(field)
        if not _filled(mine):
            problems.append(f"{field}: ours {mine!r}, mlperf-sysinfo {value!r}")
            continue
        if field in skip:
            continue
        check = COMPARATORS.get(field, lambda o, t: o == t)
        if not check(str(mine), str(value)):
            problems.append(f"{field}: ours {mine!r}, mlperf-sysinfo {value!r}")
    return problems


# --- running mlperf-sysinfo ----------------------------------------------------------------------------

def sysinfo_cli() -> str:
    """Path of mlperf-sysinfo (``make install`` puts it in .tools/bin): skip when missing, fail under
    ``MLREPRO_REQUIRE_TOOLS=1`` (CI)."""
    exe = str(SYSINFO_CLI) if SYSINFO_CLI.exists() else shutil.which("mlperf-sysinfo")
    if exe is None:
        message = "mlperf-sysinfo not found (bash scripts/install-mlperf-sysinfo.sh)"
        if os.environ.get("MLREPRO_REQUIRE_TOOLS") == "1":
            pytest.fail(message + " and MLREPRO_REQUIRE_TOOLS=1")
        pytest.skip(message)
    return exe


def sysinfo_validate(path: Path, env: Mapping[str, str] | None = None) -> tuple[int, str]:
    """``mlperf-sysinfo validate --profile inference PATH``: (exit code, its output)."""
    proc = subprocess.run([sysinfo_cli(), "validate", "--profile", "inference", str(path)], capture_output=True,
                          text=True, timeout=120, check=False,
                          env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})})
    return proc.returncode, proc.stdout + proc.stderr


def validate_problems(output: str) -> list[str]:
    """The lines under "problems" in mlperf-sysinfo validate's report, without their mark."""
    out: list[str] = []
    section = None
    for line in output.splitlines():
        text = line.strip()
        if text.lower() in ("problems", "warnings"):
            section = text.lower()
            continue
        if not text or line.startswith("["):
            section = None if not text else section
            continue
        if section == "problems":
            out.append(text.lstrip("✗x ").strip())
    return out
