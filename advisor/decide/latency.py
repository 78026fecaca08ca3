"""Time to an answer: TTFT at the workflow's prompt length, reasoning tokens per model, end to end."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

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


@dataclass(frozen=True)
class HostedMeasurement:
    """A hosted endpoint the user calibrated through the OpenAI-compatible backend (their own key)."""

    run_id: str
    date: str
    url: str
    model: str
    ttft_s: float  # median TTFT at probe_tokens, measured from here (network round trip included)
    probe_tokens: int
    prefill_tps: float | None  # measured prompt tokens / TTFT on the longest prefill probe
    decode_tps: float | None

    def where(self) -> str:
        return f"calibration run {self.run_id} on {self.date}, {self.url}, model {self.model}"


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", name.lower()).strip("-")


def _offer_names(row: dict[str, Any]) -> set[str]:
    return {n for n in (_norm(row["id"]), _norm(row["id"].split("/")[-1]), _norm(row.get("model") or "")) if n}


def _is_remote(url: str) -> bool:
    """A base URL that reaches a provider: not loopback, not a private or link-local address, not localhost."""
    host = (urlsplit(url).hostname or "").lower()
    if not host or host == "localhost" or host.endswith(".localhost") or host.endswith(".local"):
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return True  # a DNS name
    return not (address.is_loopback or address.is_private or address.is_link_local or address.is_unspecified)


def measured_hosted(
    row: dict[str, Any], calibration: dict[str, Any] | None, *, offers: list[dict[str, Any]] | None = None
) -> HostedMeasurement | None:
    """This offer's own measurement: an `openai` calibration of a non-loopback base URL whose model is the offer's.

    The model name must equal the offer's id, its last part or its model name (case and punctuation aside); when
    several offers share a model (gpt-oss-120b at two providers), the provider must appear in the URL's host.
    The report's backend records the base URL as `url` (or `base_url`); a report without one cannot be placed.
    """
    backend = (calibration or {}).get("backend") or {}
    url = str(backend.get("url") or backend.get("base_url") or "")
    if backend.get("kind") != "openai" or not url or not _is_remote(url):
        return None
    names = _offer_names(row)
    host = (urlsplit(url).hostname or "").lower()
    shared = any(o["id"] != row["id"] and _offer_names(o) & names for o in offers or [])
    for model in (calibration or {}).get("models", []):
        name = _norm(str(model.get("model", "")).split("/")[-1])
        full = _norm(str(model.get("model", "")))
        if name not in names and full not in names:
            continue
        if shared and (row.get("provider") or "").lower() not in host:
            continue
        speed = model.get("speed", {})
        probes = [v for v in speed.values() if (v.get("ttft_s") or {}).get("median") and v.get("prompt_tokens")]
        if not probes:
            continue
        longest = max(probes, key=lambda v: v["prompt_tokens"])
        prefill = (longest.get("prefill_tps") or {}).get("median")
        decode = next(
            (v["decode_tps"]["median"] for v in speed.values() if (v.get("decode_tps") or {}).get("median")), None
        )
        return HostedMeasurement(
            run_id=str((calibration or {}).get("run_id", "?")),
            date=str((calibration or {}).get("created_at", "?"))[:10],
            url=url,
            model=str(model["model"]),
            ttft_s=float(longest["ttft_s"]["median"]),
            probe_tokens=int(longest["prompt_tokens"]),
            prefill_tps=float(prefill) if prefill else None,
            decode_tps=float(decode) if decode else None,
        )
    return None


def hosted_ttft(
    row: dict[str, Any], workflow: Workflow, network_rtt_ms: float, *, measured: HostedMeasurement | None = None
) -> Figure:
    """Network round trip + the provider's TTFT at its reference prompt + prefill of the tokens beyond it.

    A calibrated endpoint replaces all three: its measured TTFT (taken from here, so the round trip is in it) at
    the probe's prompt length, plus the tokens beyond it at its measured prefill rate (else the assumed rate).
    """
    if measured is not None:
        extra = max(0, workflow.input_tokens - measured.probe_tokens)
        rate = measured.prefill_tps or ASSUMED_HOSTED_PREFILL_TPS
        basis = f"measured {measured.ttft_s:.2f} s at {measured.probe_tokens} prompt tokens ({measured.where()})"
        if extra:
            basis += (
                f" + {extra} prompt tokens beyond it at the {'measured' if measured.prefill_tps else 'assumed'} "
                f"{rate:.0f} tok/s prefill"
            )
        return Figure(measured.ttft_s + extra / rate, "measured", basis)
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
