"""Candidates: local model x quantization x runtime that fit this machine, and every priced hosted offer.

Each option carries its per-attempt time, tokens, success and cost inputs, every figure with its label.
Nothing here ranks; rank.py does.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any

from advisor.decide.capability import TASK_AREA, CapabilityScale, Score, success_probability
from advisor.decide.catalog import PREDICTED_RUNTIMES, DecisionCatalog
from advisor.decide.costs import Site, hosted_price
from advisor.decide.latency import (
    ASSUMED_HOSTED_TPS,
    Figure,
    hosted_ttft,
    local_ttft,
    measured_hosted,
    reasoning_tokens,
)
from advisor.decide.launch import Launch, llama_cpp_launch, mlx_launch, ollama_launch
from advisor.decide.runtime_pairs import RuntimeRatio
from advisor.decide.site import COMPUTE_HEADROOM, RigFactor, layer_split_factor
from advisor.knowledge import Knowledge, ModelSpec
from advisor.predict import SpeedPredictor, memory_fit
from advisor.schemas import Hardware, Workflow

QUANTS = ("Q4_K_M", "Q8_0")
MLX_QUANTS = ("MLX-4bit", "MLX-8bit")  # mlx-lm's group-wise quantization (knowledge/quantization.csv)
MLX_RUNTIME: dict[str, str | None] = {"mlx": "mlx"}
# The GGUF quantization an MLX one is compared with in runtime_comparison (the same bits per weight class).
COMPARABLE_QUANT = {"MLX-4bit": "Q4_K_M", "MLX-8bit": "Q8_0"}
DIFFUSION_QUANT = "BF16"  # text-diffusion checkpoints are served unquantized by transformers
DIFFUSION_RUNTIME = "transformers"
# Runtimes predicted for catalog candidates (name -> backend label; None = llama.cpp for the accelerator).
# Ollama joins only when the user calibrated with it: the published Ollama rows are few, and the seed
# article measured it consistently slower than llama.cpp for the same models.
RUNTIMES: dict[str, str | None] = {"llama.cpp": None}
OLLAMA_RUNTIME: dict[str, str | None] = {"ollama": "ollama"}
BACKEND_BY_ACCELERATOR = {
    "nvidia": "llama.cpp-cuda",
    "apple": "llama.cpp-metal",
    "amd": "llama.cpp-vulkan",
    "intel": "llama.cpp-sycl",
    "cpu": "llama.cpp-cpu",
}
# Inline completion of a few tokens is far easier than whole LiveCodeBench problems: autocomplete's tiers sit
# this many points lower on the coding scale (an assumption, documented in the README).
TASK_THRESHOLD_SHIFT = {"autocomplete": 25.0}


@dataclass(frozen=True)
class RuntimeFigure:
    """The same model and quantization predicted on one runtime here (side-by-side comparison, not a candidate)."""

    runtime: str
    decode_tps: float
    ttft_s: float
    seconds_per_accepted: float
    label: str
    decode_low: float | None = None
    decode_high: float | None = None
    ratio_to_llama_cpp: float | None = None  # this runtime's decode / llama.cpp's here
    ratio_range: tuple[float, float] | None = None  # published: the pairs' 80% range
    pairs: int = 0  # published: sourced pairs behind the ratio (knowledge/runtime_pairs.csv)
    ratio_basis: str | None = None  # where the figure comes from, in words
    sources: tuple[str, ...] = ()
    ttft_from_pairs: bool = False  # published: TTFT is llama.cpp's over the sourced prefill ratio


@dataclass(frozen=True)
class Option:
    """One way to run a workflow: a local model at a quantization on a runtime, or a hosted offer."""

    kind: str  # local | hosted
    model: str
    ttft: Figure
    decode_tps: float
    decode_label: str
    reasoning: Figure
    answer_tokens: float
    score: Score
    threshold: float
    success: float
    success_low: float
    success_high: float
    success_basis: str
    basis: str  # measured | predicted | predicted+calibrated | published | assumed (the DESIGN `basis`)
    quantization: str | None = None
    runtime: str | None = None
    provider: str | None = None
    memory_required_gb: float | None = None
    decode_low: float | None = None
    decode_high: float | None = None
    hosted_usd_per_request: float | None = None  # token prices (hosted only)
    price_basis: str | None = None  # hosted: the published rates and tiers the token price used
    notes: tuple[str, ...] = field(default_factory=tuple)
    runtime_comparison: tuple[RuntimeFigure, ...] = ()  # local: the same model on each runtime predicted here
    time_model: str = "autoregressive"  # autoregressive | diffusion
    generation_s: float | None = None  # diffusion: seconds after the first canvas (decode_tps is then "effective")
    note: str | None = None
    launch: Launch | None = None  # local: the engine, its settings and a copyable command line
    machine_s: float | None = None  # batching servers: machine-seconds per request (< e2e when requests share it)
    engine_note: str | None = None  # batching servers / rigs: how the figures were modelled, with their label
    serving: tuple[tuple[str, str | int | float], ...] | None = None  # batching server: concurrency, throughput, label
    rig: RigFactor | None = None  # a multi-device rig: the decode factor applied against one device, labelled
    specialist: str | None = None  # local: the task(s) a task-specialist model is trained for (model_traits.csv)

    @property
    def ttft_s(self) -> float:
        return self.ttft.value

    @property
    def reasoning_tokens(self) -> float:
        return self.reasoning.value

    @property
    def tokens(self) -> float:
        return self.reasoning.value + self.answer_tokens

    @property
    def e2e_s(self) -> float:
        """Predicted time to a complete answer: first token, then reasoning and answer tokens."""
        if self.generation_s is not None:
            return self.ttft.value + self.generation_s
        return self.ttft.value + self.tokens / max(self.decode_tps, 1e-9)

    @property
    def shortfall(self) -> float:
        """Points below the workflow's need on the task area's scale."""
        return max(0.0, self.threshold - self.score.value)

    @property
    def speed_known(self) -> bool:
        return self.basis not in ("assumed",)

    @property
    def local_busy_s(self) -> float:
        """Seconds of this machine's time per request (what local energy and capacity are priced on).

        A batching server shares the machine among the requests in flight: its machine_s, not its e2e.
        """
        if self.kind != "local":
            return 0.0
        return self.machine_s if self.machine_s is not None else self.e2e_s

    @property
    def hosted_usd(self) -> float:
        """Token dollars per request."""
        return self.hosted_usd_per_request or 0.0

    def key(self) -> str:
        return f"{self.kind}:{self.model}:{self.quantization}:{self.runtime}:{self.provider}"

    def label(self) -> str:
        if self.kind == "local":
            return f"{self.model} {self.quantization} on {self.runtime}"
        return f"{self.model} ({self.provider})"


@dataclass(frozen=True)
class HybridOption(Option):
    """Local first; when the local answer fails its check, the request escalates to a hosted option.

    Per round: time t_L + (1 - p_L) t_H, dollars c_L + (1 - p_L) c_H, success p_L + (1 - p_L) p_H; per accepted
    answer each is divided by the round's success, so every figure lies between the two legs' own.
    """

    local_leg: Option | None = None
    hosted_leg: Option | None = None

    @property
    def legs(self) -> tuple[Option, Option]:
        assert self.local_leg is not None and self.hosted_leg is not None
        return self.local_leg, self.hosted_leg

    @property
    def e2e_s(self) -> float:
        local, hosted = self.legs
        return local.e2e_s + (1 - local.success) * hosted.e2e_s

    @property
    def tokens(self) -> float:
        local, hosted = self.legs
        return local.tokens + (1 - local.success) * hosted.tokens

    @property
    def local_busy_s(self) -> float:
        return self.legs[0].local_busy_s

    @property
    def hosted_usd(self) -> float:
        local, hosted = self.legs
        return (1 - local.success) * hosted.hosted_usd

    def label(self) -> str:
        local, hosted = self.legs
        return f"hybrid: {local.label()} -> {hosted.label()}"


def hybrid(local: Option, hosted: Option) -> HybridOption:
    """The escalation route from a local option to a hosted one (the caller has checked lens 1 allows it)."""
    q = 1 - local.success
    p = local.success + q * hosted.success
    low = local.success_low + (1 - local.success_low) * hosted.success_low
    high = local.success_high + (1 - local.success_high) * hosted.success_high
    return HybridOption(
        kind="hybrid",
        model=f"{local.model} -> {hosted.model}",
        ttft=local.ttft,
        decode_tps=local.decode_tps,
        decode_label=local.decode_label,
        reasoning=local.reasoning,
        answer_tokens=local.answer_tokens,
        # Accepted answers pass the check; a failed local answer gets the hosted model's capability.
        score=hosted.score,
        threshold=hosted.threshold,
        success=round(p, 4),
        success_low=round(low, 4),
        success_high=round(high, 4),
        success_basis=(
            f"local {local.success:.0%} first, then hosted {hosted.success:.0%} on the {q:.0%} that fail the check "
            "(assumes the workflow's check catches a failed local answer)"
        ),
        basis=local.basis if local.basis != "measured" else "measured+published",
        quantization=local.quantization,
        runtime=local.runtime,
        provider=hosted.provider,
        memory_required_gb=local.memory_required_gb,
        notes=(f"local leg: {local.label()}", f"hosted leg: {hosted.label()}", *local.notes[:1], *hosted.notes[:1]),
        local_leg=local,
        hosted_leg=hosted,
    )


@dataclass(frozen=True)
class Excluded:
    """A candidate left out, and why (memory, context, FIM, data sensitivity, no prediction)."""

    model: str
    reason: str


def _bpw(knowledge: Knowledge, quant: str) -> float | None:
    row = knowledge.quant(quant)
    return row["bits_per_weight"] if row else None


def quants_for(spec: ModelSpec) -> tuple[str, ...]:
    return (*QUANTS, "MXFP4") if spec.id.startswith("gpt-oss") else QUANTS


def threshold_for(scale: CapabilityScale, workflow: Workflow, *, capability: str | None = None) -> float:
    area = TASK_AREA[workflow.task]
    return scale.threshold(area, capability or workflow.capability) - TASK_THRESHOLD_SHIFT.get(workflow.task, 0.0)


def local_speed_table(
    knowledge: Knowledge,
    predictor: SpeedPredictor,
    hw: Hardware,
    measured_rows: list[dict[str, Any]],
    *,
    runtimes: dict[str, str | None] | None = None,
    usable_gb: float | None = None,
    prompt_tokens: int = 512,
    quants: dict[str, tuple[str, ...]] | None = None,
) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Predicted decode/prefill for every catalog model x quantization x runtime on this hardware (one batch)."""
    keys, rows = [], []
    accel = hw.accelerator or "cpu"
    for spec in knowledge.models:
        if not spec.total_params_b or (spec.diffusion and "llama.cpp" not in (runtimes or RUNTIMES)):
            continue
        # A diffusion model runs in BF16 on its own runtime; its backbone's prefill rate on this machine is the
        # per-step compute rate of its time model (diffusion_option), so it is predicted like a prefill.
        pairs = (
            [(DIFFUSION_QUANT, DIFFUSION_RUNTIME, None)]
            if spec.diffusion
            else [(q, r, b) for r, b in (runtimes or RUNTIMES).items() for q in (quants or {}).get(r, quants_for(spec))]
        )
        for quant, runtime, backend in pairs:
            keys.append((spec.id, quant, runtime))
            rows.append(
                {
                    "hardware_name": hw.name or "this machine",
                    "hardware_type": accel,
                    "memory_bandwidth_gbs": hw.memory_bandwidth_gbs,
                    "memory_gb": usable_gb if usable_gb is not None else hw.memory_gb,
                    "fp16_tflops": hw.fp16_tflops,
                    "model_name": spec.name,
                    "total_params_b": spec.total_params_b,
                    "active_params_b": spec.params_for_speed,
                    "is_moe": "yes" if spec.is_moe else "no",
                    "quantization": quant,
                    "bits_per_weight": _bpw(knowledge, quant),
                    "backend": backend or BACKEND_BY_ACCELERATOR[accel],
                    "prompt_tokens": prompt_tokens,
                    "gen_tokens": 128,
                }
            )
    preds = predictor.predict(rows, measured=measured_rows)
    return dict(zip(keys, preds, strict=True))


