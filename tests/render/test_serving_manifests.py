"""A model server in the views of a profile: ``generate`` writes its Deployment and Service beside the client Job
(CPU-only; the accelerator is the server's, device plugin or DRA from the vendor table), the Helm chart renders
the same objects (real helm, parity), every object validates for Kubernetes 1.31-1.35 and meets Pod Security
"restricted"; what a cluster cannot run is refused in one line (exit 2)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from render_support import by_kind
from typer.testing import CliRunner

from mlrepro.cli.main import app
from mlrepro.profiles.loader import ResolvedProfile, resolve_profile
from mlrepro.render.helm_values import dump_values, helm_values
from mlrepro.render.jobspec import build_job_spec
from mlrepro.render.manifests import render_manifests
from mlrepro.render.runspec import build_run_spec
from mlrepro.render.serverspec import server_name

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "k8s"))
from policies import PodSecurity

cli = CliRunner()
#: the nvidia-gpu profile with vLLM in its image (the engine --serve vllm runs)
VLLM = ["framework.backend=vllm", "framework.version=0.33.0"]
LLM = ["benchmark.workload=smollm2-135m-demo"]
VARIANTS = {
    "transformers-cpu": ("x86-cpu-llm", [*LLM, "serve.engine=transformers", "serve.args=[--continuous-batching]",
                                     "serve.env.OMP_NUM_THREADS='4'"]),
    "vllm-gpu-claim": ("nvidia-gpu", [*LLM, *VLLM, "serve.engine=vllm", "serve.model_source=claim",
                                      "serve.model_claim=models", "serve.model=/models/llama3.1-8b",
                                      "serve.served_model=llama3.1-8b", "accelerator.product=NVIDIA-H100-80GB-HBM3",
                                      "serve.resources.limits.memory=64Gi", "serve.resources.requests.memory=32Gi"]),
    "vllm-dra": ("nvidia-gpu", [*LLM, *VLLM, "serve.engine=vllm", "accelerator.request=dra", "accelerator.count=2"]),
    "sglang-amd": ("amd-gpu", [*LLM, "serve.engine=sglang", "serve.port=30001"]),
    "endpoint": ("x86-cpu", [*LLM, "serve.endpoint=http://vllm.bench:8000/v1", "serve.served_model=llama"]),
}


def objects(name: str, run_id: str = "example") -> tuple[ResolvedProfile, dict[str, Any], list[dict[str, Any]]]:
    profile, sets = VARIANTS[name]
    resolved = resolve_profile(profile, sets=sets)
    spec = build_run_spec(resolved, "Offline", "performance", run_id=run_id, image="registry.test/bench:1")
    job = build_job_spec(resolved, "registry.test/bench:1", spec)
    return resolved, helm_values(job), render_manifests(job)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_the_chart_renders_the_server_mlrepro_generates(name: str, helm_template) -> None:
    _, values, objs = objects(name, run_id="x86-cpu-offline-perf-20261205-093012-3fa9")
    assert helm_template(values) == by_kind(objs)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_object_validates_and_every_pod_is_restricted(name: str) -> None:
    _, _, objs = objects(name)
    for obj in objs:
        since = (1, 34) if obj["apiVersion"].startswith("resource.k8s.io/") else (1, 31)
        for version in ("1.31.0", "1.32.0", "1.33.0", "1.34.0", "1.35.0"):
            if tuple(int(x) for x in version.split(".")[:2]) >= since:
                kubernetes_validate.validate(obj, version, strict=True)
    templates = [o["spec"]["template"] for o in objs if o["kind"] in ("Deployment", "Job")]
    for tpl in templates:
        assert PodSecurity().admit(None, "bench", {"metadata": tpl["metadata"], "spec": tpl["spec"]}) is None


def test_the_accelerator_goes_to_the_server_and_the_client_is_cpu_only() -> None:
    _, _, objs = objects("vllm-gpu-claim")
    kinds = {o["kind"]: o for o in objs}
    assert [o["kind"] for o in objs] == ["ConfigMap", "PersistentVolumeClaim", "Deployment", "Service", "Job"]
    server = kinds["Deployment"]["spec"]["template"]["spec"]
    client = kinds["Job"]["spec"]["template"]["spec"]
    assert server["containers"][0]["resources"]["limits"] == {"cpu": "4", "memory": "64Gi", "nvidia.com/gpu": "1"}
    assert server["nodeSelector"] == {"kubernetes.io/arch": "amd64", "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert any(t["key"] == "nvidia.com/gpu" for t in server["tolerations"])
    assert client["containers"][0]["resources"] == {"requests": {"cpu": "1", "memory": "1Gi"},
                                                    "limits": {"cpu": "2", "memory": "2Gi"}}
    assert client["nodeSelector"] == {"kubernetes.io/arch": "amd64"} and "tolerations" not in client
    # the model's claim, read-only, in both pods: the server loads it, the client reads its tokenizer
    for spec in (server, client):
        assert {"name": "model", "persistentVolumeClaim": {"claimName": "models", "readOnly": True}} in spec["volumes"]
    assert {"name": "model", "mountPath": "/models", "readOnly": True} in client["containers"][0]["volumeMounts"]
    args = server["containers"][0]["args"]
    assert args == ["--engine", "vllm", "--model", "/models/llama3.1-8b", "--host", "0.0.0.0", "--port", "8000",
                    "--served-model-name", "llama3.1-8b"]
    run = json.loads(kinds["ConfigMap"]["data"]["run.json"])
    assert run["workload"]["backend"] == "openai" and run["workload"]["device"] == "cpu"
    assert run["workload"]["options"]["server"]["base_url"] == f"http://{server_name('example')}:8000/v1"
    assert run["workload"]["model_path"] == "/models/llama3.1-8b"
    svc = kinds["Service"]["spec"]
    assert svc["selector"] == kinds["Deployment"]["spec"]["selector"]["matchLabels"]
    assert "mlrepro.io/run-id" not in kinds["Deployment"]["spec"]["template"]["metadata"]["labels"]


def test_dra_claims_the_servers_devices_only() -> None:
    _, _, objs = objects("vllm-dra")
    templates = [o for o in objs if o["kind"] == "ResourceClaimTemplate"]
    assert [t["metadata"]["name"] for t in templates] == [f"{server_name('example')}-gpu"]
    assert templates[0]["spec"]["spec"]["devices"]["requests"][0]["exactly"] == {"deviceClassName": "gpu.nvidia.com",
                                                                               "count": 2}
    job = next(o for o in objs if o["kind"] == "Job")
    assert "resourceClaims" not in job["spec"]["template"]["spec"]


def test_an_existing_endpoint_has_no_server_objects() -> None:
    _, values, objs = objects("endpoint")
    assert [o["kind"] for o in objs] == ["ConfigMap", "PersistentVolumeClaim", "Job"] and values["server"] is None
    server = json.loads(objs[0]["data"]["run.json"])["workload"]["options"]["server"]
    assert server["base_url"] == "http://vllm.bench:8000/v1" and server["started_by"] == "existing"


@pytest.mark.parametrize("run_id", ["a" * 63, "x86-cpu-llm-interactive-submission-20261205-093012-3fa9", "9x-run"])
def test_server_names_are_service_names(run_id: str) -> None:
    name = server_name(run_id)
    assert len(name) <= 63 and name[0].isalpha() and name.endswith("-server")
    assert server_name(run_id) == name and server_name(run_id + "b") != name


def test_generate_with_serve_writes_the_server_and_helm_lints_it(tmp_path: Path, helm) -> None:
    import subprocess

    out = tmp_path / "out"
    res = cli.invoke(app, ["generate", "-p", "nvidia-gpu-llm", "--serve", "vllm", "-o", str(out)])   # issue 19's
    assert res.exit_code == 0, res.output
    kinds = [d["kind"] for d in yaml.safe_load_all((out / "manifests.yaml").read_text()) if d]
    assert kinds == ["ConfigMap", "PersistentVolumeClaim", "Deployment", "Service", "Job"]
    values = yaml.safe_load((out / "values.yaml").read_text())
    assert values["server"]["engine"] == "vllm" and values["server"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    lint = subprocess.run([helm, "lint", "--strict", str(Path(__file__).resolve().parents[2] / "helm" / "mlrepro"),
                           "-f", str(out / "values.yaml")], capture_output=True, text=True, timeout=60, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert (out / "run.json").is_file() and json.loads((out / "run.json").read_text())["workload"]["backend"] == "openai"


def test_the_chart_refuses_a_dra_server_below_1_34(helm, chart_dir, tmp_path: Path) -> None:
    import subprocess

    _, values, _ = objects("vllm-dra")
    path = tmp_path / "values.yaml"
    path.write_text(dump_values(values), encoding="utf-8")
    out = subprocess.run([helm, "template", "r", str(chart_dir), "-f", str(path), "--kube-version", "1.33.2"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode != 0 and "server.deviceClaim (accelerator.request: dra) needs Kubernetes 1.34" in out.stderr


@pytest.mark.parametrize("args,message", [
    (["--serve", "nope"], "serve.engine: 'nope' is not one of vllm, sglang, transformers, openai"),
    (["--serve", "vllm"], "vllm runs on cuda, but the profile has no accelerator"),
    (["--serve", "openai"], "engine 'openai' is an existing server: give serve.endpoint"),
    (["--endpoint", "http://vllm:8000/v1"], "an existing server (endpoint) needs served_model"),
    (["--endpoint", "vllm:8000"], "serve.endpoint"),
    (["--serve", "transformers", "--set", "serve.model_source=claim"], "model_source 'claim' needs model_claim"),
    (["--serve", "transformers", "--set", "serve.model_source=host-path", "--set", "serve.host_path=/srv/m",
      "--set", "serve.model=/models/m.gguf"], "hostPath volume, which Pod Security 'restricted' forbids"),
    (["--serve", "transformers", "--set", "serve.model_source=claim", "--set", "serve.model_claim=m",
      "--set", "serve.model=/elsewhere/m.gguf"], "must be under model_mount /models"),
])
def test_bad_serving_input_is_one_line_and_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    res = cli.invoke(app, ["generate", "-p", "x86-cpu-llm", *args, "-o", str(tmp_path / "out")])
    assert res.exit_code == 2, res.output
    assert message in res.output, res.output


@pytest.mark.parametrize(("profile", "args", "message"), [
    ("x86-cpu", ["--set", "benchmark.workload=smollm2-135m-demo", "--serve", "transformers"],
     "serve.engine: transformers needs transformers[serving] in the image, which this profile's lock has not "
     "(a profile whose image has it: x86-cpu-llm; or add it to packages.pip)"),
    ("nvidia-gpu", ["--set", "benchmark.workload=smollm2-135m-demo", "--serve", "vllm"],
     "serve.engine: vllm needs vllm in the image, which this profile's lock has not (a profile whose image has it: "
     "nvidia-gpu-llm"),
])
def test_an_engine_the_image_has_not_is_refused(profile: str, args: list[str], message: str, tmp_path: Path) -> None:
    """A locked image without the engine's package would start a server container that exits at once: refused
    before anything is built, one line naming the key and a profile that has it."""
    res = cli.invoke(app, ["generate", "-p", profile, *args, "-o", str(tmp_path / "out")])
    assert res.exit_code == 2, res.output
    assert message in res.output and len(res.output.strip().splitlines()) == 1, res.output


def test_serving_a_workload_that_is_no_llm_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLREPRO_STATE_DIR", str(tmp_path / "state"))
    res = cli.invoke(app, ["run", "-p", "x86-cpu-llm", "--set", "benchmark.workload=reference-digits", "--serve",
                           "transformers", "--target", "native", "--no-collect"])
    assert res.exit_code == 2
    assert "serve.engine: workload reference-digits is not an LLM a model server can serve" in res.output


@pytest.mark.parametrize(("args", "message"), [
    (["-p", "x86-cpu", "--serve", "transformers"], "serve.engine: workload reference-digits is not an LLM"),
    (["-p", "x86-cpu", "--endpoint", "http://x:8000/v1", "--served-model", "m"],
     "serve.endpoint: workload reference-digits is not an LLM a model server can serve"),
    (["-p", "llm-client", "--endpoint", "http://vllm.bench:8000", "--served-model", "m"],
     "'http://vllm.bench:8000' is not an OpenAI-compatible API root: it ends in /v1"),
    (["-p", "nvidia-gpu-llm", "--scenario", "SingleStream"],
     "benchmark.scenarios: llama3.1-8b has no SingleStream scenario (it has Offline, Server, Interactive)"),
    (["-p", "x86-cpu", "--scenario", "Interactive"],
     "benchmark.scenarios: Interactive is a scenario of the LLM benchmarks; workload reference-digits has none"),
    (["-p", "x86-cpu-llm", "--set", "benchmark.options.max_new_tokens=abc"],
     "benchmark.options.max_new_tokens: 'abc' is not an integer in 1..16"),
    (["-p", "x86-cpu-llm", "--set", "benchmark.options.Server.max_new_tokens=100000"],
     "benchmark.options.max_new_tokens: 100000 is not an integer in 1..16"),
    (["-p", "x86-cpu-llm", "--set", "benchmark.options.max_new_token=4"],
     "benchmark.options.max_new_token: unknown option for smollm2-135m-demo"),
])
def test_what_the_harness_would_refuse_is_refused_by_generate(args: list[str], message: str, tmp_path: Path) -> None:
    """Found before an image is built or a GPU scheduled: one line, exit 2 (the harness would exit 3 in the pod)."""
    res = cli.invoke(app, ["generate", *args, "-o", str(tmp_path / "out")])
    assert res.exit_code == 2, res.output
    assert message in res.output and len(res.output.strip().splitlines()) == 1, res.output
    assert not (tmp_path / "out").exists()


def test_run_refuses_a_bad_option_before_it_builds_anything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLREPRO_STATE_DIR", str(tmp_path / "state"))
    res = cli.invoke(app, ["run", "-p", "x86-cpu-llm", "--target", "docker", "--set",
                           "benchmark.options.max_new_tokens=0", "--no-collect"])
    assert res.exit_code == 2, res.output
    assert "benchmark.options.max_new_tokens: 0 is not an integer in 1..16" in res.output
    assert "build" not in res.output


def test_chat_completions_go_to_any_engine_as_text() -> None:
    """serve.api chat: messages are text, so even vLLM (token-id completions) gets text prompts."""
    from mlrepro.harness.serving import ClientConfig

    config = ClientConfig.for_engine("vllm", "http://v:8000/v1", "m", api="chat")
    assert (config.prompt_format, config.url) == ("text", "http://v:8000/v1/chat/completions")
    assert ClientConfig.for_engine("vllm", "http://v:8000/v1", "m").prompt_format == "token_ids"
