"""Issue 18 part 3: runtimes side by side from sourced paired measurements (knowledge/runtime_pairs.csv)."""

from __future__ import annotations

import csv
import shutil
import statistics
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from advisor.decide.capability import CapabilityScale
from advisor.decide.catalog import load_catalog
from advisor.decide.costs import Site
from advisor.decide.options import Context, runtime_figures
from advisor.decide.runtime_pairs import (
    FILE,
    PLATFORMS,
    RUNTIMES_B,
    load_runtime_pairs,
    quantile,
    runtime_ratios,
)
from advisor.errors import KnowledgeError
from advisor.knowledge import Knowledge
from advisor.predict import SpeedPredictor
from advisor.profiles import parse_profile
from advisor.recommend import recommend
from advisor.report import markdown_record
from advisor.schemas import Costs, Hardware, Profile, Workflow
from advisor.settings import BENCHMARKS_DIR, KNOWLEDGE_DIR

DETECTED_CPU = {
    "hardware": {"name": "Test CPU", "accelerator": "cpu", "memory_gb": 24.0, "system_ram_gb": 32.0},
    "how": {},
    "notes": [],
    "fingerprint": "hw-test",
}


def file_rows() -> list[dict[str, str]]:
    with (KNOWLEDGE_DIR / FILE).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def file_ratio(platform: str, runtime: str) -> tuple[float, int]:
    """The sourced median decode ratio and pair count, computed from the CSV here (not by the module under test)."""
    ratios = [
        float(r["tg_b"]) / float(r["tg_a"])
        for r in file_rows()
        if r["hardware_type"] == platform and r["runtime_b"] == runtime and r["runtime_a"] == "llama.cpp"
    ]
    return statistics.median(ratios), len(ratios)


# --- the file ---------------------------------------------------------------------------------------------------


def test_the_shipped_file_validates_and_covers_apple_and_nvidia() -> None:
    pairs = load_runtime_pairs(KNOWLEDGE_DIR)
    assert len(pairs) >= 15
    assert {p.platform for p in pairs} <= set(PLATFORMS) and {p.runtime for p in pairs} <= set(RUNTIMES_B)
    assert {("apple", "ollama"), ("apple", "mlx"), ("nvidia", "ollama")} <= set(runtime_ratios(pairs))
    for p in pairs:
        assert p.source_url.startswith("https://") and p.tg_a > 0 and p.tg_b > 0
    # One row per pair: the same machine, model and quantization never appears twice for one runtime and source.
    keys = [(p.hardware_name, p.model, p.quantization, p.runtime, p.source_url) for p in pairs]
    assert len(keys) == len(set(keys))


def test_the_seed_gap_shows_in_the_apple_data() -> None:
    """SEEDS §2: Ollama slower than llama.cpp on Apple Silicon for the same models — the sourced median says so."""
    ratio = runtime_ratios(load_runtime_pairs(KNOWLEDGE_DIR))[("apple", "ollama")]
    median, n = file_ratio("apple", "ollama")
    assert ratio.decode.median == pytest.approx(median) and ratio.decode.pairs == n
    assert ratio.decode.median < 1.0
    assert ratio.decode.low <= ratio.decode.median <= ratio.decode.high
    assert len(ratio.decode.sources) >= 2


def test_quantile_matches_the_linear_rule() -> None:
    assert quantile([1.0, 2.0, 3.0, 4.0, 5.0], 0.5) == 3.0
    assert quantile([1.0, 2.0, 3.0, 4.0, 5.0], 0.1) == pytest.approx(1.4)
    assert quantile([2.0], 0.9) == 2.0


def write_pairs(directory: Path, **changes: str) -> Path:
    """A copy of the shipped file's header and first row with some cells changed."""
    rows = file_rows()
    row = {**rows[0], **changes}
    path = directory / FILE
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerow(row)
    return path


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"source_url": ""}, "source_url", "required, but empty"),
        ({"source_url": "a forum post"}, "source_url", "http(s) URL"),
        ({"source_date": "March"}, "source_date", "YYYY"),
        ({"tg_b": "fast"}, "tg_b", "is not a number"),
        ({"tg_a": "-3"}, "tg_a", "above 0"),
        ({"pp_b": ""}, "pp_b", "needs both pp_a and pp_b"),
        ({"prompt_tokens": "51.5"}, "prompt_tokens", "whole number"),
        ({"runtime_b": "koboldcpp"}, "runtime_b", "unknown runtime 'koboldcpp'"),
        ({"runtime_a": "ollama"}, "runtime_a", "must be llama.cpp"),
        ({"hardware_type": "tpu"}, "hardware_type", "must be one of"),
    ],
)
def test_a_bad_row_names_the_file_row_and_field(
    tmp_path: Path, changes: dict[str, str], field: str, words: str
) -> None:
    path = write_pairs(tmp_path, **changes)
    with pytest.raises(KnowledgeError) as err:
        load_runtime_pairs(tmp_path)
    message = str(err.value)
    assert str(path) in message and "row 2" in message and f"column {field}" in message and words in message


