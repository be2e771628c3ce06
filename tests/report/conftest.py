"""Fixtures of the report tests: real submission trees made by ``mlrepro run`` (real harness, LoadGen and
model, native target) and a real headless Chromium driven through chromedriver (Selenium).

The browser tests fail instead of skipping when Chromium or chromedriver is missing and
MLREPRO_REQUIRE_TOOLS=1 (CI installs both: scripts/ci/setup-browser.sh).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

REPO = HERE.parents[1]
CHROMIUM = ("chromium", "chromium-browser", "google-chrome")


def _require(message: str) -> None:
    if os.environ.get("MLREPRO_REQUIRE_TOOLS") == "1":
        pytest.fail(message + " and MLREPRO_REQUIRE_TOOLS=1", pytrace=False)
    pytest.skip(message)


def mlrepro_run(dest: Path, state: Path, *extra: str) -> Path:
    """``mlrepro run -p x86-cpu -f quick --target native --scenario Offline,SingleStream --into dest`` in a
    child process (its own state dir); returns the tree."""
    env = dict(os.environ, MLREPRO_STATE_DIR=str(state))
    cmd = [sys.executable, "-m", "mlrepro.cli.main", "run", "-p", "x86-cpu", "-f", "quick", "--target", "native",
           "--scenario", "Offline,SingleStream", "--into", str(dest), *extra]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return dest


@pytest.fixture(scope="session")
def run_trees(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two real trees of the same profile: as built in, and with another batch size (``--set``)."""
    base = tmp_path_factory.mktemp("trees")
    state = base / "state"
    a = mlrepro_run(base / "tree-a" / "submission", state)
    b = mlrepro_run(base / "tree-b" / "submission", state, "--set", "benchmark.batch_size=8")
    return a, b


@pytest.fixture(scope="session")
def chromium_paths() -> tuple[str, str]:
    browser = next((p for p in map(shutil.which, CHROMIUM) if p), None)
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        _require("chromium or chromedriver not installed (apt-get install chromium chromium-driver)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        _require("selenium not installed (pip install -e '.[dev]')")
    return browser, driver  # type: ignore[return-value]


@pytest.fixture
def browser(chromium_paths: tuple[str, str], tmp_path: Path) -> Iterator[Any]:
    """A fresh headless Chromium (own profile dir, no network: every host resolves to nothing)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = chromium_paths
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1400,1000",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost", "--proxy-server=http://127.0.0.1:9"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=driver_path, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=opts, service=service)
    try:
        yield driver
    finally:
        driver.quit()
