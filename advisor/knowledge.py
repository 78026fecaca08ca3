"""Load, validate and cross-check knowledge/: every fact with its source URL and date."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from advisor.errors import KnowledgeError
from advisor.schemas import format_validation_error

SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's safe loader when present: ~10x faster
VARIANT = re.compile(r"^(sxm\d*|pcie\d*|ddr\d*|\d+gb|\d+ch|\d+core)$")  # variants, not model numbers
# Words that make a different product out of the same model number (RTX 4070 vs 4070 Ti, M4 vs M4 Pro,
# a laptop part vs the desktop card): a catalog row matches only when these agree.
TIER_WORDS = frozenset(
    {
        "ti",
        "super",
        "xt",
        "xtx",
        "gre",
        "laptop",
        "mobile",
        "max",
        "max+",
        "pro",
        "ultra",
        "nano",
        "nx",
        "agx",
        "rtx",
        "gtx",
        "rx",
        "arc",
        "ryzen",
        "xeon",
        "epyc",
    }
)
DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
MIX = re.compile(r"^[1-9]\d*(/[1-9]\d*)+$")
SCORE_KEYS = (
    "mmlu_pro",
    "mmlu",
    "gpqa_diamond",
    "livecodebench",
    "humaneval",
    "mbpp",
    "ifeval",
    "bfcl",
    "math",
    "gsm8k",
    "arena_hard",
    "hellaswag",
)


def _check_url(url: str) -> str:
    if not (url.startswith(("http://", "https://")) or url.startswith("shared/SEEDS.md")):
        raise ValueError("source must be an http(s) URL (or shared/SEEDS.md#section for the seed articles)")
    return url


def _check_date(date: Any) -> str:
    text = str(date).strip("'\" ")
    if not DATE.match(text):
        raise ValueError(f"date '{date}' must be YYYY, YYYY-MM or YYYY-MM-DD")
    return text


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str
    date: str
    fields: list[str]
    note: str | None = None

    _url = field_validator("url")(classmethod(lambda cls, v: _check_url(v)))
    _date = field_validator("date", mode="before")(classmethod(lambda cls, v: _check_date(v)))


class ModelSpec(BaseModel):
    """An open-weight model: architecture for memory and speed, scores for capability."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.\-]*$")
    name: str
    family: str
    total_params_b: float | None = Field(default=None, gt=0)
    active_params_b: float | None = Field(default=None, gt=0)
    is_moe: bool = False
    layers: int | None = Field(default=None, gt=0)
    kv_heads: int | None = Field(default=None, gt=0)
    head_dim: int | None = Field(default=None, gt=0)
    context_k: float | None = Field(default=None, gt=0)
    license: str | None = None
    released: str | None = None
    reasoning: Literal["none", "optional", "always"] = "none"
    typical_thinking_tokens: int | None = Field(default=None, ge=0)
    diffusion: bool = False
    gguf_gb: dict[str, float] = Field(default_factory=dict)
    scores: dict[str, float | None] = Field(default_factory=dict)
    sources: list[Source] = Field(min_length=1)

    @field_validator("released", mode="before")
    @classmethod
    def _released(cls, v: Any) -> str | None:
        return None if v is None else _check_date(v)

    @field_validator("scores")
    @classmethod
    def _scores(cls, v: dict[str, float | None]) -> dict[str, float | None]:
        for key, value in v.items():
            if key not in SCORE_KEYS:
                raise ValueError(f"unknown score '{key}'; allowed: {', '.join(SCORE_KEYS)}")
            if value is not None and not 0 <= value <= 100:
                raise ValueError(f"score {key}={value} must be a percentage 0-100")
        return v

    def uncovered_facts(self) -> list[str]:
        """Non-empty facts that no source lists: each must be sourced."""
        covered = {f for s in self.sources for f in s.fields}
        facts = [
            k
            for k in (
                "total_params_b",
                "active_params_b",
                "layers",
                "kv_heads",
                "head_dim",
                "context_k",
                "license",
                "released",
                "typical_thinking_tokens",
            )
            if getattr(self, k) is not None
        ]
        facts += [f"gguf_gb.{q}" for q in self.gguf_gb if "gguf_gb" not in covered]
        facts += [f"scores.{k}" for k, v in self.scores.items() if v is not None and "scores" not in covered]
        return [f for f in facts if f not in covered]

    @property
    def params_for_speed(self) -> float | None:
        return self.active_params_b or self.total_params_b


