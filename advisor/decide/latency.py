"""Time to an answer: TTFT at the workflow's prompt length, reasoning tokens per model, end to end."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from advisor.decide.catalog import DecisionCatalog
from advisor.schemas import Workflow

# Hosted figures without a published one; each use is labelled "assumed" in the output.
ASSUMED_HOSTED_TTFT_S = 1.0
ASSUMED_HOSTED_TPS = 60.0
# Published hosted TTFTs (Artificial Analysis style) are medians at a standard prompt; a longer prompt adds
# prefill at an assumed provider rate. Both are assumptions, named in the output where used.
HOSTED_REFERENCE_PROMPT_TOKENS = 1000
ASSUMED_HOSTED_PREFILL_TPS = 5000.0


@dataclass(frozen=True)
class Figure:
    """A number with its DESIGN label (measured | calibrated | predicted | published | assumed | imputed)."""

    value: float
    label: str
    basis: str


def wants_thinking(workflow: Workflow) -> bool:
    """Reasoning tasks run with thinking on where a model makes it optional.

    Thinking follows the task, not the capability tier: a higher need then only narrows which options qualify.
    """
    return workflow.task == "reasoning"


def reasoning_tokens(
    model_id: str,
    mode: str,
    catalog: DecisionCatalog,
    workflow: Workflow,
    *,
    hosted: bool,
    typical: int | None = None,
) -> Figure:
    """Thinking tokens per attempt: the model's sourced typical count, else its class's sourced figure.

    Optional thinking is on for reasoning work (the published reasoning scores were taken with it on).
    """
    if not (mode in ("always", "yes") or (mode == "optional" and wants_thinking(workflow))):
        return Figure(0.0, "published", "no thinking for this model or workflow")
    if typical:
        return Figure(float(typical), "published", "the model's typical thinking tokens (models.yaml)")
    found = catalog.reasoning_tokens(model_id, hosted=hosted)
    if found is None:
        return Figure(float(workflow.output_tokens), "assumed", "no sourced count: assumed equal to the answer")
    tokens, source = found
    own = catalog.trait(model_id, "reasoning_tokens") is not None
    what = "its sourced typical count" if own else f"the {'hosted' if hosted else 'open-weight'} class figure"
    return Figure(
        tokens, "published", f"{tokens:.0f} thinking tokens: {what} ({source.source_url}, {source.source_date})"
    )


def local_ttft(workflow: Workflow, pred: dict[str, Any], label: str) -> Figure:
    """The predictor's TTFT at the prompt length when it gives one, else prompt tokens / predicted prefill rate."""
    if pred.get("pred_ttft_ms"):
        interval = (
            f" (80%: {pred['pred_ttft_low'] / 1000:.2f}-{pred['pred_ttft_high'] / 1000:.2f} s)"
            if pred.get("pred_ttft_low") and pred.get("pred_ttft_high")
            else ""
        )
        return Figure(
            pred["pred_ttft_ms"] / 1000,
            label,
            f"the predictor's TTFT at {workflow.input_tokens} prompt tokens (overhead + prefill at that length){interval}",
        )
    return Figure(
        workflow.input_tokens / pred["pred_pp_tok_s"],
        label,
        f"{workflow.input_tokens} prompt tokens at {pred['pred_pp_tok_s']:.0f} tok/s prefill",
    )


def hosted_ttft(row: dict[str, Any], workflow: Workflow, network_rtt_ms: float) -> Figure:
    """Network round trip + the provider's TTFT at its reference prompt + prefill of the tokens beyond it."""
    published = row.get("typical_ttft_s")
    base = published or ASSUMED_HOSTED_TTFT_S
    extra_tokens = max(0, workflow.input_tokens - HOSTED_REFERENCE_PROMPT_TOKENS)
    prefill = extra_tokens / ASSUMED_HOSTED_PREFILL_TPS
    value = network_rtt_ms / 1000 + base + prefill
    parts = [
        f"{network_rtt_ms:g} ms network round trip (costs.network_rtt_ms)",
        f"{'published' if published else 'assumed'} TTFT {base:g} s incl. queueing"
        + (f" ({row.get('source_url')})" if published else ""),
    ]
    if extra_tokens:
        parts.append(
            f"{extra_tokens} prompt tokens beyond the {HOSTED_REFERENCE_PROMPT_TOKENS}-token reference at an assumed "
            f"{ASSUMED_HOSTED_PREFILL_TPS:g} tok/s"
        )
    label = "published" if published and not extra_tokens else "assumed"
    return Figure(value, label, " + ".join(parts))
