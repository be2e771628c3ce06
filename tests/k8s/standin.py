"""A stateful Kubernetes API stand-in over real HTTP, for the cluster path's tests and benchmark.

kmock (PyPI) provides the HTTP server (aiohttp), the parsing of Kubernetes URLs into group/version/resource/
namespace/name/subresource, API discovery and Kubernetes-style error bodies. This subclass of kmock's
``KubernetesScaffold`` adds the semantics the runner relies on that kmock's own emulator does not have:

- objects with uid, resourceVersion (one counter, as etcd's), creationTimestamp and the namespace of the URL;
- list and watch with label/field selectors; a watch resumes from a resourceVersion (history replay), sends
  BOOKMARKs, ends after ``timeoutSeconds``, and answers ``410 Gone`` for a version older than the history
  kept (:meth:`ApiState.compact`); tests can close every open watch (:meth:`StandIn.close_watches`);
- server-side apply (create when missing; a Job's pod template is immutable: 422, as a real server says),
  merge patches, PUT, and DELETE with propagation (Background/Foreground delete the dependents, by
  ownerReferences; a Job's default orphans them, as batch/v1 does);
- ``pods/log`` (plain or a chunked ``follow`` stream) and ``pods/exec`` over WebSocket (v4/v5.channel.k8s.io:
  byte 1 stdout, 2 stderr, 3 the status), serving ``tar cf - -C /results DIR`` from the claim's directory;
- a log of every request (method, path, verb, resource, user agent) for the RBAC and schema checks.

Not emulated: admission and validation (the tests validate what the runner sends with kubernetes-validate),
field ownership of server-side apply, the scheduler, controllers and kubelets (see kubelet.py).
"""

from __future__ import annotations

import asyncio
import copy
import io
import itertools
import json
import tarfile
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp.web
import attrs
import kmock
import yaml

KINDS = {  # plural -> (kind, namespaced)
    "configmaps": ("ConfigMap", True), "persistentvolumeclaims": ("PersistentVolumeClaim", True),
    "pods": ("Pod", True), "jobs": ("Job", True), "resourceclaimtemplates": ("ResourceClaimTemplate", True),
    "resourceclaims": ("ResourceClaim", True), "secrets": ("Secret", True), "events": ("Event", True),
    "serviceaccounts": ("ServiceAccount", True), "roles": ("Role", True), "rolebindings": ("RoleBinding", True),
    "namespaces": ("Namespace", False),
}
GROUP_VERSIONS = {"": "v1", "batch": "v1", "resource.k8s.io": "v1", "rbac.authorization.k8s.io": "v1"}
RESOURCES_OF = {"": ["configmaps", "persistentvolumeclaims", "pods", "secrets", "events", "serviceaccounts",
                     "namespaces"],
                "batch": ["jobs"], "resource.k8s.io": ["resourceclaimtemplates", "resourceclaims"],
                "rbac.authorization.k8s.io": ["roles", "rolebindings"]}
PROTOBUF = "application/vnd.kubernetes.protobuf"
ORIGINAL_TYPE = "X-Standin-Content-Type"


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message

    def body(self) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure", "code": self.status,
                "reason": self.reason, "message": self.message}


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (strategic merge is treated the same: lists are replaced)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def parse_selector(text: str) -> list[tuple[str, str, str | None]]:
    """``a=b,c!=d,e,!f`` -> [(op, key, value)] with op in = != exists !exists."""
    out: list[tuple[str, str, str | None]] = []
    for part in (p.strip() for p in (text or "").split(",")):
        if not part:
            continue
        if "!=" in part:
            k, v = part.split("!=", 1)
            out.append(("!=", k.strip(), v.strip()))
        elif "==" in part or "=" in part:
            k, v = part.split("==", 1) if "==" in part else part.split("=", 1)
            out.append(("=", k.strip(), v.strip()))
        elif part.startswith("!"):
            out.append(("!exists", part[1:].strip(), None))
        else:
            out.append(("exists", part, None))
    return out


def matches(obj: dict[str, Any], labels_sel: list[tuple[str, str, str | None]],
            fields_sel: list[tuple[str, str, str | None]]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for op, key, value in labels_sel:
        if op == "=" and labels.get(key) != value:
            return False
        if op == "!=" and labels.get(key) == value:
            return False
        if op == "exists" and key not in labels:
            return False
        if op == "!exists" and key in labels:
            return False
    meta = obj.get("metadata") or {}
    for op, key, value in fields_sel:
        actual = {"metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace")}.get(key)
        if (op == "=" and actual != value) or (op == "!=" and actual == value):
            return False
    return True


