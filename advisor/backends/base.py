"""The one small protocol every runtime implements, and the stream bookkeeping they share."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

ChunkKind = Literal["reasoning", "answer"]


@dataclass(frozen=True)
class GenerationRequest:
    """One chat request: deterministic by default, bounded by a timeout."""

    prompt: str
    system: str | None = None
    max_tokens: int = 64
    temperature: float = 0.0
    seed: int = 42
    timeout_s: float = 60.0


def chat_messages(request: GenerationRequest) -> list[dict[str, str]]:
    """The chat messages of a request: an optional system prompt, then the user prompt."""
    system = [{"role": "system", "content": request.system}] if request.system else []
    return [*system, {"role": "user", "content": request.prompt}]


@dataclass(frozen=True)
class ModelInfo:
    """What a runtime says about a model once loaded: identity for the measurement record."""

    name: str
    identity: str  # file hash or registry digest; "unknown" when the runtime will not say
    quantization: str | None
    context_size: int | None
    load_s: float | None
    load_source: str  # "embedded" | "ollama:load_duration" | "not reported"
    size_bytes: int | None = None
    params_b: float | None = None
    device: str | None = None  # what ran the model: "cpu", "metal", "cuda"...; None when the runtime will not say


@dataclass
class GenerationResult:
    """Raw timings of one streamed request; metrics are derived from it in calibrate.py."""

    t_start: float
    t_first_chunk: float | None = None
    t_first_answer: float | None = None
    t_last: float | None = None
    chunk_times: list[float] = field(default_factory=list)
    answer_text: str = ""
    reasoning_text: str = ""
    reasoning_chunks: int = 0
    answer_chunks: int = 0
    prompt_tokens: int | None = None
    output_tokens: int | None = None  # from runtime counters when present, else chunk count
    reasoning_tokens: int | None = None  # from runtime counters when present
    token_source: str = "stream chunks"
    prompt_eval_s: float | None = None  # runtime's own prompt-processing time
    decode_s: float | None = None  # runtime's own generation time
    decode_counted: int | None = None  # tokens the runtime's decode time covers
    counter_source: str | None = None  # where prompt_eval_s/decode_s came from
    load_s: float | None = None
    timed_out: bool = False
    finish_reason: str | None = None
    error: str | None = None  # a mid-stream failure; what came before it is kept
    # How the stream ended: complete | truncated (closed early, no finish marker) | malformed (bad chunks seen)
    # | error (failed mid-stream) | timed_out. Only "complete" streams belong in speed medians.
    stream_status: str = "complete"
    malformed_chunks: int = 0  # stream lines or chunks that were not valid; each was skipped
    retries: int = 0  # attempts refused as busy (HTTP 429/503) before this one streamed

    def add_chunk(
        self, *, reasoning: str = "", answer: str = "", is_reasoning: bool = False, now: float | None = None
    ) -> None:
        """Record one streamed chunk (one token for llama.cpp-style streams), counted once under its main kind."""
        now = time.perf_counter() if now is None else now
        if self.t_first_chunk is None:
            self.t_first_chunk = now
        self.t_last = now
        self.chunk_times.append(now)
        self.reasoning_text += reasoning
        self.answer_text += answer
        if answer.strip():
            self.answer_chunks += 1
            if self.t_first_answer is None:
                self.t_first_answer = now
        elif is_reasoning or reasoning:
            self.reasoning_chunks += 1
        else:
            self.answer_chunks += 1

    @property
    def total_chunks(self) -> int:
        return self.reasoning_chunks + self.answer_chunks


OnChunk = Callable[[ChunkKind, str], None]


class ThinkSplitter:
    """Splits streamed text into reasoning and answer at <think>...</think> tags, across chunk borders."""

    OPEN, CLOSE = "<think>", "</think>"

    def __init__(self) -> None:
        self.inside = False
        self.pending = ""

    def feed(self, text: str) -> tuple[str, str, bool]:
        """Return (reasoning, answer, touched_reasoning); a partial tag waits for the next chunk."""
        self.pending += text
        reasoning, answer, touched = "", "", self.inside
        while True:
            tag = self.CLOSE if self.inside else self.OPEN
            at = self.pending.find(tag)
            if at < 0:
                break
            if self.inside:
                reasoning += self.pending[:at]
            else:
                answer += self.pending[:at]
            self.pending = self.pending[at + len(tag) :]
            self.inside = not self.inside
            touched = True
        keep = _partial_suffix(self.pending, self.CLOSE if self.inside else self.OPEN)
        emit, self.pending = self.pending[: len(self.pending) - keep], self.pending[len(self.pending) - keep :]
        if self.inside:
            reasoning += emit
        else:
            answer += emit
        return reasoning, answer, touched or bool(keep)

    def flush(self) -> tuple[str, str]:
        """Whatever is held back at the end of the stream, as (reasoning, answer)."""
        rest, self.pending = self.pending, ""
        return (rest, "") if self.inside else ("", rest)


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of text that is a proper prefix of tag."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:n]):
            return n
    return 0


def record_text(
    result: GenerationResult, splitter: ThinkSplitter, text: str, on_chunk: OnChunk | None, *, now: float | None = None
) -> None:
    """Feed one streamed content chunk through the <think> splitter into the result (arrival time `now`)."""
    reasoning, answer, touched = splitter.feed(text)
    result.add_chunk(reasoning=reasoning, answer=answer, is_reasoning=touched, now=now)
    if on_chunk:
        on_chunk("answer" if answer.strip() else "reasoning" if touched else "answer", text)


def finish_text(result: GenerationResult, splitter: ThinkSplitter) -> None:
    """Append text the splitter held back at the end of the stream (no new chunk time)."""
    reasoning, answer = splitter.flush()
    result.reasoning_text += reasoning
    result.answer_text += answer


class Backend(Protocol):
    """A local runtime: embedded llama.cpp, an OpenAI-compatible server, or Ollama."""

    kind: str

    def version(self) -> str:
        """The runtime's version string, or 'unknown'."""
        ...

    def list_models(self) -> list[str]:
        """Models the runtime can serve right now."""
        ...

    def load(self, model: str) -> ModelInfo:
        """Make the model ready (load or warm it) and say what it is."""
        ...

    def generate(self, model: str, request: GenerationRequest, *, on_chunk: OnChunk | None = None) -> GenerationResult:
        """Stream one chat completion and time it; timeouts are reported, not raised."""
        ...

    def close(self) -> None:
        """Release the model or connection."""
        ...
