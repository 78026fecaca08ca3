"""Per-workflow decision: local candidates x hosted options under the five lenses, ranked per accepted answer.

Pure policy over schemas: the predictor, the knowledge and the calibration report are passed in.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from advisor.knowledge import Knowledge, ModelSpec
from advisor.policy import CAPABILITY_EASE, CAPABILITY_THRESHOLDS, MIN_SUCCESS
from advisor.predict import SpeedPredictor, memory_fit, success_estimate, task_score
from advisor.schemas import Costs, Hardware, Profile, Workflow
from advisor.settings import get_settings

QUANTS = ("Q4_K_M", "Q8_0")
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
# Assumptions used only where knowledge/ has no figure; every use is labelled "assumed" in the output.
ASSUMED_POWER_W = {"nvidia": 350.0, "amd": 300.0, "intel": 200.0, "apple": 60.0, "cpu": 65.0}
ASSUMED_HOSTED_TTFT_S = 1.0
ASSUMED_HOSTED_TPS = 60.0
ASSUMED_REASONING_FACTOR = 2.0  # thinking tokens per answer token when a reasoning model's figure is unknown
ASSUMED_HARDWARE_USD = 2500.0  # per device, when neither the profile nor the catalog has a price
APPLE_GPU_WIRED_FRACTION = 0.75  # Metal wires ~75% of unified memory by default (iogpu.wired_limit_mb raises it)
RIG_OVERHEAD_GB_PER_EXTRA_DEVICE = 0.5  # assumed: each extra device holds its own compute buffers and context
HIGH_VOLUME_PER_DAY = 10_000
DAY_S = 86_400.0
DAYS_PER_MONTH = 30.44


@dataclass
class Option:
    """One way to run a workflow: a local model at a quantization on a runtime, or a hosted model."""

    kind: str  # local | hosted
    model: str
    ttft_s: float
    decode_tps: float
    reasoning_tokens: float
    answer_tokens: float
    success: float
    success_low: float
    success_high: float
    cost_per_request_usd: float | None
    basis: str  # measured | predicted | predicted+calibrated | published | assumed
    quantization: str | None = None
    runtime: str | None = None
    provider: str | None = None
    memory_required_gb: float | None = None
    task_score: float | None = None
    decode_low: float | None = None
    decode_high: float | None = None
    capacity_per_day: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def e2e_s(self) -> float:
        """Predicted time to a complete answer: first token, then reasoning and answer tokens."""
        return self.ttft_s + (self.reasoning_tokens + self.answer_tokens) / max(self.decode_tps, 1e-9)

    @property
    def tokens(self) -> float:
        return self.reasoning_tokens + self.answer_tokens

    @property
    def seconds_per_accepted(self) -> float:
        return self.e2e_s / max(self.success, 1e-6)

    @property
    def tokens_per_accepted(self) -> float:
        return self.tokens / max(self.success, 1e-6)

    @property
    def cost_per_accepted(self) -> float | None:
        return None if self.cost_per_request_usd is None else self.cost_per_request_usd / max(self.success, 1e-6)

    def key(self) -> str:
        return f"{self.kind}:{self.model}:{self.quantization}:{self.runtime}:{self.provider}"


# --- hardware ----------------------------------------------------------------------------------------


def resolve_hardware(
    given: Hardware | None, detected: dict[str, Any], knowledge: Knowledge, calibration: dict[str, Any] | None
) -> tuple[Hardware, dict[str, Any]]:
    """Detected hardware with the profile's fields on top; empty facts filled from the catalog or the probe.

    A profile naming another kind of accelerator plans for another machine: nothing detected here is used.
    """
    detected_hw = Hardware.model_validate(detected["hardware"])
    given_fields = given.model_dump(exclude_none=True) if given else {}
    same_machine = given_fields.get("accelerator", detected_hw.accelerator) == detected_hw.accelerator
    base = detected_hw if same_machine else Hardware()
    how = dict(detected.get("how", {})) if same_machine else {}
    notes = list(detected.get("notes", [])) if same_machine else []
    hw = base.model_copy(update=given_fields)
    for key in given_fields:
        how[key] = "given in the profile"
    catalog = knowledge.hardware_named(hw.name or "") if hw.name else None
    if catalog:
        fills = {"memory_bandwidth_gbs": "memory_bandwidth_gbs", "power_w": "power_w", "fp16_tflops": "fp16_tflops"}
        if hw.accelerator != "apple" and hw.accelerator != "cpu":
            fills["memory_gb"] = "memory_gb"
        for field_name, col in fills.items():
            if getattr(hw, field_name) is None and catalog.get(col) is not None:
                hw = hw.model_copy(update={field_name: catalog[col]})
                how[field_name] = f"knowledge/hardware.csv '{catalog['name']}' ({catalog['source_url']})"
    probe = (calibration or {}).get("bandwidth_probe") if same_machine else None
    if hw.memory_bandwidth_gbs is None and probe and hw.accelerator == "cpu":
        hw = hw.model_copy(update={"memory_bandwidth_gbs": probe["bandwidth_gbs"]})
        how["memory_bandwidth_gbs"] = f"measured: {probe['method']}"
    # Detection notes about facts that are now known would only confuse the record.
    notes = [n for n in notes if not (n.startswith("power draw unknown") and hw.power_w)]
    notes = [n for n in notes if not (n.startswith("memory bandwidth unknown") and hw.memory_bandwidth_gbs)]
    usable, usable_how = usable_memory_gb(hw, memory_detected="memory_gb" not in given_fields and same_machine)
    if hw.memory_gb is None:
        notes.append("memory for weights unknown: memory fit is not checked; set hardware.memory_gb")
    if hw.memory_bandwidth_gbs is None:
        notes.append(
            "memory bandwidth unknown: local speeds cannot be predicted; run calibrate or set hardware.memory_bandwidth_gbs"
        )
    info = {
        "used": hw.model_dump(),
        "source": "given" if given_fields else "detected",
        "how": how,
        "notes": notes,
        "calibration_applies": bool(calibration) and same_machine,
        "usable_memory_gb": usable,
        "usable_memory_how": usable_how,
    }
    return hw, info


def usable_memory_gb(hw: Hardware, *, memory_detected: bool) -> tuple[float | None, str]:
    """Memory the weights may use: Apple's GPU-wired share, summed over a rig's devices less per-device overhead.

    Detection already reports Apple's wired share, so only a memory size given in the profile (as sold) is derated.
    """
    if hw.memory_gb is None:
        return None, "unknown"
    per_device, how = hw.memory_gb, "memory_gb"
    if hw.accelerator == "apple":
        if hw.gpu_memory_limit_gb is not None:
            per_device, how = min(hw.gpu_memory_limit_gb, hw.memory_gb), "gpu_memory_limit_gb (given)"
        elif not memory_detected:
            per_device = hw.memory_gb * APPLE_GPU_WIRED_FRACTION
            how = f"memory_gb x {APPLE_GPU_WIRED_FRACTION:g} (Metal's default GPU-wired share; set gpu_memory_limit_gb if raised)"
        else:
            how = "detected GPU-wired share"
    count = hw.count or 1
    if count == 1:
        return round(per_device, 2), how
    overhead = RIG_OVERHEAD_GB_PER_EXTRA_DEVICE * (count - 1)
    total = per_device * count - overhead
    return round(total, 2), (
        f"{count} x {per_device:g} GB ({how}) less {overhead:g} GB assumed for each extra device's buffers "
        f"({hw.interconnect or 'pcie'}; layers split across devices)"
    )


def device_price_usd(hw: Hardware, costs: Costs, prices: list[dict[str, Any]]) -> tuple[float, str]:
    """The hardware price to amortise: the profile's, else the catalog's sourced price, else an assumed default."""
    count = hw.count or 1
    if costs.hardware_usd is not None:
        return costs.hardware_usd, "given in the profile (costs.hardware_usd)"
    row = match_device_price(hw.name, prices)
    if row is not None:
        return row["price_usd"] * count, (
            f"published: {row['device']} ${row['price_usd']:,.0f}"
            + (f" x {count}" if count > 1 else "")
            + f" ({row['source_url']}, {row['source_date']})"
        )
    return ASSUMED_HARDWARE_USD * count, (
        f"assumed: ${ASSUMED_HARDWARE_USD:,.0f} per device"
        + (f" x {count}" if count > 1 else "")
        + " (no catalog price for this device; set costs.hardware_usd)"
    )


def match_device_price(name: str | None, prices: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The catalog price row whose device name matches, by the same token rule as the hardware catalog."""
    if not name:
        return None
    from advisor.knowledge import hardware_tokens

    wanted = hardware_tokens(name)
    best, best_score = None, 0.0
    for row in prices:
        have = hardware_tokens(row["device"])
        if not have or not have <= wanted:
            continue
        score = len(have) / len(wanted | have)
        if score > best_score:
            best, best_score = row, score
    return best


