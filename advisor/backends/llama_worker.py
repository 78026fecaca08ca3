"""The llama.cpp worker: a child process that owns one loaded model and streams tokens to its parent.

Run as `python -m advisor.backends.llama_worker`. It speaks JSON lines: commands on stdin, events on
stdout. llama.cpp runs here and only here, so a crash in native code (SIGSEGV, SIGILL, an OOM kill)
ends this process and becomes a clear message in the parent, never a dead app. The parent keeps the
clock: it timestamps every chunk as it arrives, so TTFT and decode rates include nothing of ours
but the pipe (measured by benchmarks/bench_calibration.py against llama.cpp's own counters).

Commands: {"op": "load", "path", "n_ctx", "n_threads", "n_gpu_layers"} -> {"ev": "loaded", ...}
          {"op": "generate", "messages", "max_tokens", "temperature", "seed"} -> {"ev": "chunk"}... {"ev": "done"}
          {"op": "tokenize", "text", "add_bos"} -> {"ev": "tokens", "n"}
          {"op": "info"} -> {"ev": "info", "system_info", "gpu_offload", "version"}
Any failure llama.cpp reports as a Python exception is {"ev": "error", "message"}; the worker lives on.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import IO, Any


def build_info(llama_cpp: Any) -> dict[str, Any]:
    """What this llama.cpp build is: CPU features compiled in, GPU offload support, version."""
    raw = llama_cpp.llama_print_system_info()
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return {
        "system_info": text.strip(),
        "gpu_offload": bool(llama_cpp.llama_supports_gpu_offload()),
        "version": getattr(llama_cpp, "__version__", "unknown"),
    }


class Worker:
    """The command loop; one model at a time."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.llm: Any = None
        import llama_cpp  # imported here, in the child, never in the app's process

        self.lib = llama_cpp

    def send(self, event: dict[str, Any]) -> None:
        self.out.write(json.dumps(event) + "\n")
        self.out.flush()

    def handle(self, cmd: dict[str, Any]) -> None:
        op = cmd.get("op")
        try:
            if op == "load":
                self.load(cmd)
            elif op == "generate":
                self.generate(cmd)
            elif op == "tokenize":
                n = len(self.llm.tokenize(cmd["text"].encode("utf-8"), add_bos=bool(cmd.get("add_bos", False))))
                self.send({"ev": "tokens", "n": n})
            elif op == "info":
                self.send({"ev": "info", **build_info(self.lib)})
            else:
                self.send({"ev": "error", "message": f"unknown command {op!r}"})
        except (ValueError, RuntimeError, KeyError, TypeError, AttributeError) as exc:
            self.send({"ev": "error", "message": f"{type(exc).__name__}: {exc}"})

    def load(self, cmd: dict[str, Any]) -> None:
        if self.llm is not None:
            self.llm.close()
            self.llm = None
        started = time.perf_counter()
        self.llm = self.lib.Llama(
            model_path=cmd["path"],
            n_ctx=int(cmd.get("n_ctx", 2048)),
            n_threads=cmd.get("n_threads"),
            n_gpu_layers=int(cmd.get("n_gpu_layers", 0)),
            verbose=False,
        )
        meta = getattr(self.llm, "metadata", {}) or {}
        self.send(
            {
                "ev": "loaded",
                "load_s": time.perf_counter() - started,
                "size_label": meta.get("general.size_label"),
                "n_threads": self.llm.n_threads if hasattr(self.llm, "n_threads") else cmd.get("n_threads"),
                **build_info(self.lib),
            }
        )

    def generate(self, cmd: dict[str, Any]) -> None:
        ctx = self.llm._ctx.ctx
        self.lib.llama_perf_context_reset(ctx)
        finish = None
        stream = self.llm.create_chat_completion(
            messages=cmd["messages"],
            max_tokens=int(cmd.get("max_tokens", 64)),
            temperature=float(cmd.get("temperature", 0.0)),
            seed=int(cmd.get("seed", 42)),
            stream=True,
        )
        for chunk in stream:
            choice = chunk["choices"][0]
            delta = choice.get("delta", {})
            text = delta.get("content")
            if text is not None and "role" not in delta:
                self.send({"ev": "chunk", "text": text})
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
        perf = self.lib.llama_perf_context(ctx)
        self.send(
            {
                "ev": "done",
                "finish_reason": finish,
                "n_p_eval": int(perf.n_p_eval),
                "t_p_eval_ms": float(perf.t_p_eval_ms),
                "n_eval": int(perf.n_eval),
                "t_eval_ms": float(perf.t_eval_ms),
            }
        )


def main() -> None:
    """Keep the protocol on a private copy of stdout: native code that prints to fd 1 goes to stderr."""
    proto = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        worker = Worker(proto)
    except ImportError as exc:
        proto.write(json.dumps({"ev": "fatal", "message": f"llama-cpp-python is not importable: {exc}"}) + "\n")
        proto.flush()
        return
    proto.write(json.dumps({"ev": "ready"}) + "\n")
    proto.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            cmd = json.loads(line)
        except ValueError:
            worker.send({"ev": "error", "message": "malformed command"})
            continue
        if cmd.get("op") == "exit":
            break
        worker.handle(cmd)


if __name__ == "__main__":
    main()
