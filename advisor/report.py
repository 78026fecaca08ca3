"""Exports of a recommendation: a Markdown decision record, CSV rows, and a terminal table.

Text that came from a profile (workflow names) or the catalog is escaped for where it lands: Markdown/HTML in
the decision record, spreadsheet formulas in the CSV.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from advisor.decide.latency import (
    ASSUMED_HOSTED_PREFILL_TPS,
    ASSUMED_HOSTED_TPS,
    ASSUMED_HOSTED_TTFT_S,
    HOSTED_REFERENCE_PROMPT_TOKENS,
)
from advisor.policy import ADVANCED_MARGIN, FRONTIER_MARGIN, ROUTINE_MARGIN

try:  # the shared CSV rule (advisor/csvsafe.py, owned by the hardening work)
    from advisor.csvsafe import escape_cell
except ImportError:  # pragma: no cover - until that module lands, the same rule here
    import math

    def escape_cell(value: Any) -> Any:
        """Text a spreadsheet would run as a formula gets a leading quote; numbers stay numbers."""
        if value is None:
            return ""
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, int | float):
            return "" if isinstance(value, float) and not math.isfinite(value) else value
        text = str(value)
        return "'" + text if text.startswith(("=", "+", "-", "@", "\t", "\r")) else text


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def md(text: Any) -> str:
    """One line of inert Markdown: newlines folded, HTML and Markdown syntax escaped (no headings, no <script>)."""
    flat = re.sub(r"[\r\n\t\x0b\x0c]+", " ", str(text))
    flat = flat.replace("&", "&amp;")
    return _MD_SPECIAL.sub(r"\\\1", flat).replace("\\<", "&lt;").replace("\\>", "&gt;")


def _choice_label(choice: dict[str, Any] | None) -> str:
    if not choice:
        return "none"
    if choice["kind"] == "local":
        return f"{choice['model']} {choice['quantization']} on {choice['runtime']}"
    if choice["kind"] == "hybrid":
        return f"hybrid: {choice['model']} (local first, hosted when the check fails)"
    return f"{choice['model']} ({choice['provider']})"


def _money(value: float | None) -> str:
    return "—" if value is None else f"${value:,.4f}"


def _terminal(text: str) -> str:
    """No control characters from a profile reach the terminal."""
    return re.sub(r"[\x00-\x1f\x7f]", " ", text)


def terminal_table(result: dict[str, Any]) -> str:
    """One line per workflow, then its warnings: what a person reads first."""
    lines = [
        f"{'workflow':<28} {'decision':<15} {'choice':<44} {'s/accepted':>10} {'$/1k local':>11} {'$/1k hosted':>11}"
    ]
    for w in result["workflows"]:
        p = w["predicted"] or {}
        spa = f"{p['seconds_per_accepted']:.1f}" if p.get("seconds_per_accepted") is not None else "—"
        lines.append(
            f"{_terminal(w['name'])[:28]:<28} {w['decision']:<15} {_choice_label(w['choice'])[:44]:<44} {spa:>10} "
            f"{_money(w['cost']['local_usd_per_1k_requests']):>11} {_money(w['cost']['hosted_usd_per_1k_requests']):>11}"
        )
        for warning in w["warnings"]:
            lines.append(f"    ! {_terminal(warning)}")
    return "\n".join(lines)


def markdown_record(result: dict[str, Any], *, profile_source: str = "profile") -> str:
    """The decision record: assumptions, per-workflow decisions with reasons, every figure's label, sources."""
    hw = result["hardware"]
    used = hw["used"]
    out = ["# Decision record", "", f"Profile: `{md(profile_source)}`.", "", "## Hardware", ""]
    out += [
        f"- **{k}**: {md(v) if v is not None else 'unknown'} — {md(hw['how'].get(k, 'detected'))}"
        for k, v in used.items()
    ]
    if hw.get("usable_memory_gb") is not None:
        out.append(
            f"- **memory usable for weights**: {hw['usable_memory_gb']} GB — {md(hw.get('usable_memory_how', ''))}"
        )
    for note in hw.get("notes", []):
        out.append(f"- note: {md(note)}")
    out += ["", "## Assumptions", ""]
    costs = hw.get("costs", {})
    basis = hw.get("cost_basis", {})
    out += [
        f"- Electricity ${costs.get('electricity_usd_per_kwh')}/kWh; hardware ${costs.get('hardware_usd')} amortised over "
        f"{costs.get('amortization_months')} months{' (the first machine treated as sunk)' if costs.get('hardware_sunk') else ''}.",
        f"- Hardware price: {md(basis.get('hardware_usd', 'given'))}; power: {md(basis.get('power_w', '—'))}.",
        f"- Capacity sized at {costs.get('utilization_target')} utilisation; ops ${costs.get('ops_usd_per_month')}/month"
        f"{'; a spare machine counted (redundancy)' if costs.get('redundancy') else ''}.",
        "- Local cost = energy for the busy time + amortised hardware and ops over the machines the volume needs; "
        "hosted cost = token prices, reasoning tokens billed as output.",
        f"- Capability: one scale per task area; tiers measured down from the best published model — frontier within "
        f"{FRONTIER_MARGIN:g} points, advanced within {ADVANCED_MARGIN:g}, routine within {ROUTINE_MARGIN:g}.",
        f"- Hosted TTFT = {costs.get('network_rtt_ms')} ms network round trip + published TTFT (assumed "
        f"{ASSUMED_HOSTED_TTFT_S:g} s where none) + prompt tokens beyond {HOSTED_REFERENCE_PROMPT_TOKENS} at an assumed "
        f"{ASSUMED_HOSTED_PREFILL_TPS:g} tok/s; decode {ASSUMED_HOSTED_TPS:g} tok/s where none is published.",
        f"- Calibration used: {md(hw.get('calibration') or 'none (all local figures predicted)')}.",
        "",
    ]
    tiers = hw.get("capability_tiers") or {}
    if tiers:
        out += ["| task area | best published | routine | advanced | frontier |", "|---|---|---|---|---|"]
        for area, t in tiers.items():
            out.append(
                f"| {md(area)} | {t['best']} ({md(t['best_model'])}) | {t['routine']} | {t['advanced']} | {t['frontier']} |"
            )
        out.append("")
    for w in result["workflows"]:
        out += _workflow_section(w)
    out += [
        "## Sources",
        "",
        "Every catalog figure carries its source URL and date in `knowledge/` (models.yaml, hardware.csv, "
        "hosted.csv, speed_measurements.csv, quantization.csv, model_traits.csv, device_prices.csv). Figures labelled "
        "*measured* come from this machine's calibration; *calibrated* are predictions shifted by it; *predicted* ones "
        "come from the fitted model with 80% intervals; *published* from a cited source; *imputed* scores from the "
        "capability model with a wide interval; *assumed* ones are defaults named above.",
        "",
    ]
    return "\n".join(out)


