"""Following Jobs and pods with the Watch API: one connection per resource kind, however many runs.

:class:`KindWatcher` lists the objects matching a label selector, then watches from the list's
resourceVersion; when the server closes the stream (it may, at any time, and does after ``timeoutSeconds``)
it resumes from the last resourceVersion it saw (bookmarks keep it fresh); on ``410 Gone`` (that version
was compacted away) it lists again and reports the current objects, and every object it knew that the list no
longer has as DELETED (a Job deleted in the gap would otherwise never be seen to go), so nothing between is
missed. A stream that ends without a single event (a proxy closing it at once, an overloaded server) is opened
again after a delay that doubles each time (0.5 s up to 30 s), not in a hot loop. No sleep-polling: a thread
blocks on the stream.

:class:`Monitor` owns one watcher for Jobs and one for pods (label ``app.kubernetes.io/name=mlrepro``)
and hands each event to the run it belongs to (label ``mlrepro.io/run-id``) through a queue: a sweep of
1,000 Jobs holds two watch connections and keeps state only for runs being waited for.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlrepro.runners.kubernetes.errors import KubernetesError

if TYPE_CHECKING:  # pragma: no cover
    from mlrepro.runners.kubernetes.api import Cluster, WatchStream

RUN_ID_LABEL = "mlrepro.io/run-id"
COLLECT_FOR_LABEL = "mlrepro.io/collect-for"   # helper pods: routed to the key "collect:<run id>"
SERVER_FOR_LABEL = "mlrepro.io/server-for"     # a model server's pods: routed to the key "server:<run id>"
MANAGED_SELECTOR = "app.kubernetes.io/name=mlrepro"   # kept by Helm (which rewrites managed-by on what it installs)
WATCH_TIMEOUT_S = 300            # server-side timeoutSeconds of one watch request; then resumed
MAX_RETRY_DELAY_S = 30.0
EMPTY_STREAM_DELAY_S = 0.5       # first delay after a stream that ended with no event; doubles up to MAX_RETRY_DELAY_S
GIVE_UP_AFTER = 8                # consecutive failed (re)connections before the runs waiting are told


@dataclass(frozen=True)
class Event:
    """What a run's waiter receives. ``type``: ADDED | MODIFIED | DELETED | SYNC (the state after a relist)
    | ERROR (the watch cannot continue: ``error`` says why). A DELETED found by a relist (the object went while
    no watch was open) carries the object's last known metadata only."""

    kind: str
    type: str
    obj: dict[str, Any]
    error: str = ""


