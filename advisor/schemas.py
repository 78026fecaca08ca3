"""Pydantic models for everything that crosses an edge: profile YAML, measurements, reports."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

Accelerator = Literal["apple", "nvidia", "amd", "intel", "cpu"]
Sensitivity = Literal["public", "internal", "confidential", "regulated"]
Iteration = Literal["prototype", "evolving", "stable"]
Capability = Literal["routine", "advanced", "frontier"]
Task = Literal[
    "classification",
    "extraction",
    "summarization",
    "drafting",
    "coding",
    "autocomplete",  # inline fill-in-the-middle completion: needs a FIM-trained code model
    "reasoning",
    "chat",
    "tool-calling",
]
Interconnect = Literal["pcie", "nvlink", "none"]


class Strict(BaseModel):
    """Unknown keys are errors: a typo in a profile must not pass silently."""

    model_config = ConfigDict(extra="forbid")


class Hardware(Strict):
    """The machine the decision is for; every field can override detection."""

    name: str | None = None
    accelerator: Accelerator | None = None
    memory_gb: float | None = Field(
        default=None,
        gt=0,
        le=4096,
        description="per device: VRAM; on Apple the unified memory as sold (the GPU-usable share is derived)",
    )
    memory_bandwidth_gbs: float | None = Field(default=None, gt=0, le=20000)
    system_ram_gb: float | None = Field(default=None, gt=0, le=65536)
    power_w: float | None = Field(default=None, gt=0, le=20000)
    fp16_tflops: float | None = Field(default=None, gt=0, le=100000)
    count: int | None = Field(default=None, ge=1, le=64, description="identical accelerators; memory is per device")
    interconnect: Interconnect | None = Field(default=None, description="how the devices talk (pcie | nvlink | none)")
    gpu_memory_limit_gb: float | None = Field(
        default=None, gt=0, le=4096, description="Apple: the GPU-wired limit if raised (iogpu.wired_limit_mb)"
    )


class Costs(Strict):
    """Local cost assumptions; defaults are documented in the README and labelled "assumed" where used."""

    electricity_usd_per_kwh: float = Field(default=0.15, ge=0, le=5)
    # None: the catalog's sourced price for the device (knowledge/device_prices.csv), else an assumed default.
    hardware_usd: float | None = Field(default=None, ge=0, le=10_000_000)
    amortization_months: float = Field(default=36.0, gt=0, le=240)
    hardware_sunk: bool = False  # true when the machine is already bought for other reasons
    # Share of the day a deployment may be busy (the rest is peak margin) when sizing capacity.
    utilization_target: float = Field(default=0.6, gt=0, le=1)
    network_rtt_ms: float = Field(default=80.0, ge=0, le=10_000)  # round trip to hosted APIs from here
    ops_usd_per_month: float = Field(default=0.0, ge=0, le=10_000_000)  # staff, support, monitoring (local)
    redundancy: bool = False  # true: production needs a second machine for uptime; its cost is counted


class HostedPolicy(Strict):
    """Which hosted providers are approved for confidential data (zero retention, private endpoint)."""

    approved_for_confidential: list[str] = Field(default_factory=list)


class Workflow(Strict):
    """One workflow and its answers to the five decision-lens questions."""

    name: str = Field(min_length=1, max_length=200)
    task: Task = "chat"
    data_sensitivity: Sensitivity = "internal"
    iteration: Iteration = "evolving"
    latency_budget_s: float = Field(default=10.0, gt=0, le=86400)
    interactive: bool = True
    requests_per_day: float = Field(default=100.0, ge=0, le=1e9)
    input_tokens: int = Field(default=500, ge=1, le=10_000_000)
    output_tokens: int = Field(default=200, ge=1, le=1_000_000)
    capability: Capability = "routine"
    # A fixed system prompt / few-shot prefix shared by every request: billed at a provider's cached-input rate.
    cached_prefix_tokens: int = Field(default=0, ge=0, le=10_000_000)
    batch: bool = False  # requests can wait for a provider's batch API (hours): only with interactive: false

    @field_validator("cached_prefix_tokens", mode="before")
    @classmethod
    def _whole_tokens(cls, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, int):
            raise PydanticCustomError(
                "prefix_type", "must be a whole number of tokens (the prompt prefix every request shares; 0 when none)"
            )
        return v

    @field_validator("cached_prefix_tokens")
    @classmethod
    def _prefix_in_prompt(cls, v: int, info: ValidationInfo) -> int:
        tokens = info.data.get("input_tokens")
        if tokens is not None and v > tokens:
            raise PydanticCustomError(
                "prefix_too_long",
                "cannot exceed input_tokens ({tokens}): the prefix is part of the prompt; lower it or raise input_tokens",
                {"tokens": tokens},
            )
        return v

    @field_validator("batch", mode="before")
    @classmethod
    def _batch_flag(cls, v: Any) -> Any:
        if not isinstance(v, bool):
            raise PydanticCustomError(
                "batch_type", "must be true or false (true: requests can wait for a provider's batch API)"
            )
        return v

    @field_validator("batch")
    @classmethod
    def _batch_waits(cls, v: bool, info: ValidationInfo) -> bool:
        if v and info.data.get("interactive", True):
            raise PydanticCustomError(
                "batch_interactive",
                "batch: true needs interactive: false (a batch API answers within hours, typically up to 24 h, so "
                "nobody can be waiting); set interactive: false or remove batch",
            )
        return v


class Profile(Strict):
    """The CLI's input and the app's save/load format."""

    hardware: Hardware | None = None
    costs: Costs = Field(default_factory=Costs)
    hosted: HostedPolicy = Field(default_factory=HostedPolicy)
    calibration: str | None = None
    workflows: list[Workflow] = Field(min_length=1)

    @field_validator("workflows")
    @classmethod
    def _unique_names(cls, workflows: list[Workflow]) -> list[Workflow]:
        names = [w.name for w in workflows]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"workflow names must be unique; repeated: {', '.join(dupes)}")
        return workflows


# --- the recommendation JSON (DESIGN "Recommendation JSON"): validated at the edge; extend, never rename ------

Label = Literal["measured", "calibrated", "predicted", "published", "assumed", "imputed"]
Decision = Literal["local", "hosted", "hybrid", "local-with-gap", "hosted-with-gap", "hybrid-with-gap", "none"]


class Open(BaseModel):
    """Contract models keep every key they do not name: new fields are added, never dropped."""

    model_config = ConfigDict(extra="allow")


class RecommendedOption(Open):
    kind: Literal["local", "hosted", "hybrid"]
    model: str
    basis: str
    label: Label | None = None


class PredictedFigures(Open):
    ttft_s: float
    decode_tps: float
    seconds_per_accepted: float
    tokens_per_accepted: float
    success_probability: float = Field(ge=0, le=1)
    label: Literal["measured", "predicted"]


class CostFigures(Open):
    local_usd_per_1k_requests: float | None
    hosted_usd_per_1k_requests: float | None
    break_even_requests_per_day: float | None


class WarningDetail(Open):
    text: str
    field: str


class Alternative(RecommendedOption):
    predicted: PredictedFigures
    cost: dict[str, float | None]


class WorkflowRecommendation(Open):
    name: str
    decision: Decision
    choice: RecommendedOption | None
    predicted: PredictedFigures | None
    cost: CostFigures
    reasons: dict[str, str]
    alternatives: list[Alternative]
    warnings: list[str]
    warnings_detail: list[WarningDetail] = Field(default_factory=list)
    # Local, local-with-gap and hybrid decisions only: what running it here still leaves to the team.
    leaves_to_team: list[str] | None = None


class Recommendation(Open):
    """What `recommend --json` writes: the hardware used and one entry per workflow."""

    hardware: dict[str, Any]
    workflows: list[WorkflowRecommendation]


class Spread(BaseModel):
    """A median with its spread over repetitions."""

    median: float
    p25: float
    p75: float
    min: float
    max: float
    n: int
    spread_pct: float  # (p75 - p25) / median, in percent


class Measurement(BaseModel):
    """One measured request: a speed probe or a compliance task attempt. Always labelled measured."""

    label: Literal["measured"] = "measured"
    run_id: str
    kind: Literal["speed", "task"]
    probe: str  # speed probe name or task id
    category: str
    repetition: int
    backend: str
    backend_version: str
    model: str
    model_identity: str
    quantization: str | None
    context_size: int | None
    hardware_fingerprint: str
    device: str | None = None  # what ran the model (cpu, metal, cuda...): a CPU row never shifts GPU predictions
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None
    answer_tokens: int | None = None
    token_source: str | None = None
    ttft_s: float | None = None
    ttfa_s: float | None = None
    prefill_tps: float | None = None
    prefill_source: str | None = None
    decode_tps: float | None = None
    decode_source: str | None = None
    counter_decode_tps: float | None = None  # the runtime's own figure, kept beside ours
    tpot_ms: float | None = None
    itl_p50_ms: float | None = None
    itl_p95_ms: float | None = None
    e2e_s: float | None = None
    success: bool | None = None
    timed_out: bool = False
    # How the stream ended: complete | truncated | malformed | error | timed_out. Only complete streams enter
    # the speed medians; the others are kept, labelled, for the record.
    stream_status: str = "complete"
    malformed_chunks: int = 0
    retries: int = 0
    detail: str | None = None
    error: str | None = None


def format_validation_error(exc: ValidationError, *, source: str) -> str:
    """Every invalid field at once, each with its path, value and what is allowed."""
    lines = [f"{source}: {exc.error_count()} invalid field(s):"]
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"]) or "(top level)"
        value = err.get("input")
        shown = "" if isinstance(value, (dict, list)) else f" (got {value!r})"
        message = err["msg"]
        if err["type"] == "literal_error":
            message = "must be one of " + err["ctx"]["expected"]
        elif err["type"] == "extra_forbidden":
            message = "unknown field; remove it or check its spelling"
        elif err["type"] == "missing":
            message = "required field is missing"
        lines.append(f"  - {path}: {message}{shown}")
    return "\n".join(lines)
