"""MLPerf inference rounds as data: one table per round (``data/<version>.yaml``) over shared defaults
(``data/common.yaml``), loaded into typed, immutable objects.

A round file may replace any top-level key of ``common.yaml`` (whole: mappings are not merged). Keys:

- ``round``, ``layout`` (``v5``: separate ``measurements/``, ``compliance/``, ``code/``; ``v6``: per-scenario
  files and ``src/``; the templates are ``layouts`` in common.yaml), ``seeds`` (the three LoadGen RNG seeds of
  mlperf.conf), ``aliases`` (folder name -> benchmark), ``result_field`` (scenario -> the detail-log key of the
  metric), ``benchmarks``.
- per benchmark: ``scenarios`` (system type -> ``required``, ``optional``, ``one_of``), ``accuracy`` (list of
  ``[metric, reference, ratio]``, or scenario -> list), ``accuracy_upper``, ``accuracy_delta_percent``,
  ``performance_sample_count``, ``dataset_size``, ``accuracy_sample_count`` (number or scenario -> number),
  ``min_queries`` (scenario -> count), ``offline_min_samples_per_query``, ``latency_ns`` (scenario -> ns),
  ``llm`` / ``token_latency_ns`` (scenario -> ttft/tpot ns), ``result_field`` and ``unit`` (scenario ->
  override), ``compliance`` (tests), ``audit_sampling_target`` (TEST01), ``extra_accuracy_files``
  (folder -> file stems), ``min_duration_exempt``.
- ``endpoints`` (v6.1 on): how an endpoints result (no LoadGen logs) is read (:class:`EndpointsRules`).

Source of every value: the MLCommons submission checker (mlcommons/inference, tools/submission, commit
b66003e) and compliance/TEST0x/audit.config of the same repository.

Public API::

    ROUNDS: tuple[str, ...]           ("v5.0", "v5.1", "v6.0", "v6.1")
    DEFAULT_ROUND: str                the newest
    load_round(version=None) -> Round          (UnknownRoundError, RoundDataError)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from mlrepro.errors import BadInputError, MlreproError

DATA_DIR = Path(__file__).parent / "data"


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version))


#: the rounds mlrepro has rules for: one data file each (``data/v<major>.<minor>.yaml``), oldest first
ROUNDS: tuple[str, ...] = tuple(sorted((p.stem for p in DATA_DIR.glob("v*.yaml")), key=_version_key))
DEFAULT_ROUND = ROUNDS[-1]


class UnknownRoundError(BadInputError):
    """A round (``--version``) mlrepro has no rules for."""


class RoundDataError(MlreproError):
    """A round data file is malformed (a bug in mlrepro's data, not in the user's input)."""


@dataclass(frozen=True)
class AccuracyTarget:
    """``metric`` must reach ``reference × ratio`` (an upper limit: must not exceed it)."""

    metric: str
    reference: float
    ratio: float

    @property
    def value(self) -> float:
        return self.reference * self.ratio


@dataclass(frozen=True)
class ScenarioRule:
    """Scenario folders a benchmark needs for one system type."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    one_of: tuple[str, ...] = ()        # at least one of these (LLMs: Server or Interactive)


@dataclass(frozen=True)
class Benchmark:
    name: str
    scenarios: Mapping[str, ScenarioRule]                    # system type -> rule
    accuracy: Mapping[str, tuple[AccuracyTarget, ...]]       # "" = every scenario, else per scenario
    accuracy_upper: tuple[AccuracyTarget, ...] = ()
    accuracy_delta_percent: Mapping[str, float] = field(default_factory=dict)
    performance_sample_count: int | None = None
    dataset_size: int | None = None
    accuracy_sample_count: Mapping[str, int] = field(default_factory=dict)   # "" = every scenario
    min_queries: Mapping[str, int] = field(default_factory=dict)
    offline_min_samples_per_query: int | None = None
    latency_ns: Mapping[str, int] = field(default_factory=dict)
    llm: bool = False
    token_latency_ns: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    result_field: Mapping[str, str] = field(default_factory=dict)
    unit: Mapping[str, str] = field(default_factory=dict)
    compliance: tuple[str, ...] = ()
    audit_sampling_target: int | None = None
    extra_accuracy_files: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    min_duration_exempt: bool = False

    def accuracy_targets(self, scenario: str) -> tuple[AccuracyTarget, ...]:
        """The targets for a scenario folder (per-scenario tables fall back to Offline, then Server)."""
        if "" in self.accuracy:
            return self.accuracy[""]
        for key in (scenario, "Offline", "Server"):
            if key in self.accuracy:
                return self.accuracy[key]
        return ()

    def expected_accuracy_samples(self, scenario: str) -> int | None:
        """Samples an accuracy run must cover: ``accuracy_sample_count`` (per scenario) else the dataset size."""
        if "" in self.accuracy_sample_count:
            return self.accuracy_sample_count[""]
        if scenario in self.accuracy_sample_count:
            return self.accuracy_sample_count[scenario]
        return self.dataset_size

    def delta_percent(self, metric: str, default: Mapping[str, float]) -> float:
        """Allowed TEST01 baseline/compliance accuracy difference in percent."""
        if metric in self.accuracy_delta_percent:
            return self.accuracy_delta_percent[metric]
        return default["high_accuracy"] if "99.9" in self.name else default["default"]


