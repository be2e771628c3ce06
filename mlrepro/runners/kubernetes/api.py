"""The API calls the Kubernetes runner makes, through the official client, as plain JSON.

Every call the runner makes is here (so manifests/rbac.yaml can be checked against this list, which
:data:`API_CALLS` states). Objects travel as dicts (``_preload_content=False``): the runner reads a few fields,
and skipping the client's model classes keeps a 1,000-Job sweep cheap. Failures become KubernetesError with
one line naming the call, the object and the API server's message.

    apply(obj)                      server-side apply (fieldManager mlrepro, force): idempotent create/update
    get(kind, name) / list(kind, selector) / watch(kind, selector, rv, timeout) / events_of(kind, name, uid)
    delete(kind, name, propagation) create_pod(obj) pod_log(name, follow, previous, tail_lines) exec_stream(pod, command)

A refused request says who refused it (RBAC, a ResourceQuota, a LimitRange, Pod Security admission, a webhook:
admission.py reads the Status the server returns), so a 403 is not blamed on the Role unless RBAC said it.
"""

from __future__ import annotations

import calendar
import json
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlrepro.image.errors import one_line
from mlrepro.runners.kubernetes.admission import Refusal, status_refusal
from mlrepro.runners.kubernetes.config import FIELD_MANAGER, ClusterConnection
from mlrepro.runners.kubernetes.errors import KubernetesError

if TYPE_CHECKING:  # pragma: no cover
    from kubernetes.stream.ws_client import WSClient

REQUEST_TIMEOUT = (10, 60)        # connect, read (seconds) of ordinary requests
LOG_READ_TIMEOUT_S = 60.0
"""A followed log that sends nothing this long is re-opened (runner.logs): a connection a proxy or NAT dropped
without a word would otherwise block forever, and a quiet benchmark costs one reconnection a minute."""
APPLY_PATCH = "application/apply-patch+yaml"


@dataclass(frozen=True)
class Kind:
    api: str           # "core" | "batch" | "resource"
    plural: str        # "configmaps"
    method: str        # the client's method stem: "config_map"


KINDS: dict[str, Kind] = {
    "ConfigMap": Kind("core", "configmaps", "config_map"),
    "PersistentVolumeClaim": Kind("core", "persistentvolumeclaims", "persistent_volume_claim"),
    "Pod": Kind("core", "pods", "pod"),
    "Event": Kind("core", "events", "event"),
    "Job": Kind("batch", "jobs", "job"),
    "ResourceClaimTemplate": Kind("resource", "resourceclaimtemplates", "resource_claim_template"),
    "Deployment": Kind("apps", "deployments", "deployment"),
    "Service": Kind("core", "services", "service"),
}

# (API group, resource, verb) of every request the runner makes; the Role in manifests/rbac.yaml and the
# chart must allow each (tests/k8s/test_rbac.py checks the requests a full run makes against both).
API_CALLS: tuple[tuple[str, str, str], ...] = (
    ("", "configmaps", "create"), ("", "configmaps", "patch"), ("", "configmaps", "delete"),
    ("", "persistentvolumeclaims", "create"), ("", "persistentvolumeclaims", "patch"),
    ("", "persistentvolumeclaims", "delete"),
    ("batch", "jobs", "create"), ("batch", "jobs", "patch"), ("batch", "jobs", "get"), ("batch", "jobs", "list"),
    ("batch", "jobs", "watch"), ("batch", "jobs", "delete"),
    ("", "pods", "get"), ("", "pods", "list"), ("", "pods", "watch"), ("", "pods", "create"), ("", "pods", "delete"),
    ("", "pods/log", "get"), ("", "pods/exec", "create"), ("", "pods/exec", "get"),
    ("", "events", "list"),
    ("resource.k8s.io", "resourceclaimtemplates", "create"), ("resource.k8s.io", "resourceclaimtemplates", "patch"),
    ("resource.k8s.io", "resourceclaimtemplates", "delete"),
    # a model server (serve.engine): its Deployment and Service, applied and deleted; its pod is followed with the
    # pods above (a watch routed by the label mlrepro.io/server-for), its log read with pods/log
    ("apps", "deployments", "create"), ("apps", "deployments", "patch"), ("apps", "deployments", "delete"),
    ("", "services", "create"), ("", "services", "patch"), ("", "services", "delete"),
)


