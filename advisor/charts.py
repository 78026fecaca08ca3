"""Altair charts built from the recommendation JSON and the calibration report (shared by the app and reports).

Pure functions: data in, chart out. Every mark says whether its figure is measured or predicted.
"""

from __future__ import annotations

import math
from typing import Any

import altair as alt
import pandas as pd

from advisor.recommend import ASSUMED_POWER_W, local_cost_per_request
from advisor.report import option_label as option_label_of
from advisor.schemas import Costs

KIND_COLORS = alt.Scale(domain=["local", "hosted", "hybrid"], range=["#2e7d32", "#1565c0", "#ef6c00"])
LABELS = ["measured", "calibrated", "predicted", "published", "assumed", "imputed"]
LABEL_SHAPES = alt.Scale(domain=LABELS, range=["diamond", "triangle-up", "circle", "square", "cross", "triangle-down"])
SOURCE_COLORS = alt.Scale(domain=["measured", "predicted"], range=["#2e7d32", "#7b1fa2"])


def option_label(option: dict[str, Any]) -> str:
    """A short readable name for a choice or alternative."""
    if option.get("kind") == "local":
        return f"{option['model']} {option.get('quantization') or ''} · {option.get('runtime') or ''}".strip()
    if option.get("kind") == "hybrid":
        return f"hybrid: {option['model']}"
    return f"{option['model']} ({option.get('provider') or 'hosted'})"


def candidates(workflow: dict[str, Any]) -> pd.DataFrame:
    """The chosen option and the ranked alternatives of one workflow, one row each."""
    rows = []
    entries = []
    if workflow.get("choice"):
        entries.append(({**workflow["choice"], "predicted": workflow["predicted"]}, True, 0))
    entries += [(alt_opt, False, i + 1) for i, alt_opt in enumerate(workflow.get("alternatives", []))]
    for option, chosen, rank in entries:
        p = option.get("predicted") or {}
        lo, hi = p.get("success_interval") or [None, None]
        cost = dict(option.get("cost") or {})
        if chosen:
            # The chosen option's cost sits at the workflow level, per accepted answer; per request = that x success.
            per_accepted = workflow.get("cost", {}).get("usd_per_accepted")
            success = p.get("success_probability")
            cost = {
                "usd_per_accepted": per_accepted,
                "usd_per_request": per_accepted * success if per_accepted is not None and success else None,
            }
        rows.append(
            {
                "option": option_label(option),
                "model": option["model"],
                "kind": option["kind"],
                "label": option_label_of(option) if option.get("label") else p.get("label", "predicted"),
                "basis": option.get("basis", "predicted"),
                "rank": rank,
                "chosen": chosen,
                "e2e_s": p.get("e2e_s"),
                "ttft_s": p.get("ttft_s"),
                "decode_tps": p.get("decode_tps"),
                "seconds_per_accepted": p.get("seconds_per_accepted"),
                "tokens_per_accepted": p.get("tokens_per_accepted"),
                "success": p.get("success_probability"),
                "success_low": lo,
                "success_high": hi,
                "usd_per_request": cost.get("usd_per_request"),
                "usd_per_accepted": cost.get("usd_per_accepted"),
                "memory_required_gb": option.get("memory_required_gb"),
            }
        )
    return pd.DataFrame(rows)