def calibration_rows(calibration: dict[str, Any] | None, hw: Hardware, knowledge: Knowledge) -> list[dict[str, Any]]:
    """This machine's measured decode/prefill as rows the predictor can learn a residual from."""
    rows = []
    for model in (calibration or {}).get("models", []):
        if model.get("device") == "cpu" and (hw.accelerator or "cpu") != "cpu":
            continue  # measured on the CPU of a GPU machine: it says nothing about the GPU's speed
        spec = match_catalog_model(model["model"], knowledge)
        speed = model.get("speed", {})
        decode_probe = next((v for k, v in speed.items() if k.startswith("decode") and v.get("decode_tps")), None)
        decode = decode_probe["decode_tps"]["median"] if decode_probe else None
        decode_spread = decode_probe["decode_tps"].get("spread_pct") if decode_probe else None
        prefill = longest_prefill(speed)
        params = spec.total_params_b if spec else model.get("params_b")
        if not params or not decode:
            continue
        quant = model.get("quantization") or "Q4_K_M"
        rows.append(
            {
                "hardware_name": hw.name or "this machine",
                "hardware_type": hw.accelerator or "cpu",
                "memory_bandwidth_gbs": hw.memory_bandwidth_gbs,
                "fp16_tflops": hw.fp16_tflops,
                "model_name": model["model"],
                "total_params_b": params,
                "active_params_b": spec.params_for_speed if spec else params,
                "is_moe": "yes" if spec and spec.is_moe else "no",
                "quantization": quant,
                "bits_per_weight": _bpw(knowledge, quant),
                "backend": "ollama"
                if calibration and calibration["backend"]["kind"] == "ollama"
                else BACKEND_BY_ACCELERATOR[hw.accelerator or "cpu"],
                "tg_tok_s": decode,
                "pp_tok_s": prefill["prefill_tps"]["median"] if prefill else None,
                # Run-to-run spread of those medians: a noisy calibration widens the calibrated bands.
                "tg_spread_pct": decode_spread,
                "pp_spread_pct": (prefill["prefill_tps"].get("spread_pct") if prefill else None),
                "prompt_tokens": prefill.get("prompt_tokens") if prefill else None,
            }
        )
    return rows


