"""Read an MLPerf inference submission tree into typed entries: the one place a tree is parsed.

``read_tree`` walks ``<root>/<division>/<submitter>/results/<system>/<benchmark>/<scenario>/`` with the round's
layout (v5.x: separate ``measurements/`` and ``compliance/`` folders, v6.x: everything in the result folder) and
returns what each result folder holds: LoadGen logs (parsed with :mod:`mlrepro.harness.logparse`), accuracy files,
measurements, compliance folders, the metric, validity, latencies, accuracy values, run date and, for trees that
``mlrepro collect`` wrote, the run record (profile hash, image digest). It never raises on content: what cannot
be read is recorded (``*_error`` fields, ``None``), and :mod:`mlrepro.results.check` turns it into findings.

Public API::

    read_tree(root, version=None, *, sidecar=None, jobs=None) -> SubmissionTree   (TreeReadError: root missing)
    parse_accuracy_lines(lines, round_, benchmark, scenario) -> AccuracyValues
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlrepro.errors import BadInputError
from mlrepro.harness import layout as hl
from mlrepro.harness.logparse import Detail, parse_detail, summary_validity
from mlrepro.harness.scenarios import STREAM_SCENARIOS
from mlrepro.results import layout as tl
from mlrepro.results.accuracy import TRUNCATION_MARKER, truncate_accuracy_log
from mlrepro.results.endpoints import EndpointsResult, endpoints_scenario, is_endpoints, read_endpoints
from mlrepro.results.rounds import Benchmark, Round, load_round
from mlrepro.results.tokens import TOKEN_KEYS, TokenStats, token_stats

#: detail-log keys the reader and the check use (everything else is skipped without decoding)
DETAIL_KEYS = frozenset({
    "loadgen_version", "test_datetime", "sut_name", "qsl_reported_total_count", "qsl_reported_performance_count",
    "effective_scenario", "effective_test_mode", "effective_performance_sample_count",
    "effective_accuracy_sample_count", "effective_qsl_rng_seed", "effective_sample_index_rng_seed",
    "effective_schedule_rng_seed", "effective_target_latency_ns", "effective_min_query_count",
    "effective_samples_per_query", "effective_min_duration_ms", "effective_target_qps",
    "effective_sample_concatenate_permutation", "effective_accuracy_log_sampling_target",
    "effective_accuracy_log_rng_seed", "effective_performance_issue_same", "effective_performance_issue_unique",
    "effective_performance_issue_same_index", "requested_use_token_latencies", "requested_min_duration_ms",
    "requested_server_ttft_latency", "requested_server_tpot_latency",
    "result_validity", "result_invalid_reason", "result_min_duration_met", "result_min_queries_met",
    "early_stopping_met", "early_stopping_result", "early_stopping_latency_ss", "early_stopping_latency_ms",
    "result_samples_per_second", "result_completed_samples_per_sec", "result_scheduled_samples_per_sec",
    "result_tokens_per_second", "result_completed_tokens_per_second", "result_inferred_tokens_per_second",
    "result_inferred_completed_tokens_per_second", "result_mean_latency_ns", "result_mean_query_latency_ns",
    "result_99.00_percentile_per_query_latency_ns", "result_qps_without_loadgen_overhead",
    "result_first_token_99.00_percentile_latency_ns", "result_time_per_output_token_99.00_percentile_ns",
    "result_min_latency_ns", "result_max_latency_ns", "result_50.00_percentile_latency_ns",
    "result_90.00_percentile_latency_ns", "result_95.00_percentile_latency_ns", "result_97.00_percentile_latency_ns",
    "result_99.00_percentile_latency_ns", "result_99.90_percentile_latency_ns", "result_query_count",
    "num_errors", "power_begin", "power_end",
}) | TOKEN_KEYS
_PERCENTILE_RE = re.compile(r"^result_(\d+\.\d+)_percentile_latency_ns$")
_HASH_RE = re.compile(r"^hash=([\w\d]+)$")
#: results read in worker processes from this many on, when jobs > 1
PARALLEL_MIN_RESULTS = 256


class TreeReadError(BadInputError):
    """The tree root is not a directory."""


# --- entries -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LoadgenRun:
    """One LoadGen output folder (``performance/run_1``, ``accuracy``, ``TEST0x/performance/run_1``)."""

    rel: str                               # the folder, relative to the tree root
    files: tuple[str, ...]                 # plain files in it
    has_summary: bool                      # mlperf_log_summary.txt is there
    summary_validity: str | None           # its "Result is" verdict (VALID | INVALID | None)
    detail: Detail | None                  # None: no mlperf_log_detail.txt
    detail_error: str | None = None        # the detail log exists but cannot be read
    detail_size: int = 0

    @property
    def summary_rel(self) -> str:
        return f"{self.rel}/{tl.SUMMARY}"

    @property
    def detail_rel(self) -> str:
        return f"{self.rel}/{tl.DETAIL}"

    @property
    def validity(self) -> str | None:
        """``Result is`` of the summary, else ``result_validity`` of the detail log."""
        if self.summary_validity is not None:
            return self.summary_validity
        return self.detail.validity if self.detail is not None else None


@dataclass(frozen=True)
class AccuracyValues:
    """What an ``accuracy.txt`` says for a benchmark's metrics (values as written, last match wins)."""

    values: Mapping[str, str]              # metric -> value text
    hash: str | None