@dataclass(frozen=True)
class Layout:
    """Where things are below ``<division>/<submitter>/`` (templates with {system} {benchmark} {scenario})."""

    name: str
    code_dir: str
    result_dir: str
    measurements_dir: str
    measurements_file: str | None       # None: found by name (v5.x: <system>[_<scenario>].json)
    compliance_dir: str

    def path(self, template: str, system: str, benchmark: str, scenario: str) -> str:
        return template.format(system=system, benchmark=benchmark, scenario=scenario)


@dataclass(frozen=True)
class SystemField:
    """One field of ``systems/<system>.json`` (see common.yaml ``systems.fields``)."""

    name: str
    required: bool = False
    meaningful: bool = False
    types: tuple[str, ...] = ()
    allowed: tuple[str, ...] = ()
    case_sensitive: bool = False
    severity: str | None = None         # of a type / allowed-value problem; None: the defaults

    @property
    def type_severity(self) -> str:
        return self.severity or "warning"

    @property
    def allowed_severity(self) -> str:
        return self.severity or "error"


@dataclass(frozen=True)
class SystemRules:
    fields: tuple[SystemField, ...]
    network_fields: tuple[str, ...]
    network_mode: Mapping[str, bool]

    @property
    def required_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.required)


@dataclass(frozen=True)
class ComplianceTest:
    name: str
    verify: tuple[str, ...]
    performance: bool = False
    accuracy_files: tuple[str, ...] = ()
    nondeterministic_files: tuple[str, ...] = ()
    lines: tuple[str, ...] = ()
    any_line: tuple[str, ...] = ()


@dataclass(frozen=True)
class ComplianceRules:
    tests: Mapping[str, ComplianceTest]
    performance_files: tuple[str, ...]
    performance_optional: tuple[str, ...]
    audit: Mapping[str, Mapping[str, int]]


@dataclass(frozen=True)
class EndpointsRules:
    """How a round reads an "endpoints" result (v6.1 on: the endpoints harness's files instead of LoadGen logs)
    as the official checker does: which files, and which LoadGen key each endpoints field stands for."""

    config: tuple[str, ...]                  # config.yaml names, at the result folder's root
    performance: str                         # performance/result_summary.json
    accuracy: str                            # accuracy/accuracy_results.json
    audit_dir: str                           # audit/audit_<test name>.json
    models: tuple[str, ...]                  # benchmarks that may be submitted so
    fields: Mapping[str, str]                # endpoints field (dotted path) -> LoadGen key
    config_fields: Mapping[str, str]         # endpoints field -> its path in config.yaml
    json_fields: Mapping[str, str]           # endpoints field -> its other path in the JSON files
    copied: Mapping[str, str]                # LoadGen key -> the LoadGen key it is copied from
    types: Mapping[str, str]                 # config.yaml type -> scenario
    result_field: Mapping[str, str]          # lower-case scenario -> LoadGen key of the metric
    compliance: Mapping[str, str]            # TEST0x -> audit test name
    required_audits: tuple[str, ...]
    test09_mean_output_tokens: tuple[float, float]
    score_keys: Mapping[str, str]            # accuracy metric -> key of an accuracy_results.json score


