"""The scenarios a run may have, in one place: the run spec, the profile schema, ``--scenario``, the user.conf
parser, the calibration and the submission tree's folder names all read this table.

Each is run as one of LoadGen's ``TestScenario`` values (the name ``mlperf.conf`` and ``user.conf`` lines use);
a round's variant of a LoadGen scenario (v5.0 on: ``Interactive`` = Server with the model's ``-interactive``
entries of mlperf.conf: tighter TTFT/TPOT limits, e.g. ``llama3_1-8b-interactive`` 500 ms / 30 ms against Server's
2000 ms / 100 ms) names the scenario it runs as and the suffix of its model entries, and files its results in a
folder of its own name. user.conf lines therefore always carry the LoadGen scenario
(``llama3_1-8b-interactive.Server.target_qps``), never ``Interactive``. Source: LoadGen ``test_settings.h``
(TestScenario) and ``mlperf.conf``; the MLPerf inference rules, "Scenarios"; the checker's scenario lists
(tools/submission/submission_checker/constants.py).

This module imports nothing, so that every other one (the user.conf parser that the run spec imports included)
can take the table from here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scenario:
    name: str
    """The run's scenario: ``--scenario``, the run spec, the result folder in the tree."""
    loadgen: str
    """LoadGen's TestScenario it runs as: the scenario of user.conf and mlperf.conf lines."""
    metric: str
    """``throughput`` (samples/s, queries/s, tokens/s) or ``latency`` (a percentile of query latency)."""
    latency_bound: bool
    """Queries must meet a latency bound (Server's target_latency, or the stream scenarios' percentile)."""
    model_suffix: str = ""
    """Appended to the LoadGen model name of mlperf.conf's entries (``-interactive``)."""


TABLE: tuple[Scenario, ...] = (
    Scenario("SingleStream", "SingleStream", "latency", True),
    Scenario("MultiStream", "MultiStream", "latency", True),
    Scenario("Server", "Server", "throughput", True),
    Scenario("Offline", "Offline", "throughput", False),
    Scenario("Interactive", "Server", "throughput", True, "-interactive"),
)
BY_NAME: dict[str, Scenario] = {s.name: s for s in TABLE}

#: every scenario a run may have
SCENARIOS: tuple[str, ...] = tuple(s.name for s in TABLE)
#: LoadGen's scenarios: what user.conf and mlperf.conf lines name
LOADGEN_SCENARIOS: tuple[str, ...] = tuple(dict.fromkeys(s.loadgen for s in TABLE))
#: scenarios whose queries are issued one (or one set) after another; their target is an expected latency
STREAM_SCENARIOS: tuple[str, ...] = tuple(s.name for s in TABLE if s.loadgen in ("SingleStream", "MultiStream"))


def loadgen_scenario(name: str) -> str:
    """The LoadGen scenario ``name`` runs as (``Interactive`` -> ``Server``). Raises ValueError for an unknown
    scenario."""
    try:
        return BY_NAME[name].loadgen
    except KeyError:
        raise ValueError(f"unknown scenario {name!r} (known: {', '.join(SCENARIOS)})") from None


def is_server_like(name: str) -> bool:
    """Server and Interactive: LoadGen's Server scenario (a target QPS, latency bounds)."""
    s = BY_NAME.get(name)
    return s is not None and s.loadgen == "Server"


def loadgen_model(model: str, scenario: str) -> str:
    """The mlperf.conf model name a run of ``scenario`` reads its settings under: ``model`` plus the scenario's
    suffix (``llama3_1-8b`` -> ``llama3_1-8b-interactive`` for Interactive)."""
    return model + BY_NAME[scenario].model_suffix
