"""Agreement with the official MLCommons checker on real submissions: each fixture tree carries the verdict the
official checker (mlcommons/inference tools/submission @ b66003e) gave it. 0 errors where it accepts; an error on
each result folder it rejects and none on those it accepts; one clear error (not a traceback) where it crashes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from check_testutil import REAL_TREES, real_tree, verdict
from typer.testing import CliRunner

from mlrepro.cli.main import app
from mlrepro.results.check import check_tree


def test_every_fixture_is_here() -> None:
    assert len(REAL_TREES) >= 6 and {r for r, _ in REAL_TREES} == {"v5.1", "v6.0", "v6.1"}


@pytest.mark.parametrize(("rnd", "name"), REAL_TREES, ids=[f"{r}/{n}" for r, n in REAL_TREES])
def test_agrees_with_the_official_checker(tmp_path: Path, rnd: str, name: str) -> None:
    official = verdict(rnd, name)
    root = real_tree(tmp_path, rnd, name)
    report = check_tree(root, version=official["version"])
    errors = report.errors
    if official["crashed"]:
        assert errors, "the official checker crashes here: mlrepro must say why"
        assert all(e.path and e.message for e in errors)
        return
    m = re.match(r"Results=(\d+), NoResults=(\d+)", official["summary"])
    assert m, official["summary"]
    accepted, no_results = int(m.group(1)), int(m.group(2))
    assert report.results_checked == accepted + no_results
    rejected = {str(Path(line.split(" ", 1)[1]).parents[2]) for line in official["errors"]
                if line.startswith("NoResults ")}
    assert len(rejected) == no_results
    for row in report.rows:
        covering = [e for e in errors if e.scope and e.covers(row.path)]
        if row.path in rejected:
            assert covering, f"the official checker rejects {row.path}; mlrepro has no error on it"
        else:
            assert not covering, [str(e) for e in covering]
    if official["exit_code"] == 0:
        assert report.ok and not errors, [str(e) for e in errors]


@pytest.mark.parametrize(("rnd", "name"), REAL_TREES, ids=[f"{r}/{n}" for r, n in REAL_TREES])
def test_cli_exit_code_matches_and_never_a_traceback(tmp_path: Path, rnd: str, name: str) -> None:
    official = verdict(rnd, name)
    root = real_tree(tmp_path, rnd, name)
    result = CliRunner().invoke(app, ["check", str(root), "--version", official["version"]])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert result.exit_code == (0 if official["exit_code"] == 0 else 1), result.output


def test_intel_tree_without_results_folder_names_it(tmp_path: Path) -> None:
    root = real_tree(tmp_path, "v5.1", "closed_Intel_VMware")
    report = check_tree(root, version="v5.1")
    assert [(e.code, e.path) for e in report.errors if e.code == "RESULTS_DIR_MISSING"] == \
        [("RESULTS_DIR_MISSING", "closed/Intel_VMware/results")]


def test_the_stage_sdxl_without_images(tmp_path: Path) -> None:
    root = real_tree(tmp_path, "v5.1", "closed_The_Stage")
    report = check_tree(root, version="v5.1")
    assert sorted((e.code, e.path) for e in report.errors) == [
        ("EXTRA_ACCURACY_FILES", f"closed/The_Stage/results/h100_x8/stable-diffusion-xl/{s}/accuracy/images")
        for s in ("offline", "server")]