class AdmissionRefused(KubernetesError):
    """The API server refused a request and said who (``refusal``): RBAC, a ResourceQuota, a LimitRange, Pod
    Security admission, a webhook (exit 1)."""

    def __init__(self, message: str, status: int | None, refusal: Refusal) -> None:
        super().__init__(message, status)
        self.refusal = refusal


class LogReadTimeout(KubernetesError):
    """A followed log sent nothing for LOG_READ_TIMEOUT_S seconds (the connection may be gone silently)."""


class Cluster:
    """One namespace of one cluster, through one ApiClient (thread-safe: urllib3 pools connections)."""

    def __init__(self, connection: ClusterConnection) -> None:
        from kubernetes import client

        self.connection = connection
        self.namespace = connection.namespace
        self._apis = {"core": client.CoreV1Api(connection.api_client),
                      "batch": client.BatchV1Api(connection.api_client),
                      "apps": client.AppsV1Api(connection.api_client),
                      "resource": client.ResourceV1Api(connection.api_client)}
        self._version = client.VersionApi(connection.api_client)

    # ---- plumbing ------------------------------------------------------------------------------------
    def _call(self, what: str, fn: Any, *args: Any, timeout: bool = True, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        if timeout:
            kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
        try:
            return fn(*args, **kwargs)
        except ApiException as exc:
            raise _api_error(what, exc) from None
        except (HTTPError, OSError) as exc:
            raise KubernetesError(f"{what}: cannot reach the API server {self.connection.host}: "
                                  f"{one_line(str(exc))}") from None

    def _json(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        resp = self._call(what, fn, *args, _preload_content=False, **kwargs)
        try:
            return json.loads(resp.data or b"{}")
        finally:
            resp.release_conn()

    def _method(self, verb: str, kind: str) -> Any:
        k = KINDS[kind]
        return getattr(self._apis[k.api], f"{verb}_namespaced_{k.method}")

    # ---- objects -------------------------------------------------------------------------------------
    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply of ``obj`` in this namespace (created if missing, else updated to match)."""
        kind, name = obj["kind"], obj["metadata"]["name"]
        return self._json(f"apply {kind} {name}", self._method("patch", kind), name, self.namespace, obj,
                          field_manager=FIELD_MANAGER, force=True, _content_type=APPLY_PATCH)

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return self._json(f"get {kind} {name}", self._method("read", kind), name, self.namespace)
        except KubernetesError as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, kind: str, label_selector: str = "", field_selector: str = "") -> tuple[list[dict[str, Any]], str]:
        """(items, the list's resourceVersion)."""
        doc = self._json(f"list {KINDS[kind].plural}", self._method("list", kind), self.namespace,
                         label_selector=label_selector or None, field_selector=field_selector or None)
        return list(doc.get("items") or []), str((doc.get("metadata") or {}).get("resourceVersion") or "")

    def events_of(self, kind: str, name: str, uid: str = "") -> list[dict[str, Any]]:
        """The core/v1 events about one object (as ``kubectl describe`` selects them: involvedObject kind, name
        and, when known, uid: an earlier object of the same name is left out)."""
        fields = f"involvedObject.kind={kind},involvedObject.name={name}" + (f",involvedObject.uid={uid}" if uid else "")
        items, _ = self.list("Event", field_selector=fields)
        return items

    def watch(self, kind: str, label_selector: str, resource_version: str, timeout_s: int) -> WatchStream:
        """Open a watch from ``resource_version``; iterate the returned stream for event dicts. Raises
        KubernetesError (status 410 when the version is too old: list again)."""
        resp = self._call(f"watch {KINDS[kind].plural}", self._method("list", kind), self.namespace,
                          label_selector=label_selector or None, resource_version=resource_version or None,
                          allow_watch_bookmarks=True, timeout_seconds=timeout_s, watch=True,
                          _preload_content=False, _request_timeout=(REQUEST_TIMEOUT[0], timeout_s + 30))
        return WatchStream(resp, f"watch {KINDS[kind].plural}")

    def delete(self, kind: str, name: str, propagation: str = "Background") -> bool:
        """Delete; False when it did not exist. ``propagation`` Background: its pods go too (a Job's default
        would orphan them)."""
        try:
            self._json(f"delete {kind} {name}", self._method("delete", kind), name, self.namespace,
                       propagation_policy=propagation)
        except KubernetesError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def create_pod(self, obj: dict[str, Any]) -> dict[str, Any]:
        return self._json(f"create Pod {obj['metadata']['name']}", self._apis["core"].create_namespaced_pod,
                          self.namespace, obj)

    def pod_log(self, name: str, follow: bool = False, container: str | None = None, *,
                timestamps: bool = False, previous: bool = False, tail_lines: int | None = None) -> Iterator[str]:
        """The pod's log lines, the last one too when it has no newline; with ``follow`` the stream stays open
        until the container ends. ``timestamps``: each line starts with the kubelet's RFC 3339 time and a space.
        A followed log that sends nothing for LOG_READ_TIMEOUT_S raises LogReadTimeout (the caller decides
        whether to open it again). ``previous``: the last terminated container's log (a restarted server's);
        ``tail_lines``: only the last lines."""
        from urllib3.exceptions import ProtocolError, ReadTimeoutError

        what = f"log of Pod {name}"
        timeout = (REQUEST_TIMEOUT[0], LOG_READ_TIMEOUT_S) if follow else REQUEST_TIMEOUT
        resp = self._call(what, self._apis["core"].read_namespaced_pod_log, name, self.namespace,
                          container=container, follow=follow, timestamps=timestamps or None,
                          previous=previous or None, tail_lines=tail_lines,
                          _preload_content=False, _request_timeout=timeout)
        try:
            yield from lines_of(resp.stream(amt=None, decode_content=False))
        except (ReadTimeoutError, TimeoutError) as exc:
            raise LogReadTimeout(f"{what}: nothing for {LOG_READ_TIMEOUT_S:.0f} s ({one_line(str(exc))})") from None
        except ProtocolError as exc:           # urllib3: reset or cut short (its read timeout is the above)
            raise KubernetesError(f"{what}: the stream broke: {one_line(str(exc))}") from None
        finally:
            resp.close()
            resp.release_conn()

    def exec_stream(self, pod: str, command: list[str], container: str | None = None) -> WSClient:
        """Run ``command`` in the pod (the ``pods/exec`` subresource over WebSocket); a binary WSClient that keeps
        no copy of what it receives (``capture_all=False``). Read it with execstream.ExecStream.

        On an ApiClient of its own: the client's ``stream()`` swaps the request function of the ApiClient it is
        given while it connects, which would send other threads' requests over WebSocket too."""
        from kubernetes import client

        own = client.CoreV1Api(client.ApiClient(self.connection.api_client.configuration))

        def call() -> WSClient:
            return _stream_without_capture()(own.connect_get_namespaced_pod_exec, pod, self.namespace,
                                             command=command, container=container, stderr=True, stdin=False,
                                             stdout=True, tty=False, _preload_content=False, binary=True)

        return self._call(f"exec in Pod {pod}", call, timeout=False)

    def server_version(self) -> str:
        """``gitVersion`` of the API server, e.g. ``v1.34.1``."""
        doc = self._json("get /version", self._version.get_code)
        return str(doc.get("gitVersion") or f"v{doc.get('major', '0')}.{doc.get('minor', '0')}")


class WatchStream:
    """The events of one watch connection; :meth:`close` ends it from another thread."""

    def __init__(self, resp: Any, what: str) -> None:
        self._resp = resp
        self._what = what
        self.closed = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        from kubernetes.watch.watch import iter_resp_lines
        from urllib3.exceptions import HTTPError

        try:
            for line in iter_resp_lines(self._resp):
                if not line.strip():
                    continue
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    raise KubernetesError(f"{self._what}: {status.get('code')} {status.get('reason', '')}: "
                                          f"{one_line(status.get('message', ''))}", status.get("code"))
                yield event
        except (HTTPError, OSError, ValueError, AttributeError) as exc:
            if self.closed:          # closed from another thread (stop): the read fails, nothing is wrong
                return
            raise KubernetesError(f"{self._what}: the stream broke: {one_line(str(exc))}") from None
        finally:
            self.close()

    def close(self) -> None:
        self.closed = True
        try:
            shutdown = getattr(self._resp, "shutdown", None)   # urllib3 2.3+: unblocks a read in another thread
            if shutdown is not None:
                shutdown()
            self._resp.close()
            self._resp.release_conn()
        except Exception:  # noqa: BLE001 - closing a broken connection
            pass


def lines_of(chunks: Iterable[bytes | str]) -> Iterator[str]:
    """Text lines of a byte stream, as they complete; the last one also when no newline ends it (the client's
    ``iter_resp_lines`` drops it: a log whose last line has no newline would lose it). Invalid UTF-8 becomes
    U+FFFD; a trailing ``\r`` is kept (the log's own bytes)."""
    buf = bytearray()
    for chunk in chunks:
        buf.extend(chunk.encode("utf-8") if isinstance(chunk, str) else chunk)
        start = 0
        while (end := buf.find(b"\n", start)) != -1:
            yield buf[start:end].decode("utf-8", "replace")
            start = end + 1
        del buf[:start]
    if buf:
        yield buf.decode("utf-8", "replace")


_TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d) ")


def split_timestamp(line: str) -> tuple[tuple[int, int] | None, str]:
    """``(seconds since the epoch, nanoseconds)`` and the text of a log line read with ``timestamps=true``
    (``2026-11-28T10:00:00.123456789Z text``: RFC 3339 with up to nanoseconds, then one space); (None, line)
    when it has no timestamp."""
    m = _TIMESTAMP.match(line)
    if m is None:
        return None, line
    seconds = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
    zone = m.group(3)
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return (seconds, int((m.group(2) or "").ljust(9, "0"))), line[m.end():]


def _stream_without_capture() -> Any:
    """The client's ``stream()`` with its WebSocket transport told ``capture_all=False``.

    ``stream()`` does not pass ``capture_all`` on (the generated API method rejects unknown keywords;
    kubernetes-client/python issue #2302, closed unfixed), so the transport it wraps, ``ws_client.websocket_call``
    (which reads ``capture_all`` from its keywords), is given it here through the same wrapper ``stream`` is made
    of (``functools.partial(_websocket_request, websocket_call, None)``, kubernetes/base/stream/stream.py).
    Should a client build ``stream`` otherwise, the plain ``stream`` is used: execstream.ExecStream never calls
    ``update()``, the only method that fills the capture."""
    import functools

    from kubernetes.stream import stream, ws_client

    wrapper = getattr(stream, "func", None)
    if not (isinstance(stream, functools.partial) and stream.args[:1] == (ws_client.websocket_call,)
            and callable(wrapper)):
        return stream
    return functools.partial(wrapper, functools.partial(ws_client.websocket_call, capture_all=False), *stream.args[1:])


def _api_error(what: str, exc: Any) -> KubernetesError:
    message = exc.reason or ""
    body: Any = None
    try:
        body = json.loads(exc.body or "{}")
        message = body.get("message") or message
    except (TypeError, ValueError, AttributeError):
        body = None
    status = getattr(exc, "status", None)
    refusal = status_refusal(body) if isinstance(body, dict) else None
    if refusal is None and status == 403:
        refusal = status_refusal({"code": 403, "message": message})
    if refusal is not None:
        return AdmissionRefused(f"{what}: {refusal.describe()}", status, refusal)
    if status == 0:  # the WebSocket helpers report connection failures as status 0
        return KubernetesError(f"{what}: {one_line(message)}", status)
    return KubernetesError(f"{what}: {status} {one_line(message)}", status)
