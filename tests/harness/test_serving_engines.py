"""Engines as data (engines.json) and ``mlrepro-serve``, the one way every target starts a model server: the
command of each engine, how the model is passed and named, the sampling fields, the version's source, the
model digest, and its one-line refusals (exit 2)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlrepro.harness.serve import model_sha256, server_command
from mlrepro.harness.serving.client import ENGINE_DEFAULTS
from mlrepro.harness.serving.engines import ENGINE_NAMES, STARTABLE, EngineError, engine, engines

GGUF_HEAD = b"GGUF" + b"\0" * 60


@pytest.fixture()
def gguf(tmp_path: Path) -> Path:
    path = tmp_path / "models" / "m.Q4_1.gguf"
    path.parent.mkdir()
    path.write_bytes(GGUF_HEAD)
    return path


@pytest.fixture()
def hf_dir(tmp_path: Path) -> Path:
    d = tmp_path / "llama"
    (d / "sub").mkdir(parents=True)
    (d / "config.json").write_text("{}")
    (d / "sub" / "w.safetensors").write_bytes(b"weights")
    return d


def test_the_engines_and_what_the_client_sends_each() -> None:
    assert ENGINE_NAMES == ("vllm", "sglang", "transformers", "openai")
    assert STARTABLE == ("vllm", "sglang", "transformers")
    assert ENGINE_DEFAULTS["vllm"] == {"prompt_format": "token_ids", "return_token_ids": True}
    assert ENGINE_DEFAULTS["transformers"]["prompt_format"] == "text"
    assert ENGINE_DEFAULTS["openai"]["prompt_format"] == "text"
    assert engine("vllm").sampling_fields(2) == {"temperature": 0.0, "top_p": 1.0, "top_k": 1, "seed": 42,
                                                 "min_tokens": 2}
    assert engine("transformers").sampling_fields(2) == {"temperature": 0.0}   # it rejects unknown fields (422)
    assert all(e.source for e in engines().values())
    with pytest.raises(EngineError, match="unknown server engine 'tgi': one of vllm, sglang, transformers, openai"):
        engine("tgi")


def test_vllm_gets_the_file_and_a_served_name(gguf: Path) -> None:
    cmd = server_command("vllm", str(gguf), "0.0.0.0", 8000, "llama3.1-8b", ["--tensor-parallel-size", "2"])  # noqa: S104
    assert cmd.argv == ("vllm", "serve", str(gguf), "--host", "0.0.0.0", "--port", "8000", "--served-model-name",
                        "llama3.1-8b", "--tensor-parallel-size", "2")
    assert cmd.served_model == "llama3.1-8b" and cmd.model_path == str(gguf)


def test_transformers_serve_gets_dir_colon_file_and_is_named_by_it(gguf: Path) -> None:
    cmd = server_command("transformers", str(gguf), "127.0.0.1", 9000, "ignored")
    model = f"{gguf.parent}:{gguf.name}"
    assert cmd.argv == ("transformers", "serve", model, "--host", "127.0.0.1", "--port", "9000")
    assert cmd.served_model == model and cmd.model_argument == model


def test_sglang_gets_a_model_path_and_the_directory(hf_dir: Path) -> None:
    cmd = server_command("sglang", str(hf_dir), "0.0.0.0", 30000)  # noqa: S104
    assert cmd.argv[:5] == ("python3", "-m", "sglang.launch_server", "--model-path", str(hf_dir))
    assert cmd.served_model == "llama"                  # default name: the directory's


def test_an_existing_server_engine_cannot_be_started(gguf: Path) -> None:
    with pytest.raises(EngineError, match="mlrepro cannot start it"):
        server_command("openai", str(gguf), "h", 1)


def test_model_digests(gguf: Path, hf_dir: Path) -> None:
    assert model_sha256(gguf) == hashlib.sha256(GGUF_HEAD).hexdigest()
    manifest = "".join(f"{hashlib.sha256(data).hexdigest()}  {rel}\n"
                       for rel, data in (("config.json", b"{}"), ("sub/w.safetensors", b"weights")))
    assert model_sha256(hf_dir) == hashlib.sha256(manifest.encode()).hexdigest()
    before = model_sha256(hf_dir)
    (hf_dir / "sub" / "w.safetensors").write_bytes(b"weights2")
    assert model_sha256(hf_dir) != before


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlrepro.harness.serve", *args], capture_output=True, text=True,
                          timeout=120, check=False)


def test_print_command_is_what_it_would_exec(gguf: Path) -> None:
    proc = _serve("--engine", "transformers", "--model", str(gguf), "--port", "8123", "--print-command", "--",
                  "--continuous-batching")
    assert proc.returncode == 0, proc.stderr
    facts = json.loads(proc.stdout)
    assert facts["argv"][-1] == "--continuous-batching" and facts["argv"][5:7] == ["--port", "8123"]
    assert facts["version"] == __import__("importlib.metadata").metadata.version("transformers")


@pytest.mark.parametrize("args,message", [
    (["--engine", "transformers", "--model", "/nowhere/m.gguf"], "/nowhere/m.gguf: GGUF file not found"),
    (["--engine", "tgi", "--model", "x"], "unknown server engine 'tgi'"),
    (["--engine", "transformers"], "--engine and --model are required"),
])
def test_refusals_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    proc = _serve(*args)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("mlrepro-serve: error: "), proc.stderr
    assert message in lines[0]


def test_an_engine_that_is_not_installed_is_said(gguf: Path) -> None:
    import shutil

    if shutil.which("vllm") or Path(sys.executable).with_name("vllm").exists():   # pragma: no cover - GPU hosts
        pytest.skip("vLLM is installed here: it would start")
    proc = _serve("--engine", "vllm", "--model", str(gguf))
    assert proc.returncode == 2 and "engine vllm: vllm is not installed here" in proc.stderr


def test_check_says_whether_a_url_answers() -> None:
    from llm_serving_support import free_port, running_test_server

    with running_test_server() as srv:
        assert _serve("--check", f"http://127.0.0.1:{srv.port}/health").returncode == 0
    assert _serve("--check", f"http://127.0.0.1:{free_port()}/health").returncode == 1
