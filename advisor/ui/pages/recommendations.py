"""Recommendations: one card per workflow — decision, chosen option, per-accepted-answer figures, reasons, charts."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import pandas as pd
import streamlit as st

from advisor import charts
from advisor.errors import AdvisorError
from advisor.report import figure_labels, money, option_label, runtime_basis, seconds
from advisor.schemas import Workflow
from advisor.ui import (
    DECISION_TEXT,
    LABEL_MEANING,
    decision_badge,
    go_button,
    label_badge,
    on_screen,
    show_error,
    state,
    warning_text,
)

LENSES = (
    ("data_sensitivity", "① Data sensitivity"),
    ("iteration_velocity", "② Iteration velocity"),
    ("latency_budget", "③ Latency budget"),
    ("cost_at_scale", "④ Cost at scale"),
    ("capability_frontier", "⑤ Capability frontier"),
)
NOISY_SPREAD_PCT = 5.0  # the goal for a calibration's decode spread; above it the run is flagged as noisy


def noisy_probes(report: dict[str, Any]) -> list[tuple[str, str, float]]:
    """(model, probe, decode spread %) for every calibration probe whose decode spread exceeds the goal."""
    out = []
    for model in report.get("models", []):
        for probe, entry in (model.get("speed") or {}).items():
            spread = ((entry or {}).get("decode_tps") or {}).get("spread_pct")
            if isinstance(spread, int | float) and math.isfinite(spread) and spread > NOISY_SPREAD_PCT:
                out.append((str(model.get("model")), str(probe), float(spread)))
    return out


def _num(value: float) -> str:
    """An assumption's value for people: thousands separators, no exponent."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def with_label(text: str, item: dict[str, str], *, missing: bool = False) -> str:
    """A figure followed by its one label badge (none for a missing figure, shown as —)."""
    return text if missing else f"{text} {label_badge(item.get('label'))}"


def render() -> None:
    """The recommendations page."""
    st.title("Recommendations")
    try:
        profile = state.build_profile()
    except AdvisorError as exc:
        show_error(exc)
        go_button("workflows", "Go to Workflows", key="go-workflows-empty", primary=True)
        return
    calibration = state.calibration()
    started = time.monotonic()
    try:
        with st.spinner("Fitting the speed predictor if needed, then ranking every option…"):
            result = state.recommendation(profile)
    except AdvisorError as exc:
        show_error(exc, prefix="No recommendation could be made.")
        return
    elapsed = time.monotonic() - started
    applies = bool(result["hardware"].get("calibration_applies"))
    _calibration_notes(calibration, result["hardware"], applies=applies)
    if elapsed >= 0.5:
        st.caption(f"Ranked in {elapsed:.1f} s on this machine.")
    _hardware_notes(result["hardware"])
    _overview(result)
    by_name = {w.name: w for w in profile.workflows}
    for entry in result["workflows"]:
        _card(entry, by_name[entry["name"]], result["hardware"])
    if calibration:
        _measured_vs_predicted(calibration, result["hardware"], applies=applies)
    st.write("")
    go_button("export", "Next: export the decision record", key="go-export", primary=True)


def _calibration_notes(calibration: dict[str, Any] | None, hardware: dict[str, Any], *, applies: bool) -> None:
    """Whether this machine's calibration shifted these figures, and if not, why; a noisy run is flagged."""
    used = hardware["used"]
    planned = used.get("name") or used.get("accelerator") or "the profile's machine"
    if not calibration:
        st.caption(
            "No calibration yet: every local figure is **predicted** from the catalog with 80% intervals. "
            "Calibrate (Quick: 3 repetitions of 7 tasks on the packaged model) for measured figures."
        )
        return
    run = calibration.get("run_id")
    backend = (calibration.get("backend") or {}).get("kind", "?")
    measured = calibration.get("hardware") or {}
    measured_on = (measured.get("hardware") or measured).get("name") or "this machine"
    if not applies:
        st.warning(
            f"Calibration run `{run}` ({backend}) measured **{measured_on}**, but this profile plans for "
            f"**{planned}** ({used.get('accelerator') or 'unknown accelerator'}, given in the profile): it is **not "
            "applied**. Every local figure here is **predicted** from the catalog for that machine; "
            "the measured-vs-predicted chart is left out because it would compare two machines.",
            icon=":material/block:",
        )
        return
    when = str(calibration.get("created_at") or "")[:10]
    st.caption(
        f"Using calibration run `{run}` ({backend}{', ' + when if when else ''}) on {measured_on}: figures for the "
        "measured model are **measured**; the rest are **calibrated** — predicted, then shifted to this machine by "
        "that run."
    )
    noisy = noisy_probes(calibration)
    if noisy:
        worst = max(noisy, key=lambda n: n[2])
        st.warning(
            f"Calibration run `{run}` is **noisy**: decode spread {worst[2]:.0f}% on {worst[0]} ({worst[1]})"
            + (f" and {len(noisy) - 1} more probe(s)" if len(noisy) > 1 else "")
            + f", against a goal of ≤ {NOISY_SPREAD_PCT:g}%. "
            + _load_words(calibration)
            + "Its shift of the predictions is less certain. Close other work and run it again.",
            icon=":material/ssid_chart:",
        )
        go_button("calibrate", "Run the calibration again", key="go-calibrate-noisy")


