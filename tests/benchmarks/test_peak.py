"""The benchmarks' Server peak: a lucky VALID probe above a run of INVALID ones does not count."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from peak import sustained_peak  # noqa: E402

V, I = "VALID", "INVALID"  # noqa: E741


def test_isolated_lucky_targets_above_the_peak_are_pooled_away() -> None:
    targets = [100, 110, 120, 130, 140, 150, 160, 170]
    verdicts = [[V, V], [V, V], [V, I], [V, V], [I, I], [I, I], [I, I], [V, V]]
    assert sustained_peak(targets, verdicts) == 130


def test_one_unlucky_probe_below_the_peak_does_not_lower_it() -> None:
    assert sustained_peak([1, 2, 3, 4], [[V, V, V], [V, I, V], [V, V, V], [I, I, I]]) == 3


def test_nothing_holds() -> None:
    assert sustained_peak([1, 2], [[I, I], [I, V]]) is None
    assert sustained_peak([], []) is None


def test_bad_input_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="2 targets but 1"):
        sustained_peak([1, 2], [[V]])
    with pytest.raises(ValueError, match="at least one probe"):
        sustained_peak([1], [[]])
