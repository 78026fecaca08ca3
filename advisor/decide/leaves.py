"""What a local (or hybrid) choice still leaves to the team: the capability gap, governance, procurement.

Running a model on our own machine answers lens 1 (where the data goes); it does not answer who approves the
model, which compliance rules cover the deployment, or who keeps it running. Each item is a concrete sentence
with the figure it rests on, so a reader can act on it (SEEDS §4, "what local does not solve").
"""

from __future__ import annotations

from dataclasses import replace

from advisor.decide.capability import AREAS, Tiers
from advisor.decide.costs import Site
from advisor.decide.options import HybridOption, Option
from advisor.decide.rank import capacity_step
from advisor.schemas import Workflow

LOCAL_DECISIONS = ("local", "local-with-gap", "hybrid", "hybrid-with-gap")


def local_leg(option: Option) -> Option:
    """The option that runs on this machine: the option itself, or a hybrid route's first leg."""
    return option.legs[0] if isinstance(option, HybridOption) else option


def leaves_to_team(
    option: Option,
    decision: str,
    workflow: Workflow,
    site: Site,
    tiers: Tiers,
    *,
    frontier_need: float,
    license_name: str | None,
) -> list[str] | None:
    """The items a local or hybrid choice does not solve; None for hosted choices (the provider carries them)."""
    if decision not in LOCAL_DECISIONS:
        return None
    local = local_leg(option)
    items = []
    gap = _capability_gap(local, workflow, tiers, frontier_need)
    if gap:
        items.append(gap)
    items.append(
        f"Governance: the same SOC 2 / ISO 27001 controls and data-retention rules apply to a local deployment — "
        f"prompts, outputs and logs now live on this machine, so access control, retention and deletion are the "
        f"team's; someone must approve {local.model} (license: {license_name or 'not in the catalog — check it'}) "
        f"and every model or runtime update before it serves {workflow.data_sensitivity} data."
    )
    items.append(_redundancy_item(local, workflow, site))
    ops = site.costs.ops_usd_per_month
    items.append(
        "Support and monitoring: "
        + (
            f"costs.ops_usd_per_month = ${ops:,.0f}/month is counted in the local cost"
            if ops > 0
            else "costs.ops_usd_per_month is 0, so no staff time for support, on-call or monitoring is counted; "
            "set it to your estimate"
        )
        + "."
    )
    items.append(
        f"Updates: the team patches the runtime ({local.runtime}) and the OS, tracks new model versions, and "
        "re-runs calibration and its own task checks after each change; no vendor does it for a local deployment."
    )
    if isinstance(option, HybridOption):
        hosted = option.legs[1]
        items.append(
            f"Hosted leg: the ~{1 - local.success:.0%} of requests that escalate go to {hosted.model} "
            f"({hosted.provider}); its retention terms and data-processing agreement apply to them."
        )
    return items


def _capability_gap(option: Option, workflow: Workflow, tiers: Tiers, frontier: float) -> str | None:
    """How far the local model sits below the need and below this task's frontier need, when it does."""
    score = option.score
    anchor = AREAS[score.area][0]
    parts = []
    if option.shortfall > 0:
        parts.append(
            f"{option.model} scores {score.value:.0f} ({score.label}) on the {score.area} scale ({anchor}), "
            f"{option.shortfall:.0f} points short of this {workflow.capability} workflow's need of {option.threshold:.0f}"
        )
    if score.value < frontier and workflow.capability != "frontier":  # a frontier need's gap is the shortfall
        parts.append(
            f"{frontier - score.value:.0f} points below what frontier {workflow.task} work needs ({frontier:.0f}; "
            f"best published {tiers.best:.0f}, {tiers.best_model})"
        )
    if not parts:
        return None
    return (
        "Frontier capability gap: "
        + "; ".join(parts)
        + " — work that needs the frontier still routes out to a hosted model where lens 1 allows it."
    )


def _redundancy_item(option: Option, workflow: Workflow, site: Site) -> str:
    """Uptime: whether a second machine was counted, and what counting one would cost per 1k requests."""
    busy = option.local_busy_s
    volume = workflow.requests_per_day
    step = capacity_step(option, workflow, site)
    machines = step[0] if step else 1
    if site.costs.redundancy:
        return (
            f"Uptime and redundancy: costs.redundancy is on — a spare machine beyond the {machines} the volume needs "
            "is counted in the local cost; failover between them is still the team's to build and test."
        )
    with_spare = replace(site, costs=site.costs.model_copy(update={"redundancy": True}))
    extra = (with_spare.local_per_request(busy, volume) - site.local_per_request(busy, volume)) * 1000
    text = (
        f"Uptime and redundancy: costs.redundancy is off — the local cost counts {machines} machine(s) and no spare, "
        "so one hardware failure stops this workflow"
    )
    if volume > 0:
        text += f"; a second machine would add ~${extra:,.4f} per 1k requests (predicted)"
    if workflow.iteration == "stable":
        text += "; suggested for stable production work: set costs.redundancy: true (not applied for you)"
    return text + "."