def longest_prefill(speed: dict[str, Any]) -> dict[str, Any] | None:
    """The measured prefill probe with the longest prompt: the closest to real workflows' inputs."""
    probes = [v for k, v in speed.items() if k.startswith("prefill") and v.get("prefill_tps")]
    return max(probes, key=lambda v: v.get("prompt_tokens") or 0) if probes else None


def match_catalog_model(name: str, knowledge: Knowledge) -> ModelSpec | None:
    """The catalog model a measured model name refers to (longest id that prefixes the normalised name)."""
    norm = re.sub(r"[^a-z0-9.]+", "-", name.lower().split("/")[-1].replace(":", "-"))
    hits = [m for m in knowledge.models if norm.startswith(m.id) or norm.replace("-instruct", "").startswith(m.id)]
    return max(hits, key=lambda m: len(m.id)) if hits else None


@dataclass(frozen=True)
class Context:
    """Everything an option is built against, resolved once per workflow."""

    workflow: Workflow
    knowledge: Knowledge
    scale: CapabilityScale
    catalog: DecisionCatalog
    site: Site
    usable_gb: float | None
    network_rtt_ms: float
    hardware: Hardware | None = None

    @property
    def threshold(self) -> float:
        return threshold_for(self.scale, self.workflow)

    @property
    def success_reference(self) -> float:
        """The score at which an answer is accepted SUCCESS_AT_THRESHOLD of the time: the workflow's own need.

        Harder work accepts fewer answers from the same model, so the need sets the reference.
        """
        return self.threshold

    @property
    def area(self) -> str:
        return TASK_AREA[self.workflow.task]


