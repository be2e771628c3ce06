"""The laptop path as users live it, on a real engine: results on the host owned by the invoking user, prune,
runs that talk while they go (under a pseudo-terminal), tables that fit 80 columns."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlrepro.flow import PipelineOptions, run_pipeline
from mlrepro.profiles import resolve_profile

pytestmark = [pytest.mark.docker]

REPO = Path(__file__).resolve().parents[2]
QUICK = ["-p", "x86-cpu", "-f", "air-gapped", "-f", "quick", "--scenario", "Offline", "--mode", "performance"]
TEST_USER = "mlrepro-test"


def _cli(*args: str, state: Path, user: str | None = None, env: dict[str, str] | None = None,
         timeout: float = 600) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "mlrepro.cli.main", *args]
    if user is not None:
        argv = ["runuser", "-u", user, "--", *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env={**os.environ, "MLREPRO_STATE_DIR": str(state), **(env or {})})


@pytest.fixture(scope="module")
def user():  # noqa: ANN201
    """A non-root user who may use the engine (the docker group), as on a developer's laptop. The test machine's
    Python may live under root's home: the user is let through the folders above it (restored afterwards)."""
    import stat

    if os.getuid() != 0:
        pytest.skip("creating the test user needs root (CI runs as root)")
    try:
        account = pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--groups", "docker", TEST_USER], check=True)
        account = pwd.getpwnam(TEST_USER)
    opened: list[tuple[Path, int]] = []
    for folder in Path(os.path.realpath(sys.executable)).parents:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            opened.append((folder, mode))
            folder.chmod(mode | stat.S_IXOTH)
    try:
        yield account
    finally:
        for folder, mode in opened:
            folder.chmod(stat.S_IMODE(mode))


def test_results_dir_is_owned_by_the_invoking_user(user: pwd.struct_passwd, x86_image: str, tmp_path: Path) -> None:
    home = Path(user.pw_dir)
    work = home / f"work-{tmp_path.name}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    os.chown(work, user.pw_uid, user.pw_gid)
    state = work / "state"
    r = _cli("launch", *QUICK, "--image", x86_image, "--results-dir", str(work / "results"), "--output", "json",
             state=state, user=TEST_USER)
    assert r.returncode == 0, r.stderr
    (run,) = json.loads(r.stdout)["runs"]
    host = work / "results" / run["run_id"]
    files = [p for p in host.rglob("*")]
    assert (host / "record.json").is_file() and files
    assert {p.stat().st_uid for p in [host, *files]} == {user.pw_uid}       # the user's, not uid 10001's
    assert run["status"] == "succeeded"
    # a missing parent is an error before anything runs, not a directory made silently
    r = _cli("launch", *QUICK, "--image", x86_image, "--results-dir", str(work / "nope" / "dir"), state=state,
             user=TEST_USER)
    assert r.returncode == 2 and "does not exist" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (work / "nope").exists()
    shutil.rmtree(work, ignore_errors=True)


def test_results_dir_as_root_ends_owned_by_root(docker_client, x86_image: str, tmp_path: Path,  # noqa: ANN001
                                                state: Path) -> None:
    resolved = resolve_profile("x86-cpu", ["air-gapped", "quick"], ["benchmark.modes=[performance]"])
    result = run_pipeline(resolved, PipelineOptions(target="docker", image=x86_image, collect=False, into=None,
                                                    results_dir=tmp_path / "res"))
    (run,) = result.runs
    assert run.status == "succeeded", run.message
    host = tmp_path / "res" / run.run_id                                     # <results-dir>/<run id>/
    assert (host / "record.json").is_file()
    assert {p.stat().st_uid for p in [host, *host.rglob("*")]} == {0}      # root ran the container as 10001
    # the user's directory stays after the fetch; a volume was never made
    import docker

    with pytest.raises(docker.errors.NotFound):
        docker_client.volumes.get(f"mlrepro-results-{run.run_id}")


