"""``mlrepro`` with a slow fetch, to interrupt a launch while it copies results out (a real engine, real runs).

``python interrupt_driver.py ARGS...`` runs the CLI with ARGS; every DockerRunner.fetch_results first prints
``FETCHING <run id>`` and waits 30 s, so that a test can send its signal then.
"""

from __future__ import annotations

import sys
import time

from mlrepro.runners.docker import DockerRunner

_original = DockerRunner.fetch_results


def _slow_fetch(self, handle, dest):  # noqa: ANN001, ANN202
    print(f"FETCHING {handle.run_id}", flush=True)
    time.sleep(30)
    return _original(self, handle, dest)


DockerRunner.fetch_results = _slow_fetch  # type: ignore[method-assign]

if __name__ == "__main__":
    from mlrepro.cli.main import main

    sys.argv = ["mlrepro", *sys.argv[1:]]
    main()
