"""Any OpenAI-compatible server (llama.cpp server, LM Studio, vLLM) over httpx with SSE streaming.

Also the HTTP plumbing the Ollama backend shares: a wall-clock deadline on every socket operation of a request,
retries of busy answers (HTTP 429/503) that honour Retry-After within a cap, and a line reader that labels
what is not a valid stream line instead of failing on it.
"""

from __future__ import annotations

import email.utils
import json
import math
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpcore
import httpx

from advisor.backends.base import (
    GenerationRequest,
    GenerationResult,
    ModelInfo,
    OnChunk,
    ThinkSplitter,
    chat_messages,
    finish_text,
    record_text,
)
from advisor.errors import BackendError, BackendUnreachable, ModelNotFound

RETRY_STATUSES = frozenset({429, 503})  # "too many requests" and "busy / still loading": worth asking again
MAX_ATTEMPTS = 4  # the first request and up to three retries
MAX_RETRY_WAIT_S = 30.0  # total time one request may spend waiting between retries
BACKOFF_S = 1.0  # first wait when the server gives no Retry-After; doubles with each retry
MAX_LINE_BYTES = 1 << 20  # a longer stream line is malformed: no server sends a 1 MiB chunk
CONNECT_TIMEOUT_S = 5.0


def translate_http_error(exc: Exception, url: str) -> BackendError:
    """One place that turns httpx failures into messages that say what to check."""
    if isinstance(exc, httpx.ConnectError):
        return BackendUnreachable(f"cannot connect to {url}: is the server running and is the URL right?")
    if isinstance(exc, httpx.TimeoutException):
        return BackendUnreachable(f"no answer from {url} in time; the server may be overloaded or the URL wrong")
    if isinstance(exc, httpx.HTTPStatusError):
        body = exc.response.text[:200] if not exc.response.is_stream_consumed else ""
        return BackendError(
            f"{url} answered HTTP {exc.response.status_code}: {body.strip() or exc.response.reason_phrase}"
        )
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
        return BackendError(f"the server at {url} closed the connection mid-stream ({exc})")
    return BackendError(f"request to {url} failed: {exc}")


# --- a deadline no byte pattern can outlast -------------------------------------------------------------
# httpx's read timeout restarts with every byte, so keep-alive comments, a line that never ends or a trickle
# would hold a request forever. The transport below gives every socket operation only the time left before
# the deadline of the request running in this thread (headers included), and fails it once that has passed.

_deadline = threading.local()


@contextmanager
def request_deadline(deadline: float) -> Iterator[None]:
    """Bound every socket read, write and connect in this thread by `deadline` (a time.perf_counter value)."""
    previous: float | None = getattr(_deadline, "at", None)
    _deadline.at = deadline if previous is None else min(previous, deadline)
    try:
        yield
    finally:
        _deadline.at = previous


def _time_left(timeout: float | None, error: type[Exception]) -> float | None:
    at: float | None = getattr(_deadline, "at", None)
    if at is None:
        return timeout
    left = at - time.perf_counter()
    if left <= 0:
        raise error("the request's deadline has passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _time_left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _time_left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        tls = self._stream.start_tls(ssl_context, server_hostname, _time_left(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(tls)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        left = _time_left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._backend.connect_tcp(host, port, left, local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        left = _time_left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._backend.connect_unix_socket(path, left, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def deadline_transport() -> httpx.BaseTransport:
    """httpx's own transport, with socket operations bounded by `request_deadline` when one is set."""
    transport = httpx.HTTPTransport()
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if isinstance(backend, httpcore.NetworkBackend):  # else: the per-chunk deadline checks still apply
        pool._network_backend = _DeadlineBackend(backend)  # type: ignore[union-attr]
    return transport


# --- busy servers: 429/503 retried with Retry-After, within a cap -------------------------------------------


def retry_after_s(value: str | None) -> float | None:
    """Seconds a Retry-After header asks for (delay-seconds or an HTTP date); None when absent or unreadable."""
    if not value or not value.strip():
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value.strip())
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


@dataclass
class Opened:
    """A response whose status is not a busy one, after how many busy answers, and when it was sent."""

    response: httpx.Response
    retries: int
    t_sent: float


