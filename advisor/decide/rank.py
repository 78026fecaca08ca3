"""One continuous objective per workflow, the choice it makes, and the volumes at which that choice would flip.

objective = procurement x risk x (dollars + time value x seconds) / p + time value x OVER_BUDGET_WEIGHT x over
  per attempt: dollars, seconds; divided by p: per accepted answer (retries at 1/p)
  over = max(0, risk x seconds / p - budget): the penalised seconds per accepted answer beyond the budget. The
    budget term is the same for every option (no procurement factor), so a tighter budget can only move the choice
    to one with fewer penalised seconds per accepted answer (tests/test_recommend.py checks this property).
  risk = 1 + UNCERTAINTY_PENALTY x (width of the capability score's 80% interval) / 100   (uncertainty penalised)
The time value follows the latency lens (a person waiting vs a batch) scaled by the iteration lens; a
prototype's hosted options carry a procurement factor. Meeting the capability need comes first: options are
ordered by how far they fall short of it, then by the objective, then published before assumed/imputed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from advisor.decide.costs import Site, machines_needed
from advisor.decide.options import Option
from advisor.policy import (
    ITERATION_TIME_WEIGHT,
    OVER_BUDGET_WEIGHT,
    PROTOTYPE_HOSTED_FACTOR,
    TIME_VALUE_USD_PER_S,
    UNCERTAINTY_PENALTY,
)
from advisor.schemas import Workflow

SHORTFALL_WEIGHT = 1e6  # lexicographic: a point of capability shortfall outweighs any dollar difference
FLIP_SEARCH_FACTOR = 1000.0  # flip points are searched from volume / 1000 to volume x 1000
FLIP_GRID_STEP = 1.02


def time_value_usd_per_s(workflow: Workflow) -> float:
    base = TIME_VALUE_USD_PER_S["interactive" if workflow.interactive else "batch"]
    return base * ITERATION_TIME_WEIGHT[workflow.iteration]


def risk_factor(option: Option) -> float:
    """A premium for not knowing how capable an option is: wide (imputed) scores cost more than published ones.

    It depends on the score's interval, not on the need, so a higher need never reorders options by itself.
    """
    return 1.0 + UNCERTAINTY_PENALTY * (option.score.high - option.score.low) / 100


@dataclass(frozen=True)
class Scored:
    """An option's figures per accepted answer at one volume, and its place in the order."""

    option: Option
    cost_per_request: float
    seconds_per_accepted: float  # e2e / p: the DESIGN figure, shown
    usd_per_accepted: float  # cost / p: the DESIGN figure, shown
    penalised_seconds: float  # risk x e2e / p: what the objective uses
    penalised_usd: float  # risk x cost / p
    over_budget_s: float  # seconds beyond the budget per attempt
    objective: float

    @property
    def tokens_per_accepted(self) -> float:
        return self.option.tokens / max(self.option.success, 1e-6)

    def sort_key(self) -> tuple[float, float, int, str]:
        imputed = self.option.score.label == "imputed" or not self.option.speed_known
        return (round(self.option.shortfall, 6), self.objective, int(imputed), self.option.key())


def cost_per_request(option: Option, site: Site, requests_per_day: float) -> float:
    """Local dollars on this machine's busy time (zero for hosted) plus token dollars (zero for local)."""
    busy = option.local_busy_s
    local = site.local_per_request(busy, requests_per_day) if busy > 0 else 0.0
    return local + option.hosted_usd


def score(option: Option, workflow: Workflow, site: Site, requests_per_day: float) -> Scored:
    p = max(option.success, 1e-6)
    risk = risk_factor(option)
    cost = cost_per_request(option, site, requests_per_day)
    seconds = risk * option.e2e_s / p
    dollars = risk * cost / p
    over = max(0.0, option.e2e_s - workflow.latency_budget_s)
    value = time_value_usd_per_s(workflow)
    objective = dollars + value * seconds
    if option.kind in ("hosted", "hybrid") and workflow.iteration == "prototype":
        objective *= PROTOTYPE_HOSTED_FACTOR
    objective += value * OVER_BUDGET_WEIGHT * max(0.0, seconds - workflow.latency_budget_s)
    return Scored(option, cost, option.e2e_s / p, cost / p, seconds, dollars, over, objective)


