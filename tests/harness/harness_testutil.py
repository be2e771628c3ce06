"""Helpers shared by the harness tests (imported by name: tests/harness is on sys.path)."""

from __future__ import annotations

from typing import Any

# Short runs: no LoadGen target is given, the harness calibrates it on whatever machine runs the tests. The
# query counts keep LoadGen's early stopping satisfied on slow machines too (Server >= 1,024 queries, MultiStream
# mlperf.conf's 662); the Server latency bound is relaxed to 100 ms so scheduler hiccups of a loaded machine
# cannot fail it (a bound, not a speed: calibration finds the QPS that meets it).
SHORT_SETTINGS: dict[str, dict[str, float]] = {
    "SingleStream": {"min_duration_ms": 200, "min_query_count": 100},
    "MultiStream": {"min_duration_ms": 200},
    "Server": {"min_duration_ms": 200, "min_query_count": 1024, "server_target_latency_ns": 100_000_000},
    "Offline": {"min_duration_ms": 200, "min_query_count": 1},
}


def spec_dict(scenario: str = "Offline", mode: str = "performance", run_id: str | None = None,
              workload: str = "fake", options: dict[str, Any] | None = None, batch_size: int = 8,
              settings: dict[str, float] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "run_id": run_id or f"t-{scenario.lower()}-{mode}",
        "scenario": scenario,
        "mode": mode,
        "workload": {"name": workload, "backend": "none", "batch_size": batch_size,
                     "options": {"dataset_size": 64, **(options or {})}},
        "settings": dict(SHORT_SETTINGS[scenario] if settings is None else settings),
        "profile_name": "test-profile",
        "profile_hash": "sha256:" + "ab" * 32,
        **extra,
    }
