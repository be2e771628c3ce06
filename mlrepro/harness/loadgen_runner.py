"""Drive real LoadGen for one sub-run: TestSettings, log settings, the SUT/QSL around a Workload.

Settings. Every LoadGen setting comes from LoadGen's built-in ``mlperf.conf`` (the round's official RNG seeds)
and the run's user.conf (composed by :mod:`mlrepro.harness.userconf`), nothing else.
``TestSettings.FromConfig(user.conf, model, scenario)`` loads both; LoadGen counts those calls per *process*: a
second call does not load mlperf.conf (seeds stay 0) and logs "Multiple conf files are used". So only the timed
run uses that call, once per process; calibration probes and later in-process runs (tests, retries) load the
same two files explicitly (``conf_type=0`` = built-in mlperf.conf, then the user.conf with a non-counting
``conf_type``), which yields the same settings without that error. :class:`ConfLoading` records which path ran.

SUT. ``ConstructFastSUT`` hands the issue callback plain lists of ids and sample indices. Responses are copied
into a reusable numpy scratch buffer (LoadGen copies what it logs before ``QuerySamplesComplete`` returns, so the
buffer can be reused right after), and batches are completed with one ``QuerySamplesComplete`` call. A single
``bytes`` response (SingleStream, cheap Server) is not copied: LoadGen gets a pointer to the object's own data,
which stays referenced until that call returns (CPython's layout, checked at import; else the copy).
Dispatch per scenario:

* Offline / SingleStream / MultiStream: inline in LoadGen's issue thread, in batches of ``batch_size``
  (Offline coalesces completions into calls of ~``COALESCE_SAMPLES`` samples, held at most ``COALESCE_MAX_S``).
* Server: ``inline`` when one prediction is cheap (below ``INLINE_THRESHOLD_S``, measured in a warm-up right after
  the first sample load), else ``worker``: a worker thread drains a queue in dynamic batches of up to
  ``batch_size``. ``MLREPRO_SERVER_DISPATCH=inline|worker`` forces either; the choice is recorded.

* LLMs (a :class:`~mlrepro.harness.workloads.base.TokenWorkload`): the token path (:class:`_TokenDispatcher`,
  :class:`_TokenResponder`): ``FirstTokenComplete`` at each sample's first token and ``QuerySamplesComplete`` with
  its token count, int64 token-id payloads; Offline batched in the issue thread, SingleStream streamed there,
  Server / Interactive streamed from the worker in dynamic batches (or handed one by one to a concurrent backend).

Callbacks never let an exception escape into LoadGen (that would abort the process): the first failure is kept,
remaining queries are completed with empty responses so LoadGen can finish, and the caller reports the failure.
LoadGen runs in a separate thread so the main thread stays responsive to SIGTERM/SIGINT: always the same one
(:class:`_LongLivedThread`), as is the Server worker, because LoadGen's per-thread loggers do not survive thread
churn.
"""

from __future__ import annotations

import collections
import ctypes
import gc
import importlib
import importlib.machinery
import importlib.util
import itertools
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from mlrepro.harness.scenarios import LOADGEN_SCENARIOS, is_server_like, loadgen_scenario
from mlrepro.harness.workloads.base import TokenWorkload, Workload, WorkloadConfigError, WorkloadError

INLINE_THRESHOLD_S = 200e-6
COALESCE_SAMPLES = 1 << 16
COALESCE_MAX_S = 0.25
WARMUP_CALLS = 5
DISPATCH_ENV = "MLREPRO_SERVER_DISPATCH"

_MODES = {"performance": "PerformanceOnly", "accuracy": "AccuracyOnly"}


def import_loadgen() -> ModuleType:
    """The LoadGen extension module (``mlperf_loadgen``).

    Importing ``mlcommons_loadgen`` first replaces ``sys.modules['mlperf_loadgen']`` with an empty package; this
    finds the real extension anyway. Raises WorkloadError when LoadGen is not installed."""
    try:
        lg = importlib.import_module("mlperf_loadgen")
    except ImportError as exc:
        raise WorkloadError(f"LoadGen is not installed (import mlperf_loadgen: {exc})") from None
    if hasattr(lg, "TestSettings"):
        return lg
    saved = sys.modules.pop("mlperf_loadgen", None)
    try:
        for entry in sys.path:
            for suffix in importlib.machinery.EXTENSION_SUFFIXES:
                cand = Path(entry or ".") / f"mlperf_loadgen{suffix}"
                if cand.is_file():
                    spec = importlib.util.spec_from_file_location("mlperf_loadgen", cand)
                    if spec and spec.loader:
                        mod = importlib.util.module_from_spec(spec)
                        spec.loader.exec_module(mod)
                        sys.modules["mlperf_loadgen"] = mod
                        return mod
    except Exception as exc:  # noqa: BLE001
        raise WorkloadError(f"LoadGen extension cannot be loaded: {exc}") from None
    if saved is not None:
        sys.modules["mlperf_loadgen"] = saved
    raise WorkloadError("LoadGen extension module mlperf_loadgen not found")


