"""Batching servers as options: vLLM on NVIDIA/AMD from published concurrency sweeps, or the user's own sweep.

A batching server runs many requests at once. Modelled (predicted): this model's batch-1 decode here from the
speed predictor (backend vllm), times the batching gain g(C) = T(C) / T(1) of the published sweep on the hardware
with the nearest memory bandwidth (knowledge/serving_benchmarks.csv), at the concurrency C the volume implies
(requests in flight = arrival rate x seconds per request / utilisation target), capped at the sweep's peak, at
the KV cache that fits, and at the latency budget. Each request then streams at T(C) / C tok/s and occupies
the machine for its time to answer / C (Little's law, prompt processing included): machines = volume x that / (a day x
utilisation target). A concurrency sweep the user ran against their server (calibration key `concurrency`)
replaces the published curve for that model and is labelled measured.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from advisor.decide.catalog import ServingCurve, nearest_curve
from advisor.decide.costs import DAY_S
from advisor.decide.launch import kv_slots, launch_context, vllm_launch
from advisor.decide.options import Context, Excluded, Option, _local_option, _unfit, match_catalog_model
from advisor.decide.site import COMPUTE_HEADROOM, RigFactor
from advisor.knowledge import ModelSpec
from advisor.predict import memory_fit

SERVING_ENGINE = "vllm"
# What vLLM serves on each accelerator here: BF16 weights, FP8 (native on Hopper/Ada/MI300; weight-only Marlin
# kernels on Ampere), AWQ 4-bit checkpoints on NVIDIA.
SERVING_QUANTS = {"nvidia": ("BF16", "FP8", "AWQ-4bit"), "amd": ("BF16", "FP8")}
GPU_MEMORY_UTILIZATION = 0.90  # vLLM's default share of device memory for weights + KV cache
MAX_NUM_SEQS = 256  # vLLM's default cap on sequences in flight


def serving_quants(accelerator: str | None) -> tuple[str, ...]:
    return SERVING_QUANTS.get(accelerator or "", ())


def _concurrency(
    ctx: Context, cap: int, e2e_at: Any, *, budget_s: float
) -> tuple[int, int]:  # (concurrency used, the deployment's concurrency per machine)
    """Concurrency per machine: what the volume keeps in flight, capped; lowered while a request misses the budget."""
    workflow, costs = ctx.workflow, ctx.site.costs
    rate = workflow.requests_per_day / DAY_S
    per_machine = cap
    while per_machine > 1 and e2e_at(per_machine) > budget_s:
        per_machine = max(1, per_machine // 2)
    wanted = max(1, math.ceil(rate * e2e_at(per_machine) / costs.utilization_target - 1e-9))
    return min(wanted, per_machine), per_machine


def _batched(
    ctx: Context,
    base: Option,
    *,
    decode1: float,
    gain: Any,
    cap: int,
) -> tuple[int, int, float, float, float]:
    """(C used, C per machine, aggregate tok/s at C, per-stream tok/s at C, machine-seconds per request)."""
    tokens = base.tokens

    def capped(c: float) -> float:
        # A request never streams faster than alone: a sweep whose batch-1 figure carries its prompt overhead
        # shows a gain above c at low concurrency, which is not a per-request speed-up.
        return min(gain(c), c)

    def e2e_at(c: int) -> float:
        return base.ttft_s + tokens / max(decode1 * capped(c) / c, 1e-9)

    used, per_machine = _concurrency(ctx, cap, e2e_at, budget_s=max(ctx.workflow.latency_budget_s, 1e-9))
    # Little's law: a machine holding c requests that each take e2e(c) serves c / e2e(c) requests a second, so each
    # request occupies e2e(c) / c machine-seconds (its prompt processing included in e2e).
    aggregate = decode1 * capped(used)
    return used, per_machine, aggregate, aggregate / used, e2e_at(used) / used


def _fits(ctx: Context, spec: ModelSpec, quant: str) -> tuple[float, int] | str:
    """(memory required for one request, request contexts the KV cache holds) or why it does not fit."""
    row = ctx.knowledge.quant(quant)
    bpw = row["bits_per_weight"] if row else 16.0
    context = launch_context(ctx.workflow)
    fit = memory_fit(spec, quant, bpw, context, ctx.usable_gb)
    if ctx.usable_gb is None:
        return fit.required_gb, MAX_NUM_SEQS
    room = ctx.usable_gb * GPU_MEMORY_UTILIZATION
    if fit.required_gb * (1 + COMPUTE_HEADROOM) > room:
        return (
            f"vllm {quant}: needs {fit.required_gb:.1f} GB + {COMPUTE_HEADROOM:.0%} at {context:,} tokens; "
            f"{room:.1f} GB is vLLM's {GPU_MEMORY_UTILIZATION:.0%} of {ctx.usable_gb:.1f} GB usable"
        )
    slots = kv_slots(spec, context, fit.required_gb, room)
    return fit.required_gb, min(MAX_NUM_SEQS, slots if slots is not None else MAX_NUM_SEQS)


def serving_options(
    ctx: Context, speeds: dict[tuple[str, str, str], dict[str, Any]], calibration: dict[str, Any] | None
) -> tuple[list[Option], list[Excluded]]:
    """vLLM options on NVIDIA/AMD from the published sweeps (predicted), and the user's measured sweep."""
    hw = ctx.hardware
    options: list[Option] = []
    excluded: list[Excluded] = []
    if hw is None or hw.accelerator not in SERVING_QUANTS or not hw.memory_bandwidth_gbs:
        return options, excluded
    curve = nearest_curve(ctx.catalog.serving, SERVING_ENGINE, hw.memory_bandwidth_gbs)
    context = ctx.workflow.input_tokens + ctx.workflow.output_tokens
    for (model_id, quant, runtime), pred in speeds.items():
        spec = ctx.knowledge.model(model_id)
        if runtime != SERVING_ENGINE or spec is None or spec.diffusion or _unfit(ctx, spec, context):
            continue
        if curve is None or "pred_tg_tok_s" not in pred or "pred_pp_tok_s" not in pred:
            continue
        fits = _fits(ctx, spec, quant)
        if isinstance(fits, str):
            excluded.append(Excluded(f"{model_id} {quant}", fits))
            continue
        required, slots = fits
        options.append(_predicted_server(ctx, spec, quant, pred, curve, required, slots))
    measured = _measured_server(ctx, calibration)
    if measured:
        options.append(measured)
    return options, excluded


