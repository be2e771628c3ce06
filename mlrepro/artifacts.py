"""``generate``: every artifact of a profile written into one output directory.

    out/
      image/            build context: Dockerfile, requirements lock, harness source, optional CA bundle
      manifests.yaml    ConfigMap + PVC + Job (kubectl apply -f)
      values.yaml       values for the chart in helm/mlrepro (helm install -f)
      profile.yaml      the resolved profile, with its hash
      run.json          the run spec the Job mounts
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlrepro.errors import BadInputError, RuntimeFailure
from mlrepro.harness.spec import MODES, SCENARIOS
from mlrepro.profiles.loader import ResolvedProfile


@dataclass(frozen=True)
class GeneratedArtifacts:
    out_dir: Path
    files: tuple[Path, ...]
    image: str


def _pick(value: str | None, allowed: tuple[str, ...], default: str, flag: str) -> str:
    if value is None:
        return default
    if value not in allowed:
        raise BadInputError(f"{flag}: {value!r} is not one of {', '.join(allowed)}")
    return value


def generate_artifacts(resolved: ResolvedProfile, out_dir: Path, *, image: str | None = None,
                       scenario: str | None = None, mode: str | None = None, run_id: str = "example",
                       helm_values: bool = True) -> GeneratedArtifacts:
    from mlrepro.profiles.runspec import build_run_spec
    from mlrepro.render.context import write_build_context
    from mlrepro.render.helm_values import dump_values
    from mlrepro.render.helm_values import helm_values as make_values
    from mlrepro.render.manifests import dump_manifests, render_manifests
    from mlrepro.render.podspec import image_reference

    p = resolved.profile
    scenario = _pick(scenario, SCENARIOS, p.benchmark.scenarios[0], "--scenario")
    mode = _pick(mode, MODES, p.benchmark.modes[0], "--mode")
    image = image or image_reference(p, resolved.short_hash)
    spec = build_run_spec(resolved, scenario, mode, run_id=run_id, image=image)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        context = write_build_context(resolved, out_dir / "image")
        files: list[Path] = [context.dockerfile]
        manifests = out_dir / "manifests.yaml"
        manifests.write_text(dump_manifests(render_manifests(resolved, image, spec)), encoding="utf-8")
        files.append(manifests)
        if helm_values:
            values = out_dir / "values.yaml"
            values.write_text(dump_values(make_values(resolved, image, spec)), encoding="utf-8")
            files.append(values)
        profile_file = out_dir / "profile.yaml"
        profile_file.write_text(f"# hash: {resolved.hash}\n" + resolved.to_yaml(), encoding="utf-8")
        run_file = out_dir / "run.json"
        run_file.write_text(spec.to_json(), encoding="utf-8")
        files += [profile_file, run_file]
    except OSError as exc:
        raise RuntimeFailure(f"{exc.filename or out_dir}: cannot write ({exc.strerror or exc})") from None
    return GeneratedArtifacts(out_dir=out_dir, files=tuple(files), image=image)