def send_with_retries(
    client: httpx.Client,
    method: str,
    path: str,
    *,
    url: str,
    deadline: float,
    stream: bool = True,
    sleep: Callable[[float], None] = time.sleep,
    **kwargs: Any,
) -> Opened:
    """Send a request; HTTP 429/503 are retried after Retry-After (else a doubling backoff) within the caps.

    Gives up with a BackendError naming the URL and status after MAX_ATTEMPTS, or at once when the wait asked
    for would pass MAX_RETRY_WAIT_S in all or the request's deadline. The caller closes the response.
    """
    waited = 0.0
    for attempt in range(1, MAX_ATTEMPTS + 1):
        t_sent = time.perf_counter()
        response = client.send(client.build_request(method, path, **kwargs), stream=stream)
        status = response.status_code
        if status not in RETRY_STATUSES:
            return Opened(response, attempt - 1, t_sent)
        asked = retry_after_s(response.headers.get("retry-after"))
        wait = asked if asked is not None else BACKOFF_S * 2 ** (attempt - 1)
        budget = min(MAX_RETRY_WAIT_S - waited, deadline - time.perf_counter())
        if attempt == MAX_ATTEMPTS or wait > budget:
            detail = _excerpt(response)
            response.close()
            what = "rate limited" if status == 429 else "busy or still loading"
            if attempt == MAX_ATTEMPTS:
                raise BackendError(
                    f"{url} answered HTTP {status} ({what}) to {attempt} attempts{detail}; "
                    "retry later, lower the concurrency or raise the server's queue limit"
                )
            raise BackendError(
                f"{url} answered HTTP {status} ({what}) and asked to retry after {wait:g} s, longer than this "
                f"request may wait ({max(budget, 0.0):.1f} s left){detail}; retry later or raise --timeout"
            )
        response.close()
        sleep(wait)
        waited += wait
    raise AssertionError("unreachable")  # the loop returns or raises


def _excerpt(response: httpx.Response) -> str:
    """': <first 200 characters of the body>' for an error message, or '' when there is none."""
    try:
        text = response.read().decode("utf-8", "replace").strip()
    except httpx.HTTPError:
        return ""
    return f": {text[:200]}" if text else ""


def status_error(response: httpx.Response, url: str) -> BackendError:
    """A clear error for an HTTP error status (the busy ones are retried before this)."""
    detail = _excerpt(response) or f": {response.reason_phrase}"
    hint = "; the server failed: check its log" if response.status_code >= 500 else ""
    return BackendError(f"{url} answered HTTP {response.status_code}{detail}{hint}")


# --- stream lines, deadline checked on every read --------------------------------------------------------


def stream_lines(response: httpx.Response, *, deadline: float, result: GenerationResult) -> Iterator[str]:
    """The lines of a streamed body, checking the deadline on every chunk of bytes (a trickle cannot outlast it).

    Lines that are not UTF-8 or longer than MAX_LINE_BYTES are counted in result.malformed_chunks and skipped;
    passing the deadline sets result.timed_out and ends the lines.
    """
    pending = b""
    skipping = False  # inside an over-long line: drop bytes until its end
    for data in response.iter_bytes():
        if time.perf_counter() > deadline:
            result.timed_out = True
            return
        if b"\n" not in data:
            if not skipping:
                pending += data
                if len(pending) > MAX_LINE_BYTES:
                    result.malformed_chunks += 1
                    pending, skipping = b"", True
            continue
        lines = (pending + data).split(b"\n")
        pending = lines.pop()
        for raw in lines:
            if skipping:
                skipping = False
                continue
            line = _decode(raw, result)
            if line is not None:
                yield line
    if pending and not skipping and (line := _decode(pending, result)) is not None:
        yield line


def _decode(raw: bytes, result: GenerationResult) -> str | None:
    if len(raw) > MAX_LINE_BYTES:
        result.malformed_chunks += 1
        return None
    try:
        return raw.rstrip(b"\r").decode("utf-8")
    except UnicodeDecodeError:
        result.malformed_chunks += 1
        return None


def settle_status(result: GenerationResult, *, finished: bool, failed: bool) -> None:
    """Label how the stream ended; only "complete" streams belong in speed medians."""
    if result.timed_out:
        result.stream_status = "timed_out"
    elif failed:
        result.stream_status = "error"
    elif result.malformed_chunks:
        result.stream_status = "malformed"
    elif not finished:
        result.stream_status = "truncated"
    else:
        result.stream_status = "complete"


def note_malformed(result: GenerationResult, what: str) -> None:
    """Say in result.error how many stream lines were skipped as malformed (the first one is described)."""
    if not result.malformed_chunks:
        return
    total = f"{result.malformed_chunks} malformed line(s) skipped in all"
    if result.error is None:
        result.error = f"{what}: {total} (not UTF-8, or longer than {MAX_LINE_BYTES} bytes)"
    elif result.error.startswith(what):
        result.error += f" ({total})"


class _Malformed(Exception):
    """One stream chunk that is not what the protocol promises; it is skipped and counted."""