# --------------------------------------------------------------------------------------------- settings

_conf_lock = threading.Lock()
_official_conf_calls = 0


class UserConfError(WorkloadConfigError):
    """LoadGen could not parse the user.conf: a configuration error (EXIT_BAD_SPEC)."""


@dataclass(frozen=True)
class ConfLoading:
    model: str
    scenario: str
    user_conf: str
    method: str            # "official" (first FromConfig of the process) | "explicit" (later in-process runs)
    return_codes: tuple[int, ...]


@dataclass
class BuiltSettings:
    settings: Any                          # mlperf_loadgen.TestSettings
    conf: ConfLoading


def build_settings(lg: ModuleType, user_conf: Path, model: str, scenario: str, *,
                   official: bool = True) -> BuiltSettings:
    """TestSettings from LoadGen's built-in mlperf.conf, then ``user_conf``, for (model, scenario). Every setting
    comes from those two files: nothing is set afterwards (the scenario and the mode excepted).

    ``official``: use LoadGen's single-conf path (``FromConfig(user.conf)``, which loads mlperf.conf itself) when
    this process has not used it yet; calibration probes pass False and load the same two files explicitly, so
    the timed run's detail log carries no "Multiple conf files" error. Raises UserConfError (a
    WorkloadConfigError) when LoadGen rejects the user.conf. ``scenario`` is a spec scenario (Interactive runs as
    LoadGen's Server; ``model`` is then the ``-interactive`` one)."""
    global _official_conf_calls
    scenario = loadgen_scenario(scenario)
    if scenario not in LOADGEN_SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}")
    settings = lg.TestSettings()
    with _conf_lock:
        if official and _official_conf_calls == 0:
            rcs: tuple[int, ...] = (settings.FromConfig(str(user_conf), model, scenario),)
            method = "official"
            _official_conf_calls += 1
        else:
            rcs = (settings.FromConfig("", model, scenario, 0), settings.FromConfig(str(user_conf), model, scenario, 2))
            method = "explicit"
    if any(rc != 0 for rc in rcs):
        raise UserConfError(f"{user_conf}: LoadGen rejected the user.conf (FromConfig returned {rcs[-1]}: "
                            "each line must be 'model.Scenario.key = number')")
    settings.scenario = getattr(lg.TestScenario, scenario)
    return BuiltSettings(settings=settings, conf=ConfLoading(model=model, scenario=scenario, user_conf=str(user_conf),
                                                             method=method, return_codes=rcs))


#: TestSettings attributes calibration reads back from LoadGen (the timed run's effective values)
TIMED_SETTINGS = ("min_duration_ms", "min_query_count", "max_query_count", "server_target_latency_ns",
                  "multi_stream_samples_per_query", "offline_expected_qps", "server_target_qps",
                  "single_stream_expected_latency_ns", "multi_stream_expected_latency_ns", "ttft_latency",
                  "tpot_latency")


def read_settings(built: BuiltSettings) -> dict[str, float]:
    """The values LoadGen will use for :data:`TIMED_SETTINGS` (TestSettings units)."""
    return {k: float(getattr(built.settings, k)) for k in TIMED_SETTINGS}


def set_mode(lg: ModuleType, settings: Any, kind: str) -> None:
    settings.mode = getattr(lg.TestMode, _MODES[kind])


def log_settings(lg: ModuleType, outdir: Path, enable_trace: bool) -> Any:
    ls = lg.LogSettings()
    ls.log_output.outdir = str(outdir)
    ls.log_output.copy_summary_to_stdout = False
    ls.log_output.prefix_with_datetime = False
    ls.enable_trace = bool(enable_trace)
    return ls


# --------------------------------------------------------------------------------------------- responses

def _bytes_data_offset() -> int | None:
    """Offset of a ``bytes`` object's data from its address (``id``) in this interpreter, or None where that
    cannot be relied on (not CPython, or a layout that fails the check on a fresh object)."""
    if sys.implementation.name != "cpython":
        return None
    offset = sys.getsizeof(b"") - 1          # header size: the data follows it (plus the trailing NUL)
    probe = bytes(range(1, 40))              # a fresh object, not an interned constant
    try:
        return offset if ctypes.string_at(id(probe) + offset, len(probe)) == probe else None
    except (OSError, ValueError):
        return None


