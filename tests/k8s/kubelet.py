"""The test plays Job controller and kubelet: for each Job created in the stand-in it runs a scenario that
creates the Job's pod (with an ownerReference, the controller's labels), moves it through its phases, sets
conditions and exit codes, serves its log, and ends the Job with the conditions a real controller sets.

The default scenario runs the real harness (``python -m mlrepro.harness``, real LoadGen) on the run spec the
runner put in the ConfigMap, writing into the claim's directory, streaming its output as the pod's log, and
ending the pod with the harness's exit code; the Job then follows its podFailurePolicy (exit 3: FailJob) and
backoffLimit as batch/v1 does. Other scenarios (builders below) produce each diagnosis.

As a controller it passes each pod through the namespace's admission first (standin.refusal): a refused pod
is not created, the Job gets a Warning ``FailedCreate`` event ``Error creating: ...`` (counted up when it
repeats, as the event recorder does) and the creation is retried with a growing delay. As a scheduler and
kubelet it places pods with nodes.schedule (taints, affinity, node-local volumes), pulls an image a node does not
have (``pull_s``, ContainerCreating meanwhile), and runs the harness as the pod's user: the claim's directory is
made as its storage class makes volumes (owned by another user) and given the pod's fsGroup only where kubelet
would (nodes.StorageClass), and the harness runs with file permissions that apply to it (mount_claim, run_as).

Scenarios are coroutines ``async def scenario(ctx: Ctx)`` run in the stand-in's event loop; they change the
state directly (not over HTTP), so the request log holds only what the runner sent.
"""

from __future__ import annotations

import asyncio
import copy
import os
import stat
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodes import schedule
from standin import ApiError, LogBuffer, StandIn, now_rfc3339

Scenario = Callable[["Ctx"], Awaitable[None]]
COLLECT_FOR = "mlrepro.io/collect-for"
VOLUME_OWNER = 65534        # who owns a new volume's root, as far as the pod's processes can tell (mount_claim)


