"""The scenarios a run spec may name, and the LoadGen scenario each one runs as.

``Interactive`` is not a LoadGen scenario: MLPerf Inference v6.x runs it as LoadGen's ``Server`` with the
``<model>-interactive`` entries of mlperf.conf (tighter TTFT/TPOT limits, e.g. ``llama3_1-8b-interactive``: 500 ms /
30 ms against Server's 2000 ms / 100 ms) and files it in its own ``Interactive/`` result folder (the checker's
``scenario`` lists, tools/submission/submission_checker/constants.py). user.conf lines therefore always carry the
LoadGen scenario (``llama3_1-8b-interactive.Server.target_qps``), never ``Interactive``.

:mod:`mlrepro.harness.spec` re-exports :data:`SCENARIOS`: every other module takes the list from there.
This module has no imports so that :mod:`mlrepro.harness.userconf` (which spec imports) can use it too.
"""

from __future__ import annotations

#: the scenarios of LoadGen itself (``mlperf_loadgen.TestScenario``)
LOADGEN_SCENARIOS = ("SingleStream", "MultiStream", "Server", "Offline")
#: the scenarios a run spec may name: LoadGen's, plus Interactive (LoadGen's Server with the -interactive model)
SCENARIOS = LOADGEN_SCENARIOS + ("Interactive",)
#: spec scenario -> LoadGen scenario
_LOADGEN = {s: s for s in LOADGEN_SCENARIOS} | {"Interactive": "Server"}


def loadgen_scenario(scenario: str) -> str:
    """The LoadGen scenario a spec scenario runs as (``Interactive`` -> ``Server``). Raises ValueError for an
    unknown scenario."""
    try:
        return _LOADGEN[scenario]
    except KeyError:
        raise ValueError(f"unknown scenario {scenario!r} (known: {', '.join(SCENARIOS)})") from None


def is_server_like(scenario: str) -> bool:
    """Server and Interactive: LoadGen's Server scenario (a target QPS, latency bounds)."""
    return _LOADGEN.get(scenario) == "Server"