@dataclass(frozen=True)
class AccuracyFiles:
    """The ``accuracy/`` folder of a result."""

    run: LoadgenRun
    txt_lines: tuple[str, ...] | None      # accuracy.txt lines with their line ends; None: missing/unreadable
    values: AccuracyValues | None
    log_size: int | None                   # mlperf_log_accuracy.json in the tree (None: missing)
    log_sha256: str | None
    log_truncated: bool                    # it carries the truncation marker of the MLCommons truncation
    subdirs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)   # folder -> file names
    full_log_rel: str | None = None        # the kept full log in the sidecar (trees mlrepro collected)
    full_log_sha256: str | None = None
    full_log_error: str | None = None      # the kept full log is not readable JSON
    full_log_matches: bool | None = None   # the tree's log is the kept log (whole, or its truncation)

    @property
    def rel(self) -> str:
        return self.run.rel

    @property
    def txt_rel(self) -> str:
        return f"{self.run.rel}/{tl.ACCURACY_TXT}"

    @property
    def log_rel(self) -> str:
        return f"{self.run.rel}/{tl.ACCURACY_JSON}"


@dataclass(frozen=True)
class ComplianceEntry:
    """One ``TEST0x`` folder of a result (it may be missing)."""

    test: str
    rel: str
    exists: bool
    files: tuple[str, ...] = ()
    verify: Mapping[str, str] = field(default_factory=dict)       # verify_*.txt name -> text
    performance: LoadgenRun | None = None
    accuracy_files: tuple[str, ...] | None = None                 # None: no accuracy folder
    accuracy_texts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)   # baseline/compliance lines
    empty: bool = False


@dataclass(frozen=True)
class Metric:
    name: str                              # the detail-log key it comes from
    value: float
    unit: str
    inferred: bool = False                 # computed from a run of another scenario


@dataclass(frozen=True)
class MlreproRecord:
    """What ``mlrepro collect`` recorded about the runs behind a result."""

    performance_run: str
    accuracy_run: str
    profile_name: str | None = None
    profile_hash: str | None = None
    image_reference: str | None = None
    image_digest: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    harness_version: str | None = None


@dataclass(frozen=True)
class ResultEntry:
    """One result folder ``<division>/<submitter>/results/<system>/<benchmark>/<scenario>``."""

    division: str
    submitter: str
    system: str
    benchmark_folder: str
    scenario_folder: str
    benchmark: str                         # the MLPerf benchmark the folder maps to (aliases, model_mapping)
    scenario: str | None                   # canonical scenario name; None: not a scenario
    rel: str
    files: tuple[str, ...]                 # plain files in the result folder
    performance: LoadgenRun | None         # None: no performance/run_1 folder
    accuracy: AccuracyFiles | None         # None: no accuracy folder
    measurements_dir_rel: str
    measurements_files: Mapping[str, int]  # files of the measurements folder -> size
    measurements_rel: str | None           # the measurements json (None: none found)
    measurements: Mapping[str, Any] | None
    measurements_error: str | None
    compliance: Mapping[str, ComplianceEntry]
    power: bool                            # has performance/power
    metric: Metric | None
    latency_ns: Mapping[str, int]          # percentile ("90.00") -> ns, of the performance run
    run_date: str | None                   # test_datetime of the performance run
    record: MlreproRecord | None
    empty_dirs: tuple[str, ...] = ()       # empty folders inside the result folder (and its compliance folders)
    tokens: TokenStats | None = None       # an LLM run's tokens/s and TTFT/TPOT percentiles (ns)
    endpoints: EndpointsResult | None = None   # an endpoints result (v6.1): no LoadGen logs (performance and
                                               # accuracy are None), its files as read

    @property
    def validity(self) -> str | None:
        return self.performance.validity if self.performance is not None else None

    @property
    def accuracy_values(self) -> Mapping[str, str]:
        if self.endpoints is not None:
            return self.endpoints.metrics
        return self.accuracy.values.values if self.accuracy is not None and self.accuracy.values else {}


