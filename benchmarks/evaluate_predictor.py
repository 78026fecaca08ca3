"""Honest evaluation of the speed predictor: grouped cross-validation against the roofline x 0.55 baseline.

Holds out whole hardware (and, separately, whole models); reports decode and prefill MAPE zero-shot and
after one calibration measurement on the held-out hardware, 80% interval coverage, prefill at longer prompts,
TTFT on published runs that report it (LocalScore's nine-test prompt mix, predicted as the mean of the predicted
TTFT at each of its prompt lengths) against prompt / (compute roofline x 0.55) + 0 ms, the share of rows answered, rows answered only through a quantization
family or an assumed CPU bandwidth (apart), and the time of one full fit.
Run: python benchmarks/evaluate_predictor.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from advisor.knowledge import load_knowledge  # noqa: E402
from advisor.predict import (  # noqa: E402
    BASELINE_EFFICIENCY,
    SpeedPredictor,
    _num,
    backend_family,
    complete_row,
    device_group,
    prompt_mix,
    published_as_usable,
    runtime_label,
)
from advisor.settings import KNOWLEDGE_DIR  # noqa: E402


def mape(pred: list[float], actual: list[float]) -> float | None:
    pairs = [(p, a) for p, a in zip(pred, actual, strict=True) if p and a]
    return round(100 * float(np.mean([abs(p - a) / a for p, a in pairs])), 1) if pairs else None


# What names one published row in a per-row dump (--rows): the same row in another revision's evaluation.
ROW_KEY = ("hardware_name", "model_name", "quantization", "backend", "source_url", "prompt_tokens")


def row_key(row: dict) -> str:
    return "|".join(str(row.get(k)) for k in ROW_KEY)


def evaluate(
    group_of: str, folds: int = 5, *, max_rows: int | None = None, per_row: list[dict] | None = None
) -> dict[str, object]:
    """Grouped cross-validation holding out whole hardware or whole models (max_rows: a quicker subset).

    per_row, when given, receives one record per scored row and scoring (zero_shot, first_calibration,
    any_calibration): key, target, ape (|pred - actual| / actual), inside (the 80% band held it)."""
    records = per_row if per_row is not None else []
    knowledge = load_knowledge(KNOWLEDGE_DIR)
    # Rows as published, completed from the catalog; CPU bandwidth is never assumed here, the predictor does that.
    # "core" rows are those the previous evaluation scored: bits per weight given or an exact quantization-table name.
    completed = [
        {
            **complete_row(r, knowledge, assume_bandwidth=False)[0],
            "_core": bool(r.get("bits_per_weight")) or knowledge.quant(str(r.get("quantization") or "")) is not None,
        }
        for r in knowledge.training_speeds[:max_rows]
    ]
    # Rows averaged over a test mix (LocalScore) are scored for TTFT only; the trees never learn from them.
    rows = [r for r in completed if not r.get("prompt_mix")]
    mix_rows = [r for r in completed if r.get("prompt_mix")]
    key = (
        (lambda r: device_group(str(r["hardware_name"])))
        if group_of == "hardware"
        else (lambda r: str(r["model_name"]).lower())
    )
    groups = sorted({key(r) for r in rows})
    rng = np.random.default_rng(0)
    rng.shuffle(groups)
    fold_of = {g: i % folds for i, g in enumerate(groups)}
    # Devices (or models) only the TTFT rows have get folds of their own shuffle: the decode and prefill folds
    # stay those of the evaluation before TTFT rows existed, so the figures compare.
    extra = sorted({key(r) for r in mix_rows} - set(groups))
    np.random.default_rng(1).shuffle(extra)
    fold_of.update({g: i % folds for i, g in enumerate(extra)})
    ttft: dict[str, list] = {k: [] for k in ("pred", "act", "in", "base", "base_act", "family", "model", "answered")}
    families: list[str] = []  # the runtime family of each decode row, for the per-runtime breakdown
    acc: dict[str, list[float]] = {
        k: []
        for k in (
            "tg_pred",
            "tg_act",
            "tg_in",
            "tg_moe",
            "tg_row_base",
            "pp_pred",
            "pp_act",
            "pp_base",
            "pp_base_act",
            "pp_in",
            "tg_cal_pred",
            "tg_cal_act",
            "tg_cal_in",
            "pp_cal_pred",
            "pp_cal_act",
            "pp_cal_in",
            "tg_all",
            "pp_all",
            "tg_fb_pred",
            "tg_fb_act",
            "tg_fb_in",
            "pp_long_pred",
            "pp_long_act",
            "tg_core",
            "pp_core",
        )
    }
    any_cal: dict[str, dict[str, list[tuple[float, float]]]] = {"tg": {}, "pp": {}}
    for fold in range(folds):
        train = [r for r in rows + mix_rows if fold_of[key(r)] != fold]
        test = [r for r in rows if fold_of[key(r)] == fold]
        model = SpeedPredictor.fit(knowledge, rows=train)
        _score_ttft(model, [r for r in rows + mix_rows if fold_of[key(r)] == fold and r.get("ttft_ms")], ttft)
        # Training reads published rows as published; predictions take usable memory, as from a profile.
        # Published decode rates are llama-bench style (tg from an empty cache): context 0, not the pp prompt.
        preds = model.predict([{**published_as_usable(r), "context_tokens": 0} for r in test])
        for row, pred in zip(test, preds, strict=True):
            for name in ("tg", "pp"):
                actual = _num(row.get(f"{name}_tok_s"))
                if actual:
                    acc[f"{name}_all"].append(float(f"pred_{name}_tok_s" in pred))
                if not actual or f"pred_{name}_tok_s" not in pred:
                    continue
                if pred.get("interval_widened"):
                    # Answered only through a quantization family or an assumed CPU bandwidth: scored apart.
                    if name == "tg":
                        acc["tg_fb_pred"].append(pred["pred_tg_tok_s"])
                        acc["tg_fb_act"].append(actual)
                        acc["tg_fb_in"].append(float(pred["pred_tg_low"] <= actual <= pred["pred_tg_high"]))
                    continue
                if name == "pp" and (_num(row.get("prompt_tokens")) or 512) > 512:
                    acc["pp_long_pred"].append(pred["pred_pp_tok_s"])
                    acc["pp_long_act"].append(actual)
                acc[f"{name}_pred"].append(pred[f"pred_{name}_tok_s"])
                scoring = "zero_shot" if group_of == "hardware" else f"zero_shot_held_out_{group_of}"
                records.append(_record(row, name, scoring, pred, actual))
                acc[f"{name}_act"].append(actual)
                acc[f"{name}_core"].append(float(row["_core"]))
                if name == "tg":
                    bw, act_b, bpw = (
                        _num(row.get(k)) for k in ("memory_bandwidth_gbs", "active_params_b", "bits_per_weight")
                    )
                    acc["tg_moe"].append(float(str(row.get("is_moe")) == "yes"))
                    families.append(backend_family(row.get("backend")))
                    acc["tg_row_base"].append(
                        BASELINE_EFFICIENCY * bw / (act_b * bpw / 8) if bw and act_b and bpw else 0.0
                    )
                acc[f"{name}_in"].append(float(pred[f"pred_{name}_low"] <= actual <= pred[f"pred_{name}_high"]))
            active = _num(row.get("active_params_b"))
            tflops, pp = _num(row.get("fp16_tflops")), _num(row.get("pp_tok_s"))
            if tflops and active and pp:
                acc["pp_base"].append(BASELINE_EFFICIENCY * tflops * 1e12 / (2 * active * 1e9))
                acc["pp_base_act"].append(pp)
        if group_of != "hardware":
            continue
        # One calibration run: a single measured row of each held-out device shifts the rest of that device's
        # rows on the same runtime from the same source. A calibration measures the user's own runtime build and
        # settings; rows from one source on one runtime label share those. Rows of another runtime of the same
        # family (ik_llama.cpp beside mainline llama.cpp on one CPU: 10x apart in prefill) or from other people's
        # setups do not: a user calibrates the runtime they will run.
        by_device: dict[tuple[str, str, str], list[dict]] = {}
        for r in test:
            setup = (device_group(str(r["hardware_name"])), runtime_label(r), str(r["source_url"]))
            by_device.setdefault(setup, []).append(r)
        for device_rows in by_device.values():
            if len(device_rows) < 2:
                continue
            # The first row calibrates (the figure kept since the first evaluation); then every row in turn, so
            # the figure does not hang on which model a setup's source happened to list first.
            for c, calib in enumerate(device_rows):
                rest = [r for j, r in enumerate(device_rows) if j != c]
                for row, actual, name, pred in _calibrated(model, calib, rest):
                    record = _record(row, name, "first_calibration", pred, actual)
                    if c == 0:
                        acc[f"{name}_cal_pred"].append(pred[f"pred_{name}_tok_s"])
                        acc[f"{name}_cal_act"].append(actual)
                        acc[f"{name}_cal_in"].append(record["inside"])
                        records.append(record)
                    any_cal[name].setdefault(record["key"], []).append((record["ape"], record["inside"]))
    out = {
        "held_out": group_of,
        "groups": len(groups),
        "decode": {
            "rows": len(acc["tg_act"]),
            "mape_zero_shot_pct": mape(acc["tg_pred"], acc["tg_act"]),
            "coverage_80_pct": round(100 * float(np.mean(acc["tg_in"])), 1) if acc["tg_in"] else None,
            "baseline_roofline_x055_mape_pct": None,
        },
        "prefill": {
            "rows": len(acc["pp_act"]),
            "mape_zero_shot_pct": mape(acc["pp_pred"], acc["pp_act"]),
            "coverage_80_pct": round(100 * float(np.mean(acc["pp_in"])), 1) if acc["pp_in"] else None,
            "baseline_compute_x055_mape_pct": mape(acc["pp_base"], acc["pp_base_act"]),
            "baseline_rows": len(acc["pp_base"]),
        },
    }
    for name, label in (("tg", "decode"), ("pp", "prefill")):
        core = [i for i, flag in enumerate(acc[f"{name}_core"]) if flag]
        out[label]["core_rows"] = len(core)
        out[label]["core_mape_zero_shot_pct"] = mape(
            [acc[f"{name}_pred"][i] for i in core], [acc[f"{name}_act"][i] for i in core]
        )
    share = {n: round(100 * float(np.mean(acc[f"{n}_all"])), 1) if acc[f"{n}_all"] else None for n in ("tg", "pp")}
    out["rows_answered_pct"] = {"decode": share["tg"], "prefill": share["pp"]}
    out["decode"]["fallback_rows"] = len(acc["tg_fb_act"])
    out["decode"]["fallback_mape_pct"] = mape(acc["tg_fb_pred"], acc["tg_fb_act"])
    out["decode"]["fallback_coverage_80_pct"] = (
        round(100 * float(np.mean(acc["tg_fb_in"])), 1) if acc["tg_fb_in"] else None
    )
    out["prefill"]["longer_prompt_rows"] = len(acc["pp_long_act"])
    out["prefill"]["longer_prompt_mape_pct"] = mape(acc["pp_long_pred"], acc["pp_long_act"])
    out["ttft"] = _ttft_summary(ttft)
    # The decode baseline is computed on every row that has the physics inputs (the same rows the model sees).
    base_pairs = []
    for r in rows:
        bw, active, bpw, tg = (
            _num(r.get(k)) for k in ("memory_bandwidth_gbs", "active_params_b", "bits_per_weight", "tg_tok_s")
        )
        if bw and active and bpw and tg and not r.get("_bpw_family"):
            base_pairs.append((BASELINE_EFFICIENCY * bw / (active * bpw / 8), tg))
    out["decode"]["baseline_roofline_x055_mape_pct"] = mape([p for p, _ in base_pairs], [a for _, a in base_pairs])
    moe = [i for i, flag in enumerate(acc["tg_moe"]) if flag]
    out["decode"]["moe_rows"] = len(moe)
    out["decode"]["moe_mape_pct"] = mape([acc["tg_pred"][i] for i in moe], [acc["tg_act"][i] for i in moe])
    out["decode"]["moe_baseline_mape_pct"] = mape([acc["tg_row_base"][i] for i in moe], [acc["tg_act"][i] for i in moe])
    out["decode"]["by_runtime"] = {
        fam: {
            "rows": len(idx),
            "mape_pct": mape([acc["tg_pred"][i] for i in idx], [acc["tg_act"][i] for i in idx]),
            "coverage_80_pct": round(100 * float(np.mean([acc["tg_in"][i] for i in idx])), 1),
        }
        for fam in sorted(set(families))
        if (idx := [i for i, f in enumerate(families) if f == fam])
    }
    if group_of == "hardware":
        out["decode"]["mape_after_one_calibration_pct"] = mape(acc["tg_cal_pred"], acc["tg_cal_act"])
        out["decode"]["coverage_80_after_calibration_pct"] = (
            round(100 * float(np.mean(acc["tg_cal_in"])), 1) if acc["tg_cal_in"] else None
        )
        out["decode"]["rows_after_calibration"] = len(acc["tg_cal_act"])
        out["prefill"]["mape_after_one_calibration_pct"] = mape(acc["pp_cal_pred"], acc["pp_cal_act"])
        out["prefill"]["coverage_80_after_calibration_pct"] = (
            round(100 * float(np.mean(acc["pp_cal_in"])), 1) if acc["pp_cal_in"] else None
        )
        out["prefill"]["rows_after_calibration"] = len(acc["pp_cal_act"])
        for name, label in (("tg", "decode"), ("pp", "prefill")):
            # Each row's errors averaged over every single-row calibration of its setup: each row counts once.
            means = {key_: np.mean(np.array(pairs), axis=0) for key_, pairs in any_cal[name].items()}
            records.extend(
                {"key": key_, "target": name, "scoring": "any_calibration", "ape": m[0], "inside": m[1]}
                for key_, m in means.items()
            )
            apes, insides = [m[0] for m in means.values()], [m[1] for m in means.values()]
            out[label]["after_any_one_calibration"] = {
                "rows": len(means),
                "mape_pct": round(100 * float(np.mean(apes)), 1) if means else None,
                "median_ape_pct": round(100 * float(np.median(apes)), 1) if means else None,
                "coverage_80_pct": round(100 * float(np.mean(insides)), 1) if means else None,
            }
    return out


def _record(row: dict, target: str, scoring: str, pred: dict, actual: float) -> dict[str, object]:
    ape = abs(pred[f"pred_{target}_tok_s"] - actual) / actual
    inside = float(pred[f"pred_{target}_low"] <= actual <= pred[f"pred_{target}_high"])
    return {"key": row_key(row), "target": target, "scoring": scoring, "ape": ape, "inside": inside}


def read_rows(path: Path) -> list[dict]:
    """A --rows dump, plain or gzipped (benchmarks/baselines/ keeps earlier revisions' dumps gzipped)."""
    import gzip

    raw = path.read_bytes()
    return json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)