@dataclass
class Ctx:
    kubelet: FakeKubelet
    job: dict[str, Any]
    pod: dict[str, Any] | None = None
    failures: int = 0
    pods: list[str] = field(default_factory=list)

    @property
    def state(self):  # noqa: ANN201
        return self.kubelet.standin.state

    @property
    def ns(self) -> str:
        return self.job["metadata"]["namespace"]

    @property
    def name(self) -> str:
        return self.job["metadata"]["name"]

    def alive(self) -> bool:
        return ("batch", "jobs", self.ns, self.name) in self.state.objects

    async def pause(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    # ---- pods -------------------------------------------------------------------------------------------
    async def create_pod(self) -> dict[str, Any] | None:
        """The Job controller's pod creation: retried with a growing delay while admission refuses it (each
        refusal a FailedCreate event on the Job); None when the Job is gone meanwhile."""
        delay = 0.05
        deadline = self.job["spec"].get("activeDeadlineSeconds")
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + deadline if deadline else None
        while self.alive():
            pod = self.new_pod()
            if pod is not None:
                return pod
            if give_up_at is not None and loop.time() >= give_up_at:     # batch/v1: the deadline ends the Job
                self.job_condition("Failed", "DeadlineExceeded", "Job was active longer than specified deadline")
                return None
            await asyncio.sleep(delay if give_up_at is None else min(delay, max(0.0, give_up_at - loop.time())))
            delay = min(delay * 2, 1.0)
        return None

    def new_pod(self) -> dict[str, Any] | None:
        """Create the Job's next pod, or record why admission refused it (None)."""
        tpl = copy.deepcopy(self.job["spec"]["template"])
        meta = tpl.get("metadata") or {}
        uid = self.job["metadata"]["uid"]
        labels = {**(meta.get("labels") or {}), "batch.kubernetes.io/job-name": self.name, "job-name": self.name,
                  "batch.kubernetes.io/controller-uid": uid, "controller-uid": uid}
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": f"{self.name}-{uuid.uuid4().hex[:5]}", "labels": labels,
                            "annotations": meta.get("annotations") or {},
                            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": self.name,
                                                 "uid": uid, "controller": True, "blockOwnerDeletion": True}]},
               "spec": tpl["spec"], "status": {"phase": "Pending"}}
        cause = self.kubelet.standin.refusal("pods", self.ns, pod)
        if cause:
            self.event("Warning", "FailedCreate", f'Error creating: pods "{pod["metadata"]["name"]}" is forbidden: '
                                                  f"{cause}")
            return None
        self.pod = self.state.create("", "pods", self.ns, pod)
        self.pods.append(self.pod["metadata"]["name"])
        self.job_status(active=1)
        return self.pod

    def event(self, type_: str, reason: str, message: str) -> None:
        """An event about the Job, as the controller's event recorder writes it (the same reason and message
        again: the existing event's count goes up)."""
        for (g, p, ns, name), ev in list(self.state.objects.items()):
            if p == "events" and ns == self.ns and ev.get("reason") == reason and ev.get("message") == message \
                    and (ev.get("involvedObject") or {}).get("uid") == self.job["metadata"]["uid"]:
                self.state.patch(g, p, ns, name, {"count": ev.get("count", 1) + 1, "lastTimestamp": now_rfc3339()})
                return
        self.state.create("", "events", self.ns, {
            "metadata": {"name": f"{self.name}.{uuid.uuid4().hex[:16]}"},
            "involvedObject": {"kind": "Job", "apiVersion": "batch/v1", "namespace": self.ns, "name": self.name,
                               "uid": self.job["metadata"]["uid"]},
            "type": type_, "reason": reason, "message": message, "count": 1, "source": {"component": "job-controller"},
            "firstTimestamp": now_rfc3339(), "lastTimestamp": now_rfc3339()})

    async def place(self, node: str | None = None) -> str | None:
        """Schedule the pod (on ``node`` when given, as a pod with nodeName), then pull its image there when the
        node does not have it (``pull_s``; ContainerCreating meanwhile). None: it fits no node (PodScheduled
        False, Unschedulable, with the scheduler's message)."""
        assert self.pod is not None
        name = await self.kubelet.place(self.pod, node)
        if name is not None and ("", "pods", self.ns, self.pod["metadata"]["name"]) in self.state.objects:
            self.pod = self.state.get("", "pods", self.ns, self.pod["metadata"]["name"])
        return name

    def pod_status(self, **status: Any) -> None:
        if self.pod is None or not self.alive():
            return
        key = ("", "pods", self.ns, self.pod["metadata"]["name"])
        if key not in self.state.objects:
            return
        self.pod = self.state.patch("", "pods", self.ns, self.pod["metadata"]["name"], {"status": status})

    def pending_unschedulable(self, message: str) -> None:
        self.pod_status(phase="Pending", conditions=[{"type": "PodScheduled", "status": "False",
                                                      "reason": "Unschedulable", "message": message}])

    def waiting(self, reason: str, message: str) -> None:
        self.pod_status(phase="Pending", conditions=[{"type": "PodScheduled", "status": "True"}],
                        containerStatuses=[{"name": "harness", "ready": False, "restartCount": 0,
                                            "image": self.pod["spec"]["containers"][0]["image"],
                                            "state": {"waiting": {"reason": reason, "message": message}}}])

    def running(self, node: str | None = None) -> LogBuffer:
        assert self.pod is not None
        name = self.pod["metadata"]["name"]
        node = node or self.pod["spec"].get("nodeName") or "node-1"
        self.state.patch("", "pods", self.ns, name, {"spec": {"nodeName": node}})
        buf = self.kubelet.standin.logs.setdefault((self.ns, name), LogBuffer())
        self.pod_status(phase="Running", conditions=[{"type": "PodScheduled", "status": "True"},
                                                     {"type": "Ready", "status": "True"}],
                        containerStatuses=[{"name": "harness", "ready": True, "restartCount": 0,
                                            "state": {"running": {"startedAt": now_rfc3339()}}}])
        return buf

    def log(self, *lines: str) -> None:
        assert self.pod is not None
        buf = self.kubelet.standin.logs.setdefault((self.ns, self.pod["metadata"]["name"]), LogBuffer())
        for line in lines:
            buf.add(line)

    def terminated(self, exit_code: int, reason: str = "", extra: dict[str, Any] | None = None) -> None:
        """The container ended: the pod Succeeded or Failed; the log is complete."""
        assert self.pod is not None
        buf = self.kubelet.standin.logs.setdefault((self.ns, self.pod["metadata"]["name"]), LogBuffer())
        buf.finish()
        # FallbackToLogsOnError: the log's last lines, the one without a newline too
        message = "\n".join(buf.lines[-5:] + ([buf.unterminated] if buf.unterminated else [])) if exit_code != 0 else ""
        terminated = {"exitCode": exit_code, "reason": reason or ("Completed" if exit_code == 0 else "Error"),
                      "message": message, "finishedAt": now_rfc3339()}
        status: dict[str, Any] = {"phase": "Succeeded" if exit_code == 0 else "Failed",
                                  "containerStatuses": [{"name": "harness", "ready": False, "restartCount": 0,
                                                         "state": {"terminated": terminated}}]}
        status.update(extra or {})
        self.pod_status(**status)

    def disrupted(self, reason: str = "PreemptionByScheduler",
                  message: str = "Preempted in order to admit critical pod") -> None:
        self.pod_status(phase="Failed", conditions=[{"type": "DisruptionTarget", "status": "True",
                                                     "reason": reason, "message": message}])

    # ---- the Job ----------------------------------------------------------------------------------------
    def job_status(self, **status: Any) -> None:
        if self.alive():
            self.job = self.state.patch("batch", "jobs", self.ns, self.name, {"status": status})

    def job_condition(self, type_: str, reason: str = "", message: str = "", **counts: Any) -> None:
        conditions = [{"type": type_, "status": "True", "reason": reason, "message": message,
                       "lastTransitionTime": now_rfc3339()}]
        if type_ in ("Failed", "Complete"):
            conditions.insert(0, {"type": "FailureTarget" if type_ == "Failed" else "SuccessCriteriaMet",
                                  "status": "True", "reason": reason, "message": message})
        self.job_status(conditions=conditions, active=0, **counts)

    def run_dir(self) -> Path:
        """``<claim>/<run id>``: where the run's results are on its claim."""
        assert self.pod is not None
        volumes = {v["name"]: v for v in self.pod["spec"].get("volumes", [])}
        claim = volumes["results"]["persistentVolumeClaim"]["claimName"]
        return self.kubelet.standin.claim_dir(self.ns, claim) / self.job["metadata"]["labels"]["mlrepro.io/run-id"]

    # ---- the real harness ---------------------------------------------------------------------------------
    async def run_harness(self, settle_s: float = 0.0) -> int:
        """Run ``mlrepro-harness`` on the ConfigMap's spec into the claim's directory; stream its output as the
        pod's log; return its exit code (or -9 when the Job was deleted meanwhile)."""
        assert self.pod is not None
        spec = self.pod["spec"]
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        cm_name = volumes["config"]["configMap"]["name"]
        claim = volumes["results"]["persistentVolumeClaim"]["claimName"]
        try:
            cm = self.state.get("", "configmaps", self.ns, cm_name)
        except ApiError:
            self.waiting("CreateContainerConfigError", f'configmap "{cm_name}" not found')
            return -1
        results = self.kubelet.mount_claim(self.pod, claim)
        buf = self.running()
        container = spec["containers"][0]
        env = {**os.environ, **{e["name"]: _env_value(e, spec) for e in container.get("env", [])},
               "PYTHONUNBUFFERED": "1"}
        with tempfile.TemporaryDirectory(prefix="kubelet-config-") as config:
            for key, text in (cm.get("data") or {}).items():     # a Service's name resolves as DNS would
                Path(config, key).write_text(self.kubelet.resolve_services(self.ns, text), encoding="utf-8")
            proc = await asyncio.create_subprocess_exec(
                *self.kubelet.run_as(self.pod), sys.executable, "-m", "mlrepro.harness", "--spec",
                str(Path(config, "run.json")), "--results", str(results), stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, env=env)
            self.kubelet.processes.add(proc)
            assert proc.stdout is not None
            async for raw in proc.stdout:
                buf.add(raw.decode("utf-8", "replace").rstrip("\n"))
            code = await proc.wait()
            self.kubelet.processes.discard(proc)
        await asyncio.sleep(settle_s)
        return code if self.alive() else -9


