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
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from advisor.hardware import APPLE_GPU_WIRED_FRACTION
from advisor.knowledge import Knowledge
from advisor.trees import TreeEnsemble, load_arrays, save_arrays

# The plain baseline the best-known fit calculator uses: bandwidth / model bytes x 0.55.
BASELINE_EFFICIENCY = 0.55
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
# Prefill misses are mostly a build's and its settings' own (threads, flash attention, ubatch, kernels): between
# two models of one size on one published setup, the second's log error is ~0.95x the first's (median-loss fit
# over 100 such pairs of the held-out-device evaluation), decode's ~0.8x. So one prefill measurement is trusted
# further than one decode measurement: a prior of 0.25 rows keeps 80% of a same-size residual, 0.5 keeps 67%.
PRIOR_ROWS = {"tg": CALIBRATION_PRIOR_ROWS, "pp": 0.25}
RANDOM_STATE = 0
# Physical bounds a row's numbers must respect (README "How prediction works"); outside them the row gets a reason.
BOUNDS: dict[str, tuple[float, float, str]] = {
    "memory_bandwidth_gbs": (0.5, 20_000.0, "GB/s"),
    "memory_gb": (0.1, 16_384.0, "GB"),
    "fp16_tflops": (0.001, 20_000.0, "TFLOPS"),
    "total_params_b": (0.001, 10_000.0, "billion parameters"),
    "active_params_b": (0.001, 10_000.0, "billion parameters"),
    "bits_per_weight": (1.0, 32.0, "bits"),
    "prompt_tokens": (1.0, 10_000_000.0, "tokens"),
    "output_tokens": (1.0, 10_000_000.0, "tokens"),
    "context_tokens": (0.0, 10_000_000.0, "tokens"),
    "gen_tokens": (1.0, 10_000_000.0, "tokens"),
}
MEASURED_BOUNDS: dict[str, tuple[float, float, str]] = {
    "tg_tok_s": (0.001, 100_000.0, "tok/s"),
    "pp_tok_s": (0.001, 10_000_000.0, "tok/s"),
    "ttft_ms": (0.01, 100_000_000.0, "ms"),
}
ENUMS = {"hardware_type": HW_TYPES, "is_moe": ("yes", "no")}
# Prefill shapes: predictions are made at llama-bench's pp512 and scaled to the prompt length by the attention
# cost, which grows with the context each prompt token attends to; relative to the weights' 2 x params FLOPs it
# shrinks as models grow (layers x width / params ~ params^-0.5). The slope is learned from published rows that
# measured one setup at two prompt lengths; this default is only used when none exist.
REFERENCE_PROMPT = 512
DEFAULT_PREFILL_SLOPE = 6e-5  # per prompt token, for an 8B model
# Fixed per-request overhead before the first token (HTTP, template, tokenizer; model load excluded), in ms:
# (median, low, high). Assumed for a runtime family until published rows report TTFT with their shapes
# (fit_overhead replaces it); a ttft_ms measured on this machine replaces either.
ASSUMED_OVERHEAD_MS: dict[str, tuple[float, float, float]] = {
    "ollama": (60.0, 20.0, 300.0),
    "vllm": (40.0, 10.0, 200.0),
    "llama.cpp": (30.0, 5.0, 150.0),
    "other": (30.0, 5.0, 150.0),
}
MIN_OVERHEAD_ROWS = 5  # single-length rows a family needs before its overhead is fitted, not assumed
MIN_MIX_ROWS = 20  # rows averaged over a test mix (LocalScore) a family needs: one (overhead, slope) fit
# A quantization read from its family (an Unsloth UD-*_XL mix, an unnamed K-quant variant) or an assumed CPU
# bandwidth widens the band by these log factors: UD-Q4_K_XL files run 6% below to 18% above Q4_K_M's bits.
FAMILY_BPW_WIDEN = 0.15
ASSUMED_BANDWIDTH_WIDEN = 0.7
# A calibration's own run-to-run spread (IQR / median of its repetitions, `tg_spread_pct` / `pp_spread_pct` on a
# measured row) widens the calibrated band: on a shared or throttling machine the next run varies as much. For a
# normal spread the 80% half-width is ~0.95 IQR; published rows are medians, so the fitted band has none of it.
SPREAD_TO_HALF_WIDTH_80 = 0.95
# Histogram boosting settings: the median-loss trees of GradientBoostingRegressor in a tenth of the fit time.
HGB_ITERATIONS = 150
HGB_LEARNING_RATE = 0.1
HGB_DEPTH = 4  # prefill; decode trees are one level shallower (both chosen on the grouped evaluation)
HGB_TG_DEPTH = 3
HGB_MIN_LEAF = 4
# Each split sees a random 70% of the features, and the final decode and prefill models are the mean of
# ENSEMBLE_SEEDS such fits: alone, one seed's trees swing the held-out figures by +-2 points; their mean held
# prefill after calibration 2-3 points and a held-out model's 4 points better than one unsubsampled model
# (benchmarks/evaluate_predictor.py, README "Evaluation"). Out-of-fold intervals use one seed (a little wide).
HGB_MAX_FEATURES = 0.7
ENSEMBLE_SEEDS = 4
HGB_L2 = 0.0
SPREAD_ITERATIONS = 50
SPREAD_LEARNING_RATE = 0.1
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


def runtime_label(row: dict[str, Any]) -> str:
    """The runtime a row ran on, as labelled (llama.cpp-cuda, ik_llama.cpp-cpu, ollama): one build and its
    settings, which a calibration measures; backend_family groups labels the trees learn alike."""
    return str(row.get("backend") or "").strip().lower()


