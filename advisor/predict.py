"""Prediction, physically grounded: roofline baselines corrected by fitted models, memory fit, success.

Decode is memory-bandwidth bound: bytes per token = active params x bits per weight / 8, read from device
memory, and from host RAM for weights offloaded there. Prefill is compute bound (2 x active params FLOPs
per token). Gradient-boosted models learn the log-space ratio of measured decode and prefill speed to the
decode roofline from published measurements; a machine's own measurements shift it further.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from advisor.hardware import APPLE_GPU_WIRED_FRACTION
from advisor.knowledge import Knowledge

# The plain baseline the best-known fit calculator uses: bandwidth / model bytes x 0.55.
BASELINE_EFFICIENCY = 0.55
DEFAULT_BPW = {"Q4_K_M": 4.89, "Q4_0": 4.5, "Q8_0": 8.5, "F16": 16.0}
HW_TYPES = ("apple", "nvidia", "amd", "intel", "cpu")
BACKEND_FAMILIES = ("cuda", "metal", "vulkan", "rocm", "cpu", "sycl", "mlx", "ollama", "vllm", "other")
FEATURES = [
    "log_roofline_tg",
    "log_roofline_pp",
    "offload",
    "log_bw",
    "log_active_b",
    "log_total_b",
    "moe",
    "bpw",
    "log_tflops",
    "tflops_known",
    "log_prompt",
    "log_gen",
    *[f"hw_{t}" for t in HW_TYPES],
    *[f"be_{b}" for b in BACKEND_FAMILIES],
]
MISSING_HINTS = {
    "memory_bandwidth_gbs": "unknown hardware: give memory_bandwidth_gbs (GB/s)",
    "active_params_b": "unknown model: give total_params_b (and active_params_b for MoE)",
    "bits_per_weight": "unknown quantization: give bits_per_weight",
}
INTERVAL = (10, 90)  # an 80% prediction interval
# Weights that do not fit in device memory run from host RAM. Published rows rarely name the host's memory,
# so the roofline assumes dual-channel DDR4-3200 / DDR5 territory: 51.2-76.8 GB/s theoretical.
ASSUMED_HOST_BANDWIDTH_GBS = 60.0
MIN_SPREAD = 0.05  # the smallest expected log error a row is given: no prediction is ever certain
CALIBRATION_PRIOR_ROWS = 0.5  # how many measurements the fitted model's guess is worth against this machine's
# A measurement speaks less for a model of very different size (a 135M calibration model is overhead bound,
# an 8B one bandwidth bound): its weight falls by e for every e^2 (~7x) in active parameters between them.
SIZE_TRANSFER_SCALE = 2.0
RANDOM_STATE = 0
# Histogram boosting settings: the median-loss trees of GradientBoostingRegressor in a tenth of the fit time.
HGB_ITERATIONS = 150
HGB_LEARNING_RATE = 0.1
HGB_DEPTH = 4
HGB_MIN_LEAF = 4
HGB_MAX_FEATURES = 1.0
HGB_L2 = 0.0
SPREAD_ITERATIONS = 100
OOF_FOLDS = 5


def backend_family(backend: str | None) -> str:
    """Map a backend label (llama.cpp-cuda, ollama, mlx...) to the family the model learns from."""
    text = (backend or "").lower()
    for fam in ("ollama", "mlx", "vllm"):
        if fam in text:
            return fam
    for fam in ("cuda", "metal", "vulkan", "rocm", "sycl", "cpu"):
        if fam in text:
            return fam
    return "other"


def _num(value: Any) -> float | None:
    """A float from a cell, or None for empty / non-numeric / non-positive-infinite cells."""
    if value is None or value == "":
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def complete_row(row: dict[str, Any], knowledge: Knowledge) -> tuple[dict[str, Any], list[str]]:
    """Fill empty hardware and quantization facts from the catalog; say what was filled or is missing."""
    row = dict(row)
    notes: list[str] = []
    hw = knowledge.hardware_named(str(row.get("hardware_name") or "")) if row.get("hardware_name") else None
    for col, cat in (
        ("memory_bandwidth_gbs", "memory_bandwidth_gbs"),
        ("memory_gb", "memory_gb"),
        ("fp16_tflops", "fp16_tflops"),
    ):
        if _num(row.get(col)) is None and hw and hw.get(cat) is not None:
            row[col] = hw[cat]
            notes.append(f"{col} from catalog '{hw['name']}'")
    if not row.get("hardware_type") and hw:
        row["hardware_type"] = hw["type"]
    if _num(row.get("bits_per_weight")) is None and row.get("quantization"):
        quant = knowledge.quant(str(row["quantization"]))
        if quant:
            row["bits_per_weight"] = quant["bits_per_weight"]
            notes.append(f"bits_per_weight from quantization table ({quant['quantization']})")
    spec = knowledge.model_named(str(row.get("model_name") or "")) if _num(row.get("total_params_b")) is None else None
    if spec and spec.total_params_b:
        row["total_params_b"], row["active_params_b"] = spec.total_params_b, spec.params_for_speed
        row["is_moe"] = "yes" if spec.is_moe else "no"
        notes.append(f"parameters from catalog model '{spec.id}'")
    if _num(row.get("active_params_b")) is None and _num(row.get("total_params_b")) is not None:
        if str(row.get("is_moe", "")).lower() != "yes":
            row["active_params_b"] = row["total_params_b"]
    if row.get("hardware_name") and hw is None and _num(row.get("memory_bandwidth_gbs")) is not None:
        notes.append(
            f"hardware '{row['hardware_name']}' is not in the catalog: physics from the given bandwidth, zero-shot interval"
        )
    return row, notes


def published_as_usable(row: dict[str, Any]) -> dict[str, Any]:
    """A published row with memory_gb as usable for weights, the meaning predictions get from a profile.

    Published Apple rows state unified memory as sold, but Metal wires only ~75% of it by default: a 65B
    model on a 48 GB M3 Max spills out of the GPU and runs at CPU speed.
    """
    memory = _num(row.get("memory_gb"))
    if memory and str(row.get("hardware_type") or "").lower() == "apple":
        return {**row, "memory_gb": memory * APPLE_GPU_WIRED_FRACTION}
    return row


def feature_frame(rows: list[dict[str, Any]]) -> tuple[pd.DataFrame, list[str | None]]:
    """The fixed feature columns for each row, and for rows that cannot be featurised, the reason."""
    records: list[dict[str, float]] = []
    reasons: list[str | None] = []
    for row in rows:
        bw = _num(row.get("memory_bandwidth_gbs"))
        active = _num(row.get("active_params_b"))
        total = _num(row.get("total_params_b")) or active
        bpw = _num(row.get("bits_per_weight"))
        missing = [
            name
            for name, v in (("memory_bandwidth_gbs", bw), ("active_params_b", active), ("bits_per_weight", bpw))
            if not v
        ]
        if missing:
            records.append({f: np.nan for f in FEATURES})
            reasons.append("cannot predict: " + "; ".join(MISSING_HINTS[m] for m in missing))
            continue
        assert bw and active and bpw and total
        tflops = _num(row.get("fp16_tflops"))
        hw_type = str(row.get("hardware_type") or "cpu").lower()
        fam = backend_family(row.get("backend"))
        offload = offload_share(total * bpw / 8, _num(row.get("memory_gb")))
        rec = {
            "log_roofline_tg": math.log(decode_roofline(active * bpw / 8, bw, offload)),
            # Compute roofline for prefill: FP16 FLOP/s over 2 x active params per token (0 when unknown).
            "log_roofline_pp": math.log(tflops * 1e12 / (2 * active * 1e9)) if tflops else 0.0,
            "offload": offload,
            "log_bw": math.log(bw),
            "log_active_b": math.log(active),
            "log_total_b": math.log(total),
            "moe": 1.0 if str(row.get("is_moe", "")).lower() == "yes" else 0.0,
            "bpw": bpw,
            "log_tflops": math.log(tflops) if tflops else 0.0,
            "tflops_known": 1.0 if tflops else 0.0,
            "log_prompt": math.log(_num(row.get("prompt_tokens")) or 512),
            "log_gen": math.log(_num(row.get("gen_tokens")) or 128),
        }
        rec.update({f"hw_{t}": 1.0 if hw_type == t else 0.0 for t in HW_TYPES})
        rec.update({f"be_{b}": 1.0 if fam == b else 0.0 for b in BACKEND_FAMILIES})
        records.append(rec)
        reasons.append(None)
    return pd.DataFrame.from_records(records, columns=FEATURES), reasons


def offload_share(weights_gb: float, memory_gb: float | None) -> float:
    """Share of the weights that cannot sit in the device memory and run from host RAM instead."""
    return max(0.0, 1 - memory_gb / weights_gb) if memory_gb else 0.0


def decode_roofline(bytes_per_token_gb: float, bandwidth_gbs: float, offload: float) -> float:
    """Tokens/s if every weight byte is read once per token: device part at its bandwidth, offloaded part from host RAM."""
    seconds = bytes_per_token_gb * ((1 - offload) / bandwidth_gbs + offload / ASSUMED_HOST_BANDWIDTH_GBS)
    return 1 / seconds


def _regressor() -> Any:
    # Absolute error in log space fits the median ratio: robust to the odd mislabelled published row,
    # and it beat squared and Huber loss on held-out hardware (benchmarks/evaluate_predictor.py).
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(
        loss="absolute_error",
        max_iter=HGB_ITERATIONS,
        learning_rate=HGB_LEARNING_RATE,
        max_depth=HGB_DEPTH,
        max_leaf_nodes=2**HGB_DEPTH,
        min_samples_leaf=HGB_MIN_LEAF,
        max_features=HGB_MAX_FEATURES,
        l2_regularization=HGB_L2,
        early_stopping=False,
        random_state=RANDOM_STATE,
    )


@dataclass
class TargetModel:
    """One fitted correction (decode or prefill) with its out-of-fold residual quantiles for intervals."""

    name: str
    regressor: Any  # a fitted scikit-learn regressor of the log ratio to the decode roofline
    zero_shot_q: tuple[float, float]  # quantiles of log error / expected error on hardware never seen
    calibrated_q: tuple[float, float]  # the same after a one-measurement shift on that hardware
    # Expected |log error| for a row's features. Metal rows miss by ~10%, Vulkan and CPU rows by far more:
    # one pooled band would be too wide for the first and too narrow for the second (normalised conformal).
    spread: Any | None = None

    def predict_log(self, frame: pd.DataFrame) -> np.ndarray:
        return frame["log_roofline_tg"].to_numpy() + _predict(self.regressor, frame[FEATURES])

    def predict_spread(self, frame: pd.DataFrame) -> np.ndarray:
        if self.spread is None:
            return np.ones(len(frame))
        return np.maximum(_predict(self.spread, frame[FEATURES]), MIN_SPREAD)


def _target(rows: list[dict[str, Any]], frame: pd.DataFrame, col: str) -> np.ndarray:
    values = np.array([_num(r.get(col)) or np.nan for r in rows], dtype=float)
    values[values <= 0] = np.nan
    return values


def fit_target(
    name: str, rows: list[dict[str, Any]], frame: pd.DataFrame, groups: list[str], setups: list[str]
) -> TargetModel | None:
    """Fit the log-space correction to the decode roofline for tg or pp, with grouped out-of-fold residuals."""
    y = _target(rows, frame, f"{name}_tok_s")
    ok = ~np.isnan(y) & ~frame["log_bw"].isna().to_numpy()
    if ok.sum() < 20:
        return None
    X = frame[ok].reset_index(drop=True)
    # Both targets are learned as ratios to the decode roofline. Prefill is compute bound, but FP16 throughput
    # is unpublished for most Apple, AMD and CPU parts, while bandwidth is known everywhere and scales with
    # compute across device classes; a ratio also lets the trees extrapolate to faster and slower hardware.
    target = np.log(y[ok]) - X["log_roofline_tg"].to_numpy()
    g = np.array(groups)[ok]
    oof = out_of_fold(X, target, g)
    resid = target - oof
    # The expected error size is learned out of fold too, so the quantiles of error / expected error are
    # those of hardware neither model saw.
    expected = np.maximum(out_of_fold(X, np.abs(resid), g, make=_spread_regressor), MIN_SPREAD)
    calibrated, weights, owners = calibrated_residuals(resid, np.array(setups)[ok], X["log_active_b"].to_numpy())
    model = _fit(_regressor(), X[FEATURES], target)
    spread = _fit(_spread_regressor(), X[FEATURES], np.abs(resid))
    zero_shot_q = _quantiles(resid / expected)
    # Without two rows from any one setup there is nothing to learn a calibrated band from: keep the wide one.
    calibrated_q = _quantiles(calibrated / expected[owners], weights) if len(calibrated) else zero_shot_q
    return TargetModel(name, model, zero_shot_q, calibrated_q, spread)


def out_of_fold(
    X: pd.DataFrame,
    target: np.ndarray,
    groups: np.ndarray,
    *,
    folds: int = OOF_FOLDS,
    make: Callable[[], Any] = _regressor,
) -> np.ndarray:
    """Predictions for each row from a model that never saw its group (whole hardware held out)."""
    from sklearn.model_selection import GroupKFold

    oof = np.zeros(len(target))
    n_groups = len(set(groups))
    for train, test in GroupKFold(n_splits=min(folds, n_groups)).split(X, target, groups):
        oof[test] = _predict(_fit(make(), X.iloc[train][FEATURES], target[train]), X.iloc[test][FEATURES])
    return oof


def _spread_regressor() -> Any:
    # Small and smooth: it only has to rank rows by how far off they tend to be.
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(
        max_iter=SPREAD_ITERATIONS,
        learning_rate=0.05,
        max_depth=2,
        max_leaf_nodes=4,
        min_samples_leaf=10,
        early_stopping=False,
        random_state=RANDOM_STATE,
    )


def _predict(model: Any, X: pd.DataFrame) -> np.ndarray:
    """A regressor's predictions, on one thread (see _fit)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return np.asarray(model.predict(X))


