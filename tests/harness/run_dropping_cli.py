"""``python run_dropping_cli.py ARGS``: mlrepro-harness whose SUT loses one completion on its way to LoadGen
(it counts the sample as completed but never tells LoadGen), so that LoadGen's test cannot end: the stall
watchdog's end-to-end case. The watchdog's wait is cut to 2 s."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import fake_workloads

fake_workloads.install()

from mlrepro.harness import loadgen_runner
from mlrepro.harness.main import main

loadgen_runner._StallWatchdog.STALL_S = 2.0
_flush = loadgen_runner._Responder.flush


def _lossy_flush(self: loadgen_runner._Responder) -> None:
    if self._pending and not getattr(self, "_lost_one", False):
        self._lost_one = True
        self._pending.pop()
        self.completed += 1
    _flush(self)


loadgen_runner._Responder.flush = _lossy_flush  # type: ignore[method-assign]

raise SystemExit(main(sys.argv[1:]))
