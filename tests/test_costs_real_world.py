"""Issue 15, the real world's prices: catalog device prices, long-context tiers, cached prefixes, batch discounts,
measured hosted TTFT. Expected figures are computed here from the CSVs, never by the code under test."""

from __future__ import annotations

import csv
from typing import Any

import pytest

from advisor.decide.capability import CapabilityScale
from advisor.decide.catalog import load_catalog
from advisor.decide.costs import Site
from advisor.decide.options import Context, Option, hosted_options
from advisor.errors import InputError
from advisor.knowledge import Knowledge
from advisor.predict import SpeedPredictor
from advisor.profiles import parse_profile
from advisor.recommend import recommend
from advisor.schemas import Costs, Workflow
from advisor.settings import KNOWLEDGE_DIR

DETECTED_CPU = {
    "hardware": {"name": "Test CPU", "accelerator": "cpu", "memory_gb": 24.0, "system_ram_gb": 32.0},
    "how": {},
    "notes": [],
    "fingerprint": "hw-test",
}


def csv_rows(name: str) -> list[dict[str, str]]:
    with (KNOWLEDGE_DIR / name).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def hosted_row(offer: str) -> dict[str, str]:
    return next(r for r in csv_rows("hosted.csv") if r["id"] == offer)


def context(workflow: Workflow, knowledge: Knowledge, *, rtt_ms: float = 0.0) -> Context:
    return Context(
        workflow,
        knowledge,
        CapabilityScale(knowledge),
        load_catalog(KNOWLEDGE_DIR),
        Site(Costs(), 2500.0, 450.0),
        24.0,
        rtt_ms,
    )


def offers(workflow: Workflow, knowledge: Knowledge, **kwargs: Any) -> dict[str, Option]:
    return {o.model: o for o in hosted_options(context(workflow, knowledge), **kwargs)[0]}


def expected_usd(input_tokens: int, output_tokens: float, in_rate: float, out_rate: float) -> float:
    return (input_tokens * in_rate + output_tokens * out_rate) / 1e6


# --- device prices ----------------------------------------------------------------------------------------------


def test_an_h100_profile_without_a_price_uses_the_sourced_price(
    knowledge: Knowledge, predictor: SpeedPredictor
) -> None:
    sourced = {r["device"]: float(r["price_usd"]) for r in csv_rows("device_prices.csv")}
    profile = parse_profile("hardware: {name: NVIDIA H100 SXM}\nworkflows: [{name: w}]\n", source="h100")
    hardware = recommend(profile, knowledge, predictor, DETECTED_CPU)["hardware"]
    assert hardware["costs"]["hardware_usd"] == sourced["H100"]
    assert hardware["cost_basis"]["hardware_usd"].startswith("published")
    # The catalog's power (H100 SXM 700 W in hardware.csv) is used and labelled published, not assumed.
    assert hardware["cost_basis"]["power_w"].startswith("published: 700 W")


def test_every_priced_device_resolves_to_its_own_sourced_row(knowledge: Knowledge) -> None:
    catalog = load_catalog(KNOWLEDGE_DIR)
    rows = csv_rows("device_prices.csv")
    assert len(rows) >= 30
    types = {r["name"]: r["type"] for r in csv_rows("hardware.csv")}
    priced_kinds = {types[r["device"]] for r in rows if r["device"] in types}
    assert {"nvidia", "amd", "apple", "intel"} <= priced_kinds
    for row in rows:
        found = catalog.price_for(row["device"])
        assert found is not None and found.device == row["device"], row["device"]
        assert found.price_usd == float(row["price_usd"])
        assert row["source_url"].startswith("https://") and row["source_date"] and row["note"]
        assert knowledge.hardware_named(row["device"]) is not None, f"{row['device']} is not a catalog device"


def test_a_priced_gpu_is_planned_at_its_price(knowledge: Knowledge, predictor: SpeedPredictor) -> None:
    price = next(float(r["price_usd"]) for r in csv_rows("device_prices.csv") if r["device"] == "RTX 5090")
    profile = parse_profile("hardware: {name: RTX 5090}\nworkflows: [{name: w}]\n", source="5090")
    hardware = recommend(profile, knowledge, predictor, DETECTED_CPU)["hardware"]
    assert hardware["costs"]["hardware_usd"] == price
    assert "RTX 5090" in hardware["cost_basis"]["hardware_usd"]


# --- long-context tiers ---------------------------------------------------------------------------------------


def test_a_prompt_above_the_threshold_pays_the_long_context_tier(knowledge: Knowledge) -> None:
    row = hosted_row("openai/gpt-6.1-sol")
    threshold = float(row["long_context_threshold_k"]) * 1000
    long_in, long_out = float(row["long_input_usd_per_m"]), float(row["long_output_usd_per_m"])
    base_in, base_out = float(row["input_usd_per_m"]), float(row["output_usd_per_m"])
    assert long_in > base_in and long_out > base_out
    above = Workflow(name="w", input_tokens=int(threshold) + 10_000, output_tokens=500, latency_budget_s=3600)
    below = Workflow(name="w", input_tokens=int(threshold) - 10_000, output_tokens=500, latency_budget_s=3600)
    long_opt, short_opt = offers(above, knowledge)[row["id"]], offers(below, knowledge)[row["id"]]
    assert long_opt.hosted_usd == pytest.approx(expected_usd(above.input_tokens, long_opt.tokens, long_in, long_out))
    assert short_opt.hosted_usd == pytest.approx(expected_usd(below.input_tokens, short_opt.tokens, base_in, base_out))
    assert long_opt.price_basis is not None and "long-context tier" in long_opt.price_basis
    assert short_opt.price_basis is not None and "long-context" not in short_opt.price_basis


