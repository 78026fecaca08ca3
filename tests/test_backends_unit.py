"""Backends on replayed wire formats (httpx.MockTransport): SSE, NDJSON, errors, reasoning, counters."""

from __future__ import annotations

import json

import httpx
import pytest

from advisor.backends import make_backend
from advisor.backends.base import GenerationRequest, GenerationResult, ThinkSplitter
from advisor.backends.ollama import OllamaBackend
from advisor.backends.openai_compat import OpenAICompatBackend
from advisor.calibrate import derive_metrics
from advisor.errors import BackendError, BackendUnreachable, InputError, ModelNotFound

REQ = GenerationRequest(prompt="hi", max_tokens=16, timeout_s=10)


def sse(chunks: list[object], *, done: bool = True) -> bytes:
    lines = [f"data: {c if isinstance(c, str) else json.dumps(c)}\n\n" for c in chunks]
    if done:
        lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


def delta(**fields: object) -> dict[str, object]:
    return {"choices": [{"index": 0, "delta": fields, "finish_reason": None}]}


def openai_backend(handler: object) -> OpenAICompatBackend:
    return OpenAICompatBackend("http://test/v1", transport=httpx.MockTransport(handler))  # type: ignore[arg-type]


# --- <think> splitting -------------------------------------------------------------------------------


def test_think_splitter_handles_tags_split_across_chunks() -> None:
    splitter = ThinkSplitter()
    pieces = [splitter.feed(t) for t in ["<thi", "nk>plan", " more</th", "ink>Answer", " here"]]
    reasoning = "".join(p[0] for p in pieces)
    answer = "".join(p[1] for p in pieces)
    assert reasoning == "plan more"
    assert answer == "Answer here"
    assert [p[2] for p in pieces] == [True, True, True, True, False]


def test_think_splitter_passes_plain_text_and_keeps_lone_angle_brackets() -> None:
    splitter = ThinkSplitter()
    out = [splitter.feed(t) for t in ["a < b", " and <", "x>"]]
    assert "".join(p[1] for p in out) + splitter.flush()[1] == "a < b and <x>"


# --- metric math -------------------------------------------------------------------------------------


def test_derive_metrics_follows_the_design_definitions() -> None:
    r = GenerationResult(t_start=10.0)
    for i, t in enumerate([10.5, 10.6, 10.7, 10.8, 10.9]):
        r.add_chunk(reasoning="x" if i < 2 else "", answer="" if i < 2 else "w", is_reasoning=i < 2, now=t)
    r.prompt_tokens = 100
    m = derive_metrics(r)
    assert m["ttft_s"] == pytest.approx(0.5)
    assert m["ttfa_s"] == pytest.approx(0.7)
    assert m["e2e_s"] == pytest.approx(0.9)
    assert m["decode_tps"] == pytest.approx(4 / 0.4)  # (tokens - 1) / (last - first)
    assert m["tpot_ms"] == pytest.approx(100.0)
    assert m["prefill_tps"] == pytest.approx(100 / 0.5)
    assert m["prefill_source"] == "prompt tokens / TTFT"
    assert (m["reasoning_tokens"], m["answer_tokens"]) == (2, 3)


def test_derive_metrics_prefers_runtime_counters_and_says_so() -> None:
    r = GenerationResult(t_start=0.0)
    r.add_chunk(answer="a", now=1.0)
    r.add_chunk(answer="b", now=1.5)
    r.prompt_tokens, r.prompt_eval_s, r.decode_s, r.decode_counted = 200, 0.4, 0.5, 10
    r.counter_source = "llama.cpp server timings"
    m = derive_metrics(r)
    assert m["prefill_tps"] == pytest.approx(500)
    assert m["prefill_source"] == "llama.cpp server timings"
    assert m["counter_decode_tps"] == pytest.approx(20)


def test_no_chunk_means_no_timings_rather_than_zeros() -> None:
    r = GenerationResult(t_start=0.0, timed_out=True)
    m = derive_metrics(r)
    assert "ttft_s" not in m and m["timed_out"] is True


