"""The decision for every workflow: resolve the machine, build options, rank, explain, and write the JSON contract."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from advisor.decide.capability import CapabilityScale
from advisor.decide.catalog import DecisionCatalog, cached_catalog
from advisor.decide.costs import Site, break_even_per_day, power_label
from advisor.decide.leaves import leaves_to_team, local_leg
from advisor.decide.options import (
    MLX_QUANTS,
    MLX_RUNTIME,
    OLLAMA_RUNTIME,
    RUNTIMES,
    Context,
    Excluded,
    HybridOption,
    Option,
    calibration_rows,
    hosted_allowed,
    hosted_options,
    hybrid,
    local_options,
    local_speed_table,
    runtime_sentence,
    threshold_for,
)
from advisor.decide.rank import (
    FlipPoint,
    Scored,
    Sensitivity,
    capacity_step,
    flip_points,
    rank,
    sensitivity,
    time_value_usd_per_s,
)
from advisor.decide.reasons import gap_warnings, lens_reasons, objective_phrase, why_lost
from advisor.decide.runtime_pairs import cached_runtime_ratios
from advisor.decide.serving import SERVING_ENGINE, serving_options, serving_quants
from advisor.decide.site import device_price_usd, resolve_hardware, site_power_w
from advisor.knowledge import Knowledge
from advisor.predict import SpeedPredictor
from advisor.schemas import Profile, Recommendation, Workflow
from advisor.settings import get_settings

ALTERNATIVES = 5
HYBRID_LEGS = 3  # hybrid routes pair the best three local options with the best three allowed hosted ones
LABEL_FOR_BASIS = {"measured": "measured", "predicted+calibrated": "calibrated", "published": "published"}


@dataclass(frozen=True)
class Decision:
    workflow: Workflow
    decision: str
    choice: Scored | None
    ranked: list[Scored]
    best_local: Scored | None
    best_hosted: Scored | None
    break_even_local: Scored | None
    break_even: float | None
    flips: list[FlipPoint]
    sensitivities: list[Sensitivity]
    warnings: list[tuple[str, str]]
    reasons: dict[str, str]
    excluded: list[Excluded]


def decide(
    workflow: Workflow,
    local: list[Option],
    hosted: list[Option],
    excluded: list[Excluded],
    profile: Profile,
    site: Site,
    scale: CapabilityScale,
) -> Decision:
    """Lens 1 as a hard filter, then one objective over everything allowed; every gap stated with its size."""
    approved = profile.hosted.approved_for_confidential
    allowed = [o for o in hosted if hosted_allowed(o, workflow, approved)]
    # Hybrid routes exist only where lens 1 allows the hosted leg: the best few of each kind, paired.
    routes: list[Option] = [
        hybrid(a.option, b.option)
        for a in rank(local, workflow, site)[:HYBRID_LEGS]
        for b in rank(allowed, workflow, site)[:HYBRID_LEGS]
    ]
    ranked = rank(local + allowed + routes, workflow, site)
    choice = ranked[0] if ranked else None
    local_ranked = [s for s in ranked if s.option.kind == "local"]
    hosted_ranked = [s for s in ranked if s.option.kind == "hosted"]
    best_local = choice if choice and choice.option.kind == "local" else (local_ranked[0] if local_ranked else None)
    best_hosted = choice if choice and choice.option.kind == "hosted" else (hosted_ranked[0] if hosted_ranked else None)
    warnings: list[tuple[str, str]] = []
    if choice is None:
        decision = "none"
        warnings.append(
            ("no option at all: no local model fits this hardware and no hosted option is allowed", "hardware")
        )
    else:
        gaps = gap_warnings(choice, workflow, forced_local=not allowed)
        warnings += gaps
        missed = choice.option.shortfall > 0 or (
            choice.option.e2e_s / max(choice.option.success, 1e-6) > workflow.latency_budget_s
        )
        decision = f"{choice.option.kind}-with-gap" if missed else choice.option.kind
    # Break-even per accepted answer: the best local option that meets the need against the hosted reference.
    meeting_local = [s for s in local_ranked if s.option.shortfall == 0]
    be_local = meeting_local[0] if meeting_local else None
    break_even = (
        break_even_per_day(be_local.option.local_busy_s, be_local.option.success, best_hosted.usd_per_accepted, site)
        if be_local and best_hosted
        else None
    )
    flips = flip_points([s.option for s in ranked], workflow, site)
    sensitive = sensitivity([s.option for s in ranked], workflow, site)
    # Volume is an assumption too: its nearest flip point joins the list, ordered by how far each one is.
    sensitive += [
        Sensitivity("requests per day", f.requests_per_day, workflow.requests_per_day, f.becomes)
        for f in flips
        if workflow.requests_per_day > 0
    ]
    sensitive.sort(key=lambda x: abs(math.log(max(x.value, 1e-9) / max(x.base, 1e-9))))
    if choice:
        warnings += _capacity_and_basis_warnings(choice, workflow, site)
    if workflow.data_sensitivity == "confidential" and not allowed:
        warnings.append(
            (
                "confidential data and no approved hosted provider: add providers to hosted.approved_for_confidential "
                "if you have zero-retention agreements",
                "hosted.approved_for_confidential",
            )
        )
    cost_sentence = _cost_sentence(workflow, best_local, best_hosted, be_local, break_even, flips, site)
    tiers = scale.tiers[choice.option.score.area] if choice else None
    reasons = lens_reasons(
        workflow,
        choice,
        approved=approved,
        allowed_hosted=len(allowed),
        priced_hosted=len(hosted),
        local_count=len(local),
        best_published=(tiers.best, tiers.best_model) if tiers else (0.0, "none"),
        cost_sentence=cost_sentence,
    )
    sentence = runtime_sentence(local_leg(choice.option)) if choice else None
    if sentence:
        reasons["latency_budget"] += " " + sentence
    return Decision(
        workflow,
        decision,
        choice,
        ranked,
        best_local,
        best_hosted,
        be_local,
        break_even,
        flips,
        sensitive,
        warnings,
        reasons,
        excluded,
    )


def _capacity_and_basis_warnings(choice: Scored, workflow: Workflow, site: Site) -> list[tuple[str, str]]:
    out = []
    o = choice.option
    step = capacity_step(o, workflow, site)
    batching = local_leg(o).machine_s is not None
    if step and step[0] > 1 and batching:
        out.append(
            (
                f"volume {workflow.requests_per_day:,.0f}/day needs ~{step[0]} machines with batching (requests in "
                f"flight share each machine) at {site.costs.utilization_target:.0%} utilisation ({step[1] / step[0]:,.0f}"
                "/day each)",
                "requests_per_day",
            )
        )
    elif step and step[0] > 1:
        out.append(
            (
                f"volume {workflow.requests_per_day:,.0f}/day needs ~{step[0]} machines at batch 1 and "
                f"{site.costs.utilization_target:.0%} utilisation ({step[1] / step[0]:,.0f}/day each); a batching server "
                "(vLLM, llama.cpp server with parallel slots) would need fewer",
                "requests_per_day",
            )
        )
    if o.kind == "local" and o.basis != "measured":
        out.append(
            (
                f"{o.model}: speed is {o.basis}, not measured on this machine; calibrate with it to confirm",
                "calibration",
            )
        )
    if isinstance(o, HybridOption):
        out.append(
            (
                f"hybrid route: every request runs on {o.legs[0].label()} first and escalates to {o.legs[1].label()} "
                f"when its answer fails the workflow's check ({1 - o.legs[0].success:.0%} expected); this needs an "
                "automatic check of the local answer",
                "hosted",
            )
        )
    if o.kind == "hosted" and o.basis == "assumed":
        out.append(
            (
                f"{o.model}: its TTFT or tok/s is not published, so its speed is partly assumed; time it on your own prompts",
                "hosted",
            )
        )
    return out


def _per_1k(scored: Scored | None) -> float | None:
    return None if scored is None else round(1000 * scored.cost_per_request, 4)


def _cost_sentence(
    workflow: Workflow,
    best_local: Scored | None,
    best_hosted: Scored | None,
    be_local: Scored | None,
    break_even: float | None,
    flips: list[FlipPoint],
    site: Site,
) -> str:
    local_1k, hosted_1k = _per_1k(best_local), _per_1k(best_hosted)
    text = f"At {workflow.requests_per_day:,.0f} requests/day: local ≈ " + (
        f"${local_1k}/1k requests ({best_local.option.model})"
        if best_local and local_1k is not None
        else "— (no local option)"
    )
    text += (
        f", hosted ≈ ${hosted_1k}/1k ({best_hosted.option.model})"
        if best_hosted and hosted_1k is not None
        else ", no hosted option allowed"
    )
    if be_local and best_hosted:
        if break_even is None:
            text += (
                f"; {be_local.option.model} never beats {best_hosted.option.model} per accepted answer at any volume"
            )
        else:
            text += (
                f"; per accepted answer, {be_local.option.model} is cheaper than {best_hosted.option.model} above "
                f"~{break_even:,.0f} requests/day"
            )
    elif best_hosted and not be_local:
        text += "; no local option meets the capability need, so no break-even is quoted"
    if site.costs.hardware_sunk:
        text += " (the first machine is treated as sunk)"
    above = next((f for f in flips if f.direction == "above"), None)
    below = next((f for f in flips if f.direction == "below"), None)
    if above:
        text += f"; the choice would become {above.becomes.label()} above ~{above.requests_per_day:,.0f}/day"
    if below:
        text += f"; {below.becomes.label()} below ~{below.requests_per_day:,.0f}/day"
    return text + "."


# --- JSON --------------------------------------------------------------------------------------------------


def option_json(scored: Scored, *, workflow: Workflow) -> dict[str, Any]:
    """The DESIGN shape of a choice or alternative: the option, its predicted figures and its costs, labelled."""
    o = scored.option
    if isinstance(o, HybridOption):
        local, hosted = o.legs
        choice: dict[str, Any] = {
            "kind": "hybrid",
            "model": o.model,
            "quantization": o.quantization,
            "runtime": o.runtime,
            "provider": o.provider,
            "memory_required_gb": o.memory_required_gb,
            "basis": o.basis,
            "local": {"model": local.model, "quantization": local.quantization, "runtime": local.runtime},
            "hosted": {"model": hosted.model, "provider": hosted.provider},
            "escalation_rate": round(1 - local.success, 3),
        }
    elif o.kind == "local":
        choice = {
            "kind": "local",
            "model": o.model,
            "quantization": o.quantization,
            "runtime": o.runtime,
            "memory_required_gb": o.memory_required_gb,
            "basis": o.basis,
        }
    else:
        choice = {"kind": "hosted", "model": o.model, "provider": o.provider, "basis": o.basis}
        if o.price_basis:
            choice["price_basis"] = o.price_basis  # the published rates and tiers the token price used
    if o.time_model == "diffusion":
        choice["time_model"] = "diffusion"
        choice["note"] = o.note
    runs_here = local_leg(o) if o.kind in ("local", "hybrid") else None
    if runs_here is not None and runs_here.launch is not None:
        choice["launch"] = runs_here.launch.as_json()
    if runs_here is not None and runs_here.serving is not None:
        choice["serving"] = dict(runs_here.serving)
    if runs_here is not None and runs_here.rig is not None:
        choice["rig"] = runs_here.rig.as_json()
    if runs_here is not None and runs_here.engine_note:
        choice["engine_note"] = runs_here.engine_note
    if runs_here is not None and runs_here.specialist:
        choice["specialist"] = runs_here.specialist  # a task specialist: a candidate only for its own task(s)
    if runs_here is not None and runs_here.runtime_comparison:
        choice["runtime_comparison"] = [
            {
                "runtime": r.runtime,
                "decode_tps": round(r.decode_tps, 2),
                "ttft_s": round(r.ttft_s, 3),
                "seconds_per_accepted": round(r.seconds_per_accepted, 3),
                "label": r.label,
                "decode_tps_interval": [round(r.decode_low, 2), round(r.decode_high, 2)]
                if r.decode_low is not None and r.decode_high is not None
                else None,
                "ratio_to_llama_cpp": None if r.ratio_to_llama_cpp is None else round(r.ratio_to_llama_cpp, 3),
                "ratio_range": [round(x, 3) for x in r.ratio_range] if r.ratio_range else None,
                "pairs": r.pairs,
                "ratio_basis": r.ratio_basis,
                "sources": list(r.sources),
            }
            for r in runs_here.runtime_comparison
        ]
    choice["label"] = LABEL_FOR_BASIS.get(o.basis, "predicted" if o.kind == "local" else "assumed")
    predicted = {
        "ttft_s": round(o.ttft_s, 3),
        "decode_tps": round(o.decode_tps, 2),
        "decode_tps_interval": [round(o.decode_low, 2), round(o.decode_high, 2)]
        if o.decode_low is not None and o.decode_high is not None
        else None,
        "e2e_s": round(o.e2e_s, 3),
        "reasoning_tokens": round(o.reasoning_tokens),
        "answer_tokens": round(o.answer_tokens),
        "seconds_per_accepted": round(o.e2e_s / max(o.success, 1e-6), 3),
        "tokens_per_accepted": round(scored.tokens_per_accepted, 1),
        "success_probability": round(o.success, 3),
        "success_interval": [o.success_low, o.success_high],
        "label": "measured" if o.basis == "measured" else "predicted",
        "labels": {
            "ttft_s": {"label": o.ttft.label, "basis": o.ttft.basis},
            "decode_tps": {"label": o.decode_label, **({"rig": o.rig.basis} if o.rig else {})}
            if o.time_model != "diffusion"
            else {
                "label": "assumed",
                "basis": "effective: tokens / generation time of a diffusion model",
                "kind": "effective",
            },
            "reasoning_tokens": {"label": o.reasoning.label, "basis": o.reasoning.basis},
            "success_probability": {
                "label": "measured" if "measured" in o.success_basis else o.score.label,
                "basis": o.success_basis,
            },
        },
    }
    usd_per_accepted = scored.cost_per_request / max(o.success, 1e-6)
    return {
        "choice": choice,
        "predicted": predicted,
        "cost": {"usd_per_request": scored.cost_per_request, "usd_per_accepted": usd_per_accepted},
        "capability": {
            "area": o.score.area,
            "score": round(o.score.value, 1),
            "interval": [round(o.score.low, 1), round(o.score.high, 1)],
            "label": o.score.label,
            "basis": o.score.basis,
            "need": round(o.threshold, 1),
            "shortfall": round(o.shortfall, 1),
        },
        "objective": {
            "value_usd": round(scored.objective, 6),
            "over_budget_s": round(scored.over_budget_s, 3),
            # seconds per accepted answer with the capability-uncertainty premium: what the budget is held against
            "penalised_seconds_per_accepted": round(scored.penalised_seconds, 6),
        },
        "notes": list(o.notes),
    }


def _alternative(scored: Scored, workflow: Workflow, why_not: str | None) -> dict[str, Any]:
    entry = option_json(scored, workflow=workflow)
    return {
        **entry["choice"],
        "predicted": entry["predicted"],
        "cost": entry["cost"],
        "capability": entry["capability"],
        "objective": entry["objective"],
        "why_not": why_not,
    }


def _reference(scored: Scored | None) -> dict[str, Any] | None:
    """Which option a cost figure is about, so a reader can tie the number to a model."""
    if scored is None:
        return None
    o = scored.option
    return {
        "model": o.model,
        "quantization": o.quantization,
        "runtime": o.runtime,
        "provider": o.provider,
        "e2e_s": round(o.e2e_s, 3),
        "success_probability": round(o.success, 3),
        "basis": o.basis,
    }


def decision_json(d: Decision, site: Site, *, leaves: list[str] | None = None) -> dict[str, Any]:
    """One workflow entry of the recommendation JSON contract (keys kept; new ones added).

    `leaves_to_team` is present only for local, local-with-gap and hybrid decisions.
    """
    workflow = d.workflow
    chosen = option_json(d.choice, workflow=workflow) if d.choice else None
    alternatives: list[dict[str, Any]] = []
    seen = {d.choice.option.model} if d.choice else set()
    why_not: list[str] = []
    for scored in d.ranked[1:]:
        if scored.option.model in seen:
            continue
        seen.add(scored.option.model)
        line = None
        if d.choice and (
            scored.usd_per_accepted < d.choice.usd_per_accepted
            or scored.seconds_per_accepted < d.choice.seconds_per_accepted
        ):
            line = why_lost(scored, d.choice, workflow)
            why_not.append(line)
        if len(alternatives) < ALTERNATIVES:
            alternatives.append(_alternative(scored, workflow, line))
    # The question is local vs hosted: the best of each kind is always listed, even below the top five.
    for best in (d.best_local, d.best_hosted):
        if best is None or best is d.choice or any(a["model"] == best.option.model for a in alternatives):
            continue
        line = next((w for w in why_not if w.startswith(best.option.label())), None)
        alternatives.append(_alternative(best, workflow, line))
    step = capacity_step(d.choice.option, workflow, site) if d.choice else None
    entry: dict[str, Any] = {
        "name": workflow.name,
        "decision": d.decision,
        "choice": chosen["choice"] if chosen else None,
        "predicted": chosen["predicted"] if chosen else None,
        "capability": chosen["capability"] if chosen else None,
        "objective": {
            "name": "expected dollars per accepted answer + value of the time to it",
            "description": objective_phrase(workflow),
            "time_value_usd_per_hour": round(time_value_usd_per_s(workflow) * 3600, 4),
            "value_usd": chosen["objective"]["value_usd"] if chosen else None,
            "penalised_seconds_per_accepted": chosen["objective"]["penalised_seconds_per_accepted"] if chosen else None,
            "label": "assumed",
        },
        "cost": {
            "local_usd_per_1k_requests": _per_1k(d.best_local),
            "hosted_usd_per_1k_requests": _per_1k(d.best_hosted),
            "break_even_requests_per_day": None if d.break_even is None else round(d.break_even),
            "break_even_basis": "per accepted answer, the best local option meeting the need vs the hosted reference",
            "usd_per_accepted": chosen["cost"]["usd_per_accepted"] if chosen else None,
            "usd_per_request": chosen["cost"]["usd_per_request"] if chosen else None,
            "local_reference": _reference(d.best_local),
            "hosted_reference": _reference(d.best_hosted),
            "break_even_local_reference": _reference(d.break_even_local),
            "labels": {
                "local_usd_per_1k_requests": {
                    "label": "measured" if d.best_local and d.best_local.option.basis == "measured" else "predicted",
                    "basis": "energy for the predicted busy time + amortised hardware and ops (hardware.cost_basis)",
                },
                "hosted_usd_per_1k_requests": {
                    "label": "published",
                    "basis": "token prices in knowledge/hosted.csv (price_date per row); reasoning tokens billed as output",
                    **(
                        {"price": d.best_hosted.option.price_basis}
                        if d.best_hosted and d.best_hosted.option.price_basis
                        else {}
                    ),
                },
                "break_even_requests_per_day": {"label": "predicted", "basis": "per accepted answer"},
            },
            "machines": step[0] if step else None,
            "capacity_step_requests_per_day": round(step[1]) if step else None,
        },
        "flip_points": [
            {"requests_per_day": round(f.requests_per_day, 2), "direction": f.direction, "becomes": f.becomes.label()}
            for f in d.flips
        ],
        "sensitivity": [
            {
                "assumption": x.assumption,
                "flips_at": round(x.value, 4),
                "now": round(x.base, 4),
                "becomes": x.becomes.label(),
            }
            for x in d.sensitivities
        ],
        "reasons": d.reasons,
        "alternatives": alternatives,
        "why_not_cheaper_or_faster": why_not,
        "warnings": [text for text, _ in d.warnings],
        "warnings_detail": [{"text": text, "field": _field(workflow, f)} for text, f in d.warnings],
        "candidates": _candidates(d.ranked),
        "excluded": _excluded(d.excluded),
    }
    if leaves is not None:
        entry["leaves_to_team"] = leaves
    return entry


def _excluded(excluded: list[Excluded]) -> list[dict[str, str]]:
    """Every candidate left out, once per model and reason."""
    seen: set[tuple[str, str]] = set()
    out = []
    for e in excluded:
        key = (e.model.split()[0], e.reason)
        if key not in seen:
            seen.add(key)
            out.append({"model": e.model, "reason": e.reason})
    return out


def _candidates(ranked: list[Scored]) -> list[dict[str, Any]]:
    """Every model considered, best first (its best quantization and runtime): nothing is dropped silently."""
    out, seen = [], set()
    for rank_no, scored in enumerate(ranked, start=1):
        o = scored.option
        if o.model in seen:
            continue
        seen.add(o.model)
        out.append(
            {
                "rank": rank_no,
                "option": o.label(),
                "kind": o.kind,
                "score": round(o.score.value, 1),
                "score_label": o.score.label,
                "shortfall": round(o.shortfall, 1),
                "seconds_per_accepted": round(o.e2e_s / max(o.success, 1e-6), 3),
                "usd_per_accepted": scored.cost_per_request / max(o.success, 1e-6),
                "objective_usd": round(scored.objective, 6),
                **({"time_model": o.time_model, "note": o.note} if o.time_model == "diffusion" else {}),
                **({"specialist": o.specialist} if o.specialist else {}),
            }
        )
    return out


def _field(workflow: Workflow, name: str) -> str:
    if name in ("hardware", "calibration", "hosted", "hosted.approved_for_confidential"):
        return name
    return f"workflows[{workflow.name}].{name}"


# --- the entry point ------------------------------------------------------------------------------------------


def recommend(
    profile: Profile,
    knowledge: Knowledge,
    predictor: SpeedPredictor,
    detected: dict[str, Any],
    calibration: dict[str, Any] | None = None,
    *,
    knowledge_dir: Path | None = None,
    catalog: DecisionCatalog | None = None,
) -> dict[str, Any]:
    """The recommendation JSON for every workflow in the profile."""
    catalog = catalog or cached_catalog(str(knowledge_dir or get_settings().knowledge_dir))
    hw, hw_info = resolve_hardware(profile.hardware, detected, knowledge, calibration)
    price, price_basis = device_price_usd(hw, profile.costs, catalog)
    power, power_basis = site_power_w(hw)
    power_basis = power_label(power_basis, hw_info["how"].get("power_w"))
    costs = profile.costs.model_copy(update={"hardware_usd": price})
    site = Site(costs, price, power)
    scale = CapabilityScale(knowledge)
    applies = hw_info["calibration_applies"]
    measured_rows = calibration_rows(calibration, hw, knowledge) if applies else []
    runtimes = dict(RUNTIMES)
    if applies and calibration and calibration.get("backend", {}).get("kind") == "ollama":
        runtimes.update(OLLAMA_RUNTIME)
    usable = hw_info["usable_memory_gb"]
    quants: dict[str, tuple[str, ...]] = {}
    if (hw.accelerator or "cpu") == "apple":
        runtimes.update(MLX_RUNTIME)  # mlx-lm: a candidate, predicted through the predictor's mlx backend rows
        quants["mlx"] = MLX_QUANTS
    serving = serving_quants(hw.accelerator)
    # The same models on the runtimes not already candidates, for the side-by-side figures only (SEEDS §2): on
    # Apple always, elsewhere where the catalog has published Ollama rows for this kind of accelerator.
    accel = hw.accelerator or "cpu"
    compare_runtimes = {
        name: backend
        for name, backend in {**RUNTIMES, **OLLAMA_RUNTIME}.items()
        if name not in runtimes
        and (
            accel == "apple"
            or any(r.get("backend") == "ollama" and r.get("hardware_type") == accel for r in knowledge.speeds)
        )
    }
    comparisons: dict[int, dict[tuple[str, str, str], dict[str, Any]]] = {}
    tables: dict[int, dict[tuple[str, str, str], dict[str, Any]]] = {}
    # Sourced runtime pairs (knowledge/runtime_pairs.csv) for the side-by-side runtime figures.
    ratios = cached_runtime_ratios(str(knowledge_dir or get_settings().knowledge_dir))
    workflows = []
    for workflow in profile.workflows:
        if hw.memory_bandwidth_gbs and workflow.input_tokens not in tables:
            tables[workflow.input_tokens] = local_speed_table(
                knowledge,
                predictor,
                hw,
                measured_rows,
                runtimes=runtimes,
                usable_gb=usable,
                prompt_tokens=workflow.input_tokens,
                quants=quants,
            )
            if serving:
                tables[workflow.input_tokens].update(
                    local_speed_table(
                        knowledge,
                        predictor,
                        hw,
                        measured_rows,
                        runtimes={SERVING_ENGINE: SERVING_ENGINE},
                        usable_gb=usable,
                        prompt_tokens=workflow.input_tokens,
                        quants={SERVING_ENGINE: serving},
                    )
                )
            if compare_runtimes:
                comparisons[workflow.input_tokens] = local_speed_table(
                    knowledge,
                    predictor,
                    hw,
                    measured_rows,
                    runtimes=compare_runtimes,
                    usable_gb=usable,
                    prompt_tokens=workflow.input_tokens,
                )
        ctx = Context(workflow, knowledge, scale, catalog, site, usable, profile.costs.network_rtt_ms, hardware=hw)
        table = tables.get(workflow.input_tokens, {})
        local, excluded = local_options(
            ctx,
            {k: v for k, v in table.items() if k[2] != SERVING_ENGINE},
            calibration if applies else None,
            comparison=comparisons.get(workflow.input_tokens),
            runtime_ratios=ratios,
        )
        served, served_excluded = serving_options(
            ctx, {k: v for k, v in table.items() if k[2] == SERVING_ENGINE}, calibration if applies else None
        )
        local += served
        excluded += served_excluded
        hosted, hosted_excluded = hosted_options(ctx, calibration=calibration)  # an endpoint, not this machine
        decision = decide(workflow, local, hosted, excluded + hosted_excluded, profile, site, scale)
        leaves = None
        if decision.choice is not None:
            runs_here = local_leg(decision.choice.option)
            spec = knowledge.model(runs_here.model)
            leaves = leaves_to_team(
                decision.choice.option,
                decision.decision,
                workflow,
                site,
                scale.tiers[runs_here.score.area],
                frontier_need=threshold_for(scale, workflow, capability="frontier"),
                license_name=spec.license if spec else None,
            )
        workflows.append(decision_json(decision, site, leaves=leaves))
    hw_info["costs"] = costs.model_dump()
    hw_info["cost_basis"] = {
        "hardware_usd": price_basis,
        "power_w": power_basis,
        "utilization_target": f"{costs.utilization_target:g} of the day busy at most when sizing capacity",
        "ops_usd_per_month": costs.ops_usd_per_month,
        "redundancy": costs.redundancy,
        "network_rtt_ms": costs.network_rtt_ms,
    }
    hw_info["capability_tiers"] = {
        area: {
            "best": round(t.best, 1),
            "best_model": t.best_model,
            **{k: round(v, 1) for k, v in t.thresholds.items()},
        }
        for area, t in scale.tiers.items()
    }
    hw_info["calibration"] = calibration.get("run_id") if calibration else None
    result = {"hardware": hw_info, "workflows": workflows}
    Recommendation.model_validate(result)  # the contract, checked at the edge (extra keys kept by callers)
    return result
