"""Compatibility edge: the decision lives in advisor/decide/; the CLI, API and app keep importing from here."""

from __future__ import annotations

from advisor.decide.costs import local_cost_per_request, machines_needed
from advisor.decide.engine import recommend
from advisor.decide.latency import ASSUMED_HOSTED_TPS, ASSUMED_HOSTED_TTFT_S
from advisor.decide.options import Option, calibration_rows, hosted_options, local_options, local_speed_table
from advisor.decide.site import ASSUMED_POWER_W, resolve_hardware, usable_memory_gb

__all__ = [
    "ASSUMED_HOSTED_TPS",
    "ASSUMED_HOSTED_TTFT_S",
    "ASSUMED_POWER_W",
    "Option",
    "calibration_rows",
    "hosted_options",
    "local_cost_per_request",
    "local_options",
    "local_speed_table",
    "machines_needed",
    "recommend",
    "resolve_hardware",
    "usable_memory_gb",
]
