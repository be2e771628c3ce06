"""The run spec: the one input of the harness (``/config/run.json`` in the container).

It is produced by :mod:`mlrepro.profiles` from a resolved profile and consumed here. Parsing is
strict and dependency-free (dataclasses) so the harness image needs no pydantic.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlrepro.harness.scenarios import (  # noqa: F401 - re-exported: the one list every module derives from
    LOADGEN_SCENARIOS,
    SCENARIOS,
    is_server_like,
    loadgen_scenario,
)
from mlrepro.harness.userconf import SETTING_KEYS as _SETTING_KEYS
from mlrepro.harness.userconf import setting_line

SCHEMA = "mlrepro.run/v1"
DEVICES = ("cpu", "cuda", "xpu")
"""Devices a run spec may name: the vendors' torch devices (mlrepro.profiles.vendors: cuda for NVIDIA and AMD's
ROCm build, xpu for Intel)."""
#: onnxruntime / torch: the classification workloads; transformers / vllm: the LLM workloads in-process
#: (:mod:`mlrepro.harness.workloads.llm`); openai: an LLM on a model server over its OpenAI-compatible API (the
#: network SUT, :mod:`mlrepro.harness.workloads.llm.backend_network`); none: no framework (the null workload)
BACKENDS = ("onnxruntime", "torch", "transformers", "vllm", "openai", "none")
#: the backend of a model server's LoadGen client (mlrepro.harness.workloads.llm.backend_network)
NETWORK_BACKEND = "openai"

#: modes a profile and ``--mode`` may name; "calibrate" (``mlrepro calibrate``) finds targets and runs no timed test;
#: "audit" (``mlrepro compliance``) runs only the compliance tests of an earlier run, with its user.conf
MODES = ("performance", "accuracy", "submission")
RUN_MODES = MODES + ("calibrate", "audit")
#: compliance tests the harness runs (mlrepro.harness.compliance.run)
AUDIT_TESTS = ("TEST01", "TEST04")
#: every compliance test a spec may request: AUDIT_TESTS and TEST06, the LLMs' (first token, EOS, sample length;
#: mlrepro.harness.compliance.verification.verify_test06), which only a token workload's run should ask for
HARNESS_AUDIT_TESTS = AUDIT_TESTS + ("TEST06",)
#: LoadGen TestSettings attributes a spec may override; each reaches LoadGen as a user.conf line (userconf.py)
SETTING_KEYS = _SETTING_KEYS


class SpecError(ValueError):
    """The run spec is invalid. The harness exits with EXIT_BAD_SPEC and prints ``str(err)``."""


@dataclass(frozen=True)
class WorkloadSpec:
    name: str                                  # entry point name in group "mlrepro.workloads"
    backend: str = "onnxruntime"               # onnxruntime | torch | transformers | vllm | openai | none
    device: str = "cpu"                        # cpu | cuda
    model_path: str | None = None              # user-provided model file (real MLPerf workloads)
    dataset_path: str | None = None            # user-provided dataset directory
    batch_size: int = 32
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CalibrationRequest:
    """What the launcher knows about targets: cached calibrations of this profile and scenario, keyed by system
    fingerprint (:func:`mlrepro.harness.calibration.system_fingerprint`), and whether to ignore them."""

    cached: dict[str, dict[str, Any]] = field(default_factory=dict)   # fingerprint -> {setting: value, ...}
    recalibrate: bool = False
    find_peak: bool = False


@dataclass(frozen=True)
class AuditRequest:
    """A compliance test to run after the mode's sub-runs: its name and the LoadGen settings of its
    audit.config (written as ``*.*.<key> = <value>`` lines)."""

    test: str                                  # TEST01 | TEST04
    settings: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RunSpec:
    run_id: str
    workload: WorkloadSpec
    scenario: str
    mode: str
    profile_name: str = ""
    profile_hash: str = ""
    mlperf_model: str = ""                     # model name for TestSettings.FromConfig; "" = workload default
    settings: dict[str, float] = field(default_factory=dict)   # LoadGen overrides, recorded in the run record
    user_conf: str = ""                        # user.conf text (may be empty)
    enable_trace: bool = False
    image: str = ""                            # image reference, when known
    calibration: CalibrationRequest = field(default_factory=lambda: CalibrationRequest())
    framework_pin: str = ""                    # "onnxruntime==1.20.1": the profile's pin, checked against the run
    reproduce: tuple[str, ...] = ()            # argv of the mlrepro command that re-runs this (recorded only)
    compliance: tuple[AuditRequest, ...] = ()  # compliance tests, run with the timed run's settings
    audit_of: str = ""                         # mode "audit": the run whose compliance tests these are
    schema: str = SCHEMA

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"


def _require(d: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in d:
        raise SpecError(f"{where}: missing required field '{key}'")
    value = d[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise SpecError(f"{where}.{key}: expected {getattr(kind, '__name__', kind)}, got {type(value).__name__}")
    return value


def _check_keys(d: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise SpecError(f"{where}: unknown field '{unknown[0]}'")


def parse_spec(data: Any, where: str = "spec") -> RunSpec:
    """Validate a decoded JSON document and return a RunSpec, or raise SpecError (one line)."""
    if not isinstance(data, dict):
        raise SpecError(f"{where}: expected a JSON object")
    _check_keys(data, set(RunSpec.__dataclass_fields__), where)
    schema = data.get("schema", SCHEMA)
    if schema != SCHEMA:
        raise SpecError(f"{where}.schema: unsupported schema {schema!r} (expected {SCHEMA!r})")
    w = _require(data, "workload", dict, where)
    _check_keys(w, set(WorkloadSpec.__dataclass_fields__), f"{where}.workload")
    name = _require(w, "name", str, f"{where}.workload")
    backend = w.get("backend", "onnxruntime")
    device = w.get("device", "cpu")
    if backend not in BACKENDS:
        raise SpecError(f"{where}.workload.backend: {backend!r} is not one of {', '.join(BACKENDS)}")
    if device not in DEVICES:
        raise SpecError(f"{where}.workload.device: {device!r} is not one of {', '.join(DEVICES)}")
    batch = w.get("batch_size", 32)
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise SpecError(f"{where}.workload.batch_size: expected a positive integer, got {batch!r}")
    for k in ("model_path", "dataset_path"):
        if w.get(k) is not None and not isinstance(w[k], str):
            raise SpecError(f"{where}.workload.{k}: expected a string path")
    options = w.get("options", {})
    if not isinstance(options, dict):
        raise SpecError(f"{where}.workload.options: expected an object")
    workload = WorkloadSpec(name=name, backend=backend, device=device, model_path=w.get("model_path"),
                            dataset_path=w.get("dataset_path"), batch_size=batch, options=options)
    run_id = _require(data, "run_id", str, where)
    if not run_id or any(c in run_id for c in "/\\\n\r\0") or run_id in (".", ".."):
        raise SpecError(f"{where}.run_id: {run_id!r} is not a valid run id")
    scenario = _require(data, "scenario", str, where)
    if scenario not in SCENARIOS:
        raise SpecError(f"{where}.scenario: {scenario!r} is not one of {', '.join(SCENARIOS)}")
    mode = _require(data, "mode", str, where)
    if mode not in RUN_MODES:
        raise SpecError(f"{where}.mode: {mode!r} is not one of {', '.join(RUN_MODES)}")
    settings = data.get("settings", {})
    if not isinstance(settings, dict):
        raise SpecError(f"{where}.settings: expected an object")
    for k, v in settings.items():
        if k not in SETTING_KEYS:
            raise SpecError(f"{where}.settings.{k}: not a LoadGen setting mlrepro can override")
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
            raise SpecError(f"{where}.settings.{k}: expected a non-negative number, got {v!r}")
        try:
            setting_line("*", loadgen_scenario(scenario), k, v)
        except ValueError as exc:
            raise SpecError(f"{where}.settings.{k}: {exc}") from None
    for k in ("profile_name", "profile_hash", "mlperf_model", "user_conf", "image", "framework_pin"):
        if k in data and not isinstance(data[k], str):
            raise SpecError(f"{where}.{k}: expected a string")
    trace = data.get("enable_trace", False)
    if not isinstance(trace, bool):
        raise SpecError(f"{where}.enable_trace: expected true or false")
    reproduce = data.get("reproduce", [])
    if not isinstance(reproduce, (list, tuple)) or not all(isinstance(a, str) for a in reproduce):
        raise SpecError(f"{where}.reproduce: expected a list of strings")
    audit_of = data.get("audit_of", "")
    if not isinstance(audit_of, str):
        raise SpecError(f"{where}.audit_of: expected a string")
    compliance = _parse_compliance(data.get("compliance", []), f"{where}.compliance")
    if mode == "audit" and (not compliance or not audit_of):
        raise SpecError(f"{where}: mode 'audit' needs compliance tests and audit_of (the audited run)")
    return RunSpec(run_id=run_id, workload=workload, scenario=scenario, mode=mode,
                   profile_name=data.get("profile_name", ""), profile_hash=data.get("profile_hash", ""),
                   mlperf_model=data.get("mlperf_model", ""), settings=dict(settings),
                   user_conf=data.get("user_conf", ""), enable_trace=trace, image=data.get("image", ""),
                   calibration=_parse_calibration(data.get("calibration", {}), f"{where}.calibration"),
                   framework_pin=data.get("framework_pin", ""), reproduce=tuple(reproduce),
                   compliance=compliance, audit_of=audit_of)


def _parse_compliance(data: Any, where: str) -> tuple[AuditRequest, ...]:
    if not isinstance(data, (list, tuple)):
        raise SpecError(f"{where}: expected a list")
    out: list[AuditRequest] = []
    for i, item in enumerate(data):
        w = f"{where}[{i}]"
        if not isinstance(item, dict):
            raise SpecError(f"{w}: expected an object")
        _check_keys(item, set(AuditRequest.__dataclass_fields__), w)
        test = _require(item, "test", str, w)
        if test not in HARNESS_AUDIT_TESTS:
            raise SpecError(f"{w}.test: {test!r} is not one of {', '.join(HARNESS_AUDIT_TESTS)}")
        if any(r.test == test for r in out):
            raise SpecError(f"{w}.test: {test} is listed twice")
        settings = item.get("settings", {})
        if not isinstance(settings, dict) or not all(
                isinstance(k, str) and k.isidentifier() and isinstance(v, int) and not isinstance(v, bool)
                for k, v in settings.items()):
            raise SpecError(f"{w}.settings: expected an object of LoadGen setting names and integers")
        out.append(AuditRequest(test=test, settings=dict(settings)))
    return tuple(out)


def _parse_calibration(data: Any, where: str) -> CalibrationRequest:
    if not isinstance(data, dict):
        raise SpecError(f"{where}: expected an object")
    _check_keys(data, set(CalibrationRequest.__dataclass_fields__), where)
    cached = data.get("cached", {})
    if not isinstance(cached, dict) or not all(isinstance(v, dict) for v in cached.values()):
        raise SpecError(f"{where}.cached: expected an object of objects (fingerprint -> targets)")
    for fp, entry in cached.items():
        for k in SETTING_KEYS:
            v = entry.get(k)
            if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0):
                raise SpecError(f"{where}.cached.{fp}.{k}: expected a positive number, got {v!r}")
    flags = {}
    for k in ("recalibrate", "find_peak"):
        flags[k] = data.get(k, False)
        if not isinstance(flags[k], bool):
            raise SpecError(f"{where}.{k}: expected true or false")
    return CalibrationRequest(cached=dict(cached), **flags)


def load_spec(path: str | Path) -> RunSpec:
    """Read and validate a run spec file. Raises SpecError naming the file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{p}: cannot read run spec ({exc.strerror or exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{p}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    return parse_spec(data, where=str(p))