def speed_vs_success(workflow: dict[str, Any], *, latency_budget_s: float) -> alt.LayerChart | alt.FacetChart | None:
    """Seconds per answer vs success probability (80% interval) for every candidate; the budget as a rule."""
    frame = candidates(workflow)
    if frame.empty:
        return None
    frame = frame.dropna(subset=["e2e_s", "success"])
    x_max = max(float(frame["e2e_s"].max()), latency_budget_s) * 1.15
    x = alt.X("e2e_s:Q", title="seconds per answer (e2e)", scale=alt.Scale(domain=[0, x_max], nice=True))
    base = alt.Chart(frame)
    bars = base.mark_rule(opacity=0.5).encode(
        x=x,
        y=alt.Y("success_low:Q"),
        y2="success_high:Q",
        color=alt.Color("kind:N", scale=KIND_COLORS, title="option"),
    )
    points = base.mark_point(filled=True, opacity=0.9).encode(
        x=x,
        y=alt.Y("success:Q", title="success probability", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        color=alt.Color("kind:N", scale=KIND_COLORS, title="option"),
        shape=alt.Shape("label:N", scale=LABEL_SHAPES, title="figure"),
        size=alt.condition("datum.chosen", alt.value(260), alt.value(90)),
        tooltip=[
            alt.Tooltip("option:N"),
            alt.Tooltip("label:N", title="figure"),
            alt.Tooltip("e2e_s:Q", format=".2f", title="seconds per answer"),
            alt.Tooltip("seconds_per_accepted:Q", format=".2f", title="seconds per accepted"),
            alt.Tooltip("success:Q", format=".0%"),
            alt.Tooltip("success_low:Q", format=".0%", title="80% low"),
            alt.Tooltip("success_high:Q", format=".0%", title="80% high"),
        ],
    )
    # Only the chosen option is named on the plot (the others cluster); every mark has a tooltip.
    labels = (
        alt.Chart(frame[frame["chosen"]])
        .mark_text(align="left", dx=11, dy=-10, fontSize=12, fontWeight="bold")
        .encode(x=x, y="success:Q", text="model:N")
    )
    budget = pd.DataFrame({"budget": [latency_budget_s], "text": [f"budget {latency_budget_s:g} s"]})
    left_half = latency_budget_s < x_max / 2  # keep the label inside the plot
    rule = alt.Chart(budget).mark_rule(color="#c62828", strokeDash=[6, 4], size=2).encode(x="budget:Q")
    rule_text = (
        alt.Chart(budget)
        .mark_text(
            color="#c62828", align="left" if left_half else "right", dx=4 if left_half else -4, y=8, fontWeight="bold"
        )
        .encode(x="budget:Q", text="text:N")
    )
    return alt.layer(bars, points, labels, rule, rule_text).properties(
        height=320, title="Speed vs success (larger mark = chosen)"
    )


def cost_curve(
    workflow: dict[str, Any], hardware_info: dict[str, Any], *, requests_per_day: float, points: int = 60
) -> pd.DataFrame:
    """Cost per 1k requests against daily volume: local (falls with utilisation) and hosted (flat)."""
    local = workflow.get("cost", {}).get("local_reference")
    hosted_1k = workflow.get("cost", {}).get("hosted_usd_per_1k_requests")
    break_even = workflow.get("cost", {}).get("break_even_requests_per_day")
    used = hardware_info.get("used", {})
    power = (used.get("power_w") or ASSUMED_POWER_W[used.get("accelerator") or "cpu"]) * (used.get("count") or 1)
    costs = Costs.model_validate(hardware_info.get("costs") or {})
    top = max(requests_per_day * 20, (break_even or 0) * 5, 10_000.0)
    lo = 10.0
    volumes = [lo * (top / lo) ** (i / (points - 1)) for i in range(points)]
    rows = []
    busy, label = None, "local"
    if local and local.get("e2e_s"):
        # The same option and busy time the core priced, so the curve passes through the reported figure.
        busy, label = float(local["e2e_s"]), f"local: {local['model']}"
    if busy:
        rows += [
            {
                "volume": v,
                "usd_per_1k": 1000 * local_cost_per_request(busy, v, power, costs),
                "series": label,
                "kind": "local",
            }
            for v in volumes
        ]
    if hosted_1k is not None:
        hosted = workflow.get("cost", {}).get("hosted_reference") or {}
        series = f"hosted: {hosted['model']}" if hosted.get("model") else "hosted"
        rows += [{"volume": v, "usd_per_1k": hosted_1k, "series": series, "kind": "hosted"} for v in volumes]
    return pd.DataFrame(rows)


def cost_vs_volume(
    workflow: dict[str, Any], hardware_info: dict[str, Any], *, requests_per_day: float
) -> alt.LayerChart | alt.FacetChart | None:
    """Local vs hosted cost per 1k requests across volumes, with the break-even point and this workflow's volume."""
    frame = cost_curve(workflow, hardware_info, requests_per_day=requests_per_day)
    if frame.empty:
        return None
    frame = frame[frame["usd_per_1k"] > 0]
    y_scale = alt.Scale(type="log") if not frame.empty and frame["usd_per_1k"].min() > 0 else alt.Scale()
    lines = (
        alt.Chart(frame)
        .mark_line(strokeWidth=2.5)
        .encode(
            x=alt.X("volume:Q", scale=alt.Scale(type="log"), title="requests per day"),
            y=alt.Y("usd_per_1k:Q", scale=y_scale, title="$ per 1k requests (predicted)"),
            color=alt.Color(
                "series:N",
                title=None,
                scale=alt.Scale(
                    domain=list(dict.fromkeys(frame["series"])),
                    range=["#2e7d32" if k == "local" else "#1565c0" for k in dict.fromkeys(frame["kind"])],
                ),
                legend=alt.Legend(orient="top"),
            ),
            tooltip=[
                alt.Tooltip("series:N"),
                alt.Tooltip("volume:Q", format=",.0f", title="requests/day"),
                alt.Tooltip("usd_per_1k:Q", format="$,.4f", title="$ per 1k"),
            ],
        )
    )
    layers: list[Any] = [lines]
    volume = pd.DataFrame({"volume": [max(requests_per_day, 10.0)], "text": ["your volume"]})
    layers.append(alt.Chart(volume).mark_rule(color="#616161", strokeDash=[4, 4]).encode(x="volume:Q"))
    layers.append(
        alt.Chart(volume).mark_text(align="left", dx=4, y=8, color="#616161").encode(x="volume:Q", text="text:N")
    )
    break_even = workflow.get("cost", {}).get("break_even_requests_per_day")
    hosted_1k = workflow.get("cost", {}).get("hosted_usd_per_1k_requests")
    if break_even and hosted_1k and math.isfinite(break_even) and break_even > 0:
        point = pd.DataFrame(
            {"volume": [break_even], "usd_per_1k": [hosted_1k], "text": [f"break-even ≈ {break_even:,.0f}/day"]}
        )
        layers.append(
            alt.Chart(point)
            .mark_point(shape="diamond", size=160, filled=True, color="#e65100")
            .encode(x="volume:Q", y="usd_per_1k:Q", tooltip=["text:N"])
        )
        layers.append(
            alt.Chart(point)
            .mark_text(align="right", dx=-8, dy=-12, color="#e65100", fontWeight="bold")
            .encode(x="volume:Q", y="usd_per_1k:Q", text="text:N")
        )
    return alt.layer(*layers).properties(height=320, title="Cost per 1k requests vs volume")


def memory_fit(workflow: dict[str, Any], *, available_gb: float | None) -> alt.LayerChart | alt.FacetChart | None:
    """Memory each local candidate needs (weights + KV cache + overhead) against what is usable here."""
    frame = candidates(workflow)
    if frame.empty:
        return None
    frame = frame[(frame["kind"] == "local") & frame["memory_required_gb"].notna()]
    if frame.empty:
        return None
    frame = frame.assign(
        fits=[available_gb is None or m <= available_gb for m in frame["memory_required_gb"]],
        text=[f"{m:.1f} GB" for m in frame["memory_required_gb"]],
    )
    # Every bar is named in full: labels never overlap-hidden or truncated, one row of height per bar.
    y = alt.Y(
        "option:N",
        sort=alt.EncodingSortField("memory_required_gb", order="descending"),
        title=None,
        axis=alt.Axis(labelLimit=0, labelOverlap=False, labelFontSize=12),
    )
    bars = (
        alt.Chart(frame)
        .mark_bar(cornerRadiusEnd=3)
        .encode(
            y=y,
            x=alt.X("memory_required_gb:Q", title="memory needed (GB)"),
            color=alt.condition("datum.fits", alt.value("#2e7d32"), alt.value("#c62828")),
            opacity=alt.condition("datum.chosen", alt.value(1.0), alt.value(0.6)),
            tooltip=[
                alt.Tooltip("option:N"),
                alt.Tooltip("memory_required_gb:Q", format=".1f", title="needed GB"),
                alt.Tooltip("label:N", title="figure"),
            ],
        )
    )
    values = (
        alt.Chart(frame).mark_text(align="left", dx=4, fontSize=11).encode(y=y, x="memory_required_gb:Q", text="text:N")
    )
    layers: list[Any] = [bars, values]
    if available_gb:
        avail = pd.DataFrame({"gb": [available_gb], "text": [f"available {available_gb:g} GB"]})
        layers.append(alt.Chart(avail).mark_rule(color="#424242", strokeDash=[6, 4], size=2).encode(x="gb:Q"))
        layers.append(
            alt.Chart(avail).mark_text(align="right", dx=-4, y=-6, color="#424242").encode(x="gb:Q", text="text:N")
        )
    return alt.layer(*layers).properties(
        height=alt.Step(26), title="Memory needed vs available (every local candidate)"
    )


def sensitivity_frame(workflow: dict[str, Any]) -> pd.DataFrame:
    """Each assumption the choice depends on: how far (as a factor of its value now) it must move to flip it."""
    rows = []
    for x in workflow.get("sensitivity") or []:
        now, at = x.get("now"), x.get("flips_at")
        if not now or not at or now <= 0 or at <= 0:
            continue
        factor = at / now
        rows.append(
            {
                "assumption": x["assumption"],
                "log_factor": math.log10(factor),
                "factor": factor,
                "move": f"×{factor:.3g}" if factor >= 1 else f"÷{1 / factor:.3g}",
                "now": now,
                "flips_at": at,
                "becomes": x.get("becomes", ""),
                "direction": "up" if factor >= 1 else "down",
            }
        )
    return pd.DataFrame(rows)


def sensitivity(workflow: dict[str, Any]) -> alt.LayerChart | alt.FacetChart | None:
    """A tornado chart: for each assumption, the factor it must move by to flip the choice (shortest bar = nearest)."""
    frame = sensitivity_frame(workflow)
    if frame.empty:
        return None
    order = list(frame.sort_values("log_factor", key=abs)["assumption"])
    y = alt.Y("assumption:N", sort=order, title=None, axis=alt.Axis(labelLimit=0, labelOverlap=False))
    reach = max(1.0, float(frame["log_factor"].abs().max()) * 1.25)
    x = alt.X(
        "log_factor:Q",
        title="how far it must move to flip the choice (factor of today's value)",
        scale=alt.Scale(domain=[-reach, reach]),
        axis=alt.Axis(
            labelExpr="(datum.value >= 0 ? '×' : '÷') + format(pow(10, abs(datum.value)), abs(datum.value) >= 1 ? ',.0f' : '.2~g')",
            tickCount=8,
        ),
    )
    bars = (
        alt.Chart(frame)
        .mark_bar(cornerRadius=2)
        .encode(
            y=y,
            x=x,
            x2=alt.datum(0),
            color=alt.Color(
                "direction:N",
                scale=alt.Scale(domain=["down", "up"], range=["#1565c0", "#ef6c00"]),
                legend=alt.Legend(title="flips if it goes", orient="top"),
            ),
            tooltip=[
                alt.Tooltip("assumption:N"),
                alt.Tooltip("now:Q", format=",.4~g", title="now"),
                alt.Tooltip("flips_at:Q", format=",.4~g", title="flips at"),
                alt.Tooltip("move:N", title="move"),
                alt.Tooltip("becomes:N", title="the choice becomes"),
            ],
        )
    )
    up = frame[frame["log_factor"] >= 0]
    down = frame[frame["log_factor"] < 0]
    texts = [
        alt.Chart(part).mark_text(fontSize=11, align="left", dx=6).encode(y=y, x=x, text="move:N")
        for part in (up,)
        if not part.empty
    ] + [
        alt.Chart(part).mark_text(fontSize=11, align="right", dx=-6).encode(y=y, x=x, text="move:N")
        for part in (down,)
        if not part.empty
    ]
    zero = alt.Chart(pd.DataFrame({"x": [0.0]})).mark_rule(color="#424242").encode(x="x:Q")
    return alt.layer(bars, *texts, zero).properties(height=alt.Step(30), title="What would flip this choice")


def calibration_table(report: dict[str, Any]) -> pd.DataFrame:
    """Per model and probe: measured medians with their interquartile range and spread."""

    def fmt(entry: dict[str, Any] | None, digits: int) -> str:
        if not entry:
            return "—"
        return f"{entry['median']:.{digits}f} [{entry['p25']:.{digits}f}–{entry['p75']:.{digits}f}]"

    rows = []
    for model in report.get("models", []):
        for probe, entry in model.get("speed", {}).items():
            spreads = [e["spread_pct"] for e in (entry.get("decode_tps"), entry.get("ttft_s")) if e]
            rows.append(
                {
                    "model": model["model"],
                    "probe": probe,
                    "label": "measured",
                    "TTFT s": fmt(entry.get("ttft_s"), 3),
                    "prefill tok/s": fmt(entry.get("prefill_tps"), 0),
                    "decode tok/s": fmt(entry.get("decode_tps"), 1),
                    "spread %": max(spreads) if spreads else None,
                    "n": (entry.get("ttft_s") or {}).get("n"),
                }
            )
    return pd.DataFrame(rows)


def task_table(report: dict[str, Any]) -> pd.DataFrame:
    """Per model: task success and the accepted-answer metrics (measured)."""
    rows = []
    for model in report.get("models", []):
        tasks = model.get("tasks", {})
        if not tasks.get("attempts"):
            continue
        spa, tpa = tasks.get("seconds_per_accepted"), tasks.get("tokens_per_accepted")
        rows.append(
            {
                "model": model["model"],
                "label": "measured",
                "passed": f"{tasks['successes']}/{tasks['attempts']}",
                "success rate": tasks.get("success_rate"),
                "timeouts": tasks.get("timeouts", 0),
                "seconds / accepted": "—" if spa is None else f"{spa:.2f}",
                "tokens / accepted": "—" if tpa is None else f"{tpa:.0f}",
                "reasoning tokens": tasks.get("reasoning_tokens", 0),
                "answer tokens": tasks.get("answer_tokens", 0),
                "load s": "—" if model.get("load_s") is None else f"{model['load_s']:.2f}",
            }
        )
    return pd.DataFrame(rows)


def measured_vs_predicted_rows(
    report: dict[str, Any], hardware_used: dict[str, Any], knowledge: Any, predictor: Any
) -> pd.DataFrame:
    """For each calibrated model: measured decode/prefill (median, p25–p75) beside the predictor's figure (80%)."""
    from advisor.recommend import calibration_rows
    from advisor.schemas import Hardware

    hw = Hardware.model_validate(hardware_used)
    rows = calibration_rows(report, hw, knowledge)
    if not rows or not hw.memory_bandwidth_gbs:
        return pd.DataFrame()
    features = [{k: v for k, v in r.items() if k not in ("tg_tok_s", "pp_tok_s")} for r in rows]
    preds = predictor.predict(features)
    by_model = {m["model"]: m for m in report.get("models", [])}
    out = []
    for row, pred in zip(rows, preds, strict=True):
        model = by_model.get(row["model_name"], {})
        speed = model.get("speed", {})
        decode = next(
            (v["decode_tps"] for k, v in speed.items() if k.startswith("decode") and v.get("decode_tps")), None
        )
        prefill = [v["prefill_tps"] for k, v in speed.items() if k.startswith("prefill") and v.get("prefill_tps")]
        pairs = [("decode tok/s", decode, "tg"), ("prefill tok/s", prefill[-1] if prefill else None, "pp")]
        for metric, measured, key in pairs:
            if measured:
                out.append(
                    {
                        "model": row["model_name"],
                        "metric": metric,
                        "source": "measured",
                        "value": measured["median"],
                        "low": measured["p25"],
                        "high": measured["p75"],
                    }
                )
            if f"pred_{key}_tok_s" in pred:
                out.append(
                    {
                        "model": row["model_name"],
                        "metric": metric,
                        "source": "predicted",
                        "value": pred[f"pred_{key}_tok_s"],
                        "low": pred.get(f"pred_{key}_low"),
                        "high": pred.get(f"pred_{key}_high"),
                    }
                )
    return pd.DataFrame(out)


def measured_vs_predicted(frame: pd.DataFrame) -> alt.FacetChart | None:
    """Measured (median, p25–p75) beside predicted (80% interval) per model and metric."""
    if frame.empty:
        return None
    frame = frame.assign(series=[f"{m} · {s}" for m, s in zip(frame["model"], frame["source"], strict=True)])
    base = alt.Chart()  # data comes from the layer, as faceting requires
    y = alt.Y("series:N", title=None, axis=alt.Axis(labelLimit=320))
    ranges = base.mark_rule(size=3, opacity=0.6).encode(
        y=y, x=alt.X("low:Q", title="tokens per second"), x2="high:Q", color=alt.Color("source:N", scale=SOURCE_COLORS)
    )
    points = base.mark_point(filled=True, size=120).encode(
        y=y,
        x="value:Q",
        color=alt.Color("source:N", scale=SOURCE_COLORS, title=None),
        shape=alt.Shape("source:N", scale=alt.Scale(domain=["measured", "predicted"], range=["diamond", "circle"])),
        tooltip=[
            "model:N",
            "metric:N",
            "source:N",
            alt.Tooltip("value:Q", format=",.1f"),
            alt.Tooltip("low:Q", format=",.1f"),
            alt.Tooltip("high:Q", format=",.1f"),
        ],
    )
    return (
        alt.layer(ranges, points, data=frame)
        .properties(height=34 * frame["series"].nunique() + 20, width=320)
        .facet(column=alt.Column("metric:N", title=None))
        .resolve_scale(x="independent")
    )
