"""The embedded engine in its worker process: real SmolLM2, real signals, nothing measured is lost."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from advisor.backends.base import GenerationRequest
from advisor.backends.embedded import DEFAULT_MODEL, EmbeddedBackend
from advisor.calibrate import calibrate, load_suite
from advisor.settings import DEFAULT_SUITE
from tests.conftest import write_short_suite

pytestmark = pytest.mark.slow
LONG = GenerationRequest(prompt="Write a very long story about the sea. Do not stop.", max_tokens=1500, timeout_s=120)


def workers_of(pid: int) -> list[psutil.Process]:
    """llama.cpp worker processes under a process."""
    found = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if "advisor.backends.llama_worker" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def stored_rows(store: Path) -> int:
    if not store.exists():
        return 0
    try:
        with sqlite3.connect(store, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0])
    except sqlite3.Error:
        return 0


def start_cli(home: Path, out: Path) -> subprocess.Popen[str]:
    """A quick CLI calibration whose speed probe is prefill@128 alone (no prefill@512, the slowest request): the
    faults below are injected after the first one or two rows, and all the quick tasks still follow them."""
    suite = write_short_suite(
        home.parent / "suite.yaml", prefill=(128,), tasks=load_suite(DEFAULT_SUITE).quick_tasks, repetitions=3
    )
    env = {**os.environ, "ADVISOR_HOME": str(home)}
    cmd = [sys.executable, "-m", "advisor", "calibrate", "--quick", "--no-probe", "--suite", str(suite)]
    return subprocess.Popen(
        [*cmd, "--json", str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for_rows(proc: subprocess.Popen[str], store: Path, n: int, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while stored_rows(store) < n:
        assert proc.poll() is None, "the calibration ended before the fault could be injected"
        assert time.monotonic() < deadline, f"fewer than {n} rows stored in {timeout_s} s"
        time.sleep(0.2)


# One signal through the CLI: SIGSEGV and SIGKILL take the same path (the worker's exit is read, the signal named
# from one table in advisor/backends/embedded.py, the run kept); SIGKILL's own wording is checked through the API
# in test_a_worker_killed_during_calibration_through_the_api, SIGSEGV's through the app in test_app.py.
@pytest.mark.parametrize("sig", [signal.SIGSEGV])
def test_a_dead_worker_is_one_line_and_every_measurement_is_kept(tmp_path: Path, sig: signal.Signals) -> None:
    home, out = tmp_path / "home", tmp_path / "out.json"
    proc = start_cli(home, out)
    wait_for_rows(proc, home / "measurements.sqlite", 2)
    [worker] = workers_of(proc.pid)
    os.kill(worker.pid, sig)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and sig.name in last and DEFAULT_MODEL in last, last
    assert "doctor" in last and "Traceback" not in stderr
    report = json.loads(out.read_text())
    assert report["complete"] is False and report["status"] == "failed"
    assert sig.name in report["errors"][0]["error"]
    assert len(report["measurements"]) >= 2
    assert stored_rows(home / "measurements.sqlite") == len(report["measurements"])
    assert not list(tmp_path.glob(".*.tmp")), "no stray temp file next to the report"


def test_sigterm_to_the_cli_writes_the_report_and_leaves_no_worker(tmp_path: Path) -> None:
    home, out = tmp_path / "home", tmp_path / "out.json"
    proc = start_cli(home, out)
    wait_for_rows(proc, home / "measurements.sqlite", 1)
    workers = workers_of(proc.pid)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    report = json.loads(out.read_text())
    assert report["status"] == "interrupted" and report["complete"] is False
    assert stored_rows(home / "measurements.sqlite") == len(report["measurements"]) >= 1
    psutil.wait_procs(workers, timeout=10)
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)


def test_a_worker_killed_during_calibration_through_the_api() -> None:
    backend = EmbeddedBackend()
    seen: list[int] = []

    def on_progress(progress: object) -> None:
        if getattr(progress, "measurement", None) is not None:
            seen.append(1)
            if len(seen) == 3 and backend.worker_pid:
                os.kill(backend.worker_pid, signal.SIGKILL)

    # prefill@128 and decode@64 only (no prefill@512, the slowest request): the kill comes at the third measurement.
    suite = replace(load_suite(DEFAULT_SUITE), prefill_prompt_tokens=(128,))
    try:
        report = calibrate(
            backend,
            [DEFAULT_MODEL],
            suite,
            hardware={"fingerprint": "hw-test"},
            quick=True,
            on_progress=on_progress,
        )
    finally:
        backend.close()
    assert report["status"] == "failed"
    assert "SIGKILL" in report["errors"][0]["error"] and "out of memory" in report["errors"][0]["error"]
    assert len(report["measurements"]) == 3
    assert report["models"][0]["device"] == "cpu"


def test_a_hung_worker_is_killed_at_the_deadline_and_replaced() -> None:
    backend = EmbeddedBackend()
    backend.load(DEFAULT_MODEL)
    first = backend.worker_pid
    assert first is not None

    def freeze(kind: str, text: str) -> None:
        if backend.worker_pid == first:
            os.kill(first, signal.SIGSTOP)  # a hang: the process lives but sends nothing more

    try:
        started = time.perf_counter()
        result = backend.generate(
            DEFAULT_MODEL, GenerationRequest(prompt="Tell a story.", max_tokens=200, timeout_s=3), on_chunk=freeze
        )
        assert result.timed_out and result.stream_status == "timed_out"
        assert time.perf_counter() - started < 3 + 10
        assert not psutil.pid_exists(first) or psutil.Process(first).status() == psutil.STATUS_ZOMBIE
        again = backend.generate(DEFAULT_MODEL, GenerationRequest(prompt="Say hi.", max_tokens=8))
        assert again.answer_text.strip() and not again.timed_out
        assert backend.worker_pid not in (None, first)
    finally:
        backend.close()


def test_abort_stops_a_long_request_at_once() -> None:
    backend = EmbeddedBackend()
    backend.load(DEFAULT_MODEL)
    started: list[float] = []

    def on_chunk(kind: str, text: str) -> None:
        if not started:
            started.append(time.perf_counter())
            threading.Timer(0.3, backend.abort).start()

    try:
        result = backend.generate(DEFAULT_MODEL, LONG, on_chunk=on_chunk)
        took = time.perf_counter() - started[0]
    finally:
        backend.close()
    assert result.error == "cancelled by the user" and result.stream_status == "error"
    assert took < 10, f"cancel took {took:.1f} s"


def test_the_app_process_never_loads_llama_cpp() -> None:
    """The parent only spawns the worker: a native crash can only take the worker down."""
    code = (
        "import sys\n"
        "from advisor.backends.embedded import EmbeddedBackend, DEFAULT_MODEL\n"
        "from advisor.backends.base import GenerationRequest\n"
        "b = EmbeddedBackend(); b.load(DEFAULT_MODEL)\n"
        "r = b.generate(DEFAULT_MODEL, GenerationRequest(prompt='Hi', max_tokens=4)); b.close()\n"
        "assert r.total_chunks > 0\n"
        "print('llama_cpp' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_doctor_checks_the_engine_in_a_worker(tmp_path: Path) -> None:
    env = {**os.environ, "ADVISOR_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-m", "advisor", "doctor"], capture_output=True, text=True, env=env, timeout=600
    )
    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stdout + done.stderr
    assert any(line.startswith("OK   engine:") and "decoded" in line for line in lines), lines
    assert any("llama.cpp build" in line and "AVX2" in line for line in lines), lines
    assert any(line.startswith("OK   store:") for line in lines) and any("predictor" in line for line in lines)


def test_a_cpu_measurement_never_shifts_gpu_predictions() -> None:
    """A calibration whose worker ran on the CPU is labelled cpu and not applied to a GPU profile."""
    from advisor.decide.options import calibration_rows
    from advisor.knowledge import load_knowledge
    from advisor.schemas import Hardware
    from advisor.settings import KNOWLEDGE_DIR

    knowledge = load_knowledge(KNOWLEDGE_DIR)
    model = {
        "model": DEFAULT_MODEL,
        "device": "cpu",
        "params_b": 0.135,
        "quantization": "Q4_1",
        "speed": {"decode@64": {"decode_tps": {"median": 40.0}}},
    }
    report = {"backend": {"kind": "embedded"}, "models": [model]}
    gpu = Hardware(name="RTX 4090 desktop", accelerator="nvidia", memory_gb=24, memory_bandwidth_gbs=1008)
    cpu = Hardware(name="this machine", accelerator="cpu", memory_gb=16, memory_bandwidth_gbs=20)
    assert calibration_rows(report, gpu, knowledge) == []
    assert len(calibration_rows(report, cpu, knowledge)) == 1
    assert len(calibration_rows({**report, "models": [{**model, "device": "cuda"}]}, gpu, knowledge)) == 1


def test_your_own_tasks_are_measured_on_the_real_model() -> None:
    from advisor.calibrate import USER_PREFIX, with_user_tasks
    from advisor.settings import BENCHMARKS_DIR

    suite = with_user_tasks(load_suite(DEFAULT_SUITE), BENCHMARKS_DIR / "suites" / "your-tasks.example.yaml")
    mine = tuple(t for t in suite.quick_tasks if t.startswith(USER_PREFIX))
    small = replace(suite, quick_tasks=mine, quick_repetitions=1, prefill_prompt_tokens=(32,), decode_tokens=8)
    backend = EmbeddedBackend()
    try:
        report = calibrate(backend, [DEFAULT_MODEL], small, hardware={"fingerprint": "hw-test"}, quick=True)
    finally:
        backend.close()
    tasks = [m for m in report["measurements"] if m["kind"] == "task"]
    assert [m["probe"] for m in tasks] == list(mine)
    assert all(m["category"] == "your tasks" and m["success"] in (True, False) for m in tasks)
    assert report["models"][0]["tasks"]["by_category"]["your tasks"]["attempts"] == 2
