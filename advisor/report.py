"""Exports of a recommendation: a Markdown decision record, CSV rows, and a terminal table.

Text that came from a profile (workflow names) or the catalog is escaped for where it lands: Markdown/HTML in
the decision record, spreadsheet formulas in the CSV.
"""

from __future__ import annotations

import csv
import io
import math
import re
from datetime import date
from typing import Any

from advisor import __version__
from advisor.csvsafe import escape_cell
from advisor.decide.latency import (
    ASSUMED_HOSTED_PREFILL_TPS,
    ASSUMED_HOSTED_TPS,
    ASSUMED_HOSTED_TTFT_S,
    HOSTED_REFERENCE_PROMPT_TOKENS,
)
from advisor.policy import ADVANCED_MARGIN, FRONTIER_MARGIN, ROUTINE_MARGIN

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


def money(value: float | None) -> str:
    """Dollars for people: two significant digits below $1 ("<$0.0001" below that), cents to $100, then whole dollars."""
    if value is None or not math.isfinite(value):
        return "—"
    if value == 0:
        return "$0"
    sign, size = ("-" if value < 0 else ""), abs(value)
    if size < 0.0001:
        return f"{sign}<$0.0001"
    if size >= 100:
        return f"{sign}${size:,.0f}"
    if size >= 1:
        return f"{sign}${size:,.2f}"
    digits = 1 - math.floor(math.log10(size))
    text = f"{size:.{digits}f}"
    return f"{sign}${text}"


def seconds(value: float | None) -> str:
    """Seconds for people: two decimals below 10 s, one above, minutes past 10 min."""
    if value is None or not math.isfinite(value):
        return "—"
    if value >= 600:
        return f"{value / 60:,.1f} min"
    return f"{value:.2f} s" if value < 10 else f"{value:,.1f} s"


def count(value: float | None) -> str:
    """A count with thousands separators and no spurious decimals."""
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:,.0f}" if abs(value) >= 10 else f"{value:.3g}"


# Labels from the most to the least certain; a figure combined from several carries its least certain one.
LABEL_ORDER = ("measured", "calibrated", "published", "predicted", "imputed", "assumed")


def weakest(*labels: str | None) -> str:
    """The least certain of several labels (what a figure computed from them is)."""
    known = [x for x in labels if x in LABEL_ORDER]
    return max(known, key=LABEL_ORDER.index) if known else "predicted"


def option_label(option: dict[str, Any]) -> str:
    """An option's one label; a hybrid's is the less certain of its legs (its local leg, its hosted leg published)."""
    if option.get("kind") == "hybrid":
        local = {"measured": "measured", "predicted+calibrated": "calibrated"}.get(
            str(option.get("basis")), "predicted"
        )
        return weakest(local, "published")
    return str(option.get("label") or "predicted")


def figure_labels(entry: dict[str, Any]) -> dict[str, dict[str, str]]:
    """One label (and basis) for every figure of a workflow entry's choice, from the JSON's labels."""
    p = entry.get("predicted") or {}
    choice = entry.get("choice") or {}
    given = p.get("labels") or {}
    speed = option_label(choice) if choice else (p.get("label") or "predicted")

    def of(key: str, default: str) -> dict[str, str]:
        item = given.get(key) or {}
        return {"label": item.get("label") or default, "basis": item.get("basis") or ""}

    out = {
        "ttft_s": of("ttft_s", speed),
        "decode_tps": of("decode_tps", speed),
        "reasoning_tokens": of("reasoning_tokens", speed),
        "success_probability": of("success_probability", speed),
    }
    out["e2e_s"] = {
        "label": weakest(out["ttft_s"]["label"], out["decode_tps"]["label"], out["reasoning_tokens"]["label"]),
        "basis": "TTFT + thinking and answer tokens at the decode rate",
    }
    out["seconds_per_accepted"] = {
        "label": weakest(out["e2e_s"]["label"], out["success_probability"]["label"]),
        "basis": "seconds per answer / success probability; labelled by its least certain part",
    }
    out["tokens_per_accepted"] = {
        "label": weakest(out["reasoning_tokens"]["label"], out["success_probability"]["label"]),
        "basis": "tokens per attempt / success probability; labelled by its least certain part",
    }
    cost_labels = (entry.get("cost") or {}).get("labels") or {}
    key = "hosted_usd_per_1k_requests" if choice.get("kind") == "hosted" else "local_usd_per_1k_requests"
    cost = cost_labels.get(key) or {}
    if choice.get("kind") == "hybrid":
        legs = [
            cost_labels.get(k, {}).get("label") for k in ("local_usd_per_1k_requests", "hosted_usd_per_1k_requests")
        ]
        cost = {"label": weakest(*legs), "basis": "local leg on every request + hosted leg on escalations"}
    out["usd_per_accepted"] = {
        "label": weakest(cost.get("label") or speed, out["success_probability"]["label"]),
        "basis": (cost.get("basis") or "") + "; over the success probability",
    }
    return out


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
            f"{money(w['cost']['local_usd_per_1k_requests']):>11} {money(w['cost']['hosted_usd_per_1k_requests']):>11}"
        )
        for warning in w["warnings"]:
            lines.append(f"    ! {_terminal(warning)}")
    return "\n".join(lines)