def load_device_prices(directory: Any) -> list[dict[str, Any]]:
    """knowledge/device_prices.csv: one sourced, dated price per device (empty when the file is absent)."""
    path = Path(directory) / "device_prices.csv"
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        rows = []
        for row in csv.DictReader(handle):
            rows.append({**row, "price_usd": float(row["price_usd"])})
    return rows


def model_traits(directory: Any) -> dict[str, dict[str, str]]:
    """knowledge/model_traits.csv as {model id: {trait: value}} (FIM training and the like, each sourced)."""
    path = Path(directory) / "model_traits.csv"
    out: dict[str, dict[str, str]] = {}
    if path.exists():
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                out.setdefault(row["model_id"], {})[row["trait"]] = row["value"]
    return out


# --- local candidates ----------------------------------------------------------------------------------


def _bpw(knowledge: Knowledge, quant: str) -> float | None:
    row = knowledge.quant(quant)
    return row["bits_per_weight"] if row else None


def _quants_for(spec: ModelSpec) -> tuple[str, ...]:
    return (*QUANTS, "MXFP4") if spec.id.startswith("gpt-oss") else QUANTS


def site_power_w(hw: Hardware) -> float:
    """Power drawn while busy: the device's (or an assumed figure) times the devices in the rig."""
    return (hw.power_w or ASSUMED_POWER_W[hw.accelerator or "cpu"]) * (hw.count or 1)


