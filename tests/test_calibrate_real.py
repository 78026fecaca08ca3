"""Calibration on real runtimes: the packaged SmolLM2 in process, and a real llama.cpp server on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from advisor.backends.base import GenerationRequest
from advisor.backends.embedded import DEFAULT_MODEL, EmbeddedBackend
from advisor.backends.ollama import OllamaBackend
from advisor.backends.openai_compat import OpenAICompatBackend
from advisor.calibrate import calibrate, derive_metrics, load_suite
from advisor.errors import BackendUnreachable, InputError
from advisor.settings import DEFAULT_SUITE
from advisor.store import MeasurementStore
from advisor.sweep import sweep
from tests.conftest import SHORT_SUITE_NAME, CliRun, LlamaServer, free_port, write_short_suite

pytestmark = pytest.mark.slow
DESIGN_METRICS = (
    "ttft_s",
    "ttfa_s",
    "prefill_tps",
    "decode_tps",
    "tpot_ms",
    "e2e_s",
    "reasoning_tokens",
    "answer_tokens",
)


def run_cli(*args: str, env_home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ADVISOR_HOME": str(env_home)}
    return subprocess.run(
        [sys.executable, "-m", "advisor", *args], capture_output=True, text=True, env=env, timeout=600
    )


@pytest.fixture(scope="module")
def embedded() -> EmbeddedBackend:
    backend = EmbeddedBackend()
    backend.load(DEFAULT_MODEL)
    return backend


def test_embedded_generates_and_times_from_stream_and_counters(embedded: EmbeddedBackend) -> None:
    result = embedded.generate(DEFAULT_MODEL, GenerationRequest(prompt="Name three colors.", max_tokens=24))
    assert result.answer_text.strip()
    m = derive_metrics(result)
    assert 0 < m["ttft_s"] <= m["e2e_s"]
    assert m["decode_tps"] > 0 and m["counter_decode_tps"] > 0
    assert m["prefill_source"] == "llama.cpp perf context"
    # Our stream-timed decode rate and llama.cpp's own counter describe the same run.
    assert m["decode_tps"] == pytest.approx(m["counter_decode_tps"], rel=0.35)


def test_embedded_timeout_is_reported_not_raised(embedded: EmbeddedBackend) -> None:
    result = embedded.generate(
        DEFAULT_MODEL, GenerationRequest(prompt="Write a long essay about rivers.", max_tokens=200, timeout_s=0.05)
    )
    assert result.timed_out


def test_embedded_rejects_non_gguf_and_missing_files(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"NOTAGGUF" * 10)
    with pytest.raises(InputError, match="not a GGUF file"):
        EmbeddedBackend().load(str(fake))
    with pytest.raises(Exception, match="neither a packaged model"):
        EmbeddedBackend().load(str(tmp_path / "nope.gguf"))


def test_quick_calibration_cli_writes_measured_report_and_store(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    done = run_cli("calibrate", "--backend", "embedded", "--quick", "--json", str(out), env_home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["label"] == "measured" and report["complete"] is True
    assert report["backend"]["version"].startswith("llama-cpp-python")
    model = report["models"][0]
    assert model["identity"].startswith("sha256:") and model["quantization"] == "Q4_1"
    speed = model["speed"]
    assert {"prefill@128", "prefill@512", "decode@64"} <= set(speed)
    assert speed["decode@64"]["decode_tps"]["n"] >= 3  # medians of >= 3 repetitions, with spread
    assert speed["prefill@512"]["prompt_tokens"] > speed["prefill@128"]["prompt_tokens"]
    tasks = [m for m in report["measurements"] if m["kind"] == "task"]
    assert len(tasks) == len(load_suite(DEFAULT_SUITE).quick_tasks)
    assert all(m["label"] == "measured" and m["success"] in (True, False) for m in tasks)
    speed_rows = [m for m in report["measurements"] if m["kind"] == "speed"]
    for metric in DESIGN_METRICS:
        assert any(m[metric] is not None for m in speed_rows + tasks), metric
    assert report["bandwidth_probe"]["bandwidth_gbs"] > 0
    assert report["hardware"]["fingerprint"].startswith("hw-")
    store = MeasurementStore(tmp_path / "home" / "measurements.sqlite")
    assert len(store.measurements(report["run_id"])) == len(report["measurements"])
    assert "decode_tps" in done.stdout


def test_cli_bad_inputs_fail_with_one_clear_line(tmp_path: Path, cli_in_process: Callable[..., CliRun]) -> None:
    home = tmp_path / "home"
    cases = [
        (["calibrate", "--backend", "tpu"], "unknown backend 'tpu'"),
        (["calibrate", "--backend", "openai"], "--url is required"),
        (
            ["calibrate", "--backend", "embedded", "--model", str(tmp_path / "x.gguf"), "--no-probe"],
            "neither a packaged model",
        ),
        (
            ["calibrate", "--backend", "openai", "--url", f"http://127.0.0.1:{free_port()}/v1", "--no-probe"],
            "cannot connect",
        ),
        (["calibrate", "--timeout", "-1"], "--timeout must be a positive"),
        (["calibrate", "--concurrency", "1,x"], "--concurrency '1,x'"),
        (["calibrate", "--json", str(tmp_path)], "not a writable file path"),
    ]
    bad_suite = tmp_path / "suite.yaml"
    bad_suite.write_text("tasks: [ {id: a, prompt: hi, check: {kind: nope}} ]")
    cases.append((["calibrate", "--suite", str(bad_suite)], "task 'a'"))
    broken = tmp_path / "broken.yaml"
    broken.write_text("tasks: [unclosed")
    cases.append((["calibrate", "--suite", str(broken)], "not valid YAML"))
    # Every case through the CLI's entry point in this process, the last one also as a real `python -m advisor`.
    runs = [(args, expected, cli_in_process(*args, env={"ADVISOR_HOME": str(home)})) for args, expected in cases]
    runs.append((cases[-1][0], cases[-1][1], run_cli(*cases[-1][0], env_home=home)))
    for args, expected, done in runs:
        assert done.returncode != 0, args
        assert expected in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr, args


def test_unwritable_store_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    env = {**os.environ, "ADVISOR_STORE": str(blocker / "sub" / "m.sqlite")}
    done = subprocess.run(
        [sys.executable, "-m", "advisor", "calibrate", "--quick", "--no-probe"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode != 0 and "ADVISOR_STORE" in done.stderr and "Traceback" not in done.stderr


# --- OpenAI-compatible: a real llama.cpp server on loopback -----------------------------------------


def test_openai_cli_calibration_against_real_llama_server(llama_server: LlamaServer, tmp_path: Path) -> None:
    # One repetition of the probes checked below and two tasks (5 requests, not the default quick mode's 17): this
    # test is about the server path (URL, tokenizer endpoint, task timings); the default quick suite's contents are
    # pinned by test_quick_calibration_cli_writes_measured_report_and_store.
    suite = write_short_suite(tmp_path / "suite.yaml", prefill=(512,), decode_tokens=64)
    out = tmp_path / "out.json"
    done = run_cli(
        "calibrate",
        "--backend",
        "openai",
        "--url",
        llama_server.url,
        "--quick",
        "--suite",
        str(suite),
        "--json",
        str(out),
        "--no-probe",
        env_home=tmp_path / "home",
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["suite"]["name"] == SHORT_SUITE_NAME
    assert report["complete"] and report["models"][0]["model"] == "smollm2"
    # The server is recorded (a hosted endpoint's measured TTFT is matched by it; a loopback one never is).
    assert report["backend"]["url"] == llama_server.url.rstrip("/")
    speed = report["models"][0]["speed"]["decode@64"]
    assert speed["decode_tps"]["median"] > 0 and speed["ttft_s"]["median"] > 0
    # llama-cpp-python's server streams no usage: prompt tokens come from its tokenizer endpoint.
    assert report["models"][0]["speed"]["prefill@512"]["prefill_tps"]["median"] > 0
    tasks = [m for m in report["measurements"] if m["kind"] == "task"]
    assert tasks and all(m["e2e_s"] is not None for m in tasks)


def test_openai_concurrency_sweep_reports_each_level(llama_server: LlamaServer) -> None:
    backend = OpenAICompatBackend(llama_server.url)
    rows = sweep(backend, "smollm2", [1, 2], requests_per_worker=1, max_tokens=16)
    assert [r["concurrency"] for r in rows] == [1, 2]
    single, double = rows
    assert single["label"] == "measured" and single["failed"] == 0 and single["requests"] == 1
    assert single["throughput_tok_s"] > 0 and single["ttft_p50_s"] > 0 and single["goodput_rps"] is not None
    # llama-cpp-python's server has one slot: a refused concurrent request is counted and explained, not hidden.
    assert double["requests"] == 2 and double["failed"] <= 1
    assert (double["failed"] == 0) == (not double["errors"])


def test_server_killed_mid_stream_keeps_partial_output_and_measurements(tmp_path: Path) -> None:
    server = LlamaServer().start()
    backend = OpenAICompatBackend(server.url)
    seen = []

    def kill_after_some(kind: str, text: str) -> None:
        seen.append(text)
        if len(seen) == 5:
            threading.Thread(target=server.stop).start()

    try:
        request = GenerationRequest(prompt="Write a very long story about a dragon.", max_tokens=400, timeout_s=60)
        result = backend.generate("smollm2", request, on_chunk=kill_after_some)
        assert result.error and "mid-stream" in result.error
        assert result.answer_text and result.total_chunks >= 5
        # After the server is gone, the next calibration step stops cleanly with what was measured kept.
        suite = load_suite(DEFAULT_SUITE)
        report = calibrate(backend, ["smollm2"], suite, hardware={"fingerprint": "hw-test"}, quick=True)
        assert report["complete"] is False
        assert any("connect" in e["error"] or "cannot" in e["error"] for e in report["errors"])
    finally:
        server.stop()


def test_unreachable_server_raises_named_error() -> None:
    backend = OpenAICompatBackend(f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(BackendUnreachable, match="127.0.0.1"):
        backend.generate("m", GenerationRequest(prompt="hi"))


# --- Ollama: a real server when one runs ---------------------------------------------------------------


def _ollama_running() -> bool:
    try:
        return httpx.get("http://127.0.0.1:11434/api/version", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.live
@pytest.mark.skipif(not _ollama_running(), reason="no Ollama server on 127.0.0.1:11434")
def test_live_ollama_quick_calibration() -> None:  # pragma: no cover - needs a real Ollama
    backend = OllamaBackend()
    models = backend.list_models()
    if not models:
        pytest.skip("Ollama has no models installed")
    report = calibrate(backend, models[:1], load_suite(DEFAULT_SUITE), hardware={"fingerprint": "live"}, quick=True)
    assert report["models"][0]["speed"]["decode@64"]["decode_tps"]["median"] > 0


def test_cli_keeps_everything_measured_when_the_server_dies_mid_run(tmp_path: Path) -> None:
    server = LlamaServer().start()
    out = tmp_path / "partial.json"
    env = {**os.environ, "ADVISOR_HOME": str(tmp_path / "home")}
    cmd = [
        sys.executable,
        "-m",
        "advisor",
        "calibrate",
        "--backend",
        "openai",
        "--url",
        server.url,
        "--no-probe",
        "--json",
        str(out),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    store_path = tmp_path / "home" / "measurements.sqlite"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:  # wait until some measurements are in the store, then pull the plug
            if store_path.exists() and MeasurementStore(store_path).measurements():
                break
            time.sleep(0.5)
        server.stop()
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        server.stop()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, stderr
    assert (
        "calibration incomplete" in stderr and "measurements so far were saved" in stderr and "Traceback" not in stderr
    )
    report = json.loads(out.read_text())
    assert report["complete"] is False and report["measurements"]
    assert len(MeasurementStore(store_path).measurements(report["run_id"])) == len(report["measurements"])