def local_options(
    ctx: Context,
    speeds: dict[tuple[str, str, str], dict[str, Any]],
    calibration: dict[str, Any] | None,
    *,
    comparison: dict[tuple[str, str, str], dict[str, Any]] | None = None,
    runtime_ratios: dict[tuple[str, str], RuntimeRatio] | None = None,
) -> tuple[list[Option], list[Excluded]]:
    """Local candidates that fit memory and context and meet task-specific needs, with their predictions."""
    workflow = ctx.workflow
    options: list[Option] = []
    excluded: list[Excluded] = []
    context = workflow.input_tokens + workflow.output_tokens
    by_model: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}
    for (model_id, quant, runtime), pred in {**(comparison or {}), **speeds}.items():
        by_model.setdefault((model_id, COMPARABLE_QUANT.get(quant, quant)), []).append((runtime, pred))
    for (model_id, quant, runtime), pred in speeds.items():
        spec = ctx.knowledge.model(model_id)
        assert spec is not None
        why = _unfit(ctx, spec, context)
        if why:
            excluded.append(Excluded(model_id, why))
            continue
        bpw = _bpw(ctx.knowledge, quant) or 4.89
        fit = memory_fit(spec, quant, bpw, context, ctx.usable_gb)
        if fit.fits is not None and ctx.usable_gb is not None:
            needed = fit.required_gb * (1 + COMPUTE_HEADROOM)
            if needed > ctx.usable_gb:
                excluded.append(
                    Excluded(
                        f"{model_id} {quant}",
                        f"needs {fit.required_gb:.1f} GB + {COMPUTE_HEADROOM:.0%} headroom for compute buffers "
                        f"({needed:.1f} GB) at {context} tokens of context; {ctx.usable_gb:.1f} GB usable",
                    )
                )
                continue
        if "pred_tg_tok_s" not in pred or "pred_pp_tok_s" not in pred:
            excluded.append(Excluded(model_id, pred.get("reason", "no prediction")))
            continue
        if spec.diffusion:
            options.append(diffusion_option(ctx, spec, quant, runtime, fit.required_gb, pred))
            continue
        rig = layer_split_factor(ctx.hardware) if ctx.hardware and runtime in ("llama.cpp", "ollama") else None
        if rig:
            pred = {
                **pred,
                **{
                    k: pred[k] * rig.decode_factor
                    for k in ("pred_tg_tok_s", "pred_tg_low", "pred_tg_high")
                    if pred.get(k)
                },
            }
        option = _local_option(ctx, spec, quant, runtime, fit.required_gb, pred, None)
        if rig:
            option = replace(
                option,
                rig=rig,
                decode_label="assumed" if rig.label == "assumed" else option.decode_label,
                notes=(*option.notes, f"rig: {rig.basis}"),
            )
        figures = runtime_figures(
            ctx,
            option,
            by_model.get((model_id, COMPARABLE_QUANT.get(quant, quant)), []),
            ratios=runtime_ratios,
            calibrated_runtime=calibrated_runtime(calibration),
        )
        option = with_published_runtime(replace(option, runtime_comparison=figures), rig)
        options.append(replace(option, launch=launch_for(ctx, spec, option)))
    for model in (calibration or {}).get("models", []):
        spec = match_catalog_model(model["model"], ctx.knowledge)
        if spec is None or _unfit(ctx, spec, context):
            continue
        measured = _measured_option(ctx, spec, model, calibration)
        if measured:
            options.append(replace(measured, launch=launch_for(ctx, spec, measured)))
    return options, excluded