def _num(value: Any) -> float | None:
    """A float from a cell, or None for empty / non-numeric / non-positive-infinite cells."""
    if value is None or value == "":
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def row_problem(row: dict[str, Any], *, measured: bool = False) -> str | None:
    """Why a row's cells cannot be physics (not a number, not finite, out of BOUNDS, active > total), or None."""
    problems = []
    bounds = {**BOUNDS, **(MEASURED_BOUNDS if measured else {})}
    for col, (lo, hi, unit) in bounds.items():
        value = row.get(col)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            problems.append(f"{col} '{value}' is not a number")
            continue
        if not math.isfinite(number):
            problems.append(f"{col} {value} is not a finite number")
        elif not lo <= number <= hi:
            problems.append(f"{col} {value} is outside the physical bounds {lo:g}-{hi:g} {unit}")
    for col, allowed in ENUMS.items():
        value = str(row.get(col) or "").strip().lower()
        if value and value not in allowed:
            problems.append(f"{col} '{row.get(col)}' must be one of {', '.join(allowed)} (or empty)")
    active, total = _num(row.get("active_params_b")), _num(row.get("total_params_b"))
    if active and total and active > total * (1 + 1e-9) and not problems:
        problems.append(f"active_params_b {active:g} exceeds total_params_b {total:g}")
    return "; ".join(problems) if problems else None


def prefill_length_factor(prompt_tokens: float, active_b: float, slope: float) -> float:
    """Prefill rate at this prompt length relative to pp512: (1 + a x 512) / (1 + a x L), a = slope x (8 / P)^0.5."""
    a = slope * math.sqrt(8.0 / max(active_b, 1e-3))
    return (1 + a * REFERENCE_PROMPT) / (1 + a * prompt_tokens)


def complete_row(
    row: dict[str, Any], knowledge: Knowledge, *, assume_bandwidth: bool = True
) -> tuple[dict[str, Any], list[str]]:
    """Fill empty hardware and quantization facts from the catalog; say what was filled or is missing.

    A CPU the catalog does not know gets a platform-typical bandwidth (assume_bandwidth; never for training rows).
    """
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
        quant = knowledge.resolve_quant(str(row["quantization"]))
        if quant:
            row["bits_per_weight"] = quant["bits_per_weight"]
            row["_bpw_match"] = quant["match"]
            if quant["match"] == "family":
                row["_bpw_family"] = True
                notes.append(f"bits_per_weight {quant['bits_per_weight']:g}: {quant['note']}")
            else:
                notes.append(f"bits_per_weight from quantization table ({quant['quantization']})")
    spec = knowledge.model_named(str(row.get("model_name") or "")) if _num(row.get("total_params_b")) is None else None
    if spec and spec.total_params_b:
        row["total_params_b"], row["active_params_b"] = spec.total_params_b, spec.params_for_speed
        row["is_moe"] = "yes" if spec.is_moe else "no"
        notes.append(f"parameters from catalog model '{spec.id}'")
    if _num(row.get("active_params_b")) is None and _num(row.get("total_params_b")) is not None:
        if str(row.get("is_moe", "")).lower() != "yes":
            row["active_params_b"] = row["total_params_b"]
    if assume_bandwidth and _num(row.get("memory_bandwidth_gbs")) is None and _looks_like_cpu(row):
        row["memory_bandwidth_gbs"], row["_bw_assumed"] = ASSUMED_HOST_BANDWIDTH_GBS, True
        row["hardware_type"] = row.get("hardware_type") or "cpu"
        notes.append(
            f"CPU '{row.get('hardware_name') or '?'}' is not in the catalog: assumed {ASSUMED_HOST_BANDWIDTH_GBS:g} GB/s "
            "(dual-channel DDR4-3200/DDR5 desktop or laptop), wide interval; give memory_bandwidth_gbs to narrow it"
        )
    elif row.get("hardware_name") and hw is None and _num(row.get("memory_bandwidth_gbs")) is not None:
        notes.append(
            f"hardware '{row['hardware_name']}' is not in the catalog: physics from the given bandwidth, zero-shot interval"
        )
    return row, notes


CPU_WORDS = re.compile(r"\b(ryzen|threadripper|epyc|xeon|core\s+(i[3579]|ultra)|celeron|pentium|cpu)\b", re.I)


def _looks_like_cpu(row: dict[str, Any]) -> bool:
    """A CPU-only row: hardware_type cpu, or no type and a CPU product name (Ryzen, Core i7, Xeon...)."""
    kind = str(row.get("hardware_type") or "").strip().lower()
    return kind == "cpu" or (not kind and bool(CPU_WORDS.search(str(row.get("hardware_name") or ""))))


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
        problem = row_problem(row)
        if missing or problem:
            records.append({f: np.nan for f in FEATURES})
            reasons.append(problem or "cannot predict: " + "; ".join(MISSING_HINTS[m] for m in missing))
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
            "log_prompt": math.log(_num(row.get("prompt_tokens")) or REFERENCE_PROMPT),
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


