"""knowledge/runtime_pairs.csv: the same model and machine measured on llama.cpp and on a second runtime, sourced.

Each row is one published pair (same source, same machine, same model, same quantization class). Per platform and
runtime the pairs give a decode (and, where published, prefill) ratio runtime / llama.cpp: the median, an 80% range
and how many pairs and sources stand behind it. runtime_figures (options.py) turns a llama.cpp prediction into
another runtime's figure with it when the user has not calibrated that runtime.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from advisor.errors import KnowledgeError
from advisor.knowledge import _check_date, _check_url

FILE = "runtime_pairs.csv"
RUNTIME_A = "llama.cpp"  # the reference every ratio is taken against: the runtime the speed predictor places models on
RUNTIMES_B = ("ollama", "mlx", "lm-studio", "vllm")
PLATFORMS = ("apple", "nvidia", "amd", "intel", "cpu")
REQUIRED = (
    "hardware_name",
    "hardware_type",
    "model_name",
    "quantization",
    "runtime_a",
    "runtime_b",
    "tg_a",
    "tg_b",
    "source_url",
    "source_date",
)
OPTIONAL_NUMBERS = ("pp_a", "pp_b", "prompt_tokens")
RANGE = (0.10, 0.90)  # the "80% range": 10th to 90th percentile of the pair ratios
# A prefill ratio moves TTFT only when pairs from this many sources agree on a method: one source's prompt-length
# mismatch (e.g. llama-bench pp512 against a chat prompt of 80 tokens) must not set a runtime's TTFT on its own.
MIN_PREFILL_SOURCES = 2


@dataclass(frozen=True)
class RuntimePair:
    """One published pair: the same model, quantization class and machine on llama.cpp and on `runtime`."""

    hardware_name: str
    platform: str
    model: str
    quantization: str
    runtime: str
    tg_a: float
    tg_b: float
    pp_a: float | None
    pp_b: float | None
    prompt_tokens: int | None
    source_url: str
    source_date: str
    notes: str = ""

    @property
    def decode_ratio(self) -> float:
        return self.tg_b / self.tg_a

    @property
    def prefill_ratio(self) -> float | None:
        return self.pp_b / self.pp_a if self.pp_a and self.pp_b else None


@dataclass(frozen=True)
class Spread:
    """Ratios of one metric: median, 80% range, pair and source counts."""

    median: float
    low: float
    high: float
    pairs: int
    sources: tuple[str, ...]

    def words(self) -> str:
        return f"{self.pairs} sourced pairs, median ratio {self.median:.2f} (range {self.low:.2f}–{self.high:.2f})"


@dataclass(frozen=True)
class RuntimeRatio:
    """runtime / llama.cpp on one platform: decode always, prefill where pairs publish it."""

    platform: str
    runtime: str
    decode: Spread
    prefill: Spread | None = None

    @property
    def prefill_applies(self) -> bool:
        return self.prefill is not None and len(self.prefill.sources) >= MIN_PREFILL_SOURCES

    def basis(self) -> str:
        """basis: N sourced pairs, median ratio x (range a–b), and what the prefill pairs say."""
        out = f"{self.decode.words()} ({self.runtime} / llama.cpp decode on {self.platform})"
        if self.prefill is not None:
            used = (
                "applied to TTFT" if self.prefill_applies else f"not applied: fewer than {MIN_PREFILL_SOURCES} sources"
            )
            out += f"; prefill {self.prefill.words()}, {used}"
        return out

    def as_json(self) -> dict[str, object]:
        return {
            "platform": self.platform,
            "runtime": self.runtime,
            "decode_ratio": round(self.decode.median, 3),
            "decode_ratio_range": [round(self.decode.low, 3), round(self.decode.high, 3)],
            "pairs": self.decode.pairs,
            "sources": list(self.decode.sources),
            "prefill_ratio": round(self.prefill.median, 3) if self.prefill else None,
            "prefill_ratio_range": [round(self.prefill.low, 3), round(self.prefill.high, 3)] if self.prefill else None,
            "prefill_pairs": self.prefill.pairs if self.prefill else 0,
            "prefill_applied": self.prefill_applies,
        }


def _positive(path: Path, line: int, column: str, text: str, *, whole: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        raise KnowledgeError(
            f"{path}, row {line}, column {column}: '{text}' is not a number; write the published tok/s as a plain "
            "number (leave pp_a, pp_b and prompt_tokens empty where the source gives none)"
        ) from None
    if not math.isfinite(value) or value <= 0 or (whole and not value.is_integer()):
        kind = "a whole number above 0" if whole else "a finite number above 0"
        raise KnowledgeError(f"{path}, row {line}, column {column}: {text} must be {kind}")
    return value


def _rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    """The file's rows with their line numbers; required cells present, URL and date checked (as catalog.py does)."""
    if not path.exists():
        return []
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise KnowledgeError(
                    f"{path}: missing column(s) {', '.join(missing)}; the header is {', '.join(REQUIRED)}"
                )
            rows = []
            for line, raw in enumerate(reader, start=2):
                if None in raw:
                    raise KnowledgeError(f"{path}, row {line}: more cells than columns; quote cells with commas")
                row = {k: (v or "").strip() for k, v in raw.items()}
                for col in REQUIRED:
                    if not row.get(col):
                        raise KnowledgeError(
                            f"{path}, row {line}, column {col}: required, but empty; every pair needs "
                            f"{'the page it was read from' if col == 'source_url' else 'a value'} here"
                        )
                for col, check in (("source_url", _check_url), ("source_date", _check_date)):
                    try:
                        row[col] = check(row[col])
                    except ValueError as exc:
                        raise KnowledgeError(f"{path}, row {line}, column {col}: {exc}") from None
                rows.append((line, row))
    except (OSError, UnicodeDecodeError) as exc:
        raise KnowledgeError(f"{path}: cannot be read ({exc})") from exc
    return rows