class FakeKubelet:
    """Runs a scenario for every new Job (chosen by ``scenario_for``); schedules and starts collector pods."""

    def __init__(self, standin: StandIn, scenario_for: Callable[[dict[str, Any]], Scenario] | None = None) -> None:
        self.standin = standin
        self.scenario_for = scenario_for or (lambda _job: harness_job)
        self.tasks: set[asyncio.Task[None]] = set()
        self.processes: set[asyncio.subprocess.Process] = set()
        self.collector_delay_s = 0.05
        self.pull_s = 0.2                 # an image pull: a node that lacks the image waits this long first
        self.pulls: list[tuple[str, str]] = []          # (pod, node) of each pull
        self.errors: list[BaseException] = []
        self.started: set[str] = set()
        # model servers (Deployments): their scenario, the loopback port of each ready server pod, their processes
        self.deployment_scenario_for: Callable[[dict[str, Any]], Callable[[ServerCtx], Awaitable[None]]] = \
            lambda _dep: serve_deployment
        self.server_ports: dict[tuple[str, str], int] = {}
        self.server_processes: dict[tuple[str, str], set[asyncio.subprocess.Process]] = {}
        standin.state.listeners.append(self._on_event)

    # ---- scheduler and kubelet ---------------------------------------------------------------------------
    async def place(self, pod: dict[str, Any], node: str | None = None) -> str | None:
        """Bind ``pod`` to a node (``node``, or the scheduler's choice) and pull its image there; None when no
        node fits (the pod is left Pending, Unschedulable, with the scheduler's message)."""
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        if node is None:
            placed = schedule(pod, self.standin.nodes, self.standin.claim_nodes)
            if placed.node is None:
                self._patch(ns, name, {"status": {"phase": "Pending", "conditions": [{
                    "type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": placed.message}]}})
                return None
            node = placed.node.name
        self._patch(ns, name, {"spec": {"nodeName": node}, "status": {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "True"}]}})
        for volume in pod["spec"].get("volumes", []):               # a node-local volume stays on its first node
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if claim and self.standin.storage_class(ns, claim)[0].node_local:
                self.standin.claim_nodes.setdefault(claim, node)
        image = pod["spec"]["containers"][0]["image"]
        known = self.standin.node(node)
        if known is not None and image not in known.images:
            self.pulls.append((name, node))
            self._patch(ns, name, {"status": {"containerStatuses": [{
                "name": pod["spec"]["containers"][0]["name"], "ready": False, "restartCount": 0, "image": image,
                "state": {"waiting": {"reason": "ContainerCreating"}}}]}})
            await asyncio.sleep(self.pull_s)
            known.images.add(image)
        return node

    def _patch(self, ns: str, name: str, patch: dict[str, Any]) -> None:
        if ("", "pods", ns, name) in self.standin.state.objects:
            self.standin.state.patch("", "pods", ns, name, patch)

    def mount_claim(self, pod: dict[str, Any], claim: str) -> Path:
        """The claim's directory as the pod sees it: made when new as its storage class makes volumes (owned by
        another user than the pod's, the class's mode), then given the pod's fsGroup when the class's volumes take
        it (kubelet: chgrp to fsGroup, setgid, g+rwx; kubernetes.io "Configure a Security Context").

        The pod's user cannot be this process's uid (as root: the interpreter lives under /root, which no other
        uid may enter), so "another user" is uid 65534 where this process is root (the harness then runs as root
        without the capabilities that ignore file permissions: run_as), and a mode without owner write where it
        is not."""
        ns = pod["metadata"]["namespace"]
        klass, access_mode = self.standin.storage_class(ns, claim)
        root = self.standin.claim_dir(ns, claim)
        as_root = os.geteuid() == 0
        if not root.exists():
            root.mkdir(parents=True)
            if as_root:
                os.chown(root, VOLUME_OWNER, VOLUME_OWNER)
            os.chmod(root, klass.mode if as_root or klass.mode & 0o002 else klass.mode & ~0o200)
        group = (pod["spec"].get("securityContext") or {}).get("fsGroup")
        if group is not None and klass.fs_group_applies(access_mode):
            for path in [root, *root.rglob("*")] if as_root else [root]:
                if as_root:
                    os.lchown(path, -1, group)
                if path.is_dir() and not path.is_symlink():
                    os.chmod(path, stat.S_IMODE(os.lstat(path).st_mode) | 0o2070 | (0 if as_root else 0o200))
        return root

    @staticmethod
    def run_as(pod: dict[str, Any]) -> list[str]:
        """The command prefix that runs a process as the pod's user would be, as far as permissions go: as root,
        without CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and CAP_FOWNER (util-linux setpriv) and with the pod's
        fsGroup as a supplementary group; otherwise as this user (nothing to add)."""
        if os.geteuid() != 0:
            return []
        ctx = pod["spec"].get("securityContext") or {}
        groups = [str(g) for g in (ctx.get("runAsGroup"), ctx.get("fsGroup"), *(ctx.get("supplementalGroups") or []))
                  if g is not None]
        return ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner",
                f"--groups={','.join(groups) or '0'}", "--"]

    def resolve_services(self, ns: str, text: str) -> str:
        """Cluster DNS and kube-proxy, as far as a client run needs them: ``http://<service>:<port>`` of a Service
        in ``ns`` becomes the loopback address of a ready pod its selector matches (a model server this kubelet
        runs). Text without such a URL is returned as it is."""
        for (g, p, n, name), svc in list(self.standin.state.objects.items()):
            if p != "services" or n != ns:
                continue
            selector = (svc.get("spec") or {}).get("selector") or {}
            for port in (svc.get("spec") or {}).get("ports") or []:
                needle = f"http://{name}:{port['port']}"
                if needle not in text:
                    continue
                for (pg, pp, pn, pod_name), pod in list(self.standin.state.objects.items()):
                    labels = (pod.get("metadata") or {}).get("labels") or {}
                    if pp == "pods" and pn == ns and all(labels.get(k) == v for k, v in selector.items()) \
                            and (ns, pod_name) in self.server_ports:
                        text = text.replace(needle, f"http://127.0.0.1:{self.server_ports[(ns, pod_name)]}")
                        break
        return text

    def _on_event(self, group: str, plural: str, type_: str, obj: dict[str, Any]) -> None:
        if plural == "deployments":
            key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
            if type_ == "ADDED":
                self._spawn(self.deployment_scenario_for(obj)(ServerCtx(self, obj)))
            elif type_ == "DELETED":
                for proc in self.server_processes.pop(key, set()):
                    if proc.returncode is None:
                        proc.terminate()
            return
        if plural == "jobs" and type_ in ("ADDED", "MODIFIED"):
            uid = obj["metadata"]["uid"]
            if not (obj.get("spec") or {}).get("suspend") and uid not in self.started:   # a suspended Job waits
                self.started.add(uid)
                self._spawn(self._run_job(obj))
            return
        if type_ != "ADDED":
            if plural == "jobs" and type_ == "DELETED":
                for proc in list(self.processes):
                    if proc.returncode is None:
                        proc.kill()
            return
        elif plural == "pods" and COLLECT_FOR in ((obj.get("metadata") or {}).get("labels") or {}):
            self._spawn(self._start_collector(obj))

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.errors.append(task.exception())  # type: ignore[arg-type]

    async def _run_job(self, job: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        await self.scenario_for(job)(Ctx(self, job))

    async def _start_collector(self, pod: dict[str, Any]) -> None:
        await asyncio.sleep(self.collector_delay_s)
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        if ("", "pods", ns, name) not in self.standin.state.objects:
            return
        if await self.place(pod) is not None:
            self._patch(ns, name, {"status": {"phase": "Running", "conditions": [
                {"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "collect", "ready": True, "restartCount": 0,
                                       "state": {"running": {"startedAt": now_rfc3339()}}}]}})


# ---- scenarios ------------------------------------------------------------------------------------------
async def harness_job(ctx: Ctx, node: str | None = None,
                      after: Callable[[Ctx, Path], Awaitable[None]] | None = None) -> None:
    """batch/v1 behaviour around the real harness: exit 3 fails the Job at once (podFailurePolicy), other
    failures are retried up to backoffLimit, success completes it. ``node``: where its pods run (as if the
    scheduler chose it); ``after``: called with the run's directory on the claim once the harness succeeded,
    before the pod ends."""
    limit = ctx.job["spec"].get("backoffLimit", 6)
    while ctx.alive():
        if await ctx.create_pod() is None:
            return                                   # the Job went while admission refused its pod
        if await ctx.place(node) is None:
            return                                   # unschedulable: the runner gives up on it
        code = await ctx.run_harness()
        if code == 0 and after is not None:
            await after(ctx, ctx.run_dir())
        if code == -9 or not ctx.alive():
            return
        if code == -1:
            return  # stuck: CreateContainerConfigError
        ctx.terminated(code)
        if code == 0:
            ctx.job_condition("Complete", succeeded=1)
            return
        ctx.failures += 1
        if code == 3:
            ctx.job_condition("Failed", "PodFailurePolicy", "Container harness for pod exited with code 3 "
                              "matching FailJob rule at index 1", failed=ctx.failures)
            return
        if ctx.failures > limit:
            ctx.job_condition("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit",
                              failed=ctx.failures)
            return


def harness_on(node: str) -> Scenario:
    """The real harness, its pods on ``node`` (the scheduler's choice at that time)."""

    async def scenario(ctx: Ctx) -> None:
        await harness_job(ctx, node=node)

    return scenario


def harness_then_big_file(rel: str, size: int) -> Scenario:
    """The real harness; then ``rel`` (a sparse file of ``size`` bytes: no disk, zeros to read) is added to its
    results and the checksum manifest written again, as a run with a GiB trace or accuracy log leaves them."""

    async def add(ctx: Ctx, run_dir: Path) -> None:
        from mlrepro.harness.checksums import write_manifest

        path = run_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            f.truncate(size)
        await asyncio.get_running_loop().run_in_executor(None, write_manifest, run_dir)

    async def scenario(ctx: Ctx) -> None:
        await harness_job(ctx, after=add)

    return scenario


def evicted_then_harness(ctx_message: str = "Preempted in order to admit critical pod") -> Scenario:
    """The first pod is preempted while running (DisruptionTarget: ignored by the podFailurePolicy); the Job
    makes a new pod, which runs the real harness."""

    async def scenario(ctx: Ctx) -> None:
        ctx.new_pod()
        buf = ctx.running("node-7")
        buf.add("harness: starting (this attempt will be preempted)")
        await ctx.pause(0.1)
        buf.finish()
        ctx.disrupted(message=ctx_message)
        await ctx.pause(0.05)
        await harness_job(ctx)

    return scenario


def stuck(kind: str, message: str) -> Scenario:
    """A pod that never starts: ``kind`` is "unschedulable" or a container waiting reason (ErrImagePull...)."""

    async def scenario(ctx: Ctx) -> None:
        ctx.new_pod()
        await ctx.pause(0.05)
        if kind == "unschedulable":
            ctx.pending_unschedulable(message)
        else:
            ctx.waiting(kind, message)

    return scenario


def deadline_exceeded(after_s: float = 0.3) -> Scenario:
    async def scenario(ctx: Ctx) -> None:
        ctx.new_pod()
        buf = ctx.running()
        buf.add("harness: Server scenario, 120 s")
        await ctx.pause(after_s)
        buf.finish()
        deadline = ctx.job["spec"].get("activeDeadlineSeconds")
        ctx.disrupted("DeadlineExceeded", "Pod was active on the node longer than the specified deadline")
        ctx.job_condition("Failed", "DeadlineExceeded", f"Job was active longer than specified deadline "
                                                        f"({deadline} s)", failed=1)

    return scenario


def oom_killed() -> Scenario:
    async def scenario(ctx: Ctx) -> None:
        ctx.new_pod()
        ctx.running()
        ctx.log("harness: loading the model", "harness: Offline, 4 threads")
        await ctx.pause(0.1)
        ctx.terminated(137, "OOMKilled")
        ctx.job_condition("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit",
                          failed=1)

    return scenario


def exits(code: int, *lines: str, unterminated: str = "") -> Scenario:
    """The container prints ``lines`` (then ``unterminated``, with no newline after it) and exits with ``code``
    (no retries left)."""

    async def scenario(ctx: Ctx) -> None:
        ctx.new_pod()
        buf = ctx.running()
        ctx.log(*lines)
        if unterminated:
            buf.write_unterminated(unterminated)
        await ctx.pause(0.05)
        ctx.terminated(code)
        reason = "PodFailurePolicy" if code == 3 else "BackoffLimitExceeded"
        ctx.job_condition("Failed", reason, f"exit code {code}", failed=1)

    return scenario


def runs_until_deleted(*lines: str) -> Scenario:
    """Runs (printing ``lines``) until the Job is deleted."""

    async def scenario(ctx: Ctx) -> None:
        ctx.new_pod()
        ctx.running()
        ctx.log(*lines)
        while ctx.alive():
            await ctx.pause(0.05)

    return scenario


def instant_success(files: dict[str, bytes] | None = None) -> Scenario:
    """No harness: the pod succeeds at once, after writing ``files`` (+ checksums) into the claim (benchmark)."""

    async def scenario(ctx: Ctx) -> None:
        from mlrepro.harness.checksums import write_manifest

        pod = ctx.new_pod()
        volumes = {v["name"]: v for v in pod["spec"].get("volumes", [])}
        claim = volumes["results"]["persistentVolumeClaim"]["claimName"]
        run_id = ctx.job["metadata"]["labels"]["mlrepro.io/run-id"]
        if files is not None:
            run_dir = ctx.kubelet.standin.claim_dir(ctx.ns, claim) / run_id
            run_dir.mkdir(parents=True, exist_ok=True)
            for rel, data in files.items():
                (run_dir / rel).write_bytes(data)
            write_manifest(run_dir)
        ctx.running()
        ctx.log("harness: done")
        await ctx.pause(0)
        ctx.terminated(0)
        ctx.job_condition("Complete", succeeded=1)

    return scenario


def from_template(template: Path) -> Scenario:
    """No harness: the pod succeeds at once with a copy of a real harness run (``template``) as its results, the
    run id rewritten and the checksums recomputed (the benchmark's 1,000-item sweeps)."""
    import hashlib
    import json

    from mlrepro.harness.checksums import read_manifest

    files = {rel: (template / rel).read_bytes() for rel in read_manifest(template / "checksums.sha256")}

    async def scenario(ctx: Ctx) -> None:
        pod = ctx.new_pod()
        volumes = {v["name"]: v for v in pod["spec"].get("volumes", [])}
        claim = volumes["results"]["persistentVolumeClaim"]["claimName"]
        run_id = ctx.job["metadata"]["labels"]["mlrepro.io/run-id"]
        out = dict(files)
        for name in ("record.json", "run.json"):
            doc = json.loads(out[name])
            doc["run_id"] = run_id
            out[name] = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
        run_dir = ctx.kubelet.standin.claim_dir(ctx.ns, claim) / run_id
        manifest = []
        for rel in sorted(out):
            path = run_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(out[rel])
            manifest.append(f"{hashlib.sha256(out[rel]).hexdigest()}  {rel}\n")
        (run_dir / "checksums.sha256").write_text("".join(manifest))
        ctx.running()
        ctx.log("mlrepro-harness: (results from a template run)", "mlrepro-harness: VALID")
        await ctx.pause(0)
        ctx.terminated(0)
        ctx.job_condition("Complete", succeeded=1)

    return scenario


def _env_value(entry: dict, pod_spec: dict) -> str:
    """An env entry as the kubelet gives it: a literal (``$$`` -> ``$``) or, from the downward API, the node."""
    if "value" in entry:
        return str(entry["value"]).replace("$$", "$")
    path = ((entry.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
    if path == "spec.nodeName":
        return str(pod_spec.get("nodeName") or "standin-node")
    raise AssertionError(f"the stand-in kubelet does not serve {entry}")


# ---- model servers: the Deployment controller and the kubelet of its pod ---------------------------------------
@dataclass
class ServerCtx:
    """A model server's Deployment as its controller and its pod's kubelet see it. The pod is created from the
    template with an ownerReference to the Deployment (a real controller goes through a ReplicaSet; a delete with
    propagation Background removes the pod either way), through the namespace's admission (Pod Security
    "restricted"), and placed by the scheduler (taints, GPUs)."""

    kubelet: FakeKubelet
    deployment: dict[str, Any]
    pod: dict[str, Any] | None = None
    restarts: int = 0

    @property
    def state(self):  # noqa: ANN201
        return self.kubelet.standin.state

    @property
    def ns(self) -> str:
        return self.deployment["metadata"]["namespace"]

    @property
    def name(self) -> str:
        return self.deployment["metadata"]["name"]

    def alive(self) -> bool:
        return ("apps", "deployments", self.ns, self.name) in self.state.objects

    def new_pod(self) -> dict[str, Any]:
        tpl = copy.deepcopy(self.deployment["spec"]["template"])
        meta = tpl.get("metadata") or {}
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": f"{self.name}-{uuid.uuid4().hex[:10]}", "labels": meta.get("labels") or {},
                            "annotations": meta.get("annotations") or {},
                            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": self.name,
                                                 "uid": self.deployment["metadata"]["uid"], "controller": True,
                                                 "blockOwnerDeletion": True}]},
               "spec": {**tpl["spec"], "restartPolicy": "Always"}, "status": {"phase": "Pending"}}
        cause = self.kubelet.standin.refusal("pods", self.ns, pod)
        assert cause is None, f"the model server's pod was refused: {cause}"
        self.pod = self.state.create("", "pods", self.ns, pod)
        return self.pod

    @property
    def pod_name(self) -> str:
        assert self.pod is not None
        return self.pod["metadata"]["name"]

    def log(self) -> LogBuffer:
        return self.kubelet.standin.logs.setdefault((self.ns, self.pod_name), LogBuffer())

    def status(self, **status: Any) -> None:
        if self.pod is not None and ("", "pods", self.ns, self.pod_name) in self.state.objects:
            self.pod = self.state.patch("", "pods", self.ns, self.pod_name, {"status": status})

    def container(self, state: dict[str, Any], ready: bool = False, last: dict[str, Any] | None = None) -> None:
        cs = {"name": "server", "ready": ready, "restartCount": self.restarts, "state": state,
              "image": self.deployment["spec"]["template"]["spec"]["containers"][0]["image"]}
        if last is not None:
            cs["lastState"] = {"terminated": last}
        conditions = [{"type": "PodScheduled", "status": "True"},
                      {"type": "Ready", "status": "True" if ready else "False"}]
        phase = "Running" if "running" in state else "Pending"
        self.status(phase=phase, conditions=conditions, containerStatuses=[cs])

    async def start_server(self) -> tuple[asyncio.subprocess.Process, int]:
        """``mlrepro-serve`` with the container's arguments, listening on a free loopback port instead of the
        pod's address; its output is the pod's log."""
        container = self.deployment["spec"]["template"]["spec"]["containers"][0]
        args = list(container.get("args") or [])
        port = _free_port()
        args[args.index("--host") + 1] = "127.0.0.1"
        args[args.index("--port") + 1] = str(port)
        env = {**os.environ, **{e["name"]: _env_value(e, self.pod["spec"] if self.pod else {})
                                for e in container.get("env", []) if e["name"] not in ("HOME", "HF_HOME",
                                                                                      "XDG_CACHE_HOME")},
               "PYTHONUNBUFFERED": "1"}
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "mlrepro.harness.serve", *args,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                                                    env=env, start_new_session=True)
        self.kubelet.server_processes.setdefault((self.ns, self.name), set()).add(proc)
        return proc, port

    async def follow(self, proc: asyncio.subprocess.Process) -> None:
        buf = self.log()
        assert proc.stdout is not None
        async for raw in proc.stdout:
            buf.add(raw.decode("utf-8", "replace").rstrip("\n"))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _healthy(port: int, path: str) -> bool:
    import urllib.request

    def get() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:  # noqa: S310 - loopback
                return bool(r.status == 200)
        except OSError:
            return False

    return await asyncio.get_running_loop().run_in_executor(None, get)