CSV_SCHEMAS: dict[str, dict[str, Any]] = {
    "hardware.csv": {
        "required": ["name", "type", "source_url", "source_date"],
        "numeric": ["memory_gb", "memory_bandwidth_gbs", "fp16_tflops", "power_w", "memory_channels", "memory_mts"],
        "enums": {"type": ("apple", "nvidia", "amd", "intel", "cpu")},
    },
    "hosted.csv": {
        "required": ["id", "provider", "model", "source_url", "source_date"],
        "numeric": [
            "input_usd_per_m",
            "output_usd_per_m",
            "cached_input_usd_per_m",
            "batch_discount_pct",
            "context_k",
            "max_output_k",
            "typical_ttft_s",
            "typical_tps",
            "score_mmlu_pro",
            "score_gpqa_diamond",
            "score_livecodebench",
            "score_ifeval",
            "score_bfcl",
        ],
        "enums": {"reasoning": ("yes", "no", "optional", ""), "zero_retention_option": ("yes", "no", "unknown", "")},
    },
    "speed_measurements.csv": {
        "required": ["hardware_name", "hardware_type", "model_name", "backend", "source_url", "source_date"],
        "numeric": [
            "memory_bandwidth_gbs",
            "memory_gb",
            "total_params_b",
            "active_params_b",
            "bits_per_weight",
            "pp_tok_s",
            "tg_tok_s",
            "prompt_tokens",
            "gen_tokens",
            "ttft_ms",
            "threads",
        ],
        # prompt_mix: a benchmark's fixed test mix ("1024/4096/..." prompt tokens) when its figures are means over
        # it (LocalScore), instead of one prompt_tokens; flash_attn yes/no; build: the runtime's build or version.
        "enums": {
            "hardware_type": ("apple", "nvidia", "amd", "intel", "cpu"),
            "is_moe": ("yes", "no", ""),
            "flash_attn": ("yes", "no", ""),
        },
        "mixes": ["prompt_mix"],
    },
    "quantization.csv": {
        "required": ["quantization", "bits_per_weight", "source_url", "source_date"],
        "numeric": ["bits_per_weight", "ppl_delta_pct", "kld"],
        "enums": {},
    },
}


def read_csv(path: Path) -> list[dict[str, Any]]:
    """Read and validate one knowledge CSV; numbers parsed, empty cells None; errors give row and column."""
    schema = CSV_SCHEMAS[path.name]
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            missing = [c for c in schema["required"] if c not in header]
            if missing:
                raise KnowledgeError(f"{path}: missing column(s) {', '.join(missing)}")
            rows = []
            for line, raw in enumerate(reader, start=2):
                rows.append(_parse_row(path, line, raw, schema))
    except OSError as exc:
        raise KnowledgeError(f"{path}: cannot be read ({exc.strerror})") from exc
    return rows