@dataclass(frozen=True)
class SystemEntry:
    division: str
    submitter: str
    id: str
    rel: str
    data: Mapping[str, Any] | None         # None: missing, unreadable or not an object (see error)
    error: str | None = None


@dataclass(frozen=True)
class SubmitterEntry:
    division: str
    name: str
    rel: str
    has_results: bool                      # results/ exists
    has_code: bool                         # the round's code folder (src/ or code/) exists
    model_mapping: Mapping[str, Any]
    model_mapping_error: str | None
    systems: Mapping[str, SystemEntry]     # systems/<id>.json of the submitter
    result_systems: tuple[str, ...]        # folders under results/


@dataclass(frozen=True)
class SubmissionTree:
    root: Path
    version: str
    sidecar: Path | None
    divisions: tuple[str, ...]             # division folders present
    submitters: tuple[SubmitterEntry, ...]
    results: tuple[ResultEntry, ...]
    empty_dirs: tuple[str, ...]            # empty division/submitter/results/system/benchmark/scenario folders
    ignored: tuple[str, ...]               # root entries that are not divisions

    def system(self, result: ResultEntry) -> SystemEntry | None:
        for s in self.submitters:
            if s.division == result.division and s.name == result.submitter:
                return s.systems.get(result.system)
        return None


# --- small readers ---------------------------------------------------------------------------------------

def _entries(path: str) -> tuple[list[str], list[str]]:
    """(sub-folders, files) of ``path``, sorted; empty when it cannot be listed."""
    dirs: list[str] = []
    files: list[str] = []
    try:
        with os.scandir(path) as it:
            for e in it:
                try:
                    (dirs if e.is_dir() else files).append(e.name)
                except OSError:
                    continue
    except OSError:
        pass
    return sorted(dirs), sorted(files)


