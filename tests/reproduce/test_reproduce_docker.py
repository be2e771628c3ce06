"""``mlrepro reproduce`` of a Docker run (real engine, the air-gapped x86 image): the run records its image
digest; the reproduction runs that exact image (found on the engine by digest) and matches; another image is a
mismatch that names the digests; a recorded digest the engine lacks (and no registry has) makes mlrepro rebuild
the image from the recorded profile and check its content hash, which it says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from reproduce_support import Recorded, copy_tree, mlrepro, pinned_target

pytestmark = pytest.mark.docker

PROFILE = ("-p", "x86-cpu", "-f", "air-gapped", "-f", "quick", "--target", "docker")


@pytest.fixture(scope="module")
def recorded_docker(tmp_path_factory: pytest.TempPathFactory, docker_client: Any, base_image: str) -> Recorded:
    base = tmp_path_factory.mktemp("recorded-docker")
    state = base / "state"
    proc = mlrepro(state, "run", *PROFILE, "--set", pinned_target(state, *PROFILE), "--scenario", "SingleStream",
                   "--into", str(base / "submission"), timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return Recorded(base / "submission", state)


def _record(tree: Path) -> dict[str, Any]:
    return json.loads(next(tree.glob("open/mlrepro/src/mlrepro/*singlestream-perf*/record.json")).read_text())


def _reproduce(rec: Recorded, *extra: str) -> tuple[int, dict[str, Any]]:
    proc = mlrepro(rec.state, "reproduce", str(rec.result()), "--tolerance", "1000", "--output", "json", *extra,
                   timeout=1800)
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.returncode, json.loads(proc.stdout)


def test_the_recorded_image_by_digest(recorded_docker: Recorded, docker_client: Any, tmp_path: Path) -> None:
    image = _record(recorded_docker.tree)["image"]
    assert image["digest"] == docker_client.images.get(image["reference"]).id     # a local build: its image id
    code, data = _reproduce(recorded_docker, "--into", str(tmp_path / "again"))
    assert code == 0 and data["match"], [i for i in data["items"] if i["verdict"] == "mismatch"]
    assert data["image"]["how"] == "local" and data["image"]["digest"] == image["digest"]
    digest = next(i for i in data["items"] if (i["group"], i["name"]) == ("image", "digest"))
    assert digest["recorded"] == digest["reproduced"] == image["digest"] and digest["verdict"] == "same"


def test_another_image_is_a_mismatch(recorded_docker: Recorded, docker_client: Any, tmp_path: Path) -> None:
    import io

    reference = _record(recorded_docker.tree)["image"]["reference"]
    dockerfile = f"FROM {reference}\nLABEL io.mlrepro.test=another-image\n".encode()
    other, _ = docker_client.images.build(fileobj=io.BytesIO(dockerfile), tag="mlrepro-test/another-image:1",
                                          rm=True)
    try:
        code, data = _reproduce(recorded_docker, "--image", other.id, "--into", str(tmp_path / "again"))
    finally:
        docker_client.images.remove(other.id, force=True)
    assert code == 1 and not data["match"]
    bad = [(i["group"], i["name"], i["reproduced"]) for i in data["items"] if i["verdict"] == "mismatch"]
    assert bad == [("image", "digest", other.id)], bad


def test_a_missing_image_is_rebuilt_and_its_content_hash_checked(recorded_docker: Recorded, tmp_path: Path) -> None:
    moved = Recorded(copy_tree(recorded_docker.tree, tmp_path / "copied"), recorded_docker.state)
    record_file = next(moved.tree.glob("open/mlrepro/src/mlrepro/*singlestream-perf*/record.json"))
    record = json.loads(record_file.read_text())
    record["image"]["digest"] = "sha256:" + "0" * 64          # an image this engine has never had
    record_file.write_text(json.dumps(record))
    code, data = _reproduce(moved, "--into", str(tmp_path / "again"))
    assert data["image"]["how"] == "rebuilt" and data["image"]["content_hash_matches"] is True
    digest = next(i for i in data["items"] if (i["group"], i["name"]) == ("image", "digest"))
    assert digest["verdict"] == "differs" and "content hash" in digest["note"]
    assert code == 0 and data["match"]
