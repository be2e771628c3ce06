"""Helpers of the reproduce tests (import: ``from reproduce_support import ...``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Recorded:
    tree: Path
    state: Path

    def result(self, scenario: str = "SingleStream") -> Path:
        return next((self.tree / "open" / "mlrepro" / "results").glob(f"*/reference-digits/{scenario}"))


def mlrepro(state: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, MLREPRO_STATE_DIR=str(state))
    return subprocess.run([sys.executable, "-m", "mlrepro.cli.main", *args], env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def copy_tree(src: Path, dest_root: Path) -> Path:
    """The tree and its sidecar, copied under ``dest_root`` (same folder names)."""
    dest = dest_root / src.name
    shutil.copytree(src, dest)
    side = src.parent / f"{src.name}.mlrepro"
    if side.is_dir():
        shutil.copytree(side, dest_root / side.name, ignore=shutil.ignore_patterns("reproduce", "*.lock"))
    return dest


#: the original's SingleStream target: the calibrated expected latency divided by this. LoadGen then pre-generates
#: queries for HEADROOM x 2.5 x the min duration at the measured speed, so the reproduction, which pins the
#: recorded target, stays VALID on this shared machine when it is up to ~10x faster than at calibration (the
#: calibrated 1.25 alone leaves ~1.7x, less than this machine's swings under other engineers' builds).
HEADROOM = 4


def pinned_target(state: Path, *profile_args: str) -> str:
    """``--set`` pinning the SingleStream target of a profile, from a calibration on this machine now."""
    proc = mlrepro(state, "calibrate", *profile_args, "--scenario", "SingleStream", "--output", "json")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    value = json.loads(proc.stdout)[0]["target"]["value"]
    return f"benchmark.settings.SingleStream.single_stream_expected_latency_ns={value / HEADROOM:.0f}"