async def serve_deployment(ctx: ServerCtx) -> None:
    """The real server: ``mlrepro-serve`` (the engine of the Deployment's arguments, e.g. ``transformers serve`` on
    the SmolLM2 GGUF) as the pod's container; Ready once its readiness probe's path answers 200; stopped when the
    Deployment is deleted."""
    ctx.new_pod()
    if await ctx.kubelet.place(ctx.pod) is None:   # type: ignore[arg-type]
        return
    proc, port = await ctx.start_server()
    ctx.container({"running": {"startedAt": now_rfc3339()}})
    follower = asyncio.get_running_loop().create_task(ctx.follow(proc))
    probe = ctx.deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"]
    try:
        while ctx.alive() and proc.returncode is None:
            if await _healthy(port, probe):
                ctx.kubelet.server_ports[(ctx.ns, ctx.pod_name)] = port
                ctx.container({"running": {"startedAt": now_rfc3339()}}, ready=True)
                break
            await asyncio.sleep(0.5)
        while ctx.alive() and proc.returncode is None:
            await asyncio.sleep(0.2)
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
        await follower
        ctx.log().finish()
        ctx.kubelet.server_ports.pop((ctx.ns, ctx.pod_name), None)


async def crashing_server(ctx: ServerCtx) -> None:
    """The real ``mlrepro-serve`` with the Deployment's arguments, which exits at once (e.g. a model it cannot
    resolve): the kubelet restarts it once, then backs off (CrashLoopBackOff, the last exit in lastState)."""
    ctx.new_pod()
    if await ctx.kubelet.place(ctx.pod) is None:   # type: ignore[arg-type]
        return
    for attempt in range(2):
        if not ctx.alive():
            return
        proc, _ = await ctx.start_server()
        ctx.container({"running": {"startedAt": now_rfc3339()}})
        await ctx.follow(proc)
        code = await proc.wait()
        last = {"exitCode": code, "reason": "Error", "finishedAt": now_rfc3339()}
        ctx.restarts = attempt + 1
        ctx.container({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s restarting failed "
                                                                            "container"}}, last=last)
        await asyncio.sleep(0.1)


