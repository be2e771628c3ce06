"""TEST06 for the LLMs on the native target with the real demo model (SmolLM2-135M, transformers on CPU): a
closed-division run of an LLM runs TEST06 with its performance run, and `mlrepro compliance` audits an LLM run
with TEST06 (the round's test for its benchmark) by default. Offline runs (TEST06's first-token check is skipped
there; the streaming scenarios' check is tested in tests/harness/test_llm_token_latency.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlrepro.cli.main import app
from mlrepro.flow import PipelineOptions, run_pipeline
from mlrepro.profiles import resolve_profile

pytest.importorskip("transformers")
pytest.importorskip("gguf")
pytestmark = pytest.mark.slow
runner = CliRunner()


@pytest.fixture()
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "state"
    monkeypatch.setenv("MLREPRO_STATE_DIR", str(d))
    return d


def _test06(run_dir: Path, scenario: str = "Offline") -> list[str]:
    return (run_dir / scenario / "TEST06/verify_accuracy.txt").read_text().splitlines()


def test_a_closed_llm_run_runs_test06_and_compliance_audits_it_with_test06(state: Path) -> None:
    """One closed-division Offline run (4 new tokens per sample: what TEST06 checks does not depend on how many):
    TEST06 runs with its performance run; then `mlrepro compliance RUN` (no --test) audits it with TEST06 again."""
    messages: list[str] = []
    resolved = resolve_profile("x86-cpu-llm", ["quick"], ["benchmark.options.max_new_tokens=4"])
    result = run_pipeline(resolved, PipelineOptions(target="native", scenarios=["Offline"], modes=["performance"],
                                                    division="closed", into=None, collect=False),
                          progress=messages.append)
    (run,) = result.runs
    assert run.status == "succeeded" and run.results_dir is not None, run
    assert any("compliance tests of llama3.1-8b: TEST06" in m for m in messages), messages
    record = json.loads((run.results_dir / "record.json").read_text())
    (test06,) = record["compliance"]
    assert test06["test"] == "TEST06" and test06["passed"] is True and test06["audit_config_used"]
    assert "*.*.accuracy_log_sampling_target = 100" in (run.results_dir / "Offline/TEST06/audit.config").read_text()
    assert _test06(run.results_dir) == ["First token check pass: Skipped", "EOS check pass: True",
                                        "Sample length check pass: True", "TEST06 verification complete"]
    assert not run.compliance_failed

    out = runner.invoke(app, ["compliance", run.run_id, "--output", "json"])
    assert out.exit_code == 0, out.output
    (entry,) = json.loads(out.stdout[out.stdout.index("[\n"):])
    assert entry["passed"] is True and entry["status"] == "succeeded"
    assert [(v["test"], v["kind"], v["passed"]) for v in entry["verifications"]] == [("TEST06", "accuracy", True)]
    rows = {r["run_id"]: r for r in json.loads(runner.invoke(app, ["runs", "--output", "json"]).stdout)}
    assert rows[entry["audit_run_id"]]["mode"] == "audit"


def test_test06_of_a_run_that_is_not_an_llm_run_is_bad_input(state: Path) -> None:
    result = run_pipeline(resolve_profile("x86-cpu", ["quick"]),
                          PipelineOptions(target="native", scenarios=["Offline"], modes=["performance"],
                                          into=None, collect=False))
    (perf,) = result.runs
    out = runner.invoke(app, ["compliance", perf.run_id, "--test", "TEST06"])
    assert out.exit_code == 2, out.output
    assert out.output.strip() == (f"mlrepro: error: --test TEST06: run {perf.run_id} is not an LLM run (TEST06 "
                                  "checks the first token, EOS and length of generated tokens)")
