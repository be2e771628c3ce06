"""The SQLite run-state store: API, validation, schema version, and concurrent writers (multiprocessing)."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mlrepro.state.errors import DuplicateRunError, StateError, StatusConflictError, UnknownRunError
from mlrepro.state.store import SCHEMA_VERSION, RunRecord, open_store


def test_add_get_update_list_remove(tmp_path: Path) -> None:
    t0 = datetime(2026, 1, 2, 3, 4, 5, 600, tzinfo=timezone.utc)
    with open_store(tmp_path) as store:
        added = store.add(RunRecord("r1", profile="x86-cpu", profile_hash="sha256:ab", scenario="Offline",
                                    mode="performance", target="docker", image="img@sha256:00",
                                    started_at=t0, results_location="mlrepro-results", job_id="c0ffee"))
        assert added.created_at is not None and added.status == "pending"
        got = store.get("r1")
        assert got == added and got.started_at == t0
        store.add(RunRecord("r2", profile="x86-cpu", scenario="Server", target="kubernetes"))
        store.add(RunRecord("r3", profile="gpu", scenario="Offline", target="native"))
        up = store.update("r1", status="succeeded", exit_code=0, result=123.5, result_unit="samples/s",
                          validity="VALID", accuracy=97.5, ended_at=t0 + timedelta(seconds=61), message="ok")
        assert up.status == "succeeded" and up.result == 123.5 and up.ended_at == t0 + timedelta(seconds=61)
        assert up.is_terminal and up.updated_at >= up.created_at
        assert [r.run_id for r in store.list()] == ["r3", "r2", "r1"]          # newest first
        assert [r.run_id for r in store.list(profile="x86-cpu")] == ["r2", "r1"]
        assert [r.run_id for r in store.list(status="succeeded")] == ["r1"]
        assert [r.run_id for r in store.list(status=("pending", "running"))] == ["r3", "r2"]
        assert [r.run_id for r in store.list(target="kubernetes", scenario="Server")] == ["r2"]
        assert [r.run_id for r in store.list(limit=1)] == ["r3"]
        assert store.list(since=datetime.now(timezone.utc) + timedelta(hours=1)) == []
        assert up.to_dict()["ended_at"].startswith("2026-01-02T03:05:06")
        assert store.remove("r3") and not store.remove("r3")
        assert store.find("r3") is None
        assert store.schema_version() == SCHEMA_VERSION
    # the same database reopened: data persisted; WAL mode set
    with open_store(tmp_path / "state.db") as store:
        assert store.get("r1").accuracy == 97.5
    conn = sqlite3.connect(tmp_path / "state.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [
        (v,) for v in range(1, SCHEMA_VERSION + 1)]
    conn.close()


def test_a_version_1_database_is_migrated(tmp_path: Path) -> None:
    """A state.db written by an mlrepro before calibration gains the loadgen_target, group_id and token columns,
    keeping its runs."""
    from mlrepro.state.store import _SCHEMA_V1

    conn = sqlite3.connect(tmp_path / "state.db")
    conn.executescript(_SCHEMA_V1 + "CREATE TABLE schema_version (version INTEGER NOT NULL);"
                       "INSERT INTO schema_version VALUES (1);"
                       "INSERT INTO runs (run_id, created_at, updated_at) VALUES ('old', '2026-01-01T00:00:00+00:00',"
                       " '2026-01-01T00:00:00+00:00');")
    conn.close()
    with open_store(tmp_path) as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert store.get("old").loadgen_target is None
        target = {"setting": "offline_expected_qps", "value": 1.5e5, "source": "calibrated", "cost_s": 1.2}
        assert store.update("old", loadgen_target=target).loadgen_target == target
        # version 3: launches and sweeps group their runs
        assert store.get("old").group_id == ""
        store.add(RunRecord("new", group_id="g1"))
        assert [r.run_id for r in store.list(group="g1")] == ["new"]
        # version 4: an LLM run's tokens/s, TTFT and TPOT p99; none for the runs before it
        old = store.get("old")
        assert (old.tokens_per_second, old.ttft_p99_ns, old.tpot_p99_ns) == (None, None, None)
        llm = store.update("new", tokens_per_second=122.9, ttft_p99_ns=2.1e9, tpot_p99_ns=1.8e8)
        assert (llm.tokens_per_second, llm.ttft_p99_ns, llm.tpot_p99_ns) == (122.9, 2.1e9, 1.8e8)
        with pytest.raises(StateError, match="tokens_per_second"):
            store.update("new", tokens_per_second="fast")


def test_errors(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        store.add(RunRecord("r1"))
        with pytest.raises(DuplicateRunError):
            store.add(RunRecord("r1"))
        with pytest.raises(UnknownRunError):
            store.get("nope")
        with pytest.raises(UnknownRunError):
            store.update("nope", status="failed")
        with pytest.raises(StateError, match="status"):
            store.update("r1", status="exploded")
        with pytest.raises(StateError, match="target"):
            store.add(RunRecord("r2", target="mainframe"))
        with pytest.raises(StateError, match="cannot be updated"):
            store.update("r1", created_at=datetime.now(timezone.utc))
        with pytest.raises(StateError):
            store.update("r1", exit_code="zero")
        store.update("r1", status="running")
        with pytest.raises(StatusConflictError) as err:
            store.update("r1", expect_status=("pending",), status="cancelled")
        assert err.value.status == "running"
        assert store.update("r1", expect_status=("pending", "running"), status="cancelled").status == "cancelled"


def test_default_location_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLREPRO_STATE_DIR", str(tmp_path / "state"))
    with open_store() as store:
        assert store.path == tmp_path / "state" / "state.db"
        store.add(RunRecord("r"))
    assert (tmp_path / "state" / "state.db").is_file()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    open_store(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "state.db")
    conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(StateError, match="newer"):
        open_store(tmp_path)


# --- concurrency -----------------------------------------------------------------------------------------

N_PROCS = 6
N_RUNS = 25


def _worker(db: str, wid: int, barrier: mp.synchronize.Barrier, barrier2: mp.synchronize.Barrier,
            out: mp.Queue[object]) -> None:
    try:
        barrier.wait()                                # every process opens (and maybe creates) at once
        with open_store(db) as store:
            for i in range(N_RUNS):
                rid = f"w{wid}-{i}"
                store.add(RunRecord(rid, profile=f"p{wid}", target="docker"))
                store.update(rid, status="running", started_at=datetime.now(timezone.utc))
                store.update(rid, status="succeeded", exit_code=0, result=float(i))
                store.list(status="running", limit=5)
            barrier2.wait()                           # the parent has added the shared runs
            won = 0
            for i in range(N_RUNS):                   # everyone races to cancel the same shared runs
                try:
                    store.update(f"shared-{i}", expect_status=("running",), status="cancelled",
                                 message=f"by {wid}")
                    won += 1
                except StatusConflictError:
                    pass
        out.put(("ok", wid, won))
    except BaseException as exc:  # noqa: BLE001
        out.put(("error", wid, repr(exc)))


def test_concurrent_processes_never_corrupt_the_store(tmp_path: Path) -> None:
    db = tmp_path / "fresh" / "state.db"                # not created yet: the processes race to create it
    ctx = mp.get_context("spawn")
    barrier, barrier2 = ctx.Barrier(N_PROCS + 1), ctx.Barrier(N_PROCS + 1)
    out: mp.Queue[object] = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(db), w, barrier, barrier2, out)) for w in range(N_PROCS)]
    for p in procs:
        p.start()
    barrier.wait()
    with open_store(db) as store:                       # concurrently with the workers' own runs
        for i in range(N_RUNS):
            store.add(RunRecord(f"shared-{i}", status="running"))
    barrier2.wait(timeout=180)
    results = [out.get(timeout=180) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert all(r[0] == "ok" for r in results), results
    with open_store(db) as store:
        runs = store.list()
        assert len(runs) == N_PROCS * N_RUNS + N_RUNS
        mine = [r for r in runs if not r.run_id.startswith("shared-")]
        assert all(r.status == "succeeded" and r.exit_code == 0 for r in mine)
        shared = [r for r in runs if r.run_id.startswith("shared-")]
        cancelled = [r for r in shared if r.status == "cancelled"]
        # each shared run was cancelled at most once (compare-and-set), by exactly one process
        total_won = sum(r[2] for r in results)
        assert total_won == len(cancelled) == N_RUNS
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
