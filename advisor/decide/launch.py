"""What to launch: the engine, its settings and a copyable command line for a local option.

Context = the workflow's input + output rounded up to CONTEXT_STEP; GPU layers from the memory fit (an option
exists only when every layer fits, so all are offloaded); parallel slots / max sequences from the volume by
Little's law (arrival rate x seconds per request / utilisation target), limited by the KV cache that still fits.
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass

from advisor.decide.costs import DAY_S
from advisor.decide.site import COMPUTE_HEADROOM
from advisor.knowledge import ModelSpec
from advisor.predict import kv_cache_gb
from advisor.schemas import Costs, Hardware, Workflow

CONTEXT_STEP = 1024
MAX_SLOTS = 64  # llama.cpp / Ollama parallel slots beyond this are not a sensible single-process setting
ALL_LAYERS = 999  # llama.cpp reads an -ngl above the layer count as "every layer"


@dataclass(frozen=True)
class Launch:
    """How to start the engine for one option (settings as ordered pairs: the dataclass stays hashable)."""

    engine: str
    command: str
    settings: tuple[tuple[str, str | int | float], ...]

    def as_json(self) -> dict[str, object]:
        return {"engine": self.engine, "command": self.command, "settings": dict(self.settings)}


def launch_context(workflow: Workflow) -> int:
    """Tokens of context one request needs (input + output), rounded up to a multiple of CONTEXT_STEP."""
    need = workflow.input_tokens + workflow.output_tokens
    return max(CONTEXT_STEP, math.ceil(need / CONTEXT_STEP) * CONTEXT_STEP)


def volume_concurrency(workflow: Workflow, seconds_per_request: float, costs: Costs) -> int:
    """Requests in flight at the busy hour: arrival rate x time per request, over the utilisation target."""
    rate = workflow.requests_per_day / DAY_S
    return max(1, math.ceil(rate * seconds_per_request / costs.utilization_target - 1e-9))


def kv_slots(spec: ModelSpec, context: int, required_gb: float, usable_gb: float | None) -> int | None:
    """How many request contexts the KV cache can hold beside the weights (None: shape or memory unknown)."""
    per_slot = kv_cache_gb(spec.layers, spec.kv_heads, spec.head_dim, context)
    if usable_gb is None or not per_slot:
        return None
    spare = usable_gb / (1 + COMPUTE_HEADROOM) - required_gb
    return max(1, 1 + int(spare // per_slot))  # required_gb already holds one request's KV cache


def model_file(spec: ModelSpec, quant: str) -> str:
    return f"{re.sub(r'[^A-Za-z0-9.]+', '-', spec.name).strip('-')}-{quant}.gguf"


def repo_name(spec: ModelSpec) -> str:
    """The model's Hugging Face repository when a source names one, else its name (to be replaced)."""
    for source in spec.sources:
        found = re.search(r"huggingface\.co/([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)", str(source.url))
        if found and not re.search(r"gguf|gptq|awq|bnb|fp8|mlx", found.group(1), re.IGNORECASE):
            return found.group(1)
    return re.sub(r"[^A-Za-z0-9.]+", "-", spec.name).strip("-")


