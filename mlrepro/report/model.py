"""What a report shows: one row per result folder, the problems ``mlrepro check`` finds, and a comparison.

Public API::

    ResultRow, Problem, Change, Comparison, TreeReport      (frozen dataclasses)
    has_tokens(rows) -> bool
    LATENCY_SCENARIOS, THROUGHPUT_SCENARIOS
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mlrepro.harness.scenarios import TABLE as _SCENARIOS

#: scenarios whose latency percentiles are charted (a latency bound or a latency metric)
LATENCY_SCENARIOS = tuple(s.name for s in _SCENARIOS if s.latency_bound or s.metric == "latency")
#: scenarios whose metric is a throughput (samples/s, queries/s or tokens/s)
THROUGHPUT_SCENARIOS = tuple(s.name for s in _SCENARIOS if s.metric == "throughput")


@dataclass(frozen=True)
class ResultRow:
    """One result folder ``<division>/<submitter>/results/<system>/<benchmark>/<scenario>`` as the report shows
    it. Values are None where the tree does not say (the problems list says why)."""

    path: str                              # the result folder, relative to the tree root
    division: str
    submitter: str
    system: str                            # the system folder (= systems/<system>.json)
    system_name: str | None                # system_name of the systems json
    accelerator: str | None                # "<accelerators_per_node> x <accelerator_model_name>", or "CPU only"
    benchmark: str                         # the benchmark folder
    mlperf_benchmark: str                  # the MLPerf benchmark it maps to
    scenario: str                          # canonical scenario name (the folder name when it is none)
    metric: str | None                     # the detail-log key of the result metric
    value: float | None
    unit: str                              # e.g. "Samples/s", "Tokens/s", "Latency (ms)"
    inferred: bool
    latency_ms: Mapping[str, float]        # percentile ("50.00", "99.90") -> ms, of the performance run
    accuracy: Mapping[str, str]            # metric -> value, as accuracy.txt says
    validity: str | None                   # LoadGen's "Result is" (VALID | INVALID)
    run_date: str | None                   # test_datetime of the performance run (ISO 8601, UTC)
    profile_name: str | None               # mlrepro trees: the profile and its content hash
    profile_hash: str | None
    image_digest: str | None
    run_id: str | None                     # mlrepro trees: the performance run's id
    errors: int                            # findings of mlrepro check on this result
    warnings: int
    tokens_per_second: float | None = None  # LLM results: tokens/s (LoadGen's, or an endpoints result's tps)
    ttft_ms: Mapping[str, float] = field(default_factory=dict)   # time to first token: percentile -> ms
    tpot_ms: Mapping[str, float] = field(default_factory=dict)   # time per output token: percentile -> ms
    endpoints: bool = False                # an endpoints result (v6.1: no LoadGen logs)

    @property
    def ttft_p99_ms(self) -> float | None:
        return self.ttft_ms.get("99.00")

    @property
    def tpot_p99_ms(self) -> float | None:
        return self.tpot_ms.get("99.00")

    @property
    def label(self) -> str:
        """The bar/series label of charts: the submitter, the system, and the profile where mlrepro ran it
        (two submitters may publish the same system name: each result is its own bar)."""
        if not self.profile_name:
            return f"{self.submitter} · {self.system}"
        return f"{self.submitter} · {self.system} · {self.profile_name} {(self.profile_hash or '')[:8]}".rstrip()

    @property
    def source(self) -> str:
        """The run behind the figures: the mlrepro run id, else the result folder and LoadGen's run date."""
        if self.run_id:
            return f"run {self.run_id}"
        return f"{self.path} ({self.run_date})" if self.run_date else self.path

    @property
    def is_throughput(self) -> bool:
        return self.scenario in THROUGHPUT_SCENARIOS and self.value is not None and "atency" not in self.unit


def has_tokens(rows: Sequence[ResultRow]) -> bool:
    """Whether any row is an LLM result with token figures (the report then shows tokens/s, TTFT and TPOT)."""
    return any(r.tokens_per_second is not None or r.ttft_ms or r.tpot_ms for r in rows)


@dataclass(frozen=True)
class Problem:
    """A finding of ``mlrepro check``: one line saying what and where."""

    severity: str                          # error | warning
    code: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.path}: {self.message} [{self.code}]"


@dataclass(frozen=True)
class Change:
    """One result present in both trees of a comparison."""

    base: ResultRow
    other: ResultRow

    @property
    def key(self) -> str:
        return f"{self.base.benchmark} {self.base.scenario} · {self.base.label}"

    @property
    def lower_is_better(self) -> bool:
        """Latency metrics (SingleStream, MultiStream: ms) improve downwards, throughputs upwards."""
        return "atency" in self.base.unit

    @property
    def change_pct(self) -> float | None:
        """(other - base) / base in %; for a latency metric a negative change is an improvement."""
        a, b = self.base.value, self.other.value
        if a is None or b is None or a == 0 or self.base.unit != self.other.unit:
            return None
        return (b - a) / a * 100.0


@dataclass(frozen=True)
class Comparison:
    base: Path
    other: Path
    changes: tuple[Change, ...]
    only_base: tuple[ResultRow, ...]       # results of the base tree the other lacks
    only_other: tuple[ResultRow, ...]
    matched_by: str                        # "system" or "benchmark and scenario" (one system per tree)

    @property
    def names(self) -> tuple[str, str]:
        """Short names of the two trees (their folder names, with the parent's when both are the same)."""
        if self.base.name != self.other.name:
            return self.base.name, self.other.name
        return f"{self.base.parent.name}/{self.base.name}", f"{self.other.parent.name}/{self.other.name}"


@dataclass(frozen=True)
class TreeReport:
    root: Path
    version: str                           # the MLPerf inference round whose layout and rules were used
    rows: tuple[ResultRow, ...]
    problems: tuple[Problem, ...]
    comparison: Comparison | None = None
    other_problems: tuple[Problem, ...] = field(default=())   # problems of the compared tree

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")