def _fit(model: Any, X: pd.DataFrame, y: np.ndarray) -> Any:
    """Fit on one thread: on a few hundred rows OpenMP threads only contend (10x slower on 2 busy cores)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return model.fit(X, y)


def calibrated_residuals(
    resid: np.ndarray, setups: np.ndarray, log_size: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Residuals as one calibration run leaves them: each row shifted by every other single row of its setup
    (device, runtime family and source: one person's build and settings), shrunk as hardware_shifts does.

    Returns the shifted residuals, weights that make each row count once whatever its setup's size, and
    the row each pair belongs to.
    """
    values, weights, owners = [], [], []
    for setup in set(setups):
        idx = np.where(setups == setup)[0]
        for i in idx if len(idx) > 1 else ():
            others = idx[idx != i]
            transfer = _transfer(log_size[i] - log_size[others])
            values.extend(resid[i] - resid[others] * transfer / (transfer + CALIBRATION_PRIOR_ROWS))
            weights.extend([1 / len(others)] * len(others))
            owners.extend([i] * len(others))
    return np.array(values), np.array(weights), np.array(owners, dtype=int)


def _transfer(log_size_gap: np.ndarray | float) -> np.ndarray:
    """How much one measurement counts for a model log_size_gap (in log active parameters) away from it."""
    return np.exp(-np.abs(log_size_gap) / SIZE_TRANSFER_SCALE)


