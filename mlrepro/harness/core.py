"""``run_harness``: one run spec, start to finish, in this process.

Order: prepare ``<results>/<run_id>/`` (run.json, system.json) -> find and load the workload -> the target
(pinned, cached or calibrated) -> the run's user.conf and TestSettings (mlperf.conf + that user.conf, nothing
else) -> the sub-runs of the mode (performance, accuracy, both for "submission", none for "calibrate"; an INVALID
performance run with a cached or calibrated target is recalibrated and re-run once) -> accuracy.txt ->
record.json -> checksums.sha256 (last). Whatever happens, record.json and the checksum manifest
are written for what exists. The results layout is documented in :mod:`mlrepro.harness.layout`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import mlrepro
from mlrepro.harness import exit_codes
from mlrepro.harness.accuracy import evaluate_accuracy
from mlrepro.harness.calibration import system_fingerprint
from mlrepro.harness.checksums import atomic_write_text, write_manifest
from mlrepro.harness.compliance.run import AuditOutcome, audit_dict, run_audits
from mlrepro.harness.layout import ACCURACY, PERFORMANCE, RunLayout, subruns_for_mode
from mlrepro.harness.loadgen_runner import (
    BuiltSettings,
    LoadgenSession,
    build_settings,
    import_loadgen,
    read_settings,
    set_mode,
)
from mlrepro.harness.logparse import parse_log_dir, token_metrics
from mlrepro.harness.probes import LoadgenProber, ProbeFailed
from mlrepro.harness.record import RecordInputs, SubRunOutcome, build_record, utc_now, write_record
from mlrepro.harness.registry import load_workload_class
from mlrepro.harness.spec import RunSpec, SpecError
from mlrepro.harness.sysinfo import collect_system
from mlrepro.harness.targets import TargetsOutcome, TokenPolicy, decide_targets, recalibrate_after_invalid
from mlrepro.harness.userconf import UserConfError, compose_user_conf
from mlrepro.harness.workloads.base import TokenWorkload, Workload, WorkloadConfigError, WorkloadError
from mlrepro.harness.writable import ResultsNotWritable, check_writable


class Interrupted(KeyboardInterrupt):
    """SIGTERM (or SIGINT) arrived; raised in the main thread by the CLI's signal handler."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@dataclass(frozen=True)
class HarnessResult:
    exit_code: int
    status: str                                   # exit_codes.NAMES[exit_code]
    run_dir: Path
    record: dict[str, Any] | None                 # None only when the run dir could not be created
    subruns: tuple[SubRunOutcome, ...] = ()
    error: str | None = None
    loadgen_detached: bool = False                # a LoadGen test is still running: the process should exit

    @property
    def ok(self) -> bool:
        return self.exit_code == exit_codes.EXIT_VALID


class _SubRunFailed(Exception):
    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _prepare(layout: RunLayout, spec: RunSpec) -> None:
    """Create the run dir and drop what an earlier attempt of the same run left in the paths we write."""
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    stale_dirs = [layout.subrun_dir(kind) for kind in subruns_for_mode(spec.mode)] + [layout.calibration_dir]
    stale_dirs += [layout.compliance_dir(r.test) for r in spec.compliance]
    for stale in stale_dirs:
        if stale.exists():
            shutil.rmtree(stale)
    for p in (layout.record_json, layout.checksums, layout.user_conf):
        if p.exists():
            p.unlink()


def _failure_exit(exc: BaseException) -> tuple[int, str]:
    if isinstance(exc, (SpecError, WorkloadConfigError)):
        return exit_codes.EXIT_BAD_SPEC, str(exc)
    if isinstance(exc, WorkloadError):
        return exit_codes.EXIT_RUNTIME, str(exc)
    return exit_codes.EXIT_RUNTIME, f"{type(exc).__name__}: {exc}"


