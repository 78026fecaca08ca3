"""Exports of a recommendation: a Markdown decision record, CSV rows, and a terminal table."""

from __future__ import annotations

import csv
import io
from typing import Any

from advisor.policy import CAPABILITY_THRESHOLDS
from advisor.recommend import ASSUMED_HOSTED_TPS, ASSUMED_HOSTED_TTFT_S


def _choice_label(choice: dict[str, Any] | None) -> str:
    if not choice:
        return "none"
    if choice["kind"] == "local":
        return f"{choice['model']} {choice['quantization']} on {choice['runtime']}"
    return f"{choice['model']} ({choice['provider']})"


def _money(value: float | None) -> str:
    return "—" if value is None else f"${value:,.4f}"


def terminal_table(result: dict[str, Any]) -> str:
    """One line per workflow, then its warnings: what a person reads first."""
    lines = [
        f"{'workflow':<28} {'decision':<15} {'choice':<44} {'s/accepted':>10} {'$/1k local':>11} {'$/1k hosted':>11}"
    ]
    for w in result["workflows"]:
        p = w["predicted"] or {}
        spa = f"{p['seconds_per_accepted']:.1f}" if p.get("seconds_per_accepted") is not None else "—"
        lines.append(
            f"{w['name'][:28]:<28} {w['decision']:<15} {_choice_label(w['choice'])[:44]:<44} {spa:>10} "
            f"{_money(w['cost']['local_usd_per_1k_requests']):>11} {_money(w['cost']['hosted_usd_per_1k_requests']):>11}"
        )
        for warning in w["warnings"]:
            lines.append(f"    ! {warning}")
    return "\n".join(lines)


