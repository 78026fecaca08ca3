"""Calibration against a real loopback server whose every stream is broken: kept, labelled, never a clean run."""

from __future__ import annotations

import json
import socket
import threading

from advisor.backends.openai_compat import OpenAICompatBackend
from advisor.calibrate import calibrate, load_suite
from advisor.settings import DEFAULT_SUITE
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
    entry = next(iter(report["models"][0]["speed"].values()))
    assert entry["decode_tps"] is None and entry["excluded"]["count"] == 3
    assert entry["excluded"]["why"] == ["truncated"]
