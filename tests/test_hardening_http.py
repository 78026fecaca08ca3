"""Backends against small real HTTP servers on loopback that misbehave: hangs, busy answers, broken streams.

Each server plays a script per connection, stops by itself (a lifetime of a few seconds) and only ever
listens on 127.0.0.1. A backend that waited for the server instead of its own deadline would take the
server's whole lifetime, which the elapsed-time assertions catch.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from advisor.backends import openai_compat
from advisor.backends.base import GenerationRequest, GenerationResult
from advisor.backends.ollama import OllamaBackend
from advisor.backends.openai_compat import OpenAICompatBackend, retry_after_s
from advisor.errors import BackendError

Script = Callable[[socket.socket, int, threading.Event], None]
LIFETIME_S = 8.0  # a server never outlives this, whatever its script
DEADLINE_S = 1.0
SLACK_S = 1.5  # scheduling noise on a shared 2-core machine


class LoopbackServer:
    """A real HTTP/1.1 server on 127.0.0.1: one request per connection, answered by `script(conn, n, stop)`."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.stop = threading.Event()
        self.requests: list[bytes] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.workers: list[threading.Thread] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        end = time.monotonic() + LIFETIME_S
        while not self.stop.is_set() and time.monotonic() < end:
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            worker = threading.Thread(target=self._one, args=(conn, len(self.workers)), daemon=True)
            self.workers.append(worker)
            worker.start()
        self.stop.set()

    def _one(self, conn: socket.socket, n: int) -> None:
        with conn:
            try:
                conn.settimeout(LIFETIME_S)
                self.requests.append(_read_request(conn))
                self.script(conn, n, self.stop)
            except OSError:
                pass  # the client hung up: exactly what a deadline does

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=LIFETIME_S)
        for worker in self.workers:
            worker.join(timeout=LIFETIME_S)
        self.sock.close()


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
        0,
    )
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


@contextmanager
def serve(script: Script) -> Iterator[LoopbackServer]:
    server = LoopbackServer(script)
    try:
        yield server
    finally:
        server.close()


def head(status: str = "200 OK", content_type: str = "text/event-stream", **extra: str) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Type: {content_type}", "Connection: close"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in extra.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def token(text: str, finish: str | None = None) -> bytes:
    chunk = {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}
    return f"data: {json.dumps(chunk)}\n\n".encode()


def tokens(n: int) -> bytes:
    return b"".join(token(f" t{i}") for i in range(n))


def drip(conn: socket.socket, stop: threading.Event, piece: bytes, *, every_s: float = 0.05) -> None:
    """Send `piece` again and again until the server stops (or the client hangs up)."""
    while not stop.wait(every_s):
        conn.sendall(piece)


def request(timeout_s: float = DEADLINE_S, max_tokens: int = 16) -> GenerationRequest:
    return GenerationRequest(prompt="hi", max_tokens=max_tokens, timeout_s=timeout_s)


def openai_generate(server: LoopbackServer, req: GenerationRequest | None = None) -> tuple[GenerationResult, float]:
    backend = OpenAICompatBackend(server.url + "/v1")
    try:
        started = time.perf_counter()
        result = backend.generate("m", req or request())
        return result, time.perf_counter() - started
    finally:
        backend.close()


# --- the deadline is wall-clock on the whole request ------------------------------------------------


def _keepalive_comments(conn: socket.socket, n: int, stop: threading.Event) -> None:
    conn.sendall(head() + token("Hi"))
    drip(conn, stop, b": keep-alive\n\n")


def _line_that_never_ends(conn: socket.socket, n: int, stop: threading.Event) -> None:
    conn.sendall(head() + b'data: {"choices": [{"delta": {"content": "')
    drip(conn, stop, b"x")