def rank(options: list[Option], workflow: Workflow, site: Site, requests_per_day: float | None = None) -> list[Scored]:
    """Every option scored at the workflow's volume, best first."""
    volume = workflow.requests_per_day if requests_per_day is None else requests_per_day
    return sorted((score(o, workflow, site, volume) for o in options), key=Scored.sort_key)


# --- where the choice would flip with volume ------------------------------------------------------------------


class _Vectorised:
    """The ordering key of every option as arrays, so the choice can be found at many volumes at once."""

    def __init__(self, options: list[Option], workflow: Workflow, site: Site) -> None:
        self.options = options
        costs = site.costs
        self.p = np.array([max(o.success, 1e-6) / risk_factor(o) for o in options])
        self.t = np.array([o.e2e_s for o in options])
        self.busy = np.array([o.local_busy_s for o in options])
        self.local = self.busy > 0
        self.hosted_cost = np.array([o.hosted_usd for o in options])
        self.energy = site.power_w * self.busy / 3.6e6 * costs.electricity_usd_per_kwh
        self.per_machine = site.hardware_usd / (costs.amortization_months * 30.44)
        self.costs = costs
        self.value = time_value_usd_per_s(workflow)
        self.budget = workflow.latency_budget_s
        hosted = np.array([o.kind in ("hosted", "hybrid") for o in options])
        self.factor = np.where(hosted & (workflow.iteration == "prototype"), PROTOTYPE_HOSTED_FACTOR, 1.0)
        self.penalty = np.array([round(o.shortfall, 6) for o in options]) * SHORTFALL_WEIGHT
        self.tie = np.array([1e-12 * int(o.score.label == "imputed" or not o.speed_known) for o in options])

    def choice(
        self,
        volumes: np.ndarray,
        *,
        price: np.ndarray | float = 1.0,
        power: np.ndarray | float = 1.0,
        tokens: np.ndarray | float = 1.0,
        budget: np.ndarray | float = 1.0,
        success: np.ndarray | None = None,
    ) -> np.ndarray:
        """The chosen index per column: at each volume, or with one assumption scaled by a factor per column."""
        v = volumes[None, :]
        machines = np.maximum(1.0, v * self.busy[:, None] / (86_400.0 * self.costs.utilization_target))
        spare = 1.0 if self.costs.redundancy else 0.0
        owned = 1.0 if self.costs.hardware_sunk else 0.0
        per_machine = self.per_machine * np.asarray(price)
        fixed = per_machine * np.maximum(0.0, machines + spare - owned) + self.costs.ops_usd_per_month / 30.44
        local_cost = self.energy[:, None] * np.asarray(power) + fixed / v
        cost = np.where(self.local[:, None], local_cost, 0.0) + self.hosted_cost[:, None] * np.asarray(tokens)
        p = self.p[:, None] if success is None else success
        seconds = self.t[:, None] / p
        dollars = cost / p
        over = np.maximum(0.0, seconds - self.budget * np.asarray(budget))
        objective = (dollars + self.value * seconds) * self.factor[:, None] + self.value * OVER_BUDGET_WEIGHT * over
        key = self.penalty[:, None] + objective * (1 + self.tie[:, None])
        return np.asarray(np.argmin(key, axis=0))


@dataclass(frozen=True)
class FlipPoint:
    requests_per_day: float
    becomes: Option
    direction: str  # above | below