# --- prompt caching -------------------------------------------------------------------------------------------


def test_a_cached_prefix_is_billed_at_the_published_cached_rate(knowledge: Knowledge) -> None:
    row = hosted_row("openai/gpt-4.1")
    base_in, cached = float(row["input_usd_per_m"]), float(row["cached_input_usd_per_m"])
    plain = Workflow(name="w", input_tokens=3000, output_tokens=200)
    prefixed = plain.model_copy(update={"cached_prefix_tokens": 2000})
    before, after = offers(plain, knowledge)[row["id"]], offers(prefixed, knowledge)[row["id"]]
    assert before.hosted_usd - after.hosted_usd == pytest.approx(2000 * (base_in - cached) / 1e6)
    assert after.price_basis is not None and f"cached prefix billed at ${cached:g}/M, published" in after.price_basis
    # An offer with no published cached rate is billed as before, and says so.
    nocache = next(r["id"] for r in csv_rows("hosted.csv") if r["input_usd_per_m"] and not r["cached_input_usd_per_m"])
    a, b = offers(plain, knowledge)[nocache], offers(prefixed, knowledge)[nocache]
    assert a.hosted_usd == pytest.approx(b.hosted_usd)
    assert b.price_basis is not None and "no published cached-input rate" in b.price_basis


# --- batch discounts ------------------------------------------------------------------------------------------


def test_batch_applies_the_published_discount(knowledge: Knowledge) -> None:
    row = hosted_row("openai/gpt-4.1")
    discount = float(row["batch_discount_pct"])
    online = Workflow(name="w", interactive=False, latency_budget_s=86_400)
    batched = online.model_copy(update={"batch": True})
    a, b = offers(online, knowledge)[row["id"]], offers(batched, knowledge)[row["id"]]
    assert b.hosted_usd == pytest.approx(a.hosted_usd * (1 - discount / 100))
    assert b.price_basis is not None and f"batch API {discount:g}% off, published" in b.price_basis


def test_batch_with_an_interactive_workflow_is_rejected_naming_the_field() -> None:
    with pytest.raises(InputError) as caught:
        parse_profile("workflows: [{name: w, batch: true, interactive: true}]\n", source="p.yaml")
    assert "workflows.0.batch" in str(caught.value) and "interactive: false" in str(caught.value)
    with pytest.raises(InputError, match=r"workflows\.0\.cached_prefix_tokens"):
        parse_profile("workflows: [{name: w, cached_prefix_tokens: lots}]\n", source="p.yaml")
    with pytest.raises(InputError, match=r"workflows\.0\.cached_prefix_tokens: cannot exceed input_tokens"):
        parse_profile("workflows: [{name: w, input_tokens: 100, cached_prefix_tokens: 200}]\n", source="p.yaml")
    ok = parse_profile("workflows: [{name: w, batch: true, interactive: false}]\n", source="p.yaml")
    assert ok.workflows[0].batch and ok.workflows[0].cached_prefix_tokens == 0


# --- hosted latency -------------------------------------------------------------------------------------------


def calibration(url: str, model: str = "gpt-5-mini") -> dict[str, Any]:
    return {
        "schema": "decision-lens/calibration/v1",
        "run_id": "run-hosted-1",
        "created_at": "2026-11-30T10:00:00+00:00",
        "backend": {"kind": "openai", "version": "1", "url": url},
        "models": [
            {
                "model": model,
                "speed": {
                    "prefill-long": {
                        "ttft_s": {"median": 0.42},
                        "prefill_tps": {"median": 4000.0},
                        "prompt_tokens": 2000,
                    },
                    "decode-short": {"ttft_s": {"median": 0.3}, "decode_tps": {"median": 95.0}, "prompt_tokens": 50},
                },
            }
        ],
    }


def test_a_calibrated_hosted_endpoint_shows_its_measured_ttft(knowledge: Knowledge) -> None:
    workflow = Workflow(name="w", input_tokens=6000, output_tokens=200)
    published = offers(workflow, knowledge)["openai/gpt-5-mini"]
    measured = offers(workflow, knowledge, calibration=calibration("https://api.openai.com/v1"))["openai/gpt-5-mini"]
    assert measured.ttft.label == "measured" and "2026-11-30" in measured.ttft.basis
    assert measured.ttft_s == pytest.approx(0.42 + (6000 - 2000) / 4000.0)
    assert measured.ttft_s != pytest.approx(published.ttft_s)
    assert measured.decode_tps == 95.0 and measured.decode_label == "measured"
    # Loopback (a local server) is not the provider: the published figure stays.
    local = offers(workflow, knowledge, calibration=calibration("http://127.0.0.1:8080/v1"))["openai/gpt-5-mini"]
    assert local.ttft.label != "measured" and local.ttft_s == pytest.approx(published.ttft_s)


def test_hosted_ttft_grows_with_the_prompt(knowledge: Knowledge) -> None:
    short = offers(Workflow(name="w", input_tokens=300), knowledge)
    long = offers(Workflow(name="w", input_tokens=30_000), knowledge)
    assert short and all(long[k].ttft_s > short[k].ttft_s for k in short)


def test_a_report_records_the_endpoint_without_credentials() -> None:
    from advisor.calibrate import _public_url

    class Backend:
        base_url = "https://user:secret@api.example.com:8443/v1?key=abc"

    assert _public_url(Backend()) == "https://api.example.com:8443/v1"
    assert _public_url(object()) is None
