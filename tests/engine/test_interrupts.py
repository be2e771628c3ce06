"""Ctrl-C and SIGTERM during a parallel launch on a real engine, at every moment of a run's life: every container
it started is stopped and removed, every unfinished run is marked cancelled, exit 130, no traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from signals_support import with_sigint

from mlrepro.state.store import open_store

pytestmark = [pytest.mark.docker]

HERE = Path(__file__).parent
# two runs at once, long enough to be caught at any moment; the quick overlay's query counts
PARALLEL = ["-p", "x86-cpu", "-f", "air-gapped", "-f", "quick", "--scenario", "Offline,SingleStream",
            "--mode", "performance", "--parallel", "2"]
LONG = ["--set", "benchmark.settings.min_duration_ms=60000"]


class Launch:
    """``mlrepro launch`` in a subprocess whose output is read as it comes."""

    def __init__(self, argv: list[str], state: Path) -> None:
        env = {**os.environ, "MLREPRO_STATE_DIR": str(state), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(with_sigint(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [threading.Thread(target=self._read, args=(s, buf), daemon=True)
                         for s, buf in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for t in self._readers:
            t.start()

    @staticmethod
    def _read(stream, buf: list[str]) -> None:  # noqa: ANN001
        for line in stream:
            buf.append(line)

    def wait_for(self, what: Callable[[], bool], timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not what():
            if self.proc.poll() is not None:
                pytest.fail(f"mlrepro ended ({self.proc.returncode}) before the moment came:\n"
                            + "".join(self.out[-20:] + self.err[-20:]))
            if time.monotonic() > deadline:
                self.proc.kill()
                pytest.fail("the moment never came:\n" + "".join(self.out[-30:]))
            time.sleep(0.1)

    def printed(self, text: str) -> bool:
        return any(text in line for line in self.out)

    def finish(self, sig: int) -> tuple[int, str]:
        self.proc.send_signal(sig)
        self.proc.wait(timeout=120)
        for t in self._readers:
            t.join(timeout=5)
        return self.proc.returncode, "".join(self.err)


def _assert_all_cancelled_and_gone(state: Path, docker_client, expected_runs: int = 2) -> None:  # noqa: ANN001
    records = open_store(state).list()
    assert len(records) == expected_runs
    assert {r.status for r in records} == {"cancelled"}, [(r.run_id, r.status, r.message) for r in records]
    for r in records:
        assert docker_client.containers.list(all=True, filters={"label": f"mlrepro.io/run-id={r.run_id}"}) == []


def _check_exit(code: int, err: str) -> None:
    assert code == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "mlrepro: error: interrupted"


@pytest.mark.parametrize(("moment", "sig"), [
    ("before any run started", signal.SIGINT),
    ("during calibration", signal.SIGINT),
    ("mid-run", signal.SIGTERM),
    ("mid-run", signal.SIGINT),
])
def test_interrupted_parallel_launch(moment: str, sig: int, docker_client, x86_image: str,  # noqa: ANN001
                                     tmp_path: Path) -> None:
    state = tmp_path / "state"
    launch = Launch([sys.executable, "-m", "mlrepro.cli.main", "launch", *PARALLEL, *LONG, "--image", x86_image],
                    state)
    if moment == "before any run started":
        launch.wait_for(lambda: launch.printed("run(s) of x86-cpu"))
    elif moment == "during calibration":
        launch.wait_for(lambda: launch.printed("calibration probe"))
    else:
        launch.wait_for(lambda: launch.printed("performance run ->"))
    code, err = launch.finish(sig)
    _check_exit(code, err)
    _assert_all_cancelled_and_gone(state, docker_client)


def test_interrupted_while_results_are_fetched(docker_client, x86_image: str, tmp_path: Path) -> None:  # noqa: ANN001
    state = tmp_path / "state"
    launch = Launch([sys.executable, str(HERE / "interrupt_driver.py"), "launch", *PARALLEL, "--image", x86_image],
                    state)
    launch.wait_for(lambda: launch.printed("FETCHING"))
    code, err = launch.finish(signal.SIGINT)
    _check_exit(code, err)
    records = open_store(state).list()
    # a run whose results were being fetched is not finished: cancelled; none is left running or pending
    assert {r.status for r in records} <= {"cancelled", "succeeded"} and "cancelled" in {r.status for r in records}
    for r in records:
        assert docker_client.containers.list(all=True, filters={"label": f"mlrepro.io/run-id={r.run_id}"}) == []


def test_a_second_ctrl_c_does_not_cut_the_clean_up_short(docker_client, x86_image: str,  # noqa: ANN001
                                                        tmp_path: Path) -> None:
    state = tmp_path / "state"
    launch = Launch([sys.executable, "-m", "mlrepro.cli.main", "launch", *PARALLEL, *LONG, "--image", x86_image],
                    state)
    launch.wait_for(lambda: launch.printed("performance run ->"))
    launch.proc.send_signal(signal.SIGINT)
    launch.wait_for(lambda: launch.printed("stopping"), timeout=30)
    code, err = launch.finish(signal.SIGINT)
    _check_exit(code, err)
    _assert_all_cancelled_and_gone(state, docker_client)