def test_prune_dry_run_then_for_real(docker_client, x86_image: str, tmp_path: Path, state: Path) -> None:  # noqa: ANN001
    from mlrepro.state.store import open_store, utcnow

    resolved = resolve_profile("x86-cpu", ["air-gapped", "quick"], ["benchmark.modes=[performance]"])
    result = run_pipeline(resolved, PipelineOptions(target="docker", image=x86_image, collect=False, into=None,
                                                    keep_results=True))
    (kept,) = result.runs
    volume = f"mlrepro-results-{kept.run_id}"
    from mlrepro.state.state_id import STATE_ID_LABEL, state_id, state_labels

    labels = docker_client.volumes.get(volume).attrs["Labels"]                 # kept (--keep-volume)
    assert labels[STATE_ID_LABEL] == state_id(state)                           # made by this state directory
    # a stopped container of a run that ended, and an old run
    stray = docker_client.containers.create(x86_image, ["true"], labels={"mlrepro.io/run-id": kept.run_id,
                                                                         **state_labels(state)})
    from datetime import timedelta

    from mlrepro.state.store import RunRecord

    with open_store(state) as store:
        store.add(RunRecord("old-run", profile="x86-cpu", status="succeeded", target="native",
                            ended_at=utcnow() - timedelta(days=30)))
    dry = _cli("prune", "--older-than", "7d", "--dry-run", "--output", "json", state=state)
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    names = {(i["kind"], i["name"]) for i in plan["items"]}
    assert ("volume", volume) in names and ("container", stray.name) in names and ("run", "old-run") in names
    assert plan["dry_run"] is True
    docker_client.volumes.get(volume)                                          # a dry run removes nothing
    table = _cli("prune", "--older-than", "7d", state=state)
    assert table.returncode == 0, table.stderr
    assert "removed" in table.stdout and "freed" in table.stdout
    import docker

    with pytest.raises(docker.errors.NotFound):
        docker_client.volumes.get(volume)
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(stray.id)
    with open_store(state) as store:
        assert store.find("old-run") is None and store.find(kept.run_id) is not None
    assert (kept.results_dir / "checksums.sha256").is_file()                   # the verified copy stays


def test_a_run_talks_while_it_goes(x86_image: str, tmp_path: Path) -> None:
    """Under a pseudo-terminal (as a user sees it): calibration probes, the running phase with elapsed time and
    samples, writing the record; then a results table that fits 80 columns with whole run ids."""
    state = tmp_path / "state"
    argv = [sys.executable, "-m", "mlrepro.cli.main", "run", *QUICK, "--target", "docker", "--image", x86_image,
            "--no-collect", "--set", "benchmark.settings.min_duration_ms=12000"]
    env = {**os.environ, "MLREPRO_STATE_DIR": str(state), "COLUMNS": "80", "TERM": "xterm"}
    text = _run_on_pty(argv, env)
    assert "calibration probe offline-" in text
    assert "Offline performance: running " in text and "samples" in text and "(min duration 12 s)" in text
    assert "writing the run record and checksums" in text
    table = text[text.index("mlrepro results"):]
    assert all(len(line) <= 80 for line in table.splitlines())
    runs = json.loads(_cli("runs", "--output", "json", state=state).stdout)
    assert runs[0]["run_id"] in table                                            # whole, not folded


def _run_on_pty(argv: list[str], env: dict[str, str]) -> str:
    import pty

    chunks: list[bytes] = []

    def read(fd: int) -> bytes:
        data = os.read(fd, 4096)
        chunks.append(data)
        return data

    old = os.getcwd()
    os.chdir(REPO)
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        status = pty.spawn(argv, read)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        os.chdir(old)
    assert os.waitstatus_to_exitcode(status) == 0, b"".join(chunks).decode(errors="replace")[-3000:]
    import re

    text = b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)          # colours and cursor codes of a terminal
