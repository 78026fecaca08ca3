"""The decision record reads like one: a summary first, then dates; numbers formatted for people."""

from __future__ import annotations

from datetime import date

import pytest

from advisor.knowledge import Knowledge
from advisor.predict import SpeedPredictor
from advisor.recommend import recommend
from advisor.report import figure_labels, markdown_record, money, terminal_table, weakest
from advisor.schemas import Profile

DETECTED_CPU = {
    "hardware": {"name": "Test CPU", "accelerator": "cpu", "memory_gb": 24.0, "system_ram_gb": 32.0},
    "how": {},
    "notes": [],
    "fingerprint": "hw-test",
}
RTX = {"name": "RTX 4090 desktop", "accelerator": "nvidia", "memory_gb": 24, "memory_bandwidth_gbs": 1008}
WORKFLOWS = [
    {"name": "phi notes", "task": "summarization", "data_sensitivity": "regulated", "latency_budget_s": 30},
    {"name": "research", "task": "reasoning", "capability": "frontier", "latency_budget_s": 300},
]


@pytest.fixture(scope="module")
def result(knowledge: Knowledge, predictor: SpeedPredictor) -> dict:
    profile = Profile.model_validate({"hardware": RTX, "workflows": WORKFLOWS})
    return recommend(profile, knowledge, predictor, DETECTED_CPU)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "—"),
        (0.0, "$0"),
        (0.00001, "<$0.0001"),
        (0.00125, "$0.0013"),
        (0.4976, "$0.50"),
        (9.6204, "$9.62"),
        (2500.0, "$2,500"),
        (125_000.4, "$125,000"),
    ],
)
def test_money_is_formatted_for_people(value: float | None, text: str) -> None:
    assert money(value) == text


def test_record_opens_with_the_summary_then_the_dates(result: dict, knowledge: Knowledge) -> None:
    text = markdown_record(result, today=date(2026, 12, 3), knowledge=knowledge)
    lines = text.splitlines()
    assert lines[0] == "# Decision record"
    headings = [line for line in lines if line.startswith("## ")]
    assert headings[:2] == ["## Summary", "## Hardware"]
    summary = text[: text.index("## Hardware")]
    for w in result["workflows"]:
        assert f"| {w['name']} | {w['decision']} |" in summary
    assert "- **Date**: 2026-12-03" in summary
    assert "**Hosted prices as of**: " in summary and "price_date" in summary
    assert "older than 6 months" not in summary  # the catalog is recent on this date
    assert "memory\\_bandwidth\\_gbs" not in summary  # raw hardware keys come later, if at all


def test_record_warns_when_prices_are_older_than_six_months(result: dict, knowledge: Knowledge) -> None:
    text = markdown_record(result, today=date(2028, 1, 1), knowledge=knowledge)
    summary = text[: text.index("## Hardware")]
    assert "a hosted price used here is older than 6 months" in summary


def test_every_record_figure_carries_one_label(result: dict, knowledge: Knowledge) -> None:
    text = markdown_record(result, today=date(2026, 12, 3), knowledge=knowledge)
    allowed = {"measured", "calibrated", "predicted", "published", "assumed", "imputed"}
    rows = [line for line in text.splitlines() if line.startswith("| ") and line.count("|") == 4]
    figures = [r for r in rows if not r.startswith(("| figure", "| workflow"))]
    assert figures
    for row in figures:
        label = row.rsplit("|", 2)[1].strip()
        assert label in allowed, row
    hosted = next(w for w in result["workflows"] if (w["choice"] or {}).get("kind") == "hosted")
    assert figure_labels(hosted)["decode_tps"]["label"] != "predicted" or hosted["choice"]["label"] == "predicted"


def test_weakest_label_of_a_combined_figure() -> None:
    assert weakest("measured", "published") == "published"
    assert weakest("published", "assumed", "predicted") == "assumed"
    assert weakest() == "predicted"


def test_terminal_table_uses_the_same_money_format(result: dict) -> None:
    table = terminal_table(result)
    assert ".0000" not in table and "None" not in table


def test_the_record_carries_the_launch_command_in_a_code_block() -> None:
    from advisor.report import _local_deployment_section

    entry = {
        "choice": {
            "kind": "local",
            "launch": {"engine": "llama.cpp", "command": "llama-server -m qwen3-8b-Q4_K_M.gguf -c 4096 -ngl 99"},
            "serving": {"label": "predicted", "concurrency": 4, "aggregate_output_tok_s": 310.0},
        }
    }
    lines = _local_deployment_section(entry)
    at = lines.index("```sh")
    assert lines[at + 1] == "llama-server -m qwen3-8b-Q4_K_M.gguf -c 4096 -ngl 99" and lines[at + 2] == "```"
    assert any("about 4 requests in flight" in line and "(predicted)" in line for line in lines)
