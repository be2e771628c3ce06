"""``mlrepro-harness --spec PATH --results DIR [--self-check]``: the program the image runs.

Exit codes (:mod:`mlrepro.harness.exit_codes`): 0 every performance run VALID (accuracy computed), 4 a
performance run INVALID, 3 bad spec or configuration (workload, a results directory it cannot write), 1
runtime failure, 130 SIGINT/SIGTERM.
Failures print one line ``mlrepro-harness: error: ...`` on stderr (a traceback too with ``MLREPRO_DEBUG=1``).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import NoReturn

from mlrepro.harness import exit_codes
from mlrepro.harness.core import HarnessResult, Interrupted, run_harness
from mlrepro.harness.selfcheck import self_check
from mlrepro.harness.spec import SpecError, load_spec

__all__ = ["HarnessResult", "main", "run_harness"]

PROG = "mlrepro-harness"


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Run one MLPerf-style benchmark (a run spec) with LoadGen: find the LoadGen "
                "target (pinned, cached or calibrated), run the spec's mode, write logs, record and checksums "
                "under RESULTS/<run id>/.",
                formatter_class=argparse.RawDescriptionHelpFormatter,
                epilog="example:\n  mlrepro-harness --spec /config/run.json --results /results\n"
                       "  mlrepro-harness --self-check\n\n"
                       "exit codes:\n  0    every performance run VALID (accuracy computed)\n"
                       "  4    a performance run INVALID (LoadGen's reasons are printed)\n"
                       "  3    bad run spec or configuration: workload, results directory not writable\n"
                       "       (retrying cannot help)\n"
                       "  1    runtime failure (workload, LoadGen, I/O)\n"
                       "  130  interrupted (SIGINT / SIGTERM): the record says how far it got")
    p.add_argument("--spec", help="run spec JSON (mlrepro.run/v1)")
    p.add_argument("--results", help="results directory; the run writes <results>/<run_id>/")
    p.add_argument("--self-check", action="store_true",
                   help="print a JSON line (arch, python, LoadGen and backend imports) and exit")
    return p


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)


@contextmanager
def _signals_raise_interrupted() -> Iterator[None]:
    """SIGTERM and SIGINT raise Interrupted in the main thread (only the main thread can install handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        # a second signal while the record is being written is ignored; Kubernetes escalates to SIGKILL
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise Interrupted(signum)

    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    for s in previous:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)


def _debug() -> bool:
    return os.environ.get("MLREPRO_DEBUG") == "1"


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except _UsageError as exc:
        _error(str(exc))
        return exit_codes.EXIT_BAD_SPEC
    if args.self_check:
        return self_check()
    if not args.spec or not args.results:
        _error("--spec and --results are required (or --self-check)")
        return exit_codes.EXIT_BAD_SPEC
    try:
        spec = load_spec(args.spec)
    except SpecError as exc:
        _error(str(exc))
        return exit_codes.EXIT_BAD_SPEC

    result: HarnessResult | None = None
    try:
        with _signals_raise_interrupted():
            result = run_harness(spec, args.results, fail_fast=True, debug=_debug())
    except KeyboardInterrupt:  # a signal outside run_harness's own handling (e.g. while returning)
        _error("interrupted")
        return exit_codes.EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - last resort; run_harness reports run failures itself
        if _debug():
            traceback.print_exc()
        _error(f"{type(exc).__name__}: {exc}")
        return exit_codes.EXIT_RUNTIME

    code = result.exit_code
    if code not in (exit_codes.EXIT_VALID, exit_codes.EXIT_INVALID):
        _error(result.error or result.status)
    if result.loadgen_detached:
        # LoadGen is still running in its thread and cannot be stopped: leave now, the record is written.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