def _summary_line(spec: RunSpec, o: SubRunOutcome) -> str:
    s = o.logs.summary if o.logs else None
    parts = [f"{spec.scenario} {o.kind}:"]
    if o.kind == PERFORMANCE:
        parts.append(o.validity or "no result")
        reasons = o.logs.invalid_reasons() if o.logs else []
        if reasons:
            parts.append("(" + "; ".join(reasons) + ")")
        if s is not None:
            if s.samples_per_second is not None:
                parts.append(f"samples/s={s.samples_per_second:g}")
            if s.completed_samples_per_second is not None:
                parts.append(f"completed samples/s={s.completed_samples_per_second:g}")
            if s.result_latency_ns is not None:
                parts.append(f"p{s.result_latency_percentile:g} latency={s.result_latency_ns / 1e6:.3f} ms")
        tokens = token_metrics(o.logs.detail) if o.logs else None
        if tokens:
            rate = tokens["tokens_per_second"] or tokens["completed_tokens_per_second"]
            if rate is not None:
                parts.append(f"tokens/s={rate:g}")
            for name in ("ttft", "tpot"):
                p99, bound = tokens[f"{name}_p99_ns"], tokens[f"{name}_bound_ns"]
                if p99 is not None:
                    parts.append(f"{name.upper()} p99={p99 / 1e6:.1f} ms" + (f" (bound {bound / 1e6:g} ms)"
                                                                            if bound and spec.scenario != "Offline"
                                                                            else ""))
    if o.accuracy is not None:
        parts.append(o.accuracy.result.line())
    if o.dispatch:
        parts.append(f"(dispatch {o.dispatch}, {o.duration_s:.1f} s)" if o.duration_s else f"({o.dispatch})")
    return " ".join(parts)


def _print_progress(message: str) -> None:
    """Progress on stdout; a closed or broken stdout must not fail the run."""
    try:
        print(message, flush=True)
    except (OSError, ValueError):
        pass


def _framework_check(pin: str, system: dict[str, Any]) -> dict[str, Any] | None:
    """The profile's framework pin (``onnxruntime==1.20.1``) against what this run imported."""
    if not pin or "==" not in pin:
        return None
    name, _, version = pin.partition("==")
    key = "onnxruntime" if name.startswith("onnxruntime") else name    # the record's sysinfo PACKAGES keys
    installed = (system.get("packages") or {}).get(key)
    return {"package": name, "pinned": version, "installed": installed,
            "matches": installed is not None and installed.split("+")[0] == version}