def local_speed_table(
    knowledge: Knowledge,
    predictor: SpeedPredictor,
    hw: Hardware,
    measured_rows: list[dict[str, Any]],
    *,
    runtimes: dict[str, str | None] | None = None,
    usable_gb: float | None = None,
) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Predicted decode/prefill for every catalog model x quantization x runtime on this hardware (one batch)."""
    keys, rows = [], []
    accel = hw.accelerator or "cpu"
    for spec in knowledge.models:
        if spec.diffusion or not spec.total_params_b:
            continue
        for quant in _quants_for(spec):
            for runtime, backend in (runtimes or RUNTIMES).items():
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
                        "prompt_tokens": 512,
                        "gen_tokens": 128,
                    }
                )
    preds = predictor.predict(rows, measured=measured_rows)
    return dict(zip(keys, preds, strict=True))


def calibration_rows(calibration: dict[str, Any] | None, hw: Hardware, knowledge: Knowledge) -> list[dict[str, Any]]:
    """This machine's measured decode/prefill as rows the predictor can learn a residual from."""
    rows = []
    for model in (calibration or {}).get("models", []):
        spec = match_catalog_model(model["model"], knowledge)
        speed = model.get("speed", {})
        decode = next(
            (v["decode_tps"]["median"] for k, v in speed.items() if k.startswith("decode") and v.get("decode_tps")),
            None,
        )
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


def wants_thinking(workflow: Workflow) -> bool:
    """Reasoning tasks and frontier needs run with thinking on where a model makes it optional."""
    return workflow.task == "reasoning" or workflow.capability == "frontier"


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
    owned = 1.0 if costs.hardware_sunk else 0.0  # a sunk machine is already paid for; more or a spare are not
    hardware = per_machine * max(0.0, machines + spare - owned)
    return hardware + costs.ops_usd_per_month / DAYS_PER_MONTH


def local_cost_per_request(
    busy_s: float, requests_per_day: float, power_w: float, costs: Costs, *, hardware_usd: float | None = None
) -> float:
    """Energy for the busy time plus hardware and ops per day spread over the day's requests.

    Above one machine's capacity (at costs.utilization_target) the amortisation scales with the machines
    needed, so the cost per request never rises with volume.
    """
    energy = power_w * busy_s / 3.6e6 * costs.electricity_usd_per_kwh
    if requests_per_day <= 0:
        return energy
    return (
        energy + local_fixed_usd_per_day(busy_s, requests_per_day, costs, hardware_usd=hardware_usd) / requests_per_day
    )


def reasoning_tokens_for(
    spec_reasoning: str, typical: int | None, answer_tokens: int, *, thinking_wanted: bool = False
) -> tuple[float, str | None]:
    """Thinking tokens a model spends per answer, and a note when the figure is assumed.

    Optional thinking is assumed on for reasoning or frontier work (the published scores were taken with it on).
    """
    if spec_reasoning == "always" or (spec_reasoning == "optional" and thinking_wanted):
        if typical:
            return float(typical), None
        return (
            ASSUMED_REASONING_FACTOR * answer_tokens,
            f"assumed {ASSUMED_REASONING_FACTOR:g}x answer tokens of thinking",
        )
    return 0.0, None


def local_options(
    workflow: Workflow,
    knowledge: Knowledge,
    hw: Hardware,
    costs: Costs,
    speeds: dict[tuple[str, str, str], dict[str, Any]],
    calibration: dict[str, Any] | None,
    *,
    usable_gb: float | None = None,
    hardware_usd: float | None = None,
    traits: dict[str, dict[str, str]] | None = None,
) -> tuple[list[Option], list[str]]:
    """Local candidates that fit this hardware's memory at the workflow's context, with their predictions."""
    options: list[Option] = []
    skipped: list[str] = []
    context = workflow.input_tokens + workflow.output_tokens
    power = site_power_w(hw)
    memory = usable_gb if usable_gb is not None else hw.memory_gb
    measured = {m["model"]: m for m in (calibration or {}).get("models", [])}
    for (model_id, quant, runtime), pred in speeds.items():
        spec = knowledge.model(model_id)
        assert spec is not None
        if workflow.task == "autocomplete" and (traits or {}).get(spec.id, {}).get("fim") != "yes":
            skipped.append(f"{model_id}: not a FIM-trained code model (autocomplete needs fill-in-the-middle)")
            continue
        bpw = _bpw(knowledge, quant) or 4.89
        fit = memory_fit(spec, quant, bpw, context, memory)
        if fit.fits is False:
            continue
        if "pred_tg_tok_s" not in pred or "pred_pp_tok_s" not in pred:
            skipped.append(f"{model_id}: {pred.get('reason', 'no prediction')}")
            continue
        options.append(
            _local_option(
                workflow, knowledge, spec, quant, runtime, fit.required_gb, pred, power, costs, None, hardware_usd
            )
        )
    for name, model in measured.items():
        spec = match_catalog_model(name, knowledge)
        if workflow.task == "autocomplete" and (spec is None or (traits or {}).get(spec.id, {}).get("fim") != "yes"):
            continue
        option = _measured_option(workflow, knowledge, spec, name, model, hw, power, costs, calibration, hardware_usd)
        if option:
            options.append(option)
    return options, skipped


