"""Ollama through its official client: /api/chat streaming, server counters in nanoseconds."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from pydantic import ValidationError

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
from advisor.backends.openai_compat import (
    BACKOFF_S,
    CONNECT_TIMEOUT_S,
    MAX_ATTEMPTS,
    MAX_RETRY_WAIT_S,
    RETRY_STATUSES,
    deadline_transport,
    note_malformed,
    request_deadline,
    send_with_retries,
    settle_status,
    stream_lines,
    translate_http_error,
)
from advisor.errors import BackendError, BackendUnreachable, ModelNotFound

NS = 1e9
DEFAULT_URL = "http://127.0.0.1:11434"


class OllamaBackend:
    """Streams `/api/chat`; durations come from Ollama's own counters (ns) and are labelled so."""

    kind = "ollama"

    def __init__(self, base_url: str = DEFAULT_URL, *, transport: httpx.BaseTransport | None = None) -> None:
        import ollama

        self._ollama = ollama
        self.base_url = base_url.rstrip("/")
        # The client passes extra keyword arguments on to httpx.Client, so tests can inject a transport.
        self.client = ollama.Client(host=self.base_url, timeout=60.0, transport=transport or deadline_transport())

    def _call(self, what: str, func: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one client call, translating its failures into AdvisorErrors that say what to do.

        A busy answer (HTTP 429/503) is retried with a doubling backoff, within MAX_ATTEMPTS and MAX_RETRY_WAIT_S.
        """
        waited = 0.0
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                return self._call_once(what, func, *args, **kwargs)
            except _Busy as busy:
                wait = BACKOFF_S * 2 ** (attempt - 1)
                if attempt == MAX_ATTEMPTS or waited + wait > MAX_RETRY_WAIT_S:
                    raise BackendError(
                        f"Ollama at {self.base_url} answered HTTP {busy.status} (busy) to {what} {attempt} times: "
                        f"{busy.detail}; retry later or raise OLLAMA_MAX_QUEUE / OLLAMA_NUM_PARALLEL"
                    ) from None
                time.sleep(wait)
                waited += wait
        raise AssertionError("unreachable")  # the loop returns or raises

    def _call_once(self, what: str, func: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except self._ollama.ResponseError as exc:
            if exc.status_code in RETRY_STATUSES:
                raise _Busy(exc.status_code, exc.error) from exc
            if exc.status_code == 404:
                raise ModelNotFound(f"Ollama at {self.base_url}: {exc.error}; run: ollama pull <model>") from exc
            raise BackendError(
                f"Ollama at {self.base_url} answered HTTP {exc.status_code} to {what}: {exc.error}"
            ) from exc
        except ConnectionError as exc:  # the client's own wording for a refused connection
            raise BackendUnreachable(
                f"cannot connect to Ollama at {self.base_url}: is `ollama serve` running and is the URL right?"
            ) from exc
        except httpx.HTTPError as exc:
            raise translate_http_error(exc, self.base_url) from exc
        except ValueError as exc:
            raise BackendError(f"malformed answer from Ollama at {self.base_url} to {what}: {exc}") from exc

    def version(self) -> str:
        try:
            response = self.client._client.get("/api/version", timeout=5.0)
            if response.status_code == 200:
                return f"ollama {response.json().get('version', 'unknown')}"
        except (httpx.HTTPError, ValueError):
            pass
        return "ollama (version not reported)"

    def list_models(self) -> list[str]:
        listing = self._call("list", self.client.list)
        return [entry.model for entry in listing.models if entry.model]

    def installed(self) -> list[dict[str, Any]]:
        """Installed models with size, digest and quantization, for the app's picker."""
        listing = self._call("list", self.client.list)
        return [
            {
                "model": entry.model,
                "digest": entry.digest,
                "size_gb": round((entry.size or 0) / 1e9, 2),
                "quantization": entry.details.quantization_level if entry.details else None,
                "parameter_size": entry.details.parameter_size if entry.details else None,
            }
            for entry in listing.models
        ]

    def load(self, model: str) -> ModelInfo:
        entries = {entry["model"]: entry for entry in self.installed()}
        if model not in entries and f"{model}:latest" in entries:
            model = f"{model}:latest"
        if model not in entries:
            have = ", ".join(entries) or "none"
            raise ModelNotFound(
                f"model '{model}' is not installed in Ollama at {self.base_url} (installed: {have}); run: ollama pull {model}"
            )
        # An empty generate request loads the model and reports load_duration.
        loaded = self._call("load", self.client.generate, model=model, prompt="")
        entry = entries[model]
        return ModelInfo(
            name=model,
            identity=f"digest:{entry['digest']}",
            quantization=entry["quantization"],
            context_size=None,
            load_s=(loaded.load_duration or 0) / NS or None,
            load_source="ollama:load_duration",
            size_bytes=int(entry["size_gb"] * 1e9) or None,
        )

    def generate(self, model: str, request: GenerationRequest, *, on_chunk: OnChunk | None = None) -> GenerationResult:
        """Stream /api/chat; the timeout is a wall-clock deadline on the whole request, retries included."""
        body = {
            "model": model,
            "messages": chat_messages(request),
            "stream": True,
            "options": {"num_predict": request.max_tokens, "temperature": request.temperature, "seed": request.seed},
        }
        result = GenerationResult(t_start=time.perf_counter())
        splitter = ThinkSplitter()
        deadline = result.t_start + request.timeout_s
        timeout = httpx.Timeout(request.timeout_s, connect=min(CONNECT_TIMEOUT_S, request.timeout_s))
        url = f"{self.base_url}/api/chat"
        finished = failed = False
        try:
            with request_deadline(deadline):
                opened = send_with_retries(
                    self.client._client, "POST", "/api/chat", url=url, deadline=deadline, json=body, timeout=timeout
                )
                response = opened.response
                try:
                    result.t_start, result.retries = opened.t_sent, opened.retries
                    if response.status_code >= 400:
                        raise self._status_error(response, model)
                    finished, failed = self._read_stream(response, result, splitter, on_chunk, deadline)
                finally:
                    response.close()
        except httpx.TimeoutException:
            result.timed_out = True
        except httpx.HTTPError as exc:
            error = translate_http_error(exc, url)
            if result.t_first_chunk is None and isinstance(error, BackendUnreachable):
                raise BackendUnreachable(
                    f"cannot connect to Ollama at {self.base_url}: is `ollama serve` running and is the URL right?"
                ) from exc
            result.error, failed = f"Ollama at {self.base_url} went away mid-stream ({error})", True
        finish_text(result, splitter)
        settle_status(result, finished=finished, failed=failed)
        if result.stream_status == "truncated":
            result.error = (
                f"Ollama at {self.base_url} closed the stream early: {result.total_chunks} chunks and no final "
                "'done' message (the server may have crashed or unloaded the model)"
            )
        if result.output_tokens is None:
            result.output_tokens = result.total_chunks
        return result

    def _status_error(self, response: httpx.Response, model: str) -> BackendError:
        """Ollama's error statuses carry {"error": "..."}; a 404 means the model is not installed."""
        try:
            text = response.read().decode("utf-8", "replace")
        except httpx.HTTPError:
            text = ""
        try:
            payload = json.loads(text)
            detail = str(payload.get("error", text)) if isinstance(payload, dict) else text
        except ValueError:
            detail = text
        detail = detail.strip()[:200] or response.reason_phrase
        if response.status_code == 404:
            return ModelNotFound(f"Ollama at {self.base_url}: {detail}; run: ollama pull {model}")
        hint = "; the server failed: check its log (journalctl -u ollama)" if response.status_code >= 500 else ""
        return BackendError(f"Ollama at {self.base_url}/api/chat answered HTTP {response.status_code}: {detail}{hint}")

    def _read_stream(
        self,
        response: httpx.Response,
        result: GenerationResult,
        splitter: ThinkSplitter,
        on_chunk: OnChunk | None,
        deadline: float,
    ) -> tuple[bool, bool]:
        """Consume the NDJSON lines; returns (finished, failed). Malformed lines are counted and skipped."""
        done = False
        for line in stream_lines(response, deadline=deadline, result=result):
            if not line.strip():
                continue
            problem: str | None = None
            try:
                raw = json.loads(line)
            except ValueError:
                raw, problem = None, f"{line[:80]!r} is not JSON"
            if problem is None and not isinstance(raw, dict):
                problem = f"expected a JSON object, got {line[:80]!r}"
            if isinstance(raw, dict) and "error" in raw:
                result.error = f"Ollama at {self.base_url} reported an error mid-stream: {str(raw['error'])[:200]}"
                return False, True
            part: Any = None
            if problem is None:
                try:
                    part = self._ollama.ChatResponse.model_validate(raw)
                except ValidationError as exc:
                    problem = f"not a chat message ({exc.errors()[0]['msg']}): {line[:80]!r}"
            if problem is not None or part is None:
                result.malformed_chunks += 1
                if result.error is None:
                    result.error = f"{self._malformed}: {problem}"
                continue
            message = part.message
            if message.thinking:
                result.add_chunk(reasoning=message.thinking, is_reasoning=True)
                if on_chunk:
                    on_chunk("reasoning", message.thinking)
            if message.content:
                record_text(result, splitter, message.content, on_chunk)
            if part.done:
                self._read_counters(part, result)
                done = True
                break
            if time.perf_counter() > deadline:
                result.timed_out = True
                break
        note_malformed(result, self._malformed)
        return done, False

    @property
    def _malformed(self) -> str:
        return f"malformed NDJSON line from Ollama at {self.base_url}"

    @staticmethod
    def _read_counters(part: Any, result: GenerationResult) -> None:
        result.prompt_tokens = part.prompt_eval_count
        result.output_tokens = part.eval_count
        result.token_source = "ollama eval_count"
        result.prompt_eval_s = (part.prompt_eval_duration or 0) / NS or None
        result.decode_s = (part.eval_duration or 0) / NS or None
        result.decode_counted = part.eval_count
        result.load_s = (part.load_duration or 0) / NS or None
        result.counter_source = "ollama prompt_eval_duration/eval_duration (ns)"
        result.finish_reason = part.done_reason

    def close(self) -> None:
        self.client._client.close()


class _Busy(Exception):
    """Ollama answered 429/503: worth asking again after a wait."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail
