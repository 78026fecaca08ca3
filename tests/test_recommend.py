"""The lens rules as properties, the seed's worked example, the JSON contract and bad profiles."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advisor.decide.capability import CapabilityScale, Score
from advisor.decide.catalog import load_catalog
from advisor.decide.costs import Site
from advisor.decide.latency import Figure
from advisor.decide.options import Context, Option, hosted_options, local_options, local_speed_table
from advisor.decide.rank import rank
from advisor.knowledge import Knowledge
from advisor.predict import SpeedPredictor
from advisor.profiles import parse_profile
from advisor.recommend import local_cost_per_request, recommend
from advisor.schemas import Costs, Hardware, Profile, Workflow
from advisor.settings import BENCHMARKS_DIR, KNOWLEDGE_DIR

PROFILES = BENCHMARKS_DIR / "profiles"
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


def run(profile: dict[str, Any], knowledge: Knowledge, predictor: SpeedPredictor) -> dict[str, Any]:
    return recommend(Profile.model_validate(profile), knowledge, predictor, DETECTED_CPU)


def context(
    workflow: Workflow,
    knowledge: Knowledge,
    *,
    costs: Costs | None = None,
    usable_gb: float | None = 24.0,
    rtt_ms: float = 0.0,
    price: float = 2500.0,
) -> Context:
    costs = costs or Costs()
    return Context(
        workflow,
        knowledge,
        CapabilityScale(knowledge),
        load_catalog(KNOWLEDGE_DIR),
        Site(costs, price, 450.0),
        usable_gb,
        rtt_ms,
    )


def options_of(entry: dict[str, Any]) -> list[dict[str, Any]]:
    return [o for o in [entry["choice"], *entry["alternatives"]] if o]


workflows = st.builds(
    dict,
    name=st.just("w"),
    task=st.sampled_from(
        ["classification", "extraction", "summarization", "drafting", "coding", "reasoning", "chat", "tool-calling"]
    ),
    data_sensitivity=st.sampled_from(["public", "internal", "confidential", "regulated"]),
    iteration=st.sampled_from(["prototype", "evolving", "stable"]),
    latency_budget_s=st.floats(0.2, 600),
    interactive=st.booleans(),
    requests_per_day=st.floats(1, 1e6),
    input_tokens=st.integers(10, 30000),
    output_tokens=st.integers(1, 4000),
    capability=st.sampled_from(["routine", "advanced", "frontier"]),
)
PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.slow  # a property test or a full fit: the full suite runs it, the fast tier need not
@PROPERTY
@given(workflow=workflows, memory=st.sampled_from([4, 12, 24, 80]))
def test_regulated_never_hosted_and_local_choices_fit(
    workflow: dict[str, Any], memory: int, knowledge: Knowledge, predictor: SpeedPredictor
) -> None:
    result = run({"hardware": {**RTX, "memory_gb": memory}, "workflows": [workflow]}, knowledge, predictor)
    entry = result["workflows"][0]
    assert entry["decision"] in (
        "local",
        "hosted",
        "hybrid",
        "local-with-gap",
        "hosted-with-gap",
        "hybrid-with-gap",
        "none",
    )
    if workflow["data_sensitivity"] == "regulated":
        assert entry["decision"] != "hosted"
        assert entry["choice"] is None or entry["choice"]["kind"] == "local"
        assert all(a["kind"] == "local" for a in entry["alternatives"])
    if entry["choice"] and entry["choice"]["kind"] == "local" and entry["choice"]["basis"] != "measured":
        assert entry["choice"]["memory_required_gb"] <= memory
    assert set(entry["reasons"]) == {
        "data_sensitivity",
        "iteration_velocity",
        "latency_budget",
        "cost_at_scale",
        "capability_frontier",
    }


@pytest.mark.slow  # a property test or a full fit: the full suite runs it, the fast tier need not
@PROPERTY
@given(workflow=workflows, shrink=st.floats(0.05, 0.95))
def test_tighter_latency_budget_never_gives_a_slower_choice(
    workflow: dict[str, Any], shrink: float, knowledge: Knowledge, predictor: SpeedPredictor
) -> None:
    loose = run(
        {"hardware": RTX, "hosted": {"approved_for_confidential": ["anthropic"]}, "workflows": [workflow]},
        knowledge,
        predictor,
    )
    tight_w = {**workflow, "latency_budget_s": workflow["latency_budget_s"] * shrink}
    tight = run(
        {"hardware": RTX, "hosted": {"approved_for_confidential": ["anthropic"]}, "workflows": [tight_w]},
        knowledge,
        predictor,
    )
    # The objective holds the budget against penalised seconds per accepted answer (rank.py), so a tighter
    # budget may pick a slower but more reliable option, never one that takes longer per accepted answer.
    a, b = (run_["workflows"][0]["objective"]["penalised_seconds_per_accepted"] for run_ in (loose, tight))
    if a is not None and b is not None:
        assert b <= a + 1e-6


@pytest.fixture(scope="module")
def rtx_speeds(knowledge: Knowledge, predictor: SpeedPredictor) -> tuple[Hardware, dict]:
    hw = Hardware.model_validate(RTX)
    return hw, local_speed_table(knowledge, predictor, hw, [])


@PROPERTY
@given(workflow=workflows, factor=st.floats(1.01, 1000))
def test_more_volume_never_makes_local_relatively_dearer(
    workflow: dict[str, Any], factor: float, knowledge: Knowledge, rtx_speeds: tuple[Hardware, dict]
) -> None:
    _hw, speeds = rtx_speeds
    low_w = Workflow.model_validate(workflow)
    high_w = low_w.model_copy(update={"requests_per_day": low_w.requests_per_day * factor})
    low_ctx, high_ctx = context(low_w, knowledge), context(high_w, knowledge)
    low = {
        s.option.key(): s.cost_per_request for s in rank(local_options(low_ctx, speeds, None)[0], low_w, low_ctx.site)
    }
    high = {
        s.option.key(): s.cost_per_request
        for s in rank(local_options(high_ctx, speeds, None)[0], high_w, high_ctx.site)
    }
    hosted_low = {o.key(): o.hosted_usd_per_request for o in hosted_options(low_ctx)[0]}
    hosted_high = {o.key(): o.hosted_usd_per_request for o in hosted_options(high_ctx)[0]}
    assert hosted_low == hosted_high  # token prices do not change with volume
    for key, before in low.items():
        assert high[key] <= before + 1e-15  # so every local/hosted ratio can only fall


def test_cost_figures_name_the_option_they_are_about(knowledge: Knowledge, predictor: SpeedPredictor) -> None:
    workflow = {
        "name": "w",
        "task": "classification",
        "data_sensitivity": "public",
        "latency_budget_s": 30,
        "requests_per_day": 5000,
    }
    entry = run({"hardware": RTX, "workflows": [workflow]}, knowledge, predictor)["workflows"][0]
    cost = entry["cost"]
    reference = cost["local_reference"] if entry["choice"]["kind"] == "local" else cost["hosted_reference"]
    assert reference["model"] == entry["choice"]["model"]
    assert cost["usd_per_request"] == pytest.approx(
        cost["usd_per_accepted"] * entry["predicted"]["success_probability"], rel=1e-2
    )


@given(busy=st.floats(0.01, 600), volume=st.floats(1, 1e7), factor=st.floats(1.0, 100))
def test_local_cost_per_request_is_non_increasing_in_volume(busy: float, volume: float, factor: float) -> None:
    costs = Costs()
    assert (
        local_cost_per_request(busy, volume * factor, 300, costs)
        <= local_cost_per_request(busy, volume, 300, costs) + 1e-12
    )


def _option(name: str, tps: float, tokens: float) -> Option:
    return Option(
        kind="local",
        model=name,
        ttft=Figure(0.0, "measured", "test"),
        decode_tps=tps,
        decode_label="measured",
        reasoning=Figure(0.0, "measured", "test"),
        answer_tokens=tokens,
        score=Score("coding", 80.0, 2.5, "published", "test"),
        threshold=50.0,
        success=0.95,
        success_low=0.95,
        success_high=0.95,
        success_basis="test",
        basis="measured",
    )


def test_seed_worked_example_ranks_token_efficiency_over_tok_s() -> None:
    # SEEDS.md §1: Gemma 4 31B at 27 tok/s used 6,209 tokens (3 min 51 s); Qwen 3.6 27B at 32 tok/s used 33,946 (18 min).
    gemma, qwen = _option("gemma-4-31b", 27, 6209), _option("qwen3.6-27b", 32, 33946)
    workflow = Workflow(name="pac-man", task="coding", latency_budget_s=3600)
    site = Site(Costs(), 2500.0, 450.0)
    assert [s.option.model for s in rank([qwen, gemma], workflow, site)] == ["gemma-4-31b", "qwen3.6-27b"]
    assert gemma.e2e_s == pytest.approx(231, abs=5)  # 3 min 51 s
    assert qwen.e2e_s / 60 == pytest.approx(18, abs=0.5)
    assert qwen.decode_tps > gemma.decode_tps  # the faster tok/s loses


def test_example_profiles_honour_the_json_contract(knowledge: Knowledge, predictor: SpeedPredictor) -> None:
    for path in sorted(PROFILES.glob("*.yaml")):
        profile = parse_profile(path.read_text(), source=str(path))
        result = recommend(profile, knowledge, predictor, DETECTED_CPU)
        assert set(result) == {"hardware", "workflows"}
        for entry in result["workflows"]:
            assert {"name", "decision", "choice", "predicted", "cost", "reasons", "alternatives", "warnings"} <= set(
                entry
            )
            assert {"local_usd_per_1k_requests", "hosted_usd_per_1k_requests", "break_even_requests_per_day"} <= set(
                entry["cost"]
            )
            if entry["choice"]:
                assert {
                    "ttft_s",
                    "decode_tps",
                    "seconds_per_accepted",
                    "tokens_per_accepted",
                    "success_probability",
                } <= set(entry["predicted"])
                assert entry["predicted"]["label"] in ("measured", "predicted")
                labels = entry["predicted"]["labels"]
                allowed = {"measured", "calibrated", "predicted", "published", "assumed", "imputed"}
                assert {v["label"] for v in labels.values()} <= allowed
                assert entry["choice"]["label"] in allowed and entry["capability"]["label"] in allowed
                key = {
                    "local": {"model", "quantization", "runtime", "memory_required_gb", "basis"},
                    "hosted": {"model", "provider"},
                    "hybrid": {"model", "local", "hosted", "escalation_rate", "basis"},
                }
                assert key[entry["choice"]["kind"]] <= set(entry["choice"])


def test_lens_conflict_is_stated_not_hidden(knowledge: Knowledge, predictor: SpeedPredictor) -> None:
    profile = parse_profile((PROFILES / "laptop-regulated-frontier.yaml").read_text(), source="laptop")
    entry = recommend(profile, knowledge, predictor, DETECTED_CPU)["workflows"][0]
    assert entry["decision"] == "local-with-gap"
    assert any("data sensitivity keeps this workflow local" in w for w in entry["warnings"])
    assert any("points short" in w for w in entry["warnings"])  # frontier reasoning on a laptop: by how much


def test_planning_for_another_machine_uses_the_catalog_not_this_one(
    knowledge: Knowledge, predictor: SpeedPredictor
) -> None:
    result = run(
        {"hardware": {"name": "RTX 4090", "accelerator": "nvidia"}, "workflows": [{"name": "w"}]}, knowledge, predictor
    )
    used, how = result["hardware"]["used"], result["hardware"]["how"]
    assert (used["memory_gb"], used["memory_bandwidth_gbs"]) == (24.0, 1008.0)  # the 4090's, not this CPU's
    assert "hardware.csv" in how["memory_gb"] and used["system_ram_gb"] is None
    assert not any("GPU detected" in note for note in result["hardware"]["notes"])


def test_confidential_goes_only_to_approved_providers(knowledge: Knowledge, predictor: SpeedPredictor) -> None:
    workflow = {
        "name": "c",
        "task": "reasoning",
        "data_sensitivity": "confidential",
        "capability": "frontier",
        "latency_budget_s": 600,
        "requests_per_day": 10,
    }
    tiny = {**RTX, "memory_gb": 2}
    none_ok = run({"hardware": tiny, "workflows": [workflow]}, knowledge, predictor)["workflows"][0]
    assert none_ok["decision"] == "local-with-gap"
    approved = run(
        {"hardware": tiny, "hosted": {"approved_for_confidential": ["anthropic"]}, "workflows": [workflow]},
        knowledge,
        predictor,
    )["workflows"][0]
    assert approved["decision"] == "hosted" and approved["choice"]["provider"] == "anthropic"
    assert all(a["kind"] == "local" or a["provider"] == "anthropic" for a in approved["alternatives"])


def test_frontier_routes_out_when_allowed(knowledge: Knowledge, predictor: SpeedPredictor) -> None:
    workflow = {
        "name": "f",
        "task": "reasoning",
        "data_sensitivity": "public",
        "capability": "frontier",
        "latency_budget_s": 600,
        "requests_per_day": 10,
    }
    entry = run({"hardware": RTX, "workflows": [workflow]}, knowledge, predictor)["workflows"][0]
    assert entry["decision"] == "hosted"
    assert "routed to hosted" in entry["reasons"]["capability_frontier"]
    # Frontier means within the stated margin of the best published model for reasoning, not merely hosted.
    assert entry["capability"]["shortfall"] == 0 and entry["capability"]["label"] == "published"
    tiers = run({"hardware": RTX, "workflows": [workflow]}, knowledge, predictor)["hardware"]["capability_tiers"]
    assert entry["capability"]["score"] >= tiers["reasoning"]["frontier"]


def test_calibration_makes_the_measured_model_a_measured_option(
    knowledge: Knowledge, predictor: SpeedPredictor
) -> None:
    report = {
        "run_id": "r1",
        "backend": {"kind": "embedded"},
        "bandwidth_probe": {"bandwidth_gbs": 20.0, "method": "test"},
        "models": [
            {
                "model": "smollm2-135m-instruct-q4_1",
                "quantization": "Q4_1",
                "size_bytes": 98_000_000,
                "params_b": 0.135,
                "speed": {
                    "decode@64": {"decode_tps": {"median": 80.0, "p25": 78.0, "p75": 82.0}},
                    "prefill@512": {"prefill_tps": {"median": 250.0, "p25": 240.0, "p75": 260.0}, "prompt_tokens": 529},
                },
                "tasks": {"successes": 5, "attempts": 7},
            }
        ],
    }
    workflow = {
        "name": "tiny",
        "task": "classification",
        "data_sensitivity": "regulated",
        "latency_budget_s": 60,
        "requests_per_day": 10,
        "input_tokens": 100,
        "output_tokens": 4,
    }
    result = recommend(Profile.model_validate({"workflows": [workflow]}), knowledge, predictor, DETECTED_CPU, report)
    assert result["hardware"]["used"]["memory_bandwidth_gbs"] == 20.0
    assert "measured" in result["hardware"]["how"]["memory_bandwidth_gbs"]
    entry = result["workflows"][0]
    options = [entry["choice"], *entry["alternatives"]] if entry["choice"] else entry["alternatives"]
    assert entry["choice"] is not None
    assert any(o["basis"] in ("measured", "predicted+calibrated") for o in options)


# --- bad profiles at the CLI edge -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")  # one predictor cache for every CLI call in this module


def cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ADVISOR_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "advisor", *args], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.mark.slow
def test_recommend_cli_writes_json_markdown_and_csv(tmp_path: Path, shared_home: Path) -> None:
    out, md, csv_path = tmp_path / "r.json", tmp_path / "r.md", tmp_path / "r.csv"
    done = cli(
        "recommend",
        str(PROFILES / "team-mixed.yaml"),
        "--json",
        str(out),
        "--markdown",
        str(md),
        "--csv",
        str(csv_path),
        home=shared_home,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert [w["name"] for w in result["workflows"]][:2] == ["support reply drafts", "PHI visit summaries"]
    assert result["workflows"][0]["decision"] != "hosted"  # regulated
    text = md.read_text()
    assert "# Decision record" in text and "predicted" in text and "Sources" in text
    assert csv_path.read_text().splitlines()[0].startswith("workflow,decision")
    assert "support reply drafts" in done.stdout


BAD_PROFILES = {
    "malformed": ("workflows:\n  - name: a\n    task: [unclosed\n", ["not valid YAML at line"]),
    "enums and numbers": (
        "workflows:\n  - name: a\n    task: poetry\n    data_sensitivity: secret\n    latency_budget_s: -3\n    requests_per_day: lots\n",
        [
            "workflows.0.task",
            "workflows.0.data_sensitivity",
            "must be one of",
            "workflows.0.latency_budget_s",
            "workflows.0.requests_per_day",
            "4 invalid",
        ],
    ),
    "unknown field": (
        "workflows:\n  - name: a\n    latncy_budget_s: 3\nhardware:\n  memory_gb: 1e9\n",
        ["workflows.0.latncy_budget_s", "unknown field", "hardware.memory_gb"],
    ),
    "missing calibration": (
        "calibration: nowhere.json\nworkflows:\n  - name: a\n",
        ["nowhere.json", "does not exist", "calibrate"],
    ),
    "no workflows": ("hardware: {}\n", ["workflows", "required"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(BAD_PROFILES))
def test_bad_profiles_exit_2_naming_every_bad_field(case: str, tmp_path: Path, shared_home: Path) -> None:
    text, expected = BAD_PROFILES[case]
    path = tmp_path / "profile.yaml"
    path.write_text(text)
    done = cli("recommend", str(path), home=shared_home)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    for fragment in expected:
        assert fragment in done.stderr, (fragment, done.stderr)


# --- the DESIGN profile fields: accepted, and each wired into the decision ---------------------------------

DESIGN_PROFILE = """
hardware:
  name: RTX 4090 desktop
  accelerator: nvidia
  memory_gb: 24
  memory_bandwidth_gbs: 1008
  system_ram_gb: 64
  power_w: 450
  count: 1
  interconnect: pcie
  gpu_memory_limit_gb: null
