"""The run-state store: one SQLite database under the state directory.

``$MLREPRO_STATE_DIR`` (default ``~/.local/state/mlrepro``) holds ``state.db``. Several processes may launch,
watch and cancel runs at once: the database runs in WAL mode with a busy timeout, every write is one short
``BEGIN IMMEDIATE`` transaction, and schema creation/migration happens inside such a transaction too, so
concurrent first opens cannot race.

Public API::

    open_store(path=None) -> RunStore            (path: a database file or a directory; default the state dir)
    RunStore.add(record) -> RunRecord            (DuplicateRunError)
    RunStore.update(run_id, *, expect_status=None, **fields) -> RunRecord   (UnknownRunError, StatusConflictError)
    RunStore.get(run_id) -> RunRecord            (UnknownRunError)
    RunStore.find(run_id) -> RunRecord | None
    RunStore.list(*, status=None, profile=None, target=None, scenario=None, mode=None,
                  since=None, limit=None, group=None) -> list[RunRecord]     (newest first)
    RunStore.remove(run_id) -> bool
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlrepro.state.errors import (
    DuplicateRunError,
    StateError,
    StatusConflictError,
    UnknownRunError,
)
from mlrepro.state.status import STATUSES, TERMINAL_STATUSES

STATE_DIR_ENV = "MLREPRO_STATE_DIR"
DB_NAME = "state.db"
SCHEMA_VERSION = 4
BUSY_TIMEOUT_MS = 30_000

# The schema scripts below spell out the statuses and targets of their version (a migration is history); the
# table's CHECK constraint refuses a target the runner table (mlrepro.runners.targets) does not name.


def default_state_dir() -> Path:
    env = os.environ.get(STATE_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".local" / "state" / "mlrepro"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class RunRecord:
    """One launched run, as the state store knows it."""

    run_id: str
    profile: str = ""
    profile_hash: str = ""
    scenario: str = ""
    mode: str = ""
    target: str = "native"                 # a name of the runner table (mlrepro.runners.targets)
    image: str = ""
    status: str = "pending"                # a RunStatus value (mlrepro.state.status)
    exit_code: int | None = None
    result: float | None = None            # the headline metric (samples/s, latency ns ...)
    result_unit: str = ""
    validity: str | None = None            # "VALID" | "INVALID"
    accuracy: float | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    results_location: str = ""             # volume name / PVC / directory
    job_id: str = ""                       # container id / Job name / pid
    message: str = ""
    loadgen_target: dict[str, Any] | None = None   # {setting, value, source, cost_s, measured...}
    group_id: str = ""                     # the launch (or sweep) the run belongs to: one group per invocation
    tokens_per_second: float | None = None  # an LLM run's token throughput (Offline result_tokens_per_second,
                                            # Server/Interactive result_completed_tokens_per_second)
    ttft_p99_ns: float | None = None       # an LLM run's time to first token, 99th percentile (LoadGen's, ns)
    tpot_p99_ns: float | None = None       # an LLM run's time per output token, 99th percentile (ns)
    created_at: datetime | None = None     # set by the store
    updated_at: datetime | None = None     # set by the store

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (datetimes as ISO 8601 strings)."""
        out = asdict(self)
        for k, v in out.items():
            if isinstance(v, datetime):
                out[k] = v.isoformat()
        return out


