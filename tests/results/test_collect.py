"""collect: placement, content, systems json, truncation, idempotence, conflicts, checksums, rejections."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from results_testutil import SUBMITTER, clone_run, contents, edit_json, snapshot, valid_runs

from mlrepro.results import layout as tl
from mlrepro.results.accuracy import (
    MAX_ACCURACY_LOG_SIZE,
    accuracy_txt_with_hash,
    parse_accuracy_txt,
    truncate_accuracy_log,
)
from mlrepro.results.check.systems import system_problems
from mlrepro.results.errors import ChecksumError, CollectInputError, ConflictError
from mlrepro.results.rounds import ROUNDS, load_round
from mlrepro.results.submission import collect


def _collect(sources: list[Path] | Path, tree: Path, **kw) -> object:
    return collect(sources, tree, submitter=SUBMITTER, **kw)


def test_collect_places_files_at_the_right_paths(runs: Path, tmp_path: Path) -> None:
    tree = tmp_path / "submission"
    report = _collect(valid_runs(runs), tree)
    assert len(report.placed) == 2 and not report.unchanged and report.rejected == ()
    assert len(report.systems) == 1
    sid = report.systems[0]
    sub = tree / "open" / SUBMITTER
    by_scenario = {p.scenario: p for p in report.placed}
    off = by_scenario["Offline"]
    assert off.path == sub / "results" / sid / "tiny-classifier" / "Offline"
    assert (off.performance_run, off.accuracy_run) == ("run-offline-sub", "run-offline-sub")
    single = by_scenario["SingleStream"]
    assert (single.performance_run, single.accuracy_run) == ("run-single-perf", "run-single-acc")
    assert off.accuracy == "accuracy=90.000%" and off.result_unit == "samples/s" and off.result > 0

    src = runs / "run-offline-sub" / "Offline"
    for rel in tl.RESULT_FILES:
        assert (off.path / rel).is_file(), rel
    assert (off.path / "performance/run_1/mlperf_log_summary.txt").read_bytes() == \
        (src / "performance/run_1/mlperf_log_summary.txt").read_bytes()
    assert (off.path / "performance/run_1/mlperf_log_detail.txt").read_bytes() == \
        (src / "performance/run_1/mlperf_log_detail.txt").read_bytes()
    assert sorted(p.name for p in (off.path / "performance/run_1").iterdir()) == \
        ["mlperf_log_detail.txt", "mlperf_log_summary.txt"]
    assert (off.path / "accuracy/mlperf_log_detail.txt").read_bytes() == \
        (src / "accuracy/mlperf_log_detail.txt").read_bytes()
    assert "Result is : VALID" in (off.path / "performance/run_1/mlperf_log_summary.txt").read_text()
    assert (off.path / "user.conf").read_bytes() == (runs / "run-offline-sub" / "user.conf").read_bytes()
    # SingleStream: performance files from one run, accuracy files from the other
    assert (single.path / "performance/run_1/mlperf_log_detail.txt").read_bytes() == \
        (runs / "run-single-perf/SingleStream/performance/run_1/mlperf_log_detail.txt").read_bytes()
    assert (single.path / "accuracy/mlperf_log_detail.txt").read_bytes() == \
        (runs / "run-single-acc/SingleStream/accuracy/mlperf_log_detail.txt").read_bytes()

    measurements = json.loads((off.path / "measurements.json").read_text())
    assert sorted(measurements) == sorted(["input_data_types", "retraining", "starting_weights_filename",
                                           "weight_data_types", "weight_transformations"])
    assert all(isinstance(v, str) and v for v in measurements.values())
    readme = (off.path / "README.md").read_text()
    record = json.loads((runs / "run-offline-sub/record.json").read_text())
    assert "run-offline-sub" in readme and record["profile_hash"] in readme
    assert "mlrepro run -p x86-cpu --scenario Offline --mode submission" in readme
    # open division: model mapping, src records, documentation
    assert json.loads((sub / "model_mapping.json").read_text()) == {"tiny-classifier": "resnet"}
    for run_id in ("run-offline-sub", "run-single-perf", "run-single-acc"):
        d = sub / "src" / "mlrepro" / run_id
        assert (d / "run.json").read_bytes() == (runs / run_id / "run.json").read_bytes()
        assert (d / "record.json").read_bytes() == (runs / run_id / "record.json").read_bytes()
        repro = json.loads((d / "reproduce.json").read_text())
        assert repro["run_id"] == run_id and repro["profile_hash"] == record["profile_hash"]
    assert (sub / "src" / "README.md").is_file() and (sub / "documentation" / "README.md").is_file()
    # nothing but divisions in the root; the sidecar sits beside the tree
    assert sorted(p.name for p in tree.iterdir()) == ["open"]
    assert report.sidecar == tmp_path / "submission.mlrepro"
    assert not (report.sidecar / "staging").exists()


def test_systems_json_is_complete(runs: Path, tmp_path: Path) -> None:
    tree = tmp_path / "t"
    report = _collect(valid_runs(runs, "run-offline-sub"), tree, division="open")
    sid = report.systems[0]
    desc = json.loads((tree / "open" / SUBMITTER / "systems" / f"{sid}.json").read_text())
    for spec in load_round().systems.fields:
        if spec.required:
            assert spec.name in desc, spec.name
            assert isinstance(desc[spec.name], str), spec.name
        if spec.meaningful:
            assert desc[spec.name], spec.name
    assert desc["division"] == "open" and desc["submitter"] == SUBMITTER
    assert desc["accelerators_per_node"] == "0"           # a string: 0 would be "empty" to the checker
    assert "is_network" not in desc                       # any value would switch network mode on
    assert desc["status"] == "available" and desc["system_type"] == "datacenter"
    for version in ROUNDS:
        assert system_problems(desc, load_round(version), division="open", submitter=SUBMITTER) == [], version
    system = json.loads((runs / "run-offline-sub" / "system.json").read_text())
    assert desc["host_processor_model_name"] == system["cpu"]["model"]
    # stable id: derived again from the same system description
    report2 = _collect(valid_runs(runs, "run-offline-sub"), tmp_path / "t2")
    assert report2.systems == report.systems


def test_system_overrides_and_given_id(runs: Path, tmp_path: Path) -> None:
    tree = tmp_path / "t"
    report = _collect(valid_runs(runs), tree, system_id="my-box",
                      system_overrides={"status": "preview", "cooling": "air", "system_type": "edge"})
    assert report.systems == ("my-box",)
    desc = json.loads((tree / "open" / SUBMITTER / "systems" / "my-box.json").read_text())
    assert (desc["status"], desc["cooling"], desc["system_type"]) == ("preview", "air", "edge")
    with pytest.raises(CollectInputError):
        _collect(valid_runs(runs), tree, system_id="../evil")


def test_accuracy_log_truncated_and_full_log_kept(runs: Path, tmp_path: Path) -> None:
    tree = tmp_path / "t"
    report = _collect(valid_runs(runs, "run-offline-sub"), tree)
    res = report.placed[0].path
    full_src = (runs / "run-offline-sub/Offline/accuracy/mlperf_log_accuracy.json").read_bytes()
    assert len(full_src) > MAX_ACCURACY_LOG_SIZE            # the fixture's log is big enough to need it
    kept = (res / "accuracy/mlperf_log_accuracy.json").read_bytes()
    assert len(kept) <= MAX_ACCURACY_LOG_SIZE
    assert kept.startswith(full_src[:4096]) and kept.endswith(full_src[-4096:])
    full_copy = report.sidecar / "full_accuracy_logs" / f"{hashlib.sha256(full_src).hexdigest()}.json"
    assert full_copy.read_bytes() == full_src
    assert str(full_copy.relative_to(report.sidecar.parent)) in (res / "README.md").read_text()
    txt = parse_accuracy_txt((res / "accuracy/accuracy.txt").read_text())
    assert txt.metric_line == "accuracy=90.000%"
    assert txt.hash == hashlib.sha256(full_src).hexdigest()


def test_truncation_and_hash_line_units() -> None:
    small = b'[\n{ "seq_id" : 0, "qsl_idx" : 0, "data" : "00" }\n]\n'
    assert truncate_accuracy_log(small) == small
    big = b"[" + b"x" * 50_000 + b"]"
    cut = truncate_accuracy_log(big)
    assert len(cut) <= MAX_ACCURACY_LOG_SIZE and cut == big[:4096] + b"\n\n...\n\n" + big[-4096:]
    assert truncate_accuracy_log(cut) == cut
    digest = "ab" * 32
    assert accuracy_txt_with_hash("accuracy=90.000%\n", digest) == f"accuracy=90.000%\nhash={digest}\n"
    assert accuracy_txt_with_hash(f"accuracy=90.000%\nhash={'cd' * 32}\n\n", digest) == \
        f"accuracy=90.000%\nhash={digest}\n"


def test_collect_twice_changes_nothing(runs: Path, tmp_path: Path) -> None:
    tree = tmp_path / "t"
    first = _collect([runs], tree)
    before = snapshot(tree, first.sidecar)
    second = _collect([runs], tree)
    assert second.placed == () and len(second.unchanged) == 2 and second.written == 0
    assert [r.run_id for r in second.rejected] == [r.run_id for r in first.rejected]
    after = snapshot(tree, first.sidecar)
    after.pop(f"{first.sidecar.name}/./", None)
    before.pop(f"{first.sidecar.name}/./", None)   # the sidecar root holds the lock file and working dirs
    assert after == before                          # bytes and mtimes


def test_different_result_is_a_conflict_unless_forced(runs: Path, tmp_path: Path) -> None:
    tree = tmp_path / "t"
    report = _collect(valid_runs(runs), tree)
    off = next(p for p in report.placed if p.scenario == "Offline")
    readme = off.path / "README.md"
    readme.write_text("edited by hand\n")
    before = contents(tree)
    with pytest.raises(ConflictError) as err:
        _collect(valid_runs(runs), tree)
    assert err.value.path == str(off.path) and str(off.path) in str(err.value)
    assert contents(tree) == before                 # nothing written
    forced = _collect(valid_runs(runs), tree, force=True)
    assert [p.path for p in forced.placed] == [off.path] and forced.placed[0].replaced
    assert readme.read_text() != "edited by hand\n"
    again = _collect(valid_runs(runs), tree)
    assert again.written == 0


def test_newer_run_supersedes_and_needs_force(runs: Path, tmp_path: Path) -> None:
    tree = tmp_path / "t"
    _collect(valid_runs(runs), tree)
    newer = clone_run(runs / "run-offline-sub", tmp_path / "more", "run-offline-sub-2",
                      finished_at="2999-01-01T00:00:00.000Z")
    with pytest.raises(ConflictError):
        _collect(valid_runs(runs) + [newer], tree)
    report = _collect(valid_runs(runs) + [newer], tree, force=True)
    placed = {p.scenario: p for p in report.placed}
    assert placed["Offline"].performance_run == "run-offline-sub-2"
    sup = [r for r in report.rejected if r.run_id == "run-offline-sub"]
    assert sup and sup[0].kind == "superseded" and report.ok
    assert "run-offline-sub-2" in (placed["Offline"].path / "README.md").read_text()


def test_tampered_file_raises_checksum_error_and_places_nothing(runs: Path, tmp_path: Path) -> None:
    detail = runs / "run-single-acc/SingleStream/accuracy/mlperf_log_detail.txt"
    detail.write_bytes(detail.read_bytes().replace(b'"is_error": false', b'"is_error": fals_', 1))
    tree = tmp_path / "t"
    with pytest.raises(ChecksumError) as err:
        _collect(valid_runs(runs), tree)
    assert "mlperf_log_detail.txt" in str(err.value) and err.value.run_dir.endswith("run-single-acc")
    assert not tree.exists()
    assert contents(tmp_path / "t.mlrepro") == {}


def test_checksum_error_leaves_an_existing_tree_alone(runs: Path, tmp_path: Path) -> None:
    tree = tmp_path / "t"
    _collect(valid_runs(runs, "run-offline-sub"), tree)
    before = snapshot(tree)
    (runs / "run-single-perf/user.conf").unlink()                     # listed but missing
    with pytest.raises(ChecksumError, match="missing"):
        _collect(valid_runs(runs), tree)
    (runs / "run-single-acc/checksums.sha256").unlink()               # no manifest at all
    with pytest.raises(ChecksumError, match="checksums.sha256"):
        _collect(valid_runs(runs, "run-single-acc"), tree)
    assert snapshot(tree) == before


def test_unlisted_needed_file_is_a_checksum_error(runs: Path, tmp_path: Path) -> None:
    manifest = runs / "run-offline-sub/checksums.sha256"
    manifest.write_text("".join(line + "\n" for line in manifest.read_text().splitlines()
                                if not line.endswith("record.json")))
    with pytest.raises(ChecksumError, match="not covered"):
        _collect(valid_runs(runs, "run-offline-sub"), tmp_path / "t")


def test_failed_and_invalid_runs_stay_out_of_results(runs: Path, tmp_path: Path) -> None:
    tree = tmp_path / "t"
    report = _collect([runs], tree)
    kinds = {r.run_id: r.kind for r in report.rejected}
    assert kinds == {"run-offline-invalid": "invalid", "run-offline-failed": "failed",
                     "run-multi-perf": "incomplete"}
    assert not report.ok
    placed_runs = {p.performance_run for p in report.placed} | {p.accuracy_run for p in report.placed}
    assert placed_runs == {"run-offline-sub", "run-single-perf", "run-single-acc"}
    results = tree / "open" / SUBMITTER / "results"
    for p in results.rglob("mlperf_log_summary.txt"):
        if "performance" in p.parts:
            assert "Result is : VALID" in p.read_text()
    for rid in ("run-offline-invalid", "run-offline-failed"):
        assert not list(tree.rglob(rid))                       # not in src/ either
        rej = next(r for r in report.rejected if r.run_id == rid)
        assert rej.kept_at == report.sidecar / "rejected" / "open" / SUBMITTER / rid
        rejection = json.loads((rej.kept_at / "rejection.json").read_text())
        assert rejection["kind"] == kinds[rid] and rejection["reasons"]
    invalid = next(r for r in report.rejected if r.run_id == "run-offline-invalid")
    assert any("INVALID" in reason for reason in invalid.reasons)
    failed = next(r for r in report.rejected if r.run_id == "run-offline-failed")
    assert any("exit code 1" in reason for reason in failed.reasons)
    incomplete = next(r for r in report.rejected if r.run_id == "run-multi-perf")
    assert incomplete.kept_at is None and "no accuracy run" in incomplete.reasons[0]


def _inject_loadgen_error(run_dir: Path) -> None:
    detail = next(run_dir.rglob("performance/run_1/mlperf_log_detail.txt"))
    line = (':::MLLOG {"key": "error_runtime", "value": "QuerySamplesComplete for an unknown id", '
            '"time_ms": 1.0, "namespace": "mlperf::logging", "event_type": "POINT_IN_TIME", '
            '"metadata": {"is_error": true, "is_warning": false, "file": "x.cc", "line_no": 1, "pid": 1, '
            '"tid": 1}}\n')
    detail.write_text(detail.read_text() + line)


def test_loadgen_error_and_zero_seed_runs_are_rejected(runs: Path, tmp_path: Path) -> None:
    err_run = clone_run(runs / "run-offline-sub", tmp_path / "more", "run-with-error", edit=_inject_loadgen_error)

    def zero_seeds(run_dir: Path) -> None:
        detail = run_dir / "Offline/performance/run_1/mlperf_log_detail.txt"
        text = detail.read_text()
        text = re.sub(r'("key": "effective_qsl_rng_seed", "value": )\d+', r"\g<1>0", text)
        detail.write_text(text)

    seed_run = clone_run(runs / "run-offline-sub", tmp_path / "more", "run-zero-seed", edit=zero_seeds)
    report = _collect([err_run, seed_run], tmp_path / "t")
    assert report.placed == ()
    reasons = {r.run_id: " ".join(r.reasons) for r in report.rejected}
    assert "LoadGen error" in reasons["run-with-error"] and "unknown id" in reasons["run-with-error"]
    assert "zero RNG seeds" in reasons["run-zero-seed"]
    assert {r.kind for r in report.rejected} == {"invalid"}


def test_closed_division_rejects_short_runs_and_own_models(runs: Path, tmp_path: Path) -> None:
    tree = tmp_path / "t"
    report = _collect(valid_runs(runs), tree, division="closed")
    assert report.placed == ()
    reasons = " ".join(" ".join(r.reasons) for r in report.rejected)
    assert "not an MLPerf benchmark" in reasons and "short run" in reasons
    assert {r.kind for r in report.rejected} == {"not-allowed"}
    assert not (tree / "closed" / SUBMITTER / "results").exists()


def test_model_mapping_sources(runs: Path, tmp_path: Path) -> None:
    # record-level workload.model_mapping (the workload class attribute) wins over describe()
    def record_mapping(run_dir: Path) -> None:
        def fn(d: dict) -> None:
            d["workload"]["model_mapping"] = "retinanet"
            d["workload"]["describe"].pop("model_mapping", None)
        edit_json(run_dir / "record.json", fn)

    r = clone_run(runs / "run-offline-sub", tmp_path / "more", "run-mapped", edit=record_mapping)
    tree = tmp_path / "t"
    report = _collect([r], tree)
    assert report.placed and report.notes == ()
    assert json.loads((tree / "open" / SUBMITTER / "model_mapping.json").read_text()) == \
        {"tiny-classifier": "retinanet"}

    # neither: unknown workloads are rejected; the built-in table covers reference-digits
    def no_mapping(run_dir: Path) -> None:
        edit_json(run_dir / "record.json", lambda d: d["workload"]["describe"].pop("model_mapping"))

    r2 = clone_run(runs / "run-offline-sub", tmp_path / "more2", "run-unmapped", edit=no_mapping)
    report2 = _collect([r2], tmp_path / "t2")
    assert report2.placed == () and report2.rejected[0].kind == "not-allowed"

    def reference(run_dir: Path) -> None:
        def fn(d: dict) -> None:
            d["workload"]["name"] = "reference-digits"
            d["workload"]["benchmark"] = None
            d["workload"]["describe"].pop("model_mapping")
        edit_json(run_dir / "record.json", fn)

    r3 = clone_run(runs / "run-offline-sub", tmp_path / "more3", "run-reference", edit=reference)
    report3 = _collect([r3], tmp_path / "t3")
    assert report3.placed[0].benchmark == "reference-digits" and report3.notes
    assert json.loads((tmp_path / "t3" / "open" / SUBMITTER / "model_mapping.json").read_text()) == \
        {"reference-digits": "resnet"}


def test_model_mapping_merge_and_conflict(runs: Path, tmp_path: Path) -> None:
    tree = tmp_path / "t"
    mapping = tree / "open" / SUBMITTER / "model_mapping.json"
    mapping.parent.mkdir(parents=True)
    mapping.write_text('{"other-model": "bert-99"}')
    _collect(valid_runs(runs), tree)
    assert json.loads(mapping.read_text()) == {"other-model": "bert-99", "tiny-classifier": "resnet"}
    mapping.write_text('{"tiny-classifier": "retinanet"}')
    with pytest.raises(ConflictError, match="model_mapping.json"):
        _collect(valid_runs(runs), tree)


def test_bad_inputs(runs: Path, tmp_path: Path) -> None:
    with pytest.raises(CollectInputError):
        _collect([tmp_path / "nope"], tmp_path / "t")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CollectInputError):
        _collect([tmp_path / "empty"], tmp_path / "t")
    with pytest.raises(CollectInputError):
        collect([runs], tmp_path / "t", submitter="a/b")
    with pytest.raises(CollectInputError):
        collect([runs], tmp_path / "t", submitter="x", division="network")
    with pytest.raises(CollectInputError):
        collect([runs], tmp_path / "t", submitter="x", sidecar=tmp_path / "t" / "side")


def test_parallel_load_gives_the_same_tree(runs: Path, tmp_path: Path) -> None:
    more = tmp_path / "more"
    for i in range(70):
        def sysedit(run_dir: Path, i: int = i) -> None:
            edit_json(run_dir / "system.json", lambda d: d.__setitem__("memory_total_bytes", (i + 1) * 2**30))
        clone_run(runs / "run-offline-sub", more, f"r{i:03d}", edit=sysedit)
    a = _collect([more], tmp_path / "a" / "t", jobs=1, durable=False)
    b = _collect([more], tmp_path / "b" / "t", jobs=2, durable=False)
    assert len(a.placed) == 70 and len(a.systems) == 70
    assert contents(tmp_path / "a" / "t", a.sidecar) == contents(tmp_path / "b" / "t", b.sidecar)