def flip_points(options: list[Option], workflow: Workflow, site: Site) -> list[FlipPoint]:
    """The nearest volume above and below the workflow's at which another option would be chosen."""
    if len(options) < 2 or workflow.requests_per_day <= 0:
        return []
    vec = _Vectorised(options, workflow, site)
    volume = workflow.requests_per_day
    here = int(vec.choice(np.array([volume]))[0])
    out = []
    steps = int(math.log(FLIP_SEARCH_FACTOR) / math.log(FLIP_GRID_STEP))
    for direction, sign in (("above", 1), ("below", -1)):
        grid = volume * FLIP_GRID_STEP ** (sign * np.arange(1, steps + 1))
        grid = grid[grid >= 1.0] if sign < 0 else grid
        if grid.size == 0:
            continue
        chosen = vec.choice(grid)
        changed = np.nonzero(chosen != here)[0]
        if changed.size == 0:
            continue
        first = int(changed[0])
        near = volume if first == 0 else float(grid[first - 1])
        far = float(grid[first])
        for _ in range(100):  # bisect between the last volume with this choice and the first without
            mid = (near + far) / 2
            if int(vec.choice(np.array([mid]))[0]) == here:
                near = mid
            else:
                far = mid
            if abs(far - near) <= 0.01:
                break
        other = int(vec.choice(np.array([far]))[0])
        out.append(FlipPoint(far, options[other], direction))
    return out


def capacity_step(option: Option, workflow: Workflow, site: Site) -> tuple[int, float] | None:
    """Machines this local option needs at the volume (rounded up) and the volume at which one more is needed."""
    busy = option.local_busy_s
    if busy <= 0:
        return None
    machines = math.ceil(machines_needed(busy, workflow.requests_per_day, site.costs) - 1e-9)
    per_machine = 86_400.0 * site.costs.utilization_target / busy
    return machines, machines * per_machine


# --- which assumption would flip the choice, and at what value -------------------------------------------------

SENSITIVITY_RANGE = 10.0  # each assumption is scaled from 1/10 to 10 times its value


@dataclass(frozen=True)
class Sensitivity:
    assumption: str
    value: float  # the assumption's value at which the choice flips
    base: float
    becomes: Option


def sensitivity(options: list[Option], workflow: Workflow, site: Site) -> list[Sensitivity]:
    """For each assumption, the nearest value (within 10x either way) at which another option would be chosen."""
    if len(options) < 2:
        return []
    vec = _Vectorised(options, workflow, site)
    volume = np.array([workflow.requests_per_day or 1.0])
    here = int(vec.choice(volume)[0])
    factors = np.exp(np.linspace(-math.log(SENSITIVITY_RANGE), math.log(SENSITIVITY_RANGE), 241))
    f = factors[None, :]
    chosen_success = vec.p[:, None] * np.ones_like(f)
    chosen_success[here] = np.minimum(vec.p[here] * factors, 0.999)
    cases: list[tuple[str, float, np.ndarray]] = [
        ("hardware price (USD)", site.hardware_usd, vec.choice(volume, price=f)),
        ("power while busy (W)", site.power_w, vec.choice(volume, power=f)),
        ("hosted token prices (x catalog)", 1.0, vec.choice(volume, tokens=f)),
        ("latency budget (s)", workflow.latency_budget_s, vec.choice(volume, budget=f)),
        ("the choice's success probability", options[here].success, vec.choice(volume, success=chosen_success)),
    ]
    out = []
    for name, base, chosen in cases:
        changed = np.nonzero(chosen != here)[0]
        if changed.size == 0 or base == 0:
            continue
        nearest = int(changed[np.argmin(np.abs(np.log(factors[changed])))])
        value = base * float(factors[nearest])
        if name.startswith("the choice's success"):
            value = min(value, 0.999)
        out.append(Sensitivity(name, value, base, options[int(chosen[nearest])]))
    return sorted(out, key=lambda s: abs(math.log(max(s.value, 1e-9) / max(s.base, 1e-9))))