def llama_cpp_launch(
    spec: ModelSpec,
    quant: str,
    workflow: Workflow,
    hw: Hardware,
    *,
    required_gb: float,
    usable_gb: float | None,
    seconds_per_request: float,
    costs: Costs,
) -> Launch:
    """llama-server: the per-slot context times the slots is -c (the server divides it among the slots)."""
    ctx = launch_context(workflow)
    wanted = volume_concurrency(workflow, seconds_per_request, costs)
    fits = kv_slots(spec, ctx, required_gb, usable_gb)
    slots = max(1, min(wanted, MAX_SLOTS, fits if fits is not None else wanted))
    on_gpu = (hw.accelerator or "cpu") != "cpu"
    layers = spec.layers if spec.layers else ALL_LAYERS
    args = ["llama-server", "-m", model_file(spec, quant), "-c", str(ctx * slots), "-ngl", str(layers if on_gpu else 0)]
    args += ["--parallel", str(slots), "-fa", "on"]
    count = hw.count or 1
    if count > 1:
        args += ["--split-mode", "layer", "--tensor-split", ",".join(["1"] * count)]
    settings: list[tuple[str, str | int | float]] = [
        ("model_file", model_file(spec, quant) + " (the GGUF of this model at this quantization)"),
        ("quantization", quant),
        ("context_per_slot", ctx),
        ("context_total", ctx * slots),
        ("gpu_layers", f"all {layers}" if on_gpu and spec.layers else ("all" if on_gpu else 0)),
        (
            "gpu_layers_basis",
            f"memory fit: {required_gb:.1f} GB of {usable_gb:.1f} GB usable" if usable_gb else "memory unknown",
        ),
        ("parallel_slots", slots),
        (
            "parallel_slots_basis",
            f"{wanted} in flight at {workflow.requests_per_day:,.0f}/day x {seconds_per_request:.2f} s per request / "
            f"{costs.utilization_target:g} utilisation" + (f"; the KV cache holds {fits}" if fits is not None else ""),
        ),
    ]
    if count > 1:
        settings.append(("devices", f"{count} (layers split across them)"))
    return Launch("llama.cpp", shlex.join(args), tuple(settings))


def ollama_launch(
    spec: ModelSpec, quant: str, workflow: Workflow, *, seconds_per_request: float, costs: Costs
) -> Launch:
    """Ollama: context and parallel requests are server settings; the tag is the user's to confirm."""
    ctx = launch_context(workflow)
    slots = min(MAX_SLOTS, volume_concurrency(workflow, seconds_per_request, costs))
    tag = f"{spec.id}:{quant.lower()}"
    args = ["env", f"OLLAMA_CONTEXT_LENGTH={ctx}", f"OLLAMA_NUM_PARALLEL={slots}", "ollama", "serve"]
    settings: tuple[tuple[str, str | int | float], ...] = (
        ("then_run", shlex.join(["ollama", "run", tag])),
        ("tag", f"{tag} (check the library's tag for this model and quantization)"),
        ("quantization", quant),
        ("num_ctx", ctx),
        ("num_parallel", slots),
    )
    return Launch("ollama", shlex.join(args), settings)


def mlx_launch(spec: ModelSpec, quant: str, workflow: Workflow) -> Launch:
    """mlx-lm's OpenAI-compatible server; MLX quantizes per repository (mlx-community's naming)."""
    bits = quant.removeprefix("MLX-")
    repo = f"mlx-community/{repo_name(spec).split('/')[-1]}-{bits}"
    ctx = launch_context(workflow)
    args = ["mlx_lm.server", "--model", repo, "--port", "8080"]
    settings: tuple[tuple[str, str | int | float], ...] = (
        ("model", f"{repo} (mlx-community naming; check the repository exists at this quantization)"),
        ("quantization", quant),
        ("context", ctx),
        ("context_basis", "mlx-lm grows its KV cache with the prompt; no context flag is needed"),
    )
    return Launch("mlx", shlex.join(args), settings)


def vllm_launch(
    spec: ModelSpec, quant: str, workflow: Workflow, hw: Hardware, *, max_num_seqs: int, engine: str = "vllm"
) -> Launch:
    """vLLM serve: context, tensor parallel over the rig's devices, max sequences from the volume."""
    ctx = launch_context(workflow)
    repo = repo_name(spec)
    args = ["vllm", "serve", repo if quant != "AWQ-4bit" else f"{repo}-AWQ", "--max-model-len", str(ctx)]
    args += ["--tensor-parallel-size", str(hw.count or 1), "--max-num-seqs", str(max_num_seqs)]
    if quant == "FP8":
        args += ["--quantization", "fp8"]
    elif quant == "AWQ-4bit":
        args += ["--quantization", "awq"]
    args += ["--gpu-memory-utilization", "0.90"]
    settings: tuple[tuple[str, str | int | float], ...] = (
        ("model", f"{args[2]} (the Hugging Face repository of {spec.name}; an AWQ build for AWQ)"),
        ("quantization", quant),
        ("max_model_len", ctx),
        ("tensor_parallel_size", hw.count or 1),
        ("max_num_seqs", max_num_seqs),
    )
    return Launch(engine, shlex.join(args), settings)