def test_a_missing_column_and_a_missing_file(tmp_path: Path) -> None:
    assert load_runtime_pairs(tmp_path) == ()
    (tmp_path / FILE).write_text("hardware_name,tg_a\nx,1\n", encoding="utf-8")
    with pytest.raises(KnowledgeError, match="missing column"):
        load_runtime_pairs(tmp_path)


# --- the decision -------------------------------------------------------------------------------------------------


def apple_entry(knowledge: Knowledge, predictor: SpeedPredictor, **kwargs: Any) -> dict[str, Any]:
    path = BENCHMARKS_DIR / "profiles" / "judge-panel-m4-pro.yaml"
    result = recommend(parse_profile(path.read_text(), source=str(path)), knowledge, predictor, DETECTED_CPU, **kwargs)
    return result


def test_apple_shows_llama_cpp_ahead_of_ollama_by_the_sourced_median(
    knowledge: Knowledge, predictor: SpeedPredictor
) -> None:
    result = apple_entry(knowledge, predictor)
    entry = result["workflows"][0]
    rows = {r["runtime"]: r for r in entry["choice"]["runtime_comparison"]}
    assert {"llama.cpp", "ollama"} <= set(rows)
    median, n = file_ratio("apple", "ollama")
    ollama, llama = rows["ollama"], rows["llama.cpp"]
    assert ollama["label"] == "published" and ollama["pairs"] == n
    assert ollama["decode_tps"] == pytest.approx(llama["decode_tps"] * median, rel=0.01)
    assert ollama["ratio_to_llama_cpp"] == pytest.approx(median, abs=1e-3)
    assert llama["decode_tps"] > ollama["decode_tps"]
    assert llama["seconds_per_accepted"] < ollama["seconds_per_accepted"]
    low, high = ollama["ratio_range"]
    assert low <= median <= high
    lo_tps, hi_tps = ollama["decode_tps_interval"]
    assert lo_tps < ollama["decode_tps"] < hi_tps
    assert f"{n} sourced pairs" in ollama["ratio_basis"] and ollama["sources"]
    # MLX on Apple: also the llama.cpp figure times its own sourced ratio.
    mlx_median, mlx_n = file_ratio("apple", "mlx")
    assert rows["mlx"]["label"] == "published" and rows["mlx"]["pairs"] == mlx_n
    assert rows["mlx"]["decode_tps"] == pytest.approx(llama["decode_tps"] * mlx_median, rel=0.01)
    assert llama["label"] == "predicted" and llama["pairs"] == 0
    record = markdown_record(result)
    assert "| runtime | decode | s/accepted | label | basis |" in record
    assert f"{n} sourced pairs, median ratio {median:.2f}" in record


def test_the_headline_ranks_by_the_runtime_row_it_shows(knowledge: Knowledge, predictor: SpeedPredictor) -> None:
    """A chosen MLX / Ollama option takes its published row's decode and TTFT: headline, rank and table agree."""
    entry = apple_entry(knowledge, predictor)["workflows"][0]
    choice, shown = entry["choice"], entry["predicted"]
    rows = {r["runtime"]: r for r in choice["runtime_comparison"]}
    row = rows[choice["runtime"]]
    assert row["pairs"] > 0, "this profile's M4 Pro choice runs on a paired runtime (MLX)"
    assert shown["decode_tps"] == pytest.approx(row["decode_tps"], rel=1e-3)
    assert shown["decode_tps_interval"] == pytest.approx(row["decode_tps_interval"], rel=1e-3)
    assert shown["ttft_s"] == pytest.approx(row["ttft_s"], rel=1e-3)
    assert shown["seconds_per_accepted"] == pytest.approx(row["seconds_per_accepted"], rel=0.01)
    assert shown["labels"]["decode_tps"]["label"] == "published"