def _read_bytes(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def _json(path: str) -> tuple[Any, str | None]:
    data = _read_bytes(path)
    if data is None:
        return None, "cannot be read"
    try:
        return json.loads(data), None
    except (ValueError, RecursionError) as exc:
        return None, f"is not valid JSON ({exc})"


def _rel(root: str, path: str) -> str:
    """``path`` relative to ``root`` (a prefix of it), with forward slashes."""
    if path.startswith(root + os.sep):
        return os.path.normpath(path[len(root) + 1:]).replace(os.sep, "/")
    return os.path.relpath(path, root).replace(os.sep, "/")


def _loadgen_run(root: str, folder: str, files: Sequence[str], *, summary_text: bool = True) -> LoadgenRun:
    """``summary_text``: read the summary's verdict (an accuracy run's summary says nothing: only noted)."""
    detail = None
    validity = error = None
    size = 0
    if tl.SUMMARY in files and summary_text:
        data = _read_bytes(os.path.join(folder, tl.SUMMARY))
        validity = summary_validity(data.decode("utf-8", "replace")) if data is not None else None
    if tl.DETAIL in files:
        data = _read_bytes(os.path.join(folder, tl.DETAIL))
        if data is None:
            error = "cannot be read"
        else:
            size = len(data)
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                error = f"is not UTF-8 text ({exc.reason} at byte {exc.start})"
                text = data.decode("utf-8", "replace")
            detail = parse_detail(text, DETAIL_KEYS)
    return LoadgenRun(rel=_rel(root, folder), files=tuple(files), has_summary=tl.SUMMARY in files,
                      summary_validity=validity, detail=detail, detail_error=error, detail_size=size)


def parse_accuracy_lines(lines: Iterable[str], round_: Round, benchmark: Benchmark | None,
                         scenario: str) -> AccuracyValues:
    """The benchmark's metric values and the ``hash=`` of accuracy.txt lines (every line is read; the last
    match of each metric wins)."""
    patterns: list[tuple[str, re.Pattern[str]]] = []
    if benchmark is not None:
        names = [t.metric for t in benchmark.accuracy_targets(scenario)]
        names += [t.metric for t in benchmark.accuracy_upper if t.metric not in names]
        patterns = [(n, round_.accuracy_patterns[n]) for n in names if n in round_.accuracy_patterns]
    values: dict[str, str] = {}
    digest = None
    for line in lines:
        m = _HASH_RE.match(line)
        if m and digest is None:
            digest = m.group(1)
        for name, pattern in patterns:
            m = pattern.match(line)
            if m:
                values[name] = m.group(1)
    return AccuracyValues(values=values, hash=digest)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _FullLogs:
    """Kept full accuracy logs of a sidecar, each read and validated once."""

    def __init__(self, sidecar: Path | None) -> None:
        self.sidecar = sidecar
        self.seen: dict[str, _Kept] = {}

    def get(self, digest: str) -> _Kept:
        """The kept log named by ``digest`` (all None when it is not kept)."""
        if self.sidecar is None or not re.fullmatch(r"[0-9a-fA-F]{64}", digest):
            return _NOT_KEPT
        if digest in self.seen:
            return self.seen[digest]
        path = tl.full_accuracy_log(self.sidecar, digest)
        data = _read_bytes(str(path))
        if data is None:
            out = _NOT_KEPT
        else:
            error = None
            try:
                if not isinstance(json.loads(data), list):
                    error = "is not a JSON list of LoadGen accuracy entries"
            except (ValueError, RecursionError) as exc:
                error = f"is not valid JSON ({exc})"
            out = _Kept(str(path), _sha256(data), error, _truncate(data))
        self.seen[digest] = out
        return out


@dataclass(frozen=True)
class _Kept:
    path: str | None
    sha256: str | None
    error: str | None
    truncated: bytes | None       # what the tree's copy must be: the log itself or its truncation


_NOT_KEPT = _Kept(None, None, None, None)


def _truncate(data: bytes) -> bytes:
    """The MLCommons truncation (first and last 4 KiB around a marker) of a log larger than 10 KiB."""
    return truncate_accuracy_log(data)


def _accuracy(root: str, folder: str, round_: Round, benchmark: Benchmark | None, scenario: str,
              full_logs: _FullLogs) -> AccuracyFiles:
    dirs, files = _entries(folder)
    run = _loadgen_run(root, folder, files, summary_text=False)
    lines = None
    values = None
    if tl.ACCURACY_TXT in files:
        data = _read_bytes(os.path.join(folder, tl.ACCURACY_TXT))
        if data is not None:
            lines = tuple(data.decode("utf-8", "replace").splitlines(keepends=True))
            values = parse_accuracy_lines(lines, round_, benchmark, scenario)
    size = sha = tree_log = None
    truncated = False
    if tl.ACCURACY_JSON in files:
        tree_log = _read_bytes(os.path.join(folder, tl.ACCURACY_JSON))
        if tree_log is not None:
            size, sha = len(tree_log), _sha256(tree_log)
            truncated = TRUNCATION_MARKER in tree_log
    subdirs = {d: tuple(_entries(os.path.join(folder, d))[1]) for d in dirs}
    kept = full_logs.get(values.hash) if values is not None and values.hash else _NOT_KEPT
    matches = None
    if kept.path is not None and tree_log is not None:
        matches = tree_log == kept.truncated or tree_log == _read_bytes(kept.path)
    return AccuracyFiles(run=run, txt_lines=lines, values=values, log_size=size, log_sha256=sha,
                         log_truncated=truncated, subdirs=subdirs,
                         full_log_rel=_rel(root, kept.path) if kept.path else None, full_log_sha256=kept.sha256,
                         full_log_error=kept.error, full_log_matches=matches)


def _compliance(root: str, folder: str, test: str) -> ComplianceEntry:
    rel = _rel(root, os.path.join(folder, test))
    path = os.path.join(folder, test)
    if not os.path.isdir(path):
        return ComplianceEntry(test=test, rel=rel, exists=False)
    dirs, files = _entries(path)
    verify = {}
    for name in files:
        if name.startswith("verify_") and name.endswith(".txt"):
            data = _read_bytes(os.path.join(path, name))
            verify[name] = data.decode("utf-8", "replace") if data is not None else ""
    perf = None
    perf_dir = os.path.join(path, "performance", "run_1")
    if os.path.isdir(perf_dir):
        perf = _loadgen_run(root, perf_dir, _entries(perf_dir)[1])
    acc_files = None
    texts: dict[str, tuple[str, ...]] = {}
    acc_dir = os.path.join(path, "accuracy")
    if os.path.isdir(acc_dir):
        acc_files = tuple(_entries(acc_dir)[1])
        for name in ("baseline_accuracy.txt", "compliance_accuracy.txt"):
            if name in acc_files:
                data = _read_bytes(os.path.join(acc_dir, name)) or b""
                texts[name] = tuple(data.decode("utf-8", "replace").splitlines(keepends=True))
    return ComplianceEntry(test=test, rel=rel, exists=True, files=tuple(files), verify=verify, performance=perf,
                           accuracy_files=acc_files, accuracy_texts=texts, empty=not dirs and not files)


def _empty_below(root: str, folder: str) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        if not dirnames and not filenames:
            out.append(_rel(root, dirpath))
    return out


# --- metric --------------------------------------------------------------------------------------------

def _float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def compute_metric(detail: Detail, round_: Round, benchmark: Benchmark | None,
                   folder_scenario: str) -> Metric | None:
    """The result metric as the MLCommons checker computes it: the round's (or benchmark's) result key of the
    run's scenario, latencies in ms (seconds for wan-2.2), inferred for edge results of another scenario."""
    log_scenario = detail.get("effective_scenario")
    if not isinstance(log_scenario, str):
        return None
    key = round_.result_key(benchmark, log_scenario)
    value = _float(detail.get(key)) if key else None
    if value is None:
        return None
    if log_scenario in STREAM_SCENARIOS:      # a latency result, logged in ns
        value /= 1e6
        if benchmark is not None and benchmark.name == "wan-2.2-t2v-a14b":
            value /= 1e3
    unit = round_.unit(benchmark, folder_scenario)
    pair = (log_scenario.lower(), folder_scenario.lower())
    if pair[0] == pair[1] or pair == ("server", "interactive"):
        return Metric(name=key or "", value=value, unit=unit)
    inferred = _inferred(detail, log_scenario, folder_scenario)
    return Metric(name=key or "", value=inferred, unit=unit, inferred=True) if inferred is not None else None


#: the metric name of an LLM endpoints result: result_summary.json's tps
ENDPOINTS_TOKENS_METRIC = "tps (result_summary.json)"


def endpoints_metric(ep: EndpointsResult, round_: Round, benchmark: Benchmark | None,
                     folder_scenario: str) -> Metric | None:
    """The result metric of an endpoints result. An LLM's throughput scenarios: tokens/s (result_summary.json
    ``tps``), as for its LoadGen results; the official checker's results table takes samples/s for endpoints
    Offline and Interactive results instead (its per-benchmark override table is keyed "Offline"/"Server", an
    endpoints log says "offline"/"Interactive"). Else the checker's key (the benchmark's override of the scenario,
    else RESULT_FIELD_ENDPOINTS), latencies in ms."""
    rules = round_.endpoints
    if rules is None:
        return None
    scenario = endpoints_scenario(ep, rules, folder_scenario)
    if scenario is None:
        return None
    unit = round_.unit(benchmark, folder_scenario)
    values = ep.performance_values
    if benchmark is not None and benchmark.llm and scenario in ("Offline", "Server", "Interactive"):
        tps = _float(values.get("result_completed_tokens_per_second"))
        return Metric(name=ENDPOINTS_TOKENS_METRIC, value=tps, unit=unit) if tps is not None else None
    key = (benchmark.result_field.get(scenario) if benchmark else None) or rules.result_field.get(scenario.lower())
    value = _float(values.get(key)) if key else None
    if value is None or key is None:
        return None
    if scenario in STREAM_SCENARIOS:
        value /= 1e6
        if benchmark is not None and benchmark.name == "wan-2.2-t2v-a14b":
            value /= 1e3
    return Metric(name=key, value=value, unit=unit)


def _latencies(values: Mapping[str, Any]) -> dict[str, int]:
    """Latency percentiles (ns) among mapped values: "90.00" -> ns."""
    out = {}
    for key, value in values.items():
        m = _PERCENTILE_RE.match(key)
        v = _float(value)
        if m and v is not None:
            out[m.group(1)] = int(round(v))
    return out


def _inferred(detail: Detail, log_scenario: str, folder_scenario: str) -> float | None:
    spq = _float(detail.get("effective_samples_per_query"))
    if folder_scenario == "Offline" and log_scenario == "SingleStream":
        return _float(detail.get("result_qps_without_loadgen_overhead"))
    if folder_scenario == "Offline" and log_scenario == "MultiStream":
        mean = _float(detail.get("result_mean_query_latency_ns"))
        return spq * 1000 / (mean / 1e6) if spq and mean else None
    if folder_scenario == "MultiStream" and log_scenario == "SingleStream":
        es = _float(detail.get("early_stopping_latency_ms"))
        return es * 8 / 1e6 if es is not None else None
    return None


# --- mlrepro records ---------------------------------------------------------------------------------------

def _record(root: str, result_dir: str, submitter_dir: str, files: Sequence[str]) -> MlreproRecord | None:
    """The runs behind a result folder written by ``mlrepro collect`` (its README.md table), else None."""
    if tl.README not in files:
        return None
    data = _read_bytes(os.path.join(result_dir, tl.README))
    if data is None or tl.README_MARK.encode() not in data:
        return None
    runs = None
    for line in data.decode("utf-8", "replace").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] == tl.README_RUN_ID_ROW:
            runs = (cells[1], cells[2])
            break
    if runs is None or not all(tl.valid_name(r) for r in runs):
        return None
    repro, _ = _json(os.path.join(submitter_dir, tl.SRC, tl.SRC_MLREPRO, runs[0], tl.REPRODUCE_JSON))
    repro = repro if isinstance(repro, dict) else {}
    image = repro.get("image") if isinstance(repro.get("image"), dict) else {}

    def s(v: Any) -> str | None:
        return v if isinstance(v, str) and v else None

    return MlreproRecord(performance_run=runs[0], accuracy_run=runs[1], profile_name=s(repro.get("profile_name")),
                         profile_hash=s(repro.get("profile_hash")), image_reference=s(image.get("reference")),
                         image_digest=s(image.get("digest")), started_at=s(repro.get("started_at")),
                         finished_at=s(repro.get("finished_at")), harness_version=s(repro.get("harness_version")))