# --- OpenAI-compatible ---------------------------------------------------------------------------------


def test_openai_stream_reads_reasoning_usage_and_timings() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        assert body["stream"] is True and body["max_tokens"] == 16
        chunks = [
            delta(role="assistant"),
            delta(reasoning_content="think"),
            delta(reasoning_content=" hard"),
            delta(content="Hel"),
            delta(content="lo"),
            {
                "choices": [],
                "usage": {
                    "prompt_tokens": 12,
                    "completion_tokens": 4,
                    "completion_tokens_details": {"reasoning_tokens": 2},
                },
                "timings": {"prompt_n": 12, "prompt_ms": 24.0, "predicted_n": 4, "predicted_ms": 80.0},
            },
        ]
        return httpx.Response(200, content=sse(chunks), headers={"content-type": "text/event-stream"})

    result = openai_backend(handler).generate("m", REQ)
    assert result.answer_text == "Hello"
    assert result.reasoning_text == "think hard"
    assert (result.prompt_tokens, result.output_tokens, result.reasoning_tokens) == (12, 4, 2)
    assert result.counter_source == "llama.cpp server timings"
    m = derive_metrics(result)
    assert m["prefill_tps"] == pytest.approx(500)
    assert m["counter_decode_tps"] == pytest.approx(50)
    assert (m["reasoning_tokens"], m["answer_tokens"]) == (2, 2)


def test_openai_think_tags_in_content_count_as_reasoning() -> None:
    chunks = [delta(content="<think>"), delta(content="hmm"), delta(content="</think>"), delta(content="OK")]
    result = openai_backend(lambda r: httpx.Response(200, content=sse(chunks))).generate("m", REQ)
    assert result.answer_text == "OK"
    assert result.reasoning_text == "hmm"
    assert (result.reasoning_chunks, result.answer_chunks) == (3, 1)


def test_openai_malformed_chunk_keeps_what_came_before() -> None:
    chunks = [delta(content="par"), delta(content="tial"), "{not json"]
    result = openai_backend(lambda r: httpx.Response(200, content=sse(chunks, done=False))).generate("m", REQ)
    assert result.answer_text == "partial"
    assert result.error is not None and "malformed SSE chunk" in result.error


def test_openai_http_error_names_the_status() -> None:
    backend = openai_backend(lambda r: httpx.Response(500, text="boom"))
    with pytest.raises(BackendError, match="HTTP 500: boom"):
        backend.generate("m", REQ)


def test_openai_unknown_model_lists_what_is_served() -> None:
    backend = openai_backend(lambda r: httpx.Response(200, json={"data": [{"id": "a"}, {"id": "b"}]}))
    with pytest.raises(ModelNotFound, match="it serves: a, b"):
        backend.load("zzz")


def test_openai_unreachable_server_is_a_clear_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(BackendUnreachable, match="is the server running"):
        openai_backend(refuse).generate("m", REQ)


def test_openai_list_models_on_a_non_api_url() -> None:
    backend = openai_backend(lambda r: httpx.Response(200, text="<html>hello</html>"))
    with pytest.raises(BackendError, match="did not return JSON"):
        backend.list_models()


def test_make_backend_rejects_unknown_kind_and_bad_urls() -> None:
    with pytest.raises(InputError, match="embedded, openai, ollama"):
        make_backend("vllm-magic")
    with pytest.raises(InputError, match="--url is required"):
        make_backend("openai")
    with pytest.raises(InputError, match="http://"):
        make_backend("openai", url="localhost:8080")


# --- Ollama (documented /api shapes replayed) -------------------------------------------------------

TAGS = {
    "models": [
        {
            "name": "qwen3:0.6b",
            "model": "qwen3:0.6b",
            "modified_at": "2026-01-01T00:00:00Z",
            "size": 522653767,
            "digest": "7df6b6e09427a769808717c0a93cadc4ae99ed4eb8bf5ca557c90846becea435",
            "details": {
                "format": "gguf",
                "family": "qwen3",
                "parameter_size": "751.63M",
                "quantization_level": "Q4_K_M",
            },
        }
    ]
}


