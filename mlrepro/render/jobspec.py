"""The job spec: the ONE description of a benchmark run that every target and every file is a view of.

A :class:`JobSpec` is the :class:`~mlrepro.render.podspec.PodSpec` (image, command, env, volumes, resources,
devices, scheduling, security) plus the job policy (deadline, retries, TTL) and the run spec the harness
reads. It feeds:

- the Kubernetes manifests (:func:`mlrepro.render.manifests.render_manifests`) and the Helm values
  (:func:`mlrepro.render.helm_values.helm_values`), which a test holds to be the same objects;
- the runners (:mod:`mlrepro.runners`): native (run spec, env, deadline), Docker (the pod mapped to
  ``docker run`` settings) and Kubernetes (the manifests, applied).

The image reference inside is computed once, by the image build (:func:`mlrepro.image.tags.image_name`, or
the digest recorded by a push) and passed in; nothing here derives one.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlrepro.harness.spec import RunSpec
from mlrepro.profiles.loader import ResolvedProfile
from mlrepro.render.podspec import PodSpec, build_pod_spec


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
                   profile_name=resolved.profile.name, profile_hash=resolved.hash)