def _parse_row(path: Path, line: int, raw: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    if None in raw:
        raise KnowledgeError(f"{path}, row {line}: more cells than columns; quote cells that contain commas")
    row: dict[str, Any] = {k: (v.strip() if isinstance(v, str) else v) for k, v in raw.items()}
    for col in schema["required"]:
        if not row.get(col):
            raise KnowledgeError(f"{path}, row {line}, column {col}: required, but empty")
    for col in schema["numeric"]:
        value = row.get(col)
        if value in (None, ""):
            row[col] = None
            continue
        try:
            row[col] = float(value)
        except ValueError:
            raise KnowledgeError(f"{path}, row {line}, column {col}: '{value}' is not a number") from None
        if row[col] < 0 and col not in ("ppl_delta_pct",):
            raise KnowledgeError(f"{path}, row {line}, column {col}: {value} must not be negative")
    for col in schema.get("mixes", []):
        if row.get(col) and not MIX.match(row[col]):
            raise KnowledgeError(
                f"{path}, row {line}, column {col}: '{row[col]}' must be prompt lengths joined by '/', e.g. 1024/4096/16"
            )
    for col, allowed in schema["enums"].items():
        if col in row and (row[col] or "") not in allowed:
            raise KnowledgeError(
                f"{path}, row {line}, column {col}: '{row[col]}' must be one of {', '.join(a for a in allowed if a)}"
            )
    try:
        _check_url(row["source_url"])
        row["source_date"] = _check_date(row["source_date"])
    except ValueError as exc:
        raise KnowledgeError(f"{path}, row {line}: {exc}") from None
    return row


@dataclass
class Knowledge:
    """The validated catalog: models, hardware, hosted offers, published speeds, quantization data."""

    models: list[ModelSpec]
    hardware: list[dict[str, Any]]
    hosted: list[dict[str, Any]]
    speeds: list[dict[str, Any]]
    quantization: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)
    _hardware_matches: dict[str, dict[str, Any] | None] = field(default_factory=dict, repr=False)
    _model_matches: dict[str, ModelSpec | None] = field(default_factory=dict, repr=False)

    def model(self, model_id: str) -> ModelSpec | None:
        return next((m for m in self.models if m.id == model_id), None)

    @property
    def training_speeds(self) -> list[dict[str, Any]]:
        """Published speeds the predictor learns from: rows with a reason in `excluded` stay visible, unused."""
        return [r for r in self.speeds if not r.get("excluded")]

    @property
    def ttft_speeds(self) -> list[dict[str, Any]]:
        """Published rows that report time to first token with their prompt shape (prompt_tokens or prompt_mix)."""
        return [r for r in self.training_speeds if r.get("ttft_ms") and (r.get("prompt_tokens") or r.get("prompt_mix"))]

    def model_named(self, name: str) -> ModelSpec | None:
        """A catalog model by id or display name, ignoring case, spaces and punctuation (memoised: hot in ranking)."""
        if name not in self._model_matches:

            def norm(text: str) -> str:
                return re.sub(r"[^a-z0-9.]+", "", text.lower())

            wanted = norm(name)
            self._model_matches[name] = next(
                (m for m in self.models if wanted and wanted in (norm(m.id), norm(m.name))), None
            )
        return self._model_matches[name]

    def quant(self, name: str) -> dict[str, Any] | None:
        return next((q for q in self.quantization if q["quantization"].upper() == name.upper()), None)

    def resolve_quant(self, name: str) -> dict[str, Any] | None:
        """The quantization table row a name means, with `match` (exact | alias | family) and a `note`.

        Naming variants resolve to their row (i1-Q4_K_M, GPTQ-Int4, "MLX 4-bit", "FP8-Dynamic", "EXL2 4.0bpw");
        a variant the table does not list (Q4_K_XL, Unsloth UD-* mixes, "4-bit GGUF") falls back to its family's
        typical member with match "family", which predictions widen their interval for.
        """
        exact = self.quant(name.strip())
        if exact:
            return {**exact, "match": "exact", "note": ""}
        return _resolve_variant(self, name)

    def hardware_named(self, name: str) -> dict[str, Any] | None:
        """Best catalog match for a detected or typed name: all its model-number tokens present, then Jaccard."""
        if name not in self._hardware_matches:
            self._hardware_matches[name] = self._match_hardware(name)
        return self._hardware_matches[name]

    def _match_hardware(self, name: str) -> dict[str, Any] | None:
        if re.match(r"^\s*\d+\s*x\s", name.lower()):
            return None  # multi-GPU rigs: one card's figures would mislead
        wanted = hardware_tokens(name)
        wanted_outside = hardware_tokens(re.sub(r"\(.*?\)", " ", name))
        wanted_tiers = wanted_outside & TIER_WORDS
        wanted_words = {t for t in wanted_outside if not VARIANT.match(t)}
        best, best_score = None, 0.0
        for row in self.hardware:
            have = hardware_tokens(row["name"])
            row_tokens = hardware_tokens(re.sub(r"\(.*?\)", " ", row["name"]))
            key_tokens = {t for t in row_tokens if any(c.isdigit() for c in t) and not VARIANT.match(t)}
            if not have or not key_tokens <= wanted or (row_tokens & TIER_WORDS) != wanted_tiers:
                continue
            if not key_tokens and {t for t in row_tokens if not VARIANT.match(t)} != wanted_words:
                continue  # a name without a model number ("Jetson AGX Orin") must match word for word
            score = len(wanted & have) / len(wanted | have)
            if score > best_score:
                best, best_score = row, score
        return best


