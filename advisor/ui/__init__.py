"""The Streamlit app: page registry, workflow templates and the few helpers every page shares."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import streamlit as st

from advisor.errors import AdvisorError


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
    "local-with-gap": ("orange", ":material/warning:", "Local, with a gap"),
}


def decision_badge(decision: str) -> str:
    """Markdown for a coloured decision badge."""
    color, icon, text = DECISION_STYLE.get(decision, ("gray", ":material/help:", decision))
    return f":{color}-badge[{icon} {text}]"


def label_badge(label: str | None) -> str:
    """Markdown badge saying whether figures are measured on this machine or predicted."""
    if label == "measured":
        return ":green-badge[:material/straighten: measured]"
    return ":violet-badge[:material/query_stats: predicted]"


# --- what each answer changes (shown as one-line help next to the questions) ---------------------------------

LENS_HELP = {
    "data_sensitivity": "Regulated data never goes to a hosted API; confidential only to providers you approve below.",
    "iteration": "Prototypes favour local (no procurement loop); stable work is ranked by dollars per accepted answer.",
    "latency_budget_s": "Seconds until a usable answer; options slower than this are not chosen.",
    "interactive": "A person is waiting: time to first token matters as much as throughput.",
    "requests_per_day": "Volume sets local utilisation (amortisation per request) and the break-even against hosted.",
    "input_tokens": "Prompt length per request: drives time to first token and hosted input cost.",
    "output_tokens": "Answer length per request: drives generation time and hosted output cost.",
    "capability": "Advanced needs a task score ≥ 55, frontier ≥ 75; frontier routes to hosted unless data forbids it.",
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
