"""Words: one sentence per lens, the gap warnings with their size, and why each cheaper or faster option lost."""

from __future__ import annotations

from advisor.decide.capability import AREAS
from advisor.decide.options import Option
from advisor.decide.rank import Scored, time_value_usd_per_s
from advisor.policy import FRONTIER_MARGIN, ITERATION_TIME_WEIGHT, PROTOTYPE_HOSTED_FACTOR
from advisor.schemas import Workflow


def capability_phrase(option: Option) -> str:
    s = option.score
    text = f"{s.value:.0f} on the {s.area} scale ({AREAS[s.area][0]})"
    if s.label == "imputed":
        text += f", imputed, 80% interval {s.low:.0f}-{s.high:.0f}"
    return text


def objective_phrase(workflow: Workflow) -> str:
    value = time_value_usd_per_s(workflow)
    return (
        f"expected dollars per accepted answer plus ${value * 3600:,.2f} per hour of waiting for it "
        f"({'a person waiting' if workflow.interactive else 'a batch job'}, x{ITERATION_TIME_WEIGHT[workflow.iteration]:g} "
        f"for a {workflow.iteration} workflow), seconds over the budget weighted 10x, retries at 1/p, "
        "capability uncertainty priced in"
    )


def why_lost(other: Scored, choice: Scored, workflow: Workflow) -> str:
    """One line on why an option that is cheaper or faster than the choice was not chosen."""
    o, c = other.option, choice.option
    cheaper = other.usd_per_accepted < choice.usd_per_accepted
    faster = other.seconds_per_accepted < choice.seconds_per_accepted
    what = " and ".join(
        w
        for w, flag in (
            (f"${other.usd_per_accepted:.5f} vs ${choice.usd_per_accepted:.5f} per accepted answer", cheaper),
            (f"{other.seconds_per_accepted:.1f} s vs {choice.seconds_per_accepted:.1f} s per accepted answer", faster),
        )
        if flag
    )
    if o.shortfall > c.shortfall + 1e-9:
        why = (
            f"misses the {workflow.capability} need: {capability_phrase(o)} vs {o.threshold:.0f} needed "
            f"({o.shortfall:.1f} short)"
        )
    elif other.over_budget_s > choice.over_budget_s + 1e-9:
        why = f"is over the {workflow.latency_budget_s:g} s budget by {other.over_budget_s:.1f} s per attempt"
    elif other.objective <= choice.objective:
        why = "ties on the objective, and a published figure wins over an assumed or imputed one"
    else:
        # The trade the objective made, on its own figures (success uncertainty penalised).
        saved_usd = choice.penalised_usd - other.penalised_usd
        saved_s = choice.penalised_seconds - other.penalised_seconds
        value = time_value_usd_per_s(workflow)
        if saved_usd > 0 and saved_s <= 0:
            why = (
                f"saves ${saved_usd:.5f} but takes {-saved_s:.1f} s longer, worth ${-saved_s * value:.5f} at this "
                "workflow's time value (success uncertainty penalised)"
            )
        elif saved_s > 0 and saved_usd <= 0:
            why = f"saves {saved_s:.1f} s, worth ${saved_s * value:.5f}, but costs ${-saved_usd:.5f} more"
        else:
            why = (
                f"is less certain (capability 80% interval {o.score.low:.0f}-{o.score.high:.0f}) and scores worse "
                "on the objective once that uncertainty is priced in"
            )
        if o.kind == "hosted" and workflow.iteration == "prototype":
            why += f" (prototype: hosted options carry a x{PROTOTYPE_HOSTED_FACTOR:g} procurement factor)"
    marks = []
    if o.score.label == "imputed":
        marks.append("score imputed")
    if not o.speed_known:
        marks.append("speed assumed")
    return f"{o.label()}: {what}; lost because it {why}" + (f" [{', '.join(marks)}]" if marks else "")