def ndjson(parts: list[dict[str, object]]) -> bytes:
    return "".join(json.dumps(p) + "\n" for p in parts).encode()


def ollama_handler(chat_parts: list[dict[str, object]] | bytes) -> object:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/tags":
            return httpx.Response(200, json=TAGS)
        if request.url.path == "/api/version":
            return httpx.Response(200, json={"version": "0.12.0"})
        if request.url.path == "/api/generate":
            return httpx.Response(
                200,
                json={
                    "model": "qwen3:0.6b",
                    "created_at": "2026-01-01T00:00:00Z",
                    "response": "",
                    "done": True,
                    "load_duration": 1_500_000_000,
                },
            )
        if request.url.path == "/api/chat":
            body = json.loads(request.content)
            if body["model"] != "qwen3:0.6b":
                return httpx.Response(404, json={"error": f'model "{body["model"]}" not found, try pulling it first'})
            content = chat_parts if isinstance(chat_parts, bytes) else ndjson(chat_parts)
            return httpx.Response(200, content=content, headers={"content-type": "application/x-ndjson"})
        return httpx.Response(404, json={"error": "not found"})

    return handler


def msg(content: str = "", thinking: str | None = None, done: bool = False, **extra: object) -> dict[str, object]:
    message: dict[str, object] = {"role": "assistant", "content": content}
    if thinking is not None:
        message["thinking"] = thinking
    return {"model": "qwen3:0.6b", "created_at": "2026-01-01T00:00:00Z", "message": message, "done": done, **extra}


FINAL = msg(
    done=True,
    done_reason="stop",
    total_duration=900_000_000,
    load_duration=1_000_000,
    prompt_eval_count=26,
    prompt_eval_duration=130_000_000,
    eval_count=5,
    eval_duration=250_000_000,
)


def ollama(parts: list[dict[str, object]] | bytes) -> OllamaBackend:
    return OllamaBackend("http://ollama.test:11434", transport=httpx.MockTransport(ollama_handler(parts)))  # type: ignore[arg-type]


def test_ollama_stream_reads_thinking_and_nanosecond_counters() -> None:
    backend = ollama([msg(thinking="Let me"), msg(thinking=" see"), msg("Par"), msg("is"), FINAL])
    assert backend.version() == "ollama 0.12.0"
    info = backend.load("qwen3:0.6b")
    assert info.load_s == pytest.approx(1.5)
    assert info.quantization == "Q4_K_M" and info.identity.startswith("digest:7df6")
    result = backend.generate("qwen3:0.6b", REQ)
    assert result.answer_text == "Paris" and result.reasoning_text == "Let me see"
    m = derive_metrics(result)
    assert m["prefill_tps"] == pytest.approx(26 / 0.13)
    assert m["counter_decode_tps"] == pytest.approx(5 / 0.25)
    assert m["output_tokens"] == 5 and m["reasoning_tokens"] == 2 and m["answer_tokens"] == 3
    assert "ns" in (m["prefill_source"] or "")


def test_ollama_model_not_installed_says_how_to_pull() -> None:
    backend = ollama([FINAL])
    with pytest.raises(ModelNotFound, match="ollama pull llama3"):
        backend.load("llama3")
    with pytest.raises(ModelNotFound, match="not found"):
        backend.generate("llama3", REQ)


def test_ollama_malformed_ndjson_keeps_partial_answer() -> None:
    body = ndjson([msg("Hel"), msg("lo")]) + b"{broken\n"
    result = ollama(body).generate("qwen3:0.6b", REQ)
    assert result.answer_text == "Hello"
    assert result.error and "malformed" in result.error


def test_ollama_unreachable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    backend = OllamaBackend("http://127.0.0.1:9", transport=httpx.MockTransport(refuse))
    with pytest.raises(BackendUnreachable, match="ollama serve"):
        backend.list_models()


