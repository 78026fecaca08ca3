"""Models the user already has: GGUF files in LM Studio's and Hugging Face's caches and in folders they name,
and Ollama's installed models (through its API, when it runs). Nothing is downloaded; files are only listed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from advisor.backends.embedded import quantization_from_name
from advisor.errors import AdvisorError

MAX_FILES = 500  # a huge folder is listed partly, never walked for minutes
MAX_DEPTH = 6


@dataclass(frozen=True)
class FoundModel:
    """One model on this machine and where it was found."""

    name: str  # file stem or Ollama tag
    source: str  # lm-studio | huggingface | folder | ollama
    path: str | None  # the .gguf file (None for Ollama: it serves its own copy)
    size_gb: float | None
    quantization: str | None
    catalog_id: str | None = None  # the catalog model it is, when the name says so

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def default_roots(env: dict[str, str] | None = None) -> list[tuple[str, Path]]:
    """Where LM Studio and Hugging Face keep downloaded models, plus ADVISOR_MODEL_DIRS (os.pathsep-separated)."""
    env = dict(os.environ) if env is None else env
    home = Path(env.get("HOME") or Path.home())
    hf_home = Path(env["HF_HOME"]) if env.get("HF_HOME") else home / ".cache" / "huggingface"
    roots = [
        ("lm-studio", home / ".lmstudio" / "models"),
        ("lm-studio", home / ".cache" / "lm-studio" / "models"),
        ("huggingface", Path(env["HF_HUB_CACHE"]) if env.get("HF_HUB_CACHE") else hf_home / "hub"),
    ]
    roots += [("folder", Path(p).expanduser()) for p in env.get("ADVISOR_MODEL_DIRS", "").split(os.pathsep) if p]
    return roots


def _gguf_files(root: Path) -> Iterable[Path]:
    """GGUF files under a folder (links followed once, depth and count bounded), each checked by its magic bytes."""
    if not root.is_dir():
        return
    count = 0
    base_depth = len(root.parts)
    for folder, dirs, files in os.walk(root, followlinks=True):
        if len(Path(folder).parts) - base_depth >= MAX_DEPTH:
            dirs[:] = []
        for name in sorted(files):
            if not name.lower().endswith(".gguf"):
                continue
            path = Path(folder) / name
            try:
                with path.open("rb") as handle:
                    if handle.read(4) != b"GGUF":
                        continue
            except OSError:
                continue
            count += 1
            yield path
            if count >= MAX_FILES:
                return


def _display_name(path: Path, source: str) -> str:
    """Hugging Face keeps files under models--ORG--REPO/snapshots/HASH/: show REPO/FILE, not the hash."""
    if source == "huggingface":
        repo = next((p for p in path.parts if p.startswith("models--")), None)
        if repo:
            return repo.removeprefix("models--").split("--", 1)[-1] + "/" + path.stem
    return path.stem


def find_files(roots: list[tuple[str, Path]], *, knowledge: Any = None) -> list[FoundModel]:
    """Every GGUF file under the roots, once each (the same file through two roots is listed once)."""
    seen: set[Path] = set()
    found: list[FoundModel] = []
    for source, root in roots:
        for path in _gguf_files(root):
            real = path.resolve()
            if real in seen:
                continue
            seen.add(real)
            name = _display_name(path, source)
            found.append(
                FoundModel(
                    name=name,
                    source=source,
                    path=str(path),
                    size_gb=round(real.stat().st_size / 1e9, 3),
                    quantization=quantization_from_name(path.name),
                    catalog_id=match_catalog(name, knowledge),
                )
            )
    return found


def find_ollama(url: str | None = None, *, knowledge: Any = None, backend: Any = None) -> list[FoundModel]:
    """Ollama's installed models through its API; an Ollama that is not running lists nothing (not an error)."""
    if backend is None:
        from advisor.backends.ollama import DEFAULT_URL, OllamaBackend

        backend = OllamaBackend(url or DEFAULT_URL)
    try:
        installed = backend.installed()
    except AdvisorError:
        return []
    return [
        FoundModel(
            name=entry["model"],
            source="ollama",
            path=None,
            size_gb=entry.get("size_gb"),
            quantization=entry.get("quantization"),
            catalog_id=match_catalog(entry["model"], knowledge),
        )
        for entry in installed
    ]


def match_catalog(name: str, knowledge: Any) -> str | None:
    """The catalog model a file name or tag names: every word of its id appears in the name (the most words wins)."""
    if knowledge is None:
        return None
    words = set(re.split(r"[^a-z0-9.]+", name.lower()))
    best: tuple[int, str] | None = None
    for model in knowledge.models:
        id_words = {w for w in re.split(r"[^a-z0-9.]+", model.id.lower()) if w}
        if id_words and id_words <= words and (best is None or len(id_words) > best[0]):
            best = (len(id_words), model.id)
    return best[1] if best else None


def discover(
    *, extra_dirs: list[Path] | None = None, ollama_url: str | None = None, knowledge: Any = None
) -> list[FoundModel]:
    """Everything found: cache and folder files first, then Ollama's models."""
    roots = default_roots() + [("folder", Path(d).expanduser()) for d in extra_dirs or []]
    return find_files(roots, knowledge=knowledge) + find_ollama(ollama_url, knowledge=knowledge)