def run_harness(spec: RunSpec, results_dir: str | Path, *, fail_fast: bool = False,
                log: Callable[[str], None] | None = None, debug: bool = False) -> HarnessResult:
    """Run ``spec`` with real LoadGen, writing ``<results_dir>/<run_id>/``. Never raises for run failures:
    the outcome is in the returned HarnessResult (and record.json).

    Order: targets (pinned, cached or calibrated by probes, :mod:`mlrepro.harness.targets`) -> the run's
    user.conf -> the sub-runs of the mode. An INVALID performance run with a cached or calibrated target is
    recalibrated and re-run once. ``fail_fast``: when the workload fails mid-test, return without waiting for
    LoadGen to finish (the CLI then exits the process); otherwise LoadGen is drained with empty responses and the
    logs are complete. A KeyboardInterrupt (SIGINT, or SIGTERM via the CLI's handler) ends the run with
    EXIT_INTERRUPTED. ``debug``: print the traceback of a failure on stderr."""
    say = log if log is not None else _print_progress
    layout = RunLayout(Path(results_dir), spec.run_id, spec.scenario)
    started, t0 = utc_now(), time.monotonic()
    exit_code, error = exit_codes.EXIT_RUNTIME, None
    subruns: list[SubRunOutcome] = []
    detached = False
    workload: Workload | None = None
    cls: type[Workload] | None = None
    describe: dict[str, Any] | None = None
    conf_loading: dict[str, Any] | None = None
    user_conf_sha: str | None = None
    targets: TargetsOutcome | None = None
    framework: dict[str, Any] | None = None
    probe: LoadgenProber | None = None
    audits: list[AuditOutcome] = []
    try:
        check_writable(layout.results_dir, layout.run_dir)
    except ResultsNotWritable as exc:         # the volume's ownership or mount: a configuration error
        return HarnessResult(exit_codes.EXIT_BAD_SPEC, exit_codes.NAMES[exit_codes.EXIT_BAD_SPEC], layout.run_dir,
                             None, error=str(exc))
    except OSError:
        pass                                  # any other failure: _prepare says it as before
    try:
        _prepare(layout, spec)
    except OSError as exc:
        msg = f"{layout.run_dir}: cannot create the run directory ({exc.strerror or exc})"
        return HarnessResult(exit_codes.EXIT_RUNTIME, exit_codes.NAMES[exit_codes.EXIT_RUNTIME], layout.run_dir,
                             None, error=msg)
    try:
        atomic_write_text(layout.run_json, spec.to_json())
        system = collect_system()
        atomic_write_text(layout.system_json, json.dumps(system, indent=2, sort_keys=True) + "\n")
        framework = _framework_check(spec.framework_pin, system)
        say(f"mlrepro-harness: run {spec.run_id}: workload {spec.workload.name}, {spec.scenario}, mode {spec.mode}")
        if framework is not None and not framework["matches"]:
            say(f"mlrepro-harness: warning: {framework['package']} {framework['installed'] or 'is not installed'} "
                f"here, the profile pins {framework['pinned']} (recorded)")

        cls = load_workload_class(spec.workload.name)
        if spec.workload.backend not in cls.backends:
            raise WorkloadConfigError(f"workload {spec.workload.name!r} does not support backend "
                                      f"{spec.workload.backend!r} (supported: {', '.join(cls.backends)})")
        workload = cls(spec.workload)
        if isinstance(workload, TokenWorkload):
            workload.scenario = spec.scenario
        workload.load()
        try:
            describe = workload.describe()
        except Exception as exc:  # noqa: BLE001 - describe is informational
            describe = {"error": f"{type(exc).__name__}: {exc}"}
        _record_server(layout, system, describe, say)
        say(f"mlrepro-harness: workload loaded: {workload.dataset_size} samples, "
            f"performance sample count {workload.performance_sample_count}")

        lg = import_loadgen()
        model = spec.mlperf_model or cls.loadgen_model_for(spec.scenario)
        check_scenario(cls, spec)
        base_conf = base_user_conf(spec, model)
        timed = timed_settings(lg, base_conf, model, spec.scenario)
        check_latency_bounds(cls, spec, model, timed, lambda: timed_settings(lg, "", model, spec.scenario))
        fingerprint = system_fingerprint(system, spec.workload.backend, spec.workload.device,
                                         spec.workload.batch_size)
        probe = LoadgenProber(lg, workload, spec, model, layout.calibration_dir,
                              layout.relative(layout.calibration_dir), fail_fast=fail_fast, progress=say)
        tokens = TokenPolicy(bounds=cls.latency_bounds) if isinstance(workload, TokenWorkload) else None
        targets = decide_targets(spec, model, base_conf, fingerprint, probe, timed, say, tokens)
        failed = [d for d in targets.decisions if d.source == "calibrated" and d.value is None]
        if failed:
            raise _SubRunFailed(exit_codes.EXIT_RUNTIME, f"calibration of {failed[0].setting} failed: "
                                                          f"{failed[0].note}")
        built, user_conf_sha = _write_user_conf(lg, layout, spec, model, targets)
        conf_loading = _conf_dict(built)

        def subrun(kind: str) -> SubRunOutcome:
            nonlocal detached
            outdir = layout.subrun_dir(kind)
            outcome = SubRunOutcome(kind=kind, directory=layout.relative(outdir))
            subruns.append(outcome)
            set_mode(lg, built.settings, kind)
            say(f"mlrepro-harness: {spec.scenario} {kind} run -> {outcome.directory}")
            session = LoadgenSession(lg, workload, built.settings, spec.scenario, kind, outdir,
                                     layout.audit_config, spec.enable_trace, fail_fast=fail_fast, progress=say)
            try:
                info = session.run()
            except KeyboardInterrupt:
                detached = True
                outcome.logs = parse_log_dir(outdir)
                raise
            outcome.dispatch, outcome.warmup_predict_s = info.dispatch, info.warmup_predict_s
            outcome.duration_s, outcome.audit_config = info.duration_s, info.audit_config
            outcome.cpu_s = info.cpu_s
            outcome.request_failures = dict(info.query_failures)
            detached = info.detached
            outcome.logs = parse_log_dir(outdir)
            if info.failure is not None:
                if debug:
                    traceback.print_exception(info.failure, file=sys.stderr)
                code, msg = _failure_exit(info.failure)
                outcome.error = msg
                raise _SubRunFailed(code, f"{kind} run: {msg}")
            if kind == ACCURACY:
                try:
                    outcome.accuracy = evaluate_accuracy(workload, outdir)
                except Exception as exc:
                    if debug:
                        traceback.print_exc()
                    code, msg = _failure_exit(exc)
                    outcome.error = msg
                    raise _SubRunFailed(code, f"{kind} run: {msg}") from exc
            elif outcome.validity is None:
                outcome.error = "LoadGen wrote no result"
                raise _SubRunFailed(exit_codes.EXIT_RUNTIME,
                                    f"{kind} run: LoadGen wrote no result to {outcome.directory}")
            say(f"mlrepro-harness: {_summary_line(spec, outcome)}")
            return outcome

        for kind in subruns_for_mode(spec.mode):
            outcome = subrun(kind)
            if kind == PERFORMANCE and outcome.validity == "INVALID" and targets.retryable:
                assert outcome.logs is not None
                reasons = outcome.logs.invalid_reasons()
                say("mlrepro-harness: the timed run is INVALID with a "
                    f"{targets.decisions[0].source} target: recalibrating once and re-running")
                attempt = layout.calibration_dir / "invalid-attempt-1"
                attempt.parent.mkdir(parents=True, exist_ok=True)
                os.replace(layout.subrun_dir(kind), attempt)
                subruns.remove(outcome)
                recalibrate_after_invalid(targets, spec, probe, outcome.logs, reasons)
                assert targets.retry is not None
                targets.retry["previous_result"]["directory"] = layout.relative(attempt)
                say(f"mlrepro-harness: target {targets.decisions[0].line()}")
                built, user_conf_sha = _write_user_conf(lg, layout, spec, model, targets)
                conf_loading = _conf_dict(built)
                subrun(kind)

        if spec.compliance:     # compliance tests: the timed run's settings plus each test's audit.config
            audits = run_audits(lg, workload, built.settings, spec, layout, say, fail_fast=fail_fast)
        invalid = [o for o in subruns if o.kind == PERFORMANCE and o.validity != "VALID"]
        exit_code = exit_codes.EXIT_INVALID if invalid else exit_codes.EXIT_VALID
    except _SubRunFailed as exc:
        exit_code, error = exc.exit_code, str(exc)
    except ProbeFailed as exc:
        detached = detached or (probe is not None and probe.detached)
        cause = exc.__cause__ if exc.__cause__ is not None else exc
        if debug:
            traceback.print_exception(cause, file=sys.stderr)
        code, msg = _failure_exit(cause)
        exit_code, error = code, f"{exc}" if cause is exc else f"calibration: {msg}"
    except KeyboardInterrupt as exc:
        detached = detached or (probe is not None and probe.detached)
        exit_code = exit_codes.EXIT_INTERRUPTED
        error = f"interrupted by signal {exc.signum}" if isinstance(exc, Interrupted) else "interrupted"
    except Exception as exc:  # noqa: BLE001 - every failure becomes an exit status in the record
        if debug:
            traceback.print_exc()
        exit_code, error = _failure_exit(exc)
    finally:
        if isinstance(workload, TokenWorkload) and describe is not None and "error" not in describe:
            try:                          # what the run added (a model server's results by output source)
                describe = workload.describe()
            except Exception:  # noqa: BLE001 - describe is informational; the loaded one stays
                pass
        if workload is not None and not detached:
            try:
                workload.close()
            except Exception as exc:  # noqa: BLE001 - a failing close() must not hide the run's outcome
                say(f"mlrepro-harness: warning: workload close() failed: {type(exc).__name__}: {exc}")

    finished = utc_now()
    inputs = RecordInputs(spec=spec, started_at=started, finished_at=finished, duration_s=time.monotonic() - t0,
                          exit_code=exit_code, error=error, subruns=subruns,
                          workload_benchmark=getattr(cls, "benchmark", None) if cls else None,
                          workload_mlperf_model=(spec.mlperf_model or cls.loadgen_model_for(spec.scenario))
                          if cls else None,
                          workload_describe=describe, user_conf_sha256=user_conf_sha, conf_loading=conf_loading,
                          harness_version=mlrepro.__version__, system_file=layout.relative(layout.system_json)
                          if layout.system_json.exists() else None,
                          calibration=targets.to_dict() if targets is not None else None, framework=framework,
                          compliance=[audit_dict(a) for a in audits] if spec.compliance else None,
                          server=(describe or {}).get("server") if describe else None)
    record = build_record(inputs)
    say("mlrepro-harness: writing the run record and checksums")
    try:
        write_record(layout.record_json, record)
        write_manifest(layout.run_dir)
    except OSError as exc:
        if error is None:
            exit_code, error = exit_codes.EXIT_RUNTIME, f"cannot write the run record: {exc.strerror or exc}"
    status = exit_codes.NAMES.get(exit_code, str(exit_code))
    say(f"mlrepro-harness: {status}" + (f": {error}" if error else ""))
    return HarnessResult(exit_code=exit_code, status=status, run_dir=layout.run_dir, record=record,
                         subruns=tuple(subruns), error=error, loadgen_detached=detached)


