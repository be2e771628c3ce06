"""Calibrated LoadGen targets cached per (profile hash, system fingerprint, scenario) in the state directory.

``$MLREPRO_STATE_DIR/calibration.db`` (SQLite, WAL, one short transaction per write). The launcher hands every
entry of a (profile hash, scenario) to the harness in the run spec (``calibration.cached``, keyed by fingerprint);
the harness uses the one matching the system it runs on (the fingerprint is computed there: a Kubernetes node or
a container may differ from the launching machine), and the record it writes says which target it used.
:func:`remember` reads that record after the run: what a VALID run (or ``mlrepro calibrate``) calibrated is stored
-- the target and, for an LLM's Server and Interactive runs with bounds of their own (the demo), its TTFT/TPOT
bounds --; a cached entry that gave an INVALID run is dropped unless the harness's one automatic recalibration
produced a VALID run, whose target then replaces it.

Public API::

    open_cache(state_dir=None) -> CalibrationCache
    CalibrationCache.entries(profile_hash, scenario) -> dict[fingerprint, entry]
    CalibrationCache.store(profile_hash, scenario, fingerprint, entry) / drop(...) / clear(...)
    remember(cache, record) -> str | None          ("stored" | "dropped" | None)
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlrepro.state.errors import StateError
from mlrepro.state.store import BUSY_TIMEOUT_MS, default_state_dir

DB_NAME = "calibration.db"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS calibrations (
    profile_hash TEXT NOT NULL,
    scenario     TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    entry        TEXT NOT NULL,
    stored_at    TEXT NOT NULL,
    PRIMARY KEY (profile_hash, scenario, fingerprint)
)
"""
#: the fields of a decision a cache entry keeps (beside ``<setting>: value``)
_KEPT = ("measured", "measured_unit", "method", "margin", "tolerance", "cost_s")


class CalibrationCache:
    """A connection to the cache database (thread-safe within a process)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                         check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"{path}: cannot open the calibration cache ({exc})") from None

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def entries(self, profile_hash: str, scenario: str) -> dict[str, dict[str, Any]]:
        """Every cached entry of this profile and scenario, by system fingerprint."""
        with self._lock:
            try:
                rows = self._conn.execute("SELECT fingerprint, entry FROM calibrations WHERE profile_hash = ? "
                                          "AND scenario = ?", (profile_hash, scenario)).fetchall()
            except sqlite3.Error as exc:
                raise StateError(f"{self.path}: cannot read the calibration cache ({exc})") from None
        out: dict[str, dict[str, Any]] = {}
        for fingerprint, text in rows:
            try:
                entry = json.loads(text)
            except ValueError:
                continue
            if isinstance(entry, dict):
                out[fingerprint] = entry
        return out

    def store(self, profile_hash: str, scenario: str, fingerprint: str, entry: Mapping[str, Any]) -> None:
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self._execute("INSERT OR REPLACE INTO calibrations VALUES (?, ?, ?, ?, ?)",
                      (profile_hash, scenario, fingerprint, json.dumps(dict(entry), sort_keys=True), now))

    def drop(self, profile_hash: str, scenario: str, fingerprint: str) -> None:
        self._execute("DELETE FROM calibrations WHERE profile_hash = ? AND scenario = ? AND fingerprint = ?",
                      (profile_hash, scenario, fingerprint))

    def clear(self, profile_hash: str | None = None) -> int:
        """Forget every entry (of one profile hash); returns how many were removed."""
        if profile_hash is None:
            return self._execute("DELETE FROM calibrations", ())
        return self._execute("DELETE FROM calibrations WHERE profile_hash = ?", (profile_hash,))

    def _execute(self, sql: str, args: tuple[Any, ...]) -> int:
        with self._lock:
            try:
                cur = self._conn.execute(sql, args)
                return cur.rowcount
            except sqlite3.Error as exc:
                raise StateError(f"{self.path}: cannot write the calibration cache ({exc})") from None


def open_cache(state_dir: Path | None = None) -> CalibrationCache:
    return CalibrationCache((state_dir or default_state_dir()) / DB_NAME)


_NOT_SETTINGS = ("accuracy-schedule", "failed")     # decision methods whose value is not a setting to reuse


def _reusable(decision: object, sources: tuple[str, ...]) -> bool:
    return isinstance(decision, Mapping) and decision.get("source") in sources and bool(decision.get("value")) \
        and isinstance(decision.get("setting"), str) and decision.get("method") not in _NOT_SETTINGS


def remember(cache: CalibrationCache, record: Mapping[str, Any]) -> str | None:
    """Update the cache from a harness run record (``record.json``). Returns "stored", "dropped" or None.

    Every decision of the run is kept, not only the target (``calibration.targets[0]``): an LLM's Server and
    Interactive runs also decide their TTFT/TPOT bounds (``targets[1:]``, settings ``ttft_latency`` /
    ``tpot_latency``); the demo's are calibrated and are reused like the target (``source`` ``mlperf.conf``: the
    round's bounds, a record, never a setting to pin). A VALID run whose target is calibrated or cached and that
    calibrated any of them stores an entry with every calibrated or cached value (``<setting>: value``), the
    target's details at the top (what older harnesses read) and each decision's under ``details.<setting>``; an
    accuracy run (its target is the accuracy schedule) stores nothing, so it never replaces a performance run's
    entry with bounds alone."""
    calibration = record.get("calibration")
    if not isinstance(calibration, Mapping) or not calibration.get("targets"):
        return None
    decisions = [d for d in calibration["targets"] if isinstance(d, Mapping)]
    fingerprint = calibration.get("fingerprint")
    profile_hash, scenario = record.get("profile_hash"), record.get("scenario")
    if not (isinstance(fingerprint, str) and profile_hash and scenario and decisions):
        return None
    status = (record.get("status") or {}).get("name")
    mode = record.get("mode")
    kept = [d for d in decisions if _reusable(d, ("calibrated", "cached"))]
    # an entry is a whole calibration: the target with the bounds it was found under (an accuracy run's bounds,
    # decided without a target, would replace the entry of the performance run with bounds alone)
    if status == "VALID" and kept and kept[0] is decisions[0] and any(d.get("source") == "calibrated" for d in kept):
        entry: dict[str, Any] = {d["setting"]: d["value"] for d in kept}
        entry.update({"run_id": record.get("run_id"), "mode": mode})
        entry.update({k: decisions[0][k] for k in _KEPT if decisions[0].get(k) is not None})
        entry["details"] = {d["setting"]: {k: d[k] for k in _KEPT if d.get(k) is not None} for d in kept}
        cache.store(profile_hash, scenario, fingerprint, entry)
        return "stored"
    if status == "INVALID" and kept and (calibration.get("dropped_cache")
                                         or any(d.get("source") == "cached" for d in kept)):
        cache.drop(profile_hash, scenario, fingerprint)
        return "dropped"
    return None
