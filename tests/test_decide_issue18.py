"""Issue 18: what local leaves to the team, the same model on two runtimes, new catalog models, diffusion models."""

from __future__ import annotations

from typing import Any

from advisor.decide.catalog import load_catalog
from advisor.knowledge import Knowledge, load_knowledge
from advisor.predict import SpeedPredictor
from advisor.profiles import parse_profile
from advisor.recommend import recommend
from advisor.report import markdown_record
from advisor.schemas import Profile
from advisor.settings import BENCHMARKS_DIR, KNOWLEDGE_DIR

DETECTED_CPU = {
    "hardware": {"name": "Test CPU", "accelerator": "cpu", "memory_gb": 24.0, "system_ram_gb": 32.0},
    "how": {},
    "notes": [],
    "fingerprint": "hw-test",
}


def run(profile: dict[str, Any], knowledge: Knowledge, predictor: SpeedPredictor) -> dict[str, Any]:
    return recommend(Profile.model_validate(profile), knowledge, predictor, DETECTED_CPU)


def workflow(**fields: Any) -> dict[str, Any]:
    return {
        "name": "w",
        "task": "chat",
        "data_sensitivity": "internal",
        "iteration": "evolving",
        "latency_budget_s": 10,
        "interactive": True,
        "requests_per_day": 500,
        "input_tokens": 500,
        "output_tokens": 200,
        "capability": "routine",
        **fields,
    }


RTX4090 = {"name": "RTX 4090", "accelerator": "nvidia", "memory_gb": 24, "memory_bandwidth_gbs": 1008}
M4_PRO = {"name": "Apple M4 Pro", "accelerator": "apple", "memory_gb": 64}


# --- 1. what local does not solve --------------------------------------------------------------------------


def test_local_choices_list_what_they_leave_to_the_team(knowledge: Knowledge, predictor: SpeedPredictor) -> None:
    result = run(
        {"hardware": RTX4090, "workflows": [workflow(data_sensitivity="regulated", iteration="stable")]},
        knowledge,
        predictor,
    )
    entry = result["workflows"][0]
    assert entry["decision"].startswith("local")
    leaves = entry["leaves_to_team"]
    text = " ".join(leaves)
    assert "SOC 2" in text and "ISO 27001" in text and "retention" in text
    assert entry["choice"]["model"] in text  # who approves *this* model
    assert "costs.redundancy is off" in text and "suggested for stable production work" in text
    assert "support" in text.lower() and "updates" in text.lower()
    record = markdown_record(result)
    assert "What local leaves to the team:" in record


def test_redundancy_on_is_said_to_be_counted(knowledge: Knowledge, predictor: SpeedPredictor) -> None:
    base = {"hardware": RTX4090, "workflows": [workflow(data_sensitivity="regulated")]}
    off = run(base, knowledge, predictor)["workflows"][0]
    on = run({**base, "costs": {"redundancy": True}}, knowledge, predictor)["workflows"][0]
    assert any("costs.redundancy is on" in x and "counted" in x for x in on["leaves_to_team"])
    assert on["cost"]["local_usd_per_1k_requests"] > off["cost"]["local_usd_per_1k_requests"]


def test_a_frontier_gap_is_stated_with_its_size(knowledge: Knowledge, predictor: SpeedPredictor) -> None:
    path = BENCHMARKS_DIR / "profiles" / "laptop-regulated-frontier.yaml"
    entry = recommend(parse_profile(path.read_text(), source=str(path)), knowledge, predictor, DETECTED_CPU)[
        "workflows"
    ][0]
    assert entry["decision"] == "local-with-gap"
    gap = next(x for x in entry["leaves_to_team"] if x.startswith("Frontier capability gap"))
    assert f"{entry['capability']['shortfall']:.0f} points short" in gap


def test_hosted_choices_carry_no_leaves(knowledge: Knowledge, predictor: SpeedPredictor) -> None:
    path = BENCHMARKS_DIR / "profiles" / "frontier-reasoning.yaml"
    entry = recommend(parse_profile(path.read_text(), source=str(path)), knowledge, predictor, DETECTED_CPU)[
        "workflows"
    ][0]
    assert entry["decision"].startswith("hosted")
    assert "leaves_to_team" not in entry


# --- 2. the same model on two runtimes ----------------------------------------------------------------------