def _load_words(calibration: dict[str, Any]) -> str:
    """What the run recorded about the host's load when it started, in words."""
    load = calibration.get("host_load") or {}
    if load.get("load_1m") is None:
        return "The host was probably busy. "
    busy = "busy" if load.get("busy") else "not obviously busy"
    return f"The host was {busy} when it started (load average {load['load_1m']:g} on {load.get('cpus')} CPUs). "


def _hardware_notes(hardware: dict[str, Any]) -> None:
    used = hardware["used"]
    bandwidth = used.get("memory_bandwidth_gbs")
    summary = (
        f"**{used.get('name') or 'this machine'}** · {used.get('accelerator')} · "
        f"{used.get('memory_gb') or '?'} GB for weights · "
        f"{f'{bandwidth:g} GB/s' if bandwidth else 'bandwidth unknown'} · "
        f"{'given' if hardware.get('source') == 'given' else 'detected'}"
    )
    with st.expander(f"Hardware used: {summary}", icon=":material/memory:"):
        rows = [
            {"field": k, "value": "—" if v is None else v, "how": on_screen(str(hardware["how"].get(k, "—")))}
            for k, v in used.items()
        ]
        st.dataframe(pd.DataFrame(rows).astype(str), hide_index=True, width="stretch")
        basis = hardware.get("cost_basis") or {}
        for name, key in (("Power draw", "power_w"), ("Hardware price", "hardware_usd")):
            text = str(basis.get(key) or "")
            if text:
                label = (
                    "assumed" if text.startswith("assumed") else "published" if text.startswith("published") else None
                )
                st.markdown(f"{name}: {on_screen(text)}" + (f" {label_badge(label)}" if label else ""))
        for note in hardware.get("notes", []):
            st.caption(f"• {on_screen(note)}")
    if not bandwidth:
        st.warning(
            "Memory bandwidth is unknown, so no local option can be predicted and only hosted options are ranked. "
            "Measure it on the Hardware page (a few seconds), enter it, or calibrate.",
            icon=":material/speed:",
        )
        go_button("hardware", "Go to Hardware", key="go-hardware-bw")


def _overview(result: dict[str, Any]) -> None:
    rows = []
    for w in result["workflows"]:
        p = w["predicted"] or {}
        rows.append(
            {
                "workflow": w["name"],
                "decision": DECISION_TEXT.get(w["decision"], w["decision"]),
                "choice": charts.option_label(w["choice"]) if w["choice"] else "none",
                "s / accepted": p.get("seconds_per_accepted"),
                "success": p.get("success_probability"),
                "$ / accepted": money(w["cost"].get("usd_per_accepted")),
                "$ / 1k local": money(w["cost"]["local_usd_per_1k_requests"]),
                "$ / 1k hosted": money(w["cost"]["hosted_usd_per_1k_requests"]),
            }
        )
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        width="stretch",
        column_config={
            "s / accepted": st.column_config.NumberColumn(format="%.2f s"),
            "success": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="percent"),
            "$ / accepted": st.column_config.TextColumn(
                help="Cost of all attempts / successes for the chosen option; — when there is no choice"
            ),
            "$ / 1k local": st.column_config.TextColumn(
                help="Energy + amortised hardware and ops per 1,000 requests, best local option (predicted); "
                "— when no local model fits this hardware"
            ),
            "$ / 1k hosted": st.column_config.TextColumn(
                help="Token prices per 1,000 requests, best allowed hosted option (published); "
                "— when data sensitivity allows no hosted option"
            ),
        },
    )


