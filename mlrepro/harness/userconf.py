"""LoadGen's ``user.conf``: grammar, validation, lookup and rendering, exactly as LoadGen reads it.

Source of the rules: ``TestSettings::FromConfig`` in mlcommons/inference ``loadgen/test_settings_internal.cc``.
A line is whitespace-separated tokens ``key = value``; ``key`` is ``model.Scenario.name`` where ``model`` or
``Scenario`` may be ``*``; a token ``#`` in key position ends the line; the value must parse entirely as an integer
(``strtoul``, base auto-detected) or a double (``strtod``); a later line with the same key replaces an earlier one.
Lookup precedence for (model, scenario, name): ``model.scenario``, ``*.scenario``, ``model.*``, ``*.*``.
LoadGen silently ignores what it never looks up: an unknown name, a name read only for other scenarios
(``target_qps`` for Offline and Server only), a name read only from ``mlperf.conf`` (the RNG seeds), a line without
spaces around ``=``. :func:`parse_user_conf` reports every such line as a :class:`UserConfProblem` instead.

mlrepro composes the user.conf a run loads (:func:`compose_user_conf`): the profile's own lines, then one line per
LoadGen setting override (``benchmark.settings``), then the calibrated targets. The file written to the run's
results is byte for byte the file handed to ``TestSettings.FromConfig``, so ``mlperf.conf + user.conf`` re-creates
the run. Dependency-free (the harness image has no pydantic).

Public API::

    parse_user_conf(text) -> UserConf                       (UserConfError listing every problem)
    UserConf.lookup(model, scenario, name) -> str | None    (LoadGen's precedence)
    setting_line(model, scenario, setting, value) -> ConfLine   (a harness setting as a user.conf line)
    compose_user_conf(base, model, scenario, settings, targets) -> str
    effective_settings(conf, model, scenario) -> dict[str, float]   (settings names, LoadGen units)
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from mlrepro.harness.scenarios import LOADGEN_SCENARIOS, SCENARIOS, loadgen_scenario

ANY = "*"


@dataclass(frozen=True)
class ConfKey:
    """A name LoadGen reads from a user.conf: for which scenarios, as which kind of number."""

    name: str
    scenarios: tuple[str, ...]       # scenarios LoadGen looks it up for
    integer: bool                    # read with strtoull (a fraction is truncated) rather than strtod
    unit: str = ""                   # what a value means, for messages


#: a user.conf line names a LoadGen scenario (Interactive runs as Server with the model's -interactive entries)
_ALL = LOADGEN_SCENARIOS
#: every name ``FromConfig`` reads from a user.conf (conf_type != 0), test_settings_internal.cc
CONF_KEYS: dict[str, ConfKey] = {k.name: k for k in (
    ConfKey("use_token_latencies", _ALL, True),
    ConfKey("ttft_latency", ("Server",), True, "ms"),
    ConfKey("tpot_latency", ("Server",), True, "ms"),
    ConfKey("infer_token_latencies", _ALL, True),
    ConfKey("token_latency_scaling_factor", _ALL, True),
    ConfKey("target_latency_percentile", ("SingleStream", "MultiStream", "Server"), False, "percent"),
    ConfKey("samples_per_query", ("MultiStream",), True),
    ConfKey("target_latency", ("Server", "SingleStream", "MultiStream"), False, "ms"),
    ConfKey("performance_issue_unique", _ALL, True),
    ConfKey("performance_issue_same", _ALL, True),
    ConfKey("performance_issue_same_index", _ALL, True),
    ConfKey("sample_concatenate_permutation", _ALL, True),
    ConfKey("coalesce_queries", ("Server",), True),
    ConfKey("max_async_queries", ("Server",), True),
    ConfKey("min_duration", _ALL, True, "ms"),
    ConfKey("max_duration", _ALL, True, "ms"),
    ConfKey("min_query_count", _ALL, True),
    ConfKey("max_query_count", _ALL, True),
    ConfKey("performance_sample_count_override", _ALL, True),
    ConfKey("accuracy_sample_count_override", _ALL, True),
    ConfKey("target_qps", ("Server", "Offline"), False, "queries/s"),
    ConfKey("print_timestamps", _ALL, True),
    ConfKey("accuracy_log_rng_seed", _ALL, True),
    ConfKey("accuracy_log_sampling_target", _ALL, True),
)}
#: names LoadGen reads only from its built-in mlperf.conf (conf_type 0): a user.conf line is ignored
MLPERF_CONF_ONLY = ("qsl_rng_seed", "sample_index_rng_seed", "schedule_rng_seed", "accuracy_log_probability",
                    "test05", "test05_qsl_rng_seed", "test05_sample_index_rng_seed", "test05_schedule_rng_seed")
#: names mlrepro sets itself (the mode comes from --mode)
RESERVED = ("mode",)
#: Server's target_latency is read as an integer number of milliseconds
_INTEGER_FOR = {("target_latency", "Server")}


@dataclass(frozen=True)
class Setting:
    """A LoadGen ``TestSettings`` attribute mlrepro may override, and the user.conf line that sets it."""

    name: str                        # TestSettings attribute, e.g. offline_expected_qps
    conf_name: str                   # user.conf name, e.g. target_qps
    scenario: str | None             # the scenario the line is written for; None: the run's scenario
    scale: float = 1.0               # setting value = user.conf value x scale (ns settings: 1e6 per ms)
    integer: bool = True             # the user.conf value must be an integer


#: the settings a profile's ``benchmark.settings`` may give, in TestSettings names and units
SETTINGS: dict[str, Setting] = {s.name: s for s in (
    Setting("min_duration_ms", "min_duration", None),
    Setting("max_duration_ms", "max_duration", None),
    Setting("min_query_count", "min_query_count", None),
    Setting("max_query_count", "max_query_count", None),
    Setting("offline_expected_qps", "target_qps", "Offline", integer=False),
    Setting("server_target_qps", "target_qps", "Server", integer=False),
    Setting("server_target_latency_ns", "target_latency", "Server", 1e6),
    Setting("single_stream_expected_latency_ns", "target_latency", "SingleStream", 1e6, integer=False),
    Setting("multi_stream_expected_latency_ns", "target_latency", "MultiStream", 1e6, integer=False),
    Setting("multi_stream_samples_per_query", "samples_per_query", "MultiStream"),
    # token latency bounds (LLMs, use_token_latencies): TestSettings.ttft_latency / tpot_latency are ns, the
    # user.conf lines ms (test_settings_internal.cc: server_ttft_latency = ttft_latency * 1e6). mlperf.conf fixes
    # them per closed benchmark (llama3_1-8b.Server.ttft_latency = 2000); only an open-division workload may
    # give its own (mlrepro.harness.workloads.llm: calibrated demo bounds)
    Setting("ttft_latency", "ttft_latency", "Server", 1e6),
    Setting("tpot_latency", "tpot_latency", "Server", 1e6),
    Setting("performance_sample_count_override", "performance_sample_count_override", None),
    # equal-issue mode (mlperf.conf sets it for the LLMs: query counts become multiples of the sample count);
    # LLM calibration probes turn it off to stay short, timed runs keep mlperf.conf's
    Setting("sample_concatenate_permutation", "sample_concatenate_permutation", None),
    Setting("accuracy_log_rng_seed", "accuracy_log_rng_seed", None),
    Setting("accuracy_log_sampling_target", "accuracy_log_sampling_target", None),
)}
SETTING_KEYS = tuple(SETTINGS)

_INT_RE = re.compile(r"^[+-]?(0[xX][0-9a-fA-F]+|[0-9]+)$")
_FLOAT_RE = re.compile(r"^[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|inf(inity)?|nan)$", re.IGNORECASE)


class UserConfError(ValueError):
    """A user.conf has lines LoadGen would reject or ignore; ``problems`` lists them (``str()``: one per line)."""

    def __init__(self, problems: list[UserConfProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class UserConfProblem:
    line: int                        # 1-based line number
    text: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line} ({self.text.strip()!r}): {self.message}"


@dataclass(frozen=True)
class ConfLine:
    model: str
    scenario: str
    name: str
    value: str                       # the value token as written (LoadGen keeps the text)

    @property
    def key(self) -> str:
        return f"{self.model}.{self.scenario}.{self.name}"

    def render(self) -> str:
        return f"{self.key} = {self.value}"


@dataclass(frozen=True)
class UserConf:
    """The lines of a user.conf that LoadGen reads, in file order."""

    lines: tuple[ConfLine, ...] = ()

    def lookup(self, model: str, scenario: str, name: str) -> str | None:
        """The value LoadGen uses for ``name`` in a run of (model, scenario), or None when no line sets it."""
        last: dict[str, str] = {}
        for line in self.lines:
            last[line.key] = line.value
        for m, s in ((model, scenario), (ANY, scenario), (model, ANY), (ANY, ANY)):
            value = last.get(f"{m}.{s}.{name}")
            if value is not None:
                return value
        return None

    def models(self) -> set[str]:
        return {line.model for line in self.lines if line.model != ANY}

    def render(self) -> str:
        return "".join(line.render() + "\n" for line in self.lines)


def _number(token: str) -> float | None:
    """The token as LoadGen's parser accepts it (whole token an integer or a double), else None."""
    try:
        if _INT_RE.match(token):
            return float(int(token, 0))
        if _FLOAT_RE.match(token):
            return float(token)
    except ValueError:       # "010": C reads octal, Python refuses; _check_line reports it
        return None
    return None