def _workflow_section(w: dict[str, Any]) -> list[str]:
    p = w["predicted"] or {}
    out = [
        f"## {md(w['name'])}",
        "",
        f"**Decision: {w['decision']}** — {md(_choice_label(w['choice']))}"
        + (f" (basis: {md(w['choice']['basis'])})" if w["choice"] else ""),
        "",
    ]
    if p:
        labels = p.get("labels", {})

        def label(key: str) -> str:
            return md(labels.get(key, {}).get("label", p["label"]))

        lo, hi = p.get("success_interval") or [None, None]
        cap = w.get("capability") or {}
        out += [
            "| figure | value | label |",
            "|---|---|---|",
            f"| TTFT | {p['ttft_s']:.2f} s | {label('ttft_s')} |",
            f"| decode | {p['decode_tps']:.1f} tok/s"
            + (
                f" (80%: {p['decode_tps_interval'][0]:.1f}–{p['decode_tps_interval'][1]:.1f})"
                if p.get("decode_tps_interval")
                else ""
            )
            + f" | {label('decode_tps')} |",
            f"| thinking tokens per attempt | {p.get('reasoning_tokens', 0)} | {label('reasoning_tokens')} |",
            f"| seconds per accepted answer | {p['seconds_per_accepted']:.1f} s | {p['label']} |",
            f"| tokens per accepted answer | {p['tokens_per_accepted']:.0f} | {p['label']} |",
            f"| success probability | {p['success_probability']:.0%} (80%: {lo:.0%}–{hi:.0%}) | {label('success_probability')} |",
        ]
        if cap:
            out.append(
                f"| capability ({md(cap['area'])}) | {cap['score']} (80%: {cap['interval'][0]}–{cap['interval'][1]}), "
                f"need {cap['need']} | {md(cap['label'])} |"
            )
        out.append("")
    c = w["cost"]
    out.append(
        f"Cost per 1k requests: local {_money(c['local_usd_per_1k_requests'])}, hosted {_money(c['hosted_usd_per_1k_requests'])}; "
        f"break-even {c['break_even_requests_per_day'] if c['break_even_requests_per_day'] is not None else '—'} "
        "requests/day (per accepted answer)."
    )
    flips = w.get("flip_points") or []
    if flips:
        out.append(
            "Flip points: "
            + "; ".join(f"{md(f['becomes'])} {f['direction']} ~{f['requests_per_day']:,.0f}/day" for f in flips)
            + "."
        )
    sensitive = w.get("sensitivity") or []
    if sensitive:
        out += ["", "What would flip this decision (nearest first):", ""]
        out += [
            f"- {md(x['assumption'])}: {x['now']:,.4g} now; at {x['flips_at']:,.4g} the choice becomes {md(x['becomes'])}"
            for x in sensitive
        ]
    out += ["", "Reasons:", ""]
    out += [f"- **{lens.replace('_', ' ')}**: {md(text)}" for lens, text in w["reasons"].items()]
    if w["warnings"]:
        out += ["", "Warnings:", ""] + [f"- {md(x)}" for x in w["warnings"]]
    if w.get("why_not_cheaper_or_faster"):
        out += ["", "Cheaper or faster options, and why they lost:", ""]
        out += [f"- {md(x)}" for x in w["why_not_cheaper_or_faster"]]
    if w["alternatives"]:
        out += [
            "",
            "Alternatives (by capability shortfall, then the objective):",
            "",
            "| option | s/accepted | success | $/accepted | capability | basis |",
            "|---|---|---|---|---|---|",
        ]
        for a in w["alternatives"]:
            cap = a.get("capability") or {}
            out.append(
                f"| {md(_choice_label(a))} | {a['predicted']['seconds_per_accepted']:.1f} | "
                f"{a['predicted']['success_probability']:.0%} | {_money(a['cost']['usd_per_accepted'])} | "
                f"{cap.get('score', '—')} ({md(cap.get('label', '—'))}) | {md(a['basis'])} |"
            )
    out += _local_deployment_section(w)
    out.append("")
    return out


