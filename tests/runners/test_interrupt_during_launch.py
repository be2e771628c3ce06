"""Ctrl-C that lands while a run is being launched (its process or container already exists, the launch does not
know it yet) still cancels that run: nothing is left running."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from mlrepro.flow import PipelineOptions, run_pipeline
from mlrepro.profiles import resolve_profile
from mlrepro.runners.native import NativeRunner
from mlrepro.state.store import open_store


def test_ctrl_c_inside_launch_cancels_the_run_it_started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         sigint_delivered: None) -> None:
    state = tmp_path / "state"
    launched, cancelled = [], []
    launch, cancel = NativeRunner.launch, NativeRunner.cancel

    def launch_then_ctrl_c(self: NativeRunner, job):  # noqa: ANN001, ANN202
        handle = launch(self, job)                  # the harness process runs from here on
        launched.append(handle)
        os.kill(os.getpid(), signal.SIGINT)         # Ctrl-C before the launch returns
        time.sleep(0.2)                             # (Python runs signal handlers between bytecodes)
        return handle

    def spy_cancel(self: NativeRunner, handle):  # noqa: ANN001, ANN202
        cancelled.append(handle)
        return cancel(self, handle)

    monkeypatch.setattr(NativeRunner, "launch", launch_then_ctrl_c)
    monkeypatch.setattr(NativeRunner, "cancel", spy_cancel)
    resolved = resolve_profile("x86-cpu", ["quick"], ["benchmark.workload='null'"])
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(resolved, PipelineOptions(target="native", scenarios=["Offline"], modes=["performance"],
                                               collect=False, into=None), state_dir=state)
    (handle,) = launched
    assert [h.run_id for h in cancelled] == [handle.run_id]
    (record,) = open_store(state).list()
    assert record.status == "cancelled"
