"""Parse LoadGen's ``mlperf_log_summary.txt`` and ``mlperf_log_detail.txt``.

Parsers never raise on content: a missing, truncated or garbled log gives ``None`` fields (and counts of what
could not be read). Only the file reading helpers return ``None`` for a missing file.

Public API::

    parse_summary(text) -> Summary            parse_summary_file(path) -> Summary | None
    summary_validity(text) -> str | None
    parse_detail(text, keys=None) -> Detail   parse_detail_file(path) -> Detail | None
    parse_log_dir(directory) -> ParsedLogs    (both files of one LoadGen output directory)
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MLLOG_PREFIX = ":::MLLOG"
SEED_KEYS = ("qsl_rng_seed", "sample_index_rng_seed", "schedule_rng_seed")

_KV_RE = re.compile(r"^\s*([^:]+?)\s*:\s*(.*?)\s*$")
_RESULT_LAT_RE = re.compile(r"^([\d.]+)th percentile latency \(ns\)$")
_PCT_LAT_RE = re.compile(r"^([\d.]+) percentile latency \(ns\)$")
_COUNT_RE = re.compile(r"^(\d+|No) (ERROR|warning)s? encountered", re.IGNORECASE)


def _num(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text.strip())
    except (ValueError, AttributeError):
        return None
    return None if math.isnan(value) else value


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip())
    except (ValueError, AttributeError):
        value = _num(text)
        return int(value) if value is not None and abs(value) != float("inf") else None


def _yes_no(text: str | None) -> bool | None:
    if text is None:
        return None
    t = text.strip().lower()
    if t == "yes":
        return True
    if t == "no":
        return False
    return None


@dataclass(frozen=True)
class Summary:
    """What ``mlperf_log_summary.txt`` says. Every field is None when the line is missing or unreadable."""

    scenario: str | None = None
    mode: str | None = None
    validity: str | None = None                        # "VALID" | "INVALID"
    samples_per_second: float | None = None            # Offline
    completed_samples_per_second: float | None = None  # Server
    scheduled_samples_per_second: float | None = None  # Server
    result_latency_percentile: float | None = None     # 90.0 (SingleStream) / 99.0 (MultiStream)
    result_latency_ns: int | None = None               # the "NN.Nth percentile latency (ns)" result line
    min_latency_ns: int | None = None
    max_latency_ns: int | None = None
    mean_latency_ns: int | None = None
    latency_percentiles_ns: dict[str, int] = field(default_factory=dict)   # {"50.00": ns, "90.00": ns, ...}
    qps_with_loadgen_overhead: float | None = None     # SingleStream
    qps_without_loadgen_overhead: float | None = None  # SingleStream
    min_duration_satisfied: bool | None = None
    min_queries_satisfied: bool | None = None
    early_stopping_satisfied: bool | None = None
    performance_constraints_satisfied: bool | None = None
    error_count: int | None = None
    warning_count: int | None = None
    test_parameters: dict[str, str] = field(default_factory=dict)          # "Test Parameters Used" section
    recognized_lines: int = 0

    @property
    def is_valid(self) -> bool:
        return self.validity == "VALID"


def parse_summary(text: str) -> Summary:
    """Parse the text of ``mlperf_log_summary.txt``. Never raises."""
    fields: dict[str, Any] = {}
    percentiles: dict[str, int] = {}
    params: dict[str, str] = {}
    section = "results"
    recognized = 0
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line or set(line) == {"="}:
            continue
        header = line.strip()
        if header in ("MLPerf Results Summary", "Additional Stats", "Test Parameters Used"):
            section = {"MLPerf Results Summary": "results", "Additional Stats": "stats",
                       "Test Parameters Used": "params"}[header]
            recognized += 1
            continue
        count = _COUNT_RE.match(header)
        if count:
            n = 0 if count.group(1).lower() == "no" else int(count.group(1))
            fields["error_count" if count.group(2).upper() == "ERROR" else "warning_count"] = n
            recognized += 1
            continue
        if header.startswith("*"):
            continue
        m = _KV_RE.match(line)
        if not m:
            continue
        key, value = m.group(1).strip(), m.group(2)
        if section == "params":
            params[key] = value
            recognized += 1
            continue
        if _assign_summary_field(key, value, fields, percentiles):
            recognized += 1
    return Summary(latency_percentiles_ns=percentiles, test_parameters=params, recognized_lines=recognized, **fields)


def _assign_summary_field(key: str, value: str, fields: dict[str, Any], percentiles: dict[str, int]) -> bool:
    simple: dict[str, tuple[str, Any]] = {
        "Scenario": ("scenario", str.strip),
        "Mode": ("mode", str.strip),
        "Samples per second": ("samples_per_second", _num),
        "Completed samples per second": ("completed_samples_per_second", _num),
        "Scheduled samples per second": ("scheduled_samples_per_second", _num),
        "Min latency (ns)": ("min_latency_ns", _int),
        "Max latency (ns)": ("max_latency_ns", _int),
        "Mean latency (ns)": ("mean_latency_ns", _int),
        "QPS w/ loadgen overhead": ("qps_with_loadgen_overhead", _num),
        "QPS w/o loadgen overhead": ("qps_without_loadgen_overhead", _num),
        "Min duration satisfied": ("min_duration_satisfied", _yes_no),
        "Min queries satisfied": ("min_queries_satisfied", _yes_no),
        "Early stopping satisfied": ("early_stopping_satisfied", _yes_no),
        "Performance constraints satisfied": ("performance_constraints_satisfied", _yes_no),
    }
    if key == "Result is":
        v = value.strip().upper()
        if v in ("VALID", "INVALID"):
            fields["validity"] = v
            return True
        return False
    if key in simple:
        name, conv = simple[key]
        converted = conv(value)
        if converted is None or converted == "":
            return False
        fields[name] = converted
        return True
    m = _RESULT_LAT_RE.match(key)
    if m:
        pct, ns = _num(m.group(1)), _int(value)
        if pct is not None and ns is not None:
            fields["result_latency_percentile"] = pct
            fields["result_latency_ns"] = ns
            return True
        return False
    m = _PCT_LAT_RE.match(key)
    if m:
        ns = _int(value)
        if ns is not None:
            percentiles[m.group(1)] = ns
            return True
    return False


_RESULT_IS_RE = re.compile(r"^Result is\s*:\s*(VALID|INVALID)\s*$", re.MULTILINE)


def summary_validity(text: str) -> str | None:
    """Only the ``Result is : VALID|INVALID`` verdict of a summary log (a fast path of parse_summary)."""
    m = _RESULT_IS_RE.search(text)
    return m.group(1) if m else None


@dataclass(frozen=True)
class LogEntry:
    """One ``:::MLLOG`` line of the detail log."""

    key: str
    value: Any
    time_ms: float | None = None
    is_error: bool = False
    is_warning: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value, "time_ms": self.time_ms}


@dataclass(frozen=True)
class Detail:
    """What ``mlperf_log_detail.txt`` says. ``results``/``effective``/``requested`` keep the full LoadGen key names
    (last value wins); ``values`` holds the first value of every parsed key (the MLCommons checker reads the
    first one)."""

    loadgen_version: str | None = None
    scenario: str | None = None          # effective_scenario
    mode: str | None = None              # effective_test_mode
    validity: str | None = None          # result_validity
    results: dict[str, Any] = field(default_factory=dict)     # result_* (and early_stopping_*)
    effective: dict[str, Any] = field(default_factory=dict)   # effective_*
    requested: dict[str, Any] = field(default_factory=dict)   # requested_*
    seeds: dict[str, int | None] = field(default_factory=dict)  # qsl/sample_index/schedule rng seeds (effective)
    errors: list[LogEntry] = field(default_factory=list)
    warnings: list[LogEntry] = field(default_factory=list)
    entry_count: int = 0
    garbled_lines: int = 0
    values: dict[str, Any] = field(default_factory=dict)      # key -> first value
    starts_with_entry: bool = False      # the first line is a :::MLLOG entry (the MLCommons checker needs it)
    ends_cleanly: bool = False           # the text ends with a newline after a readable :::MLLOG entry
    first_garbled_line: int | None = None   # 1-based number of the first unreadable :::MLLOG line (not the last)

    def get(self, key: str) -> Any:
        """The first value logged under ``key`` (None when absent)."""
        return self.values.get(key)

    def __contains__(self, key: str) -> bool:
        return key in self.values


def _parse_mllog_line(line: str) -> LogEntry | None:
    payload = line[len(MLLOG_PREFIX):].strip()
    try:
        obj = json.loads(payload)
    except (json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("key"), str):
        return None
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    time_ms = obj.get("time_ms")
    return LogEntry(key=obj["key"], value=obj.get("value"),
                    time_ms=float(time_ms) if isinstance(time_ms, (int, float)) else None,
                    is_error=meta.get("is_error") is True, is_warning=meta.get("is_warning") is True)


#: the start of a LoadGen entry line, up to its value: group 1 is the key
_ENTRY_RE = re.compile(r':::MLLOG \{"key": "([^"\\]*)", "value": ')
_DECODER = json.JSONDecoder()


def _detail(values: dict[str, Any], last: dict[str, Any], errors: list[LogEntry], warnings: list[LogEntry],
            count: int, garbled: int, starts: bool, ends: bool, first_garbled: int | None) -> Detail:
    results = {k: v for k, v in last.items() if k.startswith(("result_", "early_stopping_"))}
    effective = {k: v for k, v in last.items() if k.startswith("effective_")}
    requested = {k: v for k, v in last.items() if k.startswith("requested_")}
    version = values.get("loadgen_version")
    seeds: dict[str, int | None] = {}
    for name in SEED_KEYS:
        v = effective.get(f"effective_{name}")
        seeds[name] = v if isinstance(v, int) and not isinstance(v, bool) else None
    validity = results.get("result_validity")
    scenario = effective.get("effective_scenario")
    mode = effective.get("effective_test_mode")
    return Detail(loadgen_version=version if isinstance(version, str) else None,
                  scenario=scenario if isinstance(scenario, str) else None,
                  mode=mode if isinstance(mode, str) else None,
                  validity=validity if validity in ("VALID", "INVALID") else None,
                  results=results, effective=effective, requested=requested, seeds=seeds,
                  errors=errors, warnings=warnings, entry_count=count, garbled_lines=garbled, values=values,
                  starts_with_entry=starts, ends_cleanly=ends, first_garbled_line=first_garbled)


def parse_detail(text: str, keys: frozenset[str] | None = None) -> Detail:
    """Parse the text of ``mlperf_log_detail.txt``. Never raises.

    ``keys``: decode only the values of entries with these keys (and every error or warning entry in full): a
    fast path for readers that need a few values of many logs; ``values``, ``results``, ``effective`` and
    ``requested`` then hold only those keys. Other entries are counted, not decoded; the last line is always
    decoded, so a cut-off log is still noticed."""
    values: dict[str, Any] = {}          # first value of each key
    last: dict[str, Any] = {}            # last value of each key
    errors: list[LogEntry] = []
    warnings: list[LogEntry] = []
    count = garbled = 0
    first_garbled: int | None = None
    lines = text.splitlines()
    last_ok = False
    n_lines = len(lines)
    # without any error or warning entry in the text, no line needs to be looked at for one
    quiet = keys is not None and '"is_error": true' not in text and '"is_warning": true' not in text
    for number, line in enumerate(lines, 1):
        if keys is not None and number != n_lines and line.endswith("}") and \
                (quiet or ('"is_error": false' in line and '"is_warning": true' not in line)):
            m = _ENTRY_RE.match(line)
            if m is not None:
                key = m.group(1)
                if key not in keys:
                    count += 1
                    continue
                try:
                    value, _ = _DECODER.raw_decode(line, m.end())
                except (ValueError, RecursionError):
                    pass             # decoded in full below (and counted as garbled there)
                else:
                    count += 1
                    values.setdefault(key, value)
                    last[key] = value
                    continue
        line = line.strip()
        if not line.startswith(MLLOG_PREFIX):
            if line:
                garbled += 1
            continue
        entry = _parse_mllog_line(line)
        if entry is None:
            garbled += 1
            if first_garbled is None and number != n_lines:     # a partial last line is a cut-off, not garbage
                first_garbled = number
            last_ok = False
            continue
        last_ok = True
        count += 1
        if entry.is_error:
            errors.append(entry)
        if entry.is_warning:
            warnings.append(entry)
        if keys is None or entry.key in keys:
            values.setdefault(entry.key, entry.value)
            last[entry.key] = entry.value
    starts = bool(lines) and lines[0].startswith(MLLOG_PREFIX)
    return _detail(values, last, errors, warnings, count, garbled, starts, last_ok and text.endswith("\n"),
                   first_garbled)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def parse_summary_file(path: str | Path) -> Summary | None:
    """Parse a summary file; None when it cannot be read (missing)."""
    text = _read_text(Path(path))
    return None if text is None else parse_summary(text)


def parse_detail_file(path: str | Path) -> Detail | None:
    """Parse a detail file; None when it cannot be read (missing)."""
    text = _read_text(Path(path))
    return None if text is None else parse_detail(text)


@dataclass(frozen=True)
class ParsedLogs:
    """Both logs of one LoadGen output directory; either may be None (file missing)."""

    summary: Summary | None
    detail: Detail | None

    @property
    def validity(self) -> str | None:
        """The verdict: the summary's ``Result is`` line, else the detail's ``result_validity``."""
        if self.summary is not None and self.summary.validity is not None:
            return self.summary.validity
        return self.detail.validity if self.detail is not None else None

    def invalid_reasons(self) -> list[str]:
        """Why LoadGen called the run INVALID, in words (empty for a VALID run or when the logs do not say):
        the unmet conditions of the summary, then LoadGen's own recommendation (``result_invalid_reason``)."""
        if self.validity != "INVALID":
            return []
        s, d = self.summary, self.detail
        reasons: list[str] = []
        if s is not None:
            if s.min_duration_satisfied is False:
                reasons.append("min duration not met")
            if s.min_queries_satisfied is False:
                reasons.append("min query count not met")
            if s.early_stopping_satisfied is False:
                reasons.append("early stopping not satisfied (too few queries for the latency percentile)")
            if s.performance_constraints_satisfied is False:
                pct = f"{s.result_latency_percentile:g}th percentile " if s.result_latency_percentile else ""
                reasons.append(f"{pct}latency above the target latency")
        hint = d.results.get("result_invalid_reason") if d is not None else None
        if isinstance(hint, str) and hint.strip():
            reasons.append("LoadGen: " + " ".join(hint.split()))
        return reasons


