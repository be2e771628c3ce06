"""``mlrepro reproduce``: rerun a recorded result and report what drifted.

From the result's records (:mod:`mlrepro.reproduce.source`): the profile is re-resolved from the recorded
command line (every ``-p``, ``-f``, ``--set``), the recorded image is obtained (:mod:`mlrepro.reproduce.image`,
Docker), the runs are made again through the pipeline on the same kind of target with the recorded user.conf
(its LoadGen targets pinned: nothing is recalibrated unless asked), collected into a tree of their own, and both
results are compared (:mod:`mlrepro.reproduce.drift`).

Public API::

    ReproduceOptions, ReproduceResult
    reproduce(original, options, progress) -> ReproduceResult
        BadInputError: the recorded profile cannot be resolved here, an unknown target;
        RuntimeFailure: no engine, a failed build (a failed rerun is a mismatch in the result, not an error)
    from_result_folder(path, version) / from_run_id(run_id, state_dir, version) -> Original
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlrepro.errors import BadInputError
from mlrepro.reproduce.drift import DEFAULT_TOLERANCE, DriftReport, compare, facts_of
from mlrepro.reproduce.image import ImageSource
from mlrepro.reproduce.source import Original, ReproduceInputError, from_result_folder, from_run_id
from mlrepro.runners.base import Progress, no_progress

if TYPE_CHECKING:  # pragma: no cover
    from mlrepro.flow import PipelineResult
    from mlrepro.profiles.loader import ResolvedProfile
    from mlrepro.runners.base import KubeTarget

__all__ = ["Original", "ReproduceInputError", "ReproduceOptions", "ReproduceResult", "from_result_folder",
           "from_run_id", "reproduce"]


@dataclass(frozen=True)
class ReproduceOptions:
    target: str | None = None             # default: the recorded run's target
    tolerance: float = DEFAULT_TOLERANCE  # relative, for the performance metric
    into: Path | None = None              # the reproduction's tree (default: <tree>.mlrepro/reproduce/<stamp>-<run>)
    image: str | None = None              # docker, kubernetes: run this image instead of the recorded one
    recalibrate: bool = False             # measure the LoadGen targets again instead of pinning the recorded ones
    version: str | None = None            # MLPerf round of the trees' layout
    state_dir: Path | None = None
    kube: KubeTarget | None = None        # kubernetes: context, namespace, kubeconfig


@dataclass(frozen=True)
class ReproduceResult:
    original: Original
    tree: Path                            # the reproduction's submission tree
    result_rel: str | None                # its result folder (None: the rerun made none)
    image: ImageSource | None
    drift: DriftReport
    pipeline: PipelineResult

    @property
    def match(self) -> bool:
        return self.drift.match


def _resolve(original: Original) -> ResolvedProfile:
    from mlrepro.profiles.loader import resolve_profile

    req = original.request
    try:
        return resolve_profile(req.profile, req.overlays, req.sets)
    except BadInputError as exc:
        raise ReproduceInputError(f"the recorded profile ({' '.join(req.argv())}) does not resolve here: "
                                  f"{str(exc).splitlines()[0]}") from None


def _target_lines(record: Mapping[str, Any] | None, model: str, scenario: str) -> list[str]:
    """user.conf lines pinning the LoadGen targets a run recorded (pinned, cached or calibrated values)."""
    from mlrepro.harness.userconf import setting_line

    cal = (record or {}).get("calibration")
    targets = cal.get("targets") if isinstance(cal, dict) else None
    out = []
    for t in targets if isinstance(targets, list) else ():
        if isinstance(t, dict) and isinstance(t.get("value"), (int, float)) and t.get("setting"):
            out.append(setting_line(model, scenario, str(t["setting"]), float(t["value"])).render())
    return out


def _pins(original: Original, resolved: ResolvedProfile) -> dict[tuple[str, str], str]:
    """(scenario, mode) -> the user.conf each rerun loads: the result folder's (the recorded one) for the
    performance run, the profile's plus the recorded targets for an accuracy run."""
    scenario = original.scenario
    record = original.record
    model = str((record.get("workload") or {}).get("mlperf_model") or resolved.profile.benchmark.mlperf_model or "")
    base = resolved.profile.benchmark.user_conf or ""
    perf_mode = original.modes[0]
    perf = original.user_conf if original.user_conf is not None else \
        "\n".join([base, *_target_lines(record, model, scenario)]) + "\n"
    pins = {(scenario, perf_mode): perf}
    if original.accuracy is not None:
        pins[(scenario, "accuracy")] = "\n".join([base, *_target_lines(original.accuracy.record, model,
                                                                        scenario)]) + "\n"
    return pins