def _trickled_headers(conn: socket.socket, n: int, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    drip(conn, stop, b"X")  # a header line that never ends: httpx's read timeout restarts on every byte


def _silent_after_headers(conn: socket.socket, n: int, stop: threading.Event) -> None:
    conn.sendall(head())
    stop.wait(LIFETIME_S)


def _trickled_body(conn: socket.socket, n: int, stop: threading.Event) -> None:
    conn.sendall(head())
    for byte in tokens(200):  # one byte at a time, each well inside any per-read timeout
        if stop.wait(0.002):
            return
        conn.sendall(bytes([byte]))


@pytest.mark.parametrize(
    "script",
    [_keepalive_comments, _line_that_never_ends, _trickled_headers, _silent_after_headers, _trickled_body],
    ids=["sse-keepalive-comments", "line-never-ends", "trickled-headers", "silent-after-headers", "trickled-body"],
)
def test_openai_deadline_holds_against_any_byte_pattern(script: Script) -> None:
    with serve(script) as server:
        result, elapsed = openai_generate(server)
    assert elapsed < DEADLINE_S + SLACK_S, f"took {elapsed:.1f} s against a {DEADLINE_S} s deadline"
    assert result.timed_out and result.stream_status == "timed_out"


def _ndjson_line_never_ends(conn: socket.socket, n: int, stop: threading.Event) -> None:
    conn.sendall(head(content_type="application/x-ndjson") + b'{"model": "m", "message": {"role": "assistant", "')
    drip(conn, stop, b"x")


def _ndjson_blank_lines(conn: socket.socket, n: int, stop: threading.Event) -> None:
    conn.sendall(head(content_type="application/x-ndjson"))
    drip(conn, stop, b"\n")


@pytest.mark.parametrize(
    "script", [_ndjson_line_never_ends, _ndjson_blank_lines, _trickled_headers], ids=["line", "blanks", "headers"]
)
def test_ollama_deadline_holds_against_any_byte_pattern(script: Script) -> None:
    with serve(script) as server:
        backend = OllamaBackend(server.url)
        try:
            started = time.perf_counter()
            result = backend.generate("m", request())
            elapsed = time.perf_counter() - started
        finally:
            backend.close()
    assert elapsed < DEADLINE_S + SLACK_S, f"took {elapsed:.1f} s against a {DEADLINE_S} s deadline"
    assert result.timed_out and result.stream_status == "timed_out"


# --- busy servers: 429/503 retried with Retry-After, within a cap; other 5xx are clear errors ---------


def _busy_then_ok(conn: socket.socket, n: int, stop: threading.Event) -> None:
    if n == 0:
        conn.sendall(head("429 Too Many Requests", "text/plain", Retry_After="1", Content_Length="4") + b"slow")
    else:
        conn.sendall(head() + tokens(3) + token("", finish="stop") + b"data: [DONE]\n\n")


def test_429_is_retried_after_the_wait_the_server_asks_for() -> None:
    with serve(_busy_then_ok) as server:
        result, elapsed = openai_generate(server, request(timeout_s=10))
        assert len(server.requests) == 2
    assert elapsed >= 1.0  # Retry-After: 1 honoured
    assert result.retries == 1 and result.stream_status == "complete"
    assert result.answer_text == " t0 t1 t2"
    # Timings belong to the attempt that streamed, not to the wait before it.
    assert result.t_first_chunk is not None and result.t_first_chunk - result.t_start < 0.9


def _always_busy(conn: socket.socket, n: int, stop: threading.Event) -> None:
    conn.sendall(head("503 Service Unavailable", "text/plain", Retry_After="0", Content_Length="13") + b"Loading model")


def test_503_gives_up_after_a_bounded_number_of_attempts() -> None:
    with serve(_always_busy) as server:
        with pytest.raises(BackendError) as caught:
            openai_generate(server, request(timeout_s=10))
        assert len(server.requests) == openai_compat.MAX_ATTEMPTS
    message = str(caught.value)
    assert f"{server.url}/v1/chat/completions" in message and "HTTP 503" in message
    assert f"{openai_compat.MAX_ATTEMPTS} attempts" in message and "Loading model" in message


def _busy_for_an_hour(conn: socket.socket, n: int, stop: threading.Event) -> None:
    conn.sendall(head("429 Too Many Requests", "text/plain", Retry_After="3600", Content_Length="0"))


def test_a_retry_after_beyond_the_cap_fails_at_once_with_the_reason() -> None:
    with serve(_busy_for_an_hour) as server:
        started = time.perf_counter()
        with pytest.raises(BackendError, match=r"HTTP 429 .*retry after 3600 s"):
            openai_generate(server, request(timeout_s=10))
        assert time.perf_counter() - started < 3
        assert len(server.requests) == 1


def test_a_busy_answer_without_retry_after_backs_off_within_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openai_compat, "BACKOFF_S", 0.05)

    def busy_twice(conn: socket.socket, n: int, stop: threading.Event) -> None:
        if n < 2:
            conn.sendall(head("503 Service Unavailable", "text/plain", Content_Length="0"))
        else:
            conn.sendall(head() + token("ok", finish="stop") + b"data: [DONE]\n\n")

    with serve(busy_twice) as server:
        result, _ = openai_generate(server, request(timeout_s=10))
    assert result.retries == 2 and result.answer_text == "ok"


def test_a_server_error_names_the_url_and_status() -> None:
    def fail(conn: socket.socket, n: int, stop: threading.Event) -> None:
        conn.sendall(head("502 Bad Gateway", "text/plain", Content_Length="7") + b"upstrm!")

    with serve(fail) as server:
        with pytest.raises(BackendError) as caught:
            openai_generate(server)
        assert len(server.requests) == 1  # not a busy status: no retry
    assert f"{server.url}/v1/chat/completions answered HTTP 502: upstrm!" in str(caught.value)