def _local_option(
    workflow: Workflow,
    knowledge: Knowledge,
    spec: ModelSpec,
    quant: str,
    runtime: str,
    required_gb: float,
    pred: dict[str, Any],
    power: float,
    costs: Costs,
    measured_tasks: tuple[int, int] | None,
    hardware_usd: float | None = None,
) -> Option:
    score, used = task_score(spec.scores, score_task(workflow))
    quant_row = knowledge.quant(quant)
    succ = success_estimate(
        score,
        quant_ppl_delta_pct=quant_row.get("ppl_delta_pct") if quant_row else None,
        successes=measured_tasks[0] if measured_tasks else 0,
        attempts=measured_tasks[1] if measured_tasks else 0,
        ease=CAPABILITY_EASE[workflow.capability],
    )
    reasoning, note = reasoning_tokens_for(
        spec.reasoning, spec.typical_thinking_tokens, workflow.output_tokens, thinking_wanted=wants_thinking(workflow)
    )
    option = Option(
        kind="local",
        model=spec.id,
        quantization=quant,
        runtime=runtime,
        ttft_s=workflow.input_tokens / pred["pred_pp_tok_s"],
        decode_tps=pred["pred_tg_tok_s"],
        decode_low=pred["pred_tg_low"],
        decode_high=pred["pred_tg_high"],
        reasoning_tokens=reasoning,
        answer_tokens=float(workflow.output_tokens),
        success=succ.probability,
        success_low=succ.low,
        success_high=succ.high,
        cost_per_request_usd=None,
        basis=pred.get("basis", "predicted"),
        memory_required_gb=required_gb,
        task_score=score,
        notes=[n for n in [note, f"success: {succ.basis}" + (f" ({', '.join(used)})" if used else "")] if n],
    )
    option.cost_per_request_usd = local_cost_per_request(
        option.e2e_s, workflow.requests_per_day, power, costs, hardware_usd=hardware_usd
    )
    option.capacity_per_day = DAY_S * costs.utilization_target / option.e2e_s
    return option


def _measured_option(
    workflow: Workflow,
    knowledge: Knowledge,
    spec: ModelSpec | None,
    name: str,
    model: dict[str, Any],
    hw: Hardware,
    power: float,
    costs: Costs,
    calibration: dict[str, Any] | None,
    hardware_usd: float | None = None,
) -> Option | None:
    """The model this machine actually ran, with its measured speed and task results."""
    speed = model.get("speed", {})
    decode = next((v["decode_tps"] for k, v in speed.items() if k.startswith("decode") and v.get("decode_tps")), None)
    prefill = longest_prefill(speed)
    if not decode or not prefill or spec is None:
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
        workflow,
        knowledge,
        spec,
        model.get("quantization") or "Q4_K_M",
        runtime,
        round((model.get("size_bytes") or 0) / 1e9 + 0.5, 2),
        pred,
        power,
        costs,
        (tasks.get("successes", 0), tasks.get("attempts", 0)),
        hardware_usd,
    )
    option.notes.append(f"measured on this machine, run {calibration['run_id'] if calibration else '?'}")
    return option


# --- hosted candidates ---------------------------------------------------------------------------------


def score_task(workflow: Workflow) -> str:
    """The task area whose published scores speak to a workflow (autocomplete is judged on coding)."""
    return "coding" if workflow.task == "autocomplete" else workflow.task


