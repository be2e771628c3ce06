"""collect killed with SIGKILL at many points, then run again: the tree ends up complete and identical to a
clean collect, and at no point holds a partial result folder or a stray file."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from results_testutil import SUBMITTER, clone_run, contents, edit_json

from mlrepro.results.submission import PARALLEL_MIN_RUNS, collect

HERE = Path(__file__).parent
N_RUNS = 40


@pytest.fixture
def many_runs(runs: Path, tmp_path: Path) -> Path:
    """N_RUNS valid submission runs on N_RUNS distinct systems: N_RUNS result folders, ~4 units each."""
    more = tmp_path / "many"
    for i in range(N_RUNS):
        def sysedit(run_dir: Path, i: int = i) -> None:
            edit_json(run_dir / "system.json", lambda d: d.__setitem__("memory_total_bytes", (i + 1) * 2**30))
        clone_run(runs / "run-offline-sub", more, f"r{i:03d}", edit=sysedit)
    return more


def _child(tree: Path, kill_at: int, sources: Path, force: bool = False,
           jobs: int | None = None) -> subprocess.Popen:
    args = [sys.executable, str(HERE / "collect_child.py"), str(tree), str(kill_at), str(sources)]
    if force:
        args.append("--force")
    if jobs is not None:
        args.append(f"--jobs={jobs}")
    return subprocess.Popen(args, cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_no_process_mentions(text: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                if text.encode() in cmdline.read_bytes():
                    alive.append(cmdline.parent.name)
            except OSError:
                pass
        if not alive:
            return
        assert time.monotonic() < deadline, f"processes still running for {text}: {alive}"
        time.sleep(0.1)


def _assert_subset(partial: dict[str, bytes], clean: dict[str, bytes]) -> None:
    """Whatever a killed collect left in the tree is a subset of the clean tree, byte for byte."""
    extra = sorted(k for k in partial if k not in clean)
    assert not extra, extra[:5]
    wrong = sorted(k for k in partial if partial[k] != clean[k])
    assert not wrong, wrong[:5]


def _assert_no_partial_result_folders(tree: Path) -> None:
    results = tree / "open" / SUBMITTER / "results"
    if not results.exists():
        return
    for scen in results.glob("*/*/*"):
        names = sorted(p.relative_to(scen).as_posix() for p in scen.rglob("*") if p.is_file())
        assert len(names) == 9, (scen, names)


def test_sigkill_at_commit_points_then_rerun(many_runs: Path, tmp_path: Path) -> None:
    clean_tree = tmp_path / "clean" / "t"
    report = collect([many_runs], clean_tree, submitter=SUBMITTER)
    assert len(report.placed) == N_RUNS
    clean = contents(clean_tree)
    clean_side = contents(report.sidecar)
    units = report.written
    assert units > 3 * N_RUNS
    for n, kill_at in enumerate([0, 1, 2, N_RUNS, units // 2, units - 1]):
        tree = tmp_path / f"k{n}" / "t"
        proc = _child(tree, kill_at, many_runs)
        proc.communicate(timeout=120)
        assert proc.returncode == -signal.SIGKILL, (kill_at, proc.returncode)
        _assert_subset(contents(tree), clean)
        _assert_no_partial_result_folders(tree)
        again = collect([many_runs], tree, submitter=SUBMITTER)
        assert contents(tree) == clean, kill_at
        assert contents(again.sidecar) == clean_side
        assert not (again.sidecar / "staging").exists() and not (again.sidecar / "trash").exists()


def _random_kills(sources: Path, tmp_path: Path, clean: dict[str, bytes], clean_side: dict[str, bytes],
                  jobs: int | None = None, wanted: int = 4, seed: int = 1234) -> None:
    t0 = time.monotonic()
    p = _child(tmp_path / "timing" / "t", -1, sources, jobs=jobs)
    p.communicate(timeout=300)
    assert p.returncode == 0
    whole = time.monotonic() - t0
    rng = random.Random(seed)
    killed = attempts = 0
    while killed < wanted and attempts < 4 * wanted:
        attempts += 1
        tree = tmp_path / f"r{attempts}" / "t"
        proc = _child(tree, -1, sources, jobs=jobs)
        time.sleep(rng.uniform(0.05, 0.9 * whole))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=300)
        killed += proc.returncode == -signal.SIGKILL
        _wait_no_process_mentions(str(tree))           # orphaned pool workers exit on their own
        _assert_subset(contents(tree), clean)
        _assert_no_partial_result_folders(tree)
        collect([sources], tree, submitter=SUBMITTER, jobs=jobs)     # never blocked by a killed run's workers
        assert contents(tree) == clean
        assert contents(tree.parent / "t.mlrepro") == clean_side
    assert killed >= wanted


def test_sigkill_at_random_times_then_rerun(many_runs: Path, tmp_path: Path) -> None:
    clean_tree = tmp_path / "clean" / "t"
    report = collect([many_runs], clean_tree, submitter=SUBMITTER)
    _random_kills(many_runs, tmp_path, contents(clean_tree), contents(report.sidecar))


def test_sigkill_with_worker_processes_then_rerun(runs: Path, tmp_path: Path) -> None:
    more = tmp_path / "pool-runs"
    for i in range(PARALLEL_MIN_RUNS + 6):
        def sysedit(run_dir: Path, i: int = i) -> None:
            edit_json(run_dir / "system.json", lambda d: d.__setitem__("memory_total_bytes", (i + 1) * 2**30))
        clone_run(runs / "run-offline-sub", more, f"p{i:03d}", edit=sysedit)
    clean_tree = tmp_path / "clean" / "t"
    report = collect([more], clean_tree, submitter=SUBMITTER, jobs=2)
    _random_kills(more, tmp_path, contents(clean_tree), contents(report.sidecar), jobs=2, wanted=3, seed=99)


def test_sigkill_during_forced_replacement_then_rerun(many_runs: Path, tmp_path: Path) -> None:
    clean_tree = tmp_path / "clean" / "t"
    collect([many_runs], clean_tree, submitter=SUBMITTER)
    clean = contents(clean_tree)
    tree = tmp_path / "f" / "t"
    collect([many_runs], tree, submitter=SUBMITTER)
    readmes = sorted((tree / "open" / SUBMITTER / "results").glob("*/*/*/README.md"))
    for r in readmes:
        r.write_text("edited\n")
    proc = _child(tree, N_RUNS // 2, many_runs, force=True)
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    _assert_no_partial_result_folders(tree)
    collect([many_runs], tree, submitter=SUBMITTER, force=True)
    assert contents(tree) == clean