@dataclass(frozen=True)
class FileRules:
    performance_dir: str
    accuracy_dir: str
    performance_required: tuple[str, ...]
    accuracy_required: tuple[str, ...]
    measurements_required: tuple[str, ...]
    power_dir: str


@dataclass(frozen=True)
class Round:
    """The rules of one MLPerf inference round."""

    version: str
    layout: Layout
    divisions: tuple[str, ...]
    scenarios: tuple[str, ...]
    system_types: Mapping[str, str]          # as written -> canonical key of Benchmark.scenarios
    seeds: Mapping[str, int]
    aliases: Mapping[str, str]
    alias_substrings: tuple[tuple[str, str], ...]
    result_field: Mapping[str, str]
    benchmarks: Mapping[str, Benchmark]
    min_duration_ms: int
    max_accuracy_log_bytes: int
    early_stopping_scenarios: tuple[str, ...]
    inferable: tuple[tuple[str, str], ...]
    network_sut_name: str
    files: FileRules
    measurements_fields: tuple[str, ...]
    units: Mapping[str, str]
    accuracy_patterns: Mapping[str, re.Pattern[str]]
    accuracy_delta_percent: Mapping[str, float]
    systems: SystemRules
    compliance: ComplianceRules
    endpoints: EndpointsRules | None = None  # None: the round has no endpoints results

    def canonical_scenario(self, folder: str) -> str | None:
        """The scenario a folder name stands for (case-insensitive, as the checker compares), else None."""
        low = folder.lower()
        for s in self.scenarios:
            if s.lower() == low:
                return s
        return None

    def benchmark_name(self, folder: str, model_mapping: Mapping[str, Any] | None = None) -> str:
        """The benchmark a result folder name maps to: itself, a round alias, ``model_mapping.json`` (open
        division), then the checker's substring guesses; the folder name itself when nothing matches."""
        if folder in self.benchmarks:
            return folder
        if folder in self.aliases:
            return self.aliases[folder]
        mapped = (model_mapping or {}).get(folder)
        if isinstance(mapped, str) and mapped:
            return mapped
        name = folder
        for needle, target in self.alias_substrings:
            if needle in folder:
                name = target
                break
        return self.aliases.get(name, name)

    def benchmark(self, folder: str, model_mapping: Mapping[str, Any] | None = None) -> Benchmark | None:
        return self.benchmarks.get(self.benchmark_name(folder, model_mapping))

    def result_key(self, benchmark: Benchmark | None, log_scenario: str) -> str | None:
        """The detail-log key of the result metric for a run of ``log_scenario``."""
        if benchmark is not None and log_scenario in benchmark.result_field:
            return benchmark.result_field[log_scenario]
        return self.result_field.get(log_scenario)

    def unit(self, benchmark: Benchmark | None, scenario: str) -> str:
        if benchmark is not None and scenario in benchmark.unit:
            return benchmark.unit[scenario]
        return self.units.get(scenario, "")


# --- loading -------------------------------------------------------------------------------------------

