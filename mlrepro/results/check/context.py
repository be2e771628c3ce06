"""What the per-result rules share: the round, the result, its benchmark and its system description."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlrepro.results.rounds import Benchmark, Round
from mlrepro.results.tree import ResultEntry


@dataclass(frozen=True)
class ResultContext:
    round: Round
    result: ResultEntry
    benchmark: Benchmark | None
    system: Mapping[str, Any] | None       # the parsed systems json (None: missing or unreadable)
    sidecar_has_full_logs: bool = False    # the tree has mlrepro's sidecar of kept full accuracy logs

    @property
    def scope(self) -> str:
        return self.result.rel

    @property
    def division(self) -> str:
        return self.result.division

    @property
    def strict(self) -> bool:
        """Closed and network division results are held to every rule; the open division to fewer."""
        return self.result.division in ("closed", "network")

    @property
    def scenario(self) -> str:
        """The canonical scenario of the folder (its own name when it is no scenario)."""
        return self.result.scenario or self.result.scenario_folder

    @property
    def system_type(self) -> str | None:
        value = self.system.get("system_type") if self.system else None
        return value if isinstance(value, str) else None

    @property
    def network_mode(self) -> bool:
        value = self.system.get("is_network") if self.system else None
        return isinstance(value, str) and value.lower() == "true"


def to_float(value: Any) -> float | None:
    """A number from a log value (None for missing, booleans and text that is no number)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def ms(ns: float | int | None) -> str:
    """A latency in ns as people read it: ``790,056,000`` -> ``790.1 ms``, ``2000000000`` -> ``2,000 ms``; "-" for
    None (LoadGen logs and the round's limits are in ns; messages say ms)."""
    if ns is None:
        return "-"
    text = f"{float(ns) / 1e6:,.1f}"
    return (text[:-2] if text.endswith(".0") else text) + " ms"
