"""CSV cells that a spreadsheet cannot run: text starting with = + - @ tab or CR is escaped, numbers stay numbers.

Spreadsheets evaluate a cell such as `=cmd|' /C calc'!A0` or `+HYPERLINK(...)` as a formula (OWASP "CSV
injection"); a leading single quote makes them show the text instead. Numbers are written as numbers, so a
negative figure such as -0.5 is never quoted.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A cell that is just a number ("-0.5", "1e3") is data, not a formula: it stays a number.
NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def escape_cell(value: Any) -> Any:
    """A value safe for a CSV cell: text that a spreadsheet would read as a formula gets a leading quote."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return "" if isinstance(value, float) and not math.isfinite(value) else value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) and not NUMBER.match(text) else text


def write_csv_rows(
    rows: Iterable[Mapping[str, Any]], fieldnames: Sequence[str], *, float_format: str | None = None
) -> str:
    """CSV text (header first, '\\n' line ends) with every text cell escaped; floats optionally formatted."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([escape_cell(name) for name in fieldnames])  # a copied header can carry a formula too
    for row in rows:
        cells = []
        for name in fieldnames:
            cell = escape_cell(row.get(name))
            if float_format and isinstance(cell, float):
                cell = format(cell, float_format)
            cells.append(cell)
        writer.writerow(cells)
    return buffer.getvalue()
