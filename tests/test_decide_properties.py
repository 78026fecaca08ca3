"""Issue 13's properties of the decision: no volume cliff, monotone in the need, imputed never excludes, honest verdicts."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advisor.knowledge import Knowledge
from advisor.predict import SpeedPredictor
from advisor.recommend import recommend
from advisor.schemas import Profile

DETECTED_CPU = {
    "hardware": {"name": "Test CPU", "accelerator": "cpu", "memory_gb": 24.0, "system_ram_gb": 32.0},
    "how": {},
    "notes": [],
    "fingerprint": "hw-test",
}
RTX = {
    "name": "RTX 4090 desktop",
    "accelerator": "nvidia",
    "memory_gb": 24,
    "memory_bandwidth_gbs": 1008,
    "power_w": 450,
}
TASKS = ["classification", "extraction", "summarization", "drafting", "coding", "reasoning", "chat", "tool-calling"]
workflows = st.builds(
    dict,
    name=st.just("w"),
    task=st.sampled_from([*TASKS, "autocomplete"]),
    data_sensitivity=st.sampled_from(["public", "internal", "confidential", "regulated"]),
    iteration=st.sampled_from(["prototype", "evolving", "stable"]),
    latency_budget_s=st.floats(0.5, 600),
    interactive=st.booleans(),
    requests_per_day=st.floats(10, 2e6),
    input_tokens=st.integers(10, 20000),
    output_tokens=st.integers(1, 2000),
    capability=st.sampled_from(["routine", "advanced", "frontier"]),
)
PROPERTY = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


class Env:
    """The shared knowledge and predictor, with a short repr so a falsifying example stays readable."""

    def __init__(self, knowledge: Knowledge, predictor: SpeedPredictor) -> None:
        self.knowledge, self.predictor = knowledge, predictor

    def __repr__(self) -> str:
        return "Env(knowledge, predictor)"


@pytest.fixture(scope="module")
def env(knowledge: Knowledge, predictor: SpeedPredictor) -> Env:
    return Env(knowledge, predictor)


def run(workflow: dict[str, Any], knowledge: Knowledge, predictor: SpeedPredictor, **profile: Any) -> dict[str, Any]:
    body = {"hardware": RTX, "hosted": {"approved_for_confidential": ["anthropic"]}, **profile, "workflows": [workflow]}
    return recommend(Profile.model_validate(body), knowledge, predictor, DETECTED_CPU)["workflows"][0]


def chosen(entry: dict[str, Any]) -> str | None:
    c = entry["choice"]
    return None if c is None else f"{c['model']}|{c.get('quantization')}|{c.get('runtime')}|{c.get('provider')}"


@pytest.mark.slow  # a property test or a full fit: the full suite runs it, the fast tier need not
@PROPERTY
@given(workflow=workflows, sunk=st.booleans())
def test_one_request_more_changes_the_choice_only_at_a_reported_flip_point(
    workflow: dict[str, Any], sunk: bool, env: Env
) -> None:
    knowledge, predictor = env.knowledge, env.predictor
    costs = {"hardware_sunk": sunk}
    here = run(workflow, knowledge, predictor, costs=costs)
    more = run({**workflow, "requests_per_day": workflow["requests_per_day"] + 1}, knowledge, predictor, costs=costs)
    if chosen(here) != chosen(more):
        volume = workflow["requests_per_day"]
        above = [f["requests_per_day"] for f in here["flip_points"] if f["direction"] == "above"]
        steps = [here["cost"]["capacity_step_requests_per_day"] or 0]
        assert any(volume <= x <= volume + 1.05 for x in above + steps), (here["flip_points"], steps)


@pytest.mark.slow  # a property test or a full fit: the full suite runs it, the fast tier need not
@PROPERTY
@given(workflow=workflows)
def test_a_higher_capability_need_never_yields_a_lower_scored_choice(workflow: dict[str, Any], env: Env) -> None:
    knowledge, predictor = env.knowledge, env.predictor
    scores = []
    for need in ("routine", "advanced", "frontier"):
        entry = run({**workflow, "capability": need}, knowledge, predictor)
        if entry["capability"] is None:
            return
        scores.append(entry["capability"]["score"])
    assert scores == sorted(scores), scores


@pytest.mark.slow  # a property test or a full fit: the full suite runs it, the fast tier need not
@PROPERTY
@given(workflow=workflows)
def test_the_verdict_has_a_gap_whenever_the_choice_misses_the_budget_or_the_need(
    workflow: dict[str, Any], env: Env
) -> None:
    knowledge, predictor = env.knowledge, env.predictor
    entry = run(workflow, knowledge, predictor)
    if entry["choice"] is None:
        assert entry["decision"] == "none"
        return
    misses = (
        entry["predicted"]["seconds_per_accepted"] > workflow["latency_budget_s"] + 1e-3
        or entry["capability"]["shortfall"] > 0
    )
    assert entry["decision"].endswith("-with-gap") == misses
    if misses:
        assert any("x over" in w or "points short" in w for w in entry["warnings"])  # and by how much
    # Alternatives keep the objective's order once the capability need is met.
    met = [a for a in entry["alternatives"] if a["capability"]["shortfall"] == 0]
    values = [a["objective"]["value_usd"] for a in met]
    assert values == sorted(values) or len(met) > len(entry["alternatives"]) - 2  # best-of-kind may be appended
    # Every cheaper or faster option says why it lost.
    for alt in entry["alternatives"]:
        faster = alt["predicted"]["seconds_per_accepted"] < entry["predicted"]["seconds_per_accepted"] - 1e-9
        cheaper = alt["cost"]["usd_per_accepted"] < (entry["cost"]["usd_per_accepted"] or 0) - 1e-15
        if faster or cheaper:
            assert alt["why_not"], alt


@pytest.mark.parametrize("model_id", ["gemma-4-26b-a4b", "qwen3-30b-a3b"])
def test_an_imputed_score_never_excludes_a_model_by_itself(
    model_id: str, knowledge: Knowledge, predictor: SpeedPredictor
) -> None:
    workflow = {"name": "w", "task": "summarization", "data_sensitivity": "regulated", "latency_budget_s": 60}
    stripped = dataclasses.replace(
        knowledge, models=[m.model_copy(update={"scores": {}}) if m.id == model_id else m for m in knowledge.models]
    )
    entry = run(workflow, stripped, predictor)
    candidate = next(c for c in entry["candidates"] if c["option"].startswith(model_id + " "))
    assert candidate["score_label"] == "imputed"
    assert not any(e["model"].startswith(model_id) and "score" in e["reason"] for e in entry["excluded"])
    # Alone in the catalog, it is the choice: an unknown score is not "incapable".
    alone = dataclasses.replace(stripped, models=[m for m in stripped.models if m.id == model_id])
    only = run(workflow, alone, predictor)
    assert only["choice"] is not None and only["choice"]["model"] == model_id
    assert only["capability"]["label"] == "imputed"
    assert only["capability"]["interval"][1] - only["capability"]["interval"][0] >= 20  # wide, and said so


def test_a_published_score_beats_an_imputed_one_on_a_tie(knowledge: Knowledge) -> None:
    from advisor.decide.capability import Score
    from advisor.decide.costs import Site
    from advisor.decide.latency import Figure
    from advisor.decide.options import Option
    from advisor.decide.rank import rank
    from advisor.schemas import Costs, Workflow

    def option(name: str, label: str) -> Option:
        return Option(
            kind="hosted",
            model=name,
            provider="p",
            ttft=Figure(0.5, "published", "t"),
            decode_tps=100.0,
            decode_label="published",
            reasoning=Figure(0.0, "published", "t"),
            answer_tokens=100.0,
            score=Score("general", 80.0, 2.5, label, "t"),
            threshold=60.0,
            success=0.9,
            success_low=0.9,
            success_high=0.9,
            success_basis="t",
            basis="published",
            hosted_usd_per_request=0.001,
        )

    workflow = Workflow(name="w")
    ranked = rank(
        [option("a-imputed", "imputed"), option("z-published", "published")], workflow, Site(Costs(), 1.0, 1.0)
    )
    assert ranked[0].option.model == "z-published"


@pytest.mark.slow  # a property test or a full fit: the full suite runs it, the fast tier need not
@PROPERTY
@given(workflow=workflows)
def test_hybrid_only_where_allowed_and_between_its_legs(workflow: dict[str, Any], env: Env) -> None:
    from advisor.decide.costs import Site
    from advisor.decide.options import hybrid
    from advisor.decide.rank import score
    from advisor.schemas import Costs, Workflow

    entry = run(workflow, env.knowledge, env.predictor)
    kinds = {c["kind"] for c in entry["candidates"]}
    hosted_allowed = workflow["data_sensitivity"] != "regulated"
    assert ("hybrid" in kinds) <= hosted_allowed  # never where lens 1 forbids the hosted leg
    if not (entry["choice"] and "local" in kinds and "hosted" in kinds):
        return
    # The route's figures per accepted answer sit between its two legs' (a mediant of the two).
    w = Workflow.model_validate(workflow)
    site = Site(Costs(), 2500.0, 450.0)
    from advisor.decide.capability import CapabilityScale
    from advisor.decide.catalog import load_catalog
    from advisor.decide.options import Context, hosted_options, local_options, local_speed_table
    from advisor.settings import KNOWLEDGE_DIR

    ctx = Context(w, env.knowledge, CapabilityScale(env.knowledge), load_catalog(KNOWLEDGE_DIR), site, 24.0, 80.0)

    speeds = local_speed_table(env.knowledge, env.predictor, _rtx(), [], prompt_tokens=w.input_tokens)
    local = local_options(ctx, speeds, None)[0][:3]
    hosted = hosted_options(ctx)[0][:3]
    for a in local:
        for b in hosted:
            route = score(hybrid(a, b), w, site, w.requests_per_day)
            legs = [score(a, w, site, w.requests_per_day), score(b, w, site, w.requests_per_day)]
            for figure in ("usd_per_accepted", "seconds_per_accepted"):
                values = sorted(getattr(x, figure) for x in legs)
                assert values[0] - 1e-12 <= getattr(route, figure) <= values[1] + 1e-12, figure


def _rtx() -> Any:
    from advisor.schemas import Hardware

    return Hardware.model_validate(RTX)