def _check_line(model: str, scenario: str, name: str, value: str) -> str | None:
    """Why LoadGen would ignore or misread this assignment, or None when it is used as written."""
    if name in RESERVED:
        return f"'{name}' is set by mlrepro from --mode; remove the line"
    if name in MLPERF_CONF_ONLY:
        return f"LoadGen reads '{name}' only from its built-in mlperf.conf: this line is ignored"
    key = CONF_KEYS.get(name)
    if key is None:
        hint = difflib.get_close_matches(name, list(CONF_KEYS), n=1)
        return f"LoadGen does not read '{name}'" + (f" (did you mean '{hint[0]}'?)" if hint else "")
    if scenario == "Interactive":
        return ("'Interactive' is not a LoadGen scenario: Interactive runs as Server with the model's "
                "'-interactive' entries (write '<model>-interactive.Server.<name>')")
    if scenario != ANY and scenario not in LOADGEN_SCENARIOS:
        hint = difflib.get_close_matches(scenario, list(LOADGEN_SCENARIOS), n=1)
        return (f"'{scenario}' is not a scenario ({', '.join(LOADGEN_SCENARIOS)} or *)"
                + (f"; did you mean '{hint[0]}'?" if hint else ""))
    if scenario != ANY and scenario not in key.scenarios:
        return f"LoadGen reads '{name}' only for {', '.join(key.scenarios)}: this line is ignored"
    if re.match(r"^[+-]?0\d", value):
        return f"value {value!r}: a leading zero makes LoadGen read it as octal"
    number = _number(value)
    if number is None or math.isnan(number) or math.isinf(number):
        return f"value {value!r} is not a number"
    if number < 0:
        return f"value {value!r} is negative"
    integer = key.integer or any((name, s) in _INTEGER_FOR for s in
                                 ((scenario,) if scenario != ANY else key.scenarios))
    if integer and not _INT_RE.match(value):
        where = "Server's " if name == "target_latency" else ""
        return f"LoadGen reads {where}'{name}' as an integer{f' ({key.unit})' if key.unit else ''}: {value!r} would be truncated"
    return None


