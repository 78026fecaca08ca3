"""Dollars: local energy + amortised hardware + ops at the volume; hosted token prices; break-even per accepted answer."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from advisor.errors import KnowledgeError
from advisor.schemas import Costs, Workflow

DAY_S = 86_400.0
DAYS_PER_MONTH = 30.44
ASSUMED_HARDWARE_USD = 2500.0  # per device, when neither the profile nor the catalog has a price


def machines_needed(busy_s: float, requests_per_day: float, costs: Costs) -> float:
    """Machines the volume keeps busy at the utilisation target (fractional: the cost view; round up to buy)."""
    return max(1.0, requests_per_day * busy_s / (DAY_S * costs.utilization_target))


def local_fixed_usd_per_day(
    busy_s: float, requests_per_day: float, costs: Costs, *, hardware_usd: float | None = None
) -> float:
    """Hardware amortised over the machines the volume needs (a spare when redundancy is on) plus ops per day."""
    price = hardware_usd if hardware_usd is not None else (costs.hardware_usd or ASSUMED_HARDWARE_USD)
    per_machine = price / (costs.amortization_months * DAYS_PER_MONTH)
    machines = machines_needed(busy_s, requests_per_day, costs)
    spare = 1.0 if costs.redundancy else 0.0
    owned = 1.0 if costs.hardware_sunk else 0.0  # a sunk machine is already paid for; more, or a spare, are not
    return per_machine * max(0.0, machines + spare - owned) + costs.ops_usd_per_month / DAYS_PER_MONTH


def energy_usd(busy_s: float, power_w: float, costs: Costs) -> float:
    return power_w * busy_s / 3.6e6 * costs.electricity_usd_per_kwh


def local_cost_per_request(
    busy_s: float, requests_per_day: float, power_w: float, costs: Costs, *, hardware_usd: float | None = None
) -> float:
    """Energy for the busy time plus hardware and ops per day spread over the day's requests.

    Above one machine's capacity (at costs.utilization_target) the amortisation scales with the machines
    needed, so the cost per request never rises with volume (unless the first machine is sunk).
    """
    energy = energy_usd(busy_s, power_w, costs)
    if requests_per_day <= 0:
        return energy
    fixed = local_fixed_usd_per_day(busy_s, requests_per_day, costs, hardware_usd=hardware_usd)
    return energy + fixed / requests_per_day


@dataclass(frozen=True)
class Site:
    """What local cost depends on besides the option: the cost assumptions, the resolved price and power."""

    costs: Costs
    hardware_usd: float
    power_w: float

    def local_per_request(self, busy_s: float, requests_per_day: float) -> float:
        return local_cost_per_request(
            busy_s, requests_per_day, self.power_w, self.costs, hardware_usd=self.hardware_usd
        )


def hosted_cost_per_request(
    input_tokens: int, output_tokens: float, input_usd_per_m: float, output_usd_per_m: float
) -> float:
    """Token prices: the prompt, then every generated token (reasoning tokens are billed as output)."""
    return (input_tokens * input_usd_per_m + output_tokens * output_usd_per_m) / 1e6


# Price-tier columns of knowledge/hosted.csv read here (the knowledge loader keeps unknown columns as text).
TIER_COLUMNS = (
    "long_context_threshold_k",
    "long_input_usd_per_m",
    "long_output_usd_per_m",
    "long_cached_input_usd_per_m",
)
BATCH_WINDOW = "results within the provider's batch window (typically up to 24 h)"


def _rate(row: dict[str, Any], column: str) -> float | None:
    """A numeric hosted.csv cell (already a number, or text in a tier column), None when empty."""
    value = row.get(column)
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise KnowledgeError(
            f"knowledge/hosted.csv, offer {row.get('id')}, column {column}: '{value}' is not a number"
        ) from None
    if not math.isfinite(number) or number < 0:
        raise KnowledgeError(f"knowledge/hosted.csv, offer {row.get('id')}, column {column}: {value} must be >= 0")
    return number


@dataclass(frozen=True)
class HostedPrice:
    """Token dollars per request for one hosted offer and workflow, with the rates and tiers that applied."""

    usd_per_request: float
    tiers: tuple[str, ...]  # long-context | cached-prefix | batch: the published tiers that applied
    basis: str  # the rates used and why, each from knowledge/hosted.csv (source and price date)


def hosted_price(row: dict[str, Any], workflow: Workflow, output_tokens: float) -> HostedPrice:
    """The offer's published token prices for this workflow, with every published tier the workflow can use.

    - long context: a prompt longer than `long_context_threshold_k` thousand tokens bills the whole request at the
      long-context rates (a provider's published step; a missing long rate falls back to the base rate, said so);
    - cached prefix: `workflow.cached_prefix_tokens` of every prompt bill at `cached_input_usd_per_m` where
      published (cache writes, billed once per cache lifetime, are not counted);
    - batch: `workflow.batch` takes `batch_discount_pct` off the whole request where published.
    Reasoning tokens are billed as output.
    """
    source = f"knowledge/hosted.csv {row['id']} ({row.get('source_url')}, price date {row.get('price_date') or row.get('source_date')})"
    base_in, base_out = float(row["input_usd_per_m"]), float(row["output_usd_per_m"])
    in_rate, out_rate, cached_rate = base_in, base_out, _rate(row, "cached_input_usd_per_m")
    tiers: list[str] = []
    parts = [f"${base_in:g}/M input, ${base_out:g}/M output (reasoning billed as output)"]
    threshold = _rate(row, "long_context_threshold_k")
    if threshold and workflow.input_tokens > threshold * 1000:
        long_in, long_out = _rate(row, "long_input_usd_per_m"), _rate(row, "long_output_usd_per_m")
        long_cached = _rate(row, "long_cached_input_usd_per_m")
        in_rate = long_in if long_in is not None else base_in
        out_rate = long_out if long_out is not None else base_out
        # Above the step the base cached rate no longer applies; without a published long cached rate the prefix
        # is billed as plain input at the long rate (no discount assumed).
        cached_rate = long_cached
        tiers.append("long-context")
        missing = [n for n, v in (("input", long_in), ("output", long_out)) if v is None]
        parts.append(
            f"long-context tier: the {workflow.input_tokens:,}-token prompt is above the published {threshold:g}K "
            f"step, so the request bills at ${in_rate:g}/M input and ${out_rate:g}/M output (published)"
            + (f"; the long {' and '.join(missing)} rate is not sourced, the base rate is used" if missing else "")
        )
    cached_tokens = min(workflow.cached_prefix_tokens, workflow.input_tokens)
    if cached_tokens and cached_rate is not None:
        tiers.append("cached-prefix")
        parts.append(
            f"cached prefix billed at ${cached_rate:g}/M, published: {cached_tokens:,} of {workflow.input_tokens:,} "
            "prompt tokens (workflows[].cached_prefix_tokens; cache writes not counted)"
        )
    elif cached_tokens:
        cached_tokens = 0
        parts.append("no published cached-input rate for this tier: the prefix is billed as plain input")
    usd = (
        (workflow.input_tokens - cached_tokens) * in_rate
        + cached_tokens * (cached_rate or 0.0)
        + output_tokens * out_rate
    ) / 1e6
    discount = _rate(row, "batch_discount_pct")
    if workflow.batch and discount:
        usd *= 1 - min(discount, 100.0) / 100
        tiers.append("batch")
        parts.append(f"batch API {discount:g}% off, published ({BATCH_WINDOW})")
    elif workflow.batch:
        parts.append("no published batch discount for this offer: full price")
    return HostedPrice(usd, tuple(tiers), "; ".join(parts) + f" — {source}")


def power_label(basis: str, how: str | None) -> str:
    """The power figure's basis with its DESIGN label: published (catalog), given, detected, or assumed."""
    if basis.startswith("assumed"):
        return basis
    if how and how.startswith("knowledge/hardware.csv"):
        return f"published: {basis} ({how})"
    if how == "given in the profile":
        return f"given in the profile (hardware.power_w): {basis}"
    return f"detected: {basis}" + (f" ({how})" if how else "")


def break_even_per_day(
    local_busy_s: float,
    local_success: float,
    hosted_usd_per_accepted: float,
    site: Site,
) -> float | None:
    """Requests per day above which local is cheaper per accepted answer (0: always; None: never)."""

    def gap(volume: float) -> float:
        return site.local_per_request(local_busy_s, volume) / local_success - hosted_usd_per_accepted

    low, high = 1.0, 1e9
    if gap(low) <= 0:
        return 0.0
    if gap(high) > 0:
        return None
    for _ in range(80):  # local cost per request is non-increasing in volume: bisect on the log scale
        mid = math.sqrt(low * high)
        if gap(mid) > 0:
            low = mid
        else:
            high = mid
        if high - low < 0.5:
            break
    return high
