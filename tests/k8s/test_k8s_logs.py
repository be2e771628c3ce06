"""A run's log as the user reads it: the last line also when no newline ends it, and `logs -f` through a
connection that goes silent (a proxy that dropped it without a word): opened again after the read timeout,
each line once. And a Job TTL of 0 (the pods gone before their log is read) is refused with one line."""

from __future__ import annotations

import threading

from kubelet import Ctx, exits
from typer.testing import CliRunner

from mlrepro.cli.main import app

cli = CliRunner()
IMAGE = "registry.test/mlrepro/bench@sha256:" + "ab" * 32


def test_the_last_line_without_a_newline_is_kept(kube, launch, quick_sets):
    kube.scenario(exits(1, "harness: Offline performance", unterminated="harness: the last words, no newline"))
    (run,) = launch(sets=quick_sets).runs
    assert run.status == "failed" and run.exit_code == 1
    assert run.message == "harness exit 1 (RUNTIME_FAILURE): harness: the last words, no newline"
    saved = (kube.state_dir / "runs" / run.run_id / "harness.log").read_text()
    assert saved == "harness: Offline performance\nharness: the last words, no newline\n"
    out = cli.invoke(app, ["logs", run.run_id])
    assert out.exit_code == 0 and out.stdout.splitlines()[-1] == "harness: the last words, no newline"


LINES = [f"harness: line {i}" for i in range(1, 7)]


def silent_connection() -> object:
    """The first follower's stream goes silent after two lines and is never closed; the container writes the
    rest once that follower has connected, and ends (its last words without a newline) once a second stream
    is open."""

    async def scenario(ctx: Ctx) -> None:
        ctx.new_pod()
        buf = ctx.running()
        buf.stall_follow_after = 2
        ctx.log(*LINES[:2])
        while buf.follows < 1 and ctx.alive():
            await ctx.pause(0.02)
        ctx.log(*LINES[2:])
        while buf.follows < 2 and ctx.alive():
            await ctx.pause(0.02)
        buf.write_unterminated("harness: done")
        await ctx.pause(0)
        ctx.terminated(0)
        ctx.job_condition("Complete", succeeded=1)

    return scenario


def test_logs_follow_reopens_a_silent_stream_and_gives_each_line_once(kube, launch, quick_sets, monkeypatch):
    from mlrepro.runners.kubernetes import api
    from mlrepro.state.store import open_store

    monkeypatch.setattr(api, "LOG_READ_TIMEOUT_S", 1.0)      # the default (60 s) is for quiet benchmarks
    kube.scenario(silent_connection())
    done: list = []
    thread = threading.Thread(target=lambda: done.append(launch(sets=quick_sets)), daemon=True)
    thread.start()
    store = open_store(kube.state_dir)
    while not kube.objects("pods"):                            # the run is recorded before its Job is applied
        thread.join(0.05)
    (record,) = store.list()
    result: list = []
    follower = threading.Thread(target=lambda: result.append(cli.invoke(app, ["logs", record.run_id, "-f"])),
                                daemon=True)
    follower.start()
    follower.join(120)
    assert not follower.is_alive(), "logs -f hung on a silent connection"
    thread.join(60)
    (out,) = result
    assert out.exit_code == 0, out.output
    assert out.stdout.splitlines() == [*LINES, "harness: done"]
    assert done and done[0].runs[0].exit_code == 0          # (its results: none, this container wrote no files)


def test_a_job_ttl_of_0_is_refused_in_one_line():
    out = cli.invoke(app, ["launch", "-p", "x86-cpu", "--target", "k8s", "--image", IMAGE,
                           "--set", "job.ttl_seconds=0"])
    assert out.exit_code == 2
    assert out.stderr.strip() == ("mlrepro: error: --set: job.ttl_seconds: must be at least 1 (got 0): with 0 the "
                                  "Job's pods are deleted as soon as it ends, before mlrepro reads their exit code "
                                  "and log")
