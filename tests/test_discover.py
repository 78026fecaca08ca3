"""Models the user already has, and their own tasks: found and loaded from real files, nothing downloaded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from advisor.backends.ollama import OllamaBackend
from advisor.calibrate import USER_PREFIX, load_suite, with_user_tasks
from advisor.discover import default_roots, find_files, find_ollama
from advisor.errors import InputError
from advisor.knowledge import Knowledge
from advisor.settings import BENCHMARKS_DIR, DEFAULT_SUITE
from tests.test_backends_unit import ollama_handler


def gguf(path: Path, size: int = 64) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"GGUF" + b"\0" * (size - 4))
    return path


def fake_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    gguf(
        home
        / ".lmstudio/models/lmstudio-community/Qwen3-Coder-30B-A3B-Instruct-GGUF/Qwen3-Coder-30B-A3B-Instruct-Q4_K_M.gguf"
    )
    gguf(
        home
        / ".cache/huggingface/hub/models--unsloth--gemma-4-26b-a4b-it-GGUF/snapshots/0f3c/gemma-4-26b-a4b-it-UD-Q4_K_XL.gguf"
    )
    (home / ".lmstudio/models/broken.gguf").write_bytes(b"not a gguf at all")
    (home / ".cache/huggingface/hub/README.txt").write_text("not a model")
    return home


def test_gguf_files_in_lm_studio_and_hugging_face_caches_are_found(tmp_path: Path, knowledge: Knowledge) -> None:
    home = fake_home(tmp_path)
    extra = tmp_path / "mine"
    gguf(extra / "deep/er/qwen3-8b-Q8_0.gguf")
    found = find_files(default_roots({"HOME": str(home), "ADVISOR_MODEL_DIRS": str(extra)}), knowledge=knowledge)
    by_source = {f.source: f for f in found}
    assert set(by_source) == {"lm-studio", "huggingface", "folder"}
    assert len(found) == 3, "a file without the GGUF magic is not a model"
    assert (
        by_source["lm-studio"].catalog_id == "qwen3-coder-30b-a3b" and by_source["lm-studio"].quantization == "Q4_K_M"
    )
    hf = by_source["huggingface"]
    assert hf.name == "gemma-4-26b-a4b-it-GGUF/gemma-4-26b-a4b-it-UD-Q4_K_XL" and hf.catalog_id == "gemma-4-26b-a4b"
    assert by_source["folder"].catalog_id == "qwen3-8b" and Path(by_source["folder"].path or "").exists()


def test_the_same_file_through_two_roots_is_listed_once(tmp_path: Path) -> None:
    home = fake_home(tmp_path)
    link = tmp_path / "link"
    link.symlink_to(home / ".lmstudio/models")
    roots = default_roots({"HOME": str(home), "ADVISOR_MODEL_DIRS": str(link)})
    assert len(find_files(roots)) == 2


def test_ollama_models_come_from_its_api_and_a_stopped_ollama_lists_nothing(knowledge: Knowledge) -> None:
    replay = OllamaBackend("http://ollama.test:11434", transport=httpx.MockTransport(ollama_handler([])))  # type: ignore[arg-type]
    found = find_ollama(knowledge=knowledge, backend=replay)
    assert found and all(f.source == "ollama" and f.path is None for f in found)
    assert any(f.catalog_id == "qwen3-0.6b" for f in found), [f.as_json() for f in found]

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    stopped = OllamaBackend("http://127.0.0.1:9", transport=httpx.MockTransport(refuse))
    assert find_ollama(backend=stopped) == []


def test_the_models_command_lists_what_it_found(tmp_path: Path) -> None:
    home = fake_home(tmp_path)
    env = {**os.environ, "HOME": str(home), "ADVISOR_HOME": str(tmp_path / "advisor")}
    env.pop("HF_HOME", None)
    env.pop("HF_HUB_CACHE", None)
    done = subprocess.run(
        [sys.executable, "-m", "advisor", "models", "--ollama-url", "http://127.0.0.1:1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "qwen3-coder-30b-a3b" in done.stdout and "gemma-4-26b-a4b" in done.stdout


def test_your_own_tasks_run_beside_the_suite_in_quick_mode_too() -> None:
    base = load_suite(DEFAULT_SUITE)
    suite = with_user_tasks(base, BENCHMARKS_DIR / "suites" / "your-tasks.example.yaml")
    added = [t for t in suite.tasks if t["id"].startswith(USER_PREFIX)]
    assert len(added) == 2 and len(suite.tasks) == len(base.tasks) + 2
    assert all(t["id"] in suite.quick_tasks for t in added)
    assert {t["category"] for t in added} == {"your tasks"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tasks: []", "empty 'tasks' list"),
        ("tasks: [1]", "must be a mapping"),
        ("tasks: [{id: a, prompt: hi}]", "needs id, prompt"),
        ("tasks: [{id: a, prompt: hi, check: {kind: nope}}]", "bad check"),
        ("just text", "must be a mapping with a 'tasks' list"),
    ],
)
def test_a_bad_tasks_file_names_the_file_and_the_fix(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=expected) as err:
        with_user_tasks(load_suite(DEFAULT_SUITE), path)
    assert str(path) in str(err.value)