def _record_server(layout: RunLayout, system: dict[str, Any], describe: dict[str, Any] | None,
                   say: Callable[[str], None]) -> dict[str, Any] | None:
    """A network SUT (a model server + this LoadGen client): its facts go into system.json (``model_server``,
    which the systems JSON of the tree reads) and are said once. None for an in-process SUT."""
    server = (describe or {}).get("server")
    if not isinstance(server, dict):
        return None
    system["model_server"] = server
    atomic_write_text(layout.system_json, json.dumps(system, indent=2, sort_keys=True) + "\n")
    say(f"mlrepro-harness: model server {server.get('engine')} {server.get('version') or '(version unknown)'} at "
        f"{server.get('base_url')}, model {server.get('served_model')}"
        + (f" (sha256 {str(server['model_sha256'])[:12]})" if server.get("model_sha256") else ""))
    return server


def check_scenario(cls: type[Workload], spec: RunSpec) -> None:
    """A workload that lists its scenarios (the LLM entries) runs only those. Raises WorkloadConfigError."""
    scenarios = getattr(cls, "scenarios", ())
    if scenarios and spec.scenario not in scenarios:
        raise WorkloadConfigError(f"workload {spec.workload.name!r} has no {spec.scenario} scenario "
                                  f"(its scenarios: {', '.join(scenarios)})")