# --- one result folder -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Job:
    root: str
    version: str
    sidecar: str | None
    division: str
    submitter: str
    system: str
    benchmark_folder: str
    scenario_folder: str
    model_mapping: Mapping[str, Any]


def _measurements_file(layout_dir: str, system: str, scenario: str, files: Sequence[str]) -> str | None:
    """v5.x: the first file (sorted) named ``<system>..._<scenario>.json`` or ``<system>....json``."""
    for name in files:
        if name.startswith(system) and (name.endswith(f"_{scenario}.json") or name.endswith(".json")):
            return name
    return None


def _read_result(job: _Job, full_logs: _FullLogs | None = None) -> ResultEntry:
    round_ = load_round(job.version)
    layout = round_.layout
    root = job.root
    sub_dir = os.path.join(root, job.division, job.submitter)
    fmt = dict(system=job.system, benchmark=job.benchmark_folder, scenario=job.scenario_folder)
    rdir = os.path.join(sub_dir, layout.result_dir.format(**fmt))
    dirs, files = _entries(rdir)
    benchmark = round_.benchmark(job.benchmark_folder, job.model_mapping)
    bench_name = round_.benchmark_name(job.benchmark_folder, job.model_mapping)
    scenario = round_.canonical_scenario(job.scenario_folder)
    scen = scenario or job.scenario_folder
    full_logs = full_logs or _FullLogs(Path(job.sidecar) if job.sidecar else None)
    perf_dir = os.path.join(rdir, round_.files.performance_dir)
    acc_dir = os.path.join(rdir, round_.files.accuracy_dir)
    ep = None
    perf = acc = None
    if is_endpoints(rdir, round_.endpoints):
        assert round_.endpoints is not None
        metrics = [t.metric for t in benchmark.accuracy_targets(scen)] + \
            [t.metric for t in benchmark.accuracy_upper] if benchmark else []
        ep = read_endpoints(root, rdir, round_.endpoints, list(dict.fromkeys(metrics)))
    else:
        perf = _loadgen_run(root, perf_dir, _entries(perf_dir)[1]) if os.path.isdir(perf_dir) else None
        acc = _accuracy(root, acc_dir, round_, benchmark, scen, full_logs) if os.path.isdir(acc_dir) else None
    mdir = os.path.join(sub_dir, layout.measurements_dir.format(**fmt))
    mfiles: dict[str, int] = {}
    if mdir == rdir:
        names = files
    else:
        names = _entries(mdir)[1]
    for name in names:
        try:
            mfiles[name] = os.path.getsize(os.path.join(mdir, name))
        except OSError:
            mfiles[name] = 0
    mname = layout.measurements_file if layout.measurements_file else \
        _measurements_file(mdir, job.system, job.scenario_folder, names)
    mrel = measurements = merr = None
    if mname and mname in mfiles:
        mrel = _rel(root, os.path.join(mdir, mname))
        data, merr = _json(os.path.join(mdir, mname))
        if merr is None and not isinstance(data, dict):
            merr = "is not a JSON object"
        measurements = data if merr is None else None
    cdir = os.path.join(sub_dir, layout.compliance_dir.format(**fmt))
    tests = sorted(set(benchmark.compliance if benchmark else ()) |
                   {d for d in (dirs if cdir == rdir else _entries(cdir)[0]) if d.startswith("TEST")})
    compliance = {t: _compliance(root, cdir, t) for t in tests}
    empty = _empty_below(root, rdir) if dirs else []
    for c in compliance.values():
        if c.exists and cdir != rdir:
            empty += _empty_below(root, os.path.join(root, c.rel))
    metric = None
    latency: dict[str, int] = {}
    run_date = None
    tokens = None
    if perf is not None and perf.detail is not None:
        d = perf.detail
        metric = compute_metric(d, round_, benchmark, scen)
        for key, value in d.values.items():
            m = _PERCENTILE_RE.match(key)
            if m and isinstance(value, int) and not isinstance(value, bool):
                latency[m.group(1)] = value
        run_date = d.get("test_datetime") if isinstance(d.get("test_datetime"), str) else None
        tokens = token_stats(d.values)
    elif ep is not None:
        metric = endpoints_metric(ep, round_, benchmark, scen)
        latency = _latencies(ep.performance_values)
        tokens = token_stats(ep.performance_values)
        date = ep.performance_values.get("test_datetime")
        run_date = date if isinstance(date, str) and date else None
    return ResultEntry(
        division=job.division, submitter=job.submitter, system=job.system, benchmark_folder=job.benchmark_folder,
        scenario_folder=job.scenario_folder, benchmark=bench_name, scenario=scenario, rel=_rel(root, rdir),
        files=tuple(files), performance=perf, accuracy=acc, measurements_dir_rel=_rel(root, mdir),
        measurements_files=mfiles, measurements_rel=mrel, measurements=measurements, measurements_error=merr,
        compliance=compliance, power=os.path.isdir(os.path.join(rdir, round_.files.power_dir)), metric=metric,
        latency_ns=latency, run_date=run_date, record=_record(root, rdir, sub_dir, files),
        empty_dirs=tuple(sorted(set(empty))), tokens=tokens, endpoints=ep)


