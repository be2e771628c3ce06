"""Read a v6.1 "endpoints" result folder as the official checker reads it.

MLCommons' endpoints harness (mlcommons/endpoints) measures an OpenAI-compatible server instead of running LoadGen;
its result folder holds no ``mlperf_log_*`` files but::

    <result>/config.yaml                          the run's configuration (type offline|online, settings.runtime:
                                                  min_duration_ms, dataloader/scheduler seeds, load pattern ...)
    <result>/performance/result_summary.json      the performance report (n_samples_*, duration_ns, qps, tps,
                                                  latency/ttft/tpot: percentiles, early_stopping_percentiles ...)
    <result>/accuracy/accuracy_results.json       {"accuracy_scores": [{"score", "total_samples", "dataset_type",
                                                  ...}], ...}
    <result>/audit/audit_<test>.json              compliance audits ({"test", "passed", ...}), where run
    <result>/measurements.json, README.md         as for any result (no user.conf)

The checker takes a folder for an endpoints result when neither LoadGen detail log (performance/run_1, accuracy)
is there; mlrepro also wants config.yaml or result_summary.json, so that a LoadGen result that lost its logs is
still reported as such. Each LoadGen key the checker reads is looked up as it looks it up (parsers/
endpoints_parser.py): the endpoints field's dotted path in result_summary.json (the accuracy file for the accuracy
values), then its other JSON path, then its config.yaml path, then the same path in config.yaml; a path step may
be a key holding dots ("99.0") and a trailing ".0" may name an integer key ("50" for "50.0"); an empty mapping is
no value. The table is the round's data (rounds/data/v6.1.yaml ``endpoints``).

Source: mlcommons/inference tools/submission at b66003e: submission_structure.md, loader.py, parsers/
endpoints_parser.py, constants.py (ENDPOINTS_*); no real endpoints submission was public to compare with.

Public API::

    is_endpoints(result_dir, rules) -> bool
    read_endpoints(root, result_dir, rules, metrics=()) -> EndpointsResult      (never raises on content)
    endpoints_scenario(result, rules, folder) -> str | None
    score_metrics(score, metrics, rules) -> dict[str, str]
    lookup(data, dotted) -> Any
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from mlrepro.results.rounds import EndpointsRules

PERF_DETAIL = os.path.join("performance", "run_1", "mlperf_log_detail.txt")
ACC_DETAIL = os.path.join("accuracy", "mlperf_log_detail.txt")


@dataclass(frozen=True)
class EndpointsFile:
    """One file of an endpoints result: its path (relative to the tree root) and content, or why there is none."""

    rel: str
    data: Mapping[str, Any] | None         # None: missing or unreadable (error says which)
    error: str | None = None               # "is missing", "is not valid JSON (...)", "is not a mapping"

    @property
    def exists(self) -> bool:
        return self.error != "is missing"


@dataclass(frozen=True)
class EndpointsResult:
    """What an endpoints result folder says, with the LoadGen keys the official checker derives from it."""

    rel: str                               # the result folder
    config: EndpointsFile
    summary: EndpointsFile                 # performance/result_summary.json
    accuracy: EndpointsFile                # accuracy/accuracy_results.json
    performance_values: Mapping[str, Any]  # LoadGen key -> value, as the checker's performance parser gives it
    accuracy_values: Mapping[str, Any]     # ... and its accuracy parser (effective_accuracy_sample_count ...)
    audits: Mapping[str, EndpointsFile] = field(default_factory=dict)   # TEST0x -> audit/audit_<name>.json
    metrics: Mapping[str, str] = field(default_factory=dict)   # accuracy metric -> value text, from the score

    @property
    def scores(self) -> tuple[Mapping[str, Any], ...]:
        """The accuracy_scores entries of accuracy_results.json (dicts only)."""
        data = self.accuracy.data or {}
        entries = data.get("accuracy_scores")
        return tuple(e for e in entries if isinstance(e, Mapping)) if isinstance(entries, list) else ()

    @property
    def accuracy_score(self) -> Any:
        """The first score of accuracy_results.json (the checker's ``accuracy_score``), None when there is none."""
        return next((e["score"] for e in self.scores if e.get("score") is not None), None)

    def value(self, key: str) -> Any:
        """A LoadGen key of the performance values, else of the accuracy values."""
        v = self.performance_values.get(key)
        return v if v is not None else self.accuracy_values.get(key)


def lookup(data: Any, dotted: str) -> Any:
    """The value at ``dotted`` in nested mappings, as the checker resolves it (see the module docstring); None
    when absent or an empty mapping/list."""
    if not isinstance(data, Mapping):
        return None
    parts = dotted.split(".")
    node: Any = data
    start = 0
    while start < len(parts):
        if not isinstance(node, Mapping):
            # "50.0" of a percentile keyed "50": the ".0" left over names the integer key just taken
            return node if parts[start:] == ["0"] and not isinstance(node, list) else None
        for end in range(len(parts), start, -1):
            key = ".".join(parts[start:end])
            if key in node:
                node, start = node[key], end
                break
        else:
            return None
    if isinstance(node, (Mapping, list)) and not node:
        return None
    return node


def _resolve(rules: EndpointsRules, name: str, sources: Sequence[Any], config: Any) -> Any:
    for data in sources:
        value = lookup(data, name)
        if value is None and name in rules.json_fields:
            value = lookup(data, rules.json_fields[name])
        if value is not None:
            return value
    if name in rules.config_fields:
        value = lookup(config, rules.config_fields[name])
        if value is not None:
            return value
    return lookup(config, name)


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def map_values(rules: EndpointsRules, json_data: Any, config: Any, *, accuracy: bool = False) -> dict[str, Any]:
    """The LoadGen keys of one of the checker's two parsers: ``json_data`` is result_summary.json (performance) or
    accuracy_results.json (``accuracy``); ``config`` is config.yaml. First value wins, as in the checker."""
    out: dict[str, Any] = {}
    for name, key in rules.fields.items():
        value = _resolve(rules, name.strip(), (json_data,), config)
        if value is not None:
            out.setdefault(key, value)
    if accuracy:
        counts = []
        entries = json_data.get("accuracy_scores") if isinstance(json_data, Mapping) else None
        for e in entries if isinstance(entries, list) else ():
            if not isinstance(e, Mapping) or e.get("dataset_type") not in (None, "accuracy"):
                continue
            issued = e.get("response_counts", {}).get("issued") if isinstance(e.get("response_counts"), Mapping) \
                else None
            count = e.get("total_samples") if e.get("total_samples") is not None else issued
            if _number(count) is not None:
                counts.append(int(_number(count) or 0))
        if counts:
            out["effective_accuracy_sample_count"] = sum(counts)
            out.setdefault("qsl_reported_total_count", sum(counts))
    for key, source in rules.copied.items():
        if out.get(source) is not None:
            out.setdefault(key, out[source])
    duration, count, scenario = (out.get("generated_query_duration"), out.get("generated_query_count"),
                                 out.get("effective_scenario"))
    d, c = _number(duration), _number(count)
    if d and c and isinstance(scenario, str) and scenario:
        key = "result_samples_per_second" if scenario.lower() == "offline" else "result_completed_samples_per_sec"
        out.setdefault(key, c / (d / 1e9))
    return out


def score_metrics(score: Any, metrics: Sequence[str], rules: EndpointsRules) -> dict[str, str]:
    """The benchmark's accuracy ``metrics`` (target metrics first) in an accuracy_results.json ``score``: a number
    is the first metric's value; a mapping holds each under its scorer key (``score_keys``: rouge1 ... gen_len),
    its own name or that name's last word in lower case (the checker's reading of a qwen3-vl score), the first
    metric also under "f1", "score" or "accuracy". Values as text, as accuracy.txt values are."""
    if score is None or isinstance(score, bool) or not metrics:
        return {}
    if not isinstance(score, Mapping):
        return {metrics[0]: str(score)} if _number(score) is not None else {}
    out = {}
    for i, m in enumerate(metrics):
        keys = [rules.score_keys.get(m, m), m, m.lower(), m.split("_")[-1].lower()]
        keys += ["f1", "score", "accuracy"] if i == 0 else []
        value = next((score[k] for k in keys if k in score and _number(score[k]) is not None), None)
        if value is not None:
            out[m] = str(value)
    return out


def _rel(root: str, path: str) -> str:
    return os.path.relpath(path, root).replace(os.sep, "/")


def _read(root: str, path: str, kind: str) -> EndpointsFile:
    rel = _rel(root, path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return EndpointsFile(rel, None, "is missing")
    except OSError as exc:
        return EndpointsFile(rel, None, f"cannot be read ({exc.strerror or exc})")
    try:
        if kind == "yaml":
            import yaml

            data = yaml.safe_load(raw)
        else:
            data = json.loads(raw)
    except Exception as exc:  # noqa: BLE001 - any parser error is the file's problem, reported as such
        what = "YAML" if kind == "yaml" else "JSON"
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return EndpointsFile(rel, None, f"is not valid {what} ({first})")
    if not isinstance(data, Mapping):
        return EndpointsFile(rel, None, "is not a mapping")
    return EndpointsFile(rel, data)


def is_endpoints(result_dir: str, rules: EndpointsRules | None) -> bool:
    """Whether a result folder is an endpoints result: the round has them, neither LoadGen detail log is there,
    and a config.yaml or result_summary.json is."""
    if rules is None:
        return False
    if os.path.exists(os.path.join(result_dir, PERF_DETAIL)) or os.path.exists(os.path.join(result_dir, ACC_DETAIL)):
        return False
    return any(os.path.isfile(os.path.join(result_dir, n)) for n in (*rules.config, rules.performance))


def read_endpoints(root: str, result_dir: str, rules: EndpointsRules,
                   metrics: Sequence[str] = ()) -> EndpointsResult:
    """Read the endpoints result at ``result_dir`` (under the tree ``root``); ``metrics``: the benchmark's accuracy
    metrics, read from the score (:func:`score_metrics`). Never raises on content."""
    config = next((os.path.join(result_dir, n) for n in rules.config if os.path.isfile(os.path.join(result_dir, n))),
                  os.path.join(result_dir, rules.config[0]))
    cfg = _read(root, config, "yaml")
    summary = _read(root, os.path.join(result_dir, rules.performance), "json")
    acc = _read(root, os.path.join(result_dir, rules.accuracy), "json")
    audits = {}
    for test, name in rules.compliance.items():
        path = os.path.join(result_dir, rules.audit_dir, f"audit_{name}.json")
        audits[test] = _read(root, path, "json")
    ep = EndpointsResult(
        rel=_rel(root, result_dir), config=cfg, summary=summary, accuracy=acc,
        performance_values=map_values(rules, summary.data or {}, cfg.data or {}),
        accuracy_values=map_values(rules, acc.data or {}, cfg.data or {}, accuracy=True), audits=audits)
    return replace(ep, metrics=score_metrics(ep.accuracy_score, metrics, rules))


def endpoints_scenario(ep: EndpointsResult, rules: EndpointsRules, folder: str) -> str | None:
    """The scenario the checker judges an endpoints result as (PerformanceCheck.map_endpoints_scenario): the
    folder's for SingleStream and Interactive folders, else config.yaml's type mapped (``online`` -> Server;
    ``offline`` -> Offline); None without a type."""
    kind = ep.performance_values.get("effective_scenario")
    kind = kind if isinstance(kind, str) else None
    if folder.lower() == "singlestream":
        return "SingleStream"
    if folder.lower() == "interactive" or (kind or "").lower() == "interactive":
        return "Interactive"
    if kind is None:
        return None
    return rules.types.get(kind.lower(), kind[:1].upper() + kind[1:])