def hosted_options(workflow: Workflow, knowledge: Knowledge, *, network_rtt_ms: float = 0.0) -> list[Option]:
    """Every priced hosted offer, with published or (labelled) assumed speed and token prices.

    The network round trip from here is added to the provider's TTFT. Autocomplete has no hosted option: no
    catalog offer is a fill-in-the-middle endpoint.
    """
    options: list[Option] = []
    if workflow.task == "autocomplete":
        return options
    for row in knowledge.hosted:
        if row.get("input_usd_per_m") is None or row.get("output_usd_per_m") is None:
            continue
        scores = {k.removeprefix("score_"): row.get(k) for k in row if k.startswith("score_")}
        score, used = task_score(scores, score_task(workflow))
        succ = success_estimate(score, ease=CAPABILITY_EASE[workflow.capability])
        reasoning = 0.0
        notes = [f"success: {succ.basis}" + (f" ({', '.join(used)})" if used else "")]
        if row.get("reasoning") == "yes" or (row.get("reasoning") == "optional" and wants_thinking(workflow)):
            reasoning = ASSUMED_REASONING_FACTOR * workflow.output_tokens
            notes.append(f"reasoning tokens billed: assumed {ASSUMED_REASONING_FACTOR:g}x answer tokens")
        ttft, tps = row.get("typical_ttft_s"), row.get("typical_tps")
        basis = "published" if ttft and tps else "assumed"
        assumed = []
        if not ttft:
            assumed.append(f"TTFT {ASSUMED_HOSTED_TTFT_S:g} s")
        if not tps:
            assumed.append(f"{ASSUMED_HOSTED_TPS:g} tok/s")
        if assumed:
            notes.append(f"assumed {' and '.join(assumed)}: no published figure")
        if network_rtt_ms:
            notes.append(f"TTFT includes {network_rtt_ms:g} ms network round trip (costs.network_rtt_ms)")
        cost = (
            workflow.input_tokens * row["input_usd_per_m"]
            + (workflow.output_tokens + reasoning) * row["output_usd_per_m"]
        ) / 1e6
        options.append(
            Option(
                kind="hosted",
                model=row["id"],
                provider=row["provider"],
                ttft_s=(ttft or ASSUMED_HOSTED_TTFT_S) + network_rtt_ms / 1000,
                decode_tps=tps or ASSUMED_HOSTED_TPS,
                reasoning_tokens=reasoning,
                answer_tokens=float(workflow.output_tokens),
                success=succ.probability,
                success_low=succ.low,
                success_high=succ.high,
                cost_per_request_usd=cost,
                basis=basis,
                task_score=score,
                notes=notes,
            )
        )
    return options


def hosted_allowed(option: Option, workflow: Workflow, approved: list[str]) -> bool:
    """Lens 1 as a hard constraint: regulated never leaves; confidential only to approved providers."""
    if workflow.data_sensitivity == "regulated":
        return False
    if workflow.data_sensitivity == "confidential":
        names = {a.lower() for a in approved}
        return (option.provider or "").lower() in names or option.model.lower() in names
    return True


# --- ranking and decision --------------------------------------------------------------------------------


def meets_capability(option: Option, workflow: Workflow) -> bool:
    """The task-area score clears the capability threshold and expected success clears the floor."""
    if option.success < MIN_SUCCESS:
        return False
    threshold = CAPABILITY_THRESHOLDS[workflow.capability]
    return threshold == 0 or (option.task_score is not None and option.task_score >= threshold)


def meets_latency(option: Option, workflow: Workflow) -> bool:
    return option.e2e_s <= workflow.latency_budget_s


def rank_options(options: list[Option], workflow: Workflow) -> list[Option]:
    """Order by what users feel: cost per accepted answer for stable or high-volume work, else seconds per accepted."""
    by_cost = workflow.iteration == "stable" or workflow.requests_per_day >= HIGH_VOLUME_PER_DAY

    def key(o: Option) -> tuple[float, ...]:
        cost = o.cost_per_accepted if o.cost_per_accepted is not None else math.inf
        # Frontier needs route out to hosted (lens 5); otherwise a prototype avoids a procurement loop by
        # taking local options first (lens 2).
        if workflow.capability == "frontier":
            preferred = 0.0 if o.kind == "hosted" else 1.0
        elif workflow.iteration == "prototype":
            preferred = 0.0 if o.kind == "local" else 1.0
        else:
            preferred = 0.0
        primary = (cost, o.seconds_per_accepted) if by_cost else (o.seconds_per_accepted, cost)
        return (preferred, *primary, o.tokens_per_accepted)

    return sorted(options, key=key)


@dataclass
class Decision:
    workflow: Workflow
    decision: str
    choice: Option | None
    alternatives: list[Option]
    best_local: Option | None
    best_hosted: Option | None
    warnings: list[str]
    reasons: dict[str, str]