def _regressor(*, decreasing: tuple[str, ...] = (), depth: int | None = None) -> Any:
    # Absolute error in log space fits the median ratio: robust to the odd mislabelled published row,
    # and it beat squared and Huber loss on held-out hardware (benchmarks/evaluate_predictor.py).
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(
        loss="absolute_error",
        max_iter=HGB_ITERATIONS,
        learning_rate=HGB_LEARNING_RATE,
        max_depth=depth or HGB_DEPTH,
        max_leaf_nodes=2 ** (depth or HGB_DEPTH),
        min_samples_leaf=HGB_MIN_LEAF,
        max_features=HGB_MAX_FEATURES,
        l2_regularization=HGB_L2,
        monotonic_cst=[-1 if f in decreasing else 0 for f in FEATURES],
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
    name: str,
    rows: list[dict[str, Any]],
    frame: pd.DataFrame,
    groups: list[str],
    setups: list[str],
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
    # Physics: a longer prompt never makes prefill faster (each token attends to more context).
    make = partial(_regressor, decreasing=("log_prompt",)) if name == "pp" else partial(_regressor, depth=HGB_TG_DEPTH)
    g = np.array(groups)[ok]
    oof = out_of_fold(X, target, g, make=make)
    resid = target - oof
    # The expected error size is learned out of fold too, so the quantiles of error / expected error are
    # those of hardware neither model saw.
    expected = np.maximum(out_of_fold(X, np.abs(resid), g, make=_spread_regressor), MIN_SPREAD)
    calibrated, weights, owners = calibrated_residuals(
        resid, np.array(setups)[ok], X["log_active_b"].to_numpy(), prior=PRIOR_ROWS[name]
    )
    model = _fit_seeds(make, X[FEATURES], target)
    spread = _fit(_spread_regressor(), X[FEATURES], np.abs(resid))
    zero_shot_q = _quantiles(resid / expected)
    # Without two rows from any one setup there is nothing to learn a calibrated band from: keep the wide one.
    calibrated_q = _quantiles(calibrated / expected[owners], weights) if len(calibrated) else zero_shot_q
    return TargetModel(name, model, zero_shot_q, calibrated_q, spread)


def fit_prefill_slope(rows: list[dict[str, Any]]) -> float:
    """The attention slope of prefill_length_factor, from setups (device, model, quantization, runtime, source)
    measured at two or more prompt lengths: the median over pairs, each solved exactly for its slope."""
    by_setup: dict[tuple[str, ...], list[tuple[float, float, float]]] = {}
    for r in rows:
        length, pp, active = (_num(r.get(k)) for k in ("prompt_tokens", "pp_tok_s", "active_params_b"))
        if length and pp and active:
            key = tuple(str(r.get(k)) for k in ("hardware_name", "model_name", "quantization", "backend", "source_url"))
            by_setup.setdefault(key, []).append((length, pp, active))
    slopes = []
    for points in by_setup.values():
        points.sort()
        (l1, p1, active) = points[0]
        for l2, p2, _ in points[1:]:
            ratio = p2 / p1
            # Pairs a longer prompt sped up by 2x or more are a different effect (offload warm-up), not attention.
            if l2 < 1.3 * l1 or not 0.5 < ratio < 2.0:
                continue
            a = (1 - ratio) / (ratio * l2 - l1)
            slopes.append(max(a, 0.0) / math.sqrt(8.0 / active))
    return float(np.median(slopes)) if len(slopes) >= 5 else DEFAULT_PREFILL_SLOPE


def prompt_mix(row: dict[str, Any]) -> list[float]:
    """The prompt lengths a row's figures average over: its test mix ("1024/4096/16"), else its one prompt_tokens."""
    mix = str(row.get("prompt_mix") or "").strip()
    if mix:
        return [float(p) for p in mix.split("/")]
    length = _num(row.get("prompt_tokens"))
    return [length] if length else []


def fit_overhead(
    rows: list[dict[str, Any]], slope: float = DEFAULT_PREFILL_SLOPE
) -> tuple[dict[str, tuple[float, float, float]], str]:
    """Per-request overhead (median, low, high in ms) by runtime family from published rows with TTFT, prompt
    shape and prefill rate; families without enough such rows keep the assumed figure.

    A row at one prompt length implies overhead = TTFT - prompt / prefill rate (MIN_OVERHEAD_ROWS of them).
    A row averaged over a test mix (LocalScore: mean TTFT and mean prefill rate over nine prompt lengths) does
    not: the mean of prompt / rate is not mean prompt / mean rate. For those a family's TTFT = overhead + k x
    mean prompt / mean rate is fitted (least relative absolute error; k absorbs the averaging), and the band is
    that of the overhead each row implies among the rows whose prompt takes least time (the decile where the
    overhead is not lost in prefill error). Returns the figures and a label saying which families were fitted.
    """
    del slope  # the rates are measured at the rows' own lengths
    implied: dict[str, list[float]] = {}
    mixes: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        ttft, pp, lengths = _num(r.get("ttft_ms")), _num(r.get("pp_tok_s")), prompt_mix(r)
        if not (ttft and pp and lengths and ttft > 0 and pp > 0):
            continue
        fam = _overhead_family(r.get("backend"))
        if len(lengths) == 1:
            implied.setdefault(fam, []).append(max(ttft - 1000 * lengths[0] / pp, 0.5))
        else:
            mixes.setdefault(fam, []).append((1000 * float(np.mean(lengths)) / pp, ttft))
    out, fitted = dict(ASSUMED_OVERHEAD_MS), []
    for fam in sorted(set(implied) | set(mixes)):
        values = list(implied.get(fam, []))
        mix = mixes.get(fam, [])
        band = list(values)
        if len(mix) >= MIN_MIX_ROWS:
            x, y = (np.array(v) for v in zip(*mix, strict=True))
            k = _relative_lad_slope(x, y)
            per_row = y - k * x
            values.extend(per_row.tolist())
            fastest = x <= np.quantile(x, 0.1)
            band.extend(per_row[fastest].tolist())
        elif len(values) < MIN_OVERHEAD_ROWS:
            continue
        if not values:
            continue
        centre = max(float(np.median(values)), 0.5)
        low = max(float(np.quantile(band, 0.1)), 0.0)
        high = max(float(np.quantile(band, 0.9)), centre)
        out[fam] = (round(centre, 1), round(min(low, centre), 1), round(high, 1))
        fitted.append(f"{fam} ({len(values)} rows)")
    return out, ("fitted on published TTFT: " + ", ".join(fitted)) if fitted else "assumed"


def _relative_lad_slope(x: np.ndarray, y: np.ndarray) -> float:
    """k of y = o + k x minimising sum |y - o - k x| / y: for each k on a grid, o is the weighted median."""
    weights = 1 / y
    best, best_k = math.inf, 1.0
    for k in np.linspace(0.5, 1.5, 101):
        resid = y - k * x
        order = np.argsort(resid)
        cum = np.cumsum(weights[order])
        o = resid[order][int(np.searchsorted(cum, cum[-1] / 2))]
        err = float(np.sum(np.abs(resid - o) * weights))
        if err < best:
            best, best_k = err, float(k)
    return best_k


def _overhead_family(backend: str | None) -> str:
    text = (backend or "").lower()
    if "llama" in text and "ollama" not in text:
        return "llama.cpp"  # llama.cpp builds, llamafile, ik_llama.cpp
    fam = backend_family(backend)
    return fam if fam in ASSUMED_OVERHEAD_MS else "other"


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
        learning_rate=SPREAD_LEARNING_RATE,
        max_depth=2,
        max_leaf_nodes=4,
        min_samples_leaf=10,
        early_stopping=False,
        random_state=RANDOM_STATE,
    )


def _predict(model: Any, X: pd.DataFrame) -> np.ndarray:
    """A regressor's predictions, on one thread (see _fit); numpy trees need no scikit-learn at all."""
    if isinstance(model, TreeEnsemble):
        return model.predict(X.to_numpy(dtype=float))
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return np.asarray(model.predict(X))


