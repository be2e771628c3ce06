"""v6.1 endpoints results (config.yaml, performance/result_summary.json, accuracy/accuracy_results.json; no LoadGen
logs): the built fixture (fixtures/endpoints-v6.1, see its README) is read as the official checker reads it and
judged by the same limits. Its recorded official verdict is the reference; each one-rule case is also run through
the official checker where it is available here (official_testutil): mlrepro rejects exactly what it rejects,
says in one finding what makes it stop with a traceback ("crash"), and goes further where marked "stricter"."""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from check_testutil import codes, paths
from official_testutil import official_verdict, rejected, rejected_by_mlrepro
from typer.testing import CliRunner

from mlrepro.cli.main import app
from mlrepro.results.check import check_tree
from mlrepro.results.endpoints import lookup
from mlrepro.results.tree import read_tree

FIXTURE = Path(__file__).parent / "fixtures" / "endpoints-v6.1"
RES = "closed/Example/results/1xH100-SXM-80GB_vLLM/llama3.1-8b"
OFF, SRV, INT = f"{RES}/Offline", f"{RES}/Server", f"{RES}/Interactive"
SUMMARY = "performance/result_summary.json"
ACCURACY = "accuracy/accuracy_results.json"


def endpoints_tree(dest: Path) -> Path:
    root = dest / "endpoints"
    shutil.copytree(FIXTURE / "tree", root)
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            os.chmod(p, os.stat(p).st_mode | stat.S_IWUSR)
    return root


def recorded_verdict() -> dict[str, Any]:
    return json.loads((FIXTURE / "official-verdict.json").read_text())


