"""The run record (``record.json``): what ran, how, and what LoadGen said. Written atomically.

Top-level keys (schema ``mlrepro.record/v1``)::

    schema, run_id, profile_name, profile_hash, image {reference, digest}, scenario, mode,
    workload {name, backend, device, batch_size, benchmark, mlperf_model, model_path, dataset_path, describe},
    settings {overrides, short_run, user_conf_sha256, conf_loading}, seeds {qsl_rng_seed, ...},
    calibration {fingerprint, policy, targets [{setting, value, source, measured, margin, cost_s, probes}],
                 timed_settings, cost_s, retry, dropped_cache} | null,
    framework {package, pinned, installed, matches} | null, reproduce {argv} | null,
    compliance [{test, directory, audit_config, validity, audit_config_used, passed, verifications, ...}] | null,
    server {engine, version, version_source, command, engine_command, model, model_path, model_sha256,
            served_model, base_url, image, started_by, sut} | null (a model server + LoadGen client: backend openai),
    audit_of (mode "audit": the audited run) | null,
    started_at, finished_at, duration_s (UTC ISO 8601), status {name, exit_code, error},
    subruns [{kind, directory, validity, results{..., tokens}, seeds, loadgen_errors, loadgen_warnings, dispatch,
              request_failures {kind: count} (queries a model server failed), ...}],
    accuracy {metric, value, unit, line, log_sha256, samples, dataset_size} | null,
    loadgen {version, errors [...], warnings [...]}, harness {version, python}, system "system.json"

``results.tokens`` (LLMs, token latencies; null otherwise) is :func:`mlrepro.harness.logparse.token_metrics`:
``tokens_per_second`` (Offline), ``completed_tokens_per_second`` (Server / Interactive), ``ttft_ns`` and
``tpot_ns`` {min, max, mean, percentiles}, ``ttft_p99_ns``, ``tpot_p99_ns``, ``ttft_bound_ns``,
``tpot_bound_ns`` (the bounds LoadGen held the run to), ``early_stopping_ttft_result``,
``early_stopping_tpot_result``. Where the bounds came from (mlperf.conf, or calibrated / cached / pinned for the
open-division demo) is in ``calibration.targets`` (settings ``ttft_latency`` / ``tpot_latency``) and
``calibration.latency_bounds``. docs/llm.md documents every field.

``short_run`` is true when a duration or query-count override was given, or a performance run's effective
``min_duration_ms`` is below the 600 s that closed-division results need.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlrepro.harness.accuracy import AccuracyOutcome
from mlrepro.harness.checksums import atomic_write_text
from mlrepro.harness.exit_codes import NAMES
from mlrepro.harness.logparse import LogEntry, ParsedLogs, token_metrics
from mlrepro.harness.spec import RunSpec

SCHEMA = "mlrepro.record/v1"
IMAGE_DIGEST_ENV = "MLREPRO_IMAGE_DIGEST"
SHORT_RUN_KEYS = ("min_duration_ms", "max_duration_ms", "min_query_count", "max_query_count")
CLOSED_MIN_DURATION_MS = 600_000
MAX_LISTED_ENTRIES = 50


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class SubRunOutcome:
    """One LoadGen sub-run as the harness saw it (input of the record)."""

    kind: str                                  # performance | accuracy
    directory: str                             # relative to the run dir
    logs: ParsedLogs | None = None
    accuracy: AccuracyOutcome | None = None
    dispatch: str | None = None
    warmup_predict_s: float | None = None
    duration_s: float | None = None
    cpu_s: float | None = None
    audit_config: str | None = None
    error: str | None = None
    request_failures: dict[str, int] = field(default_factory=dict)   # queries a model server failed, by kind

    @property
    def validity(self) -> str | None:
        return self.logs.validity if self.logs is not None else None


def _entries(entries: list[LogEntry]) -> list[dict[str, Any]]:
    return [e.to_dict() for e in entries[:MAX_LISTED_ENTRIES]]


def subrun_results(logs: ParsedLogs | None) -> dict[str, Any]:
    """The figures of a sub-run, from the summary (falling back to the detail log's result_* keys)."""
    s = logs.summary if logs else None
    d = logs.detail if logs else None
    res = d.results if d else {}

    def pick(summary_value: Any, detail_key: str) -> Any:
        return summary_value if summary_value is not None else res.get(detail_key)

    return {
        "validity": logs.validity if logs else None,
        "samples_per_second": pick(s.samples_per_second if s else None, "result_samples_per_second"),
        "completed_samples_per_second": pick(s.completed_samples_per_second if s else None,
                                             "result_completed_samples_per_sec"),
        "scheduled_samples_per_second": pick(s.scheduled_samples_per_second if s else None,
                                             "result_scheduled_samples_per_sec"),
        "result_latency_percentile": s.result_latency_percentile if s else None,
        "result_latency_ns": s.result_latency_ns if s else None,
        "latency_ns": {
            "min": pick(s.min_latency_ns if s else None, "result_min_latency_ns"),
            "max": pick(s.max_latency_ns if s else None, "result_max_latency_ns"),
            "mean": pick(s.mean_latency_ns if s else None, "result_mean_latency_ns"),
            "percentiles": dict(s.latency_percentiles_ns) if s else {},
        },
        "min_duration_satisfied": s.min_duration_satisfied if s else None,
        "min_queries_satisfied": s.min_queries_satisfied if s else None,
        "early_stopping_satisfied": s.early_stopping_satisfied if s else None,
        "performance_constraints_satisfied": s.performance_constraints_satisfied if s else None,
        "query_count": res.get("result_query_count"),
        "invalid_reason": res.get("result_invalid_reason"),
        "tokens": token_metrics(d),
    }


def _accuracy_dict(acc: AccuracyOutcome | None) -> dict[str, Any] | None:
    if acc is None:
        return None
    r = acc.result
    return {"metric": r.metric, "value": r.value, "unit": r.unit, "line": r.line(), "details": r.details,
            "log_sha256": acc.log_sha256, "samples": acc.samples, "dataset_size": acc.dataset_size}


def _subrun_dict(o: SubRunOutcome) -> dict[str, Any]:
    d = o.logs.detail if o.logs else None
    return {
        "kind": o.kind,
        "directory": o.directory,
        "validity": o.validity,
        "results": subrun_results(o.logs),
        "seeds": dict(d.seeds) if d else {},
        "effective_settings": {k[len("effective_"):]: v for k, v in d.effective.items()} if d else {},
        "loadgen_errors": _entries(d.errors) if d else [],
        "loadgen_warnings": _entries(d.warnings) if d else [],
        "logs_found": {"summary": bool(o.logs and o.logs.summary), "detail": bool(o.logs and o.logs.detail)},
        "accuracy": _accuracy_dict(o.accuracy),
        "dispatch": o.dispatch,
        "warmup_predict_s": o.warmup_predict_s,
        "duration_s": o.duration_s,
        "cpu_s": o.cpu_s,
        "audit_config": o.audit_config,
        "error": o.error,
        "request_failures": dict(o.request_failures),
    }


def is_short_run(overrides: dict[str, float], subruns: list[SubRunOutcome]) -> bool:
    if any(k in overrides for k in SHORT_RUN_KEYS):
        return True
    for o in subruns:
        d = o.logs.detail if o.logs else None
        if o.kind == "performance" and d is not None:
            v = d.effective.get("effective_min_duration_ms")
            if isinstance(v, (int, float)) and v < CLOSED_MIN_DURATION_MS:
                return True
    return False


@dataclass
class RecordInputs:
    spec: RunSpec
    started_at: str
    finished_at: str
    duration_s: float
    exit_code: int
    error: str | None = None
    subruns: list[SubRunOutcome] = field(default_factory=list)
    workload_benchmark: str | None = None
    workload_mlperf_model: str | None = None
    workload_describe: dict[str, Any] | None = None
    user_conf_sha256: str | None = None
    conf_loading: dict[str, Any] | None = None
    harness_version: str | None = None
    system_file: str | None = None
    calibration: dict[str, Any] | None = None
    framework: dict[str, Any] | None = None
    compliance: list[dict[str, Any]] | None = None    # mlrepro.harness.compliance.run.audit_dict of each test
    server: dict[str, Any] | None = None              # the model server of a network SUT (backend openai)


def build_record(inp: RecordInputs, env: dict[str, str] | None = None) -> dict[str, Any]:
    environ = os.environ if env is None else env
    spec = inp.spec
    w = spec.workload
    seeds: dict[str, Any] = {}
    errors: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []
    version = None
    for o in inp.subruns:
        d = o.logs.detail if o.logs else None
        if d is None:
            continue
        if not seeds:
            seeds = dict(d.seeds)
        version = version or d.loadgen_version
        errors += [dict(e.to_dict(), subrun=o.kind) for e in d.errors]
        warnings += [dict(e.to_dict(), subrun=o.kind) for e in d.warnings]
    accuracy = next((_accuracy_dict(o.accuracy) for o in inp.subruns if o.accuracy is not None), None)
    return {
        "schema": SCHEMA,
        "run_id": spec.run_id,
        "profile_name": spec.profile_name,
        "profile_hash": spec.profile_hash,
        "image": {"reference": spec.image or None, "digest": environ.get(IMAGE_DIGEST_ENV) or None},
        "scenario": spec.scenario,
        "mode": spec.mode,
        "workload": {
            "name": w.name, "backend": w.backend, "device": w.device, "batch_size": w.batch_size,
            "model_path": w.model_path, "dataset_path": w.dataset_path, "options": w.options,
            "benchmark": inp.workload_benchmark, "mlperf_model": inp.workload_mlperf_model,
            "describe": inp.workload_describe,
        },
        "calibration": inp.calibration,
        "framework": inp.framework,
        "reproduce": {"argv": list(spec.reproduce)} if spec.reproduce else None,
        "compliance": inp.compliance,
        "server": inp.server,
        "audit_of": spec.audit_of or None,
        "settings": {
            "overrides": dict(spec.settings),
            "short_run": is_short_run(spec.settings, inp.subruns),
            "user_conf_sha256": inp.user_conf_sha256,
            "conf_loading": inp.conf_loading,
            "enable_trace": spec.enable_trace,
        },
        "seeds": seeds,
        "started_at": inp.started_at,
        "finished_at": inp.finished_at,
        "duration_s": round(inp.duration_s, 3),
        "status": {"name": NAMES.get(inp.exit_code, str(inp.exit_code)), "exit_code": inp.exit_code,
                   "error": inp.error},
        "subruns": [_subrun_dict(o) for o in inp.subruns],
        "accuracy": accuracy,
        "loadgen": {"version": version, "errors": errors[:MAX_LISTED_ENTRIES],
                    "warnings": warnings[:MAX_LISTED_ENTRIES]},
        "harness": {"version": inp.harness_version, "python": platform.python_version(),
                    "machine": platform.machine()},
        "system": inp.system_file,
    }


def write_record(path: Path, record: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
