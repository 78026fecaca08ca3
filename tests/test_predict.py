"""Knowledge validation, the speed predictor, memory fit, success model and the predict-speed contract."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from advisor.errors import KnowledgeError
from advisor.knowledge import Knowledge, load_knowledge
from advisor.predict import (
    ASSUMED_OVERHEAD_MS,
    TRUSTED_TYPES,
    SpeedPredictor,
    UntrustedCache,
    feature_frame,
    fit_overhead,
    get_predictor,
    knowledge_digest,
    kv_cache_gb,
    load_predictor,
    memory_fit,
    save_predictor,
    success_estimate,
    task_score,
)
from advisor.settings import KNOWLEDGE_DIR
from advisor.speedio import INPUT_COLUMNS, OUTPUT_COLUMNS, predict_csv

# --- knowledge -------------------------------------------------------------------------------------------


def test_knowledge_meets_the_catalog_floor(knowledge: Knowledge) -> None:
    assert len(knowledge.models) >= 35 and len(knowledge.hardware) >= 60 and len(knowledge.hosted) >= 12
    assert len(knowledge.speeds) >= 300 and len(knowledge.quantization) >= 10
    ids = {m.id for m in knowledge.models}
    for required in (
        "gemma-4-31b",
        "gemma-4-26b-a4b",
        "gemma-4-e2b",
        "qwen3.5-27b",
        "qwen3-coder-30b-a3b",
        "qwen3-coder-next",
        "llama-4-scout",
        "llama-4-maverick",
        "mistral-small-4",
        "gpt-oss-120b",
        "gpt-oss-20b",
        "glm-5.1",
        "diffusiongemma-26b-a4b",
        "smollm2-135m",
    ):
        assert required in ids, required
    assert all(m.sources for m in knowledge.models)
    assert all(
        row["source_url"] and row["source_date"] for row in knowledge.hardware + knowledge.hosted + knowledge.speeds
    )


def copy_knowledge(tmp_path: Path) -> Path:
    target = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE_DIR, target)
    return target


def test_unsourced_fact_is_rejected_with_model_and_field(tmp_path: Path) -> None:
    directory = copy_knowledge(tmp_path)
    text = (directory / "models.yaml").read_text()
    text = text.replace("typical_thinking_tokens: null", "typical_thinking_tokens: 500", 1)
    (directory / "models.yaml").write_text(text)
    with pytest.raises(KnowledgeError, match="gemma-4-31b: facts without a source: typical_thinking_tokens"):
        load_knowledge(directory)


def test_malformed_csv_cell_names_file_row_and_column(tmp_path: Path) -> None:
    directory = copy_knowledge(tmp_path)
    lines = (directory / "hardware.csv").read_text().splitlines()
    cells = next(csv.reader([lines[3]]))
    cells[3] = "fast"  # memory_bandwidth_gbs
    buffer = io.StringIO()
    csv.writer(buffer).writerow(cells)
    lines[3] = buffer.getvalue().strip()
    (directory / "hardware.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(
        KnowledgeError, match=r"hardware.csv, row 4, column memory_bandwidth_gbs: 'fast' is not a number"
    ):
        load_knowledge(directory)


def test_knowledge_validate_cli(tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "advisor", "knowledge", "validate"], capture_output=True, text=True, timeout=120
    )
    assert ok.returncode == 0 and ok.stdout.startswith("ok:")
    directory = copy_knowledge(tmp_path)
    (directory / "models.yaml").write_text("- id: Bad Id\n")
    bad = subprocess.run(
        [sys.executable, "-m", "advisor", "knowledge", "validate", "--dir", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "models.yaml" in bad.stderr and "Traceback" not in bad.stderr


def test_hardware_names_match_catalog_rows(knowledge: Knowledge) -> None:
    cases = {
        "NVIDIA GeForce RTX 4090": "RTX 4090",
        "Apple M4 Max 40c GPU": "Apple M4 Max (40-core GPU)",
        "RTX 4090 (host Intel 265K)": "RTX 4090",
        "Tesla T4": "NVIDIA T4",
    }
    for name, expected in cases.items():
        match = knowledge.hardware_named(name)
        assert match and match["name"] == expected, name
    # A different product with the same model number is never a match: no borrowed bandwidth.
    tiers = {
        "RTX 4070 Ti": "RTX 4070 Ti",
        "RTX 4060 Laptop GPU": "RTX 4060 Laptop",
        "RTX 5060 8GB": "RTX 5060",
        "NVIDIA Jetson AGX Thor": None,
        "NVIDIA Jetson Orin Nano 8GB": None,
    }
    for name, expected in tiers.items():
        match = knowledge.hardware_named(name)
        assert (match["name"] if match else None) == expected, name
    pro = knowledge.hardware_named("Apple M4 Pro 14c GPU")
    assert pro and pro["name"].startswith("Apple M4 Pro")
    assert knowledge.hardware_named("2x RTX 4090") is None  # one card's figures would mislead
    assert knowledge.hardware_named("Quantum abacus") is None


# --- speed predictor ---------------------------------------------------------------------------------------


def row(**over: object) -> dict[str, object]:
    base = {
        "hardware_name": "RTX 4090",
        "hardware_type": "nvidia",
        "memory_bandwidth_gbs": 1008,
        "memory_gb": 24,
        "model_name": "Llama 3 8B",
        "total_params_b": 8.03,
        "active_params_b": 8.03,
        "is_moe": "no",
        "quantization": "Q4_K_M",
        "bits_per_weight": 4.89,
        "backend": "llama.cpp-cuda",
    }
    return {**base, **over}


def test_predictions_are_labelled_with_intervals_around_them(predictor: SpeedPredictor) -> None:
    pred = predictor.predict([row()])[0]
    assert pred["label"] == "predicted" and pred["basis"] == "predicted"
    for name in ("tg", "pp"):
        assert pred[f"pred_{name}_low"] < pred[f"pred_{name}_tok_s"] < pred[f"pred_{name}_high"]
    # Physics: decode cannot beat the bandwidth roofline by much (1008 GB/s / 4.9 GB per token ~ 205 tok/s).
    assert 50 < pred["pred_tg_tok_s"] < 205


def test_decode_follows_the_physics(predictor: SpeedPredictor) -> None:
    small, big = predictor.predict(
        [row(total_params_b=3, active_params_b=3), row(total_params_b=70, active_params_b=70)]
    )
    assert small["pred_tg_tok_s"] > 3 * big["pred_tg_tok_s"]  # fewer bytes per token
    slow_bus, fast_bus = predictor.predict(
        [row(hardware_name="x", memory_bandwidth_gbs=200), row(hardware_name="y", memory_bandwidth_gbs=2000)]
    )
    assert fast_bus["pred_tg_tok_s"] > 2 * slow_bus["pred_tg_tok_s"]
    moe = predictor.predict([row(total_params_b=30.5, active_params_b=3.3, is_moe="yes")])[0]
    dense = predictor.predict([row(total_params_b=30.5, active_params_b=30.5)])[0]
    assert moe["pred_tg_tok_s"] > 2 * dense["pred_tg_tok_s"]  # active parameters set the speed


def test_offloaded_weights_are_read_from_host_ram() -> None:
    from advisor.predict import ASSUMED_HOST_BANDWIDTH_GBS, decode_roofline, offload_share

    assert offload_share(20.0, 24.0) == 0.0  # fits: nothing offloaded
    assert offload_share(40.0, 24.0) == pytest.approx(0.4)
    assert offload_share(40.0, None) == 0.0  # memory unknown: assume it fits, say nothing more
    on_device = decode_roofline(40.0, 1000.0, 0.0)
    assert on_device == pytest.approx(25.0)
    half = decode_roofline(40.0, 1000.0, 0.5)
    # Half the bytes now come over the host bus: far slower than the device alone, faster than host RAM alone.
    assert ASSUMED_HOST_BANDWIDTH_GBS / 40.0 < half < on_device / 5


def test_predictions_slow_down_when_the_model_spills_out_of_vram(predictor: SpeedPredictor) -> None:
    fits, spills = predictor.predict([row(memory_gb=48), row(memory_gb=3)])
    assert spills["pred_tg_tok_s"] < 0.5 * fits["pred_tg_tok_s"]


def test_excluded_published_rows_are_kept_but_not_learned_from(knowledge: Knowledge) -> None:
    excluded = [r for r in knowledge.speeds if r.get("excluded")]
    assert excluded, "the knowledge marks a few published rows as unusable, with a reason"
    assert all(len(r["excluded"]) > 20 for r in excluded)  # a reason a reader can check, not a flag
    assert not any(r.get("excluded") for r in knowledge.training_speeds)
    assert len(knowledge.training_speeds) == len(knowledge.speeds) - len(excluded)


def test_rows_that_cannot_be_predicted_say_why(predictor: SpeedPredictor) -> None:
    pred = predictor.predict(
        [row(hardware_name="Mystery", memory_bandwidth_gbs="", bits_per_weight="", quantization="Q9_Z")]
    )[0]
    assert "pred_tg_tok_s" not in pred
    assert "unknown hardware" in pred["reason"] and "unknown quantization" in pred["reason"]


def test_measured_rows_shift_their_own_hardware_only(predictor: SpeedPredictor) -> None:
    target = row(
        hardware_name="Lab box", memory_bandwidth_gbs=500, model_name="Qwen 7B", total_params_b=7.6, active_params_b=7.6
    )
    other = row(
        hardware_name="Other box",
        memory_bandwidth_gbs=500,
        model_name="Qwen 7B",
        total_params_b=7.6,
        active_params_b=7.6,
    )
    before = predictor.predict([target, other])
    measured = [{**row(hardware_name="Lab box", memory_bandwidth_gbs=500), "tg_tok_s": 20.0, "pp_tok_s": 400.0}]
    after = predictor.predict([target, other], measured=measured)
    assert after[0]["pred_tg_tok_s"] < 0.7 * before[0]["pred_tg_tok_s"]
    assert after[0]["basis"] == "predicted+calibrated"
    assert after[1]["pred_tg_tok_s"] == pytest.approx(before[1]["pred_tg_tok_s"])


def test_a_noisy_calibration_widens_its_bands_not_its_centre(predictor: SpeedPredictor) -> None:
    target = row(
        hardware_name="Lab box", memory_bandwidth_gbs=500, model_name="Qwen 7B", total_params_b=7.6, active_params_b=7.6
    )
    measured = {**row(hardware_name="Lab box", memory_bandwidth_gbs=500), "tg_tok_s": 20.0, "pp_tok_s": 400.0}
    quiet = predictor.predict([target], measured=[measured])[0]
    noisy = predictor.predict([target], measured=[{**measured, "tg_spread_pct": 30.0, "pp_spread_pct": "abc"}])[0]
    assert noisy["pred_tg_tok_s"] == pytest.approx(quiet["pred_tg_tok_s"])
    widen = math.log1p(0.95 * 0.30)  # 80% half-width ~0.95 IQR of the calibration's repetitions
    assert math.log(noisy["pred_tg_high"] / quiet["pred_tg_high"]) == pytest.approx(widen)
    assert math.log(quiet["pred_tg_low"] / noisy["pred_tg_low"]) == pytest.approx(widen)
    assert noisy["pred_pp_low"] == pytest.approx(quiet["pred_pp_low"])  # a spread that is not a number is ignored
    assert any("pp_spread_pct 'abc' is not a percentage" in n for n in noisy["notes"])  # and said so
    assert any("run-to-run spread (30%" in n for n in noisy["notes"])
    # Without a calibration on that hardware there is no spread to apply.
    other = predictor.predict([{**target, "hardware_name": "Other box"}], measured=[{**measured, "tg_spread_pct": 30}])
    assert not any("run-to-run" in n for n in other[0]["notes"])


def test_intervals_are_as_wide_as_each_kind_of_row_has_earned(predictor: SpeedPredictor) -> None:
    assert predictor.tg is not None and predictor.tg.spread is not None
    lo, hi = predictor.tg.zero_shot_q
    assert lo < 0 < hi  # quantiles of error / expected error straddle zero
    metal, cpu = predictor.predict(
        [row(backend="llama.cpp-metal", hardware_type="apple"), row(backend="llama.cpp-cpu", hardware_type="cpu")]
    )
    width = {name: p["pred_tg_high"] / p["pred_tg_low"] for name, p in (("metal", metal), ("cpu", cpu))}
    assert width["metal"] < width["cpu"]  # Metal rows are predicted far better than CPU rows
    assert all(w > 1.05 for w in width.values())  # and no prediction is ever certain


def test_a_measurement_speaks_most_for_models_of_its_own_size() -> None:
    from advisor.predict import PRIOR_ROWS, calibration_shift

    same = calibration_shift([(math.log(8.0), -0.6)], math.log(8.0))
    assert same == pytest.approx(-0.4)  # one measurement moves the prediction two thirds of the way
    far = calibration_shift([(math.log(0.135), -0.6)], math.log(8.0))  # a 135M calibration model, an 8B target
    assert -0.4 < far < -0.05
    both = calibration_shift([(math.log(8.0), -0.6), (math.log(0.135), 0.6)], math.log(8.0))
    assert both < 0  # the same-size measurement dominates
    # A prefill miss is mostly the build's own and carries over further than a decode miss.
    prefill = calibration_shift([(math.log(8.0), -0.6)], math.log(8.0), prior=PRIOR_ROWS["pp"])
    assert prefill == pytest.approx(-0.48) and PRIOR_ROWS["tg"] == pytest.approx(0.5)


@pytest.mark.slow  # a property test or a full fit: the full suite runs it, the fast tier need not
def test_skops_round_trip_and_cache(
    predictor: SpeedPredictor, knowledge: Knowledge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the shipped numpy trees (a stale or absent advisor/fitted file), the fit is cached in this home.
    monkeypatch.setattr("advisor.predict.SHIPPED_PREDICTOR", tmp_path / "not-shipped.npz")
    path = tmp_path / "p.skops"
    save_predictor(predictor, path)
    loaded = load_predictor(path, knowledge)
    for key in ("pred_tg_tok_s", "pred_tg_low", "pred_pp_high"):  # runtime-specific bands survive the round trip
        assert loaded.predict([row()])[0][key] == pytest.approx(predictor.predict([row()])[0][key])
    cached = get_predictor(knowledge, KNOWLEDGE_DIR, tmp_path / "cache", background_save=False)
    digest = knowledge_digest(KNOWLEDGE_DIR)
    # skops keeps the fitted models; the numpy trees beside them are what later starts load (no scikit-learn).
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [
        f"speed-predictor-{digest}.npz",
        f"speed-predictor-{digest}.skops",
    ]
    assert cached.tg is not None


def test_the_cache_names_exactly_the_types_the_loader_trusts(predictor: SpeedPredictor, tmp_path: Path) -> None:
    import skops.io as sio

    path = tmp_path / "p.skops"
    save_predictor(predictor, path)
    # If scikit-learn starts writing another type, this fails before any user's cache is silently refitted.
    assert sorted(set(sio.get_untrusted_types(file=path))) == sorted(TRUSTED_TYPES)


def tamper(path: Path, marker: Path) -> None:
    """Add to a real predictor file a node that, if loaded, calls numpy's runstring to write `marker`."""
    with zipfile.ZipFile(path) as src:
        members = {name: src.read(name) for name in src.namelist()}
    schema = json.loads(members["schema.json"])

    def text(value: str) -> dict[str, object]:
        return {
            "__class__": "str",
            "__module__": "builtins",
            "__loader__": "JsonNode",
            "content": json.dumps(value),
            "is_json": True,
            "__id__": 1,
        }

    code = f"open({str(marker)!r}, 'w').write('ran')"
    schema["content"]["evil"] = {
        "__class__": "runstring",
        "__module__": "numpy.testing._private.utils",
        "__loader__": "ConstructorFromReduceNode",
        "content": {
            "__class__": "tuple",
            "__module__": "builtins",
            "__loader__": "TupleNode",
            "__id__": 2,
            "content": [
                text(code),
                {
                    "__class__": "dict",
                    "__module__": "builtins",
                    "__loader__": "DictNode",
                    "content": {},
                    "__id__": 3,
                    "key_types": {
                        "__class__": "list",
                        "__module__": "builtins",
                        "__loader__": "ListNode",
                        "content": [],
                        "__id__": 4,
                    },
                },
            ],
        },
    }
    schema["key_types"]["content"].append(
        {"__class__": "str", "__module__": "builtins", "__loader__": "TypeNode", "__id__": 5}
    )
    members["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(path, "w") as dst:
        for name, data in members.items():
            dst.writestr(name, data)


@pytest.mark.slow  # a property test or a full fit: the full suite runs it, the fast tier need not
def test_a_tampered_cache_is_refused_refitted_and_never_run(
    predictor: SpeedPredictor,
    knowledge: Knowledge,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import skops.io as sio

    monkeypatch.setattr("advisor.predict.SHIPPED_PREDICTOR", tmp_path / "not-shipped.npz")  # reach the skops cache

    # The tampering is real: trusting its types, as the old prefix rule did, runs the payload.
    probe, probe_marker = tmp_path / "probe.skops", tmp_path / "probe-ran"
    save_predictor(predictor, probe)
    tamper(probe, probe_marker)
    untrusted = sio.get_untrusted_types(file=probe)
    assert "numpy.testing._private.utils.runstring" in untrusted
    sio.load(probe, trusted=untrusted)
    assert probe_marker.exists()

    cache = tmp_path / "cache"
    path = cache / f"speed-predictor-{knowledge_digest(KNOWLEDGE_DIR)}.skops"
    marker = tmp_path / "ran"
    save_predictor(predictor, path)
    tamper(path, marker)
    with pytest.raises(UntrustedCache, match="runstring"):
        load_predictor(path, knowledge)
    with caplog.at_level(logging.WARNING, logger="advisor.predict"):
        refitted = get_predictor(knowledge, KNOWLEDGE_DIR, cache, background_save=False)
    assert not marker.exists()  # the payload never ran
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "refused" in warnings[0] and "\n" not in warnings[0]
    assert refitted.predict([row()])[0]["pred_tg_tok_s"] == pytest.approx(
        predictor.predict([row()])[0]["pred_tg_tok_s"]
    )
    assert "runstring" not in sio.get_untrusted_types(file=path)  # the refit replaced the tampered file


def test_feature_frame_has_a_fixed_column_list() -> None:
    frame, reasons = feature_frame([row(), row(memory_bandwidth_gbs=None)])
    assert list(frame.columns)[:3] == ["log_roofline_tg", "log_roofline_pp", "offload"]
    assert reasons[0] is None and reasons[1] is not None


# --- memory fit and success ------------------------------------------------------------------------------


def test_kv_cache_formula() -> None:
    # Llama 3 8B: 32 layers x 8 kv heads x 128 dim, 8192 context, f16 -> 2 x 32 x 8 x 128 x 8192 x 2 B = 1.07 GB
    assert kv_cache_gb(32, 8, 128, 8192) == pytest.approx(1.074, rel=1e-3)
    assert kv_cache_gb(None, 8, 128, 8192) is None


def test_memory_fit_uses_total_params_for_moe(knowledge: Knowledge) -> None:
    spec = knowledge.model("qwen3-30b-a3b")
    assert spec is not None
    fit = memory_fit(spec, "Q4_K_M", 4.89, 4096, 16.0)
    assert fit.weights_gb > 15 and fit.fits is False  # 30B total must be held, though only 3B are active
    assert memory_fit(spec, "Q4_K_M", 4.89, 4096, 24.0).fits is True


def test_success_prior_update_and_interval() -> None:
    prior = success_estimate(80.0)
    assert prior.low < prior.probability < prior.high
    assert success_estimate(80.0, quant_ppl_delta_pct=10).probability < prior.probability
    assert success_estimate(80.0, successes=0, attempts=20).probability < 0.4
    assert success_estimate(80.0, successes=20, attempts=20).probability > prior.probability
    unknown = success_estimate(None)
    assert unknown.high - unknown.low > prior.high - prior.low
    assert task_score({"ifeval": 80.0, "mmlu_pro": 60.0}, "classification") == (70.0, ["ifeval", "mmlu_pro"])


# --- predict-speed contract ---------------------------------------------------------------------------------


def write_csv(path: Path, rows: list[dict[str, object]], extra: list[str] | None = None) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=INPUT_COLUMNS + (extra or []))
        writer.writeheader()
        writer.writerows(rows)


def test_predict_csv_contract(tmp_path: Path, predictor: SpeedPredictor, knowledge: Knowledge) -> None:
    src = tmp_path / "in.csv"
    write_csv(src, [row(), row(hardware_name="Mystery", hardware_type="", memory_bandwidth_gbs="", memory_gb="")])
    text = predict_csv(src, predictor, knowledge)
    out = list(csv.DictReader(io.StringIO(text)))
    assert list(out[0])[: len(INPUT_COLUMNS) + len(OUTPUT_COLUMNS)] == INPUT_COLUMNS + OUTPUT_COLUMNS
    assert float(out[0]["pred_tg_low"]) < float(out[0]["pred_tg_tok_s"]) < float(out[0]["pred_tg_high"])
    assert out[1]["pred_tg_tok_s"] == "" and "unknown hardware" in out[1]["reason"]


@pytest.mark.slow
def test_predict_speed_cli_with_measured(tmp_path: Path) -> None:
    src, measured, out = tmp_path / "in.csv", tmp_path / "m.csv", tmp_path / "out.csv"
    write_csv(src, [row(hardware_name="Lab box", memory_bandwidth_gbs=500)])
    write_csv(
        measured,
        [
            {
                **row(hardware_name="Lab box", memory_bandwidth_gbs=500, total_params_b=3, active_params_b=3),
                "tg_tok_s": 30,
                "pp_tok_s": 900,
            }
        ],
        extra=["tg_tok_s", "pp_tok_s"],
    )
    env = {**os.environ, "ADVISOR_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-m", "advisor", "predict-speed", str(src), "--out", str(out), "--measured", str(measured)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = list(csv.DictReader(out.open()))[0]
    assert result["basis"] == "predicted+calibrated" and float(result["pred_tg_tok_s"]) > 0
    missing = subprocess.run(
        [sys.executable, "-m", "advisor", "predict-speed", str(tmp_path / "nope.csv")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert missing.returncode == 2 and "nope.csv" in missing.stderr and "Traceback" not in missing.stderr


@pytest.mark.slow  # a property test or a full fit: the full suite runs it, the fast tier need not
def test_the_evaluation_reports_every_figure_against_the_baseline() -> None:
    import importlib.util

    script = KNOWLEDGE_DIR.parent / "benchmarks" / "evaluate_predictor.py"
    spec = importlib.util.spec_from_file_location("evaluate_predictor", script)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    per_row: list[dict] = []
    result = module.evaluate("hardware", folds=3, max_rows=160, per_row=per_row)
    decode, prefill = result["decode"], result["prefill"]
    # Every row in turn as the calibration row, each scored row counting once; and a per-row dump another
    # revision's evaluation can be compared with on the rows both scored.
    for block in (decode, prefill):
        turn = block["after_any_one_calibration"]
        assert turn["rows"] >= block["rows_after_calibration"] and 0 < turn["mape_pct"] < 1000
    scorings = {(r["target"], r["scoring"]) for r in per_row}
    assert {("tg", "zero_shot"), ("tg", "first_calibration"), ("tg", "any_calibration")} <= scorings
    assert sum(r["scoring"] == "zero_shot" and r["target"] == "tg" for r in per_row) == decode["rows"]
    same = module.compare_rows(per_row, per_row)["tg zero_shot"]
    assert same["mape_pct"] == same["other_mape_pct"] == decode["mape_zero_shot_pct"] and same["rows_only_here"] == 0
    fewer = module.compare_rows(per_row, [r for r in per_row if r["key"] != per_row[0]["key"]])
    assert fewer[f"{per_row[0]['target']} {per_row[0]['scoring']}"]["rows_only_here"] == 1
    for key in ("mape_zero_shot_pct", "baseline_roofline_x055_mape_pct", "mape_after_one_calibration_pct"):
        assert 0 < decode[key] < 1000, key
    assert 0 <= decode["coverage_80_pct"] <= 100 and 0 <= decode["coverage_80_after_calibration_pct"] <= 100
    assert prefill["mape_zero_shot_pct"] > 0 and "baseline_compute_x055_mape_pct" in prefill
    assert sum(v["rows"] for v in decode["by_runtime"].values()) == decode["rows"]
    assert 0 < result["rows_answered_pct"]["decode"] <= 100 and "fallback_mape_pct" in decode
    assert decode["core_rows"] <= decode["rows"] and "longer_prompt_mape_pct" in prefill
    assert set(result["ttft"]) >= {"rows", "mape_pct", "coverage_80_pct"}


def test_published_ttft_rows_parse_with_their_prompt_shape(knowledge: Knowledge) -> None:
    rows = knowledge.ttft_speeds
    assert len(rows) >= 500
    for r in rows:
        assert r["source_url"].startswith("https://") and r["source_date"] and r["ttft_ms"] > 0
        assert r["prompt_tokens"] or r["prompt_mix"]
    localscore = [r for r in rows if r.get("prompt_mix")]
    # LocalScore's nine tests (llamafile localscore.cpp): the mix is recorded, not a made-up single length.
    assert {r["prompt_mix"] for r in localscore} == {"1024/4096/2048/2048/1024/1280/384/64/16"}
    assert all(not r.get("prompt_tokens") for r in localscore)
    catalog = {h["name"] for h in knowledge.hardware}
    assert sum(r["hardware_name"] in catalog for r in localscore) >= 400


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("prompt_mix", "1024/lots", "must be prompt lengths joined by '/'"),
        ("flash_attn", "maybe", "must be one of yes, no"),
        ("ttft_ms", "quick", "is not a number"),
    ],
)
def test_a_bad_ttft_shape_cell_names_row_and_column(tmp_path: Path, column: str, value: str, message: str) -> None:
    directory = copy_knowledge(tmp_path)
    path = directory / "speed_measurements.csv"
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        header, rows = list(reader.fieldnames or []), list(reader)
    rows[-1][column] = value
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(KnowledgeError, match=rf"row {len(rows) + 1}, column {column}: '{value}' {message}"):
        load_knowledge(directory)


def test_overhead_is_fitted_from_single_length_and_test_mix_rows() -> None:
    single = [
        {"backend": "ollama", "ttft_ms": 40 + 1000 * n / pp, "prompt_tokens": n, "pp_tok_s": pp}
        for n, pp in ((100, 500.0), (400, 800.0), (1000, 900.0), (2000, 700.0), (3000, 650.0), (50, 300.0))
    ]
    lengths = [1024, 4096, 2048, 2048, 1024, 1280, 384, 64, 16]
    mix = [
        {
            "backend": "llamafile-cuda",
            "ttft_ms": 8 + 0.9 * 1000 * (sum(lengths) / 9) / pp,
            "prompt_mix": "/".join(map(str, lengths)),
            "pp_tok_s": pp,
        }
        for pp in np.geomspace(20, 20000, 40)
    ]
    overhead, basis = fit_overhead(single + mix)
    assert overhead["ollama"][0] == pytest.approx(40, abs=0.5)
    assert overhead["llama.cpp"][0] == pytest.approx(8, abs=1)
    assert overhead["vllm"] == ASSUMED_OVERHEAD_MS["vllm"]  # no rows: still the assumption
    assert "ollama (6 rows)" in basis and "llama.cpp (40 rows)" in basis and "vllm" not in basis
    # Too few rows of a family leave it assumed.
    assert fit_overhead(single[:3])[0]["ollama"] == ASSUMED_OVERHEAD_MS["ollama"]


def test_ttft_uses_the_fitted_overhead_where_published_rows_exist(predictor: SpeedPredictor) -> None:
    fitted = predictor.overhead_ms["llama.cpp"]
    assert fitted != ASSUMED_OVERHEAD_MS["llama.cpp"] and fitted[1] <= fitted[0] <= fitted[2]
    result = predictor.ttft(row(backend="llama.cpp-cuda"), 1000)
    assert result["ttft_ms"] - 1000 * 1000 / result["pp_tok_s"] == pytest.approx(fitted[0])
    assert any("llama.cpp overhead" in n and "fitted on" in n and "published TTFT rows" in n for n in result["notes"])
    assumed = predictor.ttft(row(backend="ollama"), 1000)
    assert assumed["ttft_ms"] - 1000 * 1000 / assumed["pp_tok_s"] == pytest.approx(ASSUMED_OVERHEAD_MS["ollama"][0])
    assert any("ollama overhead" in n and "(assumed" in n for n in assumed["notes"])


def test_a_runtime_with_published_ttft_gets_its_learned_prefill_shift(predictor: SpeedPredictor) -> None:
    shift, rows, low, high = predictor.backend_prefill_shift["llamafile-cpu"]
    assert rows >= 100 and shift > 0  # llamafile's CPU prompt processing beats the trees' llama.cpp CPU rows
    assert low < 0 < high
    cpu = row(hardware_name="AMD Ryzen 9 7950X (2ch DDR5-5200)", hardware_type="cpu", memory_bandwidth_gbs=83.2)
    plain = predictor.ttft({**cpu, "backend": "llama.cpp-cpu"}, 1000)
    shifted = predictor.ttft({**cpu, "backend": "llamafile-cpu"}, 1000)
    assert shifted["pp_tok_s"] == pytest.approx(plain["pp_tok_s"] * math.exp(shift))
    assert shifted["ttft_ms"] < plain["ttft_ms"]
    assert shifted["pp_low"] == pytest.approx(shifted["pp_tok_s"] * math.exp(low))  # the backend's own band
    assert any("published TTFT of" in n for n in shifted["notes"])
    assert not any("published TTFT of" in n for n in plain["notes"])
    bare = predictor.ttft({**cpu, "backend": "llamafile"}, 1000)  # LocalScore's label: the build from the device
    assert any(f"published TTFT of {rows} 'llamafile' runs" in n for n in bare["notes"])


def test_ttft_grows_with_the_prompt(predictor: SpeedPredictor) -> None:
    for backend in ("llama.cpp-cuda", "ollama", "mlx"):
        times = [predictor.ttft(row(backend=backend), n) for n in (16, 128, 512, 2048, 8192, 32768)]
        assert all(a["ttft_ms"] < b["ttft_ms"] for a, b in zip(times, times[1:], strict=False)), backend
        assert all(t["ttft_low"] <= t["ttft_ms"] <= t["ttft_high"] for t in times), backend


def test_ttft_at_a_prompt_length_for_the_recommendation_code(predictor: SpeedPredictor) -> None:
    short, long = predictor.ttft(row(), 200), predictor.ttft(row(), 20000)
    assert short["ttft_low"] < short["ttft_ms"] < short["ttft_high"]
    assert long["pp_tok_s"] < short["pp_tok_s"]  # prefill slows as the prompt grows
    # TTFT is overhead plus the prompt at the prefill rate of that length.
    assert long["ttft_ms"] > 1000 * 20000 / long["pp_tok_s"]
    assert "reason" in predictor.ttft(row(memory_bandwidth_gbs="inf"), 200)


@pytest.mark.parametrize(
    ("name", "bpw", "match"),
    [
        ("Q4_K_M", 4.8944, "exact"),
        ("IQ2_XXS", 2.3824, "exact"),
        ("IQ1_S", 2.0042, "exact"),
        ("IQ3_M", 3.7628, "exact"),
        ("IQ4_NL", 4.5, "exact"),
        ("Q2_K_S", 2.9697, "exact"),
        ("TQ1_0", 1.69, "exact"),
        ("i1-Q4_K_M", 4.8944, "alias"),
        ("Q4_K", 4.8944, "exact"),
        ("MLX-3bit", 3.5, "exact"),
        ("mlx 4-bit", 4.5, "alias"),
        ("MLX-6bit", 6.5, "exact"),
        ("8bit MLX", 8.5, "alias"),
        ("INT4-AWQ", 4.156, "alias"),
        ("GPTQ 4-bit g128", 4.156, "alias"),
        ("FP8-Dynamic", 8.0, "alias"),
        ("NVFP4", 4.5, "exact"),
        ("MXFP4", 4.25, "exact"),
        ("EXL2 4.0bpw", 4.0, "alias"),
        ("UD-Q4_K_XL", 4.8944, "family"),
        ("Q4_K_XL", 4.8944, "family"),
        ("Q3_K_XL", 3.91, "family"),
        ("UD-IQ2_XXS", 2.3824, "family"),
        ("Q6_K_L", 6.5633, "family"),
        ("Q5_K_P", 5.7036, "family"),
        ("UD-Q8_K_XL (Q8_0)", 8.5008, "family"),
    ],
)
def test_quantization_names_resolve_to_sourced_bits(knowledge: Knowledge, name: str, bpw: float, match: str) -> None:
    resolved = knowledge.resolve_quant(name)
    assert resolved is not None, name
    assert resolved["bits_per_weight"] == pytest.approx(bpw) and resolved["match"] == match
    if match == "family":
        assert resolved["note"]
    assert knowledge.resolve_quant("Q9_Z") is None
    assert all(q["source_url"].startswith("https://") and q["source_date"] for q in knowledge.quantization)


def test_a_family_fallback_predicts_with_a_wider_interval_and_a_note(predictor: SpeedPredictor) -> None:
    known, family = predictor.predict(
        [row(bits_per_weight="", quantization="Q4_K_M"), row(bits_per_weight="", quantization="UD-Q4_K_XL")]
    )
    assert family["pred_tg_tok_s"] == pytest.approx(known["pred_tg_tok_s"])
    assert family["pred_tg_high"] / family["pred_tg_low"] > known["pred_tg_high"] / known["pred_tg_low"]
    assert any("Unsloth dynamic mix" in n for n in family["notes"])


def test_laptop_cpus_resolve_through_the_catalog_else_a_typical_value(
    predictor: SpeedPredictor, knowledge: Knowledge
) -> None:
    hw = knowledge.hardware_named("AMD Ryzen 7 7840HS")
    assert hw and hw["memory_bandwidth_gbs"] == pytest.approx(hw["memory_channels"] * hw["memory_mts"] * 8 / 1000)
    cpu = {"hardware_type": "", "memory_bandwidth_gbs": "", "memory_gb": "", "backend": "llama.cpp-cpu"}
    listed, unknown = predictor.predict(
        [row(hardware_name="AMD Ryzen 7 7840HS", **cpu), row(hardware_name="Intel Core i7-1185G7", **cpu)]
    )
    assert listed["pred_tg_tok_s"] > 0 and any("from catalog 'AMD Ryzen 7 7840HS" in n for n in listed["notes"])
    assert unknown["pred_tg_tok_s"] > 0 and "reason" not in unknown  # a prediction with a reason, not a refusal
    assert any("not in the catalog: assumed" in n for n in unknown["notes"])
    assert unknown["pred_tg_high"] / unknown["pred_tg_low"] > listed["pred_tg_high"] / listed["pred_tg_low"]
    gpu = predictor.predict([row(hardware_name="Mystery GPU", hardware_type="nvidia", memory_bandwidth_gbs="")])[0]
    assert "unknown hardware" in gpu["reason"]  # a GPU's bandwidth cannot be guessed from its platform


def test_a_calibration_report_hands_its_spread_to_the_predictor(knowledge: Knowledge) -> None:
    from advisor.decide.options import calibration_rows
    from advisor.schemas import Hardware

    speed = {
        "decode@64": {"decode_tps": {"median": 40.0, "spread_pct": 22.0}},
        "prefill@512": {"prefill_tps": {"median": 150.0, "spread_pct": 8.0}, "prompt_tokens": 512},
    }
    model = {"model": "SmolLM2-135M-Instruct", "device": "cpu", "params_b": 0.135, "quantization": "Q4_1"}
    report = {"backend": {"kind": "embedded"}, "models": [{**model, "speed": speed}]}
    cpu = Hardware(name="this machine", accelerator="cpu", memory_gb=16, memory_bandwidth_gbs=20)
    (measured,) = calibration_rows(report, cpu, knowledge)
    assert (measured["tg_spread_pct"], measured["pp_spread_pct"]) == (22.0, 8.0)
    assert measured["tg_tok_s"] == 40.0 and measured["pp_tok_s"] == 150.0 and measured["prompt_tokens"] == 512