def compare_rows(ours: list[dict], theirs: list[dict], *, resamples: int = 1000) -> dict[str, dict[str, object]]:
    """MAPE and coverage of two per-row dumps on the rows both scored, per target and scoring: a change of
    predictor judged on the same rows, apart from the rows only one of them answers. The 90% interval of the
    MAPE difference resamples what was held out, whole devices or whole models (their rows miss together), so
    a difference inside it is noise."""
    rng = np.random.default_rng(0)
    out: dict[str, dict[str, object]] = {}
    index = {(r["target"], r["scoring"], r["key"]): r for r in theirs}
    for target, scoring in sorted({(r["target"], r["scoring"]) for r in ours}):
        mine = {r["key"]: r for r in ours if (r["target"], r["scoring"]) == (target, scoring)}
        common = [k for k in mine if (target, scoring, k) in index]
        if not common:
            continue
        other = [index[(target, scoring, k)] for k in common]
        diff = np.array([mine[k]["ape"] for k in common]) - np.array([r["ape"] for r in other])
        # Resample what was held out: whole devices, or whole models for the held-out-model scores.
        part = ROW_KEY.index("model_name" if scoring.endswith("held_out_model") else "hardware_name")
        groups = np.array([k.split("|")[part] for k in common])
        members = [np.where(groups == g)[0] for g in np.unique(groups)]
        draws = []
        for _ in range(resamples):
            picked = rng.integers(0, len(members), len(members))
            draws.append(float(np.mean(diff[np.concatenate([members[i] for i in picked])])))
        theirs_only = sum(1 for r in theirs if (r["target"], r["scoring"]) == (target, scoring)) - len(common)
        out[f"{target} {scoring}"] = {
            "common_rows": len(common),
            "mape_pct": round(100 * float(np.mean([mine[k]["ape"] for k in common])), 1),
            "other_mape_pct": round(100 * float(np.mean([r["ape"] for r in other])), 1),
            "coverage_pct": round(100 * float(np.mean([mine[k]["inside"] for k in common])), 1),
            "other_coverage_pct": round(100 * float(np.mean([r["inside"] for r in other])), 1),
            "mape_difference_90pct_interval": [round(100 * float(q), 1) for q in np.quantile(draws, [0.05, 0.95])],
            "rows_only_here": len(mine) - len(common),
            "mape_on_rows_only_here_pct": round(
                100 * float(np.mean([r["ape"] for k, r in mine.items() if (target, scoring, k) not in index])), 1
            )
            if len(mine) > len(common)
            else None,
            "rows_only_there": theirs_only,
        }
    return out