def launch_for(ctx: Context, spec: ModelSpec, option: Option) -> Launch | None:
    """The command a user would start this option's engine with (None for runtimes without one here)."""
    quant, runtime = option.quantization or "Q4_K_M", (option.runtime or "").split(" ")[0]
    if runtime in ("llama.cpp", "embedded", "openai"):
        return llama_cpp_launch(
            spec,
            quant,
            ctx.workflow,
            ctx.hardware or Hardware(),
            required_gb=option.memory_required_gb or 0.0,
            usable_gb=ctx.usable_gb,
            seconds_per_request=option.e2e_s,
            costs=ctx.site.costs,
        )
    if runtime == "ollama":
        return ollama_launch(spec, quant, ctx.workflow, seconds_per_request=option.e2e_s, costs=ctx.site.costs)
    if runtime == "mlx":
        return mlx_launch(spec, quant, ctx.workflow)
    return None


def calibrated_runtime(calibration: dict[str, Any] | None) -> str | None:
    """The runtime this machine's calibration ran on (Ollama, else llama.cpp: embedded and OpenAI-compatible)."""
    if not calibration:
        return None
    return "ollama" if calibration.get("backend", {}).get("kind") == "ollama" else "llama.cpp"


def _label(pred: dict[str, Any]) -> str:
    return {"measured": "measured", "predicted+calibrated": "calibrated"}.get(pred.get("basis", ""), "predicted")


def runtime_figures(
    ctx: Context,
    option: Option,
    rows: list[tuple[str, dict[str, Any]]],
    *,
    ratios: dict[tuple[str, str], RuntimeRatio] | None = None,
    calibrated_runtime: str | None = None,
) -> tuple[RuntimeFigure, ...]:
    """The option's model and quantization on every runtime here (runtime, prediction), fastest first.

    A runtime the user has not calibrated, on a platform with sourced pairs (knowledge/runtime_pairs.csv), is the
    llama.cpp figure times the published ratio (label `published`, interval widened by the ratio's 80% range);
    without pairs it keeps the predictor's own figure for that runtime, labelled as before.
    """
    platform = (ctx.hardware.accelerator if ctx.hardware else None) or "cpu"
    base = next((pred for runtime, pred in rows if runtime == "llama.cpp" and "pred_tg_tok_s" in pred), None)
    out = []
    for runtime, pred in rows:
        if "pred_tg_tok_s" not in pred:
            continue
        label = _label(pred)
        # The runtime's own calibration (or measurement) wins; a llama.cpp run only shifts llama.cpp's figure.
        own = label == "measured" or (label == "calibrated" and runtime == calibrated_runtime)
        ratio = (ratios or {}).get((platform, runtime))
        if runtime != "llama.cpp" and base is not None and ratio is not None and not own:
            out.append(_published_figure(ctx, option, runtime, base, pred, ratio))
            continue
        ttft = local_ttft(ctx.workflow, pred, label).value
        e2e = ttft + option.tokens / max(pred["pred_tg_tok_s"], 1e-9)
        if runtime == "llama.cpp":
            basis = f"llama.cpp: the speed predictor ({label})"
        elif own:
            basis = f"{runtime}: {label} on this machine with {runtime} itself"
        else:
            basis = (
                f"{runtime}: the speed predictor's backend feature ({label}); no sourced {runtime} / llama.cpp "
                f"pairs for {platform} in knowledge/runtime_pairs.csv"
            )
        out.append(
            RuntimeFigure(
                runtime,
                pred["pred_tg_tok_s"],
                ttft,
                e2e / max(option.success, 1e-6),
                label,
                decode_low=pred.get("pred_tg_low"),
                decode_high=pred.get("pred_tg_high"),
                ratio_to_llama_cpp=pred["pred_tg_tok_s"] / base["pred_tg_tok_s"] if base else None,
                ratio_basis=basis,
            )
        )
    return tuple(sorted(out, key=lambda r: r.seconds_per_accepted))