def decide(workflow: Workflow, local: list[Option], hosted: list[Option], profile: Profile, hw: Hardware) -> Decision:
    """Apply the hard constraint, then latency and capability, then rank; state any gap plainly."""
    approved = profile.hosted.approved_for_confidential
    allowed_hosted = [o for o in hosted if hosted_allowed(o, workflow, approved)]
    eligible = local + allowed_hosted
    warnings: list[str] = []
    meeting = [o for o in eligible if meets_latency(o, workflow) and meets_capability(o, workflow)]
    best_local = cost_reference(local, workflow)
    best_hosted = cost_reference(allowed_hosted, workflow, cheapest=True)
    choice: Option | None
    if meeting:
        choice = rank_options(meeting, workflow)[0]
        decision = choice.kind
    else:
        # Nothing meets every need: the closest option, and the gap stated.
        choice = closest_option(eligible, workflow)
        forced_local = not allowed_hosted
        decision = "local-with-gap" if forced_local else (choice.kind if choice else "hosted")
        warnings += gap_warnings(workflow, choice, forced_local)
    if (
        choice
        and choice.kind == "local"
        and choice.capacity_per_day
        and workflow.requests_per_day > choice.capacity_per_day
    ):
        machines = math.ceil(workflow.requests_per_day / choice.capacity_per_day)
        warnings.append(
            f"volume {workflow.requests_per_day:,.0f}/day exceeds one machine at batch 1 "
            f"(~{choice.capacity_per_day:,.0f}/day for this option): plan for ~{machines} machines or a batching server (vLLM, llama.cpp server with parallel slots)"
        )
    if choice and choice.kind == "local" and choice.basis != "measured":
        warnings.append(
            f"{choice.model}: speed is {choice.basis}, not measured on this machine; calibrate with it to confirm"
        )
    if choice and choice.kind == "hosted" and choice.basis == "assumed":
        warnings.append(
            f"{choice.model}: its TTFT or tok/s is not published, so its speed is partly assumed; time it on your own prompts"
        )
    if workflow.data_sensitivity == "confidential" and not allowed_hosted:
        warnings.append(
            "confidential data and no approved hosted provider: add providers to hosted.approved_for_confidential if you have zero-retention agreements"
        )
    # The cost comparison names the option on the card whenever the card shows that kind.
    if choice and choice.kind == "local":
        best_local = choice
    elif choice and choice.kind == "hosted":
        best_hosted = choice
    alternatives = ranked_alternatives(eligible, workflow, choice)
    reasons = lens_reasons(workflow, choice, best_local, best_hosted, allowed_hosted, hosted, profile, hw)
    return Decision(workflow, decision, choice, alternatives, best_local, best_hosted, warnings, reasons)


def ranked_alternatives(
    options: list[Option], workflow: Workflow, choice: Option | None, *, limit: int = 5
) -> list[Option]:
    """Other options, those meeting every need first, one per model (its best quantization and runtime)."""
    meeting = [o for o in options if meets_latency(o, workflow) and meets_capability(o, workflow)]
    rest = [o for o in options if o not in meeting]
    seen = {choice.model} if choice else set()
    out = []
    rest.sort(key=lambda o: (not meets_capability(o, workflow), o.task_score is None, -(o.task_score or 0), o.e2e_s))
    for option in rank_options(meeting, workflow) + rest:
        if option.model not in seen:
            seen.add(option.model)
            out.append(option)
    return out[:limit]


def closest_option(options: list[Option], workflow: Workflow) -> Option | None:
    """When nothing meets every need: the fastest capable option, else the most capable one."""
    capable = [o for o in options if meets_capability(o, workflow)]
    if capable:
        return min(capable, key=lambda o: o.e2e_s)
    scored = sorted(options, key=lambda o: (o.task_score is None, -(o.task_score or 0), -o.success, o.e2e_s))
    return scored[0] if scored else None


def cost_reference(options: list[Option], workflow: Workflow, *, cheapest: bool = False) -> Option | None:
    """The option of one kind that cost comparisons use when the choice is of the other kind.

    Options meeting every need first, else capable ones, else any; ranked as the workflow ranks
    (or by dollars per accepted answer for the hosted reference).
    """
    pool = (
        [o for o in options if meets_latency(o, workflow) and meets_capability(o, workflow)]
        or [o for o in options if meets_capability(o, workflow)]
        or options
    )
    if not pool:
        return None
    if cheapest:
        return min(pool, key=lambda o: o.cost_per_accepted if o.cost_per_accepted is not None else math.inf)
    return rank_options(pool, workflow)[0]


def gap_warnings(workflow: Workflow, choice: Option | None, forced_local: bool) -> list[str]:
    """Which need the best available option misses, and by how much."""
    if choice is None:
        return ["no option at all: no local model fits this hardware and no hosted option is allowed"]
    out = []
    why = "data sensitivity keeps this workflow local" if forced_local else "no option meets every need"
    if not meets_latency(choice, workflow):
        out.append(
            f"{why}, but the best option ({choice.model}) needs {choice.e2e_s:.1f} s per answer "
            f"against a {workflow.latency_budget_s:g} s budget ({choice.e2e_s / workflow.latency_budget_s:.1f}x over)"
        )
    if not meets_capability(choice, workflow):
        threshold = CAPABILITY_THRESHOLDS[workflow.capability]
        have = "no published score" if choice.task_score is None else f"task score {choice.task_score:.0f}"
        if threshold and (choice.task_score is None or choice.task_score < threshold):
            out.append(
                f"{why}, but the most capable option ({choice.model}) has {have} against the {workflow.capability} "
                f"threshold of {threshold:.0f} for {workflow.task} ({'unknown' if choice.task_score is None else f'{threshold - choice.task_score:.0f} points short'})"
            )
        else:
            out.append(
                f"{why}, but the best option ({choice.model}) is expected to succeed only {choice.success:.0%} of the time "
                f"(floor {MIN_SUCCESS:.0%}; {have})"
            )
    return out