HARDWARE_LABELS = {
    "name": "Name",
    "accelerator": "Accelerator",
    "memory_gb": "Memory for weights (GB)",
    "memory_bandwidth_gbs": "Memory bandwidth (GB/s)",
    "system_ram_gb": "System RAM (GB)",
    "power_w": "Power draw (W)",
    "fp16_tflops": "FP16 compute (TFLOPS)",
    "count": "Devices",
    "interconnect": "Interconnect",
    "gpu_memory_limit_gb": "GPU memory limit (GB)",
}
STALE_AFTER_MONTHS = 6


def _month_index(text: str | None) -> int | None:
    """'2026-11' or '2026-11-24' as a month count, for age checks; None when not a date."""
    match = re.match(r"(\d{4})-(\d{2})", str(text or ""))
    return int(match.group(1)) * 12 + int(match.group(2)) - 1 if match else None


def price_dates(result: dict[str, Any], knowledge: Any) -> dict[str, str]:
    """The price date of every hosted model the record names (choice, hosted reference, alternatives)."""
    by_id = {row["id"]: str(row.get("price_date") or row.get("source_date") or "") for row in knowledge.hosted}
    names: list[str] = []
    for w in result["workflows"]:
        options = [w.get("choice") or {}, *(w.get("alternatives") or [])]
        names += [o["model"] for o in options if o.get("kind") == "hosted"]
        names += [o["hosted"]["model"] for o in options if o.get("kind") == "hybrid" and o.get("hosted")]
        ref = (w.get("cost") or {}).get("hosted_reference") or {}
        if ref.get("model"):
            names.append(ref["model"])
    return {n: by_id[n] for n in dict.fromkeys(names) if by_id.get(n)}


def deciding_reason(w: dict[str, Any]) -> str:
    """The one reason that settled a workflow: a hard constraint or gap when there is one, else the objective."""
    gaps = [d["text"] for d in w.get("warnings_detail") or [] if d.get("field") != "calibration"]
    if w["decision"] == "none" or w["decision"].endswith("-with-gap"):
        return gaps[0] if gaps else (w["warnings"][0] if w["warnings"] else "nothing allowed meets the need")
    sensitivity = w["reasons"].get("data_sensitivity", "")
    if "only local" in sensitivity:
        return sensitivity
    p = w.get("predicted") or {}
    return (
        f"lowest expected cost plus waiting time per accepted answer: {money(w['cost'].get('usd_per_accepted'))} "
        f"and {seconds(p.get('seconds_per_accepted'))} per accepted answer, {p.get('success_probability', 0):.0%} accepted"
    )


