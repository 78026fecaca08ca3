"""Exports: formula injection escaped in the CSV, Markdown and HTML injection escaped in the decision record."""

from __future__ import annotations

import csv
import io

from advisor.knowledge import Knowledge
from advisor.predict import SpeedPredictor
from advisor.recommend import recommend
from advisor.report import csv_rows, markdown_record, md, terminal_table
from advisor.schemas import Profile

DETECTED_CPU = {
    "hardware": {"name": "Test CPU", "accelerator": "cpu", "memory_gb": 24.0, "system_ram_gb": 32.0},
    "how": {},
    "notes": [],
    "fingerprint": "hw-test",
}
HOSTILE = [
    "=cmd|' /C calc'!A0",
    '+HYPERLINK("http://x")',
    "@SUM(A1:A2)",
    "-2+3",
    "\tTAB",
    "\rCR",
    "notes\n# injected heading\n<script>alert(1)</script>",
]


def result(knowledge: Knowledge, predictor: SpeedPredictor) -> dict:
    workflows = [{"name": name, "data_sensitivity": "regulated", "latency_budget_s": 60} for name in HOSTILE]
    hardware = {"name": "RTX 4090", "accelerator": "nvidia"}
    profile = Profile.model_validate({"hardware": hardware, "workflows": workflows})
    return recommend(profile, knowledge, predictor, DETECTED_CPU)


def test_csv_text_cells_cannot_run_as_formulas(knowledge: Knowledge, predictor: SpeedPredictor) -> None:
    rows = list(csv.DictReader(io.StringIO(csv_rows(result(knowledge, predictor)), newline="")))
    assert [r["workflow"].lstrip("'") for r in rows] == HOSTILE  # round-trips, only the guard quote added
    for row in rows:
        for column, cell in row.items():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (column, cell)
        float(row["seconds_per_accepted"])  # numbers stay numbers, unquoted


def test_markdown_record_escapes_names(knowledge: Knowledge, predictor: SpeedPredictor) -> None:
    text = markdown_record(result(knowledge, predictor))
    assert "<script>" not in text and "&lt;script&gt;" in text
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert not any("injected heading" in h and not h.startswith("## notes") for h in headings)
    assert all(line.startswith(("# Decision", "## ")) for line in headings)
    assert "\x0d" not in terminal_table(result(knowledge, predictor)).replace("\n", "")


def test_md_folds_lines_and_escapes_markup() -> None:
    assert md("a\n# b") == "a \\# b"
    assert md("x | y") == "x \\| y"
    assert md("<b>&") == "&lt;b&gt;&amp;"