def break_even_per_day(
    local: Option | None, hosted: Option | None, costs: Costs, power_w: float, *, hardware_usd: float | None = None
) -> float | None:
    """Requests per day above which local is cheaper than hosted (None when it never is)."""
    if local is None or hosted is None or hosted.cost_per_request_usd is None:
        return None
    energy = power_w * local.e2e_s / 3.6e6 * costs.electricity_usd_per_kwh
    margin = hosted.cost_per_request_usd - energy
    if margin <= 0:
        return None
    # Fixed cost per day at one machine (the volume where break-even happens is below one machine's capacity
    # whenever local is cheaper per request at all).
    fixed = local_fixed_usd_per_day(local.e2e_s, 1.0, costs, hardware_usd=hardware_usd)
    if fixed <= 0:
        return 0.0
    return fixed / margin


def lens_reasons(
    workflow: Workflow,
    choice: Option | None,
    best_local: Option | None,
    best_hosted: Option | None,
    allowed_hosted: list[Option],
    hosted: list[Option],
    profile: Profile,
    hw: Hardware,
) -> dict[str, str]:
    """One plain sentence per lens."""
    s = workflow.data_sensitivity
    if s == "regulated":
        data = "Regulated data (PII/PHI/NDA) never goes to a hosted API: only local options were considered."
    elif s == "confidential":
        data = (
            f"Confidential data: hosted options limited to approved providers ({', '.join(profile.hosted.approved_for_confidential)})."
            if allowed_hosted
            else "Confidential data and no approved hosted provider: only local options were considered."
        )
    else:
        data = f"{s.capitalize()} data: local and all {len(hosted)} priced hosted options were considered."
    iteration = {
        "prototype": "Prototype: local options come first when they meet the need — no procurement or data-review loop.",
        "evolving": "Evolving workflow: ranked by seconds per accepted answer, cost as the tie-breaker.",
        "stable": "Stable workflow: ranked by dollars per accepted answer, since the volume will last.",
    }[workflow.iteration]
    if choice:
        latency = (
            f"{'Interactive' if workflow.interactive else 'Batch'}: {choice.model} takes ~{choice.e2e_s:.1f} s per answer "
            f"(TTFT {choice.ttft_s:.2f} s + {choice.tokens:.0f} tokens at {choice.decode_tps:.0f} tok/s) against a "
            f"{workflow.latency_budget_s:g} s budget — {'within' if meets_latency(choice, workflow) else 'over'} budget."
        )
    else:
        latency = "No option could be timed."
    power = site_power_w(hw)
    be = break_even_per_day(best_local, best_hosted, profile.costs, power)
    local_1k = _per_1k(best_local)
    hosted_1k = _per_1k(best_hosted)
    cost = f"At {workflow.requests_per_day:,.0f} requests/day: local ≈ ${local_1k if local_1k is not None else '—'}/1k requests"
    cost += f", hosted ≈ ${hosted_1k}/1k" if hosted_1k is not None else ", no hosted option allowed"
    if be is not None:
        cost += f"; local breaks even above ~{be:,.0f} requests/day"
    if profile.costs.hardware_sunk:
        cost += " (hardware treated as sunk: energy only)"
    cost += "."
    threshold = CAPABILITY_THRESHOLDS[workflow.capability]
    if choice is None:
        capability = "No option to judge."
    elif workflow.capability == "frontier":
        score = "no published score" if choice.task_score is None else f"task score {choice.task_score:.0f}"
        route = (
            "routed to a hosted frontier model"
            if choice.kind == "hosted"
            else "kept local because no allowed hosted option meets the need — a conflict, stated in the warnings"
        )
        capability = f"Frontier {workflow.task} (threshold {threshold:.0f}): {route}; {choice.model} has {score}."
    elif threshold == 0:
        capability = (
            f"Routine {workflow.task}: any model expected to succeed at least {MIN_SUCCESS:.0%} of the time qualifies; "
            f"{choice.model} is expected to succeed {choice.success:.0%} of the time."
        )
    else:
        score = "no published score" if choice.task_score is None else f"task score {choice.task_score:.0f}"
        capability = (
            f"{workflow.capability.capitalize()} {workflow.task} needs a task score ≥ {threshold:.0f}; "
            f"{choice.model} has {score}."
        )
    return {
        "data_sensitivity": data,
        "iteration_velocity": iteration,
        "latency_budget": latency,
        "cost_at_scale": cost,
        "capability_frontier": capability,
    }


def _per_1k(option: Option | None) -> float | None:
    return (
        None if option is None or option.cost_per_request_usd is None else round(1000 * option.cost_per_request_usd, 4)
    )