class KindWatcher:
    """List + watch of one kind, resumed and relisted as needed, on its own daemon thread."""

    def __init__(self, cluster: Cluster, kind: str, selector: str, deliver: Callable[[Event], None],
                 timeout_s: int = WATCH_TIMEOUT_S, wake: threading.Event | None = None) -> None:
        self.cluster, self.kind, self.selector, self.deliver = cluster, kind, selector, deliver
        self.timeout_s = timeout_s
        self.resource_version = ""
        self.connections = 0             # watch requests opened (resumes included)
        self.relists = 0
        self.empty_streams = 0           # consecutive streams that ended with no event
        self._known: dict[tuple[str, str], dict[str, Any]] = {}   # (namespace, name) -> last metadata seen
        self._stop = threading.Event()
        self._wake = wake or threading.Event()
        self._stream: WatchStream | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch-{kind}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wait_ready(self, timeout_s: float = 30) -> bool:
        """True once the first list was delivered (objects that existed before the watch are known)."""
        return self._ready.wait(timeout_s)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        stream = self._stream
        if stream is not None:
            stream.close()

    def _relist(self) -> None:
        items, rv = self.cluster.list(self.kind, self.selector)
        self.relists += 1
        listed = {_key(obj) for obj in items}
        for key in [k for k in self._known if k not in listed]:     # gone while nobody watched
            self._emit(Event(self.kind, "DELETED", {"metadata": self._known[key]}))
        for obj in items:
            self._emit(Event(self.kind, "SYNC", obj))
        self.resource_version = rv
        self._ready.set()

    def _emit(self, event: Event) -> None:
        """Deliver ``event`` and remember (or forget) the object, for the next relist."""
        meta = event.obj.get("metadata") or {}
        if event.type == "DELETED":
            self._known.pop(_key(event.obj), None)
        elif meta.get("name"):
            self._known[_key(event.obj)] = {k: meta[k] for k in ("name", "namespace", "uid", "labels",
                                                                 "resourceVersion") if k in meta}
        self.deliver(event)

    def _run(self) -> None:
        failures = 0
        need_list = True
        while not self._stop.is_set():
            try:
                if need_list:
                    self._relist()
                    need_list = False
                self._stream = self.cluster.watch(self.kind, self.selector, self.resource_version, self.timeout_s)
                self.connections += 1
                events = 0
                for event in self._stream:
                    failures, events = 0, events + 1
                    obj = event.get("object") or {}
                    rv = (obj.get("metadata") or {}).get("resourceVersion")
                    if rv:
                        self.resource_version = str(rv)
                    if event.get("type") != "BOOKMARK":
                        self._emit(Event(self.kind, str(event.get("type")), obj))
                # the server ended the stream (timeoutSeconds, restart, load balancer): resume from the last RV,
                # at once after a stream that said something, after a growing delay after one that said nothing
                self.empty_streams = 0 if events else self.empty_streams + 1
                if self.empty_streams and not self._stop.is_set():
                    self._wake.wait(min(MAX_RETRY_DELAY_S, EMPTY_STREAM_DELAY_S * 2 ** (self.empty_streams - 1)))
                    self._wake.clear()
            except KubernetesError as exc:
                if self._stop.is_set():
                    return
                if exc.status == 410:           # Gone: that resourceVersion is too old to resume from
                    need_list = True
                    continue
                failures += 1
                if failures >= GIVE_UP_AFTER:
                    self.deliver(Event(self.kind, "ERROR", {}, str(exc)))
                    failures = 0
                # back off before reconnecting; stop() wakes the wait early
                self._wake.wait(min(MAX_RETRY_DELAY_S, 0.5 * 2 ** min(failures, 6)))
                self._wake.clear()
            finally:
                self._stream = None


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


class Monitor:
    """The Job and pod watchers of one namespace, and the queues of the runs being waited for."""

    KINDS = ("Job", "Pod")

    def __init__(self, cluster: Cluster, selector: str = MANAGED_SELECTOR) -> None:
        self.cluster = cluster
        self.selector = selector
        self._queues: dict[str, list[queue.SimpleQueue[Event]]] = {}
        self._lock = threading.Lock()
        self._watchers: dict[str, KindWatcher] = {}

    def subscribe(self, key: str) -> queue.SimpleQueue[Event]:
        """A new queue receiving the events of ``key`` (a run id, ``collect:<run id>`` for its helper pod,
        ``server:<run id>`` for its model server's pods)
        until :meth:`unsubscribe`; starts the watchers on first use."""
        q: queue.SimpleQueue[Event] = queue.SimpleQueue()
        with self._lock:
            self._queues.setdefault(key, []).append(q)
            if not self._watchers:
                for kind in self.KINDS:
                    self._watchers[kind] = KindWatcher(self.cluster, kind, self.selector, self._deliver)
                    self._watchers[kind].start()
        return q

    def unsubscribe(self, key: str, q: queue.SimpleQueue[Event]) -> None:
        with self._lock:
            queues = self._queues.get(key, [])
            if q in queues:
                queues.remove(q)
            if not queues:
                self._queues.pop(key, None)

    def _deliver(self, event: Event) -> None:
        if event.type == "ERROR":
            with self._lock:
                targets = [q for queues in self._queues.values() for q in queues]
            for q in targets:
                q.put(event)
            return
        labels = (event.obj.get("metadata") or {}).get("labels") or {}
        key = labels.get(RUN_ID_LABEL) or (f"collect:{labels[COLLECT_FOR_LABEL]}" if COLLECT_FOR_LABEL in labels
                                           else f"server:{labels[SERVER_FOR_LABEL]}" if SERVER_FOR_LABEL in labels
                                           else None)
        with self._lock:
            targets = list(self._queues.get(key, ())) if key else []
        for q in targets:
            q.put(event)

    @property
    def watchers(self) -> dict[str, KindWatcher]:
        return dict(self._watchers)

    def close(self) -> None:
        with self._lock:
            watchers = list(self._watchers.values())
            self._watchers.clear()
        for w in watchers:
            w.stop()