def _resolve_variant(knowledge: Knowledge, name: str) -> dict[str, Any] | None:
    text = re.sub(r"\(.*?\)", " ", name).strip().upper().replace(" ", "-")
    text = re.sub(r"-+", "-", text)

    def row(quant: str, match: str, note: str) -> dict[str, Any] | None:
        found = knowledge.quant(quant)
        return {**found, "match": match, "note": note} if found else None

    bpw = re.search(r"(\d+(?:\.\d+)?)-?BPW", text)
    if bpw and 1.0 <= float(bpw.group(1)) <= 32.0:
        value = float(bpw.group(1))
        return {
            "quantization": name,
            "bits_per_weight": value,
            "family": "named",
            "match": "alias",
            "note": f"bits_per_weight {value:g} as the name states (average bits per weight)",
        }
    bits_match = re.search(r"(?:INT|W)?(\d+)-?BIT|INT(\d+)", text)
    bits = next((int(g) for g in (bits_match.groups() if bits_match else ()) if g), None)
    if "MLX" in text:
        if "MXFP4" in text:
            return row("MLX-MXFP4", "alias", "")
        return row(f"MLX-{bits or 4}bit", "alias" if bits else "family", "" if bits else "MLX bits not stated: 4-bit")
    for key in ("NVFP4", "MXFP4", "FP8"):
        if key in text:
            return row(key, "alias", "")
    if "AWQ" in text:
        return row("AWQ-4bit", "alias", "")
    if "GPTQ" in text:
        return row(f"GPTQ-{8 if bits == 8 else 4}bit", "alias", "")
    if text in ("FP16", "HALF"):
        return row("F16", "alias", "")
    if text == "FP32":
        return row("F32", "alias", "")
    unsloth = text.startswith("UD-")
    text = re.sub(r"^(UD|I1|IMAT|IMATRIX)-", "", text)
    gguf = re.match(r"^(IQ|TQ|Q)(\d)(?:_(K|\d|NL))?(?:_(XXS|XS|S|M|L|XL|NL|P))?", text.replace("-", "_"))
    if gguf:
        kind, digit, sub, size = gguf.groups()
        base = "_".join(p for p in (kind + digit, sub, size) if p)
        found = knowledge.quant(base)
        if found and not unsloth:
            return {**found, "match": "alias", "note": f"read as {found['quantization']}"}
        if kind == "Q":
            families = [f"Q{digit}_K", f"Q{digit}"] if sub == "K" else [f"Q{digit}", f"Q{digit}_K"]
        else:
            families = [f"{kind}{digit}", kind]
        if found and unsloth:
            return {**found, "match": "family", "note": _unsloth_note(found["quantization"])}
        for family in families:
            members = sorted(
                (q for q in knowledge.quantization if q.get("family") == family), key=lambda q: q["bits_per_weight"]
            )
            if members:
                typical = members[len(members) // 2]
                note = (
                    _unsloth_note(typical["quantization"])
                    if unsloth
                    else f"'{name}' is not in the quantization table: read as its family's {typical['quantization']}"
                )
                return {**typical, "match": "family", "note": note + ", wider interval"}
    if bits and ("GGUF" in text or "BIT" in text):
        for family in (f"Q{bits}_K", f"Q{bits}"):
            members = sorted(
                (q for q in knowledge.quantization if q.get("family") == family), key=lambda q: q["bits_per_weight"]
            )
            if members:
                typical = members[len(members) // 2]
                return {
                    **typical,
                    "match": "family",
                    "note": f"{bits}-bit, type not stated: read as {typical['quantization']}, wider interval",
                }
    return None


def _unsloth_note(base: str) -> str:
    return (
        f"Unsloth dynamic mix: tensor types chosen per model (https://docs.unsloth.ai/basics/unsloth-dynamic-v2.0-ggufs), "
        f"read as {base}"
    )


@lru_cache(maxsize=4096)
def hardware_tokens(name: str) -> frozenset[str]:
    """Lower-case tokens of a hardware name, vendor words dropped, '40c' and '40-core' both read as '40 core'."""
    text = re.sub(r"\(host [^)]*\)", " ", name.lower())
    text = re.sub(r"(\d+)\s*-?\s*c(?:ore)?\b", r"\1core", text)
    tokens = frozenset(re.sub(r"[^a-z0-9+]+", " ", text).split())
    return tokens - {"nvidia", "geforce", "amd", "radeon", "intel", "the", "with", "gpu", "cpu", "core"}


def load_models(path: Path) -> list[ModelSpec]:
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    except OSError as exc:
        raise KnowledgeError(f"{path}: cannot be read ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise KnowledgeError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, list):
        raise KnowledgeError(f"{path}: must be a YAML list of models")
    models = []
    for index, entry in enumerate(raw):
        label = entry.get("id", f"#{index}") if isinstance(entry, dict) else f"#{index}"
        try:
            spec = ModelSpec.model_validate(entry)
        except ValidationError as exc:
            raise KnowledgeError(format_validation_error(exc, source=f"{path}, model {label}")) from None
        uncovered = spec.uncovered_facts()
        if uncovered:
            raise KnowledgeError(
                f"{path}, model {label}: facts without a source: {', '.join(uncovered)}; add them to a source's fields"
            )
        models.append(spec)
    ids = [m.id for m in models]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise KnowledgeError(f"{path}: repeated model ids: {', '.join(dupes)}")
    return models


def load_knowledge(directory: Path) -> Knowledge:
    """Load every knowledge file, validate it, and cross-check the speed data against physics."""
    knowledge = Knowledge(
        models=load_models(directory / "models.yaml"),
        hardware=read_csv(directory / "hardware.csv"),
        hosted=read_csv(directory / "hosted.csv"),
        speeds=read_csv(directory / "speed_measurements.csv"),
        quantization=read_csv(directory / "quantization.csv"),
    )
    _no_repeats(directory / "hardware.csv", [row["name"] for row in knowledge.hardware], "hardware name")
    _no_repeats(directory / "hosted.csv", [r.get("id") for r in knowledge.hosted], "offer id")
    _no_repeats(directory / "quantization.csv", [r.get("quantization") for r in knowledge.quantization], "quantization")
    for i, hw_row in enumerate(knowledge.hardware, start=2):
        channels, mts, bw = (hw_row.get(k) for k in ("memory_channels", "memory_mts", "memory_bandwidth_gbs"))
        if channels and mts and bw and abs(channels * mts * 8 / 1000 - bw) > 0.02 * bw:
            knowledge.warnings.append(
                f"hardware.csv row {i}: {hw_row['name']} bandwidth {bw} GB/s is not {channels:g} channels x {mts:g} MT/s "
                f"x 8 B = {channels * mts * 8 / 1000:g} GB/s; check the row"
            )
    for i, row in enumerate(knowledge.speeds, start=2):
        params, tg = row.get("active_params_b"), row.get("tg_tok_s")
        # Cross-check against the catalog's bandwidth and the quantization table when the row leaves them empty.
        hw = knowledge.hardware_named(row["hardware_name"]) if not row.get("memory_bandwidth_gbs") else None
        bw = row.get("memory_bandwidth_gbs") or (hw or {}).get("memory_bandwidth_gbs")
        quant = knowledge.quant(row.get("quantization") or "") if not row.get("bits_per_weight") else None
        bpw = row.get("bits_per_weight") or (quant or {}).get("bits_per_weight")
        if bw and params and bpw and tg and tg * params * bpw / 8 > 1.5 * bw:
            knowledge.warnings.append(
                f"speed_measurements.csv row {i}: {row['hardware_name']} {row['model_name']} tg {tg} tok/s needs more "
                f"than 1.5x the {bw} GB/s bandwidth; check the row"
            )
    return knowledge


def _no_repeats(path: Path, keys: list[Any], what: str) -> None:
    """A catalog key listed twice would make lookups depend on row order: an error naming the rows."""
    seen: dict[str, int] = {}
    for row, key in enumerate(keys, start=2):
        norm = str(key).strip().lower()
        if norm in seen:
            raise KnowledgeError(f"{path}: row {row} repeats the {what} '{key}' of row {seen[norm]}; keep one row")
        seen[norm] = row


@lru_cache(maxsize=4)
def cached_knowledge(directory: str) -> Knowledge:
    """Knowledge is read once per process and directory."""
    return load_knowledge(Path(directory))
