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
    data = json.loads(r.stdout)
    rows = data["profiles"]
    names = [row["name"] for row in rows]
    assert names == ["amd-gpu", "arm64-cpu", "intel-gpu", "llm-client", "nvidia-gpu", "nvidia-gpu-arm64", "nvidia-gpu-llm", "x86-cpu",
                     "x86-cpu-llm"]
    # the built-in overlays are listed too, each with what it is for
    assert [o["name"] for o in data["overlays"]] == ["air-gapped", "quick"]
    assert all(o["description"] for o in data["overlays"])
    gpu = rows[names.index("nvidia-gpu")]
    assert gpu["platform"] == "linux/amd64" and "nvidia.com/gpu" in gpu["accelerator"]
    assert "amd.com/gpu" in rows[0]["accelerator"] and "gpu.intel.com/xe" in rows[2]["accelerator"]
    client = rows[names.index("llm-client")]
    assert client["accelerator"] == "none" and "existing" in client["description"]
    llm = {row["name"]: row for row in rows if row["name"].endswith("-llm")}
    assert (llm["x86-cpu-llm"]["backend"], llm["nvidia-gpu-llm"]["backend"]) == ("transformers", "vllm")


def test_profiles_list_table():
    r = invoke("profiles", "list")
    assert r.exit_code == 0
    for name in ("x86-cpu", "arm64-cpu", "nvidia-gpu", "nvidia-gpu-arm64", "linux/arm64", "overlays", "air-gapped",
                 "quick"):
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


def test_user_conf_lines_loadgen_would_ignore_are_rejected_at_profile_time(tmp_path):
    """A user.conf line LoadGen would silently ignore is an error of `profiles show` and `generate` (exit 2, one
    line naming benchmark.user_conf), not a surprise inside a run."""
    profile = tmp_path / "p.yaml"
    profile.write_text("extends: x86-cpu\nname: mine\nbenchmark:\n  user_conf: |\n"
                       "    resnet50.Offline.min_query_count = 100\n"
                       "    bert.Offline.target_qps = 5\n"
                       "    resnet50.Offline.target_latency = 5\n"
                       "    resnet50.Offline.min_duration=1000\n")
    for args in (["profiles", "show", str(profile)], ["generate", "-p", str(profile), "-o", str(tmp_path / "out")]):
        r = invoke(*args)
        assert r.exit_code == 2, r.output
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "benchmark.user_conf" in lines[0] and str(profile) in lines[0]
        assert "line 2" in lines[0] and "model 'bert'" in lines[0]
        assert "line 3" in lines[0] and "only for Server, SingleStream, MultiStream" in lines[0]
        assert "line 4" in lines[0] and "spaces around '='" in lines[0]
        assert "Traceback" not in r.output
    assert not (tmp_path / "out").exists()


def test_a_setting_loadgen_cannot_take_from_a_user_conf_is_rejected(tmp_path):
    r = invoke("profiles", "show", "x86-cpu", "--set", "benchmark.settings.server_target_latency_ns=1500000")
    assert r.exit_code == 2 and "benchmark.settings" in r.stderr and "whole number of milliseconds" in r.stderr
    r = invoke("profiles", "show", "x86-cpu", "--set", "benchmark.settings.accuracy_log_probability=0.1")
    assert r.exit_code == 2 and "only from mlperf.conf" in r.stderr
    r = invoke("profiles", "show", "x86-cpu", "--set", "benchmark.settings.Server.min_query_count=2048",
               "--output", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["profile"]["benchmark"]["settings"]["Server"] == {"min_query_count": 2048.0}


def test_profiles_show_table_names_where_each_value_came_from(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    r = invoke("profiles", "show", "x86-cpu", "-f", "quick", "--set", "benchmark.batch_size=8", "--output", "table")
    assert r.exit_code == 0, r.output
    rows = {line.split()[0]: line for line in r.stdout.splitlines()[3:] if line[:1].isalpha()}
    assert "--set" in rows["benchmark.batch_size"] and " 8 " in rows["benchmark.batch_size"]
    assert "<overlay:quick>" in rows["benchmark.settings.min_duration_ms"]
    assert "<builtin:x86-cpu>" in rows["platform"]
    assert not r.stdout.lstrip().startswith("name:")        # a table, not the YAML
