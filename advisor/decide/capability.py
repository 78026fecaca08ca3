"""One capability scale per task area, published scores mapped onto it, missing ones imputed; tiers; success.

Each area has an anchor benchmark that is hard and not saturated (LiveCodeBench for coding, GPQA Diamond for
reasoning, MMLU-Pro for general work, BFCL for tool use). Every other published benchmark is mapped onto the
anchor by a straight line fitted on the catalog models scored on both, with the fit's residual spread as its
uncertainty, so a saturated benchmark (HumanEval, IFEval) cannot outrank a hard one. A model with no usable
score gets an imputed one from a ridge fit on size, active parameters, release date and reasoning mode (open
weights) or price and reasoning mode (hosted), with a wide interval; it is labelled "imputed" and stays a
candidate, judged on that figure, its wide interval lowering its expected success (rank.py penalises it).

Tiers are thresholds on the scale: frontier = within FRONTIER_MARGIN points of the best published anchor score
in the area; advanced = within ADVANCED_MARGIN; routine = ROUTINE_MARGIN (policy.py documents the margins).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from advisor.knowledge import Knowledge, ModelSpec
from advisor.policy import (
    ADVANCED_MARGIN,
    FRONTIER_MARGIN,
    ROUTINE_MARGIN,
    SUCCESS_AT_THRESHOLD,
    SUCCESS_CAP,
    SUCCESS_SCALE_POINTS,
)

# area -> (anchor benchmark, other benchmarks mapped onto it)
AREAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "coding": ("livecodebench", ("humaneval", "mbpp", "gpqa_diamond", "mmlu_pro")),
    "reasoning": ("gpqa_diamond", ("mmlu_pro", "math", "mmlu", "livecodebench")),
    "general": ("mmlu_pro", ("mmlu", "gpqa_diamond", "arena_hard", "ifeval")),
    "tool use": ("bfcl", ()),
}
TASK_AREA = {
    "coding": "coding",
    "autocomplete": "coding",
    "reasoning": "reasoning",
    "tool-calling": "tool use",
    "classification": "general",
    "extraction": "general",
    "summarization": "general",
    "drafting": "general",
    "chat": "general",
}
ANCHOR_SIGMA = 2.5  # spread of one published anchor score (versions, harness): assumed
MIN_MAPPING_PAIRS = 5
MIN_MAPPING_SIGMA = 3.0
IMPUTED_MIN_SIGMA = 10.0  # an imputed score is never known better than +/- 10 points (1 sigma)
Z80 = 1.2816  # half-width of an 80% interval in sigmas


@dataclass(frozen=True)
class Score:
    """A model's position on one task area's scale (0-100), with its 80% interval and how it was obtained."""

    area: str
    value: float
    sigma: float
    label: str  # published | imputed
    basis: str

    @property
    def low(self) -> float:
        return self.value - Z80 * self.sigma

    @property
    def high(self) -> float:
        return self.value + Z80 * self.sigma


@dataclass(frozen=True)
class Mapping:
    slope: float
    intercept: float
    sigma: float
    pairs: int


@dataclass(frozen=True)
class Tiers:
    best: float
    best_model: str
    thresholds: dict[str, float]


def hosted_scores(row: dict[str, Any]) -> dict[str, float | None]:
    return {k.removeprefix("score_"): row.get(k) for k in row if k.startswith("score_")}


def _published(scores: dict[str, float | None]) -> dict[str, float]:
    return {k: float(v) for k, v in scores.items() if v is not None}


class CapabilityScale:
    """Fitted once per knowledge base: benchmark mappings, imputation fits and tiers for every area."""

    def __init__(self, knowledge: Knowledge) -> None:
        self.local = {m.id: _published(m.scores) for m in knowledge.models}
        self.hosted = {r["id"]: _published(hosted_scores(r)) for r in knowledge.hosted}
        self._specs = {m.id: m for m in knowledge.models}
        self._hosted_rows = {r["id"]: r for r in knowledge.hosted}
        everything = list(self.local.values()) + list(self.hosted.values())
        self.mappings: dict[str, dict[str, Mapping]] = {
            area: self._fit_mappings(anchor, others, everything) for area, (anchor, others) in AREAS.items()
        }
        self.tiers: dict[str, Tiers] = {area: self._tiers(area) for area in AREAS}
        self._imputers: dict[tuple[str, str], tuple[np.ndarray, float, int] | None] = {}

    @staticmethod
    def _fit_mappings(anchor: str, others: tuple[str, ...], table: list[dict[str, float]]) -> dict[str, Mapping]:
        out = {}
        for bench in others:
            pairs = [(s[bench], s[anchor]) for s in table if bench in s and anchor in s]
            if len(pairs) < MIN_MAPPING_PAIRS:
                continue
            x, y = np.array(pairs).T
            slope, intercept = np.polyfit(x, y, 1)
            slope = max(float(slope), 0.0)
            if slope == 0.0:
                intercept = float(np.mean(y))
            resid = y - (slope * x + intercept)
            sigma = max(float(np.sqrt((resid**2).sum() / max(len(pairs) - 2, 1))), MIN_MAPPING_SIGMA)
            out[bench] = Mapping(slope, float(intercept), sigma, len(pairs))
        return out

    def _tiers(self, area: str) -> Tiers:
        anchor = AREAS[area][0]
        scored = [(s[anchor], name) for table in (self.local, self.hosted) for name, s in table.items() if anchor in s]
        best, best_model = max(scored) if scored else (100.0, "none")
        thresholds = {
            "routine": best - ROUTINE_MARGIN,
            "advanced": best - ADVANCED_MARGIN,
            "frontier": best - FRONTIER_MARGIN,
        }
        return Tiers(best, best_model, thresholds)

    def threshold(self, area: str, capability: str) -> float:
        return self.tiers[area].thresholds[capability]

    def published_score(self, area: str, scores: dict[str, float]) -> Score | None:
        """The anchor score, else the precision-weighted mean of the mapped benchmarks; None when none is published."""
        anchor, _ = AREAS[area]
        if anchor in scores:
            # The anchor is the scale: other benchmarks only stand in when it is missing.
            return Score(area, scores[anchor], ANCHOR_SIGMA, "published", f"published: {anchor} {scores[anchor]:g}")
        estimates: list[tuple[float, float, str]] = []
        for bench, mapping in self.mappings[area].items():
            if bench in scores:
                value = mapping.slope * scores[bench] + mapping.intercept
                estimates.append(
                    (value, mapping.sigma, f"{bench} {scores[bench]:g} -> {value:.0f} (fit on {mapping.pairs} models)")
                )
        if not estimates:
            return None
        weights = np.array([1 / s**2 for _, s, _ in estimates])
        values = np.array([v for v, _, _ in estimates])
        value = float((weights * values).sum() / weights.sum())
        # The benchmarks are correlated: never claim more precision than the best single estimate.
        sigma = max(float(math.sqrt(1 / weights.sum())), 0.8 * min(s for _, s, _ in estimates))
        basis = f"published, mapped onto the {anchor} scale: " + "; ".join(b for _, _, b in estimates)
        return Score(area, min(max(value, 0.0), 100.0), sigma, "published", basis)

    def local_score(self, spec: ModelSpec, area: str) -> Score:
        found = self.published_score(area, self.local.get(spec.id, {}))
        return found or self._impute(area, "local", spec.id)

    def hosted_score(self, row: dict[str, Any], area: str) -> Score:
        found = self.published_score(area, self.hosted.get(row["id"], {}))
        return found or self._impute(area, "hosted", row["id"])

    # --- imputation ---------------------------------------------------------------------------------------

    def _features(self, kind: str, name: str) -> np.ndarray | None:
        if kind == "local":
            spec = self._specs[name]
            if not spec.total_params_b:
                return None
            active = spec.params_for_speed or spec.total_params_b
            year = _year(spec.released)
            return np.array(
                [1.0, math.log(active), math.log(spec.total_params_b), year - 2025.0, float(spec.reasoning != "none")]
            )
        row = self._hosted_rows[name]
        price = row.get("output_usd_per_m") or row.get("input_usd_per_m")
        if not price:
            return None
        return np.array([1.0, math.log(price), float(row.get("reasoning") in ("yes", "optional"))])

    def _imputer(self, area: str, kind: str) -> tuple[np.ndarray, float, int] | None:
        key = (area, kind)
        if key not in self._imputers:
            table = self.local if kind == "local" else self.hosted
            xs, ys = [], []
            for name, scores in table.items():
                found = self.published_score(area, scores)
                features = self._features(kind, name)
                if found is not None and features is not None:
                    xs.append(features)
                    ys.append(found.value)
            fit = None
            if xs and len(xs) >= len(xs[0]) + 3:
                x, y = np.array(xs), np.array(ys)
                ridge = 1.0 * np.eye(x.shape[1])
                ridge[0, 0] = 0.0  # the intercept is not shrunk
                coef = np.linalg.solve(x.T @ x + ridge, x.T @ y)
                resid = y - x @ coef
                sigma = float(np.sqrt((resid**2).sum() / max(len(y) - x.shape[1], 1)))
                fit = (coef, sigma, len(y))
            self._imputers[key] = fit
        return self._imputers[key]

    def _impute(self, area: str, kind: str, name: str) -> Score:
        fit = self._imputer(area, kind)
        features = self._features(kind, name)
        tiers = self.tiers[area]
        if fit is None or features is None:
            # Nothing to learn from: the middle of the scale, as wide as it honestly is.
            value, sigma = tiers.thresholds["routine"] + (tiers.best - tiers.thresholds["routine"]) / 2, 20.0
            basis = "imputed: no score and nothing to impute from; mid-scale with a +/-26-point 80% interval"
        else:
            coef, resid_sigma, n = fit
            value = float(features @ coef)
            sigma = max(1.5 * resid_sigma, IMPUTED_MIN_SIGMA)
            what = (
                "size, active parameters, release date and reasoning mode"
                if kind == "local"
                else "token price and reasoning mode"
            )
            basis = f"imputed from {what} (ridge fit on {n} {kind} models with {AREAS[area][0]}-scale scores)"
        value = min(max(value, 0.0), tiers.best)  # never imputed above the best published model
        return Score(area, value, sigma, "imputed", basis)


def _year(released: str | None) -> float:
    if not released:
        return 2025.0
    parts = released.split("-")
    month = int(parts[1]) if len(parts) > 1 else 6
    return int(parts[0]) + (month - 0.5) / 12


def success_probability(
    score: Score,
    threshold: float,
    *,
    quant_loss_pct: float | None = None,
    successes: int = 0,
    attempts: int = 0,
) -> tuple[float, float, float, str]:
    """P(an answer is accepted) from how far the score sits above the workflow's need, with an 80% interval.

    At the need the prior is SUCCESS_AT_THRESHOLD; each SUCCESS_SCALE_POINTS above or below moves it one unit on
    the logit scale. The score's own interval gives the prior's; this machine's task results update it.
    """
    base = math.log(SUCCESS_AT_THRESHOLD / (1 - SUCCESS_AT_THRESHOLD))

    def p(at: float) -> float:
        # One smooth, log-concave curve for every option (scaled, not clipped, at the cap): a higher need then
        # lowers a weaker model's odds more than a stronger one's, never the other way round.
        value = SUCCESS_CAP / (1 + math.exp(-(base + (at - threshold) / SUCCESS_SCALE_POINTS)))
        if quant_loss_pct:
            value *= max(0.5, 1 - quant_loss_pct / 100)
        return value

    point, low, high = p(score.value), p(score.low), p(score.high)
    basis = f"{score.label} score {score.value:.0f} vs need {threshold:.0f}"
    if quant_loss_pct:
        basis += f", quantization loss -{quant_loss_pct:.1f}%"
    if attempts:
        from scipy.special import betaincinv  # beta's quantile, without importing scipy.stats (~0.5 s)

        strength = 10.0 if score.label == "published" else 3.0
        a = point * strength + successes
        b = (1 - point) * strength + attempts - successes
        point = a / (a + b)
        low, high = float(betaincinv(a, b, 0.1)), float(betaincinv(a, b, 0.9))
        basis += f", measured {successes}/{attempts} here"
    return round(point, 4), round(low, 4), round(high, 4), basis
