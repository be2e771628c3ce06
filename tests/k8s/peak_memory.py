"""Run one ``mlrepro`` command in this process and say how much memory it took above its start.

    python tests/k8s/peak_memory.py OUT.json mlrepro-args...

Imports the CLI and the modules a cluster collect uses first, resets the kernel's high-water mark of the resident
set to what it is now (``5`` into /proc/self/clear_refs, Linux 4.0+), then prints one JSON line ``{"pid",
"start_kib"}`` (the resident set now) on stdout, runs the command, and writes ``{"exit_code", "start_kib",
"peak_kib", "seconds"}`` to OUT.json: ``peak_kib`` is the high-water mark since the reset (VmHWM, KiB), exact
however short the peak was (without /proc: getrusage's ``ru_maxrss``, which also counts the imports). The parent (a test, benchmarks/collect_k8s.py) may also sample
``/proc/PID/status`` to stop a child that is on its way to a GiB.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time


def status_kib(field: str) -> int:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process in KiB; getrusage's peak where /proc is missing."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        pass


def main() -> int:
    out, argv = sys.argv[1], sys.argv[2:]
    import gc

    import kubernetes.client  # noqa: F401 - what the command loads anyway, before the measure starts
    import kubernetes.stream  # noqa: F401

    import mlrepro.cli.main as cli
    import mlrepro.flow.recorded  # noqa: F401
    import mlrepro.results.submission  # noqa: F401
    import mlrepro.runners.kubernetes.collect  # noqa: F401
    import mlrepro.runners.kubernetes.runner  # noqa: F401

    gc.collect()
    reset_peak()
    start = status_kib("VmRSS")
    print(json.dumps({"pid": os.getpid(), "start_kib": start}), flush=True)
    began = time.monotonic()
    try:
        cli.app(argv, prog_name="mlrepro")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    seconds = time.monotonic() - began
    peak = status_kib("VmHWM")
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"exit_code": code, "start_kib": start, "peak_kib": peak, "seconds": seconds}, f)
    return code


if __name__ == "__main__":
    sys.exit(main())