_BYTES_DATA_OFFSET = _bytes_data_offset()


def _all_equal(outs: list[Any], n: int) -> bool:
    """All ``n`` payloads equal the first (C-speed; identical objects compare instantly)."""
    try:
        return outs.count(outs[0]) == n
    except (ValueError, TypeError):   # e.g. numpy arrays among the payloads: no truth value for ==
        return False


class _Responder:
    """Runs predict on batches and completes them from a reusable scratch buffer (one per thread).

    ``stage`` predicts a batch and appends its responses (payloads copied into the scratch buffer) to a pending
    list; ``flush`` completes everything pending with one ``QuerySamplesComplete``. ``__call__`` does both
    (one batch, completed at once). LoadGen copies what it keeps before ``QuerySamplesComplete`` returns, so the
    scratch buffer is reused right after a flush."""

    def __init__(self, lg: ModuleType, predict: Callable[[Sequence[int]], list[bytes]], state: _RunState) -> None:
        self._qsr = lg.QuerySampleResponse
        self._complete = lg.QuerySamplesComplete
        self._predict = predict
        self._state = state
        self._pending: list[Any] = []
        self._offset = 0
        self.completed = 0           # samples completed (progress lines; approximate across threads)
        self._grow(1 << 16)

    def _grow(self, size: int) -> None:
        self._buf = np.empty(size, dtype=np.uint8)
        self._mv = self._buf.data
        self._addr = self._buf.ctypes.data
        self._cap = size

    @property
    def pending(self) -> int:
        return len(self._pending)

    def empty(self, ids: Sequence[int]) -> None:
        qsr = self._qsr
        self._complete([qsr(i, 0, 0) for i in ids])
        self.completed += len(ids)

    def flush(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, []
            self._complete(pending)
            self.completed += len(pending)
        self._offset = 0

    def __call__(self, ids: Sequence[int], indices: Sequence[int]) -> None:
        """Predict and complete one batch now. One sample (SingleStream, Server) takes a short path."""
        if len(ids) != 1:
            self.stage(ids, indices)
            self.flush()
            return
        self.one(ids, indices)

    def one(self, ids: Sequence[int], indices: Sequence[int]) -> None:
        """Predict and complete a single sample now (``ids``/``indices`` of length 1): the short path."""
        if self._pending or self._state.failed:
            self.stage(ids, indices)
            self.flush()
            return
        try:
            outs = self._predict(indices)
            if len(outs) != 1:
                raise WorkloadError(f"predict() returned {len(outs)} payloads for 1 sample")
            p = outs[0]
            if type(p) is not bytes:
                p = memoryview(p).tobytes()
            size = len(p)
            if _BYTES_DATA_OFFSET is not None:
                # point LoadGen at the bytes object's own data: it stays alive (``p``) until LoadGen has copied
                # what it keeps, and skipping the copy is worth ~5 % of the peak Server rate of a cheap model
                self._complete([self._qsr(ids[0], id(p) + _BYTES_DATA_OFFSET, size)])
            else:
                if size > self._cap:
                    self._grow(max(size, 2 * self._cap))
                self._mv[:size] = p
                self._complete([self._qsr(ids[0], self._addr, size)])
            self.completed += 1
        except BaseException as exc:  # noqa: BLE001 - must not propagate into LoadGen
            self._state.fail(exc)
            self.empty(ids)

    def stage(self, ids: Sequence[int], indices: Sequence[int]) -> None:
        if self._state.failed:
            self.flush()
            self.empty(ids)
            return
        try:
            outs = self._predict(indices)
            n = len(ids)
            if len(outs) != n:
                raise WorkloadError(f"predict() returned {len(outs)} payloads for {n} samples")
            if n == 1:
                p = outs[0]
                if type(p) is not bytes:
                    p = memoryview(p).tobytes()   # any buffer (numpy arrays included), C order
                size = total = len(p)
                data: Any = p
                sizes: list[int] = [size]
            elif type(outs[0]) is bytes and _all_equal(outs, n):
                # every sample got the same bytes (often the very same object): stage them once and point
                # all responses at that copy -- LoadGen copies what it logs
                p = outs[0]
                size = total = len(p)
                data = p
                sizes = []
            else:
                data = b"".join(outs)
                total = len(data)
                sizes = list(map(len, outs))   # len() is the byte length of bytes/bytearray/1-D byte views
                if sum(sizes) != total:        # other buffers (e.g. numpy arrays): len() is not their byte size
                    sizes = [memoryview(p).nbytes for p in outs]
                size = sizes[0]
            off = self._offset
            if off + total > self._cap:
                self.flush()                   # pending responses point into the buffer: complete them first
                off = 0
                if total > self._cap:
                    self._grow(max(total, 2 * self._cap))
            self._mv[off:off + total] = data
            addr = self._addr + off
            self._offset = off + total
            if n == 1:
                self._pending.append(self._qsr(ids[0], addr, size))
            elif not sizes:
                self._pending.extend(map(self._qsr, ids, itertools.repeat(addr, n), itertools.repeat(size, n)))
            elif size and sizes.count(size) == n:
                self._pending.extend(map(self._qsr, ids, range(addr, addr + total, size), sizes))
            else:
                self._pending.extend(map(self._qsr, ids, itertools.accumulate(sizes[:-1], initial=addr), sizes))
        except BaseException as exc:  # noqa: BLE001 - must not propagate into LoadGen
            self._state.fail(exc)
            self.flush()
            self.empty(ids)


class QueriesFailed(WorkloadError):
    """Queries the SUT failed one by one (a model server's errors): each ended without output, none retried;
    the run fails at its end with the count by kind (``counts``) and the first reason."""

    def __init__(self, message: str, counts: dict[str, int]) -> None:
        super().__init__(message)
        self.counts = counts


@dataclass
class _RunState:
    failure: BaseException | None = None
    failed: bool = False
    event: threading.Event = field(default_factory=threading.Event)
    query_failures: collections.Counter[str] = field(default_factory=collections.Counter)
    first_query_failure: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, exc: BaseException) -> None:
        if not self.failed:
            self.failure = exc
            self.failed = True
            self.event.set()

    def query_failed(self, kind: str, reason: str) -> None:
        """One query failed on its own (the run goes on; :meth:`queries_failed` ends it failed)."""
        with self.lock:
            self.query_failures[kind] += 1
            if not self.first_query_failure:
                self.first_query_failure = f"{kind}: {reason}"

    def queries_failed(self, issued: int) -> QueriesFailed | None:
        """The failure of a run some of whose queries failed (None when none did)."""
        with self.lock:
            counts = dict(sorted(self.query_failures.items()))
            first = self.first_query_failure
        if not counts:
            return None
        n = sum(counts.values())
        kinds = ", ".join(f"{k} {v}" for k, v in counts.items())
        return QueriesFailed(f"{n} of {issued} queries failed at the model server, none retried ({kinds}); the first: "
                             f"{first}", counts)