def markdown_record(
    result: dict[str, Any], *, profile_source: str = "profile", today: date | None = None, knowledge: Any = None
) -> str:
    """The decision record: summary, dates, hardware, assumptions, per-workflow decisions with reasons, sources."""
    if knowledge is None:
        from advisor.knowledge import cached_knowledge
        from advisor.settings import get_settings

        knowledge = cached_knowledge(str(get_settings().knowledge_dir))
    today = today or date.today()
    hw = result["hardware"]
    used = hw["used"]
    out = ["# Decision record", "", "## Summary", ""]
    out += ["| workflow | decision | choice | deciding reason |", "|---|---|---|---|"]
    for w in result["workflows"]:
        out.append(
            f"| {md(w['name'])} | {md(w['decision'])} | {md(_choice_label(w['choice']))} | {md(deciding_reason(w))} |"
        )
    dates = price_dates(result, knowledge)
    catalog_prices = sorted(d for d in (str(r.get("price_date") or "") for r in knowledge.hosted) if _month_index(d))
    knowledge_dates = sorted(
        d
        for rows in (knowledge.hosted, knowledge.hardware, knowledge.speeds)
        for d in (str(r.get("source_date") or "") for r in rows)
        if _month_index(d)
    )
    chosen = [
        n
        for w in result["workflows"]
        for n in [(w.get("choice") or {}).get("model"), ((w.get("choice") or {}).get("hosted") or {}).get("model")]
        if n in dates
    ]
    others = sorted({d for n, d in dates.items() if n not in chosen}, key=lambda d: _month_index(d) or 0)
    price_text = "; ".join(
        [", ".join(f"{md(n)} {md(dates[n])}" for n in dict.fromkeys(chosen))]
        + (
            [f"other hosted options named here {others[0]}" + (f" to {others[-1]}" if len(others) > 1 else "")]
            if others
            else []
        )
    ).strip("; ") or (f"catalog {catalog_prices[0]} to {catalog_prices[-1]}" if catalog_prices else "unknown")
    out += [
        "",
        f"- **Date**: {today.isoformat()} (Decision Lens {__version__}); profile `{md(profile_source)}`.",
        f"- **Hosted prices as of**: {price_text} (knowledge/hosted.csv `price_date`).",
        f"- **Knowledge dated**: up to {knowledge_dates[-1] if knowledge_dates else 'unknown'} "
        "(newest `source_date` in knowledge/).",
    ]
    now = today.year * 12 + today.month - 1
    used_months = [m for m in (_month_index(d) for d in dates.values()) if m is not None]
    if used_months and now - min(used_months) > STALE_AFTER_MONTHS:
        out.append(
            f"- **Warning**: a hosted price used here is older than {STALE_AFTER_MONTHS} months; check the provider's "
            "current price before relying on the cost figures."
        )
    newest = _month_index(knowledge_dates[-1]) if knowledge_dates else None
    if newest is not None and now - newest > STALE_AFTER_MONTHS:
        out.append(f"- **Warning**: the knowledge catalog is older than {STALE_AFTER_MONTHS} months.")
    out += ["", "## Hardware", ""]
    out.append(
        f"Planned for **{md(used.get('name') or 'this machine')}** "
        f"({'given in the profile' if hw.get('source') == 'given' else 'detected here'})."
    )
    out.append("")
    out += [
        f"- **{HARDWARE_LABELS.get(k, k)}**: {md(v) if v is not None else 'unknown'} — {md(hw['how'].get(k, 'detected'))}"
        for k, v in used.items()
        if v is not None or k in ("memory_gb", "memory_bandwidth_gbs", "power_w")
    ]
    if hw.get("usable_memory_gb") is not None:
        out.append(
            f"- **Memory usable for weights**: {hw['usable_memory_gb']} GB — {md(hw.get('usable_memory_how', ''))}"
        )
    for note in hw.get("notes", []):
        out.append(f"- note: {md(note)}")
    out += ["", "## Assumptions", ""]
    costs = hw.get("costs", {})
    basis = hw.get("cost_basis", {})

    def tag(text: Any) -> str:
        head = str(text).split(":")[0].split(" ")[0]
        return "*assumed*" if head == "assumed" else ("*published*" if head == "published" else "*given*")

    run = hw.get("calibration")
    applied = hw.get("calibration_applies")
    calibration_text = (
        "none (all local figures predicted)"
        if not run
        else (
            f"run {md(run)}, applied: figures for its models are *measured*, the rest *calibrated*"
            if applied
            else f"run {md(run)} **not applied**: it measured another machine than the one planned for, "
            "so every local figure is *predicted* from the catalog"
        )
    )
    out += [
        f"- Electricity {money(costs.get('electricity_usd_per_kwh'))}/kWh (costs.electricity_usd_per_kwh; *assumed* $0.15 unless given); "
        f"hardware {money(costs.get('hardware_usd'))} amortised over {count(costs.get('amortization_months'))} months"
        f"{' (the first machine treated as sunk)' if costs.get('hardware_sunk') else ''}.",
        f"- Hardware price: {md(basis.get('hardware_usd', 'given'))} {tag(basis.get('hardware_usd', 'given'))}; "
        f"power: {md(basis.get('power_w', '—'))} {tag(basis.get('power_w', '—'))}.",
        f"- Capacity sized at {costs.get('utilization_target')} utilisation; ops {money(costs.get('ops_usd_per_month'))}/month"
        f"{'; a spare machine counted (redundancy)' if costs.get('redundancy') else ''}.",
        "- Local cost = energy for the busy time + amortised hardware and ops over the machines the volume needs; "
        "hosted cost = token prices, reasoning tokens billed as output.",
        f"- Capability: one scale per task area; tiers measured down from the best published model — frontier within "
        f"{FRONTIER_MARGIN:g} points, advanced within {ADVANCED_MARGIN:g}, routine within {ROUTINE_MARGIN:g}.",
        f"- Hosted TTFT = {costs.get('network_rtt_ms')} ms network round trip + published TTFT (*assumed* "
        f"{ASSUMED_HOSTED_TTFT_S:g} s where none) + prompt tokens beyond {HOSTED_REFERENCE_PROMPT_TOKENS} at an *assumed* "
        f"{ASSUMED_HOSTED_PREFILL_TPS:g} tok/s; decode *assumed* {ASSUMED_HOSTED_TPS:g} tok/s where none is published.",
        f"- Calibration: {calibration_text}.",
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
        "capability model with a wide interval; *assumed* ones are defaults named above. A figure computed from "
        "several carries the least certain of their labels.",
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
    choice = w.get("choice") or {}
    if choice.get("kind") == "hybrid" and choice.get("local") and choice.get("hosted"):
        leg, up = choice["local"], choice["hosted"]
        rate = choice.get("escalation_rate")
        out += [
            f"Local first: {md(leg.get('model'))} {md(leg.get('quantization') or '')} on {md(leg.get('runtime') or '')}; "
            f"escalates to {md(up.get('model'))} ({md(up.get('provider') or 'hosted')}) when the local answer fails "
            f"its check" + (f" (~{rate:.0%} of requests)." if rate is not None else "."),
            "",
        ]
    if p:
        labels = figure_labels(w)

        def label(key: str) -> str:
            return md(labels[key]["label"])

        lo, hi = p.get("success_interval") or [None, None]
        cap = w.get("capability") or {}
        interval = f" (80%: {p['success_probability'] if lo is None else lo:.0%}–{p['success_probability'] if hi is None else hi:.0%})"
        out += [
            "| figure | value | label |",
            "|---|---|---|",
            f"| TTFT | {seconds(p['ttft_s'])} | {label('ttft_s')} |",
            f"| decode | {p['decode_tps']:,.1f} tok/s"
            + (
                f" (80%: {p['decode_tps_interval'][0]:,.1f}–{p['decode_tps_interval'][1]:,.1f})"
                if p.get("decode_tps_interval")
                else ""
            )
            + f" | {label('decode_tps')} |",
            f"| thinking tokens per attempt | {count(p.get('reasoning_tokens', 0))} | {label('reasoning_tokens')} |",
            f"| seconds per accepted answer | {seconds(p['seconds_per_accepted'])} | {label('seconds_per_accepted')} |",
            f"| tokens per accepted answer | {count(p['tokens_per_accepted'])} | {label('tokens_per_accepted')} |",
            f"| dollars per accepted answer | {money(w['cost'].get('usd_per_accepted'))} | {label('usd_per_accepted')} |",
            f"| success probability | {p['success_probability']:.0%}{interval} | {label('success_probability')} |",
        ]
        if cap:
            out.append(
                f"| capability ({md(cap['area'])}) | {cap['score']} (80%: {cap['interval'][0]}–{cap['interval'][1]}), "
                f"need {cap['need']} | {md(cap['label'])} |"
            )
        out.append("")
    c = w["cost"]
    out.append(
        f"Cost per 1k requests: local {money(c['local_usd_per_1k_requests'])} (*predicted*), hosted "
        f"{money(c['hosted_usd_per_1k_requests'])} (*published*); break-even "
        f"{count(c['break_even_requests_per_day'])} requests/day (per accepted answer, *predicted*)."
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
                f"{a['predicted']['success_probability']:.0%} | {money(a['cost']['usd_per_accepted'])} | "
                f"{cap.get('score', '—')} ({md(cap.get('label', '—'))}) | {md(option_label(a))} |"
            )
    out += _local_deployment_section(w)
    out.append("")
    return out


def runtime_basis(row: dict[str, Any]) -> str:
    """basis: N sourced pairs, median ratio x (range a–b) for a published runtime row; else where the figure is from."""
    if row.get("pairs") and row.get("ratio_range"):
        low, high = row["ratio_range"]
        return (
            f"{row['pairs']} sourced pairs, median ratio {row['ratio_to_llama_cpp']:.2f} (range {low:.2f}–{high:.2f})"
        )
    return {"measured": "measured here", "calibrated": "calibrated here"}.get(str(row.get("label")), "speed predictor")


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
            "| runtime | decode | s/accepted | label | basis |",
            "|---|---|---|---|---|",
        ]
        out += [
            f"| {md(r['runtime'])} | {r['decode_tps']:.1f} tok/s | {r['seconds_per_accepted']:.1f} | {md(r['label'])} "
            f"| {md(runtime_basis(r))} |"
            for r in rows
        ]
    launch = choice.get("launch") or (choice.get("local") or {}).get("launch")
    if launch and launch.get("command"):
        # A fenced block: the command is copied as it is, and nothing in it is read as Markdown.
        out += ["", f"To launch it ({md(launch.get('engine', ''))}; check the model name before you run it):", ""]
        out += ["```sh", str(launch["command"]).replace("```", ""), "```"]
    serving = choice.get("serving")
    if serving:
        out += [
            "",
            f"Batching server ({md(serving.get('label', 'predicted'))}): about {serving.get('concurrency')} requests in "
            f"flight, {count(serving.get('aggregate_output_tok_s'))} output tok/s per machine in total.",
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