def markdown_record(result: dict[str, Any], *, profile_source: str = "profile") -> str:
    """The decision record: assumptions, per-workflow decisions with reasons, measured vs predicted labels, sources."""
    hw = result["hardware"]
    used = hw["used"]
    out = ["# Decision record", "", f"Profile: `{profile_source}`.", "", "## Hardware", ""]
    out += [f"- **{k}**: {v if v is not None else 'unknown'} — {hw['how'].get(k, 'detected')}" for k, v in used.items()]
    for note in hw.get("notes", []):
        out.append(f"- note: {note}")
    out += ["", "## Assumptions", ""]
    costs = hw.get("costs", {})
    out += [
        f"- Electricity ${costs.get('electricity_usd_per_kwh')}/kWh; hardware ${costs.get('hardware_usd')} amortised over "
        f"{costs.get('amortization_months')} months{' (treated as sunk)' if costs.get('hardware_sunk') else ''}.",
        f"- Hardware price: {hw.get('cost_basis', {}).get('hardware_usd', 'given')}; power: {hw.get('cost_basis', {}).get('power_w', '—')}.",
        f"- Capacity sized at {costs.get('utilization_target')} utilisation; ops ${costs.get('ops_usd_per_month')}/month"
        f"{'; a spare machine counted (redundancy)' if costs.get('redundancy') else ''}; hosted TTFT includes a "
        f"{costs.get('network_rtt_ms')} ms network round trip.",
        "- Local cost = energy for the busy time + amortisation at the utilisation the volume implies; hosted cost = token prices, reasoning tokens billed.",
        f"- Capability thresholds on the task-area score: advanced ≥ {CAPABILITY_THRESHOLDS['advanced']:.0f}, frontier ≥ {CAPABILITY_THRESHOLDS['frontier']:.0f}.",
        f"- Hosted speed without a published figure: TTFT {ASSUMED_HOSTED_TTFT_S:g} s, {ASSUMED_HOSTED_TPS:g} tok/s (labelled assumed).",
        f"- Calibration used: {hw.get('calibration') or 'none (all local figures predicted)'}.",
        "",
    ]
    for w in result["workflows"]:
        p = w["predicted"] or {}
        out += [
            f"## {w['name']}",
            "",
            f"**Decision: {w['decision']}** — {_choice_label(w['choice'])}"
            + (f" (basis: {w['choice']['basis']})" if w["choice"] else ""),
            "",
        ]
        if p:
            lo, hi = p.get("success_interval") or [None, None]
            out += [
                "| figure | value | label |",
                "|---|---|---|",
                f"| TTFT | {p['ttft_s']:.2f} s | {p['label']} |",
                f"| decode | {p['decode_tps']:.1f} tok/s"
                + (
                    f" (80%: {p['decode_tps_interval'][0]:.1f}–{p['decode_tps_interval'][1]:.1f})"
                    if p.get("decode_tps_interval")
                    else ""
                )
                + f" | {p['label']} |",
                f"| seconds per accepted answer | {p['seconds_per_accepted']:.1f} s | {p['label']} |",
                f"| tokens per accepted answer | {p['tokens_per_accepted']:.0f} | {p['label']} |",
                f"| success probability | {p['success_probability']:.0%} (80%: {lo:.0%}–{hi:.0%}) | {p['label']} |",
                "",
            ]
        c = w["cost"]
        out.append(
            f"Cost per 1k requests: local {_money(c['local_usd_per_1k_requests'])}, hosted {_money(c['hosted_usd_per_1k_requests'])}; "
            f"break-even {c['break_even_requests_per_day'] if c['break_even_requests_per_day'] is not None else '—'} requests/day."
        )
        out += ["", "Reasons:", ""]
        out += [f"- **{lens.replace('_', ' ')}**: {text}" for lens, text in w["reasons"].items()]
        if w["warnings"]:
            out += ["", "Warnings:", ""] + [f"- {x}" for x in w["warnings"]]
        if w["alternatives"]:
            out += [
                "",
                "Alternatives (ranked):",
                "",
                "| option | s/accepted | success | $/accepted | basis |",
                "|---|---|---|---|---|",
            ]
            for a in w["alternatives"]:
                out.append(
                    f"| {_choice_label(a)} | {a['predicted']['seconds_per_accepted']:.1f} | "
                    f"{a['predicted']['success_probability']:.0%} | {_money(a['cost']['usd_per_accepted'])} | {a['basis']} |"
                )
        out.append("")
    out += [
        "## Sources",
        "",
        "Every catalog figure carries its source URL and date in `knowledge/` (models.yaml, hardware.csv, "
        "hosted.csv, speed_measurements.csv, quantization.csv). Figures labelled *measured* come from this machine's calibration; "
        "*predicted* ones from the fitted model with 80% intervals; *assumed* ones are defaults named above.",
        "",
    ]
    return "\n".join(out)


CSV_COLUMNS = [
    "workflow",
    "decision",
    "kind",
    "model",
    "quantization",
    "runtime",
    "provider",
    "basis",
    "ttft_s",
    "decode_tps",
    "seconds_per_accepted",
    "tokens_per_accepted",
    "success_probability",
    "usd_per_accepted",
    "local_usd_per_1k_requests",
    "hosted_usd_per_1k_requests",
    "break_even_requests_per_day",
    "warnings",
]


def csv_rows(result: dict[str, Any]) -> str:
    """One CSV row per workflow (the chosen option), for spreadsheets."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    for w in result["workflows"]:
        choice, p = w["choice"] or {}, w["predicted"] or {}
        writer.writerow(
            {
                "workflow": w["name"],
                "decision": w["decision"],
                "kind": choice.get("kind"),
                "model": choice.get("model"),
                "quantization": choice.get("quantization"),
                "runtime": choice.get("runtime"),
                "provider": choice.get("provider"),
                "basis": choice.get("basis"),
                "ttft_s": p.get("ttft_s"),
                "decode_tps": p.get("decode_tps"),
                "seconds_per_accepted": p.get("seconds_per_accepted"),
                "tokens_per_accepted": p.get("tokens_per_accepted"),
                "success_probability": p.get("success_probability"),
                "usd_per_accepted": w["cost"].get("usd_per_accepted"),
                **{
                    k: w["cost"][k]
                    for k in ("local_usd_per_1k_requests", "hosted_usd_per_1k_requests", "break_even_requests_per_day")
                },
                "warnings": " | ".join(w["warnings"]),
            }
        )
    return buffer.getvalue()
