"""Why prune keeps an engine object that is not this state directory's, and how to remove it when no state
directory ever can (its own is gone)."""

from __future__ import annotations

from pathlib import Path

from mlrepro.flow.prune import _not_ours
from mlrepro.state.state_id import STATE_DIR_LABEL, STATE_ID_LABEL


def test_another_live_state_directory_keeps_its_objects(tmp_path: Path) -> None:
    labels = {STATE_ID_LABEL: "theirs", STATE_DIR_LABEL: str(tmp_path)}
    assert _not_ours("volume", "mlrepro-results-x", labels, "ours") == f"made by another state directory ({tmp_path})"
    assert _not_ours("volume", "mlrepro-results-x", {STATE_ID_LABEL: "ours"}, "ours") is None


def test_a_gone_state_directory_gets_the_command_to_remove_by_hand(tmp_path: Path) -> None:
    gone = tmp_path / "state"
    labels = {STATE_ID_LABEL: "theirs", STATE_DIR_LABEL: str(gone)}
    assert _not_ours("volume", "mlrepro-results-x", labels, "ours") == (
        f"made by a state directory that is gone ({gone}): remove by hand: docker volume rm mlrepro-results-x")
    assert _not_ours("container", "mlrepro-run-x", labels, "ours").endswith("docker rm mlrepro-run-x")
    assert "docker volume rm mlrepro-results-x" in _not_ours("volume", "mlrepro-results-x", {}, "ours")
