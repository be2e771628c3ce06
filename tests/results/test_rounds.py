"""Rounds as data: every round loads, differs where the rules differ, and malformed data is a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlrepro.results import rounds
from mlrepro.results.rounds import DEFAULT_ROUND, ROUNDS, RoundDataError, UnknownRoundError, load_round


@pytest.mark.parametrize("version", ROUNDS)
def test_every_round_loads(version: str) -> None:
    r = load_round(version)
    assert r.version == version and r.benchmarks and len(r.seeds) == 3
    assert r.layout.name == ("v5" if version.startswith("v5") else "v6")
    assert r.layout.code_dir == ("code" if version.startswith("v5") else "src")
    for b in r.benchmarks.values():
        assert b.scenarios, b.name
        for scen in r.scenarios:
            for t in b.accuracy_targets(scen):
                assert t.metric in r.accuracy_patterns, (b.name, t.metric)
        for t in b.accuracy_upper:
            assert t.metric in r.accuracy_patterns
        assert set(b.compliance) <= set(r.compliance.tests)


def test_rounds_differ_where_the_rules_do() -> None:
    v50, v51, v60, v61 = (load_round(v) for v in ROUNDS)
    assert len({tuple(r.seeds.values()) for r in (v50, v51, v60, v61)}) == 4
    assert "gptj-99" in v50.benchmarks and "gptj-99" not in v51.benchmarks
    assert "gpt-oss-120b" in v60.benchmarks and "gpt-oss-120b" not in v51.benchmarks
    assert "llama2-70b-99" in v60.benchmarks and "llama2-70b-99" not in v61.benchmarks
    assert v60.benchmarks["resnet"].compliance == ("TEST01", "TEST04")
    assert v60.benchmarks["stable-diffusion-xl"].extra_accuracy_files["images"][0] == "1311"
    assert v51.benchmarks["stable-diffusion-xl"].extra_accuracy_files["images"][0] == "2747"
    assert v61.benchmarks["qwen3-vl-235b-a22b"].accuracy_targets("Interactive")[0].reference == 0.7878
    assert v61.benchmarks["qwen3-vl-235b-a22b"].expected_accuracy_samples("Interactive") == 8000
    assert DEFAULT_ROUND == "v6.1" and load_round() is v61


def test_targets_are_reference_times_ratio() -> None:
    resnet = load_round("v6.0").benchmarks["resnet"]
    assert resnet.accuracy_targets("Offline")[0].value == 76.46 * 0.99
    llama = load_round("v6.0").benchmarks["llama2-70b-99.9"]
    assert [t.metric for t in llama.accuracy_targets("Server")] == ["ROUGE1", "ROUGE2", "ROUGEL",
                                                                     "TOKENS_PER_SAMPLE"]
    assert llama.accuracy_upper[0].value == 294.45 * 1.1
    assert llama.token_latency_ns["Interactive"] == {"ttft": 450_000_000, "tpot": 40_000_000}


def test_folder_names_map_like_the_checker() -> None:
    r = load_round("v6.0")
    assert r.benchmark_name("resnet50") == "resnet"
    assert r.benchmark_name("llama3_1-8b") == "llama3.1-8b"
    assert r.benchmark_name("my-mobilenet-v2") == "resnet"
    assert r.benchmark_name("my-model", {"my-model": "bert-99"}) == "bert-99"
    assert r.benchmark_name("nothing-known") == "nothing-known"
    assert r.canonical_scenario("offline") == "Offline" and r.canonical_scenario("INTERACTIVE") == "Interactive"
    assert r.canonical_scenario("Offline2") is None


def test_unknown_round() -> None:
    with pytest.raises(UnknownRoundError, match="v4.1"):
        load_round("v4.1")


def test_malformed_round_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("common.yaml", "v6.1.yaml"):
        (tmp_path / name).write_bytes((rounds.DATA_DIR / name).read_bytes())
    text = (tmp_path / "v6.1.yaml").read_text().replace("performance_sample_count: 1024", "performance_sample_count: lots", 1)
    (tmp_path / "v6.1.yaml").write_text(text)
    monkeypatch.setattr(rounds, "DATA_DIR", tmp_path)
    rounds._load_round.cache_clear()
    try:
        with pytest.raises(RoundDataError, match="performance_sample_count: expected an integer"):
            load_round("v6.1")
        (tmp_path / "v6.1.yaml").write_text("- just a list\n")
        with pytest.raises(RoundDataError, match="not a mapping"):
            load_round("v6.1")
    finally:
        rounds._load_round.cache_clear()