def load_runtime_pairs(directory: Path) -> tuple[RuntimePair, ...]:
    """Read and validate knowledge/runtime_pairs.csv; a missing file is no pairs."""
    path = directory / FILE
    pairs = []
    for line, row in _rows(path):
        if row["hardware_type"] not in PLATFORMS:
            raise KnowledgeError(
                f"{path}, row {line}, column hardware_type: '{row['hardware_type']}' must be one of {', '.join(PLATFORMS)}"
            )
        if row["runtime_a"] != RUNTIME_A:
            raise KnowledgeError(
                f"{path}, row {line}, column runtime_a: '{row['runtime_a']}' must be {RUNTIME_A} (every ratio is "
                f"taken against llama.cpp); put the other runtime in runtime_b"
            )
        if row["runtime_b"] not in RUNTIMES_B:
            raise KnowledgeError(
                f"{path}, row {line}, column runtime_b: unknown runtime '{row['runtime_b']}'; "
                f"must be one of {', '.join(RUNTIMES_B)}"
            )
        tg_a, tg_b = (_positive(path, line, c, row[c]) for c in ("tg_a", "tg_b"))
        pp_a, pp_b, prompt = (
            _positive(path, line, c, row[c], whole=c == "prompt_tokens") if row.get(c) else None
            for c in OPTIONAL_NUMBERS
        )
        if (pp_a is None) != (pp_b is None):
            raise KnowledgeError(
                f"{path}, row {line}, column {'pp_b' if pp_b is None else 'pp_a'}: a prefill pair needs both pp_a "
                "and pp_b; give both from the same source or leave both empty"
            )
        pairs.append(
            RuntimePair(
                row["hardware_name"],
                row["hardware_type"],
                row["model_name"],
                row["quantization"],
                row["runtime_b"],
                tg_a,
                tg_b,
                pp_a,
                pp_b,
                int(prompt) if prompt else None,
                row["source_url"],
                row["source_date"],
                row.get("notes", ""),
            )
        )
    return tuple(pairs)


def quantile(values: list[float], q: float) -> float:
    """Linear-interpolation quantile of a non-empty list (numpy's default method)."""
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def spread(values: list[float], sources: list[str]) -> Spread:
    return Spread(
        quantile(values, 0.5),
        quantile(values, RANGE[0]),
        quantile(values, RANGE[1]),
        len(values),
        tuple(dict.fromkeys(sources)),
    )


def runtime_ratios(pairs: tuple[RuntimePair, ...]) -> dict[tuple[str, str], RuntimeRatio]:
    """(platform, runtime) -> the ratio its pairs give; platforms and runtimes without pairs are absent."""
    groups: dict[tuple[str, str], list[RuntimePair]] = {}
    for pair in pairs:
        groups.setdefault((pair.platform, pair.runtime), []).append(pair)
    out = {}
    for (platform, runtime), group in groups.items():
        with_pp = [p for p in group if p.prefill_ratio is not None]
        out[(platform, runtime)] = RuntimeRatio(
            platform,
            runtime,
            spread([p.decode_ratio for p in group], [p.source_url for p in group]),
            spread([p.prefill_ratio for p in with_pp if p.prefill_ratio], [p.source_url for p in with_pp])
            if with_pp
            else None,
        )
    return out


@lru_cache(maxsize=4)
def cached_runtime_ratios(directory: str) -> dict[tuple[str, str], RuntimeRatio]:
    return runtime_ratios(load_runtime_pairs(Path(directory)))