@dataclass
class Watch:
    group: str
    plural: str
    namespace: str | None
    labels: list[tuple[str, str, str | None]]
    fields: list[tuple[str, str, str | None]]
    queue: asyncio.Queue[dict[str, Any] | None] = field(default_factory=asyncio.Queue)

    def wants(self, group: str, plural: str, obj: dict[str, Any]) -> bool:
        ns = (obj.get("metadata") or {}).get("namespace")
        return (group == self.group and plural == self.plural and (self.namespace is None or ns == self.namespace)
                and matches(obj, self.labels, self.fields))


@dataclass
class LogBuffer:
    lines: list[str] = field(default_factory=list)
    done: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, line: str) -> None:
        self.lines.append(line)
        self.changed.set()

    def finish(self) -> None:
        self.done = True
        self.changed.set()


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    query: dict[str, str]
    verb: str
    group: str
    resource: str           # plural, or plural/subresource
    namespace: str | None
    name: str | None
    agent: str
    content_type: str
    body: Any


class ApiState:
    """Objects, the resourceVersion counter, the event history and the open watches (event-loop only)."""

    def __init__(self, history: int = 200_000) -> None:
        self.objects: dict[tuple[str, str, str | None, str], dict[str, Any]] = {}
        self.rv = itertools.count(1)
        self.last_rv = 0
        self.history: deque[tuple[int, str, str, str, dict[str, Any]]] = deque(maxlen=history)
        self.compacted_below = 0
        self.watches: list[Watch] = []
        self.listeners: list[Callable[[str, str, str, dict[str, Any]], None]] = []

    def _next_rv(self) -> str:
        self.last_rv = next(self.rv)
        return str(self.last_rv)

    def _emit(self, group: str, plural: str, type_: str, obj: dict[str, Any]) -> None:
        snapshot = copy.deepcopy(obj)
        rv = int(obj["metadata"]["resourceVersion"])
        self.history.append((rv, group, plural, type_, snapshot))
        if len(self.history) == self.history.maxlen:
            self.compacted_below = self.history[0][0]
        for w in list(self.watches):
            if w.wants(group, plural, snapshot):
                w.queue.put_nowait({"type": type_, "object": snapshot})
        for listener in list(self.listeners):
            listener(group, plural, type_, snapshot)

    def compact(self) -> None:
        """Forget the history: a watch resuming from any version seen so far gets 410 Gone."""
        self.history.clear()
        self.compacted_below = self.last_rv + 1

    # ---- CRUD -------------------------------------------------------------------------------------------
    def get(self, group: str, plural: str, ns: str | None, name: str) -> dict[str, Any]:
        obj = self.objects.get((group, plural, ns, name))
        if obj is None:
            kind = KINDS.get(plural, (plural,))[0]
            raise ApiError(404, "NotFound", f'{plural}{"." + group if group else ""} "{name}" not found'
                           if kind else "not found")
        return obj

    def list(self, group: str, plural: str, ns: str | None, labels: str = "", fields: str = "") -> list[dict]:
        lsel, fsel = parse_selector(labels), parse_selector(fields)
        return [o for (g, p, n, _), o in sorted(self.objects.items(), key=lambda kv: kv[0][3])
                if g == group and p == plural and (ns is None or n == ns) and matches(o, lsel, fsel)]

    def create(self, group: str, plural: str, ns: str | None, obj: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        name = meta.get("name")
        if not name:
            raise ApiError(422, "Invalid", "metadata.name: Required value")
        key = (group, plural, ns, name)
        if key in self.objects:
            raise ApiError(409, "AlreadyExists", f'{plural} "{name}" already exists')
        kind, namespaced = KINDS.get(plural, (plural.capitalize(), True))
        obj.setdefault("apiVersion", f"{group}/{GROUP_VERSIONS.get(group, 'v1')}" if group else "v1")
        obj.setdefault("kind", kind)
        if namespaced:
            meta["namespace"] = ns
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now_rfc3339(), resourceVersion=self._next_rv(),
                    generation=1)
        self.objects[key] = obj
        self._emit(group, plural, "ADDED", obj)
        return obj

    def replace(self, group: str, plural: str, ns: str | None, name: str, obj: dict[str, Any]) -> dict[str, Any]:
        old = self.get(group, plural, ns, name)
        self._check_immutable(plural, old, obj)
        new = copy.deepcopy(obj)
        meta = new.setdefault("metadata", {})
        for k in ("uid", "creationTimestamp", "namespace", "generation"):
            if k in old["metadata"]:
                meta[k] = old["metadata"][k]
        new.setdefault("status", old.get("status"))
        meta["resourceVersion"] = self._next_rv()
        self.objects[(group, plural, ns, name)] = new
        self._emit(group, plural, "MODIFIED", new)
        return new

    def patch(self, group: str, plural: str, ns: str | None, name: str, patch: dict[str, Any],
              status_only: bool = False) -> dict[str, Any]:
        old = self.get(group, plural, ns, name)
        if status_only:
            patch = {"status": patch.get("status")} if "status" in patch else {}
        new = merge_patch(old, patch)
        self._check_immutable(plural, old, new)
        new["metadata"]["resourceVersion"] = self._next_rv()
        self.objects[(group, plural, ns, name)] = new
        self._emit(group, plural, "MODIFIED", new)
        return new

    def apply(self, group: str, plural: str, ns: str | None, name: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply, simplified: create when missing, else merge the applied configuration in."""
        if (group, plural, ns, name) not in self.objects:
            return self.create(group, plural, ns, obj)
        old = self.objects[(group, plural, ns, name)]
        applied = {k: v for k, v in obj.items() if k not in ("status",)}
        new = merge_patch(old, applied)
        if new == old:
            return old
        return self.patch(group, plural, ns, name, applied)

    def delete(self, group: str, plural: str, ns: str | None, name: str, propagation: str | None) -> dict[str, Any]:
        obj = self.get(group, plural, ns, name)
        del self.objects[(group, plural, ns, name)]
        gone = copy.deepcopy(obj)
        gone["metadata"]["resourceVersion"] = self._next_rv()
        self._emit(group, plural, "DELETED", gone)
        policy = propagation or ("Orphan" if plural == "jobs" else "Background")
        if policy in ("Background", "Foreground"):
            uid = obj["metadata"]["uid"]
            for (g, p, n, nm), child in list(self.objects.items()):
                owners = (child.get("metadata") or {}).get("ownerReferences") or []
                if any(o.get("uid") == uid for o in owners):
                    self.delete(g, p, n, nm, "Background")
        return gone

    @staticmethod
    def _check_immutable(plural: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        if plural == "jobs" and (old.get("spec") or {}).get("template") != (new.get("spec") or {}).get("template"):
            raise ApiError(422, "Invalid", f'Job.batch "{old["metadata"]["name"]}" is invalid: spec.template: '
                                           "Invalid value: field is immutable")


@attrs.define(kw_only=True)
class StandIn(kmock.KubernetesScaffold):
    """The HTTP side: routes every Kubernetes request to :class:`ApiState` (see the module docstring)."""

    state: ApiState = attrs.field(factory=ApiState)
    git_version: str = "v1.34.2"
    gone_as_http: bool = False            # 410 for a too-old watch as an HTTP status instead of an ERROR event
    bookmark_every_s: float = 2.0
    claims_root: Path | None = None       # <root>/<namespace>/<claim>/ is the content of a claim
    exec_handler: Callable[..., Any] | None = None
    requests_log: list[RequestRecord] = attrs.field(factory=list)
    watch_connections: dict[str, int] = attrs.field(factory=dict)
    logs: dict[tuple[str, str], LogBuffer] = attrs.field(factory=dict)
    _closers: list[asyncio.Event] = attrs.field(factory=list)

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        ctype = raw_request.headers.get("Content-Type", "")
        if ctype.startswith(PROTOBUF):
            # kmock reads every body as text: say latin-1 (any bytes decode), keep the real type aside
            from multidict import CIMultiDict

            headers = CIMultiDict(raw_request.headers)
            headers["Content-Type"] = "application/octet-stream; charset=latin-1"
            headers[ORIGINAL_TYPE] = ctype
            raw_request = raw_request.clone(headers=headers)
        return await super().__call__(raw_request)

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        raw = request._raw_request
        assert raw is not None
        path = raw.path.rstrip("/") or "/"
        if path == "/standin/stats":     # for the benchmark: what the server saw (not a Kubernetes path)
            return aiohttp.web.json_response({"watch_connections": self.watch_connections,
                                              "requests": len(self.requests_log)})
        if path == "/version":
            major, minor = self.git_version.lstrip("v").split(".")[:2]
            return aiohttp.web.json_response({"major": major, "minor": minor, "gitVersion": self.git_version,
                                              "platform": "linux/amd64"})
        if request.resource is None or request.resource.plural is None:
            return await self._discovery(request, path)
        group = request.resource.group or ""
        plural = request.resource.plural
        sub = request.subresource
        query = dict(raw.query)
        verb = self._verb(raw.method, request.name, sub, query)
        self.requests_log.append(RequestRecord(
            method=raw.method, path=raw.path, query=query, verb=verb, group=group,
            resource=f"{plural}/{sub}" if sub else plural, namespace=request.namespace, name=request.name,
            agent=raw.headers.get("User-Agent", ""), content_type=raw.headers.get("Content-Type", ""),
            body=self._body(request)))
        try:
            if plural not in KINDS:
                raise ApiError(404, "NotFound", f"the server could not find the requested resource ({plural})")
            if sub == "log":
                return await self._log(raw, request.namespace or "", request.name or "", query)
            if sub == "exec":
                return await self._exec(raw, request.namespace or "", request.name or "", raw.query.getall("command", []))
            if verb == "watch":
                return await self._watch(raw, group, plural, request.namespace, query)
            return aiohttp.web.json_response(self._crud(raw.method, verb, group, plural, request, sub, query))
        except ApiError as exc:
            return aiohttp.web.json_response(exc.body(), status=exc.status)

    @staticmethod
    def _verb(method: str, name: str | None, sub: str | None, query: dict[str, str]) -> str:
        if method == "GET":
            if query.get("watch") in ("true", "1", "True"):
                return "watch"
            return "get" if name else "list"
        return {"POST": "create", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete" if name else "deletecollection"}.get(method, method.lower())

    @staticmethod
    def _body(request: kmock.Request) -> Any:
        if not request.body:
            return None
        if request.headers.get(ORIGINAL_TYPE, "").startswith(PROTOBUF):
            from k8s_protobuf import decode  # Helm's release Secrets

            return decode(request.body)
        if isinstance(request.data, (dict, list)):    # JSON, already parsed by kmock
            return request.data
        try:
            return yaml.safe_load(request.body.decode("utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError):
            return None

    def _crud(self, method: str, verb: str, group: str, plural: str, request: kmock.Request, sub: str | None,
              query: dict[str, str]) -> dict[str, Any]:
        ns, name, st = request.namespace, request.name, self.state
        body = self._body(request)
        if verb == "list":
            items = st.list(group, plural, ns, query.get("labelSelector", ""), query.get("fieldSelector", ""))
            kind = KINDS[plural][0]
            return {"apiVersion": f"{group}/v1" if group else "v1", "kind": f"{kind}List",
                    "metadata": {"resourceVersion": str(st.last_rv)}, "items": items}
        if verb == "get":
            return st.get(group, plural, ns, name or "")
        if verb == "create":
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "the body is not an object")
            return st.create(group, plural, ns, body)
        if verb == "update":
            return st.replace(group, plural, ns, name or "", body)
        if verb == "patch":
            ctype = request.headers.get("Content-Type", "")
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "the patch is not an object")
            if ctype.startswith("application/apply-patch"):
                if not query.get("fieldManager"):
                    raise ApiError(400, "BadRequest", "fieldManager is required for apply requests")
                return st.apply(group, plural, ns, name or "", body)
            if ctype.startswith(("application/merge-patch", "application/strategic-merge-patch")):
                return st.patch(group, plural, ns, name or "", body, status_only=sub == "status")
            raise ApiError(415, "UnsupportedMediaType", f"the patch type {ctype} is not supported by the stand-in")
        if verb == "delete":
            propagation = query.get("propagationPolicy") or (body or {}).get("propagationPolicy")
            st.delete(group, plural, ns, name or "", propagation)
            return {"apiVersion": "v1", "kind": "Status", "status": "Success", "metadata": {}}
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported here")

    # ---- watch ------------------------------------------------------------------------------------------
    async def _watch(self, raw: aiohttp.web.BaseRequest, group: str, plural: str, ns: str | None,
                     query: dict[str, str]) -> aiohttp.web.StreamResponse:
        st = self.state
        self.watch_connections[plural] = self.watch_connections.get(plural, 0) + 1
        rv_text = query.get("resourceVersion") or ""
        rv = int(rv_text) if rv_text.isdigit() else 0
        gone = rv_text not in ("", "0") and rv + 1 < st.compacted_below     # events after rv were forgotten
        if gone and self.gone_as_http:
            raise ApiError(410, "Expired", f"too old resource version: {rv} ({st.compacted_below})")
        w = Watch(group, plural, ns, parse_selector(query.get("labelSelector", "")),
                  parse_selector(query.get("fieldSelector", "")))
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(raw)
        closer = asyncio.Event()
        self._closers.append(closer)
        st.watches.append(w)
        timeout = float(query.get("timeoutSeconds") or 1800)
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1", "True")
        try:
            if gone:
                await self._send(response, {"type": "ERROR", "object": ApiError(
                    410, "Expired", f"too old resource version: {rv} ({st.compacted_below})").body()})
                return response
            if rv_text in ("", "0"):
                for obj in st.list(group, plural, ns):
                    if w.wants(group, plural, obj):
                        await self._send(response, {"type": "ADDED", "object": obj})
            else:
                for ev_rv, g, p, type_, obj in list(st.history):
                    if ev_rv > rv and w.wants(g, p, obj):
                        await self._send(response, {"type": type_, "object": obj})
            loop = asyncio.get_running_loop()
            end = loop.time() + timeout
            while not closer.is_set():
                remaining = end - loop.time()
                if remaining <= 0:
                    break
                try:
                    event = await asyncio.wait_for(w.queue.get(), min(remaining, self.bookmark_every_s))
                except asyncio.TimeoutError:
                    if bookmarks:
                        await self._send(response, {"type": "BOOKMARK", "object": {
                            "kind": KINDS[plural][0], "apiVersion": f"{group}/v1" if group else "v1",
                            "metadata": {"resourceVersion": str(st.last_rv)}}})
                    continue
                if event is None:
                    break
                await self._send(response, event)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            if w in st.watches:
                st.watches.remove(w)
            if closer in self._closers:
                self._closers.remove(closer)
        try:
            await response.write_eof()
        except (ConnectionResetError, RuntimeError):
            pass
        return response

    @staticmethod
    async def _send(response: aiohttp.web.StreamResponse, event: dict[str, Any]) -> None:
        await response.write(json.dumps(event).encode() + b"\n")

    def close_watches_now(self) -> int:
        """(event loop) End every open watch stream, as a server restart or a load balancer does."""
        n = 0
        for w in list(self.state.watches):
            w.queue.put_nowait(None)
            n += 1
        for closer in list(self._closers):
            closer.set()
        return n

    # ---- logs -------------------------------------------------------------------------------------------
    async def _log(self, raw: aiohttp.web.BaseRequest, ns: str, name: str,
                   query: dict[str, str]) -> aiohttp.web.StreamResponse:
        pod = self.state.get("", "pods", ns, name)
        buf = self.logs.get((ns, name))
        if buf is None:
            phase = (pod.get("status") or {}).get("phase") or "Pending"
            raise ApiError(400, "BadRequest", f'container "harness" in pod "{name}" is waiting to start: '
                                              f"{'ContainerCreating' if phase == 'Pending' else phase}")
        if query.get("follow") not in ("true", "1", "True"):
            return aiohttp.web.Response(text="".join(line + "\n" for line in buf.lines), content_type="text/plain")
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(raw)
        sent = 0
        try:
            while True:
                while sent < len(buf.lines):
                    await response.write((buf.lines[sent] + "\n").encode())
                    sent += 1
                if buf.done:
                    break
                buf.changed.clear()
                if sent < len(buf.lines) or buf.done:
                    continue
                await buf.changed.wait()
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return response

    # ---- exec -------------------------------------------------------------------------------------------
    async def _exec(self, raw: aiohttp.web.BaseRequest, ns: str, name: str,
                    command: list[str]) -> aiohttp.web.StreamResponse:
        pod = self.state.get("", "pods", ns, name)
        if (pod.get("status") or {}).get("phase") != "Running":
            raise ApiError(400, "BadRequest", f"pod {name} is not running")
        ws = aiohttp.web.WebSocketResponse(protocols=("v5.channel.k8s.io", "v4.channel.k8s.io"))
        await ws.prepare(raw)
        handler = self.exec_handler or tar_exec
        try:
            stdout, stderr, code = handler(self, pod, command)
            for chunk in stdout:
                await ws.send_bytes(b"\x01" + chunk)
            if stderr:
                await ws.send_bytes(b"\x02" + stderr)
            status = {"metadata": {}, "status": "Success"} if code == 0 else {
                "metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
                "message": f"command terminated with non-zero exit code: exit status {code}",
                "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}
            await ws.send_bytes(b"\x03" + json.dumps(status).encode())
        finally:
            await ws.close()
        return ws

    def claim_dir(self, ns: str, claim: str) -> Path:
        assert self.claims_root is not None
        return self.claims_root / ns / claim

    # ---- discovery (helm, kubectl) ----------------------------------------------------------------------
    async def _discovery(self, request: kmock.Request, path: str) -> aiohttp.web.StreamResponse:
        if path == "/api":
            return aiohttp.web.json_response({"kind": "APIVersions", "versions": ["v1"]})
        if path == "/apis":
            groups = [{"name": g, "versions": [{"groupVersion": f"{g}/v1", "version": "v1"}],
                       "preferredVersion": {"groupVersion": f"{g}/v1", "version": "v1"}}
                      for g in RESOURCES_OF if g]
            return aiohttp.web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        for g, plurals in RESOURCES_OF.items():
            if path == (f"/apis/{g}/v1" if g else "/api/v1"):
                return aiohttp.web.json_response({
                    "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{g}/v1" if g else "v1",
                    "resources": [{"name": p, "singularName": KINDS[p][0].lower(), "namespaced": KINDS[p][1],
                                   "kind": KINDS[p][0],
                                   "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}
                                  for p in plurals]})
        return aiohttp.web.json_response(ApiError(404, "NotFound", f"{path} not found").body(), status=404)


def tar_exec(standin: StandIn, pod: dict[str, Any], command: list[str]) -> tuple[list[bytes], bytes, int]:
    """``tar cf - -C /results NAME`` in a pod that mounts a claim at /results: the claim directory, tarred."""
    if command[:4] != ["tar", "cf", "-", "-C"] or len(command) != 6:
        return [], f"stand-in: cannot run {command}\n".encode(), 127
    mounts = {m["mountPath"]: m["name"] for c in pod["spec"]["containers"] for m in c.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod["spec"].get("volumes", [])}
    volume = volumes.get(mounts.get(command[4], ""), {})
    claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
    if claim is None:
        return [], f"tar: {command[4]}: Cannot open: No such file or directory\n".encode(), 2
    root = standin.claim_dir(pod["metadata"]["namespace"], claim)
    if not (root / command[5]).exists():
        return [], f"tar: {command[5]}: Cannot stat: No such file or directory\ntar: Exiting with failure status " \
                   "due to previous errors\n".encode(), 2
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(root / command[5], arcname=command[5])
    data = buf.getvalue()
    return [data[i:i + 32768] for i in range(0, len(data), 32768)], b"", 0


class StandInServer:
    """The stand-in on a loopback port, in an event loop on a daemon thread; ``call`` runs code in that loop."""

    def __init__(self, standin: StandIn) -> None:
        self.standin = standin
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="k8s-standin", daemon=True)
        self._server: kmock.Server | None = None
        self.url = ""

    def start(self, timeout_s: float = 30) -> StandInServer:
        self._thread.start()

        async def up() -> str:
            await self.standin.__aenter__()
            self._server = kmock.Server(self.standin)
            await self._server.__aenter__()
            return str(self._server.url).rstrip("/")

        self.url = asyncio.run_coroutine_threadsafe(up(), self.loop).result(timeout_s)
        return self

    def call(self, fn: Callable[[], Any], timeout_s: float = 30) -> Any:
        """Run ``fn`` in the server's loop (the state is only touched there) and return its result."""
        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout_s)

    def submit(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self) -> None:
        async def down() -> None:
            self.standin.close_watches_now()
            for buf in self.standin.logs.values():
                buf.finish()
            await asyncio.sleep(0)
            if self._server is not None:
                await self._server.__aexit__(None, None, None)
            await self.standin.__aexit__(None, None, None)

        try:
            asyncio.run_coroutine_threadsafe(down(), self.loop).result(30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()

    def write_kubeconfig(self, path: Path, namespace: str = "bench", context: str = "standin") -> Path:
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": context,
            "clusters": [{"name": "standin", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": "not-checked"}}],
            "contexts": [{"name": context, "context": {"cluster": "standin", "user": "tester",
                                                       "namespace": namespace}}],
        }))
        return path