def _choice_line(choice: dict[str, Any]) -> str:
    if choice["kind"] == "local":
        return (
            f"**{choice['model']}** at {choice['quantization']} on {choice['runtime']} — needs "
            f"{choice['memory_required_gb']:.1f} GB"
        )
    if choice["kind"] == "hybrid":
        local, hosted = choice.get("local") or {}, choice.get("hosted") or {}
        rate = choice.get("escalation_rate")
        memory = choice.get("memory_required_gb")
        return (
            f"**Local first:** **{local.get('model', '?')}** at {local.get('quantization') or '?'} on "
            f"{local.get('runtime') or '?'}"
            + (f" (needs {memory:.1f} GB)" if isinstance(memory, int | float) else "")
            + f"  \n**Escalates to:** **{hosted.get('model', '?')}** via {hosted.get('provider') or 'hosted'} when the "
            "local answer fails the workflow's check"
            + (f" — about **{rate:.0%}** of requests" if isinstance(rate, int | float) else "")
        )
    return f"**{choice['model']}** via {choice['provider']}"


def _card(entry: dict[str, Any], workflow: Workflow, hardware: dict[str, Any]) -> None:
    choice = entry["choice"]
    p = entry["predicted"] or {}
    labels = figure_labels(entry)
    with st.container(border=True):
        st.markdown(f"### {entry['name']}")
        badges = decision_badge(entry["decision"])
        if choice:
            badges += f" {label_badge(option_label(choice))} :gray-badge[basis: {choice.get('basis')}]"
        st.markdown(badges)
        if choice is None:
            st.error("No option at all for this workflow.", icon=":material/block:")
        else:
            st.markdown(_choice_line(choice))
        if p:
            _metrics(entry, p, labels)
            st.caption(_speed_line(entry, choice or {}, p, labels, workflow))
        capability = entry.get("capability")
        if capability:
            lo, hi = capability.get("interval") or [None, None]
            st.markdown(
                f"Capability ({capability.get('area')}): **{capability.get('score')}**"
                + (f" (80%: {lo}–{hi})" if lo is not None else "")
                + f" vs a need of {capability.get('need')}"
                + (f" — **{capability['shortfall']} points short**" if capability.get("shortfall") else " — meets it")
                + f" {label_badge(capability.get('label'))}",
                help=str(capability.get("basis") or ""),
            )
        for detail in entry.get("warnings_detail") or [{"text": w} for w in entry["warnings"]]:
            st.warning(warning_text(detail), icon=":material/warning:")
        leaves = entry.get("leaves_to_team")
        if leaves and choice and choice.get("kind") in ("local", "hybrid"):
            with st.expander(f"What local leaves to your team ({len(leaves)})", icon=":material/groups:"):
                st.markdown("\n".join(f"- {on_screen(str(x))}" for x in leaves))
        runtimes = (choice or {}).get("runtime_comparison") or []
        if len(runtimes) > 1:
            with st.expander(f"The same model on other runtimes here ({len(runtimes)})", icon=":material/swap_horiz:"):
                st.markdown(
                    "\n".join(
                        f"- {r.get('runtime')}: {r.get('decode_tps', 0):,.1f} tok/s, TTFT {seconds(r.get('ttft_s'))}, "
                        f"{seconds(r.get('seconds_per_accepted'))} per accepted answer {label_badge(r.get('label'))}"
                        f" — basis: {on_screen(runtime_basis(r))}"
                        for r in runtimes
                    )
                )
                published = [r for r in runtimes if r.get("pairs")]
                if published:
                    st.caption(
                        "Published rows: the llama.cpp figure here times the median ratio of sourced pairs (the same "
                        "model and machine measured on both runtimes, knowledge/runtime_pairs.csv); the interval is "
                        "widened by the pairs' 80% range. Calibrate with that runtime to replace it with your own."
                    )
        st.markdown("**Why, lens by lens**")
        st.markdown("\n".join(f"- **{title}** — {entry['reasons'].get(key, '—')}" for key, title in LENSES))
        specs = _card_charts(
            json.dumps(entry, sort_keys=True, default=str),
            workflow.latency_budget_s,
            workflow.requests_per_day,
            json.dumps(hardware, sort_keys=True, default=str),
        )
        _what_would_change_it(entry, specs)
        _details(entry, specs)