def test_without_the_file_apple_keeps_the_predictor_figures(
    knowledge: Knowledge, predictor: SpeedPredictor, tmp_path: Path
) -> None:
    """The published figures come from the file: without it the rows are labelled as before (the test can fail)."""
    entry = apple_entry(knowledge, predictor, knowledge_dir=tmp_path, catalog=load_catalog(KNOWLEDGE_DIR))["workflows"][
        0
    ]
    rows = {r["runtime"]: r for r in entry["choice"]["runtime_comparison"]}
    assert all(r["label"] == "predicted" and r["pairs"] == 0 for r in rows.values())
    with_file = {
        r["runtime"]: r for r in apple_entry(knowledge, predictor)["workflows"][0]["choice"]["runtime_comparison"]
    }
    assert with_file["ollama"]["decode_tps"] != pytest.approx(rows["ollama"]["decode_tps"])


def test_a_platform_without_pairs_keeps_its_label(knowledge: Knowledge, predictor: SpeedPredictor) -> None:
    assert not any(r["hardware_type"] == "amd" for r in file_rows())
    profile = Profile.model_validate(
        {
            "hardware": {
                "name": "AMD Radeon RX 7900 XT",
                "accelerator": "amd",
                "memory_gb": 20,
                "memory_bandwidth_gbs": 800,
            },
            "workflows": [{"name": "w", "task": "chat", "input_tokens": 500, "output_tokens": 200}],
        }
    )
    entry = recommend(profile, knowledge, predictor, DETECTED_CPU)["workflows"][0]
    local = [entry["choice"], *entry["alternatives"]]
    rows = [r for o in local if o.get("kind") == "local" for r in o.get("runtime_comparison") or []]
    ollama = [r for r in rows if r["runtime"] == "ollama"]
    assert ollama, "the AMD profile compares Ollama (the catalog has published AMD Ollama rows)"
    assert all(r["label"] == "predicted" and r["pairs"] == 0 and r["ratio_range"] is None for r in ollama)
    assert all("no sourced ollama / llama.cpp pairs for amd" in r["ratio_basis"] for r in ollama)


# --- a calibration of the runtime itself wins ----------------------------------------------------------------------


def figures(knowledge: Knowledge, *, calibrated_runtime: str | None) -> dict[str, Any]:
    workflow = Workflow(name="w", input_tokens=500, output_tokens=200)
    ctx = Context(
        workflow,
        knowledge,
        CapabilityScale(knowledge),
        load_catalog(KNOWLEDGE_DIR),
        Site(Costs(), 1.0, 1.0),
        48,
        80,
        hardware=Hardware(name="Apple M4 Pro", accelerator="apple", memory_gb=64),
    )
    option: Any = SimpleNamespace(tokens=200.0, success=0.9)
    basis = "predicted+calibrated"
    rows = [
        (
            "llama.cpp",
            {"pred_tg_tok_s": 40.0, "pred_tg_low": 30.0, "pred_tg_high": 50.0, "pred_pp_tok_s": 400.0, "basis": basis},
        ),
        (
            "ollama",
            {"pred_tg_tok_s": 38.0, "pred_tg_low": 28.0, "pred_tg_high": 48.0, "pred_pp_tok_s": 380.0, "basis": basis},
        ),
    ]
    ratios = runtime_ratios(load_runtime_pairs(KNOWLEDGE_DIR))
    out = runtime_figures(ctx, option, rows, ratios=ratios, calibrated_runtime=calibrated_runtime)
    return {f.runtime: f for f in out}


def test_an_ollama_calibration_wins_over_the_published_ratio(knowledge: Knowledge) -> None:
    mine = figures(knowledge, calibrated_runtime="ollama")["ollama"]
    assert mine.label == "calibrated" and mine.decode_tps == 38.0 and mine.pairs == 0
    # Calibrated with llama.cpp only: Ollama is llama.cpp's calibrated figure times the sourced ratio.
    median, n = file_ratio("apple", "ollama")
    other = figures(knowledge, calibrated_runtime="llama.cpp")
    assert other["ollama"].label == "published" and other["ollama"].pairs == n
    assert other["ollama"].decode_tps == pytest.approx(40.0 * median)
    assert other["ollama"].decode_low is not None and other["ollama"].decode_high is not None
    assert other["ollama"].decode_low < other["ollama"].decode_tps < other["ollama"].decode_high
    assert other["llama.cpp"].label == "calibrated"


def test_the_copy_in_a_temp_dir_is_the_same_data(tmp_path: Path) -> None:
    shutil.copy(KNOWLEDGE_DIR / FILE, tmp_path / FILE)
    assert load_runtime_pairs(tmp_path) == load_runtime_pairs(KNOWLEDGE_DIR)
