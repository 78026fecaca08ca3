"""The Streamlit app: page registry, workflow templates and the few helpers every page shares."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import streamlit as st

from advisor.errors import AdvisorError
from advisor.policy import ADVANCED_MARGIN, FRONTIER_MARGIN, ROUTINE_MARGIN


@dataclass(frozen=True)
class PageSpec:
    """One page: its module under advisor.ui.pages (with a render() function), title, URL and icon."""

    module: str
    title: str
    url_path: str
    icon: str


PAGES = (
    PageSpec("workflows", "Workflows", "workflows", ":material/checklist:"),
    PageSpec("hardware", "Hardware", "hardware", ":material/memory:"),
    PageSpec("calibrate", "Calibrate", "calibrate", ":material/speed:"),
    PageSpec("recommendations", "Recommendations", "recommendations", ":material/recommend:"),
    PageSpec("knowledge", "Knowledge", "knowledge", ":material/menu_book:"),
    PageSpec("export", "Export", "export", ":material/download:"),
)


def _render(module: str) -> Callable[[], None]:
    def run() -> None:
        from advisor.ui import state

        state.restore_autosave()  # once per session: what was typed before a reload or a restart comes back
        try:
            importlib.import_module(f"advisor.ui.pages.{module}").render()
        finally:
            state.autosave()  # after every run, so an edit is on disk before anything can go wrong

    run.__name__ = module  # st.Page derives identity from the callable; keep it per page
    return run


def page(name: str) -> Any:
    """The st.Page for a page module name (same url_path, so the same page st.navigation registered)."""
    spec = next(p for p in PAGES if p.module == name)
    return st.Page(
        _render(spec.module), title=spec.title, url_path=spec.url_path, icon=spec.icon, default=spec is PAGES[0]
    )


def build_pages() -> list[Any]:
    """Every page, Workflows first (the landing page)."""
    return [page(p.module) for p in PAGES]


def go_button(name: str, label: str, *, key: str, primary: bool = False) -> None:
    """A button that switches to another page (also how tests move between pages)."""
    if st.button(label, key=key, type="primary" if primary else "secondary"):
        st.switch_page(page(name))


def show_error(exc: AdvisorError, *, prefix: str = "") -> None:
    """An AdvisorError as a readable message (multi-line messages keep their lines), never a traceback."""
    text = str(exc).strip()
    lines = text.splitlines()
    if len(lines) > 1:
        body = lines[0] + "\n\n" + "\n".join(f"- {line.strip().lstrip('- ')}" for line in lines[1:])
    else:
        body = text
    st.error((prefix + "\n\n" if prefix else "") + body, icon=":material/error:")


DECISION_STYLE = {
    "local": ("green", ":material/computer:", "Run locally"),
    "hosted": ("blue", ":material/cloud:", "Route to a hosted API"),
    "hybrid": ("violet", ":material/alt_route:", "Local first, hosted when the check fails"),
    "local-with-gap": ("orange", ":material/warning:", "Local, with a gap"),
    "hosted-with-gap": ("orange", ":material/warning:", "Hosted, with a gap"),
    "hybrid-with-gap": ("orange", ":material/warning:", "Hybrid, with a gap"),
    "none": ("red", ":material/block:", "No option fits"),
}
DECISION_TEXT = {
    "local": "local",
    "hosted": "hosted",
    "hybrid": "hybrid (local, then hosted)",
    "local-with-gap": "local, with a gap",
    "hosted-with-gap": "hosted, with a gap",
    "hybrid-with-gap": "hybrid, with a gap",
    "none": "none fits",
}


def decision_badge(decision: str) -> str:
    """Markdown for a coloured decision badge."""
    color, icon, text = DECISION_STYLE.get(decision, ("gray", ":material/help:", decision))
    return f":{color}-badge[{icon} {text}]"


# One badge per label of DESIGN.md: what a figure is, at a glance.
LABEL_STYLE = {
    "measured": ("green", ":material/straighten:"),
    "calibrated": ("blue", ":material/tune:"),
    "predicted": ("violet", ":material/query_stats:"),
    "published": ("gray", ":material/menu_book:"),
    "assumed": ("orange", ":material/edit_note:"),
    "imputed": ("yellow", ":material/functions:"),
}
LABEL_MEANING = {
    "measured": "measured on this machine by a calibration run",
    "calibrated": "predicted, then shifted to this machine by a calibration run",
    "predicted": "predicted by the fitted speed model, with an 80% interval",
    "published": "from a cited source (knowledge/, with its date)",
    "assumed": "a default; change it where the note says",
    "imputed": "filled in by the capability model, with a wide interval",
}


def label_badge(label: str | None) -> str:
    """Markdown badge naming what a figure is: measured, calibrated, predicted, published, assumed or imputed."""
    name = label if label in LABEL_STYLE else "predicted"
    color, icon = LABEL_STYLE[name]
    return f":{color}-badge[{icon} {name}]"


# YAML keys the core names in warnings, and the words on screen for them (with where to change them).
FIELD_LABELS = {
    "hosted.approved_for_confidential": ("Approved hosted providers", "Workflows → Cost assumptions"),
    "hardware.power_w": ("Power draw", "Hardware"),
    "hardware.memory_gb": ("Memory for weights", "Hardware"),
    "hardware.memory_bandwidth_gbs": ("Memory bandwidth", "Hardware"),
    "hardware.system_ram_gb": ("System RAM", "Hardware"),
    "hardware.fp16_tflops": ("FP16 compute", "Hardware"),
    "hardware.accelerator": ("Accelerator", "Hardware"),
    "hardware.gpu_memory_limit_gb": ("GPU memory limit", "Hardware"),
    "hardware.count": ("Devices", "Hardware"),
    "hardware.name": ("Hardware name", "Hardware"),
    "costs.electricity_usd_per_kwh": ("Electricity ($/kWh)", "Workflows → Cost assumptions"),
    "costs.hardware_usd": ("Hardware price ($)", "Workflows → Cost assumptions"),
    "costs.amortization_months": ("Amortisation (months)", "Workflows → Cost assumptions"),
    "costs.ops_usd_per_month": ("Operations ($/month)", "Workflows → Cost assumptions"),
    "costs.utilization_target": ("Busy share of the day allowed", "Workflows → Cost assumptions"),
    "costs.network_rtt_ms": ("Network round trip to hosted APIs", "Workflows → Cost assumptions"),
    "costs.hardware_sunk": ("The machine is already bought", "Workflows → Cost assumptions"),
    "costs.redundancy": ("Production needs a second machine", "Workflows → Cost assumptions"),
    "calibration": ("Calibration", "Calibrate"),
    "hardware": ("Hardware", "Hardware"),
    "hosted": ("Hosted options", "Workflows → Cost assumptions"),
}
WORKFLOW_FIELD_LABELS = {
    "name": "Workflow name",
    "task": "Task type",
    "data_sensitivity": "① Data sensitivity",
    "iteration": "② Iteration velocity",
    "latency_budget_s": "③ Latency budget",
    "interactive": "A person is waiting",
    "requests_per_day": "④ Requests per day",
    "input_tokens": "Input tokens / request",
    "output_tokens": "Output tokens / request",
    "capability": "⑤ Capability frontier",
}


def field_label(field: str | None) -> tuple[str, str] | None:
    """(on-screen label, where to change it) for a warnings_detail field path, or None when unknown."""
    if not field:
        return None
    if field in FIELD_LABELS:
        return FIELD_LABELS[field]
    if field.startswith("workflows[") and "]." in field:
        name, key = field[len("workflows[") :].split("].", 1)
        if key in WORKFLOW_FIELD_LABELS:
            return WORKFLOW_FIELD_LABELS[key], f"Workflows → {name}"
    return None


def on_screen(text: str) -> str:
    """A core message with the YAML keys it names replaced by the labels on screen (“Power draw”, …)."""
    for key in sorted(FIELD_LABELS, key=len, reverse=True):
        if "." in key and key in text:
            text = text.replace(key, f"“{FIELD_LABELS[key][0]}” ({FIELD_LABELS[key][1]})")
    return text


def warning_text(detail: dict[str, Any]) -> str:
    """One warnings_detail entry as shown: on-screen words, then the setting it is about and where it lives."""
    text = on_screen(str(detail.get("text", "")))
    where = field_label(detail.get("field"))
    if where and where[0] not in text:
        text += f" — see **{where[0]}** ({where[1]})"
    return text


# --- what each answer changes (shown as one-line help next to the questions) ---------------------------------

LENS_HELP = {
    "data_sensitivity": "Regulated data never goes to a hosted API; confidential only to providers you approve below.",
    "iteration": "Prototypes favour local (no procurement loop); stable work is ranked by dollars per accepted answer.",
    "latency_budget_s": "Seconds until a usable answer; options slower than this are not chosen.",
    "interactive": "A person is waiting: time to first token matters as much as throughput.",
    "requests_per_day": "Volume sets local utilisation (amortisation per request) and the break-even against hosted.",
    "input_tokens": "Prompt length per request: drives time to first token and hosted input cost.",
    "output_tokens": "Answer length per request: drives generation time and hosted output cost.",
    "capability": (
        f"Tiers are measured down from the best published score in the task's area: frontier = within "
        f"{FRONTIER_MARGIN:g} points of the best model, advanced within {ADVANCED_MARGIN:g}, routine within "
        f"{ROUTINE_MARGIN:g}. Frontier routes to hosted unless data sensitivity forbids it."
    ),
    "task": "Chooses which published benchmarks estimate a model's success on this work.",
}

TASKS = ("classification", "extraction", "summarization", "drafting", "coding", "reasoning", "chat", "tool-calling")
SENSITIVITIES = ("public", "internal", "confidential", "regulated")
ITERATIONS = ("prototype", "evolving", "stable")
CAPABILITIES = ("routine", "advanced", "frontier")
ACCELERATORS = ("cpu", "nvidia", "apple", "amd", "intel")

SENSITIVITY_LABELS = {
    "public": "Public — could be published",
    "internal": "Internal — company data, not secret",
    "confidential": "Confidential — approved providers only",
    "regulated": "Regulated — PII / PHI / NDA, never hosted",
}
ITERATION_LABELS = {
    "prototype": "Prototype — still exploring",
    "evolving": "Evolving — in use, still changing",
    "stable": "Stable — settled, long-running",
}
CAPABILITY_LABELS = {
    "routine": "Routine — small models do it",
    "advanced": "Advanced — needs a strong model",
    "frontier": "Frontier — best available",
}

# Ready templates: realistic starting points, each a Workflow's fields plus a one-line description.
TEMPLATES: dict[str, dict[str, Any]] = {
    "support": {
        "label": "Support drafts",
        "blurb": "Agent-reviewed replies to customer tickets; internal data, a person waiting.",
        "workflow": {
            "name": "support reply drafts",
            "task": "drafting",
            "data_sensitivity": "internal",
            "iteration": "evolving",
            "latency_budget_s": 8,
            "interactive": True,
            "requests_per_day": 2000,
            "input_tokens": 800,
            "output_tokens": 200,
            "capability": "routine",
        },
    },
    "phi": {
        "label": "PHI summaries",
        "blurb": "Clinical note summaries; regulated health data that must stay on site.",
        "workflow": {
            "name": "PHI visit summaries",
            "task": "summarization",
            "data_sensitivity": "regulated",
            "iteration": "stable",
            "latency_budget_s": 30,
            "interactive": False,
            "requests_per_day": 500,
            "input_tokens": 3000,
            "output_tokens": 300,
            "capability": "advanced",
        },
    },
    "autocomplete": {
        "label": "Code autocomplete",
        "blurb": "Inline completions in the editor; confidential code, sub-second budget.",
        "workflow": {
            "name": "code autocomplete",
            "task": "coding",
            "data_sensitivity": "confidential",
            "iteration": "evolving",
            "latency_budget_s": 1.0,
            "interactive": True,
            "requests_per_day": 20000,
            "input_tokens": 1500,
            "output_tokens": 40,
            "capability": "routine",
        },
    },
    "classification": {
        "label": "Bulk classification",
        "blurb": "Overnight tagging of public documents at high volume; cost decides.",
        "workflow": {
            "name": "bulk ticket classification",
            "task": "classification",
            "data_sensitivity": "public",
            "iteration": "stable",
            "latency_budget_s": 60,
            "interactive": False,
            "requests_per_day": 100000,
            "input_tokens": 400,
            "output_tokens": 5,
            "capability": "routine",
        },
    },
    "research": {
        "label": "Research synthesis",
        "blurb": "Multi-source reasoning reports; low volume, needs the frontier.",
        "workflow": {
            "name": "research synthesis",
            "task": "reasoning",
            "data_sensitivity": "internal",
            "iteration": "prototype",
            "latency_budget_s": 120,
            "interactive": False,
            "requests_per_day": 50,
            "input_tokens": 8000,
            "output_tokens": 1500,
            "capability": "frontier",
        },
    },
}
