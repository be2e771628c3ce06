"""The engine commands as a user types them: build (no-op, bad inputs, a base that cannot be pulled), images,
base-images, push with a wrong and a right password (no tag left behind; progress per layer)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mlrepro.cli.main import app

pytestmark = [pytest.mark.docker]
runner = CliRunner()
PROFILE = ["-p", "x86-cpu", "-f", "air-gapped"]


@pytest.fixture(autouse=True)
def _state(tmp_path, monkeypatch):
    monkeypatch.setenv("MLREPRO_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture(scope="module")
def built(docker_client, base_image) -> dict:
    r = runner.invoke(app, ["build", *PROFILE, "--output", "json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def _tags(docker_client, ref: str) -> list[str]:
    return docker_client.images.get(ref).tags


def test_build_again_is_a_no_op_and_images_lists_it(built):
    again = runner.invoke(app, ["build", *PROFILE, "--output", "json"])
    assert again.exit_code == 0
    data = json.loads(again.stdout)
    assert data["skipped"] and data["ref"] == built["ref"] and data["platform"] == "linux/amd64"
    rows = json.loads(runner.invoke(app, ["images", "--profile", "x86-cpu", "--output", "json"]).stdout)
    assert any(built["ref"] in row["tags"] and row["platform"] == "linux/amd64" and row["size_mib"] > 100
               for row in rows)


def test_build_with_quick_and_loadgen_settings_uses_the_same_image(built):
    r = runner.invoke(app, ["build", *PROFILE, "-f", "quick", "--set", "benchmark.settings.min_duration_ms=60000",
                            "--output", "json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["skipped"] and data["ref"] == built["ref"] and data["image_id"] == built["image_id"]


def test_missing_ca_bundle_is_bad_input_even_when_up_to_date(built, tmp_path):
    nope = tmp_path / "nope.pem"
    r = runner.invoke(app, ["build", *PROFILE, "--ca-bundle", str(nope)])
    assert r.exit_code == 2
    assert r.stderr.startswith("mlrepro: error: ") and len(r.stderr.strip().splitlines()) == 1
    assert str(nope) in r.stderr


def test_base_image_that_cannot_be_pulled_hints_air_gapped(docker_client):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ref = f"127.0.0.1:{port}/library/python:3.11-slim-bookworm"
    r = runner.invoke(app, ["build", "-p", "x86-cpu", "--set", f"image.base={ref}"])
    assert r.exit_code == 1
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("mlrepro: error: ")]
    assert len(errors) == 1 and errors[0] == r.stderr.strip().splitlines()[-1]  # after the "pulling" note
    assert errors[0].startswith("mlrepro: error: base image ") and ref in errors[0] and "cannot be pulled" in errors[0]
    assert "`mlrepro base-images`" in errors[0] and "`-f air-gapped`" in errors[0]


def test_base_images_output_json(docker_client, base_image, base_cache_dir):
    r = runner.invoke(app, ["base-images", "--platform", "linux/amd64", "--cache-dir", str(base_cache_dir),
                            "--output", "json"])
    assert r.exit_code == 0, r.output
    [row] = json.loads(r.stdout)
    image = docker_client.images.get(base_image)
    assert row["ref"] == base_image and row["platform"] == "linux/amd64" and row["image_id"] == image.id
    assert row["status"] == "exists" and row["size_bytes"] == image.attrs["Size"]


@pytest.mark.registry
def test_push_wrong_password_is_one_line_without_the_password(docker_client, built, registry):
    secret = "not-the-password-7f3a"
    r = runner.invoke(app, ["push", *PROFILE, "--registry", f"{registry.host}/bench", "--username",
                            registry.username, "--password-stdin"], input=secret + "\n")
    assert r.exit_code == 1
    assert r.stderr.startswith("mlrepro: error: ") and len(r.stderr.strip().splitlines()) == 1
    assert secret not in r.output
    assert not [t for t in _tags(docker_client, built["ref"]) if t.startswith(registry.host)]  # no tag left


@pytest.mark.registry
def test_push_records_the_digest(built, registry):
    r = runner.invoke(app, ["push", *PROFILE, "--registry", f"{registry.host}/bench", "--username",
                            registry.username, "--password-stdin", "--output", "json"],
                      input=registry.password + "\n")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["digest"].startswith("sha256:") and data["digest_ref"].endswith(data["digest"])
    assert registry.password not in r.output
    # progress per layer on stderr while it goes: one line per layer and state, the final state of each layer
    lines = [ln.split() for ln in r.stderr.splitlines() if ln.startswith("  ")]
    finals = {ln[0]: " ".join(ln[1:]) for ln in lines}
    assert finals and all(s.startswith(("Pushed", "Layer already exists", "Mounted from")) for s in finals.values())
    assert len(lines) == len({(ln[0], ln[1]) for ln in lines})  # never the same layer state twice


def test_missing_password_on_stdin_is_bad_input():
    r = runner.invoke(app, ["push", *PROFILE, "--username", "u", "--password-stdin"], input="")
    assert r.exit_code == 2 and "no password" in r.stderr
