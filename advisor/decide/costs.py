"""Dollars: local energy + amortised hardware + ops at the volume; hosted token prices; break-even per accepted answer."""

from __future__ import annotations

import math
from dataclasses import dataclass

from advisor.schemas import Costs

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