def _calibrated(model: SpeedPredictor, calib: dict, rest: list[dict]) -> list[tuple[dict, float, str, dict]]:
    """Predictions for the rest of a setup's rows after calibrating on one of them: (row, actual, target, pred)
    for each target the calibration row measured, leaving out rows answered only through a family or assumption."""
    measured = [{**published_as_usable(calib), "context_tokens": 0}]
    queries = [
        {**published_as_usable({**r, "hardware_name": calib["hardware_name"]}), "context_tokens": 0} for r in rest
    ]
    out = []
    for row, pred in zip(rest, model.predict(queries, measured=measured), strict=True):
        for name in ("tg", "pp"):
            actual = _num(row.get(f"{name}_tok_s"))
            if actual and f"pred_{name}_tok_s" in pred and _num(calib.get(f"{name}_tok_s")):
                if not pred.get("interval_widened"):
                    out.append((row, actual, name, pred))
    return out


def _score_ttft(model: SpeedPredictor, test: list[dict], acc: dict[str, list]) -> None:
    """Predicted TTFT of held-out rows at their own shape: one prompt length, or the mean over a test mix's lengths
    (LocalScore reports mean TTFT over its nine tests), against prompt / (compute roofline x 0.55) + 0 ms."""
    for row in test:
        lengths = prompt_mix(row)
        actual = _num(row.get("ttft_ms"))
        if not lengths or not actual:
            continue
        preds = model.predict(
            [{**published_as_usable(row), "prompt_tokens": n, "context_tokens": 0, "prompt_mix": ""} for n in lengths]
        )
        acc["answered"].append(float(all("pred_ttft_ms" in p for p in preds)))
        if not acc["answered"][-1]:
            continue
        pred, low, high = (float(np.mean([p[f"pred_ttft_{k}"] for p in preds])) for k in ("ms", "low", "high"))
        acc["pred"].append(pred)
        acc["act"].append(actual)
        acc["in"].append(float(low <= actual <= high))
        acc["family"].append(backend_family(row.get("backend")))
        acc["model"].append(str(row.get("model_name")))
        tflops, active = _num(row.get("fp16_tflops")), _num(row.get("active_params_b"))
        roofline = tflops * 1e12 / (2 * active * 1e9) if tflops and active else None
        acc["base"].append(1000 * float(np.mean(lengths)) / (BASELINE_EFFICIENCY * roofline) if roofline else 0.0)
        acc["base_act"].append(actual)