#: LoadGen's token-latency keys (loadgen/results.cc ``PerformanceSummary::LogDetail``, use_token_latencies), as
#: the detail log writes them; percentiles are "50.00", "90.00", "95.00", "97.00", "99.00", "99.90"
_TTFT_PCT_RE = re.compile(r"^result_first_token_([\d.]+)_percentile_latency_ns$")
_TPOT_PCT_RE = re.compile(r"^result_time_per_output_token_([\d.]+)_percentile_ns$")


def _number(v: Any) -> float | int | None:
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def token_metrics(detail: Detail | None) -> dict[str, Any] | None:
    """The token metrics of a run whose LoadGen settings had ``use_token_latencies`` (LLMs), from the detail log;
    None when the run had none. Keys (units in the names; ns = nanoseconds):

    * ``tokens_per_second`` - Offline's metric (``result_tokens_per_second``: all output tokens / the run's
      duration); ``completed_tokens_per_second`` - Server / Interactive's (``result_completed_tokens_per_second``);
    * ``ttft_ns`` / ``tpot_ns`` - time to first token and time per output token: ``min``, ``max``, ``mean``,
      ``percentiles`` {"50.00": ns, ..., "99.00": ns, "99.90": ns} (TPOT = (latency - TTFT) / (n_tokens - 1),
      per sample, logging.cc); ``ttft_p99_ns`` / ``tpot_p99_ns`` - the 99.00 percentiles the checker's limit check
      reads;
    * ``ttft_bound_ns`` / ``tpot_bound_ns`` - the bounds the run was held to (``requested_server_ttft_latency``
      / ``..._tpot_latency``; LoadGen judges them in Server / Interactive only);
    * ``early_stopping_ttft_result`` / ``early_stopping_tpot_result`` - LoadGen's early-stopping verdict texts;
    * ``token_count`` - output tokens of the run when LoadGen logged it, else None.
    """
    if detail is None:
        return None
    use = detail.requested.get("requested_use_token_latencies")
    res = detail.results
    if use is not True and not any(k.startswith("result_first_token_") for k in res) \
            and "result_tokens_per_second" not in res:
        return None

    def dist(prefix: str, pct_re: re.Pattern[str], keys: tuple[str, str, str]) -> dict[str, Any]:
        pcts = {}
        for k, v in res.items():
            m = pct_re.match(k)
            if m and _number(v) is not None:
                pcts[m.group(1)] = v
        return {"min": _number(res.get(keys[0])), "max": _number(res.get(keys[1])),
                "mean": _number(res.get(keys[2])), "percentiles": dict(sorted(pcts.items(), key=lambda kv: float(kv[0])))}

    ttft = dist("first_token", _TTFT_PCT_RE, ("result_first_token_min_latency_ns", "result_first_token_max_latency_ns",
                                              "result_first_token_mean_latency_ns"))
    tpot = dist("tpot", _TPOT_PCT_RE, ("result_time_to_output_token_min", "result_time_to_output_token_max",
                                       "result_time_to_output_token_mean"))
    return {
        "tokens_per_second": _number(res.get("result_tokens_per_second")),
        "completed_tokens_per_second": _number(res.get("result_completed_tokens_per_second")),
        "ttft_ns": ttft,
        "tpot_ns": tpot,
        "ttft_p99_ns": ttft["percentiles"].get("99.00"),
        "tpot_p99_ns": tpot["percentiles"].get("99.00"),
        "ttft_bound_ns": _number(detail.requested.get("requested_server_ttft_latency")),
        "tpot_bound_ns": _number(detail.requested.get("requested_server_tpot_latency")),
        "early_stopping_ttft_result": res.get("early_stopping_ttft_result"),
        "early_stopping_tpot_result": res.get("early_stopping_tpot_result"),
        "token_count": _number(res.get("result_token_count")),
    }


def parse_log_dir(directory: str | Path) -> ParsedLogs:
    d = Path(directory)
    return ParsedLogs(summary=parse_summary_file(d / "mlperf_log_summary.txt"),
                      detail=parse_detail_file(d / "mlperf_log_detail.txt"))
