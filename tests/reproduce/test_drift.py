"""The drift rules on fixed facts: accuracy exactly, performance within the tolerance, validity, the image, what
defines the run (settings, seeds, profile hash), and environment differences that explain but do not fail."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mlrepro.profiles.loader import ProfileRequest
from mlrepro.reproduce.drift import MISMATCH, RunFacts, compare
from mlrepro.reproduce.image import _tag_hash

OLD = RunFacts(tree_result="a", run_id="r1", profile_hash="h" * 64, image_reference="mlrepro/bench:x86-cpu-0123456789ab",
               image_digest="sha256:" + "1" * 64, environment={"OS/kernel: operating_system": "Debian 12, kernel 6.1"},
               settings={"min_duration_ms": 1000, "target_qps": 5000}, seeds={"qsl_rng_seed": 1},
               metric="result_samples_per_second", value=1000.0, unit="Samples/s", latency_ms={"90.00": 2.0},
               accuracy={"acc": "94.167"}, validity="VALID", user_conf_sha256="u", recorded_user_conf_sha256="u")


def _mismatches(new: RunFacts, **kw: object) -> list[tuple[str, str]]:
    return [(i.group, i.name) for i in compare(OLD, new, **kw).mismatches]  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "ok"), [(1050.0, True), (950.0, True), (1050.1, False), (949.9, False)])
def test_performance_within_the_tolerance(value: float, ok: bool) -> None:
    report = compare(OLD, replace(OLD, value=value), tolerance=0.05)
    assert report.match is ok
    item = next(i for i in report.items if i.name.startswith("result_samples_per_second"))
    assert item.note.startswith(f"{(value - 1000) / 10:+.2f} %")


def test_accuracy_is_compared_exactly() -> None:
    assert _mismatches(replace(OLD, accuracy={"acc": "94.168"})) == [("result", "accuracy acc")]
    assert _mismatches(replace(OLD, accuracy={"acc": "94.1670"})) == [("result", "accuracy acc")]


def test_validity_settings_seeds_profile() -> None:
    assert _mismatches(replace(OLD, validity="INVALID")) == [("result", "validity")]
    assert _mismatches(replace(OLD, settings={"min_duration_ms": 2000, "target_qps": 5000})) == \
        [("settings", "min_duration_ms")]
    assert _mismatches(replace(OLD, seeds={"qsl_rng_seed": 2})) == [("seeds", "qsl_rng_seed")]
    assert _mismatches(replace(OLD, profile_hash="g" * 64)) == [("profile", "profile hash")]


def test_environment_differences_explain_but_do_not_fail() -> None:
    report = compare(OLD, replace(OLD, environment={"OS/kernel: operating_system": "Ubuntu 24.04, kernel 6.8"},
                                  latency_ms={"90.00": 3.0}))
    assert report.match
    assert [(i.group, i.verdict) for i in report.items if i.verdict != "same"] == \
        [("environment", "differs"), ("result", "differs")]


def test_image() -> None:
    other = replace(OLD, image_digest="sha256:" + "2" * 64)
    assert _mismatches(other) == [("image", "digest")]
    report = compare(OLD, other, image_equivalent=True, image_note="rebuilt: content hash matches")
    assert report.match and next(i for i in report.items if i.name == "digest").verdict == "differs"


def test_tampered_user_conf_and_check_errors() -> None:
    tampered = replace(OLD, user_conf_sha256="v")
    assert [i.verdict for i in compare(tampered, OLD).items if i.group == "user.conf"] == [MISMATCH]
    report = compare(OLD, OLD, original_errors=["x/accuracy.txt: hash= ... [ACCURACY_HASH]"])
    assert [(i.group, i.note) for i in report.mismatches] == [("check", "x/accuracy.txt: hash= ... [ACCURACY_HASH]")]


def test_recorded_command_line() -> None:
    argv = ["mlrepro", "run", "-p", "/abs/p.yaml", "-f", "quick", "--file=air-gapped", "--set", "a.b=1",
            "--target", "docker", "--scenario", "Offline"]
    assert ProfileRequest.from_argv(argv) == ProfileRequest("/abs/p.yaml", ("quick", "air-gapped"), ("a.b=1",))
    assert ProfileRequest.from_argv(["mlrepro", "run", "--target", "native"]) is None


def test_content_hash_of_a_tag() -> None:
    assert _tag_hash("mlrepro/bench:x86-cpu-0123456789ab") == "0123456789ab"
    assert _tag_hash("127.0.0.1:5001/bench:x86-cpu-0123456789ab") == "0123456789ab"
    assert _tag_hash("127.0.0.1:5001/bench") is None and _tag_hash("bench:latest") is None