def edit_json(rel: str, change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def go(root: Path) -> None:
        p = root / rel
        data = json.loads(p.read_text())
        change(data)
        p.write_text(json.dumps(data, indent=2))
    return go


def edit_yaml(rel: str, change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def go(root: Path) -> None:
        p = root / rel
        data = yaml.safe_load(p.read_text())
        change(data)
        p.write_text(yaml.safe_dump(data, sort_keys=False))
    return go


def remove(rel: str) -> Callable[[Path], None]:
    def go(root: Path) -> None:
        p = root / rel
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    return go


def write(rel: str, data: Any) -> Callable[[Path], None]:
    def go(root: Path) -> None:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(data))
    return go


def es(series: str, value: float) -> Callable[[dict[str, Any]], None]:
    """Set the early-stopping p99 estimate of a result_summary.json series (ttft, tpot, latency)."""
    return lambda d: d[series]["early_stopping_percentiles"].__setitem__("99.0", value)


def score(key: str, value: str) -> Callable[[dict[str, Any]], None]:
    return lambda d: d["accuracy_scores"][0]["score"].__setitem__(key, value)


def runtime(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda d: d["settings"]["runtime"].__setitem__(key, value)


@dataclass(frozen=True)
class Case:
    id: str
    mutate: Callable[[Path], None]
    errors: frozenset[str]
    path: str
    official: str = "agrees"          # agrees | crash | stricter: <why>


def case(id: str, mutate: Callable[[Path], None], errors: set[str] | str, path: str,
         official: str = "agrees") -> Case:
    return Case(id, mutate, frozenset({errors} if isinstance(errors, str) else errors), path, official)


CASES = [
    # token latencies: LLM_LATENCY_LIMITS of the scenario the checker maps the result to (Interactive: its own)
    case("server-ttft-above-2s", edit_json(f"{SRV}/{SUMMARY}", es("ttft", 2_000_000_000.0)), "TOKEN_LATENCY",
         f"{SRV}/{SUMMARY}"),
    case("server-tpot-above-100ms", edit_json(f"{SRV}/{SUMMARY}", es("tpot", 100_000_001.0)), "TOKEN_LATENCY",
         f"{SRV}/{SUMMARY}"),
    case("interactive-ttft-above-500ms", edit_json(f"{INT}/{SUMMARY}", es("ttft", 500_000_000.0)), "TOKEN_LATENCY",
         f"{INT}/{SUMMARY}"),
    case("interactive-tpot-above-30ms", edit_json(f"{INT}/{SUMMARY}", es("tpot", 30_000_000.0)), "TOKEN_LATENCY",
         f"{INT}/{SUMMARY}"),
    case("server-not-streamed", edit_json(f"{SRV}/{SUMMARY}", lambda d: d.update(ttft={}, tpot={})),
         "TOKEN_LATENCY", f"{SRV}/{SUMMARY}"),
    # the run's settings: the round's seeds, 600 s, the scenario of the folder
    case("dataloader-seed-default", edit_yaml(f"{OFF}/config.yaml", runtime("dataloader_random_seed", 42)), "SEEDS",
         f"{OFF}/config.yaml"),
    case("scheduler-seed-default", edit_yaml(f"{SRV}/config.yaml", runtime("scheduler_random_seed", 42)), "SEEDS",
         f"{SRV}/config.yaml"),
    case("min-duration-60s", edit_yaml(f"{INT}/config.yaml", runtime("min_duration_ms", 60000)), "MIN_DURATION",
         f"{INT}/config.yaml"),
    case("offline-run-in-server-folder", edit_yaml(f"{SRV}/config.yaml", lambda d: d.update(type="offline")),
         "INFERRED_RESULT", f"{SRV}/config.yaml"),
    # files
    case("config-missing", remove(f"{OFF}/config.yaml"), "ENDPOINTS_FILE", f"{OFF}/config.yaml", official="crash"),
    case("result-summary-missing", remove(f"{SRV}/performance"), "ENDPOINTS_FILE", f"{SRV}/{SUMMARY}"),
    case("readme-missing", remove(f"{OFF}/README.md"), "FILE_MISSING", f"{OFF}/README.md"),
    case("measurements-missing", remove(f"{SRV}/measurements.json"), "MEASUREMENTS_MISSING",
         f"{SRV}/measurements.json"),
    # accuracy
    case("accuracy-results-missing", remove(f"{OFF}/accuracy"), "ACCURACY_MISSING", f"{OFF}/{ACCURACY}"),
    case("no-accuracy-score", edit_json(f"{SRV}/{ACCURACY}", lambda d: d.update(accuracy_scores=[])),
         {"ACCURACY_MISSING"}, f"{SRV}/{ACCURACY}"),
    case("accuracy-run-covers-part", edit_json(f"{INT}/{ACCURACY}",
                                               lambda d: d["accuracy_scores"][0].update(total_samples=5000)),
         "DATASET_COVERAGE", f"{INT}/{ACCURACY}"),
    case("rouge1-below-99pct", edit_json(f"{OFF}/{ACCURACY}", score("rouge1", "38.3900")), "ACCURACY_TARGET",
         f"{OFF}/{ACCURACY}", official="stricter: the checker compares only qwen3-vl's endpoints score"),
    case("gen-len-above-110pct", edit_json(f"{SRV}/{ACCURACY}", score("gen_len", "8984409")), "ACCURACY_TARGET",
         f"{SRV}/{ACCURACY}", official="stricter: as above"),
    # the run itself (mlrepro's own: the checker does not look)
    case("failed-samples", edit_json(f"{SRV}/{SUMMARY}", lambda d: d.update(n_samples_failed=3)), "ENDPOINTS_RUN",
         f"{SRV}/{SUMMARY}", official="stricter: lost queries, as a LoadGen run with errors"),
    case("interrupted", edit_json(f"{OFF}/{SUMMARY}", lambda d: d.update(state="interrupted", complete=False)),
         "ENDPOINTS_RUN", f"{OFF}/{SUMMARY}", official="stricter: partial figures"),
    # compliance audits: optional for llama3.1-8b (only TEST04 is required), judged when present
    case("test06-audit-passes", write(f"{OFF}/audit/audit_consistency_output_test.json",
                                      {"test": "consistency_output_test", "passed": True}), set(), OFF),
    case("test06-audit-fails", write(f"{OFF}/audit/audit_consistency_output_test.json",
                                     {"test": "consistency_output_test", "passed": False}), "COMPLIANCE_FAILED",
         f"{OFF}/audit/audit_consistency_output_test.json"),
    case("test06-audit-of-another-test", write(f"{SRV}/audit/audit_consistency_output_test.json",
                                               {"test": "output_caching_test", "passed": True}), "COMPLIANCE_FAILED",
         f"{SRV}/audit/audit_consistency_output_test.json"),
    # scenarios
    case("no-server-nor-interactive", lambda root: (remove(SRV)(root), remove(INT)(root)), "SCENARIOS_REQUIRED", RES),
    case("model-not-allowed-as-endpoints", lambda root: (root / RES).rename(root / RES.replace("llama3.1-8b",
                                                                                            "llama2-70b-99.9")),
         {"ENDPOINTS_MODEL", "ACCURACY_TARGET", "DATASET_COVERAGE"},
         RES.replace("llama3.1-8b", "llama2-70b-99.9") + f"/Offline/{ACCURACY}"),
]


def test_fixture_agrees_with_the_recorded_official_verdict(tmp_path: Path) -> None:
    official = recorded_verdict()
    assert official["exit_code"] == 0 and not official["crashed"] and official["summary"].startswith("Results=3,")
    report = check_tree(endpoints_tree(tmp_path), version="v6.1")
    assert report.ok and report.results_checked == 3, [str(f) for f in report.findings]
    assert codes(report) == set() and codes(report, "warning") == set(), [str(f) for f in report.findings]


def test_recorded_verdict_is_the_official_checkers(tmp_path: Path) -> None:
    assert official_verdict(endpoints_tree(tmp_path), "v6.1") == recorded_verdict()


def test_read_as_the_checker_reads_it(tmp_path: Path) -> None:
    tree = read_tree(endpoints_tree(tmp_path), "v6.1")
    by = {r.scenario: r for r in tree.results}
    assert set(by) == {"Offline", "Server", "Interactive"}
    srv = by["Server"]
    assert srv.endpoints is not None and srv.performance is None and srv.accuracy is None
    values = srv.endpoints.performance_values
    assert values["effective_scenario"] == "online" and values["effective_min_duration_ms"] == 600000
    assert values["effective_sample_index_rng_seed"] == 2747215439041700203
    assert values["result_completed_samples_per_sec"] == 60.0 and values["qsl_reported_total_count"] == 37200
    assert srv.tokens is not None and srv.tokens.tokens_per_second == pytest.approx(7656.0)
    assert srv.tokens.ttft_p99_ns == pytest.approx(411_640_000) and srv.tokens.tpot_p99_ns == pytest.approx(42_268_400)
    assert srv.metric is not None and (srv.metric.value, srv.metric.unit) == (pytest.approx(7656.0), "Tokens/s")
    assert srv.latency_ns["99.00"] == 5_843_280_000
    off = by["Offline"]
    assert off.endpoints is not None and off.tokens is not None and off.tokens.ttft_ns == {}
    assert off.endpoints.performance_values["result_samples_per_second"] == pytest.approx(142.6)   # count/duration
    assert off.accuracy_values == {"ROUGE1": "38.7021", "ROUGE2": "15.9544", "ROUGEL": "24.5903",
                                   "ROUGELSUM": "35.8112", "GEN_LEN": "8170442"}
    assert off.endpoints.accuracy_values["effective_accuracy_sample_count"] == 13368


def test_lookup_reads_dotted_keys_as_the_checker() -> None:
    data = {"ttft": {"early_stopping_percentiles": {"99.0": 4.0, "50": 2.0}, "percentiles": {}}, "n": 0}
    assert lookup(data, "ttft.early_stopping_percentiles.99.0") == 4.0
    assert lookup(data, "ttft.early_stopping_percentiles.50.0") == 2.0      # a float-formatted integer key
    assert lookup(data, "ttft.percentiles") is None and lookup(data, "ttft.nope") is None
    assert lookup(data, "n") == 0 and lookup([1], "n") is None


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_one_broken_rule(tmp_path: Path, c: Case) -> None:
    root = endpoints_tree(tmp_path)
    c.mutate(root)
    report = check_tree(root, version="v6.1")
    assert codes(report) == set(c.errors), [str(f) for f in report.findings]
    assert codes(report, "warning") == set(), [str(f) for f in report.findings]
    if c.errors:
        assert c.path in paths(report, sorted(c.errors)[0]), [str(f) for f in report.findings]
    assert report.ok == (not c.errors)


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_official_checker_agrees(tmp_path: Path, c: Case) -> None:
    root = endpoints_tree(tmp_path)
    c.mutate(root)
    verdict = official_verdict(root, "v6.1")
    report = check_tree(root, version="v6.1")
    mine = rejected_by_mlrepro(report)
    if c.official == "crash":
        assert verdict["crashed"] and mine, verdict
    elif c.official.startswith("stricter"):
        assert not verdict["crashed"] and verdict["exit_code"] == 0 and not rejected(verdict), verdict
        assert mine
    else:
        assert not verdict["crashed"], verdict
        assert rejected(verdict) == mine, (verdict["errors"], [str(f) for f in report.errors])
        assert (verdict["exit_code"] == 0) == report.ok, verdict


def test_cli_check_and_report_accept_it(tmp_path: Path) -> None:
    root = endpoints_tree(tmp_path)
    result = CliRunner().invoke(app, ["check", str(root), "--version", "v6.1"])
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    assert "tps (result_summary.json)" in result.output
    (root / SRV / "config.yaml").write_text("type: [online\n")
    result = CliRunner().invoke(app, ["check", str(root), "--version", "v6.1", "--output", "json"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    found = [f for f in json.loads(result.output)["findings"] if f["code"] == "ENDPOINTS_FILE"]
    assert [f["path"] for f in found] == [f"{SRV}/config.yaml"] and "is not valid YAML" in found[0]["message"]