def parse_user_conf(text: str, *, models: set[str] | None = None) -> UserConf:
    """Parse and validate user.conf ``text``. ``models``: the model names the run may use (besides ``*``); a line
    for another model is an error (LoadGen would never read it). Raises UserConfError listing every problem."""
    problems: list[UserConfProblem] = []
    lines: list[ConfLine] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        tokens = raw.split()
        if not tokens or tokens[0] == "#":
            continue
        if tokens[0].startswith("#"):
            problems.append(UserConfProblem(n, raw, "LoadGen only takes '#' followed by a space as a comment; "
                                                    "this line is read as a key"))
            continue
        if len(tokens) < 3 or tokens[1] != "=":
            msg = ("expected 'model.Scenario.key = value' with spaces around '='" if "=" in raw
                   else "expected 'model.Scenario.key = value' (no '=')")
            problems.append(UserConfProblem(n, raw, msg))
            continue
        if len(tokens) > 3:
            problems.append(UserConfProblem(n, raw, "text after the value (LoadGen has no trailing comments): "
                                                    "LoadGen rejects the whole file"))
            continue
        key, value = tokens[0], tokens[2]
        parts = key.split(".")
        if len(parts) != 3 or not all(parts):
            problems.append(UserConfProblem(n, raw, f"key {key!r} is not 'model.Scenario.name'"))
            continue
        model, scenario, name = parts
        if models is not None and model != ANY and model not in models:
            problems.append(UserConfProblem(n, raw, f"model '{model}' is not the model this workload runs "
                                                    f"({', '.join(sorted(models)) or '?'}, or *): LoadGen never "
                                                    "reads the line"))
            continue
        why = _check_line(model, scenario, name, value)
        if why is not None:
            problems.append(UserConfProblem(n, raw, why))
            continue
        lines.append(ConfLine(model, scenario, name, value))
    if problems:
        raise UserConfError(problems)
    return UserConf(tuple(lines))


