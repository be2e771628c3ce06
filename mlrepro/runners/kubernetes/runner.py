"""Kubernetes target: each run is a Job (with its ConfigMap and results claim) applied to a cluster, followed
through the Watch API, diagnosed when it does not end well, and collected from its claim.

    prepare   the image by digest: the recorded push, or build + push with --registry (images.py)
    launch    server-side apply of ConfigMap, PersistentVolumeClaim, [ResourceClaimTemplate], Job: the same
              objects as `mlrepro generate` (render_manifests of the run's JobSpec); idempotent
    wait      the Job's and its pods' events from the shared watchers (watch.py): phase changes as they
              happen, and the outcome with its diagnosis (diagnose.py, tracker.py); a Job that makes no pod
              for the pending timeout: its FailedCreate events say why (admission.py)
    logs      the pod's log (follow: streamed while it runs, across retries; re-opened when it goes quiet)
    fetch     through a helper pod that mounts the claim on the run's node, with the run's tolerations
              (collect.py)
    cancel    delete the Job with propagation Background (its pods go too), its ConfigMap and claim template
    cleanup   the ConfigMap and claim template of an ended run (the Job goes by its TTL; the claim stays)
    attach    a recorded run: its namespace and context come from its results location

A run with a model server (``job.server``): ``start_server`` applies its Deployment and Service (and the claim
template of a DRA server), ``wait_server`` follows its pod (the same pod watch, routed by ``mlrepro.io/server-for``)
until it is Ready -- or says why not as a Job's pod would be diagnosed (unschedulable, image pull, out of memory)
and a server's can also fail (CrashLoopBackOff, with the last lines of its log) -- and ``stop_server`` saves its
log, then deletes the Deployment (its pods go too), the Service and the claim template.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlrepro.errors import BadInputError
from mlrepro.runners.base import (
    Progress,
    RunHandle,
    RunnerConfig,
    RunOutcome,
    RunStatus,
    ServerHandle,
    ServerNotReady,
    no_progress,
)
from mlrepro.runners.kubernetes.api import Cluster, LogReadTimeout, split_timestamp
from mlrepro.runners.kubernetes.config import connect
from mlrepro.runners.kubernetes.diagnose import PodState, job_finished, pod_state, server_pod_state
from mlrepro.runners.kubernetes.errors import KubernetesError
from mlrepro.runners.kubernetes.tracker import RunTracker, Step
from mlrepro.runners.kubernetes.watch import RUN_ID_LABEL, Event, Monitor
from mlrepro.runners.locations import Pvc, format_location, parse_location
from mlrepro.state.paths import RunPaths

if TYPE_CHECKING:  # pragma: no cover
    from mlrepro.profiles.loader import ResolvedProfile
    from mlrepro.render.jobspec import JobSpec
    from mlrepro.results.rundir import HarnessRun
    from mlrepro.runners.kubernetes.collect import Placement
    from mlrepro.state.store import RunRecord

BACKSTOP_GRACE_S = 300       # after the Job's activeDeadlineSeconds, stop waiting for the controller to say so
SUBMIT_THREADS = 8           # concurrent API requests while a sweep is submitted
LOG_REOPEN_DELAY_S = (0.5, 10.0)   # a followed log that ended with nothing new, its pod still running: first, last delay


@dataclass(frozen=True)
class _Launched:
    job_name: str
    deadline_s: int
    uid: int
    arch: str
    has_claim_template: bool
    tolerations: tuple[dict[str, Any], ...] = ()


class KubernetesRunner:
    target = "kubernetes"

    def __init__(self, config: RunnerConfig, cluster: Cluster | None = None) -> None:
        self.config = config
        self.cluster = cluster or Cluster(connect(config.kube))
        self.namespace = self.cluster.namespace
        self.context = self.cluster.connection.context
        self.monitor = Monitor(self.cluster)
        self._launched: dict[str, _Launched] = {}
        self._submitted: dict[str, list[tuple[str, str]]] = {}   # run id -> (kind, name) queued by submit()
        self._subscriptions: dict[str, queue.SimpleQueue[Event]] = {}
        self._lock = threading.Lock()
        self._server_version: str | None = None
        self._nodes: dict[str, str] = {}            # run id -> the node its last counted pod ran on

    # ---- prepare / check --------------------------------------------------------------------------------
    def prepare(self, resolved: ResolvedProfile, progress: Progress = no_progress) -> str:
        if self.config.image:
            return self.config.image
        from mlrepro.runners.kubernetes.images import cluster_image

        return cluster_image(resolved, self.config.registry, progress)

    def check(self, job: JobSpec) -> None:
        """Reject a job this cluster cannot run (DRA below Kubernetes 1.34, a model on a hostPath) before anything
        is created."""
        if job.server is not None:
            from mlrepro.render.serverspec import check_kubernetes_server

            check_kubernetes_server(job.server)
        if job.pod.device_claim is None and (job.server is None or job.server.device_claim is None):
            return
        from mlrepro.render.compat import check_kubernetes_version

        if self._server_version is None:
            self._server_version = self.cluster.server_version()
        check_kubernetes_version(job.pod, self._server_version,
                                 where=f"the cluster's version ({self.connection_name})",
                                 dra=job.pod.device_claim is not None or
                                 (job.server is not None and job.server.device_claim is not None))

    @property
    def connection_name(self) -> str:
        return self.context or self.cluster.connection.host

    # ---- launch -----------------------------------------------------------------------------------------
    def _paths(self, run_id: str) -> RunPaths:
        return RunPaths.of(self.config.state_dir, run_id)

    def submit(self, jobs: Sequence[JobSpec]) -> None:
        """Every run of a sweep onto the cluster at once, its Job suspended (no pod until :meth:`launch`
        resumes it): the whole sweep is visible with kubectl, and only ``--parallel`` run at a time.
        On failure or Ctrl-C what was created is deleted again."""
        from concurrent.futures import ThreadPoolExecutor

        from mlrepro.render.manifests import render_manifests

        def one(job: JobSpec) -> None:
            objects = render_manifests(job, suspend=True, server=False)
            with self._lock:                         # recorded first: a failure half-way withdraws what exists
                self._submitted[job.run_id] = [(o["kind"], o["metadata"]["name"]) for o in reversed(objects)]
            for obj in objects:
                self.cluster.apply(obj)

        try:
            with ThreadPoolExecutor(SUBMIT_THREADS, thread_name_prefix="mlrepro-submit") as pool:
                list(pool.map(one, jobs))
        except BaseException:
            self._withdraw_unstarted()
            raise

    def _withdraw_unstarted(self) -> None:
        """Delete every object of submitted runs that never started (their claims hold nothing yet)."""
        with self._lock:
            queued = [(run_id, objs) for run_id, objs in self._submitted.items() if run_id not in self._launched]
        for run_id, objs in queued:
            for kind, name in objs:
                try:
                    self.cluster.delete(kind, name, propagation="Background")
                except KubernetesError:
                    pass
            with self._lock:
                self._submitted.pop(run_id, None)

    def launch(self, job: JobSpec) -> RunHandle:
        from mlrepro.render.manifests import job as job_object
        from mlrepro.render.manifests import render_manifests

        run_id = job.run_id
        with self._lock:
            if run_id not in self._subscriptions:   # before the Job exists: no event can be missed
                self._subscriptions[run_id] = self.monitor.subscribe(run_id)
        if run_id in self._submitted:               # queued by submit(): resume it
            resumed = job_object(job)
            resumed["spec"]["suspend"] = False
            objects = [resumed]
        else:
            objects = render_manifests(job, server=False)    # the model server: start_server
        try:
            for obj in objects:                     # the Job last: its pod needs the others
                self.cluster.apply(obj)
        except BaseException:
            self._unsubscribe(run_id)
            raise
        pod = job.pod
        self._launched[run_id] = _Launched(job_name=job.name, deadline_s=job.policy.deadline_seconds,
                                           uid=pod.security.uid, arch=pod.platform.split("/", 1)[1],
                                           has_claim_template=pod.device_claim is not None,
                                           tolerations=tuple(t.to_k8s() for t in pod.scheduling.tolerations))
        return RunHandle(run_id=run_id, target=self.target, ref=f"{self.namespace}/{job.name}",
                         results=Pvc(claim=pod.results_volume.source.claim_name,  # type: ignore[union-attr]
                                     namespace=self.namespace, context=self.context),
                         log_path=self._paths(run_id).log, image=job.image)

    def _unsubscribe(self, run_id: str) -> None:
        with self._lock:
            q = self._subscriptions.pop(run_id, None)
        if q is not None:
            self.monitor.unsubscribe(run_id, q)

    @staticmethod
    def _job_name(handle: RunHandle) -> str:
        return handle.ref.split("/", 1)[1] if "/" in handle.ref else handle.ref

    # ---- wait -------------------------------------------------------------------------------------------
    def wait(self, handle: RunHandle, progress: Progress = no_progress) -> RunOutcome:
        run_id, name = handle.run_id, self._job_name(handle)
        launched = self._launched.get(run_id)
        with self._lock:
            q = self._subscriptions.get(run_id)
            attached = q is None
            if q is None:
                q = self._subscriptions[run_id] = self.monitor.subscribe(run_id)
        deadline = launched.deadline_s if launched else None
        tracker = RunTracker(run_id, name, self.config.pending_timeout_s,
                             deadline + BACKSTOP_GRACE_S if deadline else None, time.monotonic())
        try:
            step = self._seed(tracker) if attached else Step()
            while step.outcome is None:
                for message in step.messages:
                    progress(message)
                if step.refresh_pods:
                    step = tracker.set_pods(self._pods(run_id), time.monotonic())
                    continue
                if step.read_events:
                    events, unreadable = self._job_events(tracker)
                    step = tracker.on_events(events, time.monotonic(), unreadable)
                    continue
                timeout = tracker.next_timer(time.monotonic())
                try:
                    event = q.get(timeout=timeout)
                except queue.Empty:
                    step = tracker.on_timer(time.monotonic())
                else:
                    step = tracker.on_event(event, time.monotonic())
            for message in step.messages:
                progress(message)
            outcome = step.outcome
            if not (tracker.job is not None and job_finished(tracker.job)) and outcome.status != RunStatus.cancelled:
                self._delete_run_objects(handle)    # given up on (stuck, backstop): do not leave it pending
        finally:
            self._unsubscribe(run_id)
        last = _last_counted(tracker.pods.values())
        if last is not None and last.node:
            self._nodes[run_id] = last.node
        self._save_log(handle, tracker)
        return outcome

    def _job_events(self, tracker: RunTracker) -> tuple[list[dict[str, Any]], str]:
        """The Job's events (for its FailedCreate), and why they could not be read ("" when they could: a Role
        from before events list was granted lets the run wait on, saying so)."""
        uid = ((tracker.job or {}).get("metadata") or {}).get("uid") or ""
        try:
            return self.cluster.events_of("Job", tracker.job_name, uid), ""
        except KubernetesError as exc:
            return [], str(exc)

    def _seed(self, tracker: RunTracker) -> Step:
        """An attached run (not launched by this process): start from the Job's and pods' current state."""
        job = self.cluster.get("Job", tracker.job_name)
        if job is None:
            return Step(outcome=RunOutcome(RunStatus.cancelled, None, f"Job {tracker.job_name} no longer exists"))
        tracker.job, tracker.job_seen = job, True
        step = tracker.set_pods(self._pods(tracker.run_id), time.monotonic())
        if not job_finished(job):
            step.outcome = None
        return step

    def _pods(self, run_id: str) -> list[dict[str, Any]]:
        items, _ = self.cluster.list("Pod", f"{RUN_ID_LABEL}={run_id}")
        return items

    def _save_log(self, handle: RunHandle, tracker: RunTracker) -> None:
        """Keep the output of the run's last (counted) pod on this machine."""
        last = _last_counted(tracker.pods.values())
        if last is None:
            return
        try:
            lines = list(self.cluster.pod_log(last.name))
        except KubernetesError:
            return
        handle.log_path.parent.mkdir(parents=True, exist_ok=True)
        handle.log_path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")

    # ---- logs -------------------------------------------------------------------------------------------
    def logs(self, handle: RunHandle, follow: bool = False) -> Iterator[str]:
        """The log of each pod of the run that started, oldest first; with ``follow``, streamed while it
        runs, then the next attempt's, until the Job has ended."""
        run_id, name = handle.run_id, self._job_name(handle)
        q = self.monitor.subscribe(run_id) if follow else None
        done: set[str] = set()
        try:
            while True:
                pods = sorted((pod_state(p) for p in self._pods(run_id)), key=lambda p: (p.created, p.name))
                for state in pods:
                    if state.name in done or state.phase not in ("Running", "Succeeded", "Failed") or state.stuck:
                        continue
                    done.add(state.name)
                    try:
                        if follow and state.phase == "Running":
                            yield from self._follow_log(state.name)
                        else:
                            yield from self.cluster.pod_log(state.name)
                    except KubernetesError:
                        continue
                if q is None:
                    if not pods and not handle.log_path.is_file():
                        raise KubernetesError(f"run {run_id}: no pod has started yet")
                    return
                job = self.cluster.get("Job", name)
                if job is None or job_finished(job):
                    return
                event = q.get()                     # something changed: look again
                if event.type == "ERROR":
                    raise KubernetesError(f"run {run_id}: {event.error}")
        finally:
            if q is not None:
                self.monitor.unsubscribe(run_id, q)

    def _follow_log(self, pod: str) -> Iterator[str]:
        """The log of a running pod, live, until its container ends. A stream that goes quiet for
        api.LOG_READ_TIMEOUT_S (perhaps dropped without a word by a proxy) or ends while the pod still runs is
        opened again: with ``timestamps=true`` each line carries the kubelet's time, so the lines already given
        are skipped (the log API has no resume point; ``sinceSeconds`` would depend on two clocks)."""
        last: tuple[int, int] | None = None     # the time of the last line given ...
        at_last = 0                             # ... and how many lines given had that time
        delay = LOG_REOPEN_DELAY_S[0]
        while True:
            skip, new = at_last, 0
            try:
                for raw in self.cluster.pod_log(pod, follow=True, timestamps=True):
                    when, text = split_timestamp(raw)
                    if last is not None and when is not None:
                        if when < last:
                            continue
                        if when == last and skip > 0:
                            skip -= 1
                            continue
                    if when is not None:
                        last, at_last = when, (at_last + 1 if when == last else 1)
                    new += 1
                    yield text
            except LogReadTimeout:
                pass
            obj = self.cluster.get("Pod", pod)
            if obj is None or pod_state(obj).phase != "Running":
                return
            if new:
                delay = LOG_REOPEN_DELAY_S[0]
            else:                                                   # a stream that ends at once: not a hot loop
                time.sleep(delay)
                delay = min(delay * 2, LOG_REOPEN_DELAY_S[1])

    # ---- results ----------------------------------------------------------------------------------------
    def fetch_results(self, handle: RunHandle, dest: Path) -> HarnessRun:
        from mlrepro.runners.kubernetes.collect import Placement, fetch_from_claim

        assert isinstance(handle.results, Pvc)
        launched = self._launched.get(handle.run_id)
        if launched is not None:
            placement = Placement(arch=launched.arch, uid=launched.uid, tolerations=launched.tolerations,
                                  node=self._nodes.get(handle.run_id) or self._run_node(handle.run_id))
            image = handle.image
        else:
            placement, image = self._pod_facts(handle)
        key = f"collect:{handle.run_id}"
        q = self.monitor.subscribe(key)
        try:
            return fetch_from_claim(self.cluster, q, handle.run_id, handle.results.claim, image or handle.image, dest,
                                    start_timeout_s=self.config.pending_timeout_s, placement=placement)
        finally:
            self.monitor.unsubscribe(key, q)

    def _run_node(self, run_id: str) -> str | None:
        """The node the run's last counted pod ran on, while its pods exist (the Job's TTL)."""
        try:
            last = _last_counted(pod_state(p) for p in self._pods(run_id))
        except KubernetesError:
            return None
        return last.node if last is not None and last.node else None

    def _pod_facts(self, handle: RunHandle) -> tuple[Placement, str]:
        """Where a recorded run's helper pod goes (uid, architecture, tolerations from its Job while it exists;
        its node while its pods exist), and its image."""
        from mlrepro.runners.kubernetes.collect import Placement

        job = self.cluster.get("Job", self._job_name(handle))
        if job is None:
            return Placement(), handle.image
        spec = ((job.get("spec") or {}).get("template") or {}).get("spec") or {}
        uid = (spec.get("securityContext") or {}).get("runAsUser")
        arch = (spec.get("nodeSelector") or {}).get("kubernetes.io/arch")
        image = ((spec.get("containers") or [{}])[0]).get("image") or handle.image
        return Placement(arch=arch, uid=uid, tolerations=tuple(spec.get("tolerations") or ()),
                         node=self._run_node(handle.run_id)), image

    # ---- the model server: a Deployment and a Service -------------------------------------------------------
    def start_server(self, job: JobSpec, progress: Progress = no_progress) -> tuple[JobSpec, ServerHandle]:
        from mlrepro.render.manifests import server_manifests

        server = job.server
        if server is None:
            raise KubernetesError(f"run {job.run_id} has no model server to start")
        key = f"server:{job.run_id}"
        with self._lock:                            # before the Deployment exists: no event of its pod is missed
            if key not in self._subscriptions:
                self._subscriptions[key] = self.monitor.subscribe(key)
        try:
            for obj in server_manifests(job):
                self.cluster.apply(obj)
        except BaseException:
            self._unsubscribe(key)
            raise
        url = server.url(server.name)
        progress(f"model server {server.engine}: Deployment and Service {server.name} applied ({url})")
        return job, ServerHandle(run_id=job.run_id, target=self.target, name=server.name,
                                 ref=f"{self.namespace}/{server.name}", url=url,
                                 log_path=self._paths(job.run_id).server_log,
                                 ready_timeout_s=float(server.ready_timeout_s))

    def wait_server(self, server: ServerHandle, progress: Progress = no_progress) -> None:
        """Until a pod of the Deployment is Ready; a pod unschedulable or unable to pull its image for the pending
        timeout (an invalid image at once), a crashing or OOM-killed server (with its last log lines), or no ready
        pod within serve.ready_timeout_seconds is a ServerNotReady with the diagnosis."""
        key = f"server:{server.run_id}"
        with self._lock:
            q = self._subscriptions.get(key)
            if q is None:
                q = self._subscriptions[key] = self.monitor.subscribe(key)
        started = time.monotonic()
        ready_by = started + server.ready_timeout_s
        stuck_since: dict[str, float] = {}
        told: dict[str, str] = {}
        last_pod = ""
        while True:
            now = time.monotonic()
            timers = [ready_by] + [t + self.config.pending_timeout_s for t in stuck_since.values()]
            try:
                event = q.get(timeout=max(0.0, min(timers) - now))
            except queue.Empty:
                now = time.monotonic()
                for name, since in stuck_since.items():
                    if now - since >= self.config.pending_timeout_s:
                        raise ServerNotReady(f"model server pod {name} did not start in {now - since:.0f} s: "
                                             f"{told.get(name + ':stuck', 'pending')}") from None
                raise ServerNotReady(f"the model server was not ready within {server.ready_timeout_s:.0f} s "
                                     f"(serve.ready_timeout_seconds)" + self._server_log_tail(last_pod)) from None
            if event.type == "ERROR":
                progress(f"watch interrupted ({event.error}); resuming")
                continue
            if event.kind != "Pod" or event.type == "DELETED":
                if event.kind == "Pod":
                    stuck_since.pop((event.obj.get("metadata") or {}).get("name", ""), None)
                continue
            state = server_pod_state(event.obj)
            name = state.pod.name
            last_pod = name
            if told.get(name) != state.key:
                told[name] = state.key
                progress(f"model server {state.describe()}")
            if state.ready:
                progress(f"model server ready in {time.monotonic() - started:.0f} s ({server.url})")
                return
            if state.crash:
                raise ServerNotReady(f"model server pod {name}: {state.crash}" + self._server_log_tail(name, True))
            if state.pod.stuck and state.pod.phase == "Pending":
                told[name + ":stuck"] = state.pod.stuck
                stuck_since.setdefault(name, time.monotonic())
                if state.pod.fatal:
                    raise ServerNotReady(f"model server pod {name} cannot start: {state.pod.stuck}")
            else:
                stuck_since.pop(name, None)
            if state.pod.phase == "Failed":
                raise ServerNotReady(f"model server pod {name} failed"
                                     + (f" ({state.pod.disrupted or state.pod.reason})" if state.pod.disrupted or
                                        state.pod.reason else "") + self._server_log_tail(name))

    def _server_log_tail(self, pod: str, previous: bool = False, lines: int = 5) -> str:
        """``: <its last log lines>`` of a server pod (the crashed container's with ``previous``), or ""."""
        if not pod:
            return ""
        for prev in ((True, False) if previous else (False,)):
            try:
                kept = [line.strip() for line in self.cluster.pod_log(pod, previous=prev, tail_lines=lines * 4)
                        if line.strip()]
            except KubernetesError:
                continue
            if kept:
                return ": " + " | ".join(kept[-lines:])
        return ""

    def stop_server(self, server: ServerHandle, keep: bool = False) -> None:
        """Its pod's log saved; then, unless ``keep``, the Deployment (its pods go too), the Service and the DRA
        claim template deleted."""
        from mlrepro.render.podspec import device_claim_template_name
        from mlrepro.runners.kubernetes.watch import SERVER_FOR_LABEL

        self._unsubscribe(f"server:{server.run_id}")
        try:
            pods, _ = self.cluster.list("Pod", f"{SERVER_FOR_LABEL}={server.run_id}")
        except KubernetesError:
            pods = []
        started = [pod_state(p) for p in pods]
        started = [p for p in started if p.phase in ("Running", "Succeeded", "Failed")]
        if started:
            last = max(started, key=lambda p: (p.created, p.name))
            try:
                lines = list(self.cluster.pod_log(last.name))
            except KubernetesError:
                lines = []
            if lines:
                server.log_path.parent.mkdir(parents=True, exist_ok=True)
                server.log_path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        if keep:
            return
        self.cluster.delete("Deployment", server.name, propagation="Background")
        self.cluster.delete("Service", server.name)
        try:
            self.cluster.delete("ResourceClaimTemplate", device_claim_template_name(server.name))
        except KubernetesError as exc:
            if exc.status not in (403, 404):
                raise

    # ---- cancel / cleanup / attach -------------------------------------------------------------------------
    def cancel(self, handle: RunHandle) -> None:
        self._submitted.pop(handle.run_id, None)
        self._unsubscribe(handle.run_id)
        self._delete_run_objects(handle)
        self._launched.pop(handle.run_id, None)

    def _delete_run_objects(self, handle: RunHandle) -> None:
        name = self._job_name(handle)
        self.cluster.delete("Job", name, propagation="Background")
        self._delete_inputs(handle)

    def _delete_inputs(self, handle: RunHandle) -> None:
        from mlrepro.render.podspec import config_map_name, device_claim_template_name

        self.cluster.delete("ConfigMap", config_map_name(handle.run_id))
        launched = self._launched.get(handle.run_id)
        if launched is None or launched.has_claim_template:
            try:
                self.cluster.delete("ResourceClaimTemplate", device_claim_template_name(handle.run_id))
            except KubernetesError as exc:
                if launched is not None or exc.status not in (403, 404):
                    raise

    def cleanup(self, handle: RunHandle, *, release_results: bool = False) -> None:
        """The run has ended: its ConfigMap and claim template go; the Job stays until its TTL (for
        ``kubectl describe``). The claim (the results) always stays, ``release_results`` or not: on a cluster it
        is the shared record others collect from (``mlrepro collect RUN_ID`` from any machine), and its storage
        follows the cluster's reclaim policy; ``kubectl delete pvc -l mlrepro.io/run-id`` removes it."""
        del release_results
        self._unsubscribe(handle.run_id)
        self._submitted.pop(handle.run_id, None)
        try:
            self._delete_inputs(handle)
        finally:
            self._launched.pop(handle.run_id, None)

    def attach(self, record: RunRecord) -> RunHandle:
        location = parse_location(record.results_location, self.target)
        if not isinstance(location, Pvc):
            raise KubernetesError(f"run {record.run_id} has no claim recorded ({record.results_location!r})")
        ref = record.job_id or f"{location.namespace}/{record.run_id}"
        return RunHandle(run_id=record.run_id, target=self.target, ref=ref, results=location,
                         log_path=self._paths(record.run_id).log, image=record.image)

    def discover(self, run_id: str) -> RunRecord:
        """A record for a run mlrepro did not launch (e.g. installed with Helm), from its Job in this namespace:
        the objects are named from the run id as ``generate`` names them. BadInputError when there is no such
        Job (its TTL may have passed)."""
        from mlrepro.render.podspec import results_claim_name
        from mlrepro.state.store import RunRecord

        job = self.cluster.get("Job", run_id)
        if job is None:
            raise BadInputError(f"run {run_id} is not recorded here and there is no Job {run_id} in namespace "
                                f"{self.namespace} (its TTL may have passed)")
        containers = ((job.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or [{}]
        return RunRecord(run_id=run_id, target=self.target, image=containers[0].get("image", ""),
                         status="succeeded" if job_finished(job) else "running", job_id=f"{self.namespace}/{run_id}",
                         results_location=format_location(Pvc(results_claim_name(run_id), self.namespace,
                                                              self.context)))

    def close(self) -> None:
        """Stop the watchers; Jobs submitted but never started (Ctrl-C, an error) are deleted."""
        try:
            self._withdraw_unstarted()
        finally:
            self.monitor.close()


def _last_counted(pods: Iterable[PodState]) -> PodState | None:
    """The pod whose output and node count for the run: the last that started, a disrupted one only if no
    other did."""
    ordered = sorted(pods, key=lambda p: (not p.disrupted, p.created, p.name))
    started = [p for p in ordered if p.phase in ("Running", "Succeeded", "Failed") and not p.stuck]
    return started[-1] if started else None
