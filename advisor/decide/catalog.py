"""The decision's own knowledge files: model traits, device prices and serving benchmarks, each row sourced."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import get_args

from advisor.errors import KnowledgeError
from advisor.knowledge import TIER_WORDS, _check_date, _check_url, hardware_tokens
from advisor.schemas import Task

TRAITS = ("fim", "reasoning_tokens", "runtime", "diffusion_steps", "diffusion_canvas_tokens", "specialist")
WORKFLOW_TASKS: tuple[str, ...] = get_args(Task)
WHOLE_NUMBER_TRAITS = ("reasoning_tokens", "diffusion_steps", "diffusion_canvas_tokens")
# Runtimes the speed predictor can place a model on (llama.cpp, Ollama); a model served only by another runtime
# stays listed, excluded with the runtime named.
PREDICTED_RUNTIMES = ("llama.cpp", "ollama")
OPEN_WEIGHT_CLASS = "*open-weight"
HOSTED_CLASS = "*hosted"


@dataclass(frozen=True)
class Sourced:
    """One sourced value: what it is, where it was read and when."""

    value: str
    source_url: str
    source_date: str
    note: str = ""


@dataclass(frozen=True)
class DevicePrice:
    device: str
    price_usd: float
    source_url: str
    source_date: str
    note: str = ""


@dataclass(frozen=True)
class DecisionCatalog:
    """knowledge/model_traits.csv and knowledge/device_prices.csv, validated."""

    traits: dict[str, dict[str, Sourced]] = field(default_factory=dict)
    prices: tuple[DevicePrice, ...] = ()
    serving: tuple[ServingCurve, ...] = ()  # knowledge/serving_benchmarks.csv

    def trait(self, model_id: str, name: str) -> Sourced | None:
        return self.traits.get(model_id, {}).get(name)

    def is_fim(self, model_id: str) -> bool:
        found = self.trait(model_id, "fim")
        return found is not None and found.value == "yes"

    def specialist(self, model_id: str) -> tuple[str, ...]:
        """The workflow tasks a model is trained for when it is a task specialist (sourced trait), else ()."""
        found = self.trait(model_id, "specialist")
        return specialist_tasks(found.value) if found else ()

    def runtime(self, model_id: str) -> Sourced | None:
        """The runtime that serves a model when it is not llama.cpp/Ollama (a sourced trait), else None."""
        return self.trait(model_id, "runtime")

    def reasoning_tokens(self, model_id: str, *, hosted: bool) -> tuple[float, Sourced] | None:
        """Typical thinking tokens per answer: the model's own sourced figure, else its class's."""
        found = self.trait(model_id, "reasoning_tokens") or self.trait(
            HOSTED_CLASS if hosted else OPEN_WEIGHT_CLASS, "reasoning_tokens"
        )
        return (float(found.value), found) if found else None

    def price_for(self, name: str | None) -> DevicePrice | None:
        """The price row whose every device-name token appears in the name (the most specific wins)."""
        if not name:
            return None
        wanted = hardware_tokens(name)
        best, best_score = None, 0.0
        for row in self.prices:
            have = hardware_tokens(row.device)
            # Every word of the row in the name, and the same tier words (an M4 Max is not an M4 Pro).
            if not have or not have <= wanted or (have & TIER_WORDS) != (wanted & TIER_WORDS):
                continue
            score = len(have) / len(wanted | have)
            if score > best_score:
                best, best_score = row, score
        return best


def _rows(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    if not path.exists():
        return []
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise KnowledgeError(f"{path}: missing column(s) {', '.join(missing)}")
            rows = []
            for line, row in enumerate(reader, start=2):
                if None in row:
                    raise KnowledgeError(f"{path}, row {line}: more cells than columns; quote cells with commas")
                for col in required:
                    if not (row.get(col) or "").strip():
                        raise KnowledgeError(f"{path}, row {line}, column {col}: required, but empty")
                try:
                    _check_url(row["source_url"])
                    row["source_date"] = _check_date(row["source_date"])
                except ValueError as exc:
                    raise KnowledgeError(f"{path}, row {line}: {exc}") from None
                rows.append({k: (v or "").strip() for k, v in row.items()})
    except (OSError, UnicodeDecodeError) as exc:
        raise KnowledgeError(f"{path}: cannot be read ({exc})") from exc
    return rows


def load_catalog(directory: Path) -> DecisionCatalog:
    """Read and validate both files; a missing file is an empty table."""
    traits: dict[str, dict[str, Sourced]] = {}
    path = directory / "model_traits.csv"
    for line, row in enumerate(_rows(path, ("model_id", "trait", "value", "source_url", "source_date")), start=2):
        if row["trait"] not in TRAITS:
            raise KnowledgeError(f"{path}, row {line}: trait '{row['trait']}' must be one of {', '.join(TRAITS)}")
        if row["trait"] in WHOLE_NUMBER_TRAITS and not row["value"].isdigit():
            raise KnowledgeError(f"{path}, row {line}: {row['trait']} '{row['value']}' must be a whole number")
        if row["trait"] == "specialist":
            tasks = specialist_tasks(row["value"])
            unknown = [t for t in tasks if t not in WORKFLOW_TASKS]
            if unknown or not tasks:
                raise KnowledgeError(
                    f"{path}, row {line}: specialist '{', '.join(unknown) or row['value']}' is not a workflow task; "
                    "name the task(s) "
                    f"the model is trained for, separated by '|', from: {', '.join(WORKFLOW_TASKS)}"
                )
        traits.setdefault(row["model_id"], {})[row["trait"]] = Sourced(
            row["value"], row["source_url"], row["source_date"], row.get("note", "")
        )
    prices = []
    path = directory / "device_prices.csv"
    for line, row in enumerate(_rows(path, ("device", "price_usd", "source_url", "source_date")), start=2):
        try:
            price = float(row["price_usd"])
        except ValueError:
            raise KnowledgeError(f"{path}, row {line}: price_usd '{row['price_usd']}' is not a number") from None
        if not 0 < price < 10_000_000:
            raise KnowledgeError(f"{path}, row {line}: price_usd {price} must be between 0 and 10,000,000")
        prices.append(DevicePrice(row["device"], price, row["source_url"], row["source_date"], row.get("note", "")))
    return DecisionCatalog(traits, tuple(prices), load_serving(directory))


def specialist_tasks(value: str) -> tuple[str, ...]:
    """'tool-calling|extraction' -> ('tool-calling', 'extraction')."""
    return tuple(t.strip() for t in value.split("|") if t.strip())


@lru_cache(maxsize=4)
def cached_catalog(directory: str) -> DecisionCatalog:
    return load_catalog(Path(directory))


SERVING_REQUIRED = (
    "engine",
    "hardware",
    "memory_bandwidth_gbs",
    "model",
    "active_params_b",
    "quantization",
    "concurrency",
    "output_tok_s",
    "source_url",
    "source_date",
)


@dataclass(frozen=True)
class ServingCurve:
    """One published concurrency sweep of a batching server: aggregate output tok/s at each concurrency."""

    engine: str
    hardware: str
    memory_bandwidth_gbs: float
    model: str
    quantization: str
    points: tuple[tuple[int, float], ...]  # (concurrency, output tok/s), ascending concurrency, starting at 1
    source_url: str
    source_date: str

    @property
    def peak_concurrency(self) -> int:
        """The lowest concurrency at the highest throughput: beyond it only queueing grows."""
        best = max(t for _, t in self.points)
        return next(c for c, t in self.points if t == best)

    def gain(self, concurrency: float) -> float:
        """Aggregate throughput at a concurrency over throughput at 1 (log-linear between levels, capped at the peak)."""
        c = min(max(concurrency, 1.0), float(self.peak_concurrency))
        base = self.points[0][1]
        for (c0, t0), (c1, t1) in zip(self.points, self.points[1:], strict=False):
            if c0 <= c <= c1:
                w = math.log(c / c0) / math.log(c1 / c0)
                return (t0 + w * (t1 - t0)) / base
        return self.points[-1][1] / base if c >= self.points[-1][0] else 1.0


def load_serving(directory: Path) -> tuple[ServingCurve, ...]:
    """knowledge/serving_benchmarks.csv as curves (one per engine, hardware, model, quantization and source)."""
    path = directory / "serving_benchmarks.csv"
    groups: dict[tuple[str, str, str, str, str], list[dict[str, str]]] = {}
    for line, row in enumerate(_rows(path, SERVING_REQUIRED), start=2):
        try:
            c, t, bw = int(row["concurrency"]), float(row["output_tok_s"]), float(row["memory_bandwidth_gbs"])
        except ValueError:
            raise KnowledgeError(
                f"{path}, row {line}: concurrency, output_tok_s and bandwidth must be numbers"
            ) from None
        if c < 1 or t <= 0 or bw <= 0:
            raise KnowledgeError(f"{path}, row {line}: concurrency >= 1, output_tok_s > 0 and bandwidth > 0 required")
        key = (row["engine"], row["hardware"], row["model"], row["quantization"], row["source_url"])
        groups.setdefault(key, []).append(row)
    curves = []
    for (engine, hardware, model, quant, url), rows in groups.items():
        points = tuple(sorted((int(r["concurrency"]), float(r["output_tok_s"])) for r in rows))
        if points[0][0] != 1:
            raise KnowledgeError(f"{path}: the sweep of {engine} on {hardware} ({url}) needs a concurrency-1 row")
        curves.append(
            ServingCurve(
                engine,
                hardware,
                float(rows[0]["memory_bandwidth_gbs"]),
                model,
                quant,
                points,
                url,
                max(r["source_date"] for r in rows),
            )
        )
    return tuple(curves)


def nearest_curve(curves: tuple[ServingCurve, ...], engine: str, bandwidth_gbs: float) -> ServingCurve | None:
    """The engine's published sweep on the hardware whose memory bandwidth is nearest (log scale)."""
    mine = [c for c in curves if c.engine == engine]
    return min(mine, key=lambda c: abs(math.log(c.memory_bandwidth_gbs / bandwidth_gbs))) if mine else None
