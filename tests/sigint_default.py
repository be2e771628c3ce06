"""Run a command with SIGINT at its default disposition: ``python sigint_default.py CMD ARG...``.

A process started by a parent that ignores SIGINT (a background job of a non-interactive shell, some CI runners)
inherits SIG_IGN, and Python then installs no KeyboardInterrupt handler: a test's Ctrl-C would do nothing. Tests
that send SIGINT to a child start it through this wrapper, which resets the disposition and execs the command
(same pid, so the signal reaches the command itself). See signals_support.with_sigint.
"""

import os
import signal
import sys

if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.execvp(sys.argv[1], sys.argv[1:])
