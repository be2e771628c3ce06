"""Workload lookup through entry points."""

from __future__ import annotations

import importlib.metadata

import pytest
from fake_workloads import FakeWorkload

from mlrepro.harness.registry import known_workloads, load_workload_class
from mlrepro.harness.spec import SpecError
from mlrepro.harness.workloads.base import ENTRY_POINT_GROUP, WorkloadError


def test_package_registers_the_builtin_workloads() -> None:
    names = {ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    assert {"null", "reference-digits", "resnet50"} <= names


def test_known_and_load() -> None:
    assert {"fake", "null"} <= set(known_workloads())
    assert load_workload_class("fake") is FakeWorkload


def test_unknown_lists_known() -> None:
    with pytest.raises(SpecError, match=r"unknown workload 'nope' \(known: .*fake.*null") as exc:
        load_workload_class("nope")
    assert "\n" not in str(exc.value)


def test_not_a_workload() -> None:
    with pytest.raises(WorkloadError, match="not a Workload subclass"):
        load_workload_class("broken-plugin")


def test_import_failure_is_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlrepro.harness import registry

    ep = importlib.metadata.EntryPoint(name="ghost", value="mlrepro_no_such_module:Thing", group=ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "_entry_points", lambda: {"ghost": ep})
    with pytest.raises(WorkloadError, match="cannot be imported: ModuleNotFoundError"):
        load_workload_class("ghost")