def stuck_server(kind: str, message: str) -> Callable[[ServerCtx], Awaitable[None]]:
    """A server pod that never starts: ``unschedulable`` (the scheduler's message), or a waiting reason
    (ErrImagePull, ImagePullBackOff, InvalidImageName) with ``message``."""

    async def scenario(ctx: ServerCtx) -> None:
        ctx.new_pod()
        await asyncio.sleep(0.05)
        if kind == "unschedulable":
            if await ctx.kubelet.place(ctx.pod) is not None:        # type: ignore[arg-type]
                raise AssertionError("the server pod was expected not to fit any node")
            return
        ctx.container({"waiting": {"reason": kind, "message": message}})

    return scenario


def oom_killed_server() -> Callable[[ServerCtx], Awaitable[None]]:
    """The server starts loading its model and is killed by the kernel for memory (exit 137, OOMKilled)."""

    async def scenario(ctx: ServerCtx) -> None:
        ctx.new_pod()
        await ctx.kubelet.place(ctx.pod)                   # type: ignore[arg-type]
        ctx.container({"running": {"startedAt": now_rfc3339()}})
        ctx.log().add("mlrepro-serve: loading the model")
        await asyncio.sleep(0.1)
        ctx.restarts = 1
        ctx.container({"running": {"startedAt": now_rfc3339()}},
                      last={"exitCode": 137, "reason": "OOMKilled", "finishedAt": now_rfc3339()})

    return scenario
