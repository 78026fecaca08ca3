"""The decision, one job a module: site (the machine), capability, options, latency, costs, rank, reasons, engine."""

from advisor.decide.engine import recommend

__all__ = ["recommend"]
