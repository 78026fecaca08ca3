"""Measurements in SQLite, appended as they arrive so a crash or a cancel loses nothing."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from advisor.errors import StoreError
from advisor.schemas import Measurement

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    backend TEXT NOT NULL,
    complete INTEGER NOT NULL DEFAULT 0,
    report_json TEXT
);
CREATE TABLE IF NOT EXISTS measurements (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    probe TEXT NOT NULL,
    model TEXT NOT NULL,
    data_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS measurements_run ON measurements(run_id);
"""


BUSY_TIMEOUT_S = 30.0  # how long a write waits for another process's lock before giving up
RUN_STATUSES = ("complete", "incomplete", "cancelled", "failed")


class MeasurementStore:
    """A small append-only SQLite store; one connection, committed per measurement.

    A store locked by another process (a second calibration, the app) is waited for up to `busy_timeout_s`;
    a lock held longer, a full disk or any other write failure raises StoreError, never a silent loss.
    """

    def __init__(self, path: Path, *, busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=busy_timeout_s, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                f"cannot open the measurement store '{self.path}' ({exc}); set ADVISOR_STORE to a writable file path"
            ) from exc
        try:
            self.conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            self.conn.executescript(SCHEMA)
        except sqlite3.Error as exc:
            self.conn.close()
            raise self._error("open", exc) from exc

    def _error(self, doing: str, exc: sqlite3.Error) -> StoreError:
        """A StoreError that says which of the usual causes it is and what to do."""
        text = str(exc)
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF  # the primary code of an extended one
        if code == sqlite3.SQLITE_FULL or "full" in text:
            why = "the disk is full; free space there or set ADVISOR_STORE to a file on another disk"
        elif code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in text:
            why = (
                f"another process held the store locked for more than {self.busy_timeout_s:g} s; let the other "
                "calibration finish or close the app using it, or set ADVISOR_STORE to another file"
            )
        elif code == sqlite3.SQLITE_READONLY or "readonly" in text:
            why = "the file is read-only; set ADVISOR_STORE to a writable file path"
        else:
            why = "is the disk full or the file damaged? set ADVISOR_STORE to another file to start afresh"
        return StoreError(f"cannot {doing} the measurement store '{self.path}' ({text}): {why}")

    def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        try:
            with self.conn:
                self.conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise self._error("write to", exc) from exc

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._error("read", exc) from exc

    def start_run(self, run_id: str, created_at: str, backend: str) -> None:
        self._write(
            "INSERT OR IGNORE INTO runs(run_id, created_at, backend) VALUES (?, ?, ?)", (run_id, created_at, backend)
        )

    def add(self, m: Measurement) -> None:
        self._write(
            "INSERT INTO measurements(run_id, kind, probe, model, data_json) VALUES (?, ?, ?, ?, ?)",
            (m.run_id, m.kind, m.probe, m.model, m.model_dump_json()),
        )

    def finish_run(self, report: dict[str, Any]) -> None:
        """Keep the run's summary (measurements are already stored row by row)."""
        summary = {k: v for k, v in report.items() if k != "measurements"}
        self.start_run(report["run_id"], report["created_at"], report["backend"]["kind"])
        self._write(
            "UPDATE runs SET complete = ?, report_json = ? WHERE run_id = ?",
            (int(bool(report.get("complete"))), json.dumps(summary), report["run_id"]),
        )

    def count(self, run_id: str) -> int:
        """How many measurements are stored for a run (to compare with how many the run measured)."""
        return int(self._read("SELECT COUNT(*) FROM measurements WHERE run_id = ?", (run_id,))[0][0])

    def runs(self) -> list[dict[str, Any]]:
        """Past runs, newest first: summaries when the run finished, the models measured and a status.

        status is one of RUN_STATUSES: complete; cancelled (by the user or a signal); failed (finished
        with nothing measured); incomplete (finished with errors, or never finished: killed or still running).
        """
        rows = self._read(
            "SELECT r.run_id, r.created_at, r.backend, r.complete, r.report_json, COUNT(m.id) "
            "FROM runs r LEFT JOIN measurements m ON m.run_id = r.run_id GROUP BY r.run_id ORDER BY r.created_at DESC"
        )
        measured: dict[str, list[str]] = {}
        for run_id, model in self._read(
            "SELECT run_id, model FROM measurements GROUP BY run_id, model ORDER BY MIN(id)"
        ):
            measured.setdefault(run_id, []).append(model)
        listing = []
        for run_id, created_at, backend, complete, report_json, n in rows:
            report = _summary(report_json)
            listing.append(
                {
                    "run_id": run_id,
                    "created_at": created_at,
                    "backend": backend,
                    "complete": bool(complete),
                    "report": report,
                    "measurements": n,
                    "models": _models(report, measured.get(run_id, [])),
                    "status": _status(bool(complete), report, n),
                }
            )
        return listing

    def measurements(self, run_id: str | None = None) -> list[Measurement]:
        sql, params = "SELECT data_json FROM measurements", tuple[str, ...]()
        if run_id:
            sql, params = sql + " WHERE run_id = ?", (run_id,)
        return [Measurement.model_validate_json(r[0]) for r in self._read(sql + " ORDER BY id", params)]

    def close(self) -> None:
        self.conn.close()


def _summary(report_json: str | None) -> dict[str, Any] | None:
    """A stored run summary, or None when there is none or it cannot be read."""
    try:
        report = json.loads(report_json) if report_json else None
    except ValueError:
        return None
    return report if isinstance(report, dict) else None


def _models(report: dict[str, Any] | None, measured: list[str]) -> list[str]:
    """Models of a run in run order: those the summary lists, then any measured but not summarised."""
    listed = [m["model"] for m in (report or {}).get("models") or [] if isinstance(m, dict) and m.get("model")]
    return list(dict.fromkeys([*listed, *measured]))


def _status(complete: bool, report: dict[str, Any] | None, n_measurements: int) -> str:
    if complete:
        return "complete"
    if report is None:
        return "incomplete"  # never finished: killed, crashed or still running
    if report.get("status") in RUN_STATUSES:
        return str(report["status"])
    errors = [str(e.get("error", "")) for e in report.get("errors") or [] if isinstance(e, dict)]
    if report.get("cancelled") or any("cancelled" in e or "interrupted" in e for e in errors):
        return "cancelled"
    return "failed" if n_measurements == 0 else "incomplete"
