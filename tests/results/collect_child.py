"""Run collect in a child process for the crash tests:
``collect_child.py TREE KILL_AT [--force] [--jobs=N] SOURCE...``.

KILL_AT >= 0: SIGKILL this process right before the commit phase renames unit number KILL_AT.
KILL_AT < 0: no self-kill (the parent may kill it at a random time).
"""

from __future__ import annotations

import os
import signal
import sys

from mlrepro.results import submission


def main(argv: list[str]) -> int:
    tree, kill_at = argv[0], int(argv[1])
    force = "--force" in argv
    jobs = next((int(a.split("=", 1)[1]) for a in argv if a.startswith("--jobs=")), None)
    sources = [a for a in argv[2:] if not a.startswith("--")]
    if kill_at >= 0:
        def hook(i: int) -> None:
            if i == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
        submission._commit_hook = hook
    submission.collect(sources, tree, submitter="mlrepro-test", force=force, jobs=jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