@dataclass
class SeedAverage:
    """The mean of one regressor fitted with ENSEMBLE_SEEDS seeds (feature subsampling makes each differ)."""

    models: list[Any]

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.mean([np.asarray(m.predict(X)) for m in self.models], axis=0)


def _fit_seeds(make: Callable[[], Any], X: pd.DataFrame, y: np.ndarray) -> SeedAverage:
    models = []
    for seed in range(ENSEMBLE_SEEDS):
        model = make()
        model.set_params(random_state=RANDOM_STATE + seed)
        models.append(_fit(model, X, y))
    return SeedAverage(models)


def _fit(model: Any, X: pd.DataFrame, y: np.ndarray) -> Any:
    """Fit on one thread: on a few hundred rows OpenMP threads only contend (10x slower on 2 busy cores)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return model.fit(X, y)


def calibrated_residuals(
    resid: np.ndarray, setups: np.ndarray, log_size: np.ndarray, *, prior: float = CALIBRATION_PRIOR_ROWS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Residuals as one calibration run leaves them: each row shifted by every other single row of its setup
    (device, runtime and source: one person's build and settings), shrunk as hardware_shifts does.

    Returns the shifted residuals, weights that make each row count once whatever its setup's size, and
    the row each pair belongs to.
    """
    values, weights, owners = [], [], []
    for setup in set(setups):
        idx = np.where(setups == setup)[0]
        for i in idx if len(idx) > 1 else ():
            others = idx[idx != i]
            transfer = _transfer(log_size[i] - log_size[others])
            values.extend(resid[i] - resid[others] * transfer / (transfer + prior))
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
    prefill_slope: float = DEFAULT_PREFILL_SLOPE  # learned from setups measured at two prompt lengths
    longest_prompt: float = 8192.0  # the fitted trees know prompt lengths up to this; beyond it, the physics slope
    overhead_ms: dict[str, tuple[float, float, float]] = field(default_factory=lambda: dict(ASSUMED_OVERHEAD_MS))
    overhead_basis: str = "assumed"
    # Backend label -> (log factor on the predicted prefill rate, published rows it was learned from): a runtime
    # whose published TTFT says its prefill runs faster or slower than the trees predict (llamafile's own CPU
    # matmul kernels); learned from test-mix rows, which the trees never see.
    # Each entry: (log shift, rows, low and high log quantiles of published / shifted rate for an 80% band).
    backend_prefill_shift: dict[str, tuple[float, int, float, float]] = field(default_factory=dict)
    _kv_per_sqrt_b: float | None = field(default=None, repr=False)

    @classmethod
    def fit(cls, knowledge: Knowledge, *, rows: list[dict[str, Any]] | None = None) -> SpeedPredictor:
        """Fit on the published measurements (or a subset of them, for evaluation)."""
        published = knowledge.training_speeds if rows is None else rows
        # Rows averaged over a test mix (prompt_mix) are not the pp512 / tg128 shapes the trees learn: they
        # teach the per-request overhead only.
        overhead, basis = fit_overhead([r for r in published if r.get("ttft_ms")])
        mix_rows = [r for r in published if r.get("prompt_mix") and r.get("ttft_ms")]
        published = [r for r in published if not r.get("prompt_mix")]
        rows = [published_as_usable(complete_row(r, knowledge, assume_bandwidth=False)[0]) for r in published]
        # Training keeps the rows it always learned from: bits per weight given or an exact table name. A family
        # guess is +-15% in bytes per token, and adding the renamed rows (MLX, GPTQ, i1-) made held-out prefill
        # worse (61.7% -> 74.2% MAPE) with histogram boosting: they are predicted, not learned from.
        rows = [{**r, "bits_per_weight": None} if r.get("_bpw_match") not in (None, "exact") else r for r in rows]
        frame, _ = feature_frame(rows)
        groups = [device_group(str(r.get("hardware_name"))) for r in rows]
        setups = [f"{g}|{runtime_label(r)}|{r.get('source_url')}" for g, r in zip(groups, rows, strict=True)]
        slope = fit_prefill_slope(rows)
        lengths = [p for r in rows if (p := _num(r.get("prompt_tokens")))]
        predictor = cls(
            fit_target("tg", rows, frame, groups, setups),
            fit_target("pp", rows, frame, groups, setups),
            knowledge,
            len(rows),
            prefill_slope=slope,
            longest_prompt=max(lengths, default=REFERENCE_PROMPT),
            overhead_ms=overhead,
            overhead_basis=basis,
        )
        predictor.backend_prefill_shift = predictor._fit_backend_shift(mix_rows)
        return predictor

    def _fit_backend_shift(self, mix_rows: list[dict[str, Any]]) -> dict[str, tuple[float, int, float, float]]:
        """Per backend label, the median log ratio of the prefill time the trees predict to the prefill time
        published TTFT implies (TTFT - fitted overhead), over rows averaged on a test mix; MIN_MIX_ROWS each.

        A mix row is predicted at its time-weighted prompt length (sum p^2 / sum p: where its prefill time is spent)."""
        if not mix_rows or self.pp is None:
            return {}
        queries, kept = [], []
        for r in mix_rows:
            lengths = prompt_mix(r)
            if not lengths:
                continue
            weighted = sum(p * p for p in lengths) / sum(lengths)
            queries.append({**published_as_usable(r), "prompt_tokens": weighted, "context_tokens": 0, "prompt_mix": ""})
            kept.append((r, float(np.mean(lengths))))
        shifts: dict[str, list[float]] = {}
        for (r, mean_prompt), pred in zip(kept, self.predict(queries), strict=True):
            ttft, rate = _num(r.get("ttft_ms")), pred.get("pred_pp_tok_s")
            overhead = self.overhead_ms.get(_overhead_family(r.get("backend")), self.overhead_ms["other"])[0]
            if ttft and rate and ttft > overhead:
                label = str(r.get("backend") or "").strip().lower()
                shifts.setdefault(label, []).append(math.log((1000 * mean_prompt / rate) / (ttft - overhead)))
        out = {}
        for label, values in shifts.items():
            if len(values) < MIN_MIX_ROWS:
                continue
            v = np.array(values)
            centre = float(np.median(v))
            # The prefill band for this backend: quantiles of the published rate over the shifted prediction.
            low, high = _quantiles(centre - v)
            out[label] = (round(centre, 4), len(values), round(low, 4), round(high, 4))
        return out

    def predict(
        self, rows: list[dict[str, Any]], *, measured: list[dict[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        """Predictions with 80% intervals; rows on hardware with measurements are shifted by its residuals.

        A row with `prompt_tokens` gets prefill at that length and TTFT (`pred_ttft_*`, ms); `context_tokens`
        (default: the prompt) is the KV cache decode reads; with `output_tokens` too, `pred_e2e_ms`.
        """
        shifts, overheads, rejected = self._calibration(measured or [])
        noisy, spread_notes = measured_spread(measured or [])
        rejected = [*rejected, *spread_notes]
        ev = self._evaluate(rows)
        out = []
        for i, row in enumerate(ev.rows):
            result: dict[str, Any] = {"label": "predicted", "notes": list(ev.notes[i])}
            if ev.reasons[i]:
                result["reason"] = ev.reasons[i]
                out.append(result)
                continue
            hw_key = _hw_key(row)
            result["notes"].extend(note for key, note in rejected if key == hw_key)
            k = ev.position[i]
            for name, model in (("tg", self.tg), ("pp", self.pp)):
                if model is None:
                    continue
                log_pred = float(ev.logs[name][k])
                measurements = shifts.get((hw_key, name))
                q = model.calibrated_q if measurements else model.zero_shot_q
                noise = (
                    math.log1p(SPREAD_TO_HALF_WIDTH_80 * noisy.get((hw_key, name), 0.0) / 100) if measurements else 0.0
                )
                if noise:
                    result["notes"].append(
                        f"{name} band widened by this machine's run-to-run spread "
                        f"({noisy[(hw_key, name)]:.0f}% IQR / median in its calibration)"
                    )
                spread = float(ev.spreads[name][k])
                if measurements:
                    log_pred += calibration_shift(
                        measurements, float(ev.frame["log_active_b"].iloc[i]), prior=PRIOR_ROWS[name]
                    )
                    result["notes"].append(f"{name} shifted by this hardware's {len(measurements)} measurement(s)")
                result[f"pred_{name}_tok_s"] = math.exp(log_pred)
                result[f"pred_{name}_low"] = math.exp(log_pred + q[0] * spread - ev.widen[i] - noise)
                result[f"pred_{name}_high"] = math.exp(log_pred + q[1] * spread + ev.widen[i] + noise)
            if ev.widen[i]:
                result["interval_widened"] = True  # a family quantization or an assumed bandwidth
            shift = self.backend_prefill_shift.get(_shift_key(row))
            if shift and "pred_pp_tok_s" in result and not shifts.get((hw_key, "pp")):
                rate = result["pred_pp_tok_s"] * math.exp(shift[0])
                extra = FAMILY_BPW_WIDEN if row.get("_bpw_family") else 0.0
                result["pred_pp_tok_s"] = rate
                result["pred_pp_low"] = rate * math.exp(shift[2] - extra)
                result["pred_pp_high"] = rate * math.exp(shift[3] + extra)
                result["notes"].append(
                    f"prefill x{math.exp(shift[0]):.2f} and its 80% band: published TTFT of {shift[1]} "
                    f"'{row.get('backend')}' runs"
                )
            self._add_latency(result, row, overheads.get(hw_key))
            result["basis"] = "predicted+calibrated" if any(key[0] == hw_key for key in shifts) else "predicted"
            out.append(result)
        return out

    def ttft(
        self, row: dict[str, Any], prompt_tokens: int, *, measured: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """Time to first token (ms, 80% interval) and the prefill rate at this prompt length for one setup row.

        Returns ttft_ms, ttft_low, ttft_high, pp_tok_s, pp_low, pp_high, basis and notes; or reason when the
        row cannot be predicted. Example: predictor.ttft(row, 800)["ttft_ms"].
        """
        pred = self.predict([{**row, "prompt_tokens": prompt_tokens}], measured=measured)[0]
        if "pred_ttft_ms" not in pred:
            return {"reason": pred.get("reason", "no prefill prediction"), "notes": pred.get("notes", [])}
        keys = ("ttft_ms", "ttft_low", "ttft_high", "pp_tok_s", "pp_low", "pp_high")
        return {**{k: pred[f"pred_{k}"] for k in keys}, "basis": pred["basis"], "notes": pred["notes"]}

    def _add_latency(
        self, result: dict[str, Any], row: dict[str, Any], measured_overhead: tuple[float, float, float] | None
    ) -> None:
        """TTFT = per-request overhead + prompt / prefill rate at that length; e2e adds the output at decode rate."""
        prompt = _num(row.get("prompt_tokens"))
        if not prompt or "pred_pp_tok_s" not in result:
            if _num(row.get("output_tokens")):
                result["notes"].append("pred_e2e_ms needs prompt_tokens")
            return
        if measured_overhead:
            overhead, basis = measured_overhead, "overhead measured on this hardware"
        else:
            family = _overhead_family(row.get("backend"))
            overhead = self.overhead_ms.get(family, self.overhead_ms["other"])
            fitted = re.search(rf"(?:^|[:,] ){re.escape(family)} \((\d+) rows", self.overhead_basis)
            label = f"fitted on {fitted.group(1)} published TTFT rows" if fitted else "assumed"
            basis = f"{family} overhead {overhead[0]:g} ms ({label}; 80% {overhead[1]:g}-{overhead[2]:g} ms)"
        prefill_ms = [1000 * prompt / result[f"pred_pp_{k}"] for k in ("tok_s", "high", "low")]
        result["pred_ttft_ms"] = overhead[0] + prefill_ms[0]
        result["pred_ttft_low"] = overhead[1] + prefill_ms[1]
        result["pred_ttft_high"] = overhead[2] + prefill_ms[2]
        result["notes"].append(f"ttft: {basis} + {prompt:g} prompt tokens at the predicted prefill rate")
        output = _num(row.get("output_tokens"))
        if output and "pred_tg_tok_s" in result:
            # Decode slows as the cache grows during the answer: the rate at the middle of it.
            kv = self._kv_bytes_per_token(row)[0]
            weights = _weight_gb(row)
            context = _decode_context(row)
            middle = weights / (weights + kv * (context + output / 2) / 1e9)
            start = weights / (weights + kv * context / 1e9)
            result["pred_e2e_ms"] = result["pred_ttft_ms"] + 1000 * output / (result["pred_tg_tok_s"] * middle / start)

    def _evaluate(self, rows: list[dict[str, Any]]) -> _Evaluation:
        """Complete, check and featurise rows; tree predictions at the reference shape moved to each row's shape."""
        checked = [row_problem(r) for r in rows]
        completed = [complete_row(r, self.knowledge) for r in rows]
        full = [c[0] for c in completed]
        frame, reasons = feature_frame(full)
        reasons = [checked[i] or row_problem(full[i]) or reasons[i] for i in range(len(rows))]
        notes = [[] if checked[i] else list(c[1]) for i, c in enumerate(completed)]
        valid = [i for i, reason in enumerate(reasons) if reason is None]
        logs = self._predict_logs(frame.iloc[valid]) if valid else {}
        spreads = {
            name: model.predict_spread(frame.iloc[valid])
            for name, model in (("tg", self.tg), ("pp", self.pp))
            if model is not None and valid
        }
        widen = [
            (FAMILY_BPW_WIDEN if r.get("_bpw_family") else 0.0)
            + (ASSUMED_BANDWIDTH_WIDEN if r.get("_bw_assumed") else 0.0)
            for r in full
        ]
        for k, i in enumerate(valid):
            row = full[i]
            prompt = _num(row.get("prompt_tokens"))
            if "pp" in logs and prompt and prompt > self.longest_prompt:
                # The trees learned prompt length up to the longest published prompt; past it, attention physics.
                active = _num(row.get("active_params_b")) or 1.0
                logs["pp"][k] += math.log(
                    prefill_length_factor(prompt, active, self.prefill_slope)
                    / prefill_length_factor(self.longest_prompt, active, self.prefill_slope)
                )
            context = _decode_context(row)
            if "tg" in logs and context:
                kv, kv_basis = self._kv_bytes_per_token(row)
                weights = _weight_gb(row)
                logs["tg"][k] += math.log(weights / (weights + kv * context / 1e9))
                notes[i].append(f"decode at {context:g} tokens of context (KV {kv / 1e3:.0f} kB/token, {kv_basis})")
        return _Evaluation(full, notes, reasons, frame, {i: k for k, i in enumerate(valid)}, logs, spreads, widen)

    def _kv_bytes_per_token(self, row: dict[str, Any]) -> tuple[float, str]:
        """KV cache bytes read per token of context (f16 cache): the catalog model's shape, else a catalog estimate."""
        spec = self.knowledge.model_named(str(row.get("model_name") or ""))
        if spec and spec.layers and spec.kv_heads and spec.head_dim:
            return 2 * spec.layers * spec.kv_heads * spec.head_dim * 2.0, f"shape of catalog model '{spec.id}'"
        if self._kv_per_sqrt_b is None:
            ratios = [
                2 * m.layers * m.kv_heads * m.head_dim * 2.0 / math.sqrt(m.total_params_b)
                for m in self.knowledge.models
                if m.layers and m.kv_heads and m.head_dim and m.total_params_b and not m.is_moe
            ]
            self._kv_per_sqrt_b = float(np.median(ratios)) if ratios else 50_000.0
        total = _num(row.get("total_params_b")) or _num(row.get("active_params_b")) or 1.0
        return self._kv_per_sqrt_b * math.sqrt(total), "shape unknown: catalog median for its size"

    def _predict_logs(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """Log predictions for a whole frame at once (one scikit-learn call per target)."""
        return {
            name: model.predict_log(frame) for name, model in (("tg", self.tg), ("pp", self.pp)) if model is not None
        }

    def hardware_shifts(self, measured: list[dict[str, Any]]) -> dict[tuple[str, str], list[tuple[float, float]]]:
        """(log active params, log residual) of each measured row, per (hardware, target)."""
        return self._calibration(measured)[0]

    def _calibration(
        self, measured: list[dict[str, Any]]
    ) -> tuple[
        dict[tuple[str, str], list[tuple[float, float]]], dict[str, tuple[float, float, float]], list[tuple[str, str]]
    ]:
        """Residual shifts per (hardware, target), measured per-request overhead per hardware, and a note for each
        measured row refused (a cell out of bounds, or faster than the bandwidth allows)."""
        if not measured:
            return {}, {}, []
        ev = self._evaluate(measured)
        sums: dict[tuple[str, str], list[tuple[float, float]]] = {}
        implied: dict[str, list[float]] = {}
        rejected: list[tuple[str, str]] = []
        for i, row in enumerate(ev.rows):
            problem = row_problem(measured[i], measured=True) or ev.reasons[i] or _too_fast(row)
            if problem:
                rejected.append((_hw_key(row), f"measured row {measured[i].get('_line', i + 1)} ignored: {problem}"))
                continue
            k = ev.position[i]
            for name in ev.logs:
                actual = _num(row.get(f"{name}_tok_s"))
                if actual and actual > 0:
                    residual = math.log(actual) - float(ev.logs[name][k])
                    sums.setdefault((_hw_key(row), name), []).append(
                        (float(ev.frame["log_active_b"].iloc[i]), residual)
                    )
            ttft, prompt = _num(row.get("ttft_ms")), _num(row.get("prompt_tokens"))
            pp = _num(row.get("pp_tok_s")) or (math.exp(float(ev.logs["pp"][k])) if "pp" in ev.logs else None)
            if ttft and prompt and pp:
                implied.setdefault(_hw_key(row), []).append(max(ttft - 1000 * prompt / pp, 0.5))
        overheads = {
            hw: (float(np.median(v)), 0.7 * float(np.min(v)), 1.5 * float(np.max(v))) for hw, v in implied.items()
        }
        return sums, overheads, rejected


@dataclass
class _Evaluation:
    """Rows completed, checked and predicted at their shapes (internal to SpeedPredictor)."""

    rows: list[dict[str, Any]]
    notes: list[list[str]]
    reasons: list[str | None]
    frame: pd.DataFrame
    position: dict[int, int]  # row index -> index into logs / spreads
    logs: dict[str, np.ndarray]
    spreads: dict[str, np.ndarray]
    widen: list[float]


ACCELERATOR_BACKEND = {"nvidia": "cuda", "apple": "metal", "amd": "rocm", "cpu": "cpu", "intel": "cpu"}


def _shift_key(row: dict[str, Any]) -> str:
    """The backend label a runtime prefill shift is looked up by: a bare "llamafile" takes its accelerator's
    build ("llamafile-cuda" on NVIDIA), as LocalScore labels its runs; any other label is used as given."""
    label = str(row.get("backend") or "").strip().lower()
    if label == "llamafile":
        kind = ACCELERATOR_BACKEND.get(str(row.get("hardware_type") or "").strip().lower())
        return f"llamafile-{kind}" if kind else label
    return label


def _decode_context(row: dict[str, Any]) -> float:
    """Tokens already in the KV cache when decoding starts: context_tokens, else the prompt, else none."""
    context = _num(row.get("context_tokens"))
    return context if context is not None else (_num(row.get("prompt_tokens")) or 0.0)


def _weight_gb(row: dict[str, Any]) -> float:
    """Weight bytes read per decoded token, in GB (active parameters x bits per weight / 8)."""
    return (_num(row.get("active_params_b")) or 1.0) * (_num(row.get("bits_per_weight")) or 4.89) / 8


def _too_fast(row: dict[str, Any]) -> str | None:
    """A measured decode rate that would need more than 1.5x the memory bandwidth (the knowledge cross-check)."""
    tg, bw = _num(row.get("tg_tok_s")), _num(row.get("memory_bandwidth_gbs"))
    if tg and bw and tg * _weight_gb(row) > 1.5 * bw:
        return f"tg_tok_s {tg:g} would read {tg * _weight_gb(row):.0f} GB/s, over 1.5x the {bw:g} GB/s bandwidth"
    return None


def measured_spread(measured: list[dict[str, Any]]) -> tuple[dict[tuple[str, str], float], list[tuple[str, str]]]:
    """The largest run-to-run spread (percent) a hardware's measured rows report, per (hardware, target), and a
    note per unusable spread cell (its measurement is kept; only the widening is left out)."""
    out: dict[tuple[str, str], float] = {}
    notes: list[tuple[str, str]] = []
    for i, row in enumerate(measured):
        for name in ("tg", "pp"):
            cell = row.get(f"{name}_spread_pct")
            if cell is None or (isinstance(cell, str) and not cell.strip()):
                continue
            value = _num(cell)
            if value is None or not 0 <= value < 1000:
                line = row.get("_line", i + 1)
                notes.append(
                    (
                        _hw_key(row),
                        f"measured row {line}: {name}_spread_pct '{cell}' is not a percentage "
                        "from 0 to 1000; its band is not widened",
                    )
                )
            elif value and _num(row.get(f"{name}_tok_s")):
                key = (_hw_key(row), name)
                out[key] = max(out.get(key, 0.0), value)
    return out, notes


def calibration_shift(
    measurements: list[tuple[float, float]], log_size: float, *, prior: float = CALIBRATION_PRIOR_ROWS
) -> float:
    """This hardware's residual for a model of log_size: measurements weighted by how close in size they are,
    shrunk toward the fitted model by `prior` rows (PRIOR_ROWS per target; one measurement moves it most of the way)."""
    weights = _transfer(np.array([m[0] for m in measurements]) - log_size)
    residuals = np.array([m[1] for m in measurements])
    return float((weights * residuals).sum() / (weights.sum() + prior))


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
    from scipy.special import betaincinv  # beta's quantile, without importing scipy.stats (~0.5 s)

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
        round(a / (a + b), 4), round(float(betaincinv(a, b, 0.1)), 4), round(float(betaincinv(a, b, 0.9)), 4), basis
    )


# The only types outside skops' own safe list that save_predictor writes. A cache file naming anything else was
# not written by this code (or by another scikit-learn): it is refused and refitted, never loaded.
TRUSTED_TYPES = ("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",)
log = logging.getLogger("advisor.predict")


class UntrustedCache(ValueError):
    """A skops file names types save_predictor never writes."""


def _scalars(predictor: SpeedPredictor) -> dict[str, Any]:
    """The fitted figures beside the trees, as JSON-able values (both cache formats store these)."""
    return {
        "trained_rows": predictor.trained_rows,
        "prefill_slope": predictor.prefill_slope,
        "longest_prompt": predictor.longest_prompt,
        "overhead_ms": {k: list(v) for k, v in predictor.overhead_ms.items()},
        "overhead_basis": predictor.overhead_basis,
        "backend_prefill_shift": {k: list(v) for k, v in predictor.backend_prefill_shift.items()},
    }


def _from_scalars(
    tg: TargetModel | None, pp: TargetModel | None, knowledge: Knowledge, saved: dict[str, Any]
) -> SpeedPredictor:
    """A SpeedPredictor from its two target models and what _scalars wrote."""
    return SpeedPredictor(
        tg,
        pp,
        knowledge,
        int(saved["trained_rows"]),
        prefill_slope=float(saved["prefill_slope"]),
        longest_prompt=float(saved["longest_prompt"]),
        overhead_ms={k: (float(v[0]), float(v[1]), float(v[2])) for k, v in saved["overhead_ms"].items()},
        overhead_basis=str(saved["overhead_basis"]),
        backend_prefill_shift={
            k: (float(v[0]), int(v[1]), float(v[2]), float(v[3]))
            for k, v in saved.get("backend_prefill_shift", {}).items()
        },
    )


def save_predictor(predictor: SpeedPredictor, path: Path) -> None:
    """Persist the fitted regressors and interval quantiles with skops (never pickle), atomically."""
    import skops.io as sio

    payload: dict[str, Any] = {
        **_scalars(predictor),
    }
    for name, model in (("tg", predictor.tg), ("pp", predictor.pp)):
        if model is not None:
            regressor = model.regressor
            payload[name] = {
                # skops stores the seeds' models as a list of scikit-learn objects (no class of ours in the file)
                "regressor": regressor.models if isinstance(regressor, SeedAverage) else regressor,
                "zero_shot_q": list(model.zero_shot_q),
                "calibrated_q": list(model.calibrated_q),
                "spread": model.spread,
            }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
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
                SeedAverage(list(entry["regressor"])) if isinstance(entry["regressor"], list) else entry["regressor"],
                tuple(entry["zero_shot_q"]),
                tuple(entry["calibrated_q"]),
                entry.get("spread"),
            )
            if entry
            else None
        )
    return _from_scalars(models["tg"], models["pp"], knowledge, payload)


def knowledge_digest(directory: Path) -> str:
    """A hash of the training data, the predictor's code and scikit-learn's version: a cached fit is redone when
    any of them changes (a model saved by another scikit-learn is never loaded)."""
    import hashlib
    import importlib.metadata

    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update((Path(__file__).parent / "trees.py").read_bytes())
    # The version from package metadata: importing scikit-learn just to read it costs a second.
    digest.update(importlib.metadata.version("scikit-learn").encode())
    for name in ("speed_measurements.csv", "hardware.csv", "quantization.csv"):
        digest.update((directory / name).read_bytes())
    return digest.hexdigest()[:16]


def get_predictor(
    knowledge: Knowledge, knowledge_dir: Path, cache_dir: Path, *, background_save: bool = True
) -> SpeedPredictor:
    """The fitted predictor, from the skops cache when the knowledge has not changed, else fitted and cached.

    A cache that fails the type check or cannot be read is refitted with a one-line warning, never trusted.
    A fresh fit is returned at once and written to the cache by a (non-daemon) thread: importing skops and
    writing take ~0.7 s the first answer need not wait for; the process still finishes the write before exit.
    """
    digest = knowledge_digest(knowledge_dir)
    # Fastest first: numpy trees (no scikit-learn import) from this home's cache or shipped beside the knowledge,
    # each only when built from exactly this knowledge, code and scikit-learn.
    for compiled in (cache_dir / f"speed-predictor-{digest}.npz", SHIPPED_PREDICTOR):
        if compiled.exists():
            try:
                return load_compiled(compiled, knowledge, digest=digest)
            except StaleArtifact:
                continue
            except Exception as exc:  # noqa: BLE001 - a damaged file is refitted, never trusted
                log.warning("speed predictor file %s unreadable (%s); not used", compiled, type(exc).__name__)
    path = cache_dir / f"speed-predictor-{digest}.skops"
    if path.exists():
        try:
            predictor = load_predictor(path, knowledge)
            _save_compiled_quietly(predictor, cache_dir / f"speed-predictor-{digest}.npz", digest)
            return predictor
        except UntrustedCache as exc:
            log.warning("speed predictor cache refused and refitted: %s", exc)
        except Exception as exc:  # noqa: BLE001 - a stale or damaged cache is refitted, never trusted
            log.warning("speed predictor cache %s unreadable (%s); refitted", path, type(exc).__name__)
        path.unlink(missing_ok=True)
    predictor = SpeedPredictor.fit(knowledge)
    _save_compiled_quietly(predictor, cache_dir / f"speed-predictor-{digest}.npz", digest)
    if background_save:
        threading.Thread(target=_save_quietly, args=(predictor, path), name="predictor-cache").start()
    else:
        _save_quietly(predictor, path)
    return predictor


def _save_quietly(predictor: SpeedPredictor, path: Path) -> None:
    try:
        save_predictor(predictor, path)
    except Exception as exc:  # noqa: BLE001 - a read-only or full home still gets predictions, just no cache
        log.warning("speed predictor cache %s not written (%s)", path, type(exc).__name__)


# --- the fitted predictor as numpy arrays: loaded without scikit-learn or skops, and no code in the file ---------

# Fitted from knowledge/ by benchmarks/build_predictor.py and shipped, so a fresh install answers without fitting;
# used only while its digest matches (same knowledge, predictor code and scikit-learn), else refitted.
SHIPPED_PREDICTOR = Path(__file__).parent / "fitted" / "speed-predictor.npz"


class StaleArtifact(ValueError):
    """A compiled predictor built from other knowledge, code or scikit-learn: refit instead."""


def compiled_arrays(predictor: SpeedPredictor, *, digest: str) -> dict[str, np.ndarray]:
    """Every fitted tree as plain arrays, plus the scalars (as JSON text) and the digest they were built from."""
    import importlib.metadata
    import json

    meta: dict[str, Any] = {
        "digest": digest,
        "scikit_learn": importlib.metadata.version("scikit-learn"),
        **_scalars(predictor),
        "targets": {},
    }
    arrays: dict[str, np.ndarray] = {}
    for name, model in (("tg", predictor.tg), ("pp", predictor.pp)):
        if model is None:
            continue
        meta["targets"][name] = {
            "zero_shot_q": list(model.zero_shot_q),
            "calibrated_q": list(model.calibrated_q),
            "spread": model.spread is not None,
        }
        for part, fitted in (("regressor", model.regressor), ("spread", model.spread)):
            if fitted is not None:
                trees = fitted if isinstance(fitted, TreeEnsemble) else TreeEnsemble.from_sklearn(fitted)
                arrays.update(trees.arrays(f"{name}.{part}"))
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
    return arrays


def load_compiled(path: Path, knowledge: Knowledge, *, digest: str) -> SpeedPredictor:
    """A predictor from compiled_arrays; StaleArtifact when it was built from anything else."""
    import json

    data = load_arrays(path)
    meta = json.loads(str(data["meta"]))
    if meta.get("digest") != digest:
        raise StaleArtifact(f"{path} was built for {meta.get('digest')}, not {digest}")
    models: dict[str, TargetModel | None] = {"tg": None, "pp": None}
    for name, entry in meta["targets"].items():
        models[name] = TargetModel(
            name,
            TreeEnsemble.from_arrays(data, f"{name}.regressor"),
            (float(entry["zero_shot_q"][0]), float(entry["zero_shot_q"][1])),
            (float(entry["calibrated_q"][0]), float(entry["calibrated_q"][1])),
            TreeEnsemble.from_arrays(data, f"{name}.spread") if entry["spread"] else None,
        )
    return _from_scalars(models["tg"], models["pp"], knowledge, meta)


def _save_compiled_quietly(predictor: SpeedPredictor, path: Path, digest: str) -> None:
    try:
        save_arrays(path, compiled_arrays(predictor, digest=digest))
    except Exception as exc:  # noqa: BLE001 - a read-only or full home still gets predictions, just no cache
        log.warning("speed predictor arrays %s not written (%s)", path, type(exc).__name__)