costs:
  electricity_usd_per_kwh: 0.15
  hardware_usd: null
  amortization_months: 36
  hardware_sunk: false
  utilization_target: 0.6
  network_rtt_ms: 80
  ops_usd_per_month: 0
  redundancy: false
hosted:
  approved_for_confidential: []
workflows:
  - name: support reply drafts
    task: drafting
    data_sensitivity: regulated
    iteration: prototype
    latency_budget_s: 3
    interactive: true
    requests_per_day: 2000
    input_tokens: 800
    output_tokens: 200
    capability: routine
  - name: inline completion
    task: autocomplete
"""


def test_every_design_profile_field_is_accepted() -> None:
    profile = parse_profile(DESIGN_PROFILE, source="design")
    assert profile.hardware is not None and profile.hardware.count == 1 and profile.hardware.interconnect == "pcie"
    assert profile.costs.hardware_usd is None and profile.costs.utilization_target == 0.6
    assert profile.costs.network_rtt_ms == 80 and profile.costs.redundancy is False
    assert profile.workflows[1].task == "autocomplete"


@pytest.mark.parametrize(
    "bad",
    [
        "hardware: {interconnect: infiniband}\nworkflows: [{name: a}]\n",
        "hardware: {count: 0}\nworkflows: [{name: a}]\n",
        "costs: {utilization_target: 1.5}\nworkflows: [{name: a}]\n",
        "costs: {network_rtt_ms: -1}\nworkflows: [{name: a}]\n",
        "costs: {ops_usd_per_month: -5}\nworkflows: [{name: a}]\n",
    ],
)
def test_out_of_range_design_fields_are_bad_input(bad: str) -> None:
    from advisor.errors import InputError

    with pytest.raises(InputError):
        parse_profile(bad, source="bad")


def test_apple_usable_memory_is_the_wired_share_unless_a_limit_is_given() -> None:
    from advisor.recommend import usable_memory_gb

    mac = Hardware(accelerator="apple", memory_gb=64)
    assert usable_memory_gb(mac, memory_detected=False)[0] == pytest.approx(48.0)
    raised = mac.model_copy(update={"gpu_memory_limit_gb": 56})
    assert usable_memory_gb(raised, memory_detected=False)[0] == pytest.approx(56.0)
    # Detection already reports the wired share: it is not derated twice.
    assert usable_memory_gb(Hardware(accelerator="apple", memory_gb=48), memory_detected=True)[0] == 48.0
    # Other accelerators: memory_gb is VRAM, used as is.
    assert usable_memory_gb(Hardware(accelerator="nvidia", memory_gb=24), memory_detected=False)[0] == 24.0


def test_a_64gb_mac_does_not_fit_a_63gb_model(knowledge: Knowledge, predictor: SpeedPredictor) -> None:
    mac = {"name": "Apple M4 Pro", "accelerator": "apple", "memory_gb": 64, "memory_bandwidth_gbs": 273}
    workflow = {"name": "w", "data_sensitivity": "regulated", "latency_budget_s": 600}
    entry = run({"hardware": mac, "workflows": [workflow]}, knowledge, predictor)["workflows"][0]
    local = [o for o in [entry["choice"], *entry["alternatives"]] if o and o["kind"] == "local"]
    assert local and all(o["memory_required_gb"] <= 48.0 for o in local)


def test_a_rig_sums_device_memory_less_overhead(knowledge: Knowledge, predictor: SpeedPredictor) -> None:
    from advisor.decide.site import RIG_OVERHEAD_GB_PER_EXTRA_DEVICE, usable_memory_gb

    rig = Hardware(accelerator="nvidia", memory_gb=24, count=2, interconnect="pcie")
    total, how = usable_memory_gb(rig, memory_detected=False)
    assert total == pytest.approx(48 - RIG_OVERHEAD_GB_PER_EXTRA_DEVICE) and "2 x 24" in how
    hw = {"name": "2x RTX 3090", "accelerator": "nvidia", "memory_gb": 24, "memory_bandwidth_gbs": 936, "power_w": 350}
    workflow = {"name": "w", "data_sensitivity": "regulated", "latency_budget_s": 600, "capability": "advanced"}
    one = run({"hardware": hw, "workflows": [workflow]}, knowledge, predictor)
    two = run({"hardware": {**hw, "count": 2}, "workflows": [workflow]}, knowledge, predictor)
    assert two["hardware"]["usable_memory_gb"] == pytest.approx(total)
    sizes_two = [o["memory_required_gb"] for o in [two["workflows"][0]["choice"], *two["workflows"][0]["alternatives"]]]
    sizes_one = [o["memory_required_gb"] for o in [one["workflows"][0]["choice"], *one["workflows"][0]["alternatives"]]]
    assert max(sizes_one) <= 24 and max(sizes_two) <= total
    assert "x 2" in two["hardware"]["cost_basis"]["power_w"]


def test_ops_redundancy_and_utilisation_enter_the_local_cost() -> None:
    from advisor.decide.costs import DAYS_PER_MONTH, machines_needed

    base = Costs(hardware_usd=3000)
    busy, volume, power = 2.0, 1000.0, 300.0
    plain = local_cost_per_request(busy, volume, power, base)
    with_ops = local_cost_per_request(busy, volume, power, base.model_copy(update={"ops_usd_per_month": 900}))
    assert with_ops - plain == pytest.approx(900 / DAYS_PER_MONTH / volume)
    spare = local_cost_per_request(busy, volume, power, base.model_copy(update={"redundancy": True}))
    energy = power * busy / 3.6e6 * base.electricity_usd_per_kwh
    assert spare - energy == pytest.approx(2 * (plain - energy))  # one machine's load: the spare doubles hardware
    # A lower utilisation target means more machines for the same load.
    heavy = 100_000.0
    assert machines_needed(busy, heavy, base.model_copy(update={"utilization_target": 0.3})) == pytest.approx(
        2 * machines_needed(busy, heavy, base)
    )


def test_network_round_trip_is_added_to_hosted_ttft(knowledge: Knowledge) -> None:
    workflow = Workflow(name="w", task="chat")
    near = {o.key(): o.ttft_s for o in hosted_options(context(workflow, knowledge, rtt_ms=0))[0]}
    far = {o.key(): o.ttft_s for o in hosted_options(context(workflow, knowledge, rtt_ms=250))[0]}
    assert near and all(far[k] - near[k] == pytest.approx(0.25) for k in near)


def test_hardware_price_is_given_else_sourced_else_assumed(knowledge: Knowledge, predictor: SpeedPredictor) -> None:
    workflow = {"name": "w", "latency_budget_s": 60}
    given = run({"hardware": RTX, "costs": {"hardware_usd": 1800}, "workflows": [workflow]}, knowledge, predictor)
    assert given["hardware"]["costs"]["hardware_usd"] == 1800
    assert "given" in given["hardware"]["cost_basis"]["hardware_usd"]
    unknown = run(
        {"hardware": {**RTX, "name": "Some unlisted accelerator"}, "workflows": [workflow]}, knowledge, predictor
    )
    assert unknown["hardware"]["cost_basis"]["hardware_usd"].startswith("assumed")


def test_autocomplete_needs_a_fim_model_and_has_no_hosted_option(
    knowledge: Knowledge, predictor: SpeedPredictor
) -> None:
    catalog = load_catalog(KNOWLEDGE_DIR)
    fim = {m.id for m in knowledge.models if catalog.is_fim(m.id)}
    workflow = {"name": "tab", "task": "autocomplete", "data_sensitivity": "public", "latency_budget_s": 1}
    entry = run({"hardware": RTX, "workflows": [workflow]}, knowledge, predictor)["workflows"][0]
    options = [o for o in [entry["choice"], *entry["alternatives"]] if o]
    assert options and all(o["kind"] == "local" and o["model"] in fim for o in options)