def test_server_token_count_tries_the_known_tokenize_endpoints() -> None:
    def llama_cpp(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/tokenize" and "content" in json.loads(request.content):
            return httpx.Response(200, json={"tokens": [1, 2, 3]})
        return httpx.Response(404)

    def python_server(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/extras/tokenize":
            return httpx.Response(200, json={"tokens": [1, 2]})
        return httpx.Response(404)

    def vllm(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/tokenize" and "prompt" in json.loads(request.content):
            return httpx.Response(200, json={"count": 4, "tokens": [1, 2, 3, 4]})
        return httpx.Response(400)

    assert openai_backend(llama_cpp).server_token_count("a b c") == 3
    assert openai_backend(python_server).server_token_count("a b") == 2
    assert openai_backend(vllm).server_token_count("a b c d") == 4
    assert openai_backend(lambda r: httpx.Response(404)).server_token_count("x") is None


# --- stream labels (hardening) -------------------------------------------------------------------------


def test_openai_odd_chunk_shapes_are_counted_not_raised() -> None:
    chunks: list[object] = [
        delta(content="a"),
        {"choices": [{"delta": "not an object"}]},
        {"choices": [{"delta": {"content": 7}}]},
        {"choices": [1, 2]},
        {"choices": [], "usage": {"prompt_tokens": "many", "completion_tokens": -3}},
        {"choices": [{"index": 0, "delta": {"content": "b"}, "finish_reason": "stop"}]},
    ]
    result = openai_backend(lambda r: httpx.Response(200, content=sse(chunks))).generate("m", REQ)
    assert result.answer_text == "ab"
    assert (result.malformed_chunks, result.stream_status) == (3, "malformed")
    assert result.prompt_tokens is None and result.output_tokens == 2  # nonsense counters are not taken


def test_openai_done_without_finish_reason_is_complete_and_no_marker_is_truncated() -> None:
    done = openai_backend(lambda r: httpx.Response(200, content=sse([delta(content="x")]))).generate("m", REQ)
    assert done.stream_status == "complete" and done.error is None
    cut = openai_backend(lambda r: httpx.Response(200, content=sse([delta(content="x")], done=False))).generate(
        "m", REQ
    )
    assert cut.stream_status == "truncated" and cut.error and "closed the stream early" in cut.error


def test_openai_a_page_that_is_not_a_stream_is_malformed() -> None:
    result = openai_backend(lambda r: httpx.Response(200, text="<html>\n<body>hi</body>\n</html>\n")).generate("m", REQ)
    assert result.stream_status == "malformed" and result.malformed_chunks == 3 and result.t_first_chunk is None


def test_ollama_truncated_stream_is_labelled() -> None:
    result = ollama([msg("Par"), msg("is")]).generate("qwen3:0.6b", REQ)
    assert result.answer_text == "Paris" and result.stream_status == "truncated"
    assert result.error and "no final 'done' message" in result.error
    complete = ollama([msg("Par"), msg("is"), FINAL]).generate("qwen3:0.6b", REQ)
    assert complete.stream_status == "complete" and complete.error is None


def test_openai_lines_that_are_not_utf8_or_too_long_are_malformed(monkeypatch: pytest.MonkeyPatch) -> None:
    from advisor.backends import openai_compat

    monkeypatch.setattr(openai_compat, "MAX_LINE_BYTES", 1000)
    body = sse([delta(content="a")], done=False) + b"data: \xff\xfe\n\n" + b"data: " + b"x" * 5000 + b"\n\n"
    body += sse([{"choices": [{"index": 0, "delta": {"content": "b"}, "finish_reason": "stop"}]}])
    result = openai_backend(lambda r: httpx.Response(200, content=body)).generate("m", REQ)
    assert result.answer_text == "ab" and (result.malformed_chunks, result.stream_status) == (2, "malformed")
    assert result.error and "2 malformed line(s) skipped" in result.error
