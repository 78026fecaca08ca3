"""The measurement store under faults: a lock held by another process, a full disk, and the past-runs listing."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from advisor.errors import StoreError
from advisor.schemas import Measurement
from advisor.store import BUSY_TIMEOUT_S, RUN_STATUSES, MeasurementStore

HOLD_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
conn.close()
"""


def measurement(run_id: str = "run-1", model: str = "m1", probe: str = "decode@64") -> Measurement:
    return Measurement(
        run_id=run_id,
        kind="speed",
        probe=probe,
        category="speed",
        repetition=1,
        backend="openai",
        backend_version="test",
        model=model,
        model_identity=f"served:{model}",
        quantization="Q4_K_M",
        context_size=None,
        hardware_fingerprint="fp",
        decode_tps=42.0,
    )


@contextmanager
def locked_by_another_process(path: Path, hold_s: float) -> Iterator[subprocess.Popen[str]]:
    """A second process holding an exclusive lock on the store for `hold_s` seconds."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path), str(hold_s)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()


def test_a_write_waits_for_another_process_lock(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    store = MeasurementStore(path)
    try:
        store.start_run("run-1", "2026-12-03T10:00:00+00:00", "openai")
        with locked_by_another_process(path, hold_s=1.0):
            started = time.perf_counter()
            store.add(measurement())  # blocks until the other process lets go, then succeeds
            waited = time.perf_counter() - started
        assert waited >= 0.5
        assert store.count("run-1") == 1
    finally:
        store.close()


def test_a_lock_held_past_the_busy_timeout_is_a_store_error_saying_so(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    store = MeasurementStore(path, busy_timeout_s=0.3)
    try:
        with locked_by_another_process(path, hold_s=30):
            with pytest.raises(StoreError, match=r"locked for more than 0\.3 s.*ADVISOR_STORE"):
                store.add(measurement())
    finally:
        store.close()


def test_the_default_busy_timeout_is_set_on_the_connection(tmp_path: Path) -> None:
    store = MeasurementStore(tmp_path / "m.sqlite")
    try:
        assert BUSY_TIMEOUT_S >= 30
        assert store.conn.execute("PRAGMA busy_timeout").fetchone()[0] == int(BUSY_TIMEOUT_S * 1000)
    finally:
        store.close()


def test_a_full_disk_is_a_store_error_and_earlier_rows_are_kept(tmp_path: Path) -> None:
    store = MeasurementStore(tmp_path / "m.sqlite")
    try:
        store.start_run("run-1", "2026-12-03T10:00:00+00:00", "openai")
        pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
        # SQLite answers SQLITE_FULL, exactly as on a full disk, once the file would pass this size.
        store.conn.execute(f"PRAGMA max_page_count = {pages + 2}")
        written = 0
        with pytest.raises(StoreError, match="disk is full"):
            for _ in range(10_000):
                store.add(measurement())
                written += 1
        assert written > 0
        assert store.count("run-1") == written  # every row before the failure is still there
    finally:
        store.close()


def test_an_unopenable_store_names_the_file_and_the_fix(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="ADVISOR_STORE"):
        MeasurementStore(blocker / "m.sqlite")


def test_count_is_per_run(tmp_path: Path) -> None:
    store = MeasurementStore(tmp_path / "m.sqlite")
    try:
        for _ in range(3):
            store.add(measurement("a"))
        store.add(measurement("b"))
        assert (store.count("a"), store.count("b"), store.count("nope")) == (3, 1, 0)
    finally:
        store.close()


def summary(run_id: str, *, complete: bool, models: list[str], errors: list[str] | None = None) -> dict[str, object]:
    return {
        "run_id": run_id,
        "created_at": f"2026-12-03T10:00:0{run_id[-1]}+00:00",
        "backend": {"kind": "openai", "version": "test"},
        "models": [{"model": m} for m in models],
        "measurements": [],
        "errors": [{"model": models[0] if models else "m", "step": "x", "error": e} for e in errors or []],
        "complete": complete,
    }


def test_runs_list_models_and_status_and_keep_the_existing_keys(tmp_path: Path) -> None:
    store = MeasurementStore(tmp_path / "m.sqlite")
    try:
        # run1: complete, two models
        store.start_run("run1", "2026-12-03T10:00:01+00:00", "openai")
        store.add(measurement("run1", "m1"))
        store.add(measurement("run1", "m2"))
        store.finish_run(summary("run1", complete=True, models=["m1", "m2"]))
        # run2: cancelled by the user after one measurement
        store.start_run("run2", "2026-12-03T10:00:02+00:00", "openai")
        store.add(measurement("run2", "m1"))
        store.finish_run(summary("run2", complete=False, models=["m1"], errors=["cancelled by the user"]))
        # run3: finished with nothing measured (the server was unreachable)
        store.start_run("run3", "2026-12-03T10:00:03+00:00", "openai")
        store.finish_run(summary("run3", complete=False, models=[], errors=["cannot connect"]))
        # run4: killed before it could write a summary; its rows name the model
        store.start_run("run4", "2026-12-03T10:00:04+00:00", "ollama")
        store.add(measurement("run4", "qwen3:0.6b"))
        # run5: finished with an error after some measurements
        store.start_run("run5", "2026-12-03T10:00:05+00:00", "openai")
        store.add(measurement("run5", "m1"))
        store.finish_run(summary("run5", complete=False, models=["m1"], errors=["HTTP 500"]))
        # run6: interrupted by a signal
        store.start_run("run6", "2026-12-03T10:00:06+00:00", "openai")
        store.finish_run(summary("run6", complete=False, models=[], errors=["interrupted (Ctrl-C or SIGTERM)"]))

        runs = {r["run_id"]: r for r in store.runs()}
    finally:
        store.close()
    assert [r for r in runs] == ["run6", "run5", "run4", "run3", "run2", "run1"]  # newest first
    for run in runs.values():
        assert {"run_id", "created_at", "backend", "complete", "report", "measurements"} <= set(run)
        assert run["status"] in RUN_STATUSES
    assert (runs["run1"]["status"], runs["run1"]["models"], runs["run1"]["measurements"]) == (
        "complete",
        ["m1", "m2"],
        2,
    )
    assert runs["run1"]["complete"] is True and runs["run1"]["report"]["models"] == [{"model": "m1"}, {"model": "m2"}]
    assert runs["run2"]["status"] == "cancelled"
    assert (runs["run3"]["status"], runs["run3"]["models"]) == ("failed", [])
    assert (runs["run4"]["status"], runs["run4"]["models"], runs["run4"]["report"]) == (
        "incomplete",
        ["qwen3:0.6b"],
        None,
    )
    assert runs["run5"]["status"] == "incomplete"
    assert runs["run6"]["status"] == "cancelled"


def test_runs_survive_a_damaged_summary(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    store = MeasurementStore(path)
    try:
        store.start_run("run1", "2026-12-03T10:00:01+00:00", "openai")
        with sqlite3.connect(path) as other:
            other.execute("UPDATE runs SET report_json = ? WHERE run_id = 'run1'", ("{not json",))
        other.close()
        (run,) = store.runs()
        assert run["report"] is None and run["status"] == "incomplete"
        store.finish_run({**summary("run1", complete=False, models=["m"]), "status": "cancelled"})
        assert store.runs()[0]["status"] == "cancelled"  # an explicit status in the summary wins
        assert json.loads(store.conn.execute("SELECT report_json FROM runs").fetchone()[0])["status"] == "cancelled"
    finally:
        store.close()