class _LongLivedThread:
    """One daemon thread for the life of the process that runs submitted calls, in order.

    LoadGen keeps a thread-local logger for every thread that calls into it (StartTest, QuerySamplesComplete);
    with a new thread per test, its IO thread crashed in ``TlsLogger::SwapBuffers`` after a few tests in one
    process (calibration probes run many). So every LoadGen call mlrepro makes from its own threads comes from
    the same two threads, whatever the number of tests. A call that never returns (an abandoned, detached test)
    blocks the ones queued behind it: the process exits after a detached test anyway."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, call: Callable[[], None]) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
        self._calls.put(call)

    def _loop(self) -> None:
        while True:
            call = self._calls.get()
            try:
                call()
            except BaseException:  # noqa: BLE001 - each call reports its own failure; the thread must live on
                pass


_LOADGEN_THREAD = _LongLivedThread("mlrepro-loadgen")
_WORKER_THREAD = _LongLivedThread("mlrepro-sut-worker")


# --------------------------------------------------------------------------------------------- SUTs

class _InlineDispatcher:
    """SingleStream / MultiStream / cheap Server: predict in the issue thread and complete each batch at once."""

    name = "inline"

    def __init__(self, responder: _Responder, batch_size: int) -> None:
        self._respond = responder
        self._batch = batch_size

    def issue(self, ids: list[int], indices: list[int]) -> None:
        n = len(ids)
        b = self._batch
        if n <= b:
            self._respond(ids, indices)
            return
        for start in range(0, n, b):
            self._respond(ids[start:start + b], indices[start:start + b])

    def flush(self) -> None:
        pass

    def stop(self) -> None:
        pass


class _OfflineDispatcher(_InlineDispatcher):
    """Offline: predict batch by batch in the issue thread; completions are coalesced into calls of about
    ``COALESCE_SAMPLES`` samples (never held longer than ``COALESCE_MAX_S``): Offline measures the whole query,
    and fewer, larger ``QuerySamplesComplete`` calls cost LoadGen and Python less per sample."""

    def issue(self, ids: list[int], indices: list[int]) -> None:
        r = self._respond
        b = self._batch
        stage, clock = r.stage, time.perf_counter
        held_since = clock()
        for start in range(0, len(ids), b):
            stage(ids[start:start + b], indices[start:start + b])
            if r.pending >= COALESCE_SAMPLES or clock() - held_since >= COALESCE_MAX_S:
                r.flush()
                held_since = clock()
        r.flush()


class _WorkerDispatcher:
    """Server with a costly model: the issue callback queues, a worker thread predicts in dynamic batches."""

    name = "worker"

    def __init__(self, responder: _Responder, batch_size: int) -> None:
        self._respond = responder
        self._batch = batch_size
        self._ids: collections.deque[int] = collections.deque()
        self._idx: collections.deque[int] = collections.deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._stopped = threading.Event()
        _WORKER_THREAD.submit(self._run)

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            self._stopped.set()

    def issue(self, ids: list[int], indices: list[int]) -> None:
        with self._cond:
            self._ids.extend(ids)
            self._idx.extend(indices)
            self._cond.notify()

    def _loop(self) -> None:
        cond, qids, qidx, b = self._cond, self._ids, self._idx, self._batch
        while True:
            with cond:
                while not qids and not self._stopping:
                    cond.wait()
                if not qids:
                    return
                k = min(b, len(qids))
                ids = [qids.popleft() for _ in range(k)]
                idx = [qidx.popleft() for _ in range(k)]
            self._respond(ids, idx)

    def flush(self) -> None:
        pass

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._stopped.wait()


class _TokenResponder:
    """Reports a TokenWorkload's outputs to LoadGen as the reference SUTs do (language/llama3.1-8b/SUT_VLLM.py):
    ``FirstTokenComplete([QuerySampleResponse(id, ptr, size)])`` at a sample's first token and
    ``QuerySamplesComplete([QuerySampleResponse(id, ptr, size, n_tokens)])`` at its end (the 4-argument
    constructor of the Python binding, loadgen/bindings/python_api.cc). Payload: the token ids, int64
    little-endian. LoadGen copies what it logs inside each call (loadgen.cc ``SampleComplete``/``TokenComplete``),
    so the array only has to live until the call returns. From these LoadGen computes TTFT (first-token
    latency) and TPOT = (latency - TTFT) / (n_tokens - 1) (logging.cc ``RecordSampleCompletion``)."""

    def __init__(self, lg: ModuleType) -> None:
        self._qsr = lg.QuerySampleResponse
        self._first = lg.FirstTokenComplete
        self._complete = lg.QuerySamplesComplete
        self.completed = 0           # samples completed (progress lines, stall watchdog)
        self.first_tokens = 0        # FirstTokenComplete calls

    def first(self, qid: int, tokens: np.ndarray) -> None:
        arr = np.ascontiguousarray(tokens, dtype="<i8")
        self._first([self._qsr(qid, arr.ctypes.data, arr.nbytes)])
        self.first_tokens += 1

    def done(self, qid: int, tokens: np.ndarray, n_tokens: int | None = None) -> None:
        """``n_tokens``: the output's token count when it is not the number of ids (a model server's own count;
        the ids are then its text tokenized once)."""
        arr = np.ascontiguousarray(tokens, dtype="<i8")
        n = int(arr.shape[0]) if n_tokens is None else int(n_tokens)
        self._complete([self._qsr(qid, arr.ctypes.data, arr.nbytes, n)])
        self.completed += 1

    def empty(self, ids: Sequence[int]) -> None:
        """Complete samples without output after a failure, so that LoadGen can end the test (it logs errors for
        the missing token counts: the run has failed anyway)."""
        qsr = self._qsr
        self._complete([qsr(i, 0, 0) for i in ids])
        self.completed += len(ids)


class _TokenDispatcher:
    """The LLM path: a TokenWorkload generates, :class:`_TokenResponder` reports.

    Offline (``streaming`` False): in LoadGen's issue thread, batch by batch (``batch_size`` samples per
    generate(), the spec's batch size: never one sample at a time), each sample completed as soon as its row ends.
    SingleStream (``inline``): streamed, in LoadGen's issue thread (one query at a time: nothing to queue).
    Server / Interactive: the issue callback queues; the worker thread takes every queued sample
    (at most ``batch_size``) into one streamed generate(): first tokens are reported as they appear, rows as they
    end. Samples arriving meanwhile wait for the next batch (their TTFT includes the wait, as LoadGen measures
    from the scheduled time)."""

    name = "token"

    def __init__(self, workload: TokenWorkload, responder: _TokenResponder, batch_size: int, state: _RunState,
                 streaming: bool, inline: bool = False) -> None:
        self._w = workload
        self._r = responder
        self._batch = batch_size
        self._state = state
        self._streaming = streaming
        self._inline = inline or not streaming
        self._queue: collections.deque[tuple[int, int]] = collections.deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._stopped = threading.Event()
        if not self._inline:
            _WORKER_THREAD.submit(self._run)
        else:
            self._stopped.set()

    def _generate(self, ids: Sequence[int], indices: Sequence[int]) -> None:
        if self._state.failed:
            self._r.empty(ids)
            return
        done = [False] * len(ids)

        def on_done(row: int, tokens: np.ndarray, n_tokens: int | None = None) -> None:
            done[row] = True
            self._r.done(ids[row], tokens, n_tokens)

        on_first = (lambda row, tokens: self._r.first(ids[row], tokens)) if self._streaming else None
        try:
            self._w.generate(indices, on_first, on_done)
            if not all(done):
                raise WorkloadError(f"generate() ended without an output for {done.count(False)} of {len(ids)} "
                                    "samples")
        except BaseException as exc:  # noqa: BLE001 - must not propagate into LoadGen
            self._state.fail(exc)
            self._r.empty([i for i, d in zip(ids, done) if not d])

    def _submit(self, ids: list[int], indices: list[int]) -> None:
        """A concurrent workload (vLLM's async engine, a model server): hand each sample over as it is issued. A
        query the workload fails on its own (``on_failed``) is completed without output and counted."""
        if self._state.failed:
            self._r.empty(ids)
            return

        def failed(row: int, kind: str, reason: str) -> None:
            self._state.query_failed(kind, reason)
            self._r.empty([ids[row]])

        on_first = (lambda row, t: self._r.first(ids[row], t)) if self._streaming else None
        try:
            self._w.submit(indices, on_first, lambda row, t, n=None: self._r.done(ids[row], t, n), self._fail,
                           failed)
        except BaseException as exc:  # noqa: BLE001 - must not propagate into LoadGen
            self._fail(exc)
            self._r.empty(ids)

    def _fail(self, exc: BaseException) -> None:
        self._state.fail(exc)

    def issue(self, ids: list[int], indices: list[int]) -> None:
        if self._w.concurrent and (self._streaming or self._w.concurrent_offline):
            self._submit(ids, indices)
            return
        if self._inline:
            b = self._batch
            for start in range(0, len(ids), b):
                self._generate(ids[start:start + b], indices[start:start + b])
            return
        with self._cond:
            self._queue.extend(zip(ids, indices))
            self._cond.notify()

    def _run(self) -> None:
        try:
            q, cond, b = self._queue, self._cond, self._batch
            while True:
                with cond:
                    while not q and not self._stopping:
                        cond.wait()
                    if not q:
                        return
                    batch = [q.popleft() for _ in range(min(b, len(q)))]
                self._generate([i for i, _ in batch], [x for _, x in batch])
        finally:
            self._stopped.set()

    def flush(self) -> None:
        pass

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._stopped.wait()


def choose_server_dispatch(per_query_s: float | None) -> str:
    forced = os.environ.get(DISPATCH_ENV, "").strip().lower()
    if forced in ("inline", "worker"):
        return forced
    if per_query_s is None:
        return "worker"
    return "inline" if per_query_s < INLINE_THRESHOLD_S else "worker"


@contextmanager
def gc_paused() -> Iterator[None]:
    """No garbage collection during the timed run (its pauses make Server runs fail latency bounds)."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.unfreeze()
        if was_enabled:
            gc.enable()


# --------------------------------------------------------------------------------------------- one sub-run

@dataclass(frozen=True)
class LoadgenRunInfo:
    kind: str                       # performance | accuracy
    outdir: Path
    dispatch: str                   # inline | worker
    warmup_predict_s: float | None  # fastest single-sample predict during warm-up
    duration_s: float
    cpu_s: float | None             # process CPU seconds (all threads) during StartTest
    audit_config: str | None        # path handed to LoadGen when it existed
    failure: BaseException | None   # first workload failure inside a callback (or QueriesFailed)
    detached: bool = False          # LoadGen still running (interrupted/abandoned); process must exit
    query_failures: dict[str, int] = field(default_factory=dict)   # queries the SUT failed, by kind


class _Heartbeat:
    """Progress lines while a LoadGen test goes: elapsed time against what it should take, samples completed
    (every tenth of the expected duration, 5-60 s apart; nothing for tests shorter than 5 s)."""

    def __init__(self, session: LoadgenSession) -> None:
        s = session.settings
        self.session = session
        self.min_s = float(getattr(s, "min_duration_ms", 0)) / 1000
        self.total: int | None = None
        if session.scenario == "Offline" and session.kind == "performance":
            qps, n = float(getattr(s, "offline_expected_qps", 0)), int(getattr(s, "min_query_count", 0))
            self.total = max(n, int(1.1 * self.min_s * qps))
        elif session.kind == "accuracy":
            self.total = session.workload.dataset_size
        self.every = min(60.0, max(5.0, self.min_s / 10))
        self.next = self.every

    def tick(self, elapsed: float) -> None:
        if elapsed < self.next:
            return
        self.next += self.every
        r = self.session._responder
        done = r.completed if r is not None else 0
        what = f"{done:,} of ~{self.total:,} samples" if self.total else f"{done:,} samples completed"
        goal = f" (min duration {self.min_s:g} s)" if self.session.kind == "performance" else ""
        self.session.progress(f"mlrepro-harness: {self.session.scenario} {self.session.kind}: running "  # type: ignore[misc]
                              f"{elapsed:.0f} s{goal}, {what}")


class LoadgenStalled(WorkloadError):
    """LoadGen did not end its test although the SUT had completed every sample it was issued."""


class _StallWatchdog:
    """Turns a LoadGen test that never ends into an error the run reports.

    LoadGen ends a test once it has recorded the latency of every sample it issued (its IO thread records the
    completions ``QuerySamplesComplete`` logged). Rarely (seen once in some thousands of in-process tests, under
    load), that count never arrives and ``StartTest`` waits forever in ``GetLatenciesBlocking``. When the SUT has
    completed every sample LoadGen issued and neither count nor LoadGen moves for ``STALL_S`` seconds (or 20
    mean Server arrival gaps, whichever is longer), the test is declared stalled: the run fails with the counts,
    instead of hanging until a timeout kills it without a word."""

    STALL_S = 120.0

    def __init__(self, session: LoadgenSession) -> None:
        self.session = session
        qps = float(getattr(session.settings, "server_target_qps", 0) or 0) if is_server_like(session.scenario) else 0
        self.limit_s = max(self.STALL_S, 20 / qps) if qps > 0 else self.STALL_S
        self._seen: tuple[int, int] = (-1, -1)
        self._since = 0.0

    def stalled(self, now: float) -> bool:
        r = self.session._responder
        counts = (self.session.issued, r.completed if r is not None else 0)
        if counts != self._seen or counts[0] == 0 or counts[1] < counts[0]:
            self._seen, self._since = counts, now
            return False
        return now - self._since >= self.limit_s

    def error(self) -> LoadgenStalled:
        issued, completed = self._seen
        return LoadgenStalled(f"LoadGen did not end the {self.session.scenario} {self.session.kind} test "
                              f"{self.limit_s:.0f} s after the SUT completed all {completed:,} of the {issued:,} "
                              "samples it was issued (a LoadGen stall; its logs in this folder are incomplete): "
                              "run it again")


class LoadgenSession:
    """One LoadGen test (a sub-run) in its own thread. ``run()`` blocks; signals reach the main thread."""

    def __init__(self, lg: ModuleType, workload: Workload, settings: Any, scenario: str, kind: str,
                 outdir: Path, audit_config: Path, enable_trace: bool, fail_fast: bool = False,
                 progress: Callable[[str], None] | None = None) -> None:
        self.lg = lg
        self.progress = progress
        self.workload = workload
        self.settings = settings
        self.scenario = scenario
        self.kind = kind
        self.outdir = outdir
        self.audit_config = audit_config
        self.enable_trace = enable_trace
        self.fail_fast = fail_fast
        self.state = _RunState()
        self.dispatch = "inline"
        self.warmup_s: float | None = None
        self.cpu_s: float | None = None
        self._warmed = False
        self._done = threading.Event()
        self._thread_error: BaseException | None = None
        self._dispatcher: _InlineDispatcher | _WorkerDispatcher | _TokenDispatcher | None = None
        self._responder: _Responder | None = None
        self._one: Callable[[list[int], list[int]], None] | None = None
        self.issued = 0              # samples LoadGen has issued to the SUT (the stall watchdog compares)

    # QSL callbacks
    def _load(self, indices: list[int]) -> None:
        try:
            self.workload.load_samples(indices)
            if not self._warmed and indices:
                self._warmed = True
                self._warmup(indices)
        except BaseException as exc:  # noqa: BLE001
            self.state.fail(exc)

    def _unload(self, indices: list[int]) -> None:
        try:
            self.workload.unload_samples(indices)
        except BaseException as exc:  # noqa: BLE001
            self.state.fail(exc)

    def _warmup(self, indices: list[int]) -> None:
        """A few untimed predictions before the test starts (first-call costs); measures one sample's cost.
        A TokenWorkload warms up its own way (one short generation): five full generations would cost minutes."""
        if isinstance(self.workload, TokenWorkload):
            t0 = time.perf_counter()
            self.workload.warmup(indices)
            self.warmup_s = time.perf_counter() - t0
            return
        predict = self.workload.predict
        best = float("inf")
        for _ in range(WARMUP_CALLS):
            t0 = time.perf_counter()
            predict([indices[0]])
            best = min(best, time.perf_counter() - t0)
        batch = list(indices[: self.workload.spec.batch_size])
        if len(batch) > 1:
            predict(batch)
        self.warmup_s = best

    # SUT callbacks: route to the dispatcher chosen after warm-up
    def _issue(self, ids: list[int], indices: list[int]) -> None:
        self.issued += len(ids)
        one = self._one
        if one is not None and len(ids) == 1:
            one(ids, indices)        # inline SingleStream / Server: no dispatcher frame per query
            return
        d = self._dispatcher
        if d is None:
            d = self._dispatcher = self._make_dispatcher()
        d.issue(ids, indices)

    def _flush(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.flush()

    def _make_dispatcher(self) -> _InlineDispatcher | _WorkerDispatcher | _TokenDispatcher:
        batch = self.workload.spec.batch_size
        if isinstance(self.workload, TokenWorkload):
            token_responder = _TokenResponder(self.lg)
            self._responder = token_responder    # type: ignore[assignment] - same .completed counter
            self.dispatch = "token-batch" if self.scenario == "Offline" else "token-stream"
            # SingleStream issues the next query only after this one: generate in LoadGen's issue thread (a hand-off
            # to the worker cost ~7 ms of TTFT on a busy 2-core machine); Server / Interactive queue for the worker
            return _TokenDispatcher(self.workload, token_responder, batch, self.state,
                                    streaming=self.scenario != "Offline",
                                    inline=self.scenario in ("SingleStream", "MultiStream"))
        responder = self._responder = _Responder(self.lg, self.workload.predict, self.state)
        if is_server_like(self.scenario) and choose_server_dispatch(self.warmup_s) == "worker":
            self.dispatch = "worker"
            return _WorkerDispatcher(responder, batch)
        self.dispatch = "inline"
        if self.scenario == "Offline":
            return _OfflineDispatcher(responder, batch)
        self._one = responder.one
        return _InlineDispatcher(responder, batch)

    def _thread_main(self) -> None:
        lg = self.lg
        try:
            sut = lg.ConstructFastSUT(self._issue, self._flush)
            qsl = lg.ConstructQSL(self.workload.dataset_size,
                                  min(self.workload.performance_sample_count, self.workload.dataset_size),
                                  self._load, self._unload)
            try:
                with gc_paused():
                    cpu0 = time.process_time()
                    lg.StartTestWithLogSettings(sut, qsl, self.settings,
                                                log_settings(lg, self.outdir, self.enable_trace),
                                                str(self.audit_config))
                    self.cpu_s = time.process_time() - cpu0
            finally:
                if self._dispatcher is not None:
                    self._dispatcher.stop()
                lg.DestroyQSL(qsl)
                lg.DestroyFastSUT(sut)
            if not self.enable_trace:
                trace = self.outdir / "mlperf_log_trace.json"
                if trace.is_file() and trace.stat().st_size == 0:
                    trace.unlink()  # LoadGen creates it empty even with tracing off
        except BaseException as exc:  # noqa: BLE001
            self._thread_error = exc
        finally:
            self._done.set()

    def run(self) -> LoadgenRunInfo:
        self.outdir.mkdir(parents=True, exist_ok=True)
        audit = str(self.audit_config) if self.audit_config.is_file() else None
        t0 = time.monotonic()
        _LOADGEN_THREAD.submit(self._thread_main)
        # A KeyboardInterrupt (SIGINT/SIGTERM handler) raised here leaves LoadGen running: the caller exits.
        detached = True
        heartbeat = _Heartbeat(self) if self.progress is not None else None
        watchdog = _StallWatchdog(self)
        while not self._done.wait(0.25):
            if self.fail_fast and self.state.failed:
                break
            if watchdog.stalled(time.monotonic()):
                self.state.fail(watchdog.error())
                break
            if heartbeat is not None:
                heartbeat.tick(time.monotonic() - t0)
        else:
            detached = False
        if self._thread_error is not None:
            raise WorkloadError(f"LoadGen failed: {type(self._thread_error).__name__}: {self._thread_error}")
        queries = self.state.queries_failed(self.issued)
        return LoadgenRunInfo(kind=self.kind, outdir=self.outdir, dispatch=self.dispatch,
                              warmup_predict_s=self.warmup_s, duration_s=time.monotonic() - t0, cpu_s=self.cpu_s,
                              audit_config=audit, failure=self.state.failure or queries, detached=detached,
                              query_failures=queries.counts if queries is not None else {})