def option_json(option: Option) -> dict[str, Any]:
    """The DESIGN shape of a choice or alternative: the option, its predicted figures and its costs."""
    if option.kind == "local":
        choice: dict[str, Any] = {
            "kind": "local",
            "model": option.model,
            "quantization": option.quantization,
            "runtime": option.runtime,
            "memory_required_gb": option.memory_required_gb,
            "basis": option.basis,
        }
    else:
        choice = {"kind": "hosted", "model": option.model, "provider": option.provider, "basis": option.basis}
    return {
        "choice": choice,
        "predicted": {
            "ttft_s": round(option.ttft_s, 3),
            "decode_tps": round(option.decode_tps, 2),
            "decode_tps_interval": [round(option.decode_low, 2), round(option.decode_high, 2)]
            if option.decode_low is not None and option.decode_high is not None
            else None,
            "e2e_s": round(option.e2e_s, 3),
            "reasoning_tokens": round(option.reasoning_tokens),
            "answer_tokens": round(option.answer_tokens),
            "seconds_per_accepted": round(option.seconds_per_accepted, 3),
            "tokens_per_accepted": round(option.tokens_per_accepted, 1),
            "success_probability": round(option.success, 3),
            "success_interval": [option.success_low, option.success_high],
            "label": "measured" if option.basis == "measured" else "predicted",
        },
        "cost": {"usd_per_request": option.cost_per_request_usd, "usd_per_accepted": option.cost_per_accepted},
        "notes": option.notes,
    }


def decision_json(d: Decision, profile: Profile, hw: Hardware) -> dict[str, Any]:
    """One workflow entry of the recommendation JSON contract."""
    power = site_power_w(hw)
    chosen = option_json(d.choice) if d.choice else {"choice": None, "predicted": None}
    return {
        "name": d.workflow.name,
        "decision": d.decision,
        "choice": chosen["choice"],
        "predicted": chosen["predicted"],
        "cost": {
            "local_usd_per_1k_requests": _per_1k(d.best_local),
            "hosted_usd_per_1k_requests": _per_1k(d.best_hosted),
            "break_even_requests_per_day": _round(
                break_even_per_day(d.best_local, d.best_hosted, profile.costs, power)
            ),
            "usd_per_accepted": d.choice.cost_per_accepted if d.choice else None,
            "usd_per_request": d.choice.cost_per_request_usd if d.choice else None,
            "local_reference": _reference(d.best_local),
            "hosted_reference": _reference(d.best_hosted),
        },
        "reasons": d.reasons,
        "alternatives": [
            {**option_json(o)["choice"], "predicted": option_json(o)["predicted"], "cost": option_json(o)["cost"]}
            for o in d.alternatives
        ],
        "warnings": d.warnings,
    }


def _reference(option: Option | None) -> dict[str, Any] | None:
    """Which option a cost figure is about, so a reader can tie the number to a model."""
    if option is None:
        return None
    return {
        "model": option.model,
        "quantization": option.quantization,
        "runtime": option.runtime,
        "provider": option.provider,
        "e2e_s": round(option.e2e_s, 3),
        "basis": option.basis,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value)


def recommend(
    profile: Profile,
    knowledge: Knowledge,
    predictor: SpeedPredictor,
    detected: dict[str, Any],
    calibration: dict[str, Any] | None = None,
    *,
    knowledge_dir: Path | None = None,
) -> dict[str, Any]:
    """The recommendation JSON for every workflow in the profile."""
    directory = knowledge_dir or get_settings().knowledge_dir
    traits = model_traits(directory)
    hw, hw_info = resolve_hardware(profile.hardware, detected, knowledge, calibration)
    price, price_basis = device_price_usd(hw, profile.costs, load_device_prices(directory))
    # Every cost below uses the resolved price (the profile's, the catalog's or the assumed one).
    profile = profile.model_copy(update={"costs": profile.costs.model_copy(update={"hardware_usd": price})})
    usable = hw_info["usable_memory_gb"]
    applies = hw_info["calibration_applies"]
    measured_rows = calibration_rows(calibration, hw, knowledge) if applies else []
    runtimes = dict(RUNTIMES)
    if applies and calibration and calibration.get("backend", {}).get("kind") == "ollama":
        runtimes.update(OLLAMA_RUNTIME)
    speeds = (
        local_speed_table(knowledge, predictor, hw, measured_rows, runtimes=runtimes, usable_gb=usable)
        if hw.memory_bandwidth_gbs
        else {}
    )
    workflows = []
    decisions = []
    for workflow in profile.workflows:
        local, _skipped = local_options(
            workflow,
            knowledge,
            hw,
            profile.costs,
            speeds,
            calibration if applies else None,
            usable_gb=usable,
            traits=traits,
        )
        hosted = hosted_options(workflow, knowledge, network_rtt_ms=profile.costs.network_rtt_ms)
        decision = decide(workflow, local, hosted, profile, hw)
        decisions.append(decision)
        workflows.append(decision_json(decision, profile, hw))
    hw_info["costs"] = profile.costs.model_dump()
    hw_info["cost_basis"] = {
        "hardware_usd": price_basis,
        "power_w": f"{hw.power_w:g} W x {hw.count or 1}"
        if hw.power_w
        else f"assumed {ASSUMED_POWER_W[hw.accelerator or 'cpu']:g} W per device (set hardware.power_w)",
        "utilization_target": f"{profile.costs.utilization_target:g} of the day busy at most when sizing capacity",
        "ops_usd_per_month": profile.costs.ops_usd_per_month,
        "redundancy": profile.costs.redundancy,
    }
    hw_info["calibration"] = calibration.get("run_id") if calibration else None
    return {"hardware": hw_info, "workflows": workflows}