def _predicted_server(
    ctx: Context,
    spec: ModelSpec,
    quant: str,
    pred: dict[str, Any],
    curve: ServingCurve,
    required_gb: float,
    slots: int,
) -> Option:
    base = _local_option(ctx, spec, quant, SERVING_ENGINE, required_gb, pred, None)
    decode1 = pred["pred_tg_tok_s"]
    cap = max(1, min(curve.peak_concurrency, slots))
    used, per_machine, aggregate, stream, machine_s = _batched(ctx, base, decode1=decode1, gain=curve.gain, cap=cap)
    ratio = stream / max(decode1, 1e-9)
    count = (ctx.hardware.count if ctx.hardware else None) or 1
    note = (
        f"vLLM batching (predicted): {aggregate:,.0f} tok/s across {used} request(s) in flight = this model's "
        f"predicted batch-1 decode {decode1:.0f} tok/s x the batching gain {aggregate / decode1:.2f} at concurrency {used} "
        f"of the published {curve.engine} sweep on {curve.hardware} ({curve.model} {curve.quantization}; "
        f"{curve.source_url}, {curve.source_date}); {stream:.0f} tok/s per request; up to {per_machine} per machine "
        f"(the sweep's peak {curve.peak_concurrency}, the KV cache's {slots}, the latency budget); each request "
        f"occupies the machine {machine_s:.3f} s (time to answer / requests in flight, Little's law)"
        + (f"; tensor parallel over {count} devices assumed no faster than one device's bandwidth" if count > 1 else "")
    )
    serving = (
        ("engine", SERVING_ENGINE),
        ("concurrency", used),
        ("max_concurrency_per_machine", per_machine),
        ("aggregate_output_tok_s", round(aggregate, 1)),
        ("per_request_decode_tps", round(stream, 2)),
        ("batch1_decode_tps", round(decode1, 2)),
        ("machine_s_per_request", round(machine_s, 4)),
        ("label", "predicted"),
        ("source", f"{curve.source_url} ({curve.source_date}): {curve.engine} {curve.model} on {curve.hardware}"),
    )
    option = replace(
        base,
        serving=serving,
        decode_tps=stream,
        decode_low=(pred.get("pred_tg_low") or decode1) * ratio,
        decode_high=(pred.get("pred_tg_high") or decode1) * ratio,
        machine_s=machine_s,
        engine_note=note,
        notes=(*base.notes, note),
    )
    assert ctx.hardware is not None
    if count > 1:
        rig = RigFactor(
            count,
            ctx.hardware.interconnect or "pcie",
            "tensor",
            1.0,
            "assumed",
            f"tensor parallel over {count} devices assumed no faster than one device's bandwidth (no sourced "
            "multi-GPU vLLM figure in knowledge/; likely an underestimate)",
        )
        option = replace(option, rig=rig, decode_label="assumed")
    return replace(option, launch=vllm_launch(spec, quant, ctx.workflow, ctx.hardware, max_num_seqs=per_machine))


