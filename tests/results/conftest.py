"""Fixtures of the results tests: genuine harness run directories (real harness, real LoadGen).

``harness_runs`` (session) runs ``make_runs.py`` once in a subprocess; ``runs`` gives each test its own copy.
Helpers live in ``results_testutil.py`` (this directory is put on sys.path so tests import it by name).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

EXPECTED_CODES = {"run-offline-sub": 0, "run-single-perf": 0, "run-single-acc": 0, "run-offline-invalid": 4,
                  "run-offline-failed": 1, "run-multi-perf": 0, "run-comp-steady": 0, "run-comp-cache": 0,
                  "run-comp-perf": 0, "run-comp-audit": 0}


@pytest.fixture(scope="session")
def harness_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("harness-runs")
    proc = subprocess.run([sys.executable, str(HERE / "make_runs.py"), str(out)], capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    codes = json.loads(proc.stdout.strip().splitlines()[-1])
    assert codes == EXPECTED_CODES, codes
    return out


@pytest.fixture
def runs(harness_runs: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "runs"
    shutil.copytree(harness_runs, dst)
    return dst
