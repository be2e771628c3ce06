"""The network SUT on the real Docker engine: ``--serve transformers`` starts ``transformers serve`` with the
SmolLM2 GGUF in a server container on a user network, the LoadGen client runs in a container of its own on that
network, and the run ends VALID with a tree ``mlrepro check`` accepts (short-run warnings aside); the server's
engine, version, command line and model sha256 are in the record and the systems JSON; the server's log is kept;
nothing of the run is left on the engine. One model load (~35 s) and a short Offline run (max_new_tokens 4)."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from mlrepro.profiles import resolve_profile
from mlrepro.render.serverspec import server_name

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "harness"))
from llm_serving_support import smollm2_gguf

pytestmark = [pytest.mark.docker, pytest.mark.slow]

#: x86-cpu-llm (its image has transformers[serving]; its serve.args bound the server's cache), one short Offline
SETS = ["benchmark.options.max_new_tokens=4", "benchmark.modes=[submission]", "benchmark.scenarios=[Offline]",
        "serve.engine=transformers", "serve.resources.requests.memory=1Gi", "serve.resources.limits.memory=4Gi"]


def test_serve_transformers_on_docker_ends_valid_with_a_tree_check_accepts(docker_client, llm_image, state,
                                                                           tmp_path: Path) -> None:
    from mlrepro.flow import PipelineOptions, run_pipeline
    from mlrepro.results.check import check_tree

    lines: list[str] = []
    resolved = resolve_profile("x86-cpu-llm", ["air-gapped", "quick"], SETS)
    into = tmp_path / "submission"
    result = run_pipeline(resolved, PipelineOptions(target="docker", image=llm_image, into=into, submitter="Acme"),
                          progress=lines.append, state_dir=state)
    run = result.runs[0]
    assert result.ok, (run.status, run.message, "\n".join(lines[-30:]))
    assert run.validity == "VALID"
    assert any("model server ready in" in line for line in lines)
    record = json.loads((state / "runs" / run.run_id / "results" / run.run_id / "record.json").read_text())
    server = record["server"]
    assert server["engine"] == "transformers" and server["started_by"] == "mlrepro"
    assert server["version"] == "5.25.0" and "transformers" in server["version_source"]
    assert server["engine_command"][:2] == ["transformers", "serve"]
    assert server["engine_command"][2].endswith(":SmolLM2-135M-Instruct.Q4_1.gguf")
    assert server["command"][:3] == ["mlrepro-serve", "--engine", "transformers"]
    gguf = smollm2_gguf()
    assert gguf is not None and server["model_sha256"] == hashlib.sha256(gguf.read_bytes()).hexdigest()
    assert server["base_url"] == f"http://{server_name(run.run_id)}:8000/v1"      # the container on the network
    assert record["workload"]["backend"] == "openai" and record["workload"]["device"] == "cpu"
    assert record["workload"]["describe"]["output_tokens"]["results_by_source"].keys() == {"text"}
    # the server's log is kept beside the harness's: mlrepro-serve's facts line, then the engine's own
    log = (state / "runs" / run.run_id / "server.log").read_text()
    assert "mlrepro-serve: {" in log and "Uvicorn running" in log
    # the systems JSON says what the SUT is
    (system,) = (into / "open" / "Acme" / "systems").glob("*.json")
    desc = json.loads(system.read_text())
    assert desc["framework"].startswith("Hugging Face transformers serve 5.25.0 (model server + LoadGen client")
    assert server["model_sha256"] in desc["sw_notes"] and desc["system_type_detail"] == "model server + LoadGen client"
    report = check_tree(into)
    assert not report.errors, [f"{f.path}: {f.message}" for f in report.errors]
    # nothing of the run is left: containers (server, client) and the network
    leftovers = docker_client.containers.list(all=True, filters={"label": f"mlrepro.io/server-for={run.run_id}"})
    leftovers += docker_client.containers.list(all=True, filters={"name": run.run_id})
    assert not leftovers
    assert not docker_client.networks.list(names=[f"mlrepro-net-{run.run_id}"])


def test_prune_removes_a_run_network_left_behind(docker_client, state) -> None:  # noqa: ANN001
    """A model server's network that a crashed launch left (no container on it, no run record): prune lists it
    and removes it; only this state directory's."""
    import secrets

    from mlrepro.flow.prune import PrunePlan, apply_prune, plan_prune
    from mlrepro.state.state_id import state_labels

    state.mkdir(parents=True, exist_ok=True)
    name = f"mlrepro-net-prune-test-{secrets.token_hex(3)}"
    docker_client.networks.create(name, labels={**state_labels(state), "mlrepro.io/run-id": "a-run-long-gone"})
    try:
        plan = plan_prune(state_dir=state, client=docker_client)
        (item,) = [i for i in plan.items if i.kind == "network" and i.name == name]
        assert item.reason == "no run record names it"
        report = apply_prune(PrunePlan(items=[item], state_dir=state), client=docker_client)
        assert report.removed == [item] and not docker_client.networks.list(names=[name])
    finally:
        for n in docker_client.networks.list(names=[name]):
            n.remove()
