"""user.conf: LoadGen's grammar and lookup, what it would ignore, and the file a run loads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlrepro.harness.userconf import (
    UserConfError,
    compose_user_conf,
    effective_settings,
    parse_user_conf,
    setting_line,
    settings_for,
)


def test_lookup_follows_loadgens_precedence() -> None:
    conf = parse_user_conf("*.*.min_duration = 1\n"
                           "resnet50.*.min_duration = 2\n"
                           "*.Offline.min_duration = 3\n"
                           "# a comment\n"
                           "resnet50.Offline.min_duration = 4\n"
                           "resnet50.Offline.min_duration = 5\n")      # a later line replaces an earlier one
    assert conf.lookup("resnet50", "Offline", "min_duration") == "5"
    assert conf.lookup("resnet50", "Server", "min_duration") == "2"
    assert conf.lookup("bert", "Offline", "min_duration") == "3"
    assert conf.lookup("bert", "Server", "min_duration") == "1"
    assert conf.lookup("bert", "Server", "max_duration") is None


@pytest.mark.parametrize(("line", "expected"), [
    ("resnet50.Offline.target_qps=5", "spaces around '='"),
    ("resnet50.Offline.target_qps 5", "no '='"),
    ("resnet50.Offline.min_duration", "no '='"),
    ("resnet50.Offline.target_qps = 5 # fast", "text after the value"),
    ("#resnet50.Offline.target_qps = 5", "'#' followed by a space"),
    ("resnet50.Offline.target_latency = 5", "only for Server, SingleStream, MultiStream"),
    ("resnet50.Ofline.target_qps = 5", "did you mean 'Offline'"),
    ("resnet50.Offline.taget_qps = 5", "did you mean 'target_qps'"),
    ("resnet50.Offline.qsl_rng_seed = 5", "only from its built-in mlperf.conf"),
    ("resnet50.Offline.mode = 2", "set by mlrepro from --mode"),
    ("resnet50.Offline.target_qps = lots", "not a number"),
    ("resnet50.Offline.min_query_count = 1.5", "as an integer"),
    ("resnet50.Server.target_latency = 0.5", "Server's 'target_latency' as an integer"),
    ("resnet50.Offline.min_query_count = 010", "octal"),
    ("resnet50.Offline.target_qps = -5", "negative"),
    ("bert.Offline.target_qps = 5", "model 'bert' is not the model"),
    ("resnet50.target_qps = 5", "is not 'model.Scenario.name'"),
])
def test_lines_loadgen_would_ignore_or_reject_are_errors(line: str, expected: str) -> None:
    with pytest.raises(UserConfError) as info:
        parse_user_conf(f"# fine\n*.*.min_duration = 1000\n{line}\n", models={"resnet50"})
    (problem,) = info.value.problems
    assert problem.line == 3 and expected in problem.message, problem


def test_accepted_forms() -> None:
    conf = parse_user_conf("*.SingleStream.target_latency = 0.25\n"      # fractional ms: read as a double
                           "resnet50.*.performance_sample_count_override = 0x40\n"
                           "  *.Server.target_qps   =   1.5e3  \n", models={"resnet50"})
    assert [line.key for line in conf.lines] == ["*.SingleStream.target_latency",
                                                 "resnet50.*.performance_sample_count_override",
                                                 "*.Server.target_qps"]
    assert effective_settings(conf, "resnet50", "SingleStream") == {
        "single_stream_expected_latency_ns": 250_000.0, "performance_sample_count_override": 64.0}
    assert effective_settings(conf, "resnet50", "Server")["server_target_qps"] == 1500.0


def test_setting_lines() -> None:
    assert setting_line("resnet50", "Server", "min_duration_ms", 1000).render() == \
        "resnet50.Server.min_duration = 1000"
    assert setting_line("resnet50", "Offline", "server_target_latency_ns", 15_000_000).render() == \
        "resnet50.Server.target_latency = 15"
    assert setting_line("m", "Offline", "single_stream_expected_latency_ns", 20_000).render() == \
        "m.SingleStream.target_latency = 0.02"
    with pytest.raises(ValueError, match="whole number of milliseconds"):
        setting_line("m", "Server", "server_target_latency_ns", 1_500_000)
    with pytest.raises(ValueError, match="unknown LoadGen setting"):
        setting_line("m", "Server", "accuracy_log_probability", 0.1)


def test_settings_for_a_scenario() -> None:
    settings = {"min_duration_ms": 1000, "min_query_count": 100, "Server": {"min_query_count": 1024},
                "Offline": {"min_query_count": 1}}
    assert settings_for(settings, "Server") == {"min_duration_ms": 1000, "min_query_count": 1024}
    assert settings_for(settings, "Offline") == {"min_duration_ms": 1000, "min_query_count": 1}
    assert settings_for(settings, "SingleStream") == {"min_duration_ms": 1000, "min_query_count": 100}


def test_composed_file_orders_profile_settings_targets() -> None:
    text = compose_user_conf("*.Offline.min_query_count = 7\n", "resnet50", "Offline",
                             {"min_duration_ms": 250, "server_target_qps": 9},
                             {"offline_expected_qps": 1234.5})
    conf = parse_user_conf(text)
    assert [line.render() for line in conf.lines] == [
        "*.Offline.min_query_count = 7",
        "resnet50.Offline.min_duration = 250",            # server_target_qps is another scenario's: left out
        "resnet50.Offline.target_qps = 1234.5",
    ]
    assert effective_settings(conf, "resnet50", "Offline") == {
        "min_duration_ms": 250.0, "min_query_count": 7.0, "offline_expected_qps": 1234.5}


_LOADGEN_READS = """
import json, sys
import mlperf_loadgen as lg
s = lg.TestSettings()
rc = s.FromConfig(sys.argv[1], "resnet50", sys.argv[2])
print(json.dumps({"rc": rc, **{k: getattr(s, k) for k in sys.argv[3:]}}))
"""


@pytest.mark.parametrize("scenario", ["Offline", "Server", "SingleStream", "MultiStream"])
def test_what_loadgen_loads_is_what_the_composed_file_says(scenario: str, tmp_path: Path) -> None:
    """LoadGen itself (a fresh process: mlperf.conf + this user.conf through the official single-conf call)
    reads exactly the values the composition predicts."""
    import json

    settings = {"min_duration_ms": 1234, "min_query_count": 77, "server_target_latency_ns": 25_000_000,
                "multi_stream_samples_per_query": 4}
    targets = {"Offline": {"offline_expected_qps": 4321.5}, "Server": {"server_target_qps": 321.25},
               "SingleStream": {"single_stream_expected_latency_ns": 12_345.0},
               "MultiStream": {"multi_stream_expected_latency_ns": 54_321.0}}[scenario]
    text = compose_user_conf("*.*.performance_sample_count_override = 64\n", "resnet50", scenario, settings,
                             targets)
    path = tmp_path / "user.conf"
    path.write_text(text)
    predicted = effective_settings(parse_user_conf(text), "resnet50", scenario)
    proc = subprocess.run([sys.executable, "-c", _LOADGEN_READS, str(path), scenario, *predicted],
                          capture_output=True, text=True, check=True, timeout=60)
    loaded = json.loads(proc.stdout)
    assert loaded.pop("rc") == 0
    assert loaded == pytest.approx(predicted)
    assert set(targets) <= set(predicted)
