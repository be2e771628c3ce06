"""Fixtures of the harness tests: the fake workload registered under "fake", short LoadGen settings."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import fake_workloads
from harness_testutil import spec_dict

from mlrepro.harness.spec import RunSpec, parse_spec


@pytest.fixture(autouse=True)
def _fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_workloads.install(monkeypatch)


@pytest.fixture
def make_spec() -> Callable[..., RunSpec]:
    def make(**kw: Any) -> RunSpec:
        return parse_spec(spec_dict(**kw))
    return make
