"""Tables fit the terminal at 80 and 120 columns: the least needed columns are left out, no line is wider than
the terminal, ids, tags and names appear whole (never folded or cut); ``--output json`` keeps every field.
``runs`` shows each run's accuracy and tells the LoadGen target from the runner (where the run ran)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlrepro.cli.main import app
from mlrepro.flow.prune import PruneItem, PrunePlan
from mlrepro.image.images import BuiltImage
from mlrepro.state.store import RunRecord, open_store, utcnow

runner = CliRunner()
WIDTHS = [80, 120]


def _fits(out: str, width: int) -> list[str]:
    lines = out.splitlines()
    assert all(len(line) <= width for line in lines), "\n".join(lines)
    return lines


@pytest.mark.parametrize("width", WIDTHS)
def test_profiles_list(monkeypatch: pytest.MonkeyPatch, width: int) -> None:
    monkeypatch.setenv("COLUMNS", str(width))
    r = runner.invoke(app, ["profiles", "list"])
    assert r.exit_code == 0, r.output
    lines = _fits(r.stdout, width)
    data = json.loads(runner.invoke(app, ["profiles", "list", "--output", "json"]).stdout)
    for p in data["profiles"]:                 # one line per profile: its name and hash whole on it
        assert any(line.split()[:1] == [p["name"]] and p["hash"] in line.split() for line in lines), r.stdout
    for o in data["overlays"]:
        assert any(line.split()[:1] == [o["name"]] for line in lines)


@pytest.mark.parametrize("width", WIDTHS)
def test_profiles_show_table(monkeypatch: pytest.MonkeyPatch, width: int) -> None:
    """Every resolved key whole on its own line (the longest is 43 characters), values wrap at spaces; where a
    value came from is left out first."""
    monkeypatch.setenv("COLUMNS", str(width))
    r = runner.invoke(app, ["profiles", "show", "x86-cpu", "-f", "quick", "--output", "table"])
    assert r.exit_code == 0, r.output
    lines = _fits(r.stdout, width)
    keys = [line.split()[0] for line in lines[3:] if line[:1].isalpha()]
    assert "scheduling.node_selector.kubernetes.io/arch" in keys and "benchmark.settings.min_duration_ms" in keys
    assert any("<overlay:quick>" in line for line in lines[1:]) == (width >= 120)   # (line 0: the sources)


# what an engine holds after a few registry round trips: tags longer than half an 80-column terminal
IMAGES = [BuiltImage(image_id=f"sha256:{i:064x}", tags=(f"127.0.0.1:43605/bench/mlrepro/bench:x86-cpu-{i:012x}",),
                     profile="x86-cpu", content_hash=f"{i:064x}", image_inputs="", platform="linux/amd64",
                     architecture="amd64", size_bytes=1_234_567_890, created="2026-11-30T06:32:40Z",
                     digests=(f"127.0.0.1:43605/bench/mlrepro/bench@sha256:{i:064x}",)) for i in range(3)]


@pytest.mark.parametrize("width", WIDTHS)
def test_images(monkeypatch: pytest.MonkeyPatch, width: int) -> None:
    monkeypatch.setenv("COLUMNS", str(width))
    monkeypatch.setattr("mlrepro.image.images.list_images", lambda client=None, profile=None: IMAGES)
    r = runner.invoke(app, ["images"])
    assert r.exit_code == 0, r.output
    lines = _fits(r.stdout, width)
    for image in IMAGES:
        assert any(image.tags[0] in line.split() for line in lines), r.stdout
    rows = json.loads(runner.invoke(app, ["images", "--output", "json"]).stdout)
    assert [row["digest"] for row in rows] == [i.digests[0] for i in IMAGES]


PLAN = PrunePlan(items=[
    PruneItem("volume", "mlrepro-results-x86-cpu-offline-perf-20261130-063240-4f61", 170_598,
              "its results were fetched and verified (run x86-cpu-offline-perf-20261130-063240-4f61 succeeded)"),
    PruneItem("container", "mlrepro-run-x86-cpu-singlestream-acc-20261130-063248-edc7", None,
              "stopped run container of a finished run"),
    PruneItem("image", "sha256:89c44e08690e0000000000000000000000000000000000000000000000000000", 98_041_856,
              "builder image the build left untagged")])


@pytest.mark.parametrize("width", [*WIDTHS, 140])
def test_prune(monkeypatch: pytest.MonkeyPatch, width: int) -> None:
    monkeypatch.setenv("COLUMNS", str(width))
    monkeypatch.setattr("mlrepro.flow.prune.plan_prune", lambda older_than_s=None: PLAN)
    r = runner.invoke(app, ["prune", "--dry-run"])
    assert r.exit_code == 0, r.output
    lines = _fits(r.stdout, width)
    for item in PLAN.items:
        shown = item.name if item.kind != "image" else item.name[:19]
        assert any(shown in line.split() for line in lines), r.stdout
    assert "would remove 3 item(s)" in r.stdout


@pytest.fixture()
def stored_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[RunRecord]:
    """A launch of two finished runs in the state store: an accuracy run and a performance run."""
    monkeypatch.setenv("MLREPRO_STATE_DIR", str(tmp_path / "state"))
    now = utcnow()
    records = [RunRecord("x86-cpu-offline-acc-20261130-063240-4f61", profile="x86-cpu", scenario="Offline",
                         mode="accuracy", target="docker", status="succeeded", accuracy=94.167, group_id="g1",
                         started_at=now, ended_at=now),
               RunRecord("x86-cpu-offline-perf-20261130-063248-edc7", profile="x86-cpu", scenario="Offline",
                         mode="performance", target="docker", status="succeeded", result=261_123.4,
                         result_unit="samples/s", validity="VALID", group_id="g1", started_at=now, ended_at=now,
                         loadgen_target={"setting": "offline_expected_qps", "value": 250000.0,
                                         "source": "calibrated", "cost_s": 8.1})]
    with open_store() as store:
        for rec in records:
            store.add(rec)
    return records


def test_runs_show_accuracy_and_distinct_target_headers(stored_runs: list[RunRecord],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "220")
    wide = runner.invoke(app, ["runs"]).stdout
    header = next(line for line in wide.splitlines() if line.startswith("run id"))
    assert "accuracy" in header and "LoadGen target" in header and "runner" in header
    assert header.replace("LoadGen target", "").count("target") == 0         # one column says "target"
    acc = next(line for line in wide.splitlines() if stored_runs[0].run_id in line)
    assert "94.167%" in acc and "docker" in acc
    for width in WIDTHS:
        monkeypatch.setenv("COLUMNS", str(width))
        lines = _fits(runner.invoke(app, ["runs"]).stdout, width)
        for rec in stored_runs:
            assert any(rec.run_id in line.split() for line in lines)
    rows = json.loads(runner.invoke(app, ["runs", "--output", "json"]).stdout)
    assert {row["run_id"]: row["accuracy"] for row in rows}[stored_runs[0].run_id] == 94.167


@pytest.mark.parametrize("width", [*WIDTHS, 200])
def test_runs_show_the_token_figures_of_llm_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 width: int) -> None:
    """LLM runs: tokens/s is the result, TTFT and TPOT p99 get their own columns (ms) when the terminal has room;
    ids stay whole at 80 columns; --output json has the three figures."""
    monkeypatch.setenv("MLREPRO_STATE_DIR", str(tmp_path / "state"))
    now = utcnow()
    server = RunRecord("x86-cpu-llm-server-perf-20261205-193101-f93a", profile="x86-cpu-llm", scenario="Server",
                       mode="performance", target="docker", status="succeeded", result=10.4, result_unit="tokens/s",
                       validity="VALID", group_id="g2", started_at=now, ended_at=now, tokens_per_second=10.4,
                       ttft_p99_ns=2_117_000_000, tpot_p99_ns=181_400_000)
    offline = RunRecord("x86-cpu-llm-offline-perf-20261205-193101-1e19", profile="x86-cpu-llm", scenario="Offline",
                        mode="performance", target="docker", status="succeeded", result=122.917,
                        result_unit="tokens/s", validity="VALID", group_id="g2", started_at=now, ended_at=now,
                        tokens_per_second=122.917)
    with open_store() as store:
        store.add(server)
        store.add(offline)
    monkeypatch.setenv("COLUMNS", str(width))
    lines = _fits(runner.invoke(app, ["runs"]).stdout, width)
    for rec in (server, offline):
        assert any(rec.run_id in line.split() for line in lines)
    if width >= 200:
        header = next(line for line in lines if line.startswith("run id"))
        assert "TTFT p99" in header and "TPOT p99" in header
        row = next(line for line in lines if server.run_id in line)
        assert "2,117 ms" in row and "181 ms" in row and "10.400 tokens/s" in row
    rows = {r["run_id"]: r for r in json.loads(runner.invoke(app, ["runs", "--output", "json"]).stdout)}
    assert (rows[server.run_id]["tokens_per_second"], rows[server.run_id]["ttft_p99_ns"],
            rows[server.run_id]["tpot_p99_ns"]) == (10.4, 2_117_000_000, 181_400_000)
    assert rows[offline.run_id]["ttft_p99_ns"] is None


RUN = "x86-cpu-offline-perf-20261130-063236-28bd"
AUDIT = "x86-cpu-offline-audit-20261130-063301-91c2"


@pytest.mark.parametrize("width", WIDTHS)
def test_compliance_table(monkeypatch: pytest.MonkeyPatch, width: int) -> None:
    from mlrepro.flow.audit import AuditResult
    from mlrepro.harness.compliance.verification import Verification

    monkeypatch.setenv("COLUMNS", str(width))
    results = [AuditResult(RUN, AUDIT, "succeeded", (
        Verification("TEST01", "accuracy", False, "TEST01 needs the accuracy run of the same profile and scenario: "
                     "pass its run id too (mlrepro runs lists it)"),
        Verification("TEST04", "performance", True, "")))]
    monkeypatch.setattr("mlrepro.flow.audit.audit_runs", lambda *a, **k: results)
    r = runner.invoke(app, ["compliance", RUN, "--test", "TEST01,TEST04"])
    assert r.exit_code == 1, r.output                                   # TEST01 failed
    lines = _fits(r.stdout, width)
    assert sum(RUN in line.split() for line in lines) == 2               # one row per test, the id whole
    assert any("PASS" in line for line in lines)


@pytest.mark.parametrize("width", WIDTHS)
def test_reproduce_drift_table(monkeypatch: pytest.MonkeyPatch, width: int) -> None:
    from types import SimpleNamespace

    from rich.console import Console

    from mlrepro.cli.reproduce import _print

    image = "127.0.0.1:43605/bench/mlrepro/bench:x86-cpu-7e516bfed7c8"
    items = [SimpleNamespace(group="result", name="samples_per_second", recorded="261054", reproduced="320475",
                             verdict="mismatch", note="+22.76 % (tolerance ±5 %): a quick run on a busy machine"),
             SimpleNamespace(group="image", name="reference", recorded=image, reproduced=image, verdict="same",
                             note=""),
             SimpleNamespace(group="settings", name="min_duration_ms", recorded="1000", reproduced="1000",
                             verdict="same", note="")]
    drift = SimpleNamespace(items=items, notes=[], match=False, tolerance=0.05, mismatches=[items[0]])
    result = SimpleNamespace(drift=drift, original=SimpleNamespace(result=SimpleNamespace(rel="open/x/Offline"),
                                                                   tree=SimpleNamespace(root="submission")),
                             result_rel="", tree="reproduced")
    c = Console(width=width, record=True, force_terminal=False)
    _print(c, result)
    lines = _fits(c.export_text(), width)
    assert sum("same" in line.split() for line in lines) == 1            # the image row (a long value may wrap)
    assert not any("min_duration_ms" in line for line in lines)          # unchanged settings are only counted
    assert "MISMATCH (1): result samples_per_second" in lines[-1]