def _read_chunk(jobs: Sequence[_Job]) -> list[ResultEntry]:
    full_logs = _FullLogs(Path(jobs[0].sidecar) if jobs and jobs[0].sidecar else None)
    return [_read_result(j, full_logs) for j in jobs]


# --- the tree -----------------------------------------------------------------------------------------------

def _system(root: str, division: str, submitter: str, path: str, sid: str) -> SystemEntry:
    rel = _rel(root, path)
    if not os.path.isfile(path):
        return SystemEntry(division, submitter, sid, rel, None, "is missing")
    data, error = _json(path)
    if error is None and not isinstance(data, dict):
        error = "is not a JSON object"
    return SystemEntry(division, submitter, sid, rel, data if error is None else None, error)


def read_tree(root: str | Path, version: str | None = None, *, sidecar: str | Path | None = None,
              jobs: int | None = None) -> SubmissionTree:
    """Read the submission tree at ``root`` with the layout of round ``version`` (default: the newest).

    ``sidecar``: where ``mlrepro collect`` kept the full accuracy logs (default ``<root>.mlrepro`` when it
    exists). ``jobs``: worker processes for trees of PARALLEL_MIN_RESULTS results or more (default 1: on the
    2-core development machine two workers read a 4k-result tree slower than one process, the results' transfer
    between processes costing more than the parsing they share; benchmarks/check_scale.py). Raises
    TreeReadError when ``root`` is not a directory, UnknownRoundError for an unknown round."""
    round_ = load_round(version)
    root_p = Path(root).absolute()
    if not root_p.is_dir():
        raise TreeReadError(f"{root}: not a directory")
    side = Path(sidecar).absolute() if sidecar is not None else tl.sidecar_for(root_p)
    side_s = str(side) if side.is_dir() else None
    rs = str(root_p)
    dirs, files = _entries(rs)
    divisions = [d for d in dirs if d in round_.divisions]
    ignored = [d + "/" for d in dirs if d not in round_.divisions and not d.startswith(".")] + \
        [f for f in files if not f.startswith(".")]
    empty: list[str] = []
    submitters: list[SubmitterEntry] = []
    work: list[_Job] = []
    for division in divisions:
        subs = _entries(os.path.join(rs, division))
        if not subs[0] and not subs[1]:
            empty.append(division)
        for submitter in subs[0]:
            sdir = os.path.join(rs, division, submitter)
            sub_dirs, _ = _entries(sdir)
            mapping: Mapping[str, Any] = {}
            mapping_error = None
            mpath = os.path.join(sdir, tl.MODEL_MAPPING)
            if division == "open" and os.path.exists(mpath):
                data, mapping_error = _json(mpath)
                if mapping_error is None and not isinstance(data, dict):
                    mapping_error = "is not a JSON object"
                mapping = data if mapping_error is None else {}
            systems = {}
            sysdir = os.path.join(sdir, tl.SYSTEMS)
            for name in _entries(sysdir)[1]:
                if name.endswith(".json"):
                    sid = name[:-len(".json")]
                    systems[sid] = _system(rs, division, submitter, os.path.join(sysdir, name), sid)
            results_dir = os.path.join(sdir, tl.RESULTS)
            result_systems = _entries(results_dir)[0] if os.path.isdir(results_dir) else []
            if not sub_dirs and not _entries(sdir)[1]:
                empty.append(_rel(rs, sdir))
            elif os.path.isdir(results_dir) and not result_systems:
                empty.append(_rel(rs, results_dir))
            for system in result_systems:
                if system not in systems:
                    systems[system] = _system(rs, division, submitter, os.path.join(sysdir, f"{system}.json"),
                                              system)
                bdirs = _entries(os.path.join(results_dir, system))[0]
                if not bdirs:
                    empty.append(_rel(rs, os.path.join(results_dir, system)))
                for bench in bdirs:
                    scen_dirs = _entries(os.path.join(results_dir, system, bench))[0]
                    if not scen_dirs:
                        empty.append(_rel(rs, os.path.join(results_dir, system, bench)))
                    for scen in scen_dirs:
                        work.append(_Job(rs, round_.version, side_s, division, submitter, system, bench, scen,
                                         mapping))
            submitters.append(SubmitterEntry(
                division=division, name=submitter, rel=_rel(rs, sdir), has_results=os.path.isdir(results_dir),
                has_code=os.path.isdir(os.path.join(sdir, round_.layout.code_dir)), model_mapping=mapping,
                model_mapping_error=mapping_error, systems=systems, result_systems=tuple(result_systems)))
    results = _read_all(work, jobs)
    return SubmissionTree(root=root_p, version=round_.version, sidecar=Path(side_s) if side_s else None,
                          divisions=tuple(divisions), submitters=tuple(submitters), results=tuple(results),
                          empty_dirs=tuple(empty), ignored=tuple(ignored))