def _measured_server(ctx: Context, calibration: dict[str, Any] | None) -> Option | None:
    """The user's own concurrency sweep against their server, for the model it served (labelled measured)."""
    rows = [r for r in (calibration or {}).get("concurrency") or [] if r.get("throughput_tok_s")]
    models = (calibration or {}).get("models") or []
    if not rows or not models or ctx.hardware is None:
        return None
    model = models[0]
    spec = match_catalog_model(model["model"], ctx.knowledge)
    if spec is None or _unfit(ctx, spec, ctx.workflow.input_tokens + ctx.workflow.output_tokens):
        return None
    points = sorted((int(r["concurrency"]), float(r["throughput_tok_s"])) for r in rows)
    by_level = {int(r["concurrency"]): r for r in rows}
    base_t = points[0][1] / points[0][0] if points[0][0] else points[0][1]
    quant = model.get("quantization") or "Q4_K_M"
    speed = model.get("speed", {})
    prefill = next(
        (v["prefill_tps"]["median"] for k, v in speed.items() if k.startswith("prefill") and v.get("prefill_tps")),
        None,
    )
    decode1 = 1000.0 / by_level[points[0][0]]["tpot_p50_ms"] if by_level[points[0][0]].get("tpot_p50_ms") else base_t
    pred = {"pred_tg_tok_s": decode1, "pred_pp_tok_s": prefill or 1000.0, "basis": "measured"}
    base = _local_option(
        ctx,
        spec,
        quant,
        f"{calibration['backend']['kind'] if calibration else 'server'} server",
        round((model.get("size_bytes") or 0) / 1e9 + 0.5, 2),
        pred,
        None,
    )
    levels = [c for c, _ in points]
    peak = max(points, key=lambda p: p[1])[0]

    def aggregate(c: float) -> float:
        """Measured throughput at the nearest measured level at or below c (never extrapolated)."""
        below = [p for p in points if p[0] <= c] or points[:1]
        return below[-1][1]

    def gain(c: float) -> float:
        return aggregate(c) / max(decode1, 1e-9)

    cap = max(c for c in levels if c <= peak)
    used, per_machine, agg, stream, machine_s = _batched(ctx, base, decode1=decode1, gain=gain, cap=cap)
    row = by_level[max(c for c in levels if c <= used)]
    note = (
        f"measured concurrency sweep (run {calibration.get('run_id') if calibration else '?'}): {agg:,.0f} tok/s at "
        f"concurrency {row['concurrency']} (goodput {row.get('goodput_rps')} req/s under its SLO), "
        f"{stream:.0f} tok/s per request; each request occupies the server {machine_s:.3f} s"
    )
    serving = (
        ("engine", base.runtime or "server"),
        ("concurrency", used),
        ("max_concurrency_per_machine", per_machine),
        ("aggregate_output_tok_s", round(agg, 1)),
        ("per_request_decode_tps", round(stream, 2)),
        ("batch1_decode_tps", round(decode1, 2)),
        ("machine_s_per_request", round(machine_s, 4)),
        ("label", "measured"),
        ("source", f"calibration run {calibration.get('run_id') if calibration else '?'} (concurrency sweep)"),
    )
    return replace(
        base,
        serving=serving,
        decode_tps=stream,
        decode_label="measured",
        machine_s=machine_s,
        engine_note=note,
        notes=(*base.notes, note, f"server: up to {per_machine} in flight per machine"),
    )
