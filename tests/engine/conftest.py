"""Fixtures of the real-engine tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlrepro.profiles import resolve_profile


@pytest.fixture(scope="session")
def x86_image(docker_client, base_image) -> str:  # noqa: ANN001
    """The x86-cpu image (air-gapped base), built once per session (a no-op when it is up to date)."""
    from mlrepro.image.builder import build_image

    return build_image(resolve_profile("x86-cpu", ["air-gapped"]), client=docker_client).ref


@pytest.fixture(scope="session")
def llm_image(docker_client, base_image) -> str:  # noqa: ANN001
    """The x86-cpu-llm image (air-gapped base: torch's CPU build, transformers[serving], the SmolLM2 wheel), built
    once per session by ``mlrepro build``'s builder (a no-op when it is up to date)."""
    from mlrepro.image.builder import build_image

    return build_image(resolve_profile("x86-cpu-llm", ["air-gapped"]), client=docker_client).ref


@pytest.fixture()
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "state"
    monkeypatch.setenv("MLREPRO_STATE_DIR", str(d))
    return d