def _published_figure(
    ctx: Context,
    option: Option,
    runtime: str,
    base: dict[str, Any],
    own_pred: dict[str, Any],
    ratio: RuntimeRatio,
) -> RuntimeFigure:
    """llama.cpp's figure here times the sourced decode ratio; TTFT by the prefill ratio where enough sources agree."""
    d = ratio.decode
    decode = base["pred_tg_tok_s"] * d.median
    low = (base.get("pred_tg_low") or base["pred_tg_tok_s"]) * d.low
    high = (base.get("pred_tg_high") or base["pred_tg_tok_s"]) * d.high
    base_ttft = local_ttft(ctx.workflow, base, _label(base)).value
    if ratio.prefill is not None and ratio.prefill_applies:
        ttft = base_ttft / ratio.prefill.median
        ttft_words = f"TTFT: llama.cpp's / the prefill median {ratio.prefill.median:.2f}"
    else:
        # Too few sources on prefill: the runtime's own predicted TTFT stays (the predictor's backend feature).
        ttft = local_ttft(ctx.workflow, own_pred, _label(own_pred)).value
        ttft_words = f"TTFT: the speed predictor's {runtime} figure"
    e2e = ttft + option.tokens / max(decode, 1e-9)
    return RuntimeFigure(
        runtime,
        decode,
        ttft,
        e2e / max(option.success, 1e-6),
        "published",
        decode_low=low,
        decode_high=high,
        ratio_to_llama_cpp=d.median,
        ratio_range=(d.low, d.high),
        pairs=d.pairs,
        ratio_basis=f"{d.words()}: llama.cpp {_label(base)} × the {runtime} / llama.cpp median on {ratio.platform}; "
        f"{ttft_words} (knowledge/runtime_pairs.csv)",
        sources=d.sources,
        ttft_from_pairs=ratio.prefill is not None and ratio.prefill_applies,
    )


def with_published_runtime(option: Option, rig: RigFactor | None) -> Option:
    """An Ollama / MLX option ranked by the figure its runtime row shows: where that row is llama.cpp's figure times
    sourced pairs (label published), the option's decode and TTFT become that row's, so the headline, the ranking
    and the side-by-side table agree (the predictor's own backend figure is kept in a note)."""
    row = next((r for r in option.runtime_comparison if r.runtime == option.runtime and r.pairs), None)
    if row is None:
        return option
    factor = rig.decode_factor if rig else 1.0  # the pairs compare single devices; a rig's split applies on top
    ttft = (
        Figure(row.ttft_s, "published", f"llama.cpp's TTFT here over the sourced {option.runtime} prefill ratio")
        if row.ttft_from_pairs
        else option.ttft
    )
    return replace(
        option,
        decode_tps=row.decode_tps * factor,
        decode_low=row.decode_low * factor if row.decode_low else None,
        decode_high=row.decode_high * factor if row.decode_high else None,
        decode_label="published",
        ttft=ttft,
        notes=(
            *option.notes,
            f"{option.runtime} figures: {row.ratio_basis}; the predictor's own {option.runtime} decode was "
            f"{option.decode_tps:.1f} tok/s",
        ),
    )


def runtime_sentence(option: Option) -> str | None:
    """One sentence: how much faster the fastest runtime would be than the slowest for this model here."""
    rows = option.runtime_comparison
    if len(rows) < 2:
        return None
    fast, slow = rows[0], rows[-1]
    pct = (slow.seconds_per_accepted / max(fast.seconds_per_accepted, 1e-9) - 1) * 100
    return (
        f"{fast.runtime} would be ~{pct:.0f}% faster than {slow.runtime} for {option.model} {option.quantization} "
        f"here ({fast.seconds_per_accepted:.2f} s vs {slow.seconds_per_accepted:.2f} s per accepted answer; decode "
        f"{fast.decode_tps:.0f} vs {slow.decode_tps:.0f} tok/s, {fast.label}, no {slow.runtime} calibration needed)."
    )


def _unfit(ctx: Context, spec: ModelSpec, context: int) -> str | None:
    """A task-specific need or a hard limit the model misses, in words; None when it may run the workflow."""
    served = ctx.catalog.runtime(spec.id)
    if served and served.value not in PREDICTED_RUNTIMES and not spec.diffusion:
        return (
            f"served only by {served.value} ({served.source_url}); no llama.cpp or Ollama build, so its speed here "
            "cannot be predicted — calibrate it with that runtime to judge it"
        )
    trained_for = ctx.catalog.specialist(spec.id)
    if trained_for and ctx.workflow.task not in trained_for:
        return (
            f"a {' / '.join(trained_for)} specialist (knowledge/model_traits.csv): a candidate only for "
            f"{' / '.join(trained_for)} workflows, not {ctx.workflow.task}"
        )
    if ctx.workflow.task == "autocomplete" and not ctx.catalog.is_fim(spec.id):
        return "not a FIM-trained code model (autocomplete needs fill-in-the-middle; knowledge/model_traits.csv)"
    if spec.context_k and context > spec.context_k * 1024:
        return f"context {context:,} tokens (input + output) exceeds its {spec.context_k:g}K window"
    return None


