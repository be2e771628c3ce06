"""The job spec: the ONE description of a benchmark run that every target and every file is a view of.

A :class:`JobSpec` is the :class:`~mlrepro.render.podspec.PodSpec` (image, command, env, volumes, resources,
devices, scheduling, security) plus the job policy (deadline, retries, TTL) and the run spec the harness
reads. It feeds:

- the Kubernetes manifests (:func:`mlrepro.render.manifests.render_manifests`) and the Helm values
  (:func:`mlrepro.render.helm_values.helm_values`), which a test holds to be the same objects;
- the runners (:mod:`mlrepro.runners`): native (run spec, env, deadline), Docker (the pod mapped to
  ``docker run`` settings) and Kubernetes (the manifests, applied).

With a model server (the profile's ``serve.engine``), the job also holds the server's spec
(:class:`~mlrepro.render.serverspec.ServerSpec`, from the same profile and image): the targets start it, wait for
it and stop it around the run, and the manifests and Helm values carry its Deployment and Service.

The image reference inside is computed once, by the image build (:func:`mlrepro.image.tags.image_name`, or
the digest recorded by a push) and passed in; nothing here derives one.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlrepro.harness.spec import RunSpec
from mlrepro.profiles.loader import ResolvedProfile
from mlrepro.render.podspec import PodSpec, build_pod_spec
from mlrepro.render.serverspec import ServerSpec, build_server_spec


@dataclass(frozen=True)
class JobPolicy:
    """How long a run may take and how it is retried (profile block ``job``; Kubernetes Job fields)."""

    deadline_seconds: int
    """The whole run, retries included (``activeDeadlineSeconds``; enforced by the local runners too)."""
    retries: int
    """Pod retries after a failure (``backoffLimit``); disruptions (eviction, preemption) never count."""
    ttl_seconds: int
    """The finished Job and its pods are garbage-collected this long after the end (``ttlSecondsAfterFinished``)."""


@dataclass(frozen=True)
class JobSpec:
    """One run: what runs (pod), for how long and how often (policy), with which input (run spec)."""

    run: RunSpec
    pod: PodSpec
    policy: JobPolicy
    profile_name: str
    profile_hash: str
    """sha256 content hash of the resolved profile."""
    server: ServerSpec | None = None
    """The model server this run's LoadGen client talks to, when mlrepro starts one (``serve.engine``); the pod
    is then the client (CPU-only)."""

    @property
    def run_id(self) -> str:
        return self.run.run_id

    @property
    def name(self) -> str:
        """The Job's name (and the stem of every object's name): the run id."""
        return self.pod.name

    @property
    def image(self) -> str:
        return self.pod.image



def build_job_spec(resolved: ResolvedProfile, image: str, run_spec: RunSpec) -> JobSpec:
    """The job of ``run_spec`` (a run of ``resolved``) in ``image`` (``""``: no image, the native target).

    Raises RenderError (a BadInputError) when the inputs cannot make a valid pod.
    """
    job = resolved.profile.job
    return JobSpec(run=run_spec, pod=build_pod_spec(resolved, image, run_spec),
                   policy=JobPolicy(deadline_seconds=job.deadline_seconds, retries=job.retries,
                                    ttl_seconds=job.ttl_seconds),
                   profile_name=resolved.profile.name, profile_hash=resolved.hash,
                   server=build_server_spec(resolved, image, run_spec.run_id))


def with_run_spec(job: JobSpec, run_spec: RunSpec) -> JobSpec:
    """``job`` running ``run_spec`` instead (same run id): the pod's config files and the run spec's digest follow.
    A runner uses it when only it knows a value of the spec (the native server's loopback port)."""
    from dataclasses import replace
    from types import MappingProxyType

    from mlrepro.render.podspec import (
        RUN_SPEC_SHA256_ANNOTATION,
        SPEC_FILE,
        ConfigMapSource,
        sha256_text,
    )

    if run_spec.run_id != job.run_id:
        raise ValueError(f"run spec {run_spec.run_id} is not job {job.run_id}'s")
    text = run_spec.to_json()
    volumes = tuple(replace(v, source=replace(v.source, files=MappingProxyType({**v.source.files, SPEC_FILE: text})))
                    if isinstance(v.source, ConfigMapSource) else v for v in job.pod.volumes)
    annotations = MappingProxyType({**job.pod.annotations, RUN_SPEC_SHA256_ANNOTATION: sha256_text(text)})
    return replace(job, run=run_spec, pod=replace(job.pod, volumes=volumes, annotations=annotations))
