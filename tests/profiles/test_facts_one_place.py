"""Each fact is stated once and the rest of mlrepro derives from it.

The scenario table (``mlrepro/harness/scenarios.py``) is the one place a scenario is named: a copy of the package
with one more entry in that table (and nowhere else) accepts the new scenario on the command line, in a profile,
in a run spec and in a user.conf, and lays its result out in the submission tree. The runner table, the run
statuses and the rounds are checked the same way against what the CLI offers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlrepro

PACKAGE = Path(mlrepro.__file__).parent
TABLE_LINE = '    Scenario("Offline", "Offline", "throughput", False),\n'

PROBE = r"""
import json
from typer.testing import CliRunner

import mlrepro
from mlrepro.cli.main import app
from mlrepro.flow.options import PipelineOptions
from mlrepro.flow.plan import check_options
from mlrepro.harness.spec import parse_spec
from mlrepro.harness.userconf import parse_user_conf
from mlrepro.profiles.loader import resolve_profile
from mlrepro.report.model import LATENCY_SCENARIOS, THROUGHPUT_SCENARIOS
from mlrepro.results import layout as tl

out = {"package": mlrepro.__file__}
help_text = " ".join(CliRunner().invoke(app, ["launch", "--help"]).output.split())
out["cli_help"] = "Burst" in help_text
check_options(PipelineOptions(scenarios=["Burst"]))                      # raises BadInputError when unknown
out["cli_choice"] = True
out["profile"] = resolve_profile("x86-cpu", [], ["benchmark.scenarios=[Burst]"]).profile.benchmark.scenarios
spec = parse_spec({"run_id": "r1", "workload": {"name": "null"}, "scenario": "Burst", "mode": "performance"})
out["spec"] = spec.scenario
conf = parse_user_conf("resnet50.Burst.min_duration = 1000\n")
out["user_conf"] = [(line.scenario, line.name) for line in conf.lines]
out["tree"] = tl.TreeLayout(tl.Path("/t"), "open", "Acme").result_rel("sys", "resnet", "Burst")
out["tree_names"] = "Burst" in tl.SCENARIO_NAMES
out["report"] = ["Burst" in THROUGHPUT_SCENARIOS, "Burst" in LATENCY_SCENARIOS]
print(json.dumps(out))
"""


def test_a_scenario_added_in_the_table_reaches_the_cli_the_user_conf_and_the_tree(tmp_path: Path) -> None:
    copy = tmp_path / "mlrepro"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    table = copy / "harness" / "scenarios.py"
    text = table.read_text(encoding="utf-8")
    assert text.count(TABLE_LINE) == 1, "the scenario table moved: update this test's anchor"
    table.write_text(text.replace(TABLE_LINE, TABLE_LINE + '    Scenario("Burst", "Burst", "throughput", True),\n'),
                     encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=300,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["package"].startswith(str(copy))                 # the copy ran, not the installed package
    assert out["cli_help"] and out["cli_choice"]
    assert out["profile"] == ["Burst"] and out["spec"] == "Burst"
    assert out["user_conf"] == [["Burst", "min_duration"]]
    assert out["tree"] == "open/Acme/results/sys/resnet/Burst" and out["tree_names"]
    assert out["report"] == [True, True]


def test_the_cli_offers_what_the_tables_hold() -> None:
    from typer.testing import CliRunner

    from mlrepro.cli.main import app
    from mlrepro.harness.sysinfo.runtime import TARGETS as HARNESS_TARGETS
    from mlrepro.results.rounds import ROUNDS
    from mlrepro.runners.targets import ALIASES, TARGETS
    from mlrepro.state.status import STATUSES

    runner = CliRunner()

    def help_of(*command: str) -> str:     # help text with its line wrapping undone
        return " ".join(runner.invoke(app, [*command, "--help"]).output.split())

    assert set(HARNESS_TARGETS) == set(TARGETS)   # the harness repeats them (it runs without the runner table)
    run_help, launch_help = help_of("run"), help_of("launch")
    for name in (*TARGETS, *ALIASES):
        assert name in run_help and name in launch_help
    assert "auto" in run_help and "<auto|" not in launch_help
    assert f"<{'|'.join(STATUSES)}>" in help_of("runs")
    assert ", ".join(ROUNDS) in help_of("check") and ", ".join(ROUNDS) in help_of("report")
    assert [p.stem for p in sorted((PACKAGE / "results" / "rounds" / "data").glob("v*.yaml"))] == list(ROUNDS)
    # a recorded command line names its target as the CLI takes it, alias and --opt=value included
    from mlrepro.reproduce.source import _target

    assert _target(("mlrepro", "run", "-p", "x", "--target=k8s")) == "kubernetes"
    assert _target(("mlrepro", "run", "--target", "docker", "--target", "k8s")) == "kubernetes"
    assert json.loads(json.dumps(list(ALIASES.items()))) == [["k8s", "kubernetes"]]
