"""The test plays Job controller and kubelet: for each Job created in the stand-in it runs a scenario that
creates the Job's pod (with an ownerReference, the controller's labels), moves it through its phases, sets
conditions and exit codes, serves its log, and ends the Job with the conditions a real controller sets.

The default scenario runs the real harness (``python -m mlrepro.harness``, real LoadGen) on the run spec the
runner put in the ConfigMap, writing into the claim's directory, streaming its output as the pod's log, and
ending the pod with the harness's exit code; the Job then follows its podFailurePolicy (exit 3: FailJob) and
backoffLimit as batch/v1 does. Other scenarios (builders below) produce each diagnosis.

Scenarios are coroutines ``async def scenario(ctx: Ctx)`` run in the stand-in's event loop; they change the
state directly (not over HTTP), so the request log holds only what the runner sent.
"""

from __future__ import annotations

import asyncio
import copy
import os
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from standin import ApiError, LogBuffer, StandIn, now_rfc3339

Scenario = Callable[["Ctx"], Awaitable[None]]
COLLECT_FOR = "mlrepro.io/collect-for"


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
    def new_pod(self) -> dict[str, Any]:
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
        self.pod = self.state.create("", "pods", self.ns, pod)
        self.pods.append(self.pod["metadata"]["name"])
        self.job_status(active=1)
        return self.pod

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

    def running(self, node: str = "node-1") -> LogBuffer:
        assert self.pod is not None
        name = self.pod["metadata"]["name"]
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
        message = "\n".join(buf.lines[-5:]) if exit_code != 0 else ""
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
        results = self.kubelet.standin.claim_dir(self.ns, claim)
        results.mkdir(parents=True, exist_ok=True)
        buf = self.running()
        container = spec["containers"][0]
        env = {**os.environ, **{e["name"]: _env_value(e, spec) for e in container.get("env", [])},
               "PYTHONUNBUFFERED": "1"}
        with tempfile.TemporaryDirectory(prefix="kubelet-config-") as config:
            for key, text in (cm.get("data") or {}).items():
                Path(config, key).write_text(text, encoding="utf-8")
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "mlrepro.harness", "--spec", str(Path(config, "run.json")), "--results",
                str(results), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env)
            self.kubelet.processes.add(proc)
            assert proc.stdout is not None
            async for raw in proc.stdout:
                buf.add(raw.decode("utf-8", "replace").rstrip("\n"))
            code = await proc.wait()
            self.kubelet.processes.discard(proc)
        await asyncio.sleep(settle_s)
        return code if self.alive() else -9


class FakeKubelet:
    """Runs a scenario for every new Job (chosen by ``scenario_for``); starts collector pods at once."""

    def __init__(self, standin: StandIn, scenario_for: Callable[[dict[str, Any]], Scenario] | None = None) -> None:
        self.standin = standin
        self.scenario_for = scenario_for or (lambda _job: harness_job)
        self.tasks: set[asyncio.Task[None]] = set()
        self.processes: set[asyncio.subprocess.Process] = set()
        self.collector_delay_s = 0.05
        self.errors: list[BaseException] = []
        self.started: set[str] = set()
        standin.state.listeners.append(self._on_event)

    def _on_event(self, group: str, plural: str, type_: str, obj: dict[str, Any]) -> None:
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
        if ("", "pods", ns, name) in self.standin.state.objects:
            self.standin.state.patch("", "pods", ns, name, {"spec": {"nodeName": "node-1"},
                                                            "status": {"phase": "Running"}})


# ---- scenarios ------------------------------------------------------------------------------------------
async def harness_job(ctx: Ctx) -> None:
    """batch/v1 behaviour around the real harness: exit 3 fails the Job at once (podFailurePolicy), other
    failures are retried up to backoffLimit, success completes it."""
    limit = ctx.job["spec"].get("backoffLimit", 6)
    while ctx.alive():
        ctx.new_pod()
        await ctx.pause(0.05)
        code = await ctx.run_harness()
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


def exits(code: int, *lines: str) -> Scenario:
    """The container prints ``lines`` and exits with ``code`` (no retries left)."""

    async def scenario(ctx: Ctx) -> None:
        ctx.new_pod()
        ctx.running()
        ctx.log(*lines)
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
