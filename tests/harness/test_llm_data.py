"""The LLM family's data and inputs without a model: benchmarks.json, the dataset reader, model paths, the
Interactive scenario in spec and user.conf, the offline sentence split. Fast (no model is loaded)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlrepro.harness.registry import load_workload_class
from mlrepro.harness.spec import SCENARIOS, SpecError, parse_spec
from mlrepro.harness.userconf import UserConfError, compose_user_conf, parse_user_conf
from mlrepro.harness.workloads.base import WorkloadConfigError
from mlrepro.harness.workloads.llm import MAX_NEW_TOKENS_LIMIT, benchmarks, workload_class
from mlrepro.harness.workloads.llm.dataset import read_dataset
from mlrepro.harness.workloads.llm.model import resolve_model
from mlrepro.harness.workloads.llm.rouge import rouge_scores, sent_split

ROUND_BENCHMARKS = {"llama3.1-8b", "llama3.1-8b-edge", "llama2-70b-99.9", "deepseek-r1", "gpt-oss-120b"}


def test_every_benchmark_is_data_and_an_entry_point() -> None:
    data = benchmarks()
    assert ROUND_BENCHMARKS | {"smollm2-135m-demo"} <= set(data)
    for name, entry in data.items():
        cls = load_workload_class(name)            # through the entry point: data + one pyproject line
        assert cls is workload_class(name) and cls.benchmark == entry["checker_benchmark"]
        assert entry["source"] and 1 <= entry["generation"]["max_new_tokens"] <= MAX_NEW_TOKENS_LIMIT
        assert set(cls.scenarios) <= set(SCENARIOS)
        if "Interactive" in cls.scenarios:
            assert cls.loadgen_model_for("Interactive") == entry["loadgen_model_interactive"]
    from importlib.metadata import entry_points

    from mlrepro.harness.workloads import ENTRY_POINT_GROUP
    eps = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}      # the one list of workloads
    assert {n: eps[n] for n in data} == {n: f"mlrepro.harness.workloads.llm:{n.replace('.', '_').replace('-', '_')}"
                                         for n in data}
    llama = workload_class("llama3.1-8b")
    assert (llama.loadgen_model_for("Server"), llama.loadgen_model_for("Interactive")) == \
        ("llama3_1-8b", "llama3_1-8b-interactive")
    assert llama.latency_bounds == "mlperf.conf" and llama.division == "closed"
    assert data["llama3.1-8b"]["generation"]["max_new_tokens"] == 128
    demo = workload_class("smollm2-135m-demo")
    assert demo.division == "open" and demo.model_mapping == "llama3.1-8b" and demo.latency_bounds == "calibrated"
    assert workload_class("llama3.1-8b-edge").scenarios == ("SingleStream", "Offline")


def test_interactive_is_server_in_user_conf() -> None:
    spec = parse_spec({"run_id": "i", "scenario": "Interactive", "mode": "performance",
                       "workload": {"name": "llama3.1-8b", "backend": "transformers"},
                       "settings": {"server_target_qps": 2.5, "min_query_count": 459}})
    assert spec.scenario == "Interactive"
    text = compose_user_conf("", "llama3_1-8b-interactive", "Interactive", spec.settings)
    assert "llama3_1-8b-interactive.Server.target_qps = 2.5" in text
    assert "llama3_1-8b-interactive.Server.min_query_count = 459" in text
    with pytest.raises(UserConfError, match="not a LoadGen scenario"):
        parse_user_conf("llama3_1-8b.Interactive.target_qps = 2\n")
    with pytest.raises(SpecError, match="backend"):
        parse_spec({"run_id": "i", "scenario": "Offline", "mode": "performance",
                    "workload": {"name": "x", "backend": "tensorrt"}})


def _write(tmp_path: Path, records: object, name: str = "d.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(records))
    return p


def test_dataset_reader_reads_both_pandas_layouts(tmp_path: Path) -> None:
    records = [{"input": "a", "tok_input": [1, 2, 3], "output": "x"}, {"input": "b", "tok_input": [4], "output": "y"}]
    a = read_dataset(_write(tmp_path, records), ("tok_input",), "output", "input")
    columns = {"input": {"0": "a", "1": "b"}, "tok_input": {"0": [1, 2, 3], "1": [4]}, "output": {"0": "x", "1": "y"}}
    b = read_dataset(_write(tmp_path, columns, "c.json"), ("tok_input",), "output", "input")
    assert a.prompts == b.prompts == [[1, 2, 3], [4]] and a.references == b.references == ["x", "y"]
    alt = read_dataset(_write(tmp_path, [{"input_tokens": [7], "ground_truth": "A"}], "g.json"),
                       ("tok_input", "input_tokens"), "ground_truth")
    assert alt.prompts == [[7]] and alt.texts == [""]


@pytest.mark.parametrize("content, message", [
    ([{"input": "a", "output": "x"}], "record 0 has no 'tok_input' column"),
    ([{"tok_input": [1], "input": "a"}], "record 0 has no 'output' column"),
    ([{"tok_input": [], "output": "x"}], "key 'tok_input': expected a non-empty list"),
    ([{"tok_input": [1, -2], "output": "x"}], "non-negative token ids"),
    ({"a": 1}, "not the reference dataset format"),
    ([], "has no samples"),
])
def test_dataset_errors_name_the_file_and_key(tmp_path: Path, content: object, message: str) -> None:
    p = _write(tmp_path, content)
    with pytest.raises(WorkloadConfigError, match=message) as err:
        read_dataset(p, ("tok_input",), "output", "input")
    assert str(p) in str(err.value) and "\n" not in str(err.value)


def test_pickle_dataset_is_refused_with_the_conversion(tmp_path: Path) -> None:
    p = tmp_path / "cnn.pkl"
    p.write_bytes(b"\x80\x04\x95" + b"\0" * 16)
    with pytest.raises(WorkloadConfigError, match="a pickle file.*to_json"):
        read_dataset(p, ("tok_input",), "output")


def test_model_paths(tmp_path: Path) -> None:
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text("{}")
    assert resolve_model(str(hf)).format == "hf"
    g = tmp_path / "m.gguf"
    g.write_bytes(b"GGUF" + b"\0" * 8)
    ref = resolve_model(str(g))
    assert (ref.directory, ref.gguf_file) == (tmp_path, "m.gguf")
    assert resolve_model(f"{tmp_path}:m.gguf") == ref.__class__(spec=f"{tmp_path}:m.gguf", directory=tmp_path,
                                                                 gguf_file="m.gguf")
    with pytest.raises(WorkloadConfigError, match="neither a Hugging Face model directory.*give"):
        resolve_model(str(tmp_path))                     # a directory of GGUFs, no config.json
    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"PK\3\4")
    with pytest.raises(WorkloadConfigError, match="not a GGUF file"):
        resolve_model(str(bad))
    other = tmp_path / "weights.bin"
    other.write_bytes(b"\0")
    with pytest.raises(WorkloadConfigError, match="neither a Hugging Face"):
        resolve_model(str(other))
    with pytest.raises(WorkloadConfigError, match="not installed"):
        resolve_model("package:no-such-dist-xyz:a.gguf")
    demo = resolve_model(benchmarks()["smollm2-135m-demo"]["model"])
    assert demo.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf" and demo.path.stat().st_size > 90_000_000


def test_max_new_tokens_missing_or_absurd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlrepro.harness.workloads.llm as llm
    from mlrepro.harness.spec import WorkloadSpec

    entry = dict(benchmarks()["llama3.1-8b"], generation={"min_new_tokens": 1})
    monkeypatch.setitem(benchmarks(), "no-max", entry)
    with pytest.raises(WorkloadConfigError, match="no-max.generation.max_new_tokens is missing"):
        llm.workload_class("no-max")(WorkloadSpec(name="no-max", backend="transformers"))
    monkeypatch.setitem(benchmarks(), "huge", dict(entry, generation={"max_new_tokens": 10**9}))
    with pytest.raises(WorkloadConfigError, match="huge.generation.max_new_tokens: 1000000000 is not an integer"):
        llm.workload_class("huge")(WorkloadSpec(name="huge", backend="transformers"))
    w = workload_class("llama3.1-8b")(WorkloadSpec(name="llama3.1-8b", backend="transformers",
                                                   options={"max_new_tokens": 4096}, model_path=str(tmp_path)))
    with pytest.raises(WorkloadConfigError, match="max_new_tokens: 4096 is above llama3.1-8b's 128"):
        w.load()


def test_sentence_split_is_punkt_with_the_english_parameters() -> None:
    """nltk.sent_tokenize's split (punkt_tab english) without a download; the untrained Punkt differs."""
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    text = "Mr. Smith met the U.S. envoy at 3 p.m. on Monday. Talks went well. Dr. Jones agreed."
    assert sent_split(text) == ["Mr. Smith met the U.S. envoy at 3 p.m. on Monday.", "Talks went well.",
                                "Dr. Jones agreed."]
    assert PunktSentenceTokenizer().tokenize(text) != sent_split(text)     # no parameters: splits after "Mr."
    scores = rouge_scores(["the cat sat on the mat"], ["the cat sat on the mat"])
    assert scores == {"rouge1": 100.0, "rouge2": 100.0, "rougeL": 100.0, "rougeLsum": 100.0}
    assert rouge_scores(["a dog ran"], ["the cat sat"])["rouge1"] == 0.0