def _local_option(
    ctx: Context,
    spec: ModelSpec,
    quant: str,
    runtime: str,
    required_gb: float,
    pred: dict[str, Any],
    measured_tasks: tuple[int, int] | None,
) -> Option:
    workflow = ctx.workflow
    score = ctx.scale.local_score(spec, ctx.area)
    quant_row = ctx.knowledge.quant(quant)
    threshold = ctx.threshold
    p, low, high, basis = success_probability(
        score,
        ctx.success_reference,
        quant_loss_pct=quant_row.get("ppl_delta_pct") if quant_row else None,
        successes=measured_tasks[0] if measured_tasks else 0,
        attempts=measured_tasks[1] if measured_tasks else 0,
    )
    option_basis = pred.get("basis", "predicted")
    label = {"measured": "measured", "predicted+calibrated": "calibrated"}.get(option_basis, "predicted")
    reasoning = reasoning_tokens(
        spec.id, spec.reasoning, ctx.catalog, workflow, hosted=False, typical=spec.typical_thinking_tokens
    )
    trained_for = ctx.catalog.specialist(spec.id)
    return Option(
        kind="local",
        model=spec.id,
        quantization=quant,
        runtime=runtime,
        ttft=local_ttft(workflow, pred, label),
        decode_tps=pred["pred_tg_tok_s"],
        decode_label=label,
        decode_low=pred.get("pred_tg_low"),
        decode_high=pred.get("pred_tg_high"),
        reasoning=reasoning,
        answer_tokens=float(workflow.output_tokens),
        score=score,
        threshold=threshold,
        success=p,
        success_low=low,
        success_high=high,
        success_basis=basis,
        basis=option_basis,
        memory_required_gb=required_gb,
        notes=(
            f"capability: {score.basis}",
            f"success: {basis}",
            f"reasoning: {reasoning.basis}",
            *((f"specialist: {specialist_note(ctx.catalog, spec.id)}",) if trained_for else ()),
        ),
        specialist="|".join(trained_for) or None,
    )


def specialist_note(catalog: DecisionCatalog, model_id: str) -> str:
    """Which task(s) a specialist is trained for, with the trait's source."""
    found = catalog.trait(model_id, "specialist")
    assert found is not None
    return f"trained for {' / '.join(catalog.specialist(model_id))} only ({found.source_url}, {found.source_date})"


ASSUMED_DIFFUSION_STEPS = 48
ASSUMED_DIFFUSION_CANVAS = 256


def diffusion_option(
    ctx: Context, spec: ModelSpec, quant: str, runtime: str, required_gb: float, pred: dict[str, Any]
) -> Option:
    """A text-diffusion model timed by denoising steps x per-step cost over each canvas, plus the prompt.

    Each step runs the decoder over the whole canvas: ~2 x active parameters FLOPs per canvas token, compute
    bound like prefill, so a step costs canvas tokens / the backbone's predicted prefill rate here (assumed).
    Canvases are generated one after another; each finished canvas is encoded once more (one more pass).
    """
    base = _local_option(ctx, spec, quant, runtime, required_gb, pred, None)
    steps_trait = ctx.catalog.trait(spec.id, "diffusion_steps")
    canvas_trait = ctx.catalog.trait(spec.id, "diffusion_canvas_tokens")
    steps = int(steps_trait.value) if steps_trait else ASSUMED_DIFFUSION_STEPS
    canvas = int(canvas_trait.value) if canvas_trait else ASSUMED_DIFFUSION_CANVAS
    rate = pred["pred_pp_tok_s"]
    step_s = canvas / max(rate, 1e-9)
    canvases = max(1, math.ceil(base.tokens / canvas))
    per_canvas = steps * step_s + step_s  # denoising steps, then one encoder pass over the finished canvas
    prompt = base.ttft
    source = (
        f"{steps} steps x {canvas}-token canvas ({steps_trait.source_url if steps_trait else 'assumed'})"
        if steps_trait or canvas_trait
        else f"assumed {steps} steps x {canvas}-token canvas"
    )
    ttft = Figure(
        prompt.value + per_canvas,
        "assumed",
        f"prompt processing ({prompt.basis}) + the first canvas: {source}, each step {canvas} tokens at the "
        f"backbone's predicted {rate:.0f} tok/s prefill rate (compute-bound; no sourced measurement)",
    )
    generation = (canvases - 1) * per_canvas
    effective = base.tokens / max(canvases * per_canvas, 1e-9)
    note = (
        f"text diffusion: refines a whole {canvas}-token canvas per step ({steps} steps), so tokens per second is "
        f"not a decode rate; time to answer = prompt + {canvases} canvas(es) x ({steps} + 1) passes; decode_tps "
        f"is an effective rate ({effective:.0f} tok/s = tokens / generation time), assumed"
    )
    return replace(
        base,
        ttft=ttft,
        decode_tps=effective,
        decode_label="assumed",
        decode_low=None,
        decode_high=None,
        basis="assumed",
        time_model="diffusion",
        generation_s=generation,
        note=note,
        notes=(*base.notes, note, f"runtime: {runtime} (knowledge/model_traits.csv)"),
    )