@st.cache_data(show_spinner=False, max_entries=128)
def _card_charts(
    entry_json: str, latency_budget_s: float, requests_per_day: float, hardware_json: str
) -> dict[str, Any]:
    """One card's charts as Vega-Lite specs and its ranked table, built once per recommendation entry: four
    Altair charts cost ~0.15 s a workflow to build and validate, so after an edit only the workflows whose
    figures changed are drawn again. Keyed by the entry's JSON, so any changed figure redraws its card."""
    entry, hardware = json.loads(entry_json), json.loads(hardware_json)
    built = {
        "speed": charts.speed_vs_success(entry, latency_budget_s=latency_budget_s),
        "cost": charts.cost_vs_volume(entry, hardware, requests_per_day=requests_per_day),
        "memory": charts.memory_fit(entry, available_gb=hardware["used"].get("memory_gb")),
        "sensitivity": charts.sensitivity(entry),
    }
    return {
        **{name: chart.to_dict() if chart is not None else None for name, chart in built.items()},
        "candidates": charts.candidates(entry),
    }


def _metrics(entry: dict[str, Any], p: dict[str, Any], labels: dict[str, dict[str, str]]) -> None:
    def help_for(text: str, key: str) -> str:
        item = labels[key]
        meaning = LABEL_MEANING.get(item["label"], "")
        return f"{text}\n\n**{item['label']}** — {meaning}." + (f" {item['basis']}" if item.get("basis") else "")

    m1, m2, m3, m4 = st.columns(4)
    m1.metric(
        "Seconds / accepted answer",
        seconds(p["seconds_per_accepted"]),
        help=help_for("Expected time until an accepted answer, retries included.", "seconds_per_accepted"),
        border=True,
    )
    m1.markdown(label_badge(labels["seconds_per_accepted"]["label"]))
    m2.metric(
        "Tokens / accepted answer",
        f"{p['tokens_per_accepted']:,.0f}",
        help=help_for(
            f"{p['reasoning_tokens']} reasoning + {p['answer_tokens']} answer tokens per attempt, over success.",
            "tokens_per_accepted",
        ),
        border=True,
    )
    m2.markdown(label_badge(labels["tokens_per_accepted"]["label"]))
    m3.metric(
        "Dollars / accepted answer",
        money(entry["cost"].get("usd_per_accepted")),
        help=help_for("Cost of all attempts / successes. Local: energy + amortised hardware.", "usd_per_accepted"),
        border=True,
    )
    m3.markdown(label_badge(labels["usd_per_accepted"]["label"]))
    lo, hi = p.get("success_interval") or [None, None]
    m4.metric(
        "Success probability",
        f"{p['success_probability']:.0%}",
        delta=f"80%: {lo:.0%}–{hi:.0%}" if lo is not None and hi is not None else None,
        delta_color="off",
        delta_arrow="off",
        help=help_for(
            "From published task scores, quantization loss and measured task results.", "success_probability"
        ),
        border=True,
    )
    m4.markdown(label_badge(labels["success_probability"]["label"]))


def _speed_line(
    entry: dict[str, Any],
    choice: dict[str, Any],
    p: dict[str, Any],
    labels: dict[str, dict[str, str]],
    workflow: Workflow,
) -> str:
    cost = entry["cost"]
    cost_labels = cost.get("labels") or {}
    diffusion = choice.get("time_model") == "diffusion" or p.get("time_model") == "diffusion"
    if diffusion:
        note = choice.get("note") or p.get("note") or "a diffusion model: time is per denoising step, not per token"
        speed = f"{on_screen(str(note))} {label_badge(labels['decode_tps']['label'])}"
    else:
        interval = p.get("decode_tps_interval")
        speed = with_label(
            f"decode {p['decode_tps']:,.1f} tok/s"
            + (f" (80%: {interval[0]:,.1f}–{interval[1]:,.1f})" if interval else ""),
            labels["decode_tps"],
        )
    parts = [
        with_label(f"TTFT {seconds(p['ttft_s'])}", labels["ttft_s"]),
        speed,
        with_label(f"{seconds(p['e2e_s'])} per answer vs a {workflow.latency_budget_s:g} s budget", labels["e2e_s"]),
        with_label(
            f"local {money(cost['local_usd_per_1k_requests'])}/1k",
            cost_labels.get("local_usd_per_1k_requests") or {"label": "predicted"},
            missing=cost["local_usd_per_1k_requests"] is None,
        ),
        with_label(
            f"hosted {money(cost['hosted_usd_per_1k_requests'])}/1k",
            cost_labels.get("hosted_usd_per_1k_requests") or {"label": "published"},
            missing=cost["hosted_usd_per_1k_requests"] is None,
        ),
    ]
    if cost.get("break_even_requests_per_day") is not None:
        parts.append(
            with_label(
                f"break-even {cost['break_even_requests_per_day']:,.0f} requests/day",
                cost_labels.get("break_even_requests_per_day") or {"label": "predicted"},
            )
        )
    return " · ".join(parts)