def gap_warnings(choice: Scored, workflow: Workflow, *, forced_local: bool) -> list[tuple[str, str]]:
    """Which need the choice misses and by how much, with the profile field each speaks to."""
    o = choice.option
    why = "data sensitivity keeps this workflow local" if forced_local else "no allowed option meets every need"
    out = []
    seconds = o.e2e_s / max(o.success, 1e-6)
    if seconds > workflow.latency_budget_s:
        out.append(
            (
                f"{why}: the choice ({o.model}) needs {seconds:.1f} s per accepted answer ({o.e2e_s:.1f} s per attempt, "
                f"{o.success:.0%} accepted) against a {workflow.latency_budget_s:g} s budget "
                f"({seconds / workflow.latency_budget_s:.1f}x over)",
                "latency_budget_s",
            )
        )
    if o.shortfall > 0:
        out.append(
            (
                f"{why}: the choice ({o.model}) scores {capability_phrase(o)} against the {workflow.capability} need of "
                f"{o.threshold:.0f} for {workflow.task} ({o.shortfall:.0f} points short"
                + (", imputed: calibrate with your own tasks to know" if o.score.label == "imputed" else "")
                + ")",
                "capability",
            )
        )
    elif o.score.label == "imputed":
        out.append(
            (
                f"{o.model}'s capability is imputed ({capability_phrase(o)}): no published score on this scale; "
                f"it may fall short of the {workflow.capability} need of {o.threshold:.0f}; calibrate with your own "
                "tasks to confirm",
                "capability",
            )
        )
    return out


def lens_reasons(
    workflow: Workflow,
    choice: Scored | None,
    *,
    approved: list[str],
    allowed_hosted: int,
    priced_hosted: int,
    local_count: int,
    best_published: tuple[float, str],
    cost_sentence: str,
) -> dict[str, str]:
    """One plain sentence per lens."""
    s = workflow.data_sensitivity
    if s == "regulated":
        data = "Regulated data (PII/PHI/NDA) never goes to a hosted API: only local options were considered."
    elif s == "confidential":
        data = (
            f"Confidential data: hosted options limited to approved providers ({', '.join(approved)}); "
            f"{allowed_hosted} of {priced_hosted} priced offers qualify."
            if allowed_hosted
            else "Confidential data and no approved hosted provider: only local options were considered."
        )
    else:
        data = (
            f"{s.capitalize()} data: {local_count} local and all {priced_hosted} priced hosted options were considered."
        )
    iteration = (
        f"{workflow.iteration.capitalize()} workflow: options are ranked by one objective — {objective_phrase(workflow)}"
        + (
            f"; hosted options carry a x{PROTOTYPE_HOSTED_FACTOR:g} procurement factor."
            if workflow.iteration == "prototype"
            else "."
        )
    )
    if choice:
        o = choice.option
        latency = (
            f"{'Interactive' if workflow.interactive else 'Batch'}: {o.model} takes ~{o.e2e_s:.1f} s per attempt "
            f"(TTFT {o.ttft_s:.2f} s [{o.ttft.label}] + {o.tokens:.0f} tokens, {o.reasoning_tokens:.0f} of them thinking, "
            f"at {o.decode_tps:.0f} tok/s [{o.decode_label}]), {o.e2e_s / max(o.success, 1e-6):.1f} s per accepted answer "
            f"against a {workflow.latency_budget_s:g} s budget — "
            f"{'within' if o.e2e_s / max(o.success, 1e-6) <= workflow.latency_budget_s else 'over'} budget."
        )
    else:
        latency = "No option could be timed."
    best, best_model = best_published
    if choice is None:
        capability = "No option to judge."
    else:
        o = choice.option
        meets = "meets" if o.shortfall == 0 else "misses"
        capability = (
            f"{workflow.capability.capitalize()} {workflow.task} needs {o.threshold:.0f} on the {o.score.area} scale "
            f"(the best published is {best:.0f}, {best_model}; frontier = within {FRONTIER_MARGIN:g} points of it); "
            f"{o.model} scores {capability_phrase(o)} and {meets} it"
        )
        if o.specialist:
            capability += f" ({o.model} is a {o.specialist.replace('|', ' / ')} specialist, trained for this task)"
        if workflow.capability == "frontier":
            capability += (
                ", routed to hosted"
                if o.kind == "hosted"
                else ", kept local — no allowed hosted option is better; any conflict is stated in the warnings"
            )
        capability += f"; expected success {o.success:.0%} (80%: {o.success_low:.0%}-{o.success_high:.0%})."
    return {
        "data_sensitivity": data,
        "iteration_velocity": iteration,
        "latency_budget": latency,
        "cost_at_scale": cost_sentence,
        "capability_frontier": capability,
    }