def _local_deployment_section(w: dict[str, Any]) -> list[str]:
    """The choice's time model, the same model on other runtimes, and what a local choice leaves to the team."""
    out: list[str] = []
    choice = w.get("choice") or {}
    if choice.get("time_model") == "diffusion":
        out += ["", f"Time model: diffusion — {md(choice.get('note', ''))}"]
    rows = choice.get("runtime_comparison") or []
    if len(rows) > 1:
        out += [
            "",
            "The same model on other runtimes here:",
            "",
            "| runtime | decode | s/accepted | label |",
            "|---|---|---|---|",
        ]
        out += [
            f"| {md(r['runtime'])} | {r['decode_tps']:.1f} tok/s | {r['seconds_per_accepted']:.1f} | {md(r['label'])} |"
            for r in rows
        ]
    leaves = w.get("leaves_to_team")
    if leaves:
        out += ["", "What local leaves to the team:", ""] + [f"- {md(x)}" for x in leaves]
    return out


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
    "capability_score",
    "capability_label",
    "warnings",
]


def csv_rows(result: dict[str, Any]) -> str:
    """One CSV row per workflow (the chosen option), for spreadsheets; text cells escaped against formulas."""
    buffer = io.StringIO()
    # The excel dialect's CRLF line end makes the writer quote any cell holding a CR or LF, so no cell splits a row.
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for w in result["workflows"]:
        choice, p, cap = w["choice"] or {}, w["predicted"] or {}, w.get("capability") or {}
        row = {
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
            "capability_score": cap.get("score"),
            "capability_label": cap.get("label"),
            "warnings": " | ".join(w["warnings"]),
        }
        writer.writerow([escape_cell(row[c]) for c in CSV_COLUMNS])
    return buffer.getvalue()
