"""From a resolved profile to the harness's run specs: one per (scenario, mode)."""

from __future__ import annotations

import secrets
import time
from typing import Any, Iterable

from mlrepro.harness.spec import NETWORK_BACKEND, RunSpec, WorkloadSpec
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




def server_options(resolved: ResolvedProfile, run_id: str, image: str, target: str) -> dict[str, Any]:
    """``workload.options.server`` of a run whose LLM is on a model server (the profile's ``serve``): where the
    client reaches it on ``target`` (Kubernetes: the Service's name; Docker: the server container's name on the
    run's network; native: loopback, the port the runner picks), the engine, the model, the server's command line
    as mlrepro starts it, and the client's settings. ``target`` "" renders the Kubernetes view (``generate``)."""
    from mlrepro.harness.serving.engines import GENERIC, engine
    from mlrepro.render.serverspec import LISTEN_HOST, build_server_spec

    serve = resolved.profile.serve
    t = serve.timeouts
    common: dict[str, Any] = {"api": serve.api, "max_concurrency": serve.max_concurrency,
                              "ready_timeout_s": serve.ready_timeout_seconds,
                              "timeouts": {"connect_s": t.connect_seconds, "between_chunks_s": t.between_chunks_seconds,
                                           "total_s": t.total_seconds}}
    if not serve.starts_server:
        return {"engine": serve.engine or GENERIC, "base_url": serve.endpoint, "served_model": serve.served_model,
                "started_by": "existing", **common}
    server = build_server_spec(resolved, image, run_id)
    assert server is not None
    native = target == "native"
    host = "127.0.0.1" if native else server.name
    model = server.model.native_model() if native else server.model.model
    listen = "127.0.0.1" if native else LISTEN_HOST
    takes_name = "{name}" in engine(server.engine).served_model
    return {"engine": server.engine, "base_url": server.url(host), "started_by": "mlrepro",
            "served_model": server.served_model_name if takes_name else None, "model": model,
            "command": list(server.command) if not native else ["mlrepro-serve", *server.args(listen, model=model)],
            "host": listen, "port": server.port, "engine_args": list(server.engine_args), "image": image or None,
            **common}


def check_run(resolved: ResolvedProfile, scenario: str, options: dict[str, Any]) -> None:
    """Refuse, before anything is built or scheduled, a run its workload would refuse when it loads (a scenario
    it has not, an unknown or out-of-range option: ``Workload.run_problems``). Raises RenderError (exit 2), one
    line per problem naming the key. A workload that is not installed here is the harness's to report."""
    from mlrepro.harness.registry import load_workload_class
    from mlrepro.render.podspec import RenderError

    try:
        cls = load_workload_class(resolved.profile.benchmark.workload)
    except Exception:  # noqa: BLE001 - unknown here: the harness in the image reports it (exit 3)
        return
    problems = cls.run_problems(scenario, options)
    if problems:
        raise RenderError("\n".join(f"{key}: {message}" for key, message in problems))


def check_runs(resolved: ResolvedProfile, scenarios: Iterable[str] | None = None) -> None:
    """:func:`check_run` for each scenario (default: the profile's) with its options: what a launch calls before
    it builds or pushes an image. Raises RenderError."""
    b = resolved.profile.benchmark
    for scenario in (list(scenarios) if scenarios else b.scenarios):
        check_run(resolved, scenario, settings_for(b.options, scenario))


def build_run_spec(resolved: ResolvedProfile, scenario: str, mode: str, run_id: str | None = None,
                   image: str = "", target: str = "") -> RunSpec:
    p = resolved.profile
    b = p.benchmark
    run_id = run_id or new_run_id(p.name, scenario, mode)
    options: dict[str, Any] = dict(sorted(settings_for(b.options, scenario).items()))
    check_run(resolved, scenario, options)
    backend, device, model_path = p.framework.harness_backend, p.device, b.model_path
    if p.serve.enabled:                 # the LoadGen client of a model server: CPU-only, over the network
        options["server"] = server_options(resolved, run_id, image, target)
        backend, device = NETWORK_BACKEND, "cpu"
        if model_path is None and p.serve.model:        # the tokenizer: the server's model, where the client has it
            model_path = options["server"].get("model") or p.serve.model
    workload = WorkloadSpec(name=b.workload, backend=backend, device=device, model_path=model_path,
                            dataset_path=b.dataset_path, batch_size=b.batch_size, options=options)
    flat = settings_for(b.settings, scenario)
    settings = {k: (int(v) if float(v).is_integer() else v) for k, v in sorted(flat.items())}
    # the framework pin is the in-process backend's: a model server's client runs none
    pin = f"{p.framework.backend}=={p.framework.version}" if p.framework.version and not p.serve.enabled else ""
    return RunSpec(run_id=run_id, workload=workload, scenario=scenario,
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
