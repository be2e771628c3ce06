"""The engine commands as a user types them: build (no-op), images, push with a wrong and a right password."""

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


def test_build_again_is_a_no_op_and_images_lists_it(built):
    again = runner.invoke(app, ["build", *PROFILE, "--output", "json"])
    assert again.exit_code == 0
    data = json.loads(again.stdout)
    assert data["skipped"] and data["ref"] == built["ref"] and data["platform"] == "linux/amd64"
    rows = json.loads(runner.invoke(app, ["images", "--profile", "x86-cpu", "--output", "json"]).stdout)
    assert any(built["ref"] in row["tags"] and row["platform"] == "linux/amd64" and row["size_mib"] > 100
               for row in rows)


@pytest.mark.registry
def test_push_wrong_password_is_one_line_without_the_password(built, registry):
    secret = "not-the-password-7f3a"
    r = runner.invoke(app, ["push", *PROFILE, "--registry", f"{registry.host}/bench", "--username",
                            registry.username, "--password-stdin"], input=secret + "\n")
    assert r.exit_code == 1
    assert r.stderr.startswith("mlrepro: error: ") and len(r.stderr.strip().splitlines()) == 1
    assert secret not in r.output


@pytest.mark.registry
def test_push_records_the_digest(built, registry):
    r = runner.invoke(app, ["push", *PROFILE, "--registry", f"{registry.host}/bench", "--username",
                            registry.username, "--password-stdin", "--output", "json"],
                      input=registry.password + "\n")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["digest"].startswith("sha256:") and data["digest_ref"].endswith(data["digest"])
    assert registry.password not in r.output


def test_missing_password_on_stdin_is_bad_input():
    r = runner.invoke(app, ["push", *PROFILE, "--username", "u", "--password-stdin"], input="")
    assert r.exit_code == 2 and "no password" in r.stderr
