"""Calibration against a real loopback server whose every stream is broken: kept, labelled, never a clean run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from advisor.backends.openai_compat import OpenAICompatBackend
from advisor.calibrate import calibrate, load_suite
from advisor.settings import DEFAULT_SUITE
from tests.conftest import CliRun
from tests.test_hardening_http import head, serve, tokens


def _truncating_server(conn: socket.socket, n: int, stop: threading.Event, requests: list[bytes]) -> None:
    last = requests[-1] if requests else b""
    if last.startswith(b"GET") and b"/models" in last.split(b"\r\n", 1)[0]:
        body = json.dumps({"data": [{"id": "m"}]}).encode()
        conn.sendall(head(content_type="application/json", Content_Length=str(len(body))) + body)
    elif b"tokenize" in last.split(b"\r\n", 1)[0]:
        conn.sendall(head("404 Not Found", content_type="text/plain", Content_Length="0"))
    else:
        conn.sendall(head() + tokens(5))  # then the connection closes: no finish_reason, no [DONE]


def test_a_run_of_truncated_streams_is_kept_but_never_complete() -> None:
    holder: list[object] = []

    def script(conn: socket.socket, n: int, stop: threading.Event) -> None:
        server = holder[0]
        _truncating_server(conn, n, stop, server.requests)  # type: ignore[attr-defined]

    with serve(script) as server:
        holder.append(server)
        backend = OpenAICompatBackend(server.url + "/v1")
        try:
            report = calibrate(
                backend, ["m"], load_suite(DEFAULT_SUITE), hardware={"fingerprint": "hw-test"}, quick=True, timeout_s=5
            )
        finally:
            backend.close()
    speed = [m for m in report["measurements"] if m["kind"] == "speed"]
    assert speed and all(m["stream_status"] == "truncated" for m in speed)
    assert report["complete"] is False
    assert any(e["step"] == "speed" and "no clean stream" in e["error"] for e in report["errors"])
    load = report["host_load"]  # what else ran on the host is recorded, for the noisy-run warning
    assert load["cpus"] and set(load) >= {"load_1m", "busy", "end_load_1m"}
    entry = next(iter(report["models"][0]["speed"].values()))
    assert entry["decode_tps"] is None and entry["excluded"]["count"] == 3
    assert entry["excluded"]["why"] == ["truncated"]


def test_bad_calibrate_inputs_exit_2_before_measuring(tmp_path: Path, cli_in_process: Callable[..., CliRun]) -> None:
    binary = tmp_path / "suite.yaml"
    binary.write_bytes(bytes(range(256)) * 4)
    not_gguf = tmp_path / "model.gguf"
    not_gguf.write_text("hello")
    cases = [
        (["--suite", str(binary)], "not UTF-8"),
        (["--model", str(tmp_path)], "is a directory"),
        (["--model", str(not_gguf)], "not a GGUF file"),
        (["--model", str(tmp_path / "missing.gguf")], "neither a packaged model"),
    ]
    env = {**os.environ, "ADVISOR_HOME": str(tmp_path / "home")}
    for args, expected in cases:  # through the CLI's entry point in this process; the last check is a real process
        done = cli_in_process("calibrate", "--no-probe", *args, env={"ADVISOR_HOME": env["ADVISOR_HOME"]})
        assert done.returncode == 2, (args, done.stderr)
        assert expected in done.stderr and "Traceback" not in done.stderr, (args, done.stderr)
    bad_env = {**env, "ADVISOR_TIMEOUT_S": "abc"}
    done = subprocess.run(
        [sys.executable, "-m", "advisor", "calibrate"], capture_output=True, text=True, env=bad_env, timeout=120
    )
    assert done.returncode == 2 and "ADVISOR_TIMEOUT_S" in done.stderr


def test_a_repeated_hardware_row_fails_knowledge_validate(tmp_path: Path) -> None:
    import shutil

    from advisor.settings import KNOWLEDGE_DIR

    copy = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE_DIR, copy)
    lines = (copy / "hardware.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    (copy / "hardware.csv").write_text("".join(lines + [lines[1]]), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "advisor", "knowledge", "validate", "--dir", str(copy)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and f"row {len(lines) + 1} repeats the hardware name" in done.stderr, done.stderr


def test_a_server_error_late_in_a_run_still_writes_the_report(tmp_path: Path) -> None:
    holder: list[object] = []
    chats: list[int] = []

    def script(conn: socket.socket, n: int, stop: threading.Event) -> None:
        last = holder[0].requests[-1]  # type: ignore[attr-defined]
        line = last.split(b"\r\n", 1)[0]
        if b"/models" in line or b"tokenize" in line:
            _truncating_server(conn, n, stop, [last])
            return
        chats.append(1)
        if len(chats) > 5:
            body = b'{"error": "boom"}'
            conn.sendall(
                head("500 Internal Server Error", content_type="application/json", Content_Length=str(len(body))) + body
            )
        else:
            conn.sendall(
                head()
                + tokens(3)
                + b'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\n\ndata: [DONE]\n\n'
            )

    out = tmp_path / "out.json"
    env = {**os.environ, "ADVISOR_HOME": str(tmp_path / "home")}
    with serve(script) as server:
        holder.append(server)
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "advisor",
                "calibrate",
                "--backend",
                "openai",
                "--url",
                server.url + "/v1",
                "--model",
                "m",
                "--quick",
                "--no-probe",
                "--json",
                str(out),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
    assert done.returncode == 1 and "HTTP 500" in done.stderr and "Traceback" not in done.stderr, done.stderr
    report = json.loads(out.read_text())
    assert report["complete"] is False and len(report["measurements"]) >= 3  # 5 answered, the warm-up discarded
    assert report["store"]["stored"] == len(report["measurements"])
