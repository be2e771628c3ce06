"""The token figures of an LLM run: throughput in tokens/s and the time to first token (TTFT) and time per output
token (TPOT) percentiles, as LoadGen logs them when ``use_token_latencies`` is on (every LLM of mlperf.conf).

Source: LoadGen's detail log (loadgen/logging.cc, results.cc: ``result_tokens_per_second`` of an Offline run,
``result_completed_tokens_per_second`` of a Server run, which Interactive is; ``result_first_token_<pct>_
percentile_latency_ns`` and ``result_time_per_output_token_<pct>_percentile_ns`` of Server runs only) and the
submission checker's metric table (RESULT_FIELD_BENCHMARK_OVERWRITE: tokens/s is an LLM's result). An endpoints
result (mlrepro.results.endpoints) gives the same keys through the official checker's field mapping.

Public API::

    TOKEN_PERCENTILES, TOKEN_KEYS
    TokenStats(tokens_per_second, throughput_key, ttft_ns, tpot_ns)   .ttft_p50_ns ... .to_dict()
    token_stats(values) -> TokenStats | None          (None: no token figure in the log)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: the percentiles LoadGen logs (and the summary prints) for TTFT and TPOT
TOKEN_PERCENTILES = ("50.00", "90.00", "95.00", "97.00", "99.00", "99.90")
#: throughput keys, in the order they are preferred: a Server run's completed tokens, then an Offline run's
THROUGHPUT_KEYS = ("result_completed_tokens_per_second", "result_tokens_per_second")


def ttft_key(percentile: str) -> str:
    return f"result_first_token_{percentile}_percentile_latency_ns"


def tpot_key(percentile: str) -> str:
    return f"result_time_per_output_token_{percentile}_percentile_ns"


#: every detail-log key token_stats reads (readers that parse only some keys include these)
TOKEN_KEYS = frozenset(THROUGHPUT_KEYS) | {ttft_key(p) for p in TOKEN_PERCENTILES} | \
    {tpot_key(p) for p in TOKEN_PERCENTILES}


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class TokenStats:
    """Token throughput and latencies of one performance run. Latencies in ns, throughput in tokens/s; None (or
    absent from the mappings) where the log does not say (Offline runs have no TTFT/TPOT)."""

    tokens_per_second: float | None
    throughput_key: str                                        # the detail-log key it came from ("" if none)
    ttft_ns: Mapping[str, float] = field(default_factory=dict)  # percentile ("99.00") -> ns
    tpot_ns: Mapping[str, float] = field(default_factory=dict)

    @property
    def ttft_p50_ns(self) -> float | None:
        return self.ttft_ns.get("50.00")

    @property
    def ttft_p99_ns(self) -> float | None:
        return self.ttft_ns.get("99.00")

    @property
    def tpot_p50_ns(self) -> float | None:
        return self.tpot_ns.get("50.00")

    @property
    def tpot_p99_ns(self) -> float | None:
        return self.tpot_ns.get("99.00")

    def to_dict(self) -> dict[str, float | None]:
        """The JSON block of run tables: {"tokens_per_second", "ttft_p50_ns", "ttft_p99_ns", "tpot_p50_ns",
        "tpot_p99_ns"} (tokens/s and ns; null where the log does not say)."""
        return {"tokens_per_second": self.tokens_per_second, "ttft_p50_ns": self.ttft_p50_ns,
                "ttft_p99_ns": self.ttft_p99_ns, "tpot_p50_ns": self.tpot_p50_ns, "tpot_p99_ns": self.tpot_p99_ns}


def token_stats(values: Mapping[str, Any]) -> TokenStats | None:
    """The token figures among a detail log's ``values`` (key -> first value; LoadGen's or an endpoints result's
    mapped keys). None when there is none: a run without token latencies (not an LLM, or use_token_latencies off)."""
    tps = None
    key = ""
    for k in THROUGHPUT_KEYS:
        tps = _number(values.get(k))
        if tps is not None:
            key = k
            break
    ttft = {p: v for p in TOKEN_PERCENTILES if (v := _number(values.get(ttft_key(p)))) is not None}
    tpot = {p: v for p in TOKEN_PERCENTILES if (v := _number(values.get(tpot_key(p)))) is not None}
    if tps is None and not ttft and not tpot:
        return None
    return TokenStats(tokens_per_second=tps, throughput_key=key, ttft_ns=ttft, tpot_ns=tpot)