def _ttft_summary(acc: dict[str, list]) -> dict[str, object]:
    def block(idx: list[int]) -> dict[str, object]:
        based = [i for i in idx if acc["base"][i]]
        return {
            "rows": len(idx),
            "mape_pct": mape([acc["pred"][i] for i in idx], [acc["act"][i] for i in idx]),
            "median_ape_pct": round(
                100 * float(np.median([abs(acc["pred"][i] - acc["act"][i]) / acc["act"][i] for i in idx])), 1
            )
            if idx
            else None,
            "coverage_80_pct": round(100 * float(np.mean([acc["in"][i] for i in idx])), 1) if idx else None,
            "baseline_rows": len(based),
            "model_mape_on_baseline_rows_pct": mape([acc["pred"][i] for i in based], [acc["act"][i] for i in based]),
            "baseline_compute_x055_mape_pct": mape([acc["base"][i] for i in based], [acc["act"][i] for i in based]),
        }

    every = list(range(len(acc["act"])))
    out: dict[str, object] = {
        **block(every),
        "rows_with_ttft": len(acc["answered"]),
        "answered_pct": round(100 * float(np.mean(acc["answered"])), 1) if acc["answered"] else None,
        "by_runtime": {f: block([i for i in every if acc["family"][i] == f]) for f in sorted(set(acc["family"]))},
        "by_model": {m: block([i for i in every if acc["model"][i] == m]) for m in sorted(set(acc["model"]))},
        "note": "LocalScore runs (llamafile): mean TTFT over its nine-test prompt mix, predicted as the mean of the"
        " predicted TTFT at each of the mix's prompt lengths"
        if every
        else "no published row with ttft_ms",
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--rows", type=Path, default=None, help="write the per-row scores (both held-out kinds) here")
    parser.add_argument(
        "--compare", type=Path, default=None, help="a --rows file of another revision to compare on common rows"
    )
    args = parser.parse_args()
    for out in (args.json, args.rows):
        if out is not None and not out.parent.is_dir():
            parser.error(f"{out}: its folder {out.parent} does not exist; create it or write elsewhere")
    theirs = None
    if args.compare:
        # Read it before the minute-long evaluation, so a wrong path or file fails at once.
        try:
            theirs = read_rows(args.compare)
            if not isinstance(theirs, list) or not all({"key", "target", "scoring", "ape"} <= set(r) for r in theirs):
                raise ValueError("not a list of key / target / scoring / ape records")
        except (OSError, ValueError, TypeError) as exc:
            parser.error(f"--compare {args.compare}: not a per-row dump ({exc}); give a file --rows wrote")
    knowledge = load_knowledge(KNOWLEDGE_DIR)
    import_started = time.perf_counter()
    import sklearn.ensemble  # noqa: F401 - timed apart: every process pays it once, cached predictor or not
    import sklearn.model_selection  # noqa: F401

    fit_started = time.perf_counter()
    SpeedPredictor.fit(knowledge)
    print(
        f"scikit-learn import {fit_started - import_started:.2f} s; "
        f"fit on all {len(knowledge.training_speeds)} rows ({len(knowledge.ttft_speeds)} of them TTFT over a "
        f"prompt mix, for overhead and runtime shift only) {time.perf_counter() - fit_started:.2f} s"
    )
    started = time.perf_counter()
    per_row: list[dict] = []
    results = [evaluate("hardware", per_row=per_row), evaluate("model", per_row=per_row)]
    for res in results:
        print(json.dumps(res, indent=2))
    if args.rows:
        args.rows.write_text(json.dumps(per_row))
    if theirs is not None:
        print("on the rows both revisions scored (held-out devices):")
        print(json.dumps(compare_rows(per_row, theirs or []), indent=2))
    print(f"evaluated in {time.perf_counter() - started:.1f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    assert all(math.isfinite(r["decode"]["mape_zero_shot_pct"] or 0) for r in results)


if __name__ == "__main__":
    main()