def _image(original: Original, target: str, options: ReproduceOptions, resolved: ResolvedProfile,
           progress: Progress) -> ImageSource | None:
    image = original.record.get("image") if isinstance(original.record.get("image"), dict) else {}
    ref, digest = image.get("reference"), image.get("digest")
    if options.image:
        return ImageSource(options.image, "given", None, False, f"--image {options.image} (not the recorded one)")
    if target == "docker":
        from mlrepro.reproduce.image import obtain_image

        return obtain_image(ref, digest, resolved, progress)
    if target == "kubernetes":
        if not digest or "@" not in digest:
            raise ReproduceInputError(f"the recorded image {digest or ref or '(none)'} was never pushed: a cluster "
                                      "cannot pull it (give --image REF@DIGEST, or reproduce with --target docker)")
        return ImageSource(digest, "pulled", digest, True, f"the cluster pulls the recorded image {digest}")
    return None


def reproduce(original: Original, options: ReproduceOptions = ReproduceOptions(),
              progress: Progress = no_progress) -> ReproduceResult:
    """Rerun ``original`` and compare (see the module's docstring)."""
    from mlrepro.flow import PipelineOptions, run_pipeline
    from mlrepro.results import layout as tl
    from mlrepro.results.check import check_read_tree
    from mlrepro.results.tree import read_result_text, read_run_files, read_tree
    from mlrepro.runners.targets import canonical_target

    if not options.tolerance >= 0:
        raise BadInputError(f"--tolerance: {options.tolerance * 100:g} % is negative")
    for problem in original.problems:
        progress(f"note: {problem}")
    resolved = _resolve(original)
    recorded_hash = original.record.get("profile_hash")
    if recorded_hash and recorded_hash != resolved.hash:
        progress(f"note: the recorded command line resolves to profile hash {resolved.short_hash} here, the record "
                 f"says {str(recorded_hash)[:12]} (a built-in profile or an overlay changed)")
    target = canonical_target(options.target or original.target)
    image = _image(original, target, options, resolved, progress)
    if image is not None:
        progress(f"image: {image.message}")
    result = original.result
    into = options.into or tl.sidecar_for(original.tree.root) / "reproduce" / \
        f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{original.performance.run_id}"
    progress(f"rerunning {result.benchmark_folder} {original.scenario} ({', '.join(original.modes)}) on {target}"
             + (" with recalibrated targets" if options.recalibrate else " with the recorded user.conf")
             + f"; tree: {into}")
    pipeline = run_pipeline(resolved, PipelineOptions(
        target=target, scenarios=[original.scenario], modes=list(original.modes), into=into,
        division=result.division, submitter=result.submitter, image=image.reference if image else None,
        recalibrate=options.recalibrate, user_conf={} if options.recalibrate else _pins(original, resolved),
        **({"kube": options.kube} if options.kube is not None else {})),
        progress=progress, state_dir=options.state_dir)
    old = facts_of(original.tree, result, original.performance.record, original.user_conf)
    check = check_read_tree(original.tree)
    errors = [f"{f.path}: {f.message} [{f.code}]" for f in check.errors if f.covers(result.rel)]
    notes = [*original.problems, *(f"{r.run_id}: {r.status}: {r.message}" for r in pipeline.failures)]
    new_tree = read_tree(into, original.tree.version) if into.is_dir() else None
    new = next((r for r in (new_tree.results if new_tree else ())
                if r.benchmark_folder == result.benchmark_folder and r.scenario == result.scenario), None)
    if new is None or new_tree is None:
        from mlrepro.reproduce.drift import MISMATCH, DriftItem

        why = "; ".join(notes) or "the rerun placed no result in its tree"
        drift = DriftReport(items=(DriftItem("result", "result folder", result.rel, "-", MISMATCH, why),),
                            tolerance=options.tolerance, notes=tuple(notes))
        return ReproduceResult(original, into, None, image, drift, pipeline)
    assert new.record is not None
    new_files = read_run_files(new_tree, new, new.record.performance_run)
    facts = facts_of(new_tree, new, new_files.record, read_result_text(new_tree, new, "user.conf"))
    drift = compare(old, facts, tolerance=options.tolerance, image_note=image.message if image else None,
                    image_equivalent=bool(image and image.how == "rebuilt" and image.content_hash_matches),
                    original_errors=errors, notes=notes)
    return ReproduceResult(original, into, new.rel, image, drift, pipeline)
