"""The predict-speed CSV edge: rows judged one by one, malformed files named, formulas escaped, TTFT columns."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from advisor.errors import InputError
from advisor.knowledge import Knowledge
from advisor.predict import SpeedPredictor
from advisor.speedio import INPUT_COLUMNS, OUTPUT_COLUMNS, TTFT_COLUMNS, predict_csv
from tests.test_predict import row, write_csv


def run(tmp_path: Path, predictor: SpeedPredictor, knowledge: Knowledge, rows: list[dict[str, object]], **kw: object):
    src = tmp_path / "in.csv"
    extra = sorted({k for r in rows for k in r} - set(INPUT_COLUMNS))
    write_csv(src, rows, extra=extra)
    return list(csv.DictReader(io.StringIO(predict_csv(src, predictor, knowledge, **kw))))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ({"memory_bandwidth_gbs": "nan"}, "memory_bandwidth_gbs nan is not a finite number"),
        ({"memory_bandwidth_gbs": "inf"}, "memory_bandwidth_gbs inf is not a finite number"),
        ({"memory_bandwidth_gbs": "1e308"}, "memory_bandwidth_gbs 1e308 is outside the physical bounds 0.5-20000 GB/s"),
        ({"total_params_b": "1e-300", "active_params_b": "1e-300"}, "outside the physical bounds 0.001-10000"),
        ({"active_params_b": "40"}, "active_params_b 40 exceeds total_params_b 8.03"),
        ({"bits_per_weight": "0.1"}, "bits_per_weight 0.1 is outside the physical bounds 1-32 bits"),
        ({"total_params_b": "-8"}, "total_params_b -8 is outside the physical bounds"),
        ({"memory_gb": "lots"}, "memory_gb 'lots' is not a number"),
        ({"is_moe": "maybe"}, "is_moe 'maybe' must be one of yes, no"),
        ({"hardware_type": "gpu"}, "hardware_type 'gpu' must be one of apple, nvidia, amd, intel, cpu"),
        ({"prompt_tokens": "0"}, "prompt_tokens 0 is outside the physical bounds 1-1e+07 tokens"),
    ],
)
def test_a_bad_cell_empties_its_row_only(
    tmp_path: Path, predictor: SpeedPredictor, knowledge: Knowledge, cell: dict[str, object], expected: str
) -> None:
    out = run(tmp_path, predictor, knowledge, [row(), row(**cell), row()])
    assert out[1]["pred_tg_tok_s"] == "" and out[1]["pred_pp_tok_s"] == "" and out[1]["basis"] == ""
    assert out[1]["reason"].startswith("row 3: ") and expected in out[1]["reason"]
    assert float(out[0]["pred_tg_tok_s"]) > 0 and float(out[2]["pred_tg_tok_s"]) > 0  # the others still predicted


def test_a_row_with_too_many_cells_gets_a_reason(
    tmp_path: Path, predictor: SpeedPredictor, knowledge: Knowledge
) -> None:
    src = tmp_path / "in.csv"
    write_csv(src, [row()])
    src.write_text(src.read_text() + "RTX 4090,nvidia,1008,24,Llama,8,8,no,Q4_K_M,4.89,cuda,extra\n")
    out = list(csv.DictReader(io.StringIO(predict_csv(src, predictor, knowledge))))
    assert float(out[0]["pred_tg_tok_s"]) > 0
    assert out[1]["pred_tg_tok_s"] == "" and "row 3 has 12 cells for 11 columns" in out[1]["reason"]


def test_an_absurd_measurement_is_ignored_per_row(
    tmp_path: Path, predictor: SpeedPredictor, knowledge: Knowledge
) -> None:
    lab = {"hardware_name": "Lab box", "memory_bandwidth_gbs": 500}
    measured = tmp_path / "m.csv"
    write_csv(
        measured,
        [{**row(**lab), "tg_tok_s": "1e300", "pp_tok_s": 400}, {**row(**lab), "tg_tok_s": 900, "pp_tok_s": 400}],
        extra=["tg_tok_s", "pp_tok_s"],
    )
    before = run(tmp_path, predictor, knowledge, [row(**lab)])[0]
    after = run(tmp_path, predictor, knowledge, [row(**lab)], measured_path=measured)[0]
    assert float(after["pred_tg_tok_s"]) == pytest.approx(float(before["pred_tg_tok_s"]))  # nothing shifted it
    assert "measured row 2 ignored: tg_tok_s 1e300 is outside the physical bounds" in after["notes"]
    # 900 tok/s of an 8B Q4 model would read 4.4 TB/s from a 500 GB/s bus: physics refuses it too.
    assert "measured row 3 ignored: tg_tok_s 900 would read" in after["notes"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not a UTF-8 text CSV file"),
        (b'{"rows": [1, 2, 3]}\n', "not a predict-speed CSV: missing column(s) hardware_name"),
        (b"", "missing column(s)"),
        (b"hardware_name,backend\nx,y\n", "missing column(s) hardware_type"),
        (",".join(INPUT_COLUMNS).encode() + b"\nA\x00B,nvidia\n", "a binary file, not a CSV"),
    ],
)
def test_a_malformed_file_is_an_input_error_naming_it(
    tmp_path: Path, predictor: SpeedPredictor, knowledge: Knowledge, content: bytes, expected: str
) -> None:
    src = tmp_path / "bad.csv"
    src.write_bytes(content)
    with pytest.raises(InputError, match="bad.csv") as info:
        predict_csv(src, predictor, knowledge)
    assert expected in str(info.value) and info.value.exit_code == 2


def test_formula_cells_are_escaped_and_numbers_stay_numbers(
    tmp_path: Path, predictor: SpeedPredictor, knowledge: Knowledge
) -> None:
    src = tmp_path / "in.csv"
    write_csv(src, [row(hardware_name="=cmd|' /C calc'!A0", model_name='+HYPERLINK("http://x")', backend="@SUM(A1)")])
    text = predict_csv(src, predictor, knowledge)
    out = list(csv.DictReader(io.StringIO(text)))[0]
    assert out["hardware_name"] == "'=cmd|' /C calc'!A0"
    assert out["model_name"].startswith("'+") and out["backend"] == "'@SUM(A1)"
    assert out["memory_bandwidth_gbs"] == "1008" and float(out["pred_tg_tok_s"]) > 0  # numbers are numbers
    assert not any(line.startswith(("=", "+", "@", "-")) for line in text.splitlines())


def test_ttft_and_e2e_columns_at_the_workflow_shape(
    tmp_path: Path, predictor: SpeedPredictor, knowledge: Knowledge
) -> None:
    rows = [
        {**row(), "prompt_tokens": "", "output_tokens": "", "context_tokens": "", "team": "support"},
        {**row(), "prompt_tokens": 512, "output_tokens": "", "context_tokens": "", "team": "=x"},
        {**row(), "prompt_tokens": 16000, "output_tokens": 400, "context_tokens": "", "team": ""},
        {**row(), "prompt_tokens": 512, "output_tokens": "", "context_tokens": 32000, "team": ""},
    ]
    out = run(tmp_path, predictor, knowledge, rows)
    assert list(out[0])[-8:-3] == ["pred_pp_high", *TTFT_COLUMNS, "pred_e2e_ms"]
    assert out[0]["team"] == "support" and out[1]["team"] == "'=x"  # other columns copied, escaped
    assert out[0]["pred_ttft_ms"] == "" and float(out[0]["pred_tg_tok_s"]) > 0  # no prompt: today's behaviour
    short, long, deep = out[1], out[2], out[3]
    assert float(short["pred_ttft_low"]) < float(short["pred_ttft_ms"]) < float(short["pred_ttft_high"])
    assert float(long["pred_pp_tok_s"]) < float(short["pred_pp_tok_s"])  # prefill slows as the prompt grows
    assert float(long["pred_ttft_ms"]) > 20 * float(short["pred_ttft_ms"]) / 2
    assert float(deep["pred_tg_tok_s"]) < float(short["pred_tg_tok_s"])  # decode reads a longer KV cache
    e2e = float(long["pred_e2e_ms"])
    assert e2e > float(long["pred_ttft_ms"]) + 400 * 1000 / float(long["pred_tg_tok_s"]) * 0.99
    assert short["pred_e2e_ms"] == ""


def test_a_measured_ttft_sets_this_hardwares_overhead(
    tmp_path: Path, predictor: SpeedPredictor, knowledge: Knowledge
) -> None:
    lab = {"hardware_name": "Lab box", "memory_bandwidth_gbs": 500}
    measured = tmp_path / "m.csv"
    write_csv(
        measured,
        [{**row(**lab), "tg_tok_s": 60, "pp_tok_s": 1000, "prompt_tokens": 1000, "ttft_ms": 1400}],
        extra=["tg_tok_s", "pp_tok_s", "prompt_tokens", "ttft_ms"],
    )
    rows = [{**row(**lab), "prompt_tokens": 1000}]
    out = run(tmp_path, predictor, knowledge, rows, measured_path=measured)[0]
    # 1400 ms measured - 1000 tokens at the measured 1000 tok/s = 400 ms of overhead on this machine.
    prefill_ms = 1000 * 1000 / float(out["pred_pp_tok_s"])
    assert float(out["pred_ttft_ms"]) == pytest.approx(400 + prefill_ms, rel=0.01)
    assert "overhead measured on this hardware" in out["notes"]


def test_output_keeps_the_contract_columns(tmp_path: Path, predictor: SpeedPredictor, knowledge: Knowledge) -> None:
    out = run(tmp_path, predictor, knowledge, [row()])
    assert list(out[0]) == [*INPUT_COLUMNS, *OUTPUT_COLUMNS, "basis", "reason", "notes"]
