"""Helpers shared by the harness tests (imported by name: tests/harness is on sys.path)."""

from __future__ import annotations

from typing import Any

# Short runs that LoadGen accepts as VALID on a slow, busy 2-core machine with the fake workload (~5-50 us/query);
# the Server latency bound is relaxed to 100 ms so scheduler hiccups of a loaded machine cannot fail it.
SHORT_SETTINGS: dict[str, dict[str, float]] = {
    "SingleStream": {"min_duration_ms": 300, "min_query_count": 100, "single_stream_expected_latency_ns": 2000},
    "MultiStream": {"min_duration_ms": 300, "min_query_count": 662, "multi_stream_expected_latency_ns": 10000},
    "Server": {"min_duration_ms": 500, "min_query_count": 100, "server_target_qps": 2000,
               "server_target_latency_ns": 100_000_000},
    "Offline": {"min_duration_ms": 100, "min_query_count": 1, "offline_expected_qps": 1_500_000},
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