def test_ollama_busy_is_retried_with_retry_after() -> None:
    def busy_then_done(conn: socket.socket, n: int, stop: threading.Event) -> None:
        if n == 0:
            body = b'{"error": "server busy, please try again"}'
            conn.sendall(head("503 Service Unavailable", "application/json", Retry_After="0") + body)
        else:
            conn.sendall(head(content_type="application/x-ndjson") + ndjson(msg("Hi"), final()))

    with serve(busy_then_done) as server:
        backend = OllamaBackend(server.url)
        try:
            result = backend.generate("m", request(timeout_s=10))
        finally:
            backend.close()
    assert result.retries == 1 and result.answer_text == "Hi" and result.stream_status == "complete"


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after_s("2") == 2.0
    assert retry_after_s(" 0 ") == 0.0
    assert retry_after_s(None) is None and retry_after_s("soon") is None and retry_after_s("nan") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= (retry_after_s(later) or 0) <= 31
    assert retry_after_s("-5") == 0.0


# --- broken streams are labelled, never passed off as clean measurements -----------------------------


def test_a_stream_closed_after_10_of_16_tokens_is_truncated() -> None:
    def close_early(conn: socket.socket, n: int, stop: threading.Event) -> None:
        conn.sendall(head() + tokens(10))  # then the connection closes: no finish_reason, no [DONE]

    with serve(close_early) as server:
        result, _ = openai_generate(server)
    assert result.stream_status == "truncated" and result.answer_chunks == 10
    assert result.error and "closed the stream early" in result.error
    assert not result.timed_out


def test_malformed_lines_and_non_object_chunks_are_counted_and_skipped() -> None:
    def messy(conn: socket.socket, n: int, stop: threading.Event) -> None:
        conn.sendall(
            head()
            + token("a")
            + b"data: {not json\n\n"
            + b"data: 42\n\n"
            + b"data: []\n\n"
            + b'data: {"choices": "nope"}\n\n'
            + b"garbage without a field\n\n"
            + b"data: \xff\xfe not utf-8\n\n"
            + b": a comment is fine\n\nevent: message\nid: 7\n"
            + token("b", finish="stop")
            + b"data: [DONE]\n\n"
        )

    with serve(messy) as server:
        result, _ = openai_generate(server)
    assert result.answer_text == "ab"
    assert result.malformed_chunks == 6 and result.stream_status == "malformed"
    assert result.error and "malformed SSE chunk" in result.error


def test_an_error_chunk_mid_stream_is_an_error_keeping_what_came_before() -> None:
    def errs(conn: socket.socket, n: int, stop: threading.Event) -> None:
        conn.sendall(head() + tokens(2) + b'data: {"error": {"message": "out of memory"}}\n\n')

    with serve(errs) as server:
        result, _ = openai_generate(server)
    assert result.stream_status == "error" and result.answer_chunks == 2
    assert "out of memory" in (result.error or "")


def test_a_clean_stream_is_complete() -> None:
    def clean(conn: socket.socket, n: int, stop: threading.Event) -> None:
        conn.sendall(head() + tokens(15) + token(" end", finish="length") + b"data: [DONE]\n\n")

    with serve(clean) as server:
        result, _ = openai_generate(server)
    assert result.stream_status == "complete" and result.malformed_chunks == 0
    assert result.error is None and result.answer_chunks == 16


def ndjson(*parts: dict[str, object]) -> bytes:
    return b"".join(json.dumps(p).encode() + b"\n" for p in parts)


def msg(content: str) -> dict[str, object]:
    return {"model": "m", "created_at": "2026-01-01T00:00:00Z", "message": {"role": "assistant", "content": content}}


def final() -> dict[str, object]:
    return {**msg(""), "done": True, "done_reason": "stop", "eval_count": 2, "eval_duration": 1_000_000}


@pytest.mark.parametrize(
    ("body", "status", "malformed"),
    [
        (ndjson(msg("a"), msg("b"), final()), "complete", 0),
        (ndjson(msg("a"), msg("b")), "truncated", 0),
        (ndjson(msg("a")) + b"{broken\n[1, 2]\n\xff\n" + ndjson({"message": 5}, msg("b"), final()), "malformed", 4),
        (ndjson(msg("a"), {"error": "model runner crashed"}), "error", 0),
    ],
    ids=["complete", "truncated", "malformed", "error"],
)
def test_ollama_streams_are_labelled(body: bytes, status: str, malformed: int) -> None:
    def play(conn: socket.socket, n: int, stop: threading.Event) -> None:
        conn.sendall(head(content_type="application/x-ndjson") + body)

    with serve(play) as server:
        backend = OllamaBackend(server.url)
        try:
            result = backend.generate("m", request())
        finally:
            backend.close()
    assert result.stream_status == status and result.malformed_chunks == malformed
    assert result.answer_text.startswith("a")
    assert (result.error is None) == (status == "complete")