def _t(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RoundDataError(f"{where}: expected a list of strings")
    return tuple(value)


def _targets(value: Any, where: str) -> tuple[AccuracyTarget, ...]:
    if not isinstance(value, list):
        raise RoundDataError(f"{where}: expected a list of [metric, reference, ratio]")
    out = []
    for item in value:
        if not (isinstance(item, list) and len(item) == 3 and isinstance(item[0], str)
                and all(isinstance(x, (int, float)) for x in item[1:])):
            raise RoundDataError(f"{where}: {item!r} is not [metric, reference, ratio]")
        out.append(AccuracyTarget(item[0], float(item[1]), float(item[2])))
    return tuple(out)


def _per_scenario(value: Any, conv: Any, where: str) -> dict[str, Any]:
    """A value for every scenario ("" key) or a scenario -> value mapping."""
    if isinstance(value, dict):
        return {str(k): conv(v, f"{where}.{k}") for k, v in value.items()}
    return {"": conv(value, where)}


def _int(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise RoundDataError(f"{where}: expected an integer")
    return value


def _benchmark(name: str, raw: Mapping[str, Any], where: str) -> Benchmark:
    known = {"scenarios", "accuracy", "accuracy_upper", "accuracy_delta_percent", "performance_sample_count",
             "dataset_size", "accuracy_sample_count", "min_queries", "offline_min_samples_per_query",
             "latency_ns", "llm", "token_latency_ns", "result_field", "unit", "compliance",
             "audit_sampling_target", "extra_accuracy_files", "min_duration_exempt"}
    unknown = set(raw) - known
    if unknown:
        raise RoundDataError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    scen = {}
    for st, rule in (raw.get("scenarios") or {}).items():
        w = f"{where}.scenarios.{st}"
        scen[str(st)] = ScenarioRule(_t(rule.get("required"), w), _t(rule.get("optional"), w),
                                     _t(rule.get("one_of"), w))
    opt_int = lambda k: _int(raw[k], f"{where}.{k}") if raw.get(k) is not None else None  # noqa: E731
    return Benchmark(
        name=name, scenarios=scen,
        accuracy=_per_scenario(raw["accuracy"], _targets, f"{where}.accuracy") if "accuracy" in raw else {},
        accuracy_upper=_targets(raw.get("accuracy_upper", []), f"{where}.accuracy_upper"),
        accuracy_delta_percent={str(k): float(v) for k, v in (raw.get("accuracy_delta_percent") or {}).items()},
        performance_sample_count=opt_int("performance_sample_count"),
        dataset_size=opt_int("dataset_size"),
        accuracy_sample_count=(_per_scenario(raw["accuracy_sample_count"], _int, f"{where}.accuracy_sample_count")
                               if "accuracy_sample_count" in raw else {}),
        min_queries={str(k): _int(v, f"{where}.min_queries") for k, v in (raw.get("min_queries") or {}).items()},
        offline_min_samples_per_query=opt_int("offline_min_samples_per_query"),
        latency_ns={str(k): _int(v, f"{where}.latency_ns") for k, v in (raw.get("latency_ns") or {}).items()},
        llm=bool(raw.get("llm", False)),
        token_latency_ns={str(k): {str(a): _int(b, f"{where}.token_latency_ns") for a, b in v.items()}
                          for k, v in (raw.get("token_latency_ns") or {}).items()},
        result_field={str(k): str(v) for k, v in (raw.get("result_field") or {}).items()},
        unit={str(k): str(v) for k, v in (raw.get("unit") or {}).items()},
        compliance=_t(raw.get("compliance"), f"{where}.compliance"),
        audit_sampling_target=opt_int("audit_sampling_target"),
        extra_accuracy_files={str(k): tuple(str(x) for x in v)
                              for k, v in (raw.get("extra_accuracy_files") or {}).items()},
        min_duration_exempt=bool(raw.get("min_duration_exempt", False)),
    )


def _system_field(name: str, raw: Mapping[str, Any]) -> SystemField:
    return SystemField(name=name, required=bool(raw.get("required", False)),
                       meaningful=bool(raw.get("meaningful", False)), types=tuple(raw.get("types") or ()),
                       allowed=tuple(raw.get("allowed") or ()), case_sensitive=bool(raw.get("case_sensitive")),
                       severity=raw.get("severity"))


def _compliance(raw: Mapping[str, Any]) -> ComplianceRules:
    tests = {}
    for name, t in raw["tests"].items():
        tests[name] = ComplianceTest(name=name, verify=tuple(t.get("verify") or ()),
                                     performance=bool(t.get("performance")),
                                     accuracy_files=tuple(t.get("accuracy_files") or ()),
                                     nondeterministic_files=tuple(t.get("nondeterministic_files") or ()),
                                     lines=tuple(t.get("lines") or ()), any_line=tuple(t.get("any_line") or ()))
    return ComplianceRules(tests=tests, performance_files=tuple(raw["performance_files"]),
                           performance_optional=tuple(raw["performance_optional"]),
                           audit={k: dict(v) for k, v in raw["audit"].items()})


def _endpoints(raw: Mapping[str, Any] | None) -> EndpointsRules | None:
    if raw is None:
        return None
    strs = lambda k: {str(a): str(b) for a, b in (raw.get(k) or {}).items()}  # noqa: E731
    low, high = raw["test09_mean_output_tokens"]
    return EndpointsRules(config=tuple(raw["config"]), performance=str(raw["performance"]),
                          accuracy=str(raw["accuracy"]), audit_dir=str(raw["audit_dir"]),
                          models=tuple(raw["models"]), fields=strs("fields"), config_fields=strs("config_fields"),
                          json_fields=strs("json_fields"), copied=strs("copied"), types=strs("types"),
                          result_field=strs("result_field"), compliance=strs("compliance"),
                          required_audits=tuple(raw.get("required_audits") or ()),
                          test09_mean_output_tokens=(float(low), float(high)), score_keys=strs("score_keys"))


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 (a safe loader)
    except (OSError, yaml.YAMLError) as exc:
        raise RoundDataError(f"{path}: cannot read round data ({exc})") from None
    if not isinstance(data, dict):
        raise RoundDataError(f"{path}: not a mapping")
    return data


@cache
def checker_benchmarks(layout: str = "v6") -> frozenset[str]:
    """Every benchmark name the checker knows in the rounds of ``layout`` (closed-division results must use one
    of them; an open-division model maps to one)."""
    return frozenset(name for v in ROUNDS if (r := load_round(v)).layout.name == layout for name in r.benchmarks)


def load_round(version: str | None = None) -> Round:
    """The rules of ``version`` (default: the newest round), read once per process. Raises UnknownRoundError
    for a round mlrepro has no table for, RoundDataError when the table is malformed."""
    return _load_round(version or DEFAULT_ROUND)


@cache
def _load_round(version: str) -> Round:
    if version not in ROUNDS:
        raise UnknownRoundError(f"unknown MLPerf round {version!r} (known: {', '.join(ROUNDS)})")
    raw = {**_read_yaml(DATA_DIR / "common.yaml"), **_read_yaml(DATA_DIR / f"{version}.yaml")}
    where = f"{DATA_DIR / version}.yaml"
    try:
        layout_raw = raw["layouts"][raw["layout"]]
        layout = Layout(name=raw["layout"], code_dir=layout_raw["code_dir"], result_dir=layout_raw["result_dir"],
                        measurements_dir=layout_raw["measurements_dir"],
                        measurements_file=layout_raw.get("measurements_file"),
                        compliance_dir=layout_raw["compliance_dir"])
        files = FileRules(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in raw["files"].items()})
        systems = raw["systems"]
        return Round(
            version=version, layout=layout, divisions=tuple(raw["divisions"]), scenarios=tuple(raw["scenarios"]),
            system_types={str(k): str(v) for k, v in raw["system_types"].items()},
            seeds={str(k): _int(v, f"{where}.seeds") for k, v in raw["seeds"].items()},
            aliases={str(k): str(v) for k, v in (raw.get("aliases") or {}).items()},
            alias_substrings=tuple((str(a), str(b)) for a, b in raw.get("alias_substrings") or ()),
            result_field={str(k): str(v) for k, v in raw["result_field"].items()},
            benchmarks={str(n): _benchmark(str(n), b, f"{where}.benchmarks.{n}")
                        for n, b in raw["benchmarks"].items()},
            min_duration_ms=_int(raw["min_duration_ms"], "min_duration_ms"),
            max_accuracy_log_bytes=_int(raw["max_accuracy_log_bytes"], "max_accuracy_log_bytes"),
            early_stopping_scenarios=tuple(raw["early_stopping_scenarios"]),
            inferable=tuple((str(a), str(b)) for a, b in raw["inferable"]),
            network_sut_name=str(raw["network_sut_name"]),
            files=files, measurements_fields=tuple(raw["measurements_fields"]),
            units={str(k): str(v) for k, v in raw["units"].items()},
            accuracy_patterns={str(k): re.compile(str(v)) for k, v in raw["accuracy_patterns"].items()},
            accuracy_delta_percent={str(k): float(v) for k, v in raw["accuracy_delta_percent"].items()},
            systems=SystemRules(fields=tuple(_system_field(str(k), v) for k, v in systems["fields"].items()),
                                network_fields=tuple(systems["network_fields"]),
                                network_mode={str(k): bool(v) for k, v in systems["network_mode"].items()}),
            compliance=_compliance(raw["compliance"]),
            endpoints=_endpoints(raw.get("endpoints")),
        )
    except (KeyError, TypeError, AttributeError, re.error) as exc:
        raise RoundDataError(f"{where}: malformed round data ({type(exc).__name__}: {exc})") from None