def _quantiles(resid: np.ndarray, weights: np.ndarray | None = None) -> tuple[float, float]:
    """Residual quantiles for an 80% interval, widened for the sample size as split conformal prediction does
    (the k-th of n residuals covers k/(n+1) of new rows, not k/n); weights make each row count once."""
    w = np.ones(len(resid)) if weights is None else weights
    n = float(w.sum())
    order = np.argsort(resid)
    cumulative = np.cumsum(w[order]) / n
    lo_p = max(INTERVAL[0] / 100 - (1 - INTERVAL[0] / 100) / n, 0.0)
    hi_p = min(INTERVAL[1] / 100 + INTERVAL[1] / 100 / n, 1.0)
    lo, hi = (float(resid[order][min(int(np.searchsorted(cumulative, p)), len(resid) - 1)]) for p in (lo_p, hi_p))
    return lo, hi


@dataclass
class SpeedPredictor:
    """Fitted decode (tg) and prefill (pp) models over knowledge/speed_measurements.csv."""

    tg: TargetModel | None
    pp: TargetModel | None
    knowledge: Knowledge
    trained_rows: int = 0
    notes: list[str] = field(default_factory=list)

    @classmethod
    def fit(cls, knowledge: Knowledge, *, rows: list[dict[str, Any]] | None = None) -> SpeedPredictor:
        """Fit on the published measurements (or a subset of them, for evaluation)."""
        published = knowledge.training_speeds if rows is None else rows
        rows = [published_as_usable(complete_row(r, knowledge)[0]) for r in published]
        frame, _ = feature_frame(rows)
        groups = [device_group(str(r.get("hardware_name"))) for r in rows]
        setups = [
            f"{g}|{backend_family(r.get('backend'))}|{r.get('source_url')}" for g, r in zip(groups, rows, strict=True)
        ]
        return cls(
            fit_target("tg", rows, frame, groups, setups),
            fit_target("pp", rows, frame, groups, setups),
            knowledge,
            len(rows),
        )

    def predict(
        self, rows: list[dict[str, Any]], *, measured: list[dict[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        """Predictions with 80% intervals; rows on hardware with measurements are shifted by its residuals."""
        completed = [complete_row(r, self.knowledge) for r in rows]
        full = [c[0] for c in completed]
        frame, reasons = feature_frame(full)
        shifts = self.hardware_shifts(measured or [])
        valid = [i for i, reason in enumerate(reasons) if reason is None]
        logs = self._predict_logs(frame.iloc[valid]) if valid else {}
        spreads = {
            name: model.predict_spread(frame.iloc[valid])
            for name, model in (("tg", self.tg), ("pp", self.pp))
            if model is not None and valid
        }
        position = {i: k for k, i in enumerate(valid)}
        out = []
        for i, row in enumerate(full):
            result: dict[str, Any] = {"label": "predicted", "notes": list(completed[i][1])}
            if reasons[i]:
                result["reason"] = reasons[i]
                out.append(result)
                continue
            hw_key = _hw_key(row)
            for name, model in (("tg", self.tg), ("pp", self.pp)):
                if model is None:
                    continue
                log_pred = float(logs[name][position[i]])
                measurements = shifts.get((hw_key, name))
                q = model.calibrated_q if measurements else model.zero_shot_q
                spread = float(spreads[name][position[i]])
                if measurements:
                    log_pred += calibration_shift(measurements, float(frame["log_active_b"].iloc[i]))
                    result["notes"].append(f"{name} shifted by this hardware's {len(measurements)} measurement(s)")
                result[f"pred_{name}_tok_s"] = math.exp(log_pred)
                result[f"pred_{name}_low"] = math.exp(log_pred + q[0] * spread)
                result[f"pred_{name}_high"] = math.exp(log_pred + q[1] * spread)
            result["basis"] = "predicted+calibrated" if any(k[0] == hw_key for k in shifts) else "predicted"
            out.append(result)
        return out

    def _predict_logs(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """Log predictions for a whole frame at once (one scikit-learn call per target)."""
        return {
            name: model.predict_log(frame) for name, model in (("tg", self.tg), ("pp", self.pp)) if model is not None
        }

    def hardware_shifts(self, measured: list[dict[str, Any]]) -> dict[tuple[str, str], list[tuple[float, float]]]:
        """(log active params, log residual) of each measured row, per (hardware, target)."""
        if not measured:
            return {}
        completed = [complete_row(r, self.knowledge)[0] for r in measured]
        frame, reasons = feature_frame(completed)
        sums: dict[tuple[str, str], list[tuple[float, float]]] = {}
        valid = [i for i, reason in enumerate(reasons) if reason is None]
        logs = self._predict_logs(frame.iloc[valid]) if valid else {}
        for position, i in enumerate(valid):
            row = completed[i]
            for name in logs:
                actual = _num(row.get(f"{name}_tok_s"))
                if actual and actual > 0:
                    residual = math.log(actual) - float(logs[name][position])
                    sums.setdefault((_hw_key(row), name), []).append((float(frame["log_active_b"].iloc[i]), residual))
        return sums


def calibration_shift(measurements: list[tuple[float, float]], log_size: float) -> float:
    """This hardware's residual for a model of log_size: measurements weighted by how close in size they are,
    shrunk toward the fitted model by CALIBRATION_PRIOR_ROWS (one measurement moves it most of the way)."""
    weights = _transfer(np.array([m[0] for m in measurements]) - log_size)
    residuals = np.array([m[1] for m in measurements])
    return float((weights * residuals).sum() / (weights.sum() + CALIBRATION_PRIOR_ROWS))


def device_group(name: str) -> str:
    """One id per physical device, so cross-validation holds out a device with all its host and memory variants."""
    from advisor.knowledge import hardware_tokens

    return " ".join(sorted(t for t in hardware_tokens(name) if not t.endswith("gb")))


def _hw_key(row: dict[str, Any]) -> str:
    return str(row.get("hardware_name") or "").strip().lower()


# --- memory fit ---------------------------------------------------------------------------------------

RUNTIME_OVERHEAD_GB = 0.5  # compute buffers and runtime context; llama.cpp reports a few hundred MB


@dataclass(frozen=True)
class MemoryFit:
    weights_gb: float
    kv_gb: float
    overhead_gb: float
    required_gb: float
    available_gb: float | None
    fits: bool | None
    weights_basis: str
    kv_basis: str


def kv_cache_gb(
    layers: int | None, kv_heads: int | None, head_dim: int | None, context: int, *, bytes_per: float = 2.0
) -> float | None:
    """2 x layers x kv_heads x head_dim x context x bytes (f16 cache), in GB; None when the shape is unknown."""
    if not (layers and kv_heads and head_dim):
        return None
    return 2 * layers * kv_heads * head_dim * context * bytes_per / 1e9


def memory_fit(spec: Any, quant: str, bpw: float, context: int, available_gb: float | None) -> MemoryFit:
    """Weights (real GGUF size when known) + KV cache at the context + overhead, against usable memory."""
    if quant in spec.gguf_gb:
        weights, basis = spec.gguf_gb[quant], f"GGUF file size ({quant})"
    else:
        weights, basis = (spec.total_params_b or 0) * bpw / 8, f"total params x {bpw:.2f} bits / 8"
    kv = kv_cache_gb(spec.layers, spec.kv_heads, spec.head_dim, context)
    kv_basis = f"2 x {spec.layers} layers x {spec.kv_heads} kv heads x {spec.head_dim} x {context} ctx x 2 B"
    if kv is None:
        # Shape unknown: assume 10% of weights, a conservative figure for GQA models at short contexts.
        kv, kv_basis = 0.10 * weights, "shape unknown: assumed 10% of weights"
    required = weights + kv + RUNTIME_OVERHEAD_GB
    fits = None if available_gb is None else required <= available_gb
    return MemoryFit(
        round(weights, 2), round(kv, 3), RUNTIME_OVERHEAD_GB, round(required, 2), available_gb, fits, basis, kv_basis
    )


# --- success ------------------------------------------------------------------------------------------

# Which published scores speak to each task area (first available ones are averaged).
TASK_BENCHMARKS: dict[str, tuple[str, ...]] = {
    "classification": ("ifeval", "mmlu_pro", "mmlu"),
    "extraction": ("ifeval", "bfcl", "mmlu_pro"),
    "summarization": ("ifeval", "mmlu_pro", "mmlu"),
    "drafting": ("ifeval", "arena_hard", "mmlu_pro"),
    "coding": ("livecodebench", "humaneval", "mbpp"),
    "reasoning": ("gpqa_diamond", "math", "mmlu_pro"),
    "chat": ("arena_hard", "ifeval", "mmlu_pro", "mmlu"),
    "tool-calling": ("bfcl", "ifeval"),
}
PRIOR_STRENGTH = 10.0  # pseudo-observations behind a prior from published scores
UNKNOWN_PRIOR_STRENGTH = 2.0


def task_score(scores: dict[str, float | None], task: str) -> tuple[float | None, list[str]]:
    """Mean of the published scores relevant to a task area, and which were used."""
    used = [(k, scores[k]) for k in TASK_BENCHMARKS.get(task, ()) if scores.get(k) is not None]
    if not used:
        return None, []
    return float(np.mean([v for _, v in used])), [k for k, _ in used]


@dataclass(frozen=True)
class SuccessEstimate:
    probability: float
    low: float
    high: float
    basis: str


def success_estimate(
    score: float | None,
    *,
    quant_ppl_delta_pct: float | None = None,
    successes: int = 0,
    attempts: int = 0,
    ease: float = 1.0,
) -> SuccessEstimate:
    """Beta-binomial: a prior from the task-area score (lowered by quantization loss), updated by measured tasks.

    p = 1 - (1 - score)^ease: ease > 1 for routine work (a model scoring 60 on hard benchmarks gets most
    routine answers accepted), < 1 for frontier work.
    """
    from scipy.stats import beta

    if score is None:
        prior, strength, basis = 0.5, UNKNOWN_PRIOR_STRENGTH, "no published score: uninformed prior"
    else:
        s = min(max(score / 100, 0.01), 0.99)
        prior = 1 - (1 - s) ** ease
        strength, basis = PRIOR_STRENGTH, f"published score {score:.0f}"
    if quant_ppl_delta_pct:
        prior *= max(0.5, 1 - quant_ppl_delta_pct / 100)
        basis += f", quantization loss -{quant_ppl_delta_pct:.1f}%"
    a = prior * strength + successes
    b = (1 - prior) * strength + (attempts - successes)
    if attempts:
        basis += f", measured {successes}/{attempts} here"
    return SuccessEstimate(
        round(a / (a + b), 4), round(float(beta.ppf(0.1, a, b)), 4), round(float(beta.ppf(0.9, a, b)), 4), basis
    )


# The only types outside skops' own safe list that save_predictor writes. A cache file naming anything else was
# not written by this code (or by another scikit-learn): it is refused and refitted, never loaded.
TRUSTED_TYPES = ("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",)
log = logging.getLogger("advisor.predict")


class UntrustedCache(ValueError):
    """A skops file names types save_predictor never writes."""


def save_predictor(predictor: SpeedPredictor, path: Path) -> None:
    """Persist the fitted regressors and interval quantiles with skops (never pickle), atomically."""
    import skops.io as sio

    payload: dict[str, Any] = {"trained_rows": predictor.trained_rows}
    for name, model in (("tg", predictor.tg), ("pp", predictor.pp)):
        if model is not None:
            payload[name] = {
                "regressor": model.regressor,
                "zero_shot_q": list(model.zero_shot_q),
                "calibrated_q": list(model.calibrated_q),
                "spread": model.spread,
            }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        sio.dump(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_predictor(path: Path, knowledge: Knowledge) -> SpeedPredictor:
    """Load a predictor saved by save_predictor; refuses (UntrustedCache) a file naming any type beyond TRUSTED_TYPES."""
    import skops.io as sio

    untrusted = sio.get_untrusted_types(file=path)
    unexpected = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if unexpected:
        raise UntrustedCache(f"{path}: refusing to load unexpected types {', '.join(unexpected)}")
    payload = sio.load(path, trusted=[t for t in untrusted if t in TRUSTED_TYPES])
    models = {}
    for name in ("tg", "pp"):
        entry = payload.get(name)
        models[name] = (
            TargetModel(
                name,
                entry["regressor"],
                tuple(entry["zero_shot_q"]),
                tuple(entry["calibrated_q"]),
                entry.get("spread"),
            )
            if entry
            else None
        )
    return SpeedPredictor(models["tg"], models["pp"], knowledge, int(payload["trained_rows"]))


def knowledge_digest(directory: Path) -> str:
    """A hash of the training data, the predictor's code and scikit-learn's version: a cached fit is redone when
    any of them changes (a model saved by another scikit-learn is never loaded)."""
    import hashlib

    import sklearn

    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(sklearn.__version__.encode())
    for name in ("speed_measurements.csv", "hardware.csv", "quantization.csv"):
        digest.update((directory / name).read_bytes())
    return digest.hexdigest()[:16]


def get_predictor(knowledge: Knowledge, knowledge_dir: Path, cache_dir: Path) -> SpeedPredictor:
    """The fitted predictor, from the skops cache when the knowledge has not changed, else fitted and cached.

    A cache that fails the type check or cannot be read is refitted with a one-line warning, never trusted.
    """
    path = cache_dir / f"speed-predictor-{knowledge_digest(knowledge_dir)}.skops"
    if path.exists():
        try:
            return load_predictor(path, knowledge)
        except UntrustedCache as exc:
            log.warning("speed predictor cache refused and refitted: %s", exc)
        except Exception as exc:  # noqa: BLE001 - a stale or damaged cache is refitted, never trusted
            log.warning("speed predictor cache %s unreadable (%s); refitted", path, type(exc).__name__)
        path.unlink(missing_ok=True)
    predictor = SpeedPredictor.fit(knowledge)
    try:
        save_predictor(predictor, path)
    except OSError:
        pass  # a read-only home still gets predictions, just without the cache
    return predictor
