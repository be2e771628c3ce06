"""The runner contract's shared parts: typed results locations, the target registry, the package layering."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from mlrepro.errors import BadInputError
from mlrepro.runners.locations import DockerVolume, HostDir, LocalDir, Pvc, format_location, parse_location
from mlrepro.runners.targets import canonical_target
from mlrepro.state.paths import RunPaths


@pytest.mark.parametrize("location", [
    LocalDir(Path("/state/runs/r1/results")),
    HostDir(Path("/data/results/r1")),
    DockerVolume("mlrepro-results-r1"),
    Pvc("r1-results", "bench", "kind-kind"),
    Pvc("r1-results", "bench", ""),
    Pvc("r1-results", "bench", "arn:aws:eks:eu-west-1:1234:cluster/prod"),
])
def test_locations_round_trip_through_the_store_text(location):
    text = format_location(location)
    assert parse_location(text, "whatever") == location


def test_records_written_before_locations_had_a_type():
    assert parse_location("/state/runs/r1/results", "native") == LocalDir(Path("/state/runs/r1/results"))
    assert parse_location("/data/results/r1", "docker") == HostDir(Path("/data/results/r1"))
    assert parse_location("mlrepro-results-r1", "docker") == DockerVolume("mlrepro-results-r1")
    with pytest.raises(BadInputError, match="not one mlrepro wrote"):
        parse_location("pvc:only-one-part", "kubernetes")


def test_targets_are_looked_up_by_name_in_one_place():
    assert canonical_target("docker") == "docker"
    with pytest.raises(BadInputError, match="'podman' is not one of native, docker"):
        canonical_target("podman")


def test_work_dir_layout():
    paths = RunPaths.of(Path("/state"), "r1")
    assert paths.log == Path("/state/runs/r1/harness.log")
    assert paths.results == Path("/state/runs/r1/results/r1")
    assert paths.results_root == Path("/state/runs/r1/results")


def test_render_and_image_do_not_import_each_other_in_a_cycle():
    """render/ (views of a profile) must not import image/ (the build): image builds on render."""
    code = ("import sys, mlrepro.render.manifests, mlrepro.render.helm_values, mlrepro.render.jobspec, "
            "mlrepro.render.dockerfile, mlrepro.render.compat; "
            "print(sorted(m for m in sys.modules if m.startswith('mlrepro.image')))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"
    src = Path(__file__).resolve().parents[2] / "mlrepro" / "render"
    imports = re.compile(r"^\s*(from|import) mlrepro\.image", re.MULTILINE)
    offenders = [p.name for p in src.glob("*.py") if imports.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