_FIELDS = tuple(f.name for f in fields(RunRecord))
_TIME_FIELDS = frozenset({"started_at", "ended_at", "created_at", "updated_at"})
_JSON_FIELDS = frozenset({"loadgen_target"})
_UPDATABLE = frozenset(_FIELDS) - {"run_id", "created_at", "updated_at"}

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS runs (
    run_id           TEXT PRIMARY KEY NOT NULL,
    profile          TEXT NOT NULL DEFAULT '',
    profile_hash     TEXT NOT NULL DEFAULT '',
    scenario         TEXT NOT NULL DEFAULT '',
    mode             TEXT NOT NULL DEFAULT '',
    target           TEXT NOT NULL DEFAULT 'native'
                     CHECK (target IN ('native', 'docker', 'kubernetes')),
    image            TEXT NOT NULL DEFAULT '',
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'invalid', 'cancelled',
                                       'timeout')),
    exit_code        INTEGER,
    result           REAL,
    result_unit      TEXT NOT NULL DEFAULT '',
    validity         TEXT,
    accuracy         REAL,
    started_at       TEXT,
    ended_at         TEXT,
    results_location TEXT NOT NULL DEFAULT '',
    job_id           TEXT NOT NULL DEFAULT '',
    message          TEXT NOT NULL DEFAULT '',
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status);
CREATE INDEX IF NOT EXISTS runs_profile ON runs (profile);
CREATE INDEX IF NOT EXISTS runs_created ON runs (created_at);
"""

_SCHEMA_V2 = """
ALTER TABLE runs ADD COLUMN loadgen_target TEXT;
"""

# version 3: runs of one launch or sweep share a group id (`mlrepro runs` shows them together)
_SCHEMA_V3 = """
ALTER TABLE runs ADD COLUMN group_id TEXT NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS runs_group ON runs (group_id);
"""

# version 4: the token figures of LLM runs (tokens/s, TTFT and TPOT p99), NULL for other runs
_SCHEMA_V4 = """
ALTER TABLE runs ADD COLUMN tokens_per_second REAL;
ALTER TABLE runs ADD COLUMN ttft_p99_ns REAL;
ALTER TABLE runs ADD COLUMN tpot_p99_ns REAL;
"""

# version -> script that brings the schema from version-1 to version
_MIGRATIONS: dict[int, str] = {1: _SCHEMA_V1, 2: _SCHEMA_V2, 3: _SCHEMA_V3, 4: _SCHEMA_V4}


def _to_db(name: str, value: Any) -> Any:
    if name in _JSON_FIELDS:
        return None if value is None else json.dumps(value, sort_keys=True, default=str)
    if name in _TIME_FIELDS:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise StateError(f"run field {name}: expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).isoformat(timespec="microseconds")
    return value


def _from_db(name: str, value: Any) -> Any:
    if name in _JSON_FIELDS:
        try:
            return None if value is None else json.loads(value)
        except ValueError:
            return None
    if name in _TIME_FIELDS and value is not None:
        return datetime.fromisoformat(value)
    return value


def _validate(values: dict[str, Any]) -> None:
    status = values.get("status")
    if status is not None and status not in STATUSES:
        raise StateError(f"run status {status!r} is not one of {', '.join(STATUSES)}")
    run_id = values.get("run_id")
    if run_id is not None and (not isinstance(run_id, str) or not run_id):
        raise StateError("run id must be a non-empty string")
    for key in ("exit_code",):
        v = values.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
            raise StateError(f"run field {key}: expected an integer, got {v!r}")
    for key in ("result", "accuracy", "tokens_per_second", "ttft_p99_ns", "tpot_p99_ns"):
        v = values.get(key)
        if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool)):
            raise StateError(f"run field {key}: expected a number, got {v!r}")


class RunStore:
    """A connection to the state database. Safe to share between threads of one process; open one per
    process (``open_store``). Use as a context manager or call :meth:`close`."""

    def __init__(self, db_path: Path) -> None:
        self.path = db_path
        self._lock = threading.RLock()
        try:
            db_path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(db_path), timeout=BUSY_TIMEOUT_MS / 1000,
                                         isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"{db_path}: cannot open the state database ({exc})") from None
        self._conn.row_factory = sqlite3.Row
        try:
            self._setup()
        except sqlite3.Error as exc:
            self._conn.close()
            raise StateError(f"{db_path}: cannot initialise the state database ({exc})") from None

    # -- connection setup ----------------------------------------------------------------------

    def _setup(self) -> None:
        c = self._conn
        c.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._retry(lambda: c.execute("PRAGMA journal_mode = WAL").fetchone())
        c.execute("PRAGMA synchronous = NORMAL")
        c.execute("PRAGMA foreign_keys = ON")
        with self._write() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = cur.execute("SELECT MAX(version) FROM schema_version").fetchone()
            current = row[0] or 0
            if current > SCHEMA_VERSION:
                raise StateError(f"{self.path}: schema version {current} is newer than this mlrepro "
                                 f"({SCHEMA_VERSION}); upgrade mlrepro")
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[version].split(";"):
                    if statement.strip():
                        cur.execute(statement)
                cur.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))

    @staticmethod
    def _retry(fn: Any, attempts: int = 200) -> Any:
        """Retry ``fn`` on 'database is locked' beyond the busy handler (journal-mode switches)."""
        for i in range(attempts):
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc) or i == attempts - 1:
                    raise
                time.sleep(0.01 + 0.001 * i)
        return None

    class _Tx:
        def __init__(self, store: RunStore) -> None:
            self.store = store

        def __enter__(self) -> sqlite3.Cursor:
            self.store._lock.acquire()
            self.cur = self.store._conn.cursor()
            try:
                self.store._retry(lambda: self.cur.execute("BEGIN IMMEDIATE"))
            except BaseException:
                self.store._lock.release()
                raise
            return self.cur

        def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
            try:
                if exc_type is None:
                    self.store._retry(lambda: self.cur.execute("COMMIT"))
                else:
                    self.cur.execute("ROLLBACK")
            finally:
                self.cur.close()
                self.store._lock.release()

    def _write(self) -> RunStore._Tx:
        return RunStore._Tx(self)

    # -- API -----------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> RunStore:  # noqa: PYI034 (typing.Self needs 3.11)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _row(self, row: sqlite3.Row) -> RunRecord:
        return RunRecord(**{k: _from_db(k, row[k]) for k in _FIELDS})

    def add(self, record: RunRecord) -> RunRecord:
        """Insert a new run; ``created_at``/``updated_at`` are set now. Raises DuplicateRunError."""
        values = asdict(record)
        _validate(values)
        now = utcnow()
        values["created_at"] = now
        values["updated_at"] = now
        cols = ", ".join(_FIELDS)
        marks = ", ".join("?" for _ in _FIELDS)
        try:
            with self._write() as cur:
                cur.execute(f"INSERT INTO runs ({cols}) VALUES ({marks})",
                            [_to_db(k, values[k]) for k in _FIELDS])
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc) or "PRIMARY KEY" in str(exc):
                raise DuplicateRunError(record.run_id) from None
            raise StateError(f"{self.path}: cannot add run {record.run_id!r} ({exc})") from None
        except sqlite3.Error as exc:
            raise StateError(f"{self.path}: cannot add run {record.run_id!r} ({exc})") from None
        return replace(record, created_at=values["created_at"], updated_at=values["updated_at"])

    def update(self, run_id: str, *, expect_status: Iterable[str] | None = None, **changes: Any) -> RunRecord:
        """Change fields of a run in one transaction and return the new record.

        ``expect_status``: only update when the run's current status is one of these (compare-and-set, e.g.
        ``expect_status=("pending", "running"), status="cancelled"``); otherwise StatusConflictError.
        """
        unknown = sorted(set(changes) - _UPDATABLE)
        if unknown:
            raise StateError(f"run field {unknown[0]!r} cannot be updated")
        _validate(changes)
        expected = tuple(expect_status) if expect_status is not None else None
        try:
            with self._write() as cur:
                row = cur.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
                if row is None:
                    raise UnknownRunError(run_id)
                if expected is not None and row["status"] not in expected:
                    raise StatusConflictError(run_id, row["status"], expected)
                values = {k: _to_db(k, v) for k, v in changes.items()}
                values["updated_at"] = _to_db("updated_at", utcnow())
                assignments = ", ".join(f"{k} = ?" for k in values)
                cur.execute(f"UPDATE runs SET {assignments} WHERE run_id = ?", [*values.values(), run_id])
                new = cur.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        except sqlite3.Error as exc:
            raise StateError(f"{self.path}: cannot update run {run_id!r} ({exc})") from None
        return self._row(new)

    def find(self, run_id: str) -> RunRecord | None:
        with self._lock:
            try:
                row = self._conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            except sqlite3.Error as exc:
                raise StateError(f"{self.path}: cannot read run {run_id!r} ({exc})") from None
        return None if row is None else self._row(row)

    def get(self, run_id: str) -> RunRecord:
        record = self.find(run_id)
        if record is None:
            raise UnknownRunError(run_id)
        return record

    def resolve(self, text: str) -> RunRecord:
        """The run whose id is ``text``, or the only one whose id contains it (``032059-f306``: what narrow
        tables show). Raises UnknownRunError when none does, BadInputError naming a few when several do."""
        record = self.find(text)
        if record is not None:
            return record
        if not text:
            raise UnknownRunError(text)
        with self._lock:
            try:
                rows = self._conn.execute("SELECT * FROM runs WHERE instr(run_id, ?) > 0 ORDER BY created_at DESC "
                                          "LIMIT 6", (text,)).fetchall()
            except sqlite3.Error as exc:
                raise StateError(f"{self.path}: cannot read runs ({exc})") from None
        if not rows:
            raise UnknownRunError(text)
        if len(rows) > 1:
            from mlrepro.errors import BadInputError

            names = ", ".join(r["run_id"] for r in rows[:3])
            raise BadInputError(f"run {text!r} is ambiguous: {names}{', ...' if len(rows) > 3 else ''}")
        return self._row(rows[0])

    def list(self, *, status: str | Iterable[str] | None = None, profile: str | None = None,
             target: str | None = None, scenario: str | None = None, mode: str | None = None,
             since: datetime | None = None, limit: int | None = None, group: str | None = None) -> list[RunRecord]:
        """Runs matching every given filter, newest first (by creation time)."""
        where: list[str] = []
        args: list[Any] = []
        if status is not None:
            statuses = (status,) if isinstance(status, str) else tuple(status)
            where.append(f"status IN ({', '.join('?' for _ in statuses)})")
            args.extend(statuses)
        for name, value in (("profile", profile), ("target", target), ("scenario", scenario), ("mode", mode),
                            ("group_id", group)):
            if value is not None:
                where.append(f"{name} = ?")
                args.append(value)
        if since is not None:
            where.append("created_at >= ?")
            args.append(_to_db("created_at", since))
        sql = "SELECT * FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, run_id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        with self._lock:
            try:
                rows = self._conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StateError(f"{self.path}: cannot list runs ({exc})") from None
        return [self._row(r) for r in rows]

    def __iter__(self) -> Iterator[RunRecord]:
        return iter(self.list())

    def remove(self, run_id: str) -> bool:
        """Delete a run; True when it existed."""
        try:
            with self._write() as cur:
                cur.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
                return cur.rowcount > 0
        except sqlite3.Error as exc:
            raise StateError(f"{self.path}: cannot remove run {run_id!r} ({exc})") from None

    def schema_version(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)


def open_store(path: str | Path | None = None) -> RunStore:
    """Open (creating if needed) the state database. ``path``: a ``.db`` file, or a directory that holds
    ``state.db``; default ``$MLREPRO_STATE_DIR/state.db`` (``~/.local/state/mlrepro/state.db``)."""
    if path is None:
        db = default_state_dir() / DB_NAME
    else:
        p = Path(path).expanduser()
        db = p if p.suffix in (".db", ".sqlite", ".sqlite3") else p / DB_NAME
    return RunStore(db)