def _format(value: float, integer: bool) -> str:
    if integer:
        if not float(value).is_integer():
            raise ValueError(f"{value!r} is not an integer")
        return str(int(value))
    return f"{float(value):.10g}"


def setting_line(model: str, scenario: str, setting: str, value: float) -> ConfLine:
    """The user.conf line that gives TestSettings attribute ``setting`` the value ``value`` in a run of
    (model, scenario); ``scenario`` may be a spec scenario (Interactive writes Server lines). Raises ValueError
    for an unknown setting, a setting of another scenario, or a value the line cannot carry (Server's target
    latency must be whole milliseconds)."""
    scenario = loadgen_scenario(scenario) if scenario != ANY else scenario
    s = SETTINGS.get(setting)
    if s is None:
        raise ValueError(f"unknown LoadGen setting {setting!r} (known: {', '.join(SETTING_KEYS)})")
    line_scenario = s.scenario or scenario
    if value < 0:
        raise ValueError(f"{setting}: {value!r} is negative")
    conf_value = value / s.scale
    if s.integer and not float(conf_value).is_integer():
        unit = " ms" if s.scale != 1 else ""
        raise ValueError(f"{setting}: {value!r} is not a whole number{unit and ' of milliseconds'} "
                         f"(LoadGen reads '{s.conf_name}' as an integer{unit})")
    return ConfLine(model, line_scenario, s.conf_name, _format(conf_value, s.integer))


def settings_for(settings: Mapping[str, object], scenario: str) -> dict[str, float]:
    """Flatten ``benchmark.settings`` for one scenario: global keys, then the keys of a nested ``<Scenario>``
    mapping, which win. Settings of another scenario's target (``server_target_qps`` in an Offline run) are kept:
    they are harmless and recorded."""
    flat: dict[str, float] = {}
    for key, value in settings.items():
        if key not in SCENARIOS and not isinstance(value, Mapping):
            flat[key] = value  # type: ignore[assignment]
    nested = settings.get(scenario)
    if isinstance(nested, Mapping):
        flat.update(nested)  # type: ignore[arg-type]
    return flat


def compose_user_conf(base: str, model: str, scenario: str, settings: Mapping[str, float],
                      targets: Mapping[str, float] | None = None, *, note: str = "",
                      targets_heading: str = "targets calibrated by mlrepro on this system") -> str:
    """The user.conf a run loads: the profile's lines (``base``, validated, canonical form), then one line per
    setting override, then the calibrated ``targets`` (TestSettings names). Later lines with the same key win, and
    every added line uses the exact model and scenario (LoadGen's highest precedence), so the added values are
    the effective ones. ``scenario`` may be a spec scenario: Interactive lines are written for Server (``model``
    is then the ``-interactive`` one). Raises UserConfError / ValueError for bad input."""
    scenario = loadgen_scenario(scenario)
    conf = parse_user_conf(base)
    out = [f"# user.conf composed by mlrepro for {model} {scenario}" + (f" ({note})" if note else ""),
           "# loaded after LoadGen's built-in mlperf.conf: mlperf.conf + this file re-create the run"]
    if conf.lines:
        out.append("# from the profile (benchmark.user_conf)")
        out += [line.render() for line in conf.lines]
    relevant = {k: v for k, v in settings.items()
                if SETTINGS.get(k) is None or SETTINGS[k].scenario in (None, scenario)}
    if relevant:
        out.append("# LoadGen settings of the profile (benchmark.settings)")
        out += [setting_line(model, scenario, k, v).render() for k, v in sorted(relevant.items())]
    if targets:
        out.append(f"# {targets_heading}")
        out += [setting_line(model, scenario, k, v).render() for k, v in sorted(targets.items())]
    return "\n".join(out) + "\n"


def effective_settings(conf: UserConf, model: str, scenario: str) -> dict[str, float]:
    """What the user.conf sets for a run of (model, scenario), as TestSettings names in their own units
    (``offline_expected_qps``, ``server_target_latency_ns`` ...). Settings the file does not touch are absent."""
    scenario = loadgen_scenario(scenario)
    out: dict[str, float] = {}
    for s in SETTINGS.values():
        if s.scenario not in (None, scenario):
            continue
        raw = conf.lookup(model, s.scenario or scenario, s.conf_name)
        if raw is None:
            continue
        number = _number(raw)
        if number is None:
            continue
        if s.integer:
            number = float(math.trunc(number))
        out[s.name] = number * s.scale
    return out