def test_apple_shows_llama_cpp_ahead_of_ollama_without_an_ollama_calibration(
    knowledge: Knowledge, predictor: SpeedPredictor
) -> None:
    """SEEDS §2: Ollama consistently slower than llama.cpp on Apple Silicon — from sourced paired measurements."""
    path = BENCHMARKS_DIR / "profiles" / "judge-panel-m4-pro.yaml"
    result = recommend(parse_profile(path.read_text(), source=str(path)), knowledge, predictor, DETECTED_CPU)
    entry = result["workflows"][0]
    rows = {r["runtime"]: r for r in entry["choice"]["runtime_comparison"]}
    assert set(rows) == {"llama.cpp", "ollama", "mlx"}  # issue 14: MLX (mlx-lm) is a candidate on Apple
    assert rows["llama.cpp"]["decode_tps"] > rows["ollama"]["decode_tps"]
    assert rows["llama.cpp"]["seconds_per_accepted"] < rows["ollama"]["seconds_per_accepted"]
    # Ollama and MLX: llama.cpp's figure times the sourced paired ratio (knowledge/runtime_pairs.csv, issue 18 part 3)
    assert rows["llama.cpp"]["label"] == "predicted"
    assert rows["ollama"]["label"] == rows["mlx"]["label"] == "published"
    assert entry["choice"]["runtime"] in ("llama.cpp", "mlx")  # Ollama is compared, never silently made a candidate
    fastest = min(rows.values(), key=lambda r: r["seconds_per_accepted"])["runtime"]
    assert f"{fastest} would be ~" in entry["reasons"]["latency_budget"]
    # every local alternative carries the comparison for its own model too: MLX where an MLX build of that
    # quantization class exists (MLX-4bit ~ Q4_K_M, MLX-8bit ~ Q8_0; none for gpt-oss's MXFP4 GGUF)
    local_alts = [a for a in entry["alternatives"] if a["kind"] == "local"]
    assert local_alts
    for alt in local_alts:
        runtimes = {r["runtime"] for r in alt["runtime_comparison"]}
        has_mlx = alt["quantization"] in ("Q4_K_M", "Q8_0", "MLX-4bit", "MLX-8bit")
        assert runtimes == ({"llama.cpp", "ollama", "mlx"} if has_mlx else {"llama.cpp", "ollama"}), alt["model"]
    assert "The same model on other runtimes here:" in markdown_record(result)


# --- 3. catalog growth ----------------------------------------------------------------------------------------


def test_new_fim_models_are_eligible_for_autocomplete(knowledge: Knowledge, predictor: SpeedPredictor) -> None:
    catalog = load_catalog(KNOWLEDGE_DIR)
    for model in ("qwen2.5-coder-1.5b", "qwen2.5-coder-7b", "codestral-22b"):
        assert catalog.is_fim(model) and knowledge.model(model) is not None
    path = BENCHMARKS_DIR / "profiles" / "autocomplete-rtx4090.yaml"
    entry = recommend(parse_profile(path.read_text(), source=str(path)), knowledge, predictor, DETECTED_CPU)[
        "workflows"
    ][0]
    considered = {c["option"].split()[0] for c in entry["candidates"]}
    assert {"qwen2.5-coder-1.5b", "qwen2.5-coder-7b"} <= considered
    assert not any(e["model"].startswith("qwen2.5-coder-1.5b") and "FIM" in e["reason"] for e in entry["excluded"])


def test_a_model_without_a_predictable_runtime_is_listed_with_its_reason(
    knowledge: Knowledge, predictor: SpeedPredictor
) -> None:
    entry = run({"hardware": RTX4090, "workflows": [workflow(task="tool-calling")]}, knowledge, predictor)["workflows"][
        0
    ]
    needle = [e for e in entry["excluded"] if e["model"] == "needle-26m"]
    assert needle and "cactus" in needle[0]["reason"]


def test_knowledge_validates() -> None:
    loaded = load_knowledge(KNOWLEDGE_DIR)
    assert {"qwen3.6-35b-a3b", "nemotron-3-nano-30b-a3b", "lfm2-1.2b", "devstral-small-2-24b", "needle-26m"} <= {
        m.id for m in loaded.models
    }
    assert all(not m.uncovered_facts() for m in loaded.models)


# --- 4. diffusion models as candidates ------------------------------------------------------------------------

H100 = {"name": "H100 SXM", "accelerator": "nvidia", "memory_gb": 80, "memory_bandwidth_gbs": 3350}


def test_a_diffusion_model_competes_on_time_to_an_accepted_answer(
    knowledge: Knowledge, predictor: SpeedPredictor
) -> None:
    result = run(
        {"hardware": H100, "workflows": [workflow(data_sensitivity="regulated", output_tokens=600)]},
        knowledge,
        predictor,
    )
    entry = result["workflows"][0]
    diffusion = [c for c in entry["candidates"] if c["option"].startswith("diffusiongemma-26b-a4b ")]
    assert diffusion, entry["excluded"]
    row = diffusion[0]
    assert row["time_model"] == "diffusion" and "tokens per second is not a decode rate" in row["note"]
    assert 0 < row["seconds_per_accepted"] < float("inf")
    # three 256-token canvases for 600 tokens: the time grows with canvases, not with a per-token decode rate
    short = run(
        {"hardware": H100, "workflows": [workflow(data_sensitivity="regulated", output_tokens=200)]},
        knowledge,
        predictor,
    )["workflows"][0]
    one = next(c for c in short["candidates"] if c["option"].startswith("diffusiongemma-26b-a4b "))
    assert row["seconds_per_accepted"] > 2 * one["seconds_per_accepted"]
