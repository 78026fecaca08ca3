"""Issue 18 part 2: catalog growth (sourced, with file sizes, per task area) and task-specialist models."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from advisor.decide.capability import TASK_AREA, CapabilityScale
from advisor.decide.catalog import WORKFLOW_TASKS, load_catalog
from advisor.errors import KnowledgeError
from advisor.knowledge import Knowledge, load_knowledge
from advisor.predict import SpeedPredictor
from advisor.profiles import parse_profile
from advisor.recommend import recommend
from advisor.schemas import Profile
from advisor.settings import BENCHMARKS_DIR, KNOWLEDGE_DIR

DETECTED_CPU = {
    "hardware": {"name": "Test CPU", "accelerator": "cpu", "memory_gb": 24.0, "system_ram_gb": 32.0},
    "how": {},
    "notes": [],
    "fingerprint": "hw-test",
}
NEW_MODELS = {
    "xlam-2-1b-fc-r": "tool use",
    "xlam-2-3b-fc-r": "tool use",
    "llama-xlam-2-8b-fc-r": "tool use",
    "deepseek-r1-distill-qwen-7b": "reasoning",
    "deepseek-r1-distill-qwen-14b": "reasoning",
    "deepseek-coder-v2-lite-instruct": "coding",
    "nuextract-1.5": "general",
}
TOOL_SPECIALISTS = {"xlam-2-1b-fc-r", "xlam-2-3b-fc-r", "llama-xlam-2-8b-fc-r", "needle-26m"}
PROFILE = BENCHMARKS_DIR / "profiles" / "tool-calling-specialist.yaml"


def run_profile(knowledge: Knowledge, predictor: SpeedPredictor, **overrides: Any) -> dict[str, Any]:
    profile = parse_profile(PROFILE.read_text(), source=str(PROFILE))
    if overrides:
        data = profile.model_dump()
        data["workflows"][0].update(overrides)
        profile = Profile.model_validate(data)
    return recommend(profile, knowledge, predictor, DETECTED_CPU)["workflows"][0]


# --- knowledge -------------------------------------------------------------------------------------------------


def test_knowledge_validates_with_the_new_models() -> None:
    loaded = load_knowledge(KNOWLEDGE_DIR)
    ids = {m.id for m in loaded.models}
    assert set(NEW_MODELS) <= ids
    assert all(not m.uncovered_facts() for m in loaded.models)
    catalog = load_catalog(KNOWLEDGE_DIR)
    for model_id in TOOL_SPECIALISTS:
        assert catalog.specialist(model_id) == ("tool-calling",)
    assert catalog.specialist("nuextract-1.5") == ("extraction",)
    assert catalog.specialist("qwen3-4b") == ()  # a generalist carries no marker


def test_every_new_model_has_a_source_for_each_fact_and_its_file_sizes(knowledge: Knowledge) -> None:
    scale = CapabilityScale(knowledge)
    for model_id, area in NEW_MODELS.items():
        spec = knowledge.model(model_id)
        assert spec is not None, model_id
        assert spec.uncovered_facts() == [], model_id
        assert spec.gguf_gb and all(0 < gb < 2 * (spec.total_params_b or 0) + 1 for gb in spec.gguf_gb.values())
        assert all(s.url and s.date for s in spec.sources), model_id
        covered = {f for s in spec.sources for f in s.fields}
        for key, value in spec.scores.items():
            if value is not None:
                assert f"scores.{key}" in covered or "scores" in covered, (model_id, key)
        if spec.scores:  # a score on the area's own scale, published (NuExtract publishes none: imputed, and says so)
            assert scale.local_score(spec, area).label == "published", model_id


def test_each_task_area_has_two_sourced_sized_candidates(knowledge: Knowledge) -> None:
    """Every workflow task has >= 2 catalog models that may run it, with a published score and GGUF file sizes."""
    catalog = load_catalog(KNOWLEDGE_DIR)
    scale = CapabilityScale(knowledge)
    for task in WORKFLOW_TASKS:
        area = TASK_AREA[task]
        eligible = [
            m.id
            for m in knowledge.models
            if m.gguf_gb
            and (not catalog.specialist(m.id) or task in catalog.specialist(m.id))
            and (task != "autocomplete" or catalog.is_fim(m.id))
            and catalog.runtime(m.id) is None
            and scale.published_score(area, scale.local.get(m.id, {})) is not None
        ]
        assert len(eligible) >= 2, (task, eligible)
    # the thin areas before this change are now covered by added models
    assert {"xlam-2-1b-fc-r", "xlam-2-3b-fc-r"} <= {m.id for m in knowledge.models if m.scores.get("bfcl")}
    assert all(knowledge.model(m).gguf_gb for m in ("qwen2.5-coder-1.5b", "qwen2.5-coder-7b"))  # type: ignore[union-attr]


# --- the specialist trait -------------------------------------------------------------------------------------------


def _catalog_with(tmp_path: Path, rows: str) -> Path:
    directory = tmp_path / "knowledge"
    directory.mkdir()
    shutil.copy(KNOWLEDGE_DIR / "device_prices.csv", directory / "device_prices.csv")
    (directory / "model_traits.csv").write_text(
        "model_id,trait,value,source_url,source_date,note\n" + rows, encoding="utf-8"
    )
    return directory


def test_a_specialist_trait_naming_an_unknown_task_is_rejected_with_the_fix(tmp_path: Path) -> None:
    directory = _catalog_with(
        tmp_path,
        "xlam-2-1b-fc-r,specialist,tool-calling,https://example.org/a,2025-03,ok\n"
        "nuextract-1.5,specialist,summarising,https://example.org/b,2024-10,typo\n",
    )
    with pytest.raises(KnowledgeError) as caught:
        load_catalog(directory)
    text = str(caught.value)
    assert "model_traits.csv, row 3" in text and "specialist 'summarising' is not a workflow task" in text
    assert "from: classification, extraction" in text and "tool-calling" in text


def test_a_specialist_may_name_several_tasks_and_none_is_an_error(tmp_path: Path) -> None:
    good = _catalog_with(tmp_path, "m1,specialist,tool-calling|extraction,https://example.org/a,2025-03,ok\n")
    assert load_catalog(good).specialist("m1") == ("tool-calling", "extraction")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "model_traits.csv").write_text(
        "model_id,trait,value,source_url,source_date,note\nm1,specialist,|,https://example.org/a,2025-03,bad\n",
        encoding="utf-8",
    )
    with pytest.raises(KnowledgeError, match=r"row 2: specialist '\|' is not a workflow task"):
        load_catalog(empty)


# --- a small specialist wins its narrow workflow, and only that one ----------------------------------------------------


def test_a_small_tool_calling_specialist_wins_the_narrow_profile(
    knowledge: Knowledge, predictor: SpeedPredictor
) -> None:
    entry = run_profile(knowledge, predictor)
    choice = entry["choice"]
    assert entry["decision"] == "local", entry["warnings"]
    assert choice["model"] in TOOL_SPECIALISTS, entry["candidates"][:5]
    assert choice["specialist"] == "tool-calling"  # the JSON marker
    spec = knowledge.model(choice["model"])
    assert spec is not None and spec.total_params_b is not None and spec.total_params_b <= 4
    # it wins on its own sourced BFCL figure, at the needed tier: no bonus, no gap
    assert entry["capability"]["label"] == "published" and "bfcl" in entry["capability"]["basis"]
    assert entry["capability"]["shortfall"] == 0
    assert "specialist" in entry["reasons"]["capability_frontier"]
    marked = [c for c in entry["candidates"] if c.get("specialist")]
    assert marked and all(c["option"].split()[0] in TOOL_SPECIALISTS for c in marked)
    # the generalists were in the race and lost on the objective
    assert any(c["kind"] == "local" and not c.get("specialist") for c in entry["candidates"])


def test_a_specialist_is_not_a_candidate_for_another_task(knowledge: Knowledge, predictor: SpeedPredictor) -> None:
    entry = run_profile(knowledge, predictor, task="summarization", capability="routine")
    assert entry["choice"]["model"] not in TOOL_SPECIALISTS
    assert "specialist" not in entry["choice"]
    considered = {c["option"].split()[0] for c in entry["candidates"]}
    assert not considered & (TOOL_SPECIALISTS | {"nuextract-1.5"})
    reasons = {e["model"].split()[0]: e["reason"] for e in entry["excluded"]}
    assert "tool-calling specialist" in reasons["xlam-2-1b-fc-r"] and "not summarization" in reasons["xlam-2-1b-fc-r"]
    assert "extraction specialist" in reasons["nuextract-1.5"]


def test_the_extraction_specialist_is_a_candidate_for_extraction(
    knowledge: Knowledge, predictor: SpeedPredictor
) -> None:
    entry = run_profile(knowledge, predictor, task="extraction", capability="routine")
    rows = [c for c in entry["candidates"] if c["option"].startswith("nuextract-1.5 ")]
    assert rows and rows[0]["specialist"] == "extraction"
    assert rows[0]["score_label"] == "imputed"  # NuMind publishes no score on the catalog's scales
    assert not any(e["model"].startswith("nuextract-1.5") and "specialist" in e["reason"] for e in entry["excluded"])