def check_latency_bounds(cls: type[Workload], spec: RunSpec, model: str, timed: dict[str, float],
                         round_settings: Callable[[], dict[str, float]]) -> None:
    """A workload whose TTFT/TPOT bounds are the round's (``latency_bounds = "mlperf.conf"``: every closed LLM
    benchmark) runs with exactly mlperf.conf's: ``timed`` (LoadGen's effective settings with the run's user.conf)
    must hold the values ``round_settings()`` (mlperf.conf alone) gives. A profile line restating them changes
    nothing and passes. Raises WorkloadConfigError."""
    if getattr(cls, "latency_bounds", None) != "mlperf.conf" or spec.scenario not in ("Server", "Interactive"):
        return
    given = round_settings()
    for k in ("ttft_latency", "tpot_latency"):
        if timed.get(k) != given.get(k):
            raise WorkloadConfigError(f"benchmark {cls.benchmark}: {k} is fixed by the round at "
                                      f"{given.get(k, 0) / 1e6:g} ms (LoadGen's mlperf.conf for {model}); "
                                      f"benchmark.settings / user_conf make it {timed.get(k, 0) / 1e6:g} ms")


def base_user_conf(spec: RunSpec, model: str) -> str:
    """The run's user.conf without targets; a bad profile user.conf or setting is a configuration error."""
    try:
        return compose_user_conf(spec.user_conf, model, spec.scenario, spec.settings)
    except UserConfError as exc:
        first = exc.problems[0]
        more = f" (and {len(exc.problems) - 1} more)" if len(exc.problems) > 1 else ""
        raise WorkloadConfigError(f"user.conf {first}{more}") from None
    except ValueError as exc:
        raise WorkloadConfigError(f"settings: {exc}") from None


def timed_settings(lg: ModuleType, conf_text: str, model: str, scenario: str) -> dict[str, float]:
    """The timed run's effective settings before targets, as LoadGen reads mlperf.conf + ``conf_text``."""
    with tempfile.TemporaryDirectory(prefix="mlrepro-conf-") as tmp:
        path = Path(tmp) / "user.conf"
        path.write_text(conf_text, encoding="utf-8")
        return read_settings(build_settings(lg, path, model, scenario, official=False))


def _write_user_conf(lg: ModuleType, layout: RunLayout, spec: RunSpec, model: str,
                     targets: TargetsOutcome) -> tuple[BuiltSettings, str]:
    """Write the run's user.conf (profile lines + settings + targets) and load it: the file LoadGen reads is the
    file the results keep. Returns the settings and the file's sha256."""
    text = compose_user_conf(spec.user_conf, model, spec.scenario, spec.settings, targets.values())
    atomic_write_text(layout.user_conf, text)
    built = build_settings(lg, layout.user_conf, model, spec.scenario)
    return built, hashlib.sha256(text.encode("utf-8")).hexdigest()


def _conf_dict(built: BuiltSettings) -> dict[str, Any]:
    return {"model": built.conf.model, "method": built.conf.method, "return_codes": list(built.conf.return_codes)}
