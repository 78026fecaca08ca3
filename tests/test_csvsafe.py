"""Spreadsheet formula escaping for every CSV export: text escaped, numbers written as numbers."""

from __future__ import annotations

import csv
import io

import pytest

from advisor.csvsafe import escape_cell, write_csv_rows


@pytest.mark.parametrize(
    "text",
    ["=cmd|' /C calc'!A0", '+HYPERLINK("http://x","y")', "-2+3", "@SUM(A1:A2)", "\tlead", "\rlead"],
)
def test_formula_starts_are_quoted(text: str) -> None:
    assert escape_cell(text) == "'" + text


def test_plain_text_and_numbers_pass_through() -> None:
    assert escape_cell("RTX 4090") == "RTX 4090"
    assert escape_cell("a=b") == "a=b"  # only the first character decides
    assert escape_cell(-0.5) == -0.5 and escape_cell(3) == 3  # a negative number is a number, not a formula
    assert escape_cell(None) == "" and escape_cell(float("nan")) == ""
    assert escape_cell("-8") == "-8" and escape_cell("+1.5e3") == "+1.5e3"  # numeric text stays a number
    assert escape_cell("-1+cmd") == "'-1+cmd" and escape_cell("-inf") == "'-inf"


def test_round_trip_keeps_numbers_numeric_and_formulas_inert() -> None:
    rows = [{"name": "=1+1", "value": -1.25, "note": "@x"}, {"name": "ok", "value": 2.0, "note": ""}]
    text = write_csv_rows(rows, ["name", "value", "note"], float_format=".2f")
    back = list(csv.DictReader(io.StringIO(text)))
    assert back[0] == {"name": "'=1+1", "value": "-1.25", "note": "'@x"}
    assert back[1]["value"] == "2.00"
    assert float(back[0]["value"]) == -1.25


def test_a_header_that_looks_like_a_formula_is_escaped_too() -> None:
    text = write_csv_rows([{"=evil": "x"}], ["=evil"])
    assert text.splitlines()[0] == "'=evil"
