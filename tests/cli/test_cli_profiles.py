"""The CLI as a user sees it: output, exit codes, one line per problem, no tracebacks."""

import json
import subprocess
import sys

import yaml
from typer.testing import CliRunner

from mlrepro.cli.main import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_profiles_list_json():
    r = invoke("profiles", "list", "--output", "json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    names = [row["name"] for row in rows]
    assert names == ["arm64-cpu", "nvidia-gpu", "nvidia-gpu-arm64", "x86-cpu"]
    gpu = rows[1]
    assert gpu["platform"] == "linux/amd64" and "nvidia.com/gpu" in gpu["accelerator"]


def test_profiles_list_table():
    r = invoke("profiles", "list")
    assert r.exit_code == 0
    for name in ("x86-cpu", "arm64-cpu", "nvidia-gpu", "nvidia-gpu-arm64", "linux/arm64"):
        assert name in r.stdout


def test_profiles_show_resolves_overlays_and_set(tmp_path):
    overlay = tmp_path / "o.yaml"
    overlay.write_text("benchmark: {batch_size: 7}\n")
    r = invoke("profiles", "show", "nvidia-gpu", "-f", str(overlay), "--set", "benchmark.scenarios=Server")
    assert r.exit_code == 2  # a scalar where a list is expected
    assert r.stderr.strip() == "mlrepro: error: --set: benchmark.scenarios: wrong type: expected a valid list, got str"
    r = invoke("profiles", "show", "nvidia-gpu", "-f", str(overlay), "--set", "benchmark.scenarios=[Server]")
    assert r.exit_code == 0, r.output
    doc = yaml.safe_load(r.stdout)
    assert doc["benchmark"]["batch_size"] == 7 and doc["benchmark"]["scenarios"] == ["Server"]
    assert r.stdout.startswith("# hash: ")
    j = json.loads(invoke("profiles", "show", "x86-cpu", "--output", "json").stdout)
    assert len(j["hash"]) == 64 and j["profile"]["name"] == "x86-cpu"


def test_bad_profile_exit_2_one_line_per_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: x86-cpu\nbenchmrk: {}\naccelerator: {count: 1}\n")
    r = invoke("profiles", "show", str(bad))
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert all(line.startswith(f"mlrepro: error: {bad}: ") for line in lines)
    assert any("benchmrk: unknown key (did you mean 'benchmark'?)" in line for line in lines)
    assert "Traceback" not in r.output


def test_unknown_profile_and_bad_flag_exit_2():
    r = invoke("profiles", "show", "x86")
    assert r.exit_code == 2 and "unknown profile 'x86'" in r.stderr
    r = invoke("profiles", "list", "--output", "xml")
    assert r.exit_code == 2


def test_console_script_no_traceback_on_bad_input(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(": : :\n")
    exe = [sys.executable, "-m", "mlrepro.cli.main", "profiles", "show", str(bad)]
    out = subprocess.run(exe, capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.startswith(f"mlrepro: error: {bad}: invalid YAML")
    assert "Traceback" not in out.stderr


def test_every_command_has_help_with_an_example():
    for args in (["profiles", "list"], ["profiles", "show"], ["generate"], ["run"], ["build"], ["push"],
                 ["images"], ["base-images"], ["launch"], ["runs"], ["logs"], ["collect"], ["check"]):
        r = invoke(*args, "--help")
        assert r.exit_code == 0, (args, r.output)
        assert "Example:" in r.stdout, args
