"""``generate``: every artifact of a profile written into one output directory.

    out/
      image/            build context: Dockerfile, requirements lock, harness source, optional CA bundle
      manifests.yaml    ConfigMap + PVC (+ ResourceClaimTemplate) (+ a model server's Deployment + Service) + Job
                        (kubectl apply -f)
      values.yaml       values for the chart in helm/mlrepro (helm install -f)
      profile.yaml      the resolved profile, with its hash
      run.json          the run spec the Job mounts

The image reference in the manifests and values is the one ``mlrepro build`` tags
(:func:`mlrepro.image.tags.image_name`: ``[registry/]repository:<profile>-<content hash>``), so a built and
pushed image is exactly what the Job names. This module sits above ``render`` (views) and ``image`` (the
build): neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlrepro.errors import BadInputError, RuntimeFailure
from mlrepro.harness.spec import MODES, SCENARIOS, RunSpec
from mlrepro.profiles.loader import ResolvedProfile

EXAMPLE_RUN_ID = "example"


@dataclass(frozen=True)
class GeneratedArtifacts:
    out_dir: Path
    files: tuple[Path, ...]
    image: str
    run_id: str


def _pick(value: str | None, allowed: tuple[str, ...], default: str, flag: str) -> str:
    if value is None:
        return default
    if value not in allowed:
        raise BadInputError(f"{flag}: {value!r} is not one of {', '.join(allowed)}")
    return value


def planned_image_ref(resolved: ResolvedProfile) -> str:
    """The reference ``mlrepro build`` gives the profile's image (no engine needed; needs the lock)."""
    from mlrepro.image.tags import image_name

    return image_name(resolved).ref


def generate_artifacts(resolved: ResolvedProfile, out_dir: Path, *, image: str | None = None,
                       scenario: str | None = None, mode: str | None = None, run_id: str | None = None,
                       helm_values: bool = True, kubernetes_version: str | None = None) -> GeneratedArtifacts:
    """Write the build context, manifests, Helm values, resolved profile and run spec of one run.

    ``run_id``: default a fresh one (every rendering is a new run, so a Helm upgrade with new values makes a
    new Job instead of changing an existing Job's immutable template). ``image``: default the reference
    ``mlrepro build`` makes. ``kubernetes_version`` (``1.34``): reject what that version cannot run.
    Raises BadInputError (RenderError, ProfileError) and RuntimeFailure (cannot write).
    """
    from mlrepro.image.context import write_build_context
    from mlrepro.render.compat import check_kubernetes_version
    from mlrepro.render.helm_values import dump_values
    from mlrepro.render.helm_values import helm_values as make_values
    from mlrepro.render.jobspec import build_job_spec
    from mlrepro.render.manifests import dump_manifests, render_manifests
    from mlrepro.render.runspec import build_run_spec, check_runs

    p = resolved.profile
    check_runs(resolved)                    # every scenario of the profile, not only the one rendered
    scenario = _pick(scenario, SCENARIOS, p.benchmark.scenarios[0], "--scenario")
    mode = _pick(mode, MODES, p.benchmark.modes[0], "--mode")
    image = image or planned_image_ref(resolved)
    spec = build_run_spec(resolved, scenario, mode, run_id=run_id, image=image)
    job = build_job_spec(resolved, image, spec)
    if kubernetes_version is not None:
        check_kubernetes_version(job.pod, kubernetes_version,
                                 dra=job.pod.device_claim is not None or
                                 (job.server is not None and job.server.device_claim is not None))
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        context = write_build_context(resolved, out_dir / "image")
        files: list[Path] = [context.dockerfile]
        manifests = out_dir / "manifests.yaml"
        manifests.write_text(dump_manifests(render_manifests(job)), encoding="utf-8")
        files.append(manifests)
        if helm_values:
            values = out_dir / "values.yaml"
            values.write_text(dump_values(make_values(job)), encoding="utf-8")
            files.append(values)
        profile_file = out_dir / "profile.yaml"
        profile_file.write_text(f"# hash: {resolved.hash}\n" + resolved.to_yaml(), encoding="utf-8")
        run_file = out_dir / "run.json"
        run_file.write_text(spec.to_json(), encoding="utf-8")
        files += [profile_file, run_file]
    except OSError as exc:
        raise RuntimeFailure(f"{exc.filename or out_dir}: cannot write ({exc.strerror or exc})") from None
    return GeneratedArtifacts(out_dir=out_dir, files=tuple(files), image=image, run_id=spec.run_id)


# ---- the committed examples (manifests/<profile>.yaml) ---------------------------------------------------
def example_inputs(resolved: ResolvedProfile) -> tuple[str, RunSpec]:
    """The deterministic (image, run spec) of the committed manifests: run id "example", the profile's first
    scenario and mode, the image ``mlrepro build`` makes."""
    from mlrepro.render.runspec import build_run_spec

    p = resolved.profile
    image = planned_image_ref(resolved)
    spec = build_run_spec(resolved, p.benchmark.scenarios[0], p.benchmark.modes[0], run_id=EXAMPLE_RUN_ID,
                          image=image)
    return image, spec


def example_manifests_text(resolved: ResolvedProfile) -> str:
    """The text of manifests/<profile>.yaml: the example run of a profile (``make manifests`` writes it)."""
    from mlrepro.render.jobspec import build_job_spec
    from mlrepro.render.manifests import dump_manifests, render_manifests

    image, spec = example_inputs(resolved)
    header = (f"# Generated by `make manifests` (scripts/render_manifests.py) from the built-in profile "
              f"{resolved.profile.name} ({resolved.short_hash}).\n"
              f"# Do not edit. Run id {spec.run_id!r}, image {image}; `mlrepro generate` renders real runs.\n")
    return header + dump_manifests(render_manifests(build_job_spec(resolved, image, spec)))