def _what_would_change_it(entry: dict[str, Any], specs: dict[str, Any]) -> None:
    """Flip points, the sensitivity chart, cheaper or faster options that lost, and what was not considered."""
    flips = entry.get("flip_points") or []
    if flips:
        st.markdown(
            "**Flip points:** "
            + "; ".join(f"{f['becomes']} {f['direction']} ~{f['requests_per_day']:,.0f} requests/day" for f in flips)
        )
    sensitive = entry.get("sensitivity") or []
    why_not = entry.get("why_not_cheaper_or_faster") or []
    excluded = entry.get("excluded") or []
    if sensitive:
        with st.expander(f"What would flip this choice ({len(sensitive)} assumptions)", icon=":material/tune:"):
            _chart(specs["sensitivity"], "No assumption could be varied.")
            st.markdown(
                "\n".join(
                    f"- {x['assumption']}: {_num(x['now'])} now; at {_num(x['flips_at'])} → {x['becomes']}"
                    for x in sensitive
                )
            )
    if why_not:
        with st.expander(f"Cheaper or faster options, and why they lost ({len(why_not)})", icon=":material/balance:"):
            st.markdown("\n".join(f"- {x}" for x in why_not))
    if excluded:
        with st.expander(f"Not considered ({len(excluded)})", icon=":material/filter_alt_off:"):
            st.dataframe(pd.DataFrame(excluded).astype(str), hide_index=True, width="stretch")


def _details(entry: dict[str, Any], specs: dict[str, Any]) -> None:
    left, right = st.columns(2)
    with left:
        _chart(specs["speed"], "No candidates to plot.")
    with right:
        _chart(specs["cost"], "Cost vs volume needs a local or a hosted option with costs.")
    ranked, memory = st.tabs(["Ranked alternatives", "Memory needed vs available"])
    with ranked:
        frame = specs["candidates"]
        if frame.empty:
            st.caption("No candidates.")
        else:
            ranks = ["chosen" if c else str(r) for c, r in zip(frame["chosen"], frame["rank"], strict=True)]
            shown = frame.assign(rank=ranks, usd_per_accepted=[money(v) for v in frame["usd_per_accepted"]])[
                [
                    "rank",
                    "option",
                    "kind",
                    "label",
                    "basis",
                    "seconds_per_accepted",
                    "e2e_s",
                    "success",
                    "usd_per_accepted",
                    "memory_required_gb",
                ]
            ]
            st.dataframe(
                shown,
                hide_index=True,
                width="stretch",
                column_config={
                    "label": st.column_config.TextColumn("figures"),
                    "seconds_per_accepted": st.column_config.NumberColumn("s / accepted", format="%.2f"),
                    "e2e_s": st.column_config.NumberColumn("s / answer", format="%.2f"),
                    "success": st.column_config.ProgressColumn(
                        "success", min_value=0.0, max_value=1.0, format="percent"
                    ),
                    "usd_per_accepted": st.column_config.TextColumn("$ / accepted"),
                    "memory_required_gb": st.column_config.NumberColumn("memory GB", format="%.1f"),
                },
            )
    with memory:
        _chart(specs["memory"], "No local candidate to compare (none fits, or none could be predicted).")


def _chart(spec: dict[str, Any] | None, empty: str) -> None:
    if spec is None:
        st.caption(empty)
    else:
        st.vega_lite_chart(spec=spec, width="stretch")


def _measured_vs_predicted(calibration: dict[str, Any], hardware: dict[str, Any], *, applies: bool) -> None:
    st.subheader("Measured vs predicted", divider="gray")
    if not applies:
        st.caption(
            "Not shown: the calibration measured this machine, while the profile plans for "
            f"{hardware['used'].get('name') or 'another machine'}; comparing the two would mix machines."
        )
        return
    try:
        frame = charts.measured_vs_predicted_rows(calibration, hardware["used"], state.knowledge(), state.predictor())
    except AdvisorError as exc:
        show_error(exc)
        return
    chart = charts.measured_vs_predicted(frame)
    if chart is None:
        st.caption(
            "The calibrated model is not in the catalog, or the bandwidth is unknown, so there is no prediction to compare."
        )
        return
    st.caption("How far the predictor is from this machine's own measurements, before its residual is applied.")
    st.altair_chart(chart)