def _measured_option(
    ctx: Context, spec: ModelSpec, model: dict[str, Any], calibration: dict[str, Any] | None
) -> Option | None:
    """The model this machine actually ran, with its measured speed and task results."""
    speed = model.get("speed", {})
    decode = next((v["decode_tps"] for k, v in speed.items() if k.startswith("decode") and v.get("decode_tps")), None)
    prefill = longest_prefill(speed)
    if not decode or not prefill:
        return None
    tasks = model.get("tasks", {})
    pred = {
        "pred_tg_tok_s": decode["median"],
        "pred_tg_low": decode["p25"],
        "pred_tg_high": decode["p75"],
        "pred_pp_tok_s": prefill["prefill_tps"]["median"],
        "basis": "measured",
    }
    runtime = f"{calibration['backend']['kind'] if calibration else 'embedded'} ({model.get('quantization')})"
    option = _local_option(
        ctx,
        spec,
        model.get("quantization") or "Q4_K_M",
        runtime,
        round((model.get("size_bytes") or 0) / 1e9 + 0.5, 2),
        pred,
        (tasks.get("successes", 0), tasks.get("attempts", 0)),
    )
    run = calibration["run_id"] if calibration else "?"
    return replace(option, notes=(*option.notes, f"measured on this machine, run {run}"))


def hosted_options(
    ctx: Context, *, calibration: dict[str, Any] | None = None
) -> tuple[list[Option], list[Excluded]]:
    """Every priced hosted offer, with published or (labelled) assumed speed, and its token prices.

    An offer the user calibrated through the OpenAI-compatible backend takes its measured TTFT and decode rate.

    Autocomplete has no hosted option: no catalog offer is a fill-in-the-middle endpoint.
    """
    workflow = ctx.workflow
    options: list[Option] = []
    excluded: list[Excluded] = []
    if workflow.task == "autocomplete":
        return options, [Excluded("hosted", "no hosted offer in the catalog is a fill-in-the-middle endpoint")]
    threshold = ctx.threshold
    for row in ctx.knowledge.hosted:
        if row.get("input_usd_per_m") is None or row.get("output_usd_per_m") is None:
            excluded.append(Excluded(row["id"], "no published token price"))
            continue
        context = workflow.input_tokens + workflow.output_tokens
        if row.get("context_k") and context > row["context_k"] * 1000:
            excluded.append(Excluded(row["id"], f"context {context:,} tokens exceeds its {row['context_k']:g}K window"))
            continue
        score = ctx.scale.hosted_score(row, ctx.area)
        p, low, high, basis = success_probability(score, ctx.success_reference)
        reasoning = reasoning_tokens(row["id"], row.get("reasoning") or "no", ctx.catalog, workflow, hosted=True)
        if row.get("max_output_k") and reasoning.value + workflow.output_tokens > row["max_output_k"] * 1000:
            excluded.append(Excluded(row["id"], f"output exceeds its {row['max_output_k']:g}K maximum"))
            continue
        measured = measured_hosted(row, calibration, offers=ctx.knowledge.hosted)
        tps = (measured.decode_tps if measured else None) or row.get("typical_tps")
        ttft = hosted_ttft(row, workflow, ctx.network_rtt_ms, measured=measured)
        basis_speed = "published" if row.get("typical_ttft_s") and tps else "assumed"
        basis_speed = "measured" if measured and measured.decode_tps else basis_speed
        price = hosted_price(row, workflow, workflow.output_tokens + reasoning.value)
        notes = [
            f"capability: {score.basis}",
            f"success: {basis}",
            f"reasoning: {reasoning.basis}",
            f"TTFT: {ttft.basis}",
            f"price: {price.basis}",
        ]
        if not tps:
            notes.append(f"decode: assumed {ASSUMED_HOSTED_TPS:g} tok/s (no published figure)")
        options.append(
            Option(
                kind="hosted",
                model=row["id"],
                provider=row["provider"],
                ttft=ttft,
                decode_tps=tps or ASSUMED_HOSTED_TPS,
                decode_label=("measured" if measured and measured.decode_tps else "published") if tps else "assumed",
                reasoning=reasoning,
                answer_tokens=float(workflow.output_tokens),
                score=score,
                threshold=threshold,
                success=p,
                success_low=low,
                success_high=high,
                success_basis=basis,
                basis=basis_speed,
                hosted_usd_per_request=price.usd_per_request,
                price_basis=price.basis,
                notes=tuple(notes),
            )
        )
    return options, excluded


def hosted_allowed(option: Option, workflow: Workflow, approved: list[str]) -> bool:
    """Lens 1 as a hard constraint: regulated never leaves; confidential only to approved providers."""
    if workflow.data_sensitivity == "regulated":
        return False
    if workflow.data_sensitivity == "confidential":
        names = {a.lower() for a in approved}
        return (option.provider or "").lower() in names or option.model.lower() in names
    return True
