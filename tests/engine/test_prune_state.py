"""``mlrepro prune`` on a real engine shared by several state directories: it removes only the volumes and
containers its own state directory made; another one's, and unlabelled ones, are listed as kept."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from mlrepro.state.state_id import STATE_DIR_LABEL, STATE_ID_LABEL, state_id

pytestmark = [pytest.mark.docker]

REPO = Path(__file__).resolve().parents[2]


def _prune(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlrepro.cli.main", "prune", *args], capture_output=True,
                          text=True, timeout=300, cwd=REPO, env={**os.environ, "MLREPRO_STATE_DIR": str(state)})


@pytest.fixture()
def volumes(docker_client):  # noqa: ANN001, ANN201
    """Makes results volumes (as if runs had made them) and removes whatever is left of them afterwards."""
    import docker

    made: list[str] = []

    def make(labels: dict[str, str]) -> str:
        name = f"mlrepro-results-test-prune-{secrets.token_hex(4)}"
        docker_client.volumes.create(name=name, labels=labels)
        made.append(name)
        return name

    yield make
    for name in made:
        try:
            docker_client.volumes.get(name).remove(force=True)
        except docker.errors.NotFound:
            pass


def test_prune_removes_only_its_own_state_directorys_volumes(docker_client, volumes, tmp_path: Path) -> None:  # noqa: ANN001
    import docker

    mine, other = tmp_path / "mine", tmp_path / "other"
    assert state_id(mine) != state_id(other) and state_id(mine) == state_id(mine)      # made once, kept
    own = volumes({STATE_ID_LABEL: state_id(mine), "mlrepro.io/run-id": "gone"})       # no run record names it
    theirs = volumes({STATE_ID_LABEL: state_id(other), STATE_DIR_LABEL: str(other)})
    unlabelled = volumes({})

    dry = _prune(mine, "--dry-run", "--output", "json")
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    removable = {i["name"]: i["reason"] for i in plan["items"] if i["kind"] == "volume"}
    kept = {i["name"]: i["reason"] for i in plan["kept"] if i["kind"] == "volume"}
    assert removable.get(own) == "no run record names it"
    assert theirs not in removable and unlabelled not in removable
    assert kept[theirs] == f"made by another state directory ({other})"
    assert kept[unlabelled].endswith(f"remove by hand: docker volume rm {unlabelled}")

    real = _prune(mine)
    assert real.returncode == 0, real.stderr
    assert f"kept volume {theirs}: made by another state directory ({other})" in " ".join(real.stdout.split())
    with pytest.raises(docker.errors.NotFound):
        docker_client.volumes.get(own)
    docker_client.volumes.get(theirs)                  # another state directory's results stay
    docker_client.volumes.get(unlabelled)

    # seen from the other state directory, the same volume is its own
    plan = json.loads(_prune(other, "--dry-run", "--output", "json").stdout)
    assert theirs in {i["name"] for i in plan["items"]}


def test_prune_keeps_other_state_directorys_stopped_containers(docker_client, x86_image: str,  # noqa: ANN001
                                                                tmp_path: Path) -> None:
    import docker

    mine, other = tmp_path / "mine", tmp_path / "other"
    ours = docker_client.containers.create(x86_image, ["true"], labels={"mlrepro.io/run-id": "gone",
                                                                         STATE_ID_LABEL: state_id(mine)})
    theirs = docker_client.containers.create(x86_image, ["true"], labels={"mlrepro.io/run-id": "gone",
                                                                           STATE_ID_LABEL: state_id(other)})
    try:
        plan = json.loads(_prune(mine, "--dry-run", "--output", "json").stdout)
        assert ours.name in {i["name"] for i in plan["items"]}
        assert {i["name"]: i["reason"] for i in plan["kept"]}[theirs.name].startswith("made by another state")
        assert _prune(mine).returncode == 0
        with pytest.raises(docker.errors.NotFound):
            docker_client.containers.get(ours.id)
        docker_client.containers.get(theirs.id)
    finally:
        for c in (ours, theirs):
            try:
                c.remove(force=True)
            except docker.errors.NotFound:
                pass


def test_a_launch_that_cannot_create_its_container_leaves_no_volume(docker_client, tmp_path: Path) -> None:  # noqa: ANN001
    """The results volume is made before the container (so that it carries the labels): a container that cannot
    be created (its image is missing) takes its empty volume with it."""
    import docker

    state = tmp_path / "state"
    r = subprocess.run([sys.executable, "-m", "mlrepro.cli.main", "launch", "-p", "x86-cpu", "-f", "air-gapped", "-f",
                        "quick", "--scenario", "Offline", "--mode", "performance", "--target", "docker", "--image",
                        "mlrepro/no-such-image:nope", "--output", "json"], capture_output=True, text=True, timeout=300,
                       cwd=REPO, env={**os.environ, "MLREPRO_STATE_DIR": str(state)})
    (run,) = json.loads(r.stdout)["runs"]
    assert run["status"] == "failed" and "not found on the engine" in run["message"], r.stdout
    volume = f"mlrepro-results-{run['run_id']}"
    try:
        with pytest.raises(docker.errors.NotFound):
            docker_client.volumes.get(volume)
    finally:
        try:
            docker_client.volumes.get(volume).remove(force=True)
        except docker.errors.NotFound:
            pass