def _read_all(work: Sequence[_Job], jobs: int | None) -> list[ResultEntry]:
    n_jobs = jobs or 1
    if n_jobs <= 1 or len(work) < PARALLEL_MIN_RESULTS:
        return _read_chunk(work)
    size = max(16, len(work) // (n_jobs * 8))
    chunks = [work[i:i + size] for i in range(0, len(work), size)]
    with ProcessPoolExecutor(max_workers=n_jobs) as pool:
        return [r for chunk in pool.map(_read_chunk, chunks) for r in chunk]


# --- mlrepro's run records of a result (mlrepro reproduce) ----------------------------------------------------

@dataclass(frozen=True)
class RunFiles:
    """``<division>/<submitter>/src/mlrepro/<run id>/`` of a tree that ``mlrepro collect`` wrote: the run's
    record (``record.json``), its run spec (``run.json``) and ``reproduce.json``, each None when missing or
    unreadable (``errors`` says which and why, one line each)."""

    run_id: str
    rel: str                                   # the folder, relative to the tree root
    record: Mapping[str, Any] | None
    run_spec: Mapping[str, Any] | None
    reproduce: Mapping[str, Any] | None
    errors: tuple[str, ...] = ()


def read_run_files(tree: SubmissionTree, result: ResultEntry, run_id: str) -> RunFiles:
    """The records of run ``run_id`` behind ``result`` (``result.record`` names its performance and accuracy
    runs). Never raises on content."""
    folder = os.path.join(str(tree.root), result.division, result.submitter, tl.SRC, tl.SRC_MLREPRO, run_id)
    rel = _rel(str(tree.root), folder)
    out: dict[str, Any] = {}
    errors = []
    for key, name in (("record", hl.RECORD_JSON), ("run_spec", hl.RUN_JSON), ("reproduce", tl.REPRODUCE_JSON)):
        path = os.path.join(folder, name)
        data, err = _json(path) if os.path.isfile(path) else (None, "is missing")
        if err is None and not isinstance(data, dict):
            data, err = None, "is not a JSON object"
        out[key] = data
        if err is not None:
            errors.append(f"{rel}/{name} {err}")
    return RunFiles(run_id=run_id, rel=rel, errors=tuple(errors), **out)


def read_result_text(tree: SubmissionTree, result: ResultEntry, name: str) -> str | None:
    """A text file of the result folder (``user.conf``, ``README.md``), None when missing or unreadable."""
    data = _read_bytes(os.path.join(str(tree.root), result.rel, name))
    return data.decode("utf-8", "replace") if data is not None else None
