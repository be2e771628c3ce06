"""From a resolved profile to the harness's run specs: one per (scenario, mode)."""

from __future__ import annotations

import secrets
import time
from typing import Iterable

from mlrepro.harness.spec import RunSpec, WorkloadSpec
from mlrepro.harness.userconf import settings_for
from mlrepro.profiles.loader import ResolvedProfile

_MODE_SHORT = {"performance": "perf", "accuracy": "acc", "submission": "sub", "calibrate": "cal", "audit": "aud"}


def new_run_id(profile_name: str, scenario: str, mode: str, now: float | None = None) -> str:
    """A unique, DNS-label-safe run id (usable as a Job name): ``x86-cpu-offline-perf-20261128-093012-3fa9``."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now if now is not None else time.time()))
    suffix = secrets.token_hex(2)
    head = f"{profile_name}-{scenario.lower()}-{_MODE_SHORT[mode]}"
    return f"{head[:63 - len(stamp) - len(suffix) - 2]}-{stamp}-{suffix}"


def reproduce_argv(resolved: ResolvedProfile, target: str, scenario: str, mode: str) -> tuple[str, ...]:
    """The ``mlrepro run`` command line that re-runs (scenario, mode) of this profile on ``target``: every ``-p``,
    ``-f`` and ``--set`` as given (files as absolute paths), so it resolves to the same profile hash."""
    request = resolved.request
    profile_args = request.argv() if request is not None else ["-p", resolved.profile.name]
    return ("mlrepro", "run", *profile_args, "--target", target, "--scenario", scenario, "--mode", mode)


def build_run_spec(resolved: ResolvedProfile, scenario: str, mode: str, run_id: str | None = None,
                   image: str = "", target: str = "") -> RunSpec:
    p = resolved.profile
    b = p.benchmark
    workload = WorkloadSpec(name=b.workload, backend=p.framework.harness_backend, device=p.device,
                            model_path=b.model_path, dataset_path=b.dataset_path, batch_size=b.batch_size,
                            options=dict(sorted(settings_for(b.options, scenario).items())))
    flat = settings_for(b.settings, scenario)
    settings = {k: (int(v) if float(v).is_integer() else v) for k, v in sorted(flat.items())}
    pin = f"{p.framework.backend}=={p.framework.version}" if p.framework.version else ""
    return RunSpec(run_id=run_id or new_run_id(p.name, scenario, mode), workload=workload, scenario=scenario,
                   mode=mode, profile_name=p.name, profile_hash=resolved.hash, mlperf_model=b.mlperf_model,
                   settings=settings, user_conf=b.user_conf, image=image, framework_pin=pin,
                   reproduce=reproduce_argv(resolved, target, scenario, mode) if target else ())


def run_matrix(resolved: ResolvedProfile, scenarios: Iterable[str] | None = None,
               modes: Iterable[str] | None = None, image: str = "", target: str = "") -> list[RunSpec]:
    """Run specs for every (scenario, mode) pair; defaults come from the profile's benchmark block."""
    b = resolved.profile.benchmark
    return [build_run_spec(resolved, s, m, image=image, target=target)
            for s in (list(scenarios) if scenarios else b.scenarios)
            for m in (list(modes) if modes else b.modes)]
