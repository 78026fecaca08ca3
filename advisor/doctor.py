"""`python -m advisor doctor`: can this install calibrate, store and predict here? One line per check, with the fix."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from advisor.errors import AdvisorError
from advisor.settings import get_settings

Status = Literal["ok", "warn", "fail"]
REINSTALL = "pip install --no-cache-dir --force-reinstall --no-deps -r requirements.txt"
# CPU features a portable build (requirements.txt) must not carry: a wheel built -march=native on another
# machine, or reused from pip's cache, has them, and AMX in particular faulted inside a Xeon VM.
NON_PORTABLE = ("AMX_INT8", "AVX512", "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16")
# Long enough to reach the matrix-multiply path (a 4-token prompt does not; a ~60-token one does).
SMOKE_PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle. " * 3


@dataclass(frozen=True)
class Check:
    """One doctor check: what was tried, how it went, and what to do about it."""

    name: str
    status: Status
    detail: str
    fix: str = ""
    required: bool = True

    def line(self) -> str:
        text = f"{self.status.upper():<4} {self.name}: {self.detail}"
        return text + (f" — fix: {self.fix}" if self.fix and self.status != "ok" else "")


def compiled_features(system_info: str) -> list[str]:
    """CPU features a llama.cpp build reports as compiled in ('AVX2 = 1' style pairs)."""
    return [name for name, on in re.findall(r"([A-Z0-9_]+)\s*=\s*(\d+)", system_info) if on != "0"]


def check_engine(*, model: str | None = None) -> list[Check]:
    """Load the default model in a worker and decode 8 tokens of a ~60-token prompt; say which build ran."""
    from advisor.backends.base import GenerationRequest
    from advisor.backends.embedded import DEFAULT_MODEL, EmbeddedBackend

    name = model or DEFAULT_MODEL
    backend = EmbeddedBackend(n_ctx=512)
    started = time.perf_counter()
    try:
        info = backend.load(name)
        result = backend.generate(name, GenerationRequest(prompt=SMOKE_PROMPT, max_tokens=8, timeout_s=60))
    except AdvisorError as exc:
        return [Check("engine", "fail", str(exc), fix=REINSTALL)]
    finally:
        build = dict(backend.build)
        backend.close()
    checks: list[Check] = []
    if result.timed_out or result.error or not result.total_chunks:
        why = "timed out" if result.timed_out else result.error or "no tokens came back"
        checks.append(Check("engine", "fail", f"{name} loaded but did not decode: {why}", fix=REINSTALL))
    else:
        checks.append(
            Check(
                "engine",
                "ok",
                f"{name} loaded in a worker ({info.load_s:.2f} s) and decoded {result.total_chunks} tokens "
                f"on {info.device or 'cpu'} in {time.perf_counter() - started:.1f} s",
            )
        )
    features = compiled_features(build.get("system_info", ""))
    risky = [f for f in features if f in NON_PORTABLE]
    shown = ", ".join(features) or "unknown"
    if risky:
        checks.append(
            Check(
                "llama.cpp build",
                "warn",
                f"compiled with {', '.join(risky)} (features: {shown}): not the portable build, it can crash on "
                "another CPU or inside a VM",
                fix=REINSTALL,
                required=False,
            )
        )
    else:
        offload = "GPU offload available" if build.get("gpu_offload") else "CPU only"
        checks.append(Check("llama.cpp build", "ok", f"portable CPU features: {shown}; {offload}", required=False))
    return checks


def check_writable_dir(name: str, folder: Path, fix: str) -> Check:
    """A folder we must write to: create it and write a file in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".doctor-", delete=True) as handle:
            handle.write(b"ok")
            handle.flush()
    except OSError as exc:
        return Check(name, "fail", f"cannot write in {folder} ({exc.strerror or exc})", fix=fix)
    return Check(name, "ok", f"{folder} is writable")


def check_store() -> Check:
    """The SQLite measurement store opens and takes a write."""
    from advisor.store import MeasurementStore

    path = get_settings().store_path
    try:
        store = MeasurementStore(path)
        try:
            with store.conn:
                store.conn.execute("CREATE TABLE IF NOT EXISTS doctor_probe (x INTEGER)")
                store.conn.execute("DROP TABLE doctor_probe")
        finally:
            store.close()
    except Exception as exc:  # noqa: BLE001 - any failure here is the finding
        return Check("store", "fail", f"{path}: {exc}", fix="set ADVISOR_STORE to a writable file path")
    return Check("store", "ok", f"{path} opens and takes writes")


def check_predictor() -> Check:
    """The fitted predictor loads from its cache (or fits, the first time)."""
    from advisor.api import predictor

    cache = get_settings().home / "cache"
    had_cache = cache.exists() and any(cache.glob("*.skops"))
    started = time.perf_counter()
    try:
        predictor()
    except AdvisorError as exc:
        return Check("predictor", "fail", str(exc), fix=f"delete {cache} and run again")
    how = "loaded from its cache" if had_cache else "fitted (first use) and cached"
    return Check("predictor", "ok", f"{how} in {time.perf_counter() - started:.1f} s")


def check_chromium() -> Check:
    """Chromium is only for the browser test; the app itself does not need it."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return Check("chromium", "ok", f"{found} (for the browser test)", required=False)
    return Check(
        "chromium",
        "warn",
        "not found: only the real-browser test needs it, the app does not",
        fix="apt-get install chromium (bash .ci/run does it)",
        required=False,
    )


def check_server(kind: str, url: str) -> Check:
    """An Ollama or OpenAI-compatible server answers and lists its models."""
    from advisor.backends import make_backend

    try:
        backend = make_backend(kind, url=url, api_key=os.environ.get("ADVISOR_API_KEY"))
        models = backend.list_models()
        backend.close()
    except AdvisorError as exc:
        return Check(f"{kind} server", "fail", str(exc), fix=f"start the server or check --url {url}")
    shown = ", ".join(models[:5]) + (" …" if len(models) > 5 else "")
    return Check(f"{kind} server", "ok", f"{url} answers; models: {shown or 'none listed'}")


def run_checks(
    *,
    backend: str | None = None,
    url: str | None = None,
    engine: bool = True,
    on_check: Callable[[Check], None] | None = None,
) -> list[Check]:
    """Every check, in order; on_check sees each as soon as it is done."""
    settings = get_settings()
    steps: list[Callable[[], list[Check]]] = []
    if engine:
        steps.append(check_engine)
    steps += [
        lambda: [check_store()],
        lambda: [check_writable_dir("cache", settings.home / "cache", "set ADVISOR_HOME to a writable folder")],
        lambda: [check_predictor()],
        lambda: [check_chromium()],
    ]
    if url and backend in ("openai", "ollama"):
        steps.append(lambda: [check_server(backend, url)])
    checks: list[Check] = []
    for step in steps:
        for check in step():
            checks.append(check)
            if on_check:
                on_check(check)
    return checks


def passed(checks: list[Check]) -> bool:
    """True when every required check passed (warnings do not fail the doctor)."""
    return all(c.status != "fail" for c in checks if c.required)
