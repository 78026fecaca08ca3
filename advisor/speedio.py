"""The predict-speed CSV contract: read rows, predict with intervals, write the same rows plus predictions.

The file is judged as a whole only for what makes it unreadable (not UTF-8, not a CSV, missing columns): that is
an InputError naming the file. Every cell is judged by its row: a bad or implausible cell gives that row empty
predictions and a `reason`, and the other rows are still predicted.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Any

from advisor.csvsafe import write_csv_rows
from advisor.errors import InputError
from advisor.knowledge import Knowledge
from advisor.predict import SpeedPredictor

INPUT_COLUMNS = [
    "hardware_name",
    "hardware_type",
    "memory_bandwidth_gbs",
    "memory_gb",
    "model_name",
    "total_params_b",
    "active_params_b",
    "is_moe",
    "quantization",
    "bits_per_weight",
    "backend",
]
OPTIONAL_COLUMNS = ["prompt_tokens", "output_tokens", "context_tokens"]
OUTPUT_COLUMNS = ["pred_tg_tok_s", "pred_tg_low", "pred_tg_high", "pred_pp_tok_s", "pred_pp_low", "pred_pp_high"]
TTFT_COLUMNS = ["pred_ttft_ms", "pred_ttft_low", "pred_ttft_high"]
E2E_COLUMNS = ["pred_e2e_ms"]
MEASURED_COLUMNS = ["tg_tok_s", "pp_tok_s"]
TRAILER = ["basis", "reason", "notes"]
MAX_FIELD_CHARS = 1_000_000  # a "cell" longer than this is not a CSV cell


def read_rows(path: Path, *, required: list[str]) -> tuple[list[str], list[dict[str, Any]]]:
    """Header and rows of a CSV as text cells; a row with more cells than columns gets `_row_problem`.

    Raises InputError naming the file when it cannot be read as a UTF-8 CSV with the required columns.
    """
    csv.field_size_limit(max(MAX_FIELD_CHARS, 1))
    try:
        text = path.read_text(encoding="utf-8-sig")
        if "\x00" in text:
            raise InputError(f"{path}: contains NUL bytes: a binary file, not a CSV; save it as CSV (UTF-8)")
        with io.StringIO(text, newline="") as handle:
            reader = csv.reader(handle)
            first = next(reader, None)
            header = [h.strip() for h in (first or [])]
            missing = [c for c in required if c not in header]
            if missing:
                raise InputError(
                    f"{path}: not a predict-speed CSV: missing column(s) {', '.join(missing)}; "
                    f"the header must include: {', '.join(required)}"
                )
            rows = []
            for line, cells in enumerate(reader, start=2):
                if not any(c.strip() for c in cells):
                    continue  # blank line
                row: dict[str, Any] = {
                    name: (cells[i].strip() if i < len(cells) else "") for i, name in enumerate(header)
                }
                if len(cells) > len(header):
                    row["_row_problem"] = (
                        f"row {line} has {len(cells)} cells for {len(header)} columns; quote cells that contain commas"
                    )
                row["_line"] = line
                rows.append(row)
    except OSError as exc:
        raise InputError(f"cannot read '{path}' ({exc.strerror}); check the path") from exc
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text CSV file; save it as CSV (UTF-8)") from None
    except csv.Error as exc:
        raise InputError(f"{path}: not a readable CSV ({exc}); save it as CSV (UTF-8)") from None
    return header, rows


def predict_csv(
    path: Path, predictor: SpeedPredictor, knowledge: Knowledge, *, measured_path: Path | None = None
) -> str:
    """The output CSV text: input columns, then predictions, basis, and a reason where a row cannot be predicted."""
    header, rows = read_rows(path, required=INPUT_COLUMNS)
    measured: list[dict[str, Any]] = []
    if measured_path is not None:
        _, measured_rows = read_rows(measured_path, required=[*INPUT_COLUMNS, *MEASURED_COLUMNS])
        for row in measured_rows:
            if row.get("_row_problem"):
                print(f"{measured_path}: measured {row['_row_problem']}; row ignored", file=sys.stderr)
            else:
                measured.append(row)
    usable = [i for i, row in enumerate(rows) if not row.get("_row_problem")]
    predictions: list[dict[str, Any]] = [{"reason": row.get("_row_problem", "")} for row in rows]
    if usable:
        for i, pred in zip(usable, predictor.predict([rows[i] for i in usable], measured=measured), strict=True):
            predictions[i] = pred
    columns = list(OUTPUT_COLUMNS)
    if "prompt_tokens" in header:
        columns += TTFT_COLUMNS
        if "output_tokens" in header:
            columns += E2E_COLUMNS
    extra = [c for c in header if c not in columns + TRAILER]
    out_rows = []
    for row, pred in zip(rows, predictions, strict=True):
        out: dict[str, Any] = {c: row.get(c, "") for c in extra}
        for col in columns:
            out[col] = _number(pred.get(col))
        out["basis"] = pred.get("basis", "") if not pred.get("reason") else ""
        reason = pred.get("reason", "")
        out["reason"] = f"row {row['_line']}: {reason}" if reason else ""
        out["notes"] = "; ".join(pred.get("notes", []))
        out_rows.append(out)
    return write_csv_rows(out_rows, [*extra, *columns, *TRAILER])


def _number(value: Any) -> float | str:
    """A prediction as a number a spreadsheet reads as one: 4 significant digits below 100, else 2 decimals."""
    if value is None:
        return ""
    number = float(value)
    return round(number, 2) if abs(number) >= 100 else float(f"{number:.4g}")