class OpenAICompatBackend:
    """Chat completions with `stream: true`; reads usage, llama.cpp `timings` and reasoning deltas."""

    kind = "openai"

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        transport: httpx.BaseTransport | None = None,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            transport=transport or deadline_transport(),
            timeout=httpx.Timeout(60.0, connect=connect_timeout_s),
        )
        self.connect_timeout_s = connect_timeout_s

    def version(self) -> str:
        # llama.cpp's server reports a build on /props; others have no version endpoint.
        try:
            response = self.client.get(self.base_url.removesuffix("/v1") + "/props")
            if response.status_code == 200:
                build = response.json().get("build_info")
                if build:
                    return f"llama.cpp server {build}"
        except (httpx.HTTPError, ValueError, AttributeError):
            pass
        return "unknown (OpenAI-compatible)"

    def list_models(self) -> list[str]:
        url = f"{self.base_url}/models"
        try:
            opened = send_with_retries(
                self.client, "GET", "/models", url=url, deadline=time.perf_counter() + 60.0, stream=False
            )
            if opened.response.status_code >= 400:
                raise status_error(opened.response, url)
            payload = opened.response.json()
        except httpx.HTTPError as exc:
            raise translate_http_error(exc, url) from exc
        except ValueError as exc:
            raise BackendError(f"{url} did not return JSON; is this an OpenAI-compatible /v1 URL?") from exc
        entries = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(entries, list):
            raise BackendError(f"{url} did not return a model list ('data'); is this an OpenAI-compatible /v1 URL?")
        return [str(entry.get("id", "")) for entry in entries if isinstance(entry, dict)]

    def load(self, model: str) -> ModelInfo:
        models = self.list_models()
        if models and model not in models:
            raise ModelNotFound(f"model '{model}' is not served at {self.base_url}; it serves: {', '.join(models)}")
        return ModelInfo(
            name=model,
            identity=f"served:{model}",
            quantization=_quant_hint(model),
            context_size=None,
            load_s=None,
            load_source="not reported (server loads before serving)",
        )

    def server_token_count(self, text: str) -> int | None:
        """Tokens in a text by the server's own tokenizer, for servers whose stream reports no usage.

        Tries llama.cpp's and vLLM's /tokenize and llama-cpp-python's /extras/tokenize; None when none exists.
        """
        root = self.base_url.removesuffix("/v1")
        for path, body in (
            ("/tokenize", {"content": text}),
            ("/extras/tokenize", {"input": text}),
            ("/tokenize", {"prompt": text}),
        ):
            try:
                response = self.client.post(root + path, json=body, timeout=10.0)
                if response.status_code == 200:
                    payload = response.json()
                    tokens = payload.get("tokens") if isinstance(payload, dict) else None
                    if isinstance(tokens, list):
                        return len(tokens)
                    count = payload.get("count") if isinstance(payload, dict) else None
                    if isinstance(count, int):
                        return count
            except (httpx.HTTPError, ValueError):
                return None
        return None

    def generate(self, model: str, request: GenerationRequest, *, on_chunk: OnChunk | None = None) -> GenerationResult:
        """Stream one completion; the timeout is a wall-clock deadline on the whole request, retries included."""
        body = {
            "model": model,
            "messages": chat_messages(request),
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "seed": request.seed,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        result = GenerationResult(t_start=time.perf_counter())
        splitter = ThinkSplitter()
        deadline = result.t_start + request.timeout_s
        timeout = httpx.Timeout(request.timeout_s, connect=min(self.connect_timeout_s, request.timeout_s))
        url = f"{self.base_url}/chat/completions"
        finished = failed = False
        try:
            with request_deadline(deadline):
                opened = send_with_retries(
                    self.client, "POST", "/chat/completions", url=url, deadline=deadline, json=body, timeout=timeout
                )
                response = opened.response
                try:
                    # Timings start at the attempt that streamed; busy answers before it are counted in retries.
                    result.t_start, result.retries = opened.t_sent, opened.retries
                    if response.status_code >= 400:
                        error = status_error(response, url)
                        if response.status_code == 404 and "model" in str(error).lower():
                            raise ModelNotFound(f"model '{model}' not found: {error}")
                        raise error
                    finished, failed = self._read_stream(response, result, splitter, on_chunk, url, deadline)
                finally:
                    response.close()
        except httpx.TimeoutException:
            result.timed_out = True
        except httpx.HTTPError as exc:
            error = translate_http_error(exc, url)
            if result.t_first_chunk is None and isinstance(error, BackendUnreachable):
                raise error from exc
            result.error, failed = str(error), True
        finish_text(result, splitter)
        settle_status(result, finished=finished, failed=failed)
        if result.stream_status == "truncated":
            result.error = (
                f"{url} closed the stream without sending a token (a single-slot server may refuse concurrent requests)"
                if result.t_first_chunk is None
                else f"{url} closed the stream early: {result.total_chunks} chunks and no finish_reason or [DONE] "
                "(the server may have crashed or dropped the connection)"
            )
        elif result.t_first_chunk is None and not (result.error or result.timed_out):
            result.error = f"{url} finished the stream without sending a token"
        if result.output_tokens is None:
            result.output_tokens = result.total_chunks
        return result

    def _read_stream(
        self,
        response: httpx.Response,
        result: GenerationResult,
        splitter: ThinkSplitter,
        on_chunk: OnChunk | None,
        url: str,
        deadline: float,
    ) -> tuple[bool, bool]:
        """Consume the SSE lines; returns (finished, failed). Malformed lines are counted and skipped."""
        done = False
        for line in stream_lines(response, deadline=deadline, result=result):
            if not line or line.startswith(":"):
                continue  # event separators, SSE comments and keep-alives
            name, _, value = line.partition(":")
            if name in ("event", "id", "retry"):
                continue
            try:
                if name != "data":
                    raise _Malformed(f"{line[:80]!r} is not an SSE field")
                data = value.strip()
                if data == "[DONE]":
                    done = True
                    break
                self._consume(data, result, splitter, on_chunk, url)
            except _Malformed as exc:
                result.malformed_chunks += 1
                if result.error is None:
                    result.error = f"malformed SSE chunk from {url}: {exc}"
            except BackendError as exc:  # the server reported an error mid-stream; keep what came before
                result.error = str(exc)
                return False, True
            if time.perf_counter() > deadline:
                result.timed_out = True
                break
        note_malformed(result, f"malformed SSE chunk from {url}")
        return done or result.finish_reason is not None, False

    def _consume(
        self, data: str, result: GenerationResult, splitter: ThinkSplitter, on_chunk: OnChunk | None, url: str
    ) -> None:
        try:
            chunk: Any = json.loads(data)
        except ValueError as exc:
            raise _Malformed(f"{data[:80]!r} is not JSON") from exc
        if not isinstance(chunk, dict):
            raise _Malformed(f"expected a JSON object, got {data[:80]!r}")
        if "error" in chunk:
            raise BackendError(f"{url} reported an error mid-stream: {str(chunk['error'])[:200]}")
        choices = chunk.get("choices") or []
        if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
            raise _Malformed(f"'choices' is not a list of objects in {data[:80]!r}")
        for choice in choices:
            delta = choice.get("delta") or {}
            if not isinstance(delta, dict):
                raise _Malformed(f"'delta' is not an object in {data[:80]!r}")
            thought = delta.get("reasoning_content") or delta.get("reasoning")
            text = delta.get("content")
            if (thought and not isinstance(thought, str)) or (text and not isinstance(text, str)):
                raise _Malformed(f"delta text is not a string in {data[:80]!r}")
            if thought:
                result.add_chunk(reasoning=thought, is_reasoning=True)
                if on_chunk:
                    on_chunk("reasoning", thought)
            if text:
                record_text(result, splitter, text, on_chunk)
            if choice.get("finish_reason"):
                result.finish_reason = str(choice["finish_reason"])
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            result.prompt_tokens = _count(usage.get("prompt_tokens"), result.prompt_tokens)
            result.output_tokens = _count(usage.get("completion_tokens"), result.output_tokens)
            details = usage.get("completion_tokens_details")
            if isinstance(details, dict) and _count(details.get("reasoning_tokens"), None) is not None:
                result.reasoning_tokens = _count(details.get("reasoning_tokens"), None)
            result.token_source = "server usage"
        timings = chunk.get("timings")
        if isinstance(timings, dict) and _ms(timings.get("predicted_ms")) is not None:
            result.prompt_tokens = _count(timings.get("prompt_n"), result.prompt_tokens)
            result.prompt_eval_s = (_ms(timings.get("prompt_ms")) or 0) / 1000 or None
            result.decode_s = (_ms(timings.get("predicted_ms")) or 0) / 1000 or None
            result.decode_counted = _count(timings.get("predicted_n"), None)
            result.counter_source = "llama.cpp server timings"

    def close(self) -> None:
        self.client.close()


def _count(value: Any, default: int | None) -> int | None:
    """A server's token counter when it is a sane whole number, else the default."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default


def _ms(value: Any) -> float | None:
    """A server's millisecond timing when it is a finite non-negative number."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    return float(value) if ok else None


def _quant_hint(model: str) -> str | None:
    from advisor.backends.embedded import quantization_from_name

    return quantization_from_name(model)
