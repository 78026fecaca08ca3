"""ADVISOR_* settings in one place, read from the environment when asked (never at import)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from advisor.errors import InputError

REPO_ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE_DIR = REPO_ROOT / "knowledge"
BENCHMARKS_DIR = REPO_ROOT / "benchmarks"
DEFAULT_SUITE = BENCHMARKS_DIR / "suites" / "calibration-v1.yaml"
DEFAULT_TIMEOUT_S = 60.0
MAX_TIMEOUT_S = 86_400.0  # a day: longer is a typo, and sockets refuse timeouts past what a C timeval holds


@dataclass(frozen=True)
class Settings:
    """Where state lives and the default limits; override with ADVISOR_HOME, ADVISOR_STORE, ADVISOR_TIMEOUT_S."""

    home: Path
    store_path: Path
    timeout_s: float
    knowledge_dir: Path


def get_settings() -> Settings:
    """Read the settings from the environment now (tests point ADVISOR_HOME at a temp dir)."""
    home = Path(os.environ.get("ADVISOR_HOME", Path.home() / ".decision-lens")).expanduser()
    store = Path(os.environ.get("ADVISOR_STORE", home / "measurements.sqlite")).expanduser()
    timeout = timeout_from_env(os.environ.get("ADVISOR_TIMEOUT_S"))
    knowledge = Path(os.environ.get("ADVISOR_KNOWLEDGE_DIR", KNOWLEDGE_DIR)).expanduser()
    return Settings(home=home, store_path=store, timeout_s=timeout, knowledge_dir=knowledge)


def timeout_from_env(value: str | None) -> float:
    """ADVISOR_TIMEOUT_S as seconds; unset or empty means the default, anything else must be a sane number."""
    if value is None or not value.strip():
        return DEFAULT_TIMEOUT_S
    fix = f"set it to a positive number of seconds (at most {MAX_TIMEOUT_S:g}), e.g. ADVISOR_TIMEOUT_S=60, or unset it"
    try:
        seconds = float(value)
    except ValueError:
        raise InputError(f"ADVISOR_TIMEOUT_S={value!r} is not a number; {fix}") from None
    if not math.isfinite(seconds):
        raise InputError(f"ADVISOR_TIMEOUT_S={value!r} is not a finite number; {fix}")
    if seconds <= 0:
        raise InputError(f"ADVISOR_TIMEOUT_S={value!r} must be more than 0; {fix}")
    if seconds > MAX_TIMEOUT_S:
        raise InputError(f"ADVISOR_TIMEOUT_S={value!r} is more than a day; {fix}")
    return seconds
