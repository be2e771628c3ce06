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
- ``pods/log`` (plain or a chunked ``follow`` stream, ``timestamps``; a last line without a newline; a follow
  stream that goes silent as a dropped connection does) and ``pods/exec`` over WebSocket (v4/v5.channel.k8s.io:
  byte 1 stdout, 2 stderr, 3 the status), serving ``tar cf - -C /results DIR`` from the claim's directory as a
  stream (any size: a sparse file of GiBs costs no memory) and ``test -d``;
- TLS only (https and wss; :class:`StandInServer` with a ``standin_tls.Tls``), as every real API server;
- authorization and admission (policies.py): an RBAC rule that does not grant a call answers 403 with the
  authorizer's message; pods mlrepro creates pass the namespace's admission rules (Pod Security "restricted"
  always, a ResourceQuota, a LimitRange, as a test sets them) or get 403 with the plugin's message; the Job
  controller (kubelet.py) records a refused pod as a FailedCreate event on the Job;
- watch requests that end at once with no event (``empty_watches``, per resource), as a proxy closing them does;
- a log of every request (method, path, verb, resource, user agent) for the RBAC and schema checks.

Not emulated: validation (the tests validate what the runner sends with kubernetes-validate), field ownership of
server-side apply, controllers and kubelets (kubelet.py plays them, nodes.py schedules).
"""

from __future__ import annotations

import asyncio
import copy
import io
import itertools
import json
import os
import tarfile
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp.web
import attrs
import kmock
import yaml
from nodes import DEFAULT_STORAGE_CLASS, STORAGE_CLASSES, Node, StorageClass, default_nodes
from policies import PodSecurity, RbacDenial

KINDS = {  # plural -> (kind, namespaced)
    "configmaps": ("ConfigMap", True), "persistentvolumeclaims": ("PersistentVolumeClaim", True),
    "pods": ("Pod", True), "jobs": ("Job", True), "resourceclaimtemplates": ("ResourceClaimTemplate", True),
    "resourceclaims": ("ResourceClaim", True), "secrets": ("Secret", True), "events": ("Event", True),
    "serviceaccounts": ("ServiceAccount", True), "roles": ("Role", True), "rolebindings": ("RoleBinding", True),
    "namespaces": ("Namespace", False), "deployments": ("Deployment", True), "services": ("Service", True),
}
GROUP_VERSIONS = {"": "v1", "batch": "v1", "apps": "v1", "resource.k8s.io": "v1", "rbac.authorization.k8s.io": "v1"}
RESOURCES_OF = {"": ["configmaps", "persistentvolumeclaims", "pods", "secrets", "events", "serviceaccounts",
                     "namespaces", "services"],
                "batch": ["jobs"], "apps": ["deployments"],
                "resource.k8s.io": ["resourceclaimtemplates", "resourceclaims"],
                "rbac.authorization.k8s.io": ["roles", "rolebindings"]}
PROTOBUF = "application/vnd.kubernetes.protobuf"
ORIGINAL_TYPE = "X-Standin-Content-Type"


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.reason, self.message, self.details = status, reason, message, details

    def body(self) -> dict[str, Any]:
        body = {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure", "code": self.status,
                "reason": self.reason, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


def forbidden(plural: str, group: str, name: str | None, cause: str) -> ApiError:
    """What ``apierrors.NewForbidden`` makes of a refusal (k8s.io/apimachinery/pkg/api/errors/errors.go)."""
    qualified = f"{plural}.{group}" if group else plural
    message = f'{qualified} "{name}" is forbidden: {cause}' if name else f"{qualified} is forbidden: {cause}"
    details = {"kind": plural, **({"group": group} if group else {}), **({"name": name} if name else {})}
    return ApiError(403, "Forbidden", message, details)


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_rfc3339_nano() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
    for op, key, value in fields_sel:
        actual: Any = obj
        for part in key.split("."):           # metadata.name, involvedObject.uid, reason, ...
            actual = actual.get(part) if isinstance(actual, dict) else None
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
    """A container's log: lines (each with the kubelet's timestamp), and what was written after the last
    newline. ``stall_follow_after``: the first followed stream goes silent after that many lines and never ends,
    as a connection a proxy dropped without a word (the next stream is served normally)."""

    lines: list[str] = field(default_factory=list)
    times: list[str] = field(default_factory=list)
    unterminated: str = ""
    unterminated_time: str = ""
    done: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    stall_follow_after: int | None = None
    follows: int = 0

    def add(self, line: str) -> None:
        self.lines.append(line)
        self.times.append(now_rfc3339_nano())
        self.changed.set()

    def write_unterminated(self, text: str) -> None:
        """The container's last output, with no newline after it (``print(..., end="")``)."""
        self.unterminated, self.unterminated_time = text, now_rfc3339_nano()
        self.changed.set()

    def finish(self) -> None:
        self.done = True
        self.changed.set()

    def text(self, timestamps: bool, start: int = 0, end: int | None = None) -> str:
        end = len(self.lines) if end is None else end
        prefix = (lambda i: self.times[i] + " ") if timestamps else (lambda i: "")
        return "".join(prefix(i) + self.lines[i] + "\n" for i in range(start, end))

    def tail(self, timestamps: bool) -> str:
        if not self.unterminated:
            return ""
        return (self.unterminated_time + " " if timestamps else "") + self.unterminated


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
    nodes: list[Node] = attrs.field(factory=default_nodes)
    claim_nodes: dict[str, str] = attrs.field(factory=dict)          # node-local claim -> its node
    storage_classes: dict[str, StorageClass] = attrs.field(factory=lambda: dict(STORAGE_CLASSES))
    rbac_denials: list[RbacDenial] = attrs.field(factory=list)
    admission: list[Any] = attrs.field(factory=lambda: [PodSecurity()])   # rules of policies.py, for pods
    empty_watches: dict[str, int] = attrs.field(factory=dict)   # plural -> the next N watches end at once, empty
    watch_times: list[tuple[str, float]] = attrs.field(factory=list)  # (plural, loop time) of each watch request
    collected: list[tuple[str, str | None]] = attrs.field(factory=list)   # (helper pod, node) of each tar served
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
            denial = next((d for d in self.rbac_denials
                           if d.matches(group, f"{plural}/{sub}" if sub else plural, verb)), None)
            if denial is not None:
                raise ApiError(403, "Forbidden", denial.message(request.namespace, request.name),
                               {"kind": plural, **({"group": group} if group else {}),
                                **({"name": request.name} if request.name else {})})
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
            self.admit(group, plural, ns, body)
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
                if (group, plural, ns, name or "") not in st.objects:
                    self.admit(group, plural, ns, body)        # an apply that creates is admitted as a create
                return st.apply(group, plural, ns, name or "", body)
            if ctype.startswith(("application/merge-patch", "application/strategic-merge-patch")):
                return st.patch(group, plural, ns, name or "", body, status_only=sub == "status")
            raise ApiError(415, "UnsupportedMediaType", f"the patch type {ctype} is not supported by the stand-in")
        if verb == "delete":
            propagation = query.get("propagationPolicy") or (body or {}).get("propagationPolicy")
            st.delete(group, plural, ns, name or "", propagation)
            return {"apiVersion": "v1", "kind": "Status", "status": "Success", "metadata": {}}
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported here")

    def refusal(self, plural: str, ns: str | None, obj: dict[str, Any]) -> str | None:
        """The cause an admission rule gives for creating ``obj`` (pods only), or None: admitted."""
        if plural != "pods":
            return None
        for rule in self.admission:
            cause = rule.admit(self.state, ns, obj)
            if cause:
                return cause
        return None

    def admit(self, group: str, plural: str, ns: str | None, obj: dict[str, Any]) -> None:
        """Raise the 403 the API server answers when admission refuses ``obj``."""
        cause = self.refusal(plural, ns, obj)
        if cause:
            raise forbidden(plural, group, (obj.get("metadata") or {}).get("name"), cause)

    def storage_class(self, ns: str, claim: str) -> tuple[StorageClass, str]:
        """The storage class of a claim (its PVC's, else the default) and the claim's access mode."""
        pvc = self.state.objects.get(("", "persistentvolumeclaims", ns, claim)) or {}
        spec = pvc.get("spec") or {}
        name = spec.get("storageClassName") or DEFAULT_STORAGE_CLASS
        return self.storage_classes[name], (spec.get("accessModes") or ["ReadWriteOnce"])[0]

    def node(self, name: str) -> Node | None:
        return next((n for n in self.nodes if n.name == name), None)

    # ---- watch ------------------------------------------------------------------------------------------
    async def _watch(self, raw: aiohttp.web.BaseRequest, group: str, plural: str, ns: str | None,
                     query: dict[str, str]) -> aiohttp.web.StreamResponse:
        st = self.state
        self.watch_connections[plural] = self.watch_connections.get(plural, 0) + 1
        self.watch_times.append((plural, asyncio.get_running_loop().time()))
        if self.empty_watches.get(plural, 0) > 0:   # as a proxy that closes it at once: 200, no event, the end
            self.empty_watches[plural] -= 1
            return aiohttp.web.Response(text="", content_type="application/json")
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
        timestamps = query.get("timestamps") in ("true", "1", "True")
        if query.get("follow") not in ("true", "1", "True"):
            return aiohttp.web.Response(text=buf.text(timestamps) + buf.tail(timestamps), content_type="text/plain")
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(raw)
        buf.follows += 1
        stall_at = buf.stall_follow_after if buf.follows == 1 else None
        closer = asyncio.Event()
        self._closers.append(closer)
        sent = 0
        try:
            while True:
                end = len(buf.lines) if stall_at is None else min(len(buf.lines), stall_at)
                if sent < end:
                    await response.write(buf.text(timestamps, sent, end).encode())
                    sent = end
                if stall_at is not None and sent >= stall_at:
                    await closer.wait()           # silent from now on, the connection left open
                    break
                if buf.done:
                    tail = buf.tail(timestamps)
                    if tail:
                        await response.write(tail.encode())
                    break
                buf.changed.clear()
                if sent < len(buf.lines) or buf.done:
                    continue
                await buf.changed.wait()
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            if closer in self._closers:
                self._closers.remove(closer)
        return response

    # ---- exec -------------------------------------------------------------------------------------------
    async def _exec(self, raw: aiohttp.web.BaseRequest, ns: str, name: str,
                    command: list[str]) -> aiohttp.web.StreamResponse:
        pod = self.state.get("", "pods", ns, name)
        if (pod.get("status") or {}).get("phase") != "Running":
            raise ApiError(400, "BadRequest", f"pod {name} is not running")
        ws = aiohttp.web.WebSocketResponse(protocols=("v5.channel.k8s.io", "v4.channel.k8s.io"))
        await ws.prepare(raw)
        handler = self.exec_handler or run_in_pod
        try:
            stdout, stderr, code = handler(self, pod, command)
            for chunk in stdout:                 # a generator: read as sent, so any size streams through
                await ws.send_bytes(b"\x01" + chunk)
            if stderr:
                await ws.send_bytes(b"\x02" + stderr)
            status = {"metadata": {}, "status": "Success"} if code == 0 else {
                "metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
                "message": f"command terminated with non-zero exit code: exit status {code}",
                "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}
            await ws.send_bytes(b"\x03" + json.dumps(status).encode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
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


EXEC_CHUNK = 32 * 1024          # the API server's exec messages carry at most this much output


def run_in_pod(standin: StandIn, pod: dict[str, Any], command: list[str]) -> tuple[Iterator[bytes], bytes, int]:
    """What the stand-in's container runtime can run: ``tar cf - -C /results NAME`` (the claim mounted at
    /results, tarred as a stream) and ``test -d /results/NAME``. Returns (stdout chunks, stderr, exit code);
    records the helper pod and its node when it serves a tar."""
    if command[:2] == ["test", "-d"] and len(command) == 3:
        root, rel = _mounted(standin, pod, command[2])
        return iter(()), b"", 0 if root is not None and (root / rel).is_dir() else 1
    if command[:4] != ["tar", "cf", "-", "-C"] or len(command) != 6:
        return iter(()), f"stand-in: cannot run {command}\n".encode(), 127
    root, _ = _mounted(standin, pod, command[4])
    if root is None:
        return iter(()), f"tar: {command[4]}: Cannot open: No such file or directory\n".encode(), 2
    if not os.path.lexists(root / command[5]):
        return iter(()), f"tar: {command[5]}: Cannot stat: No such file or directory\ntar: Exiting with failure status " \
                         "due to previous errors\n".encode(), 2
    standin.collected.append((pod["metadata"]["name"], (pod.get("spec") or {}).get("nodeName")))
    return tar_stream(root, command[5]), b"", 0


def _mounted(standin: StandIn, pod: dict[str, Any], path: str) -> tuple[Path | None, str]:
    """The claim directory mounted at the start of ``path`` in ``pod``, and the rest of the path."""
    mounts = {m["mountPath"]: m["name"] for c in pod["spec"]["containers"] for m in c.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod["spec"].get("volumes", [])}
    for mount, volume_name in mounts.items():
        if path == mount or path.startswith(mount.rstrip("/") + "/"):
            claim = (volumes.get(volume_name, {}).get("persistentVolumeClaim") or {}).get("claimName")
            if claim is None:
                return None, ""
            return standin.claim_dir(pod["metadata"]["namespace"], claim), path[len(mount):].lstrip("/")
    return None, ""


def tar_stream(root: Path, name: str) -> Iterator[bytes]:
    """``tar cf - -C root name`` as it is written, in EXEC_CHUNK pieces: each member's header, its data read a
    chunk at a time, the end-of-archive blocks and the padding to a 10 KiB record, as GNU tar does."""
    writer = tarfile.TarFile(fileobj=io.BytesIO(), mode="w", format=tarfile.GNU_FORMAT)   # for gettarinfo only
    written = 0
    paths = [root / name]
    if (root / name).is_dir() and not (root / name).is_symlink():
        paths += sorted(p for p in (root / name).rglob("*"))
    pending = bytearray()
    for path in paths:
        info = writer.gettarinfo(str(path), arcname=str(path.relative_to(root)))
        pending += info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")
        if info.isreg():
            with open(path, "rb") as f:
                while True:
                    data = f.read(EXEC_CHUNK)
                    if not data:
                        break
                    pending += data
                    while len(pending) >= EXEC_CHUNK:
                        written += EXEC_CHUNK
                        yield bytes(pending[:EXEC_CHUNK])
                        del pending[:EXEC_CHUNK]
            pending += b"\0" * (-info.size % tarfile.BLOCKSIZE)
    pending += b"\0" * (2 * tarfile.BLOCKSIZE)
    pending += b"\0" * (-(written + len(pending)) % tarfile.RECORDSIZE)
    for i in range(0, len(pending), EXEC_CHUNK):
        yield bytes(pending[i:i + EXEC_CHUNK])


class StandInServer:
    """The stand-in on a loopback port, in an event loop on a daemon thread; ``call`` runs code in that loop.
    With ``tls`` (standin_tls.Tls) it serves https/wss with that certificate; its CA goes into the kubeconfig."""

    def __init__(self, standin: StandIn, tls: Any = None) -> None:
        self.standin = standin
        self.tls = tls
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="k8s-standin", daemon=True)
        self._server: kmock.Server | None = None
        self.url = ""

    def start(self, timeout_s: float = 30) -> StandInServer:
        self._thread.start()

        async def up() -> str:
            await self.standin.__aenter__()
            if self.tls is not None:
                self._server = kmock.Server(self.standin, server_cls=_tls_server_class(self.tls.server_context()))
            else:
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
        cluster: dict[str, Any] = {"server": self.url}
        if self.tls is not None:
            cluster["certificate-authority-data"] = self.tls.ca_data
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": context,
            "clusters": [{"name": "standin", "cluster": cluster}],
            "users": [{"name": "tester", "user": {"token": "not-checked"}}],
            "contexts": [{"name": context, "context": {"cluster": "standin", "user": "tester",
                                                       "namespace": namespace}}],
        }))
        return path


def _tls_server_class(context: Any) -> type:
    """kmock's server (aiohttp's RawTestServer) started with an SSL context: https and wss."""
    import aiohttp.test_utils

    class TlsServer(aiohttp.test_utils.RawTestServer):
        async def start_server(self, loop: Any = None, **kwargs: Any) -> None:
            await super().start_server(loop=loop, ssl=context, **kwargs)

    return TlsServer
