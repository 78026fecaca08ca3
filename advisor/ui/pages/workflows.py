"""Workflows (landing page): the five decision-lens questions per workflow, templates, costs, profile YAML."""

from __future__ import annotations

from typing import Any

import streamlit as st

from advisor.errors import AdvisorError
from advisor.policy import ADVANCED_MARGIN, FRONTIER_MARGIN, ROUTINE_MARGIN
from advisor.ui import (
    CAPABILITIES,
    CAPABILITY_LABELS,
    ITERATION_LABELS,
    ITERATIONS,
    LENS_HELP,
    SENSITIVITIES,
    SENSITIVITY_LABELS,
    TASKS,
    TEMPLATES,
    go_button,
    show_error,
    state,
)

# Offered in the approved-providers picker without loading the catalog (first paint stays fast); any name can be typed.
COMMON_PROVIDERS = ("alibaba", "anthropic", "deepseek", "google", "groq", "mistral", "openai", "together")


def render() -> None:
    """The landing page."""
    st.title("Decision Lens")
    st.markdown(
        "For each of your LLM workflows: **run it on a local open-weight model, or route it to a hosted API?** "
        "Answer five questions per workflow; the advice ranks options by seconds, tokens and dollars "
        "**per accepted answer** — not tokens per second."
    )
    message = state.pop_flash()
    if message:
        getattr(st, message[0], st.success)(message[1])

    _templates()
    _workflow_list()
    _costs_and_policy()
    _save_and_load()


def _templates() -> None:
    st.subheader("Start from a template", divider="gray")
    cols = st.columns(len(TEMPLATES))
    for col, (key, template) in zip(cols, TEMPLATES.items(), strict=True):
        with col.container(border=True, height="stretch"):
            st.markdown(f"**{template['label']}**")
            st.caption(template["blurb"])
            st.button(
                "Add",
                key=f"tpl-{key}",
                icon=":material/add:",
                on_click=_add_template,
                args=(key,),
                width="stretch",
            )


def _add_template(key: str) -> None:
    template = TEMPLATES[key]
    state.add_workflow(dict(template["workflow"]))
    state.flash(f"Added “{template['label']}” — adjust its answers below, then see the recommendations.")


def _add_blank() -> None:
    state.add_workflow({"name": "new workflow"})


def _add_blank_button() -> None:
    st.button("Blank workflow", key="wf-add-blank", icon=":material/add:", on_click=_add_blank)


def _workflow_list() -> None:
    st.subheader("Your workflows", divider="gray")
    items = state.workflows()
    if not items:
        st.info(
            "No workflows yet. Add a template above (you can edit every answer), add a blank one, "
            "or load a saved profile YAML below.",
            icon=":material/lightbulb:",
        )
        _add_blank_button()
        return
    for wf in list(items):
        _workflow_editor(wf)
    _add_blank_button()
    try:
        state.build_profile()
    except AdvisorError as exc:
        show_error(exc, prefix="Fix these answers before recommending:")
        return
    st.write("")
    left, right, _ = st.columns([1.3, 1, 3])
    with left:
        go_button("recommendations", "See recommendations", key="go-recommendations", primary=True)
    with right:
        go_button("hardware", "Check hardware", key="go-hardware")


def _workflow_editor(wf: dict[str, Any]) -> None:
    uid = wf["_id"]

    def k(name: str, value: Any) -> str:
        return state.bind(f"wf-{uid}-{name}", value)

    with st.container(border=True):
        c_name, c_task, c_dup, c_del = st.columns([3, 2, 0.6, 0.6], vertical_alignment="bottom")
        name = c_name.text_input("Workflow name", key=k("name", wf["name"]), max_chars=200)
        task = c_task.selectbox("Task type", TASKS, key=k("task", wf["task"]), help=LENS_HELP["task"])
        c_dup.button(
            "",
            key=f"wf-{uid}-duplicate",
            icon=":material/content_copy:",
            help="Duplicate this workflow",
            on_click=state.duplicate_workflow,
            args=(uid,),
            width="stretch",
        )
        c_del.button(
            "",
            key=f"wf-{uid}-remove",
            icon=":material/delete:",
            help="Remove this workflow",
            on_click=state.remove_workflow,
            args=(uid,),
            width="stretch",
        )

        c1, c2, c3 = st.columns(3)
        sensitivity = c1.selectbox(
            "① Data sensitivity",
            SENSITIVITIES,
            key=k("data_sensitivity", wf["data_sensitivity"]),
            format_func=SENSITIVITY_LABELS.__getitem__,
            help=LENS_HELP["data_sensitivity"],
        )
        c1.caption(_sensitivity_effect(sensitivity))
        iteration = c2.selectbox(
            "② Iteration velocity",
            ITERATIONS,
            key=k("iteration", wf["iteration"]),
            format_func=ITERATION_LABELS.__getitem__,
            help=LENS_HELP["iteration"],
        )
        c2.caption(_iteration_effect(iteration))
        budget = c3.number_input(
            "③ Latency budget (s)",
            min_value=0.1,
            max_value=86400.0,
            step=0.5,
            key=k("latency_budget_s", float(wf["latency_budget_s"])),
            help=LENS_HELP["latency_budget_s"],
        )
        interactive = c3.toggle(
            "A person is waiting", key=k("interactive", bool(wf["interactive"])), help=LENS_HELP["interactive"]
        )
        c3.caption(
            f"Options slower than {budget:g} s per answer are not chosen"
            + ("; first-token time counts." if interactive else " (batch work).")
        )

        c4, c5, c6, c7 = st.columns([1, 1, 1, 1.4])
        rpd = c4.number_input(
            "④ Requests per day",
            min_value=0,
            max_value=1_000_000_000,
            step=100,
            key=k("requests_per_day", int(wf["requests_per_day"])),
            help=LENS_HELP["requests_per_day"],
        )
        tokens_in = c5.number_input(
            "Input tokens / request",
            min_value=1,
            max_value=10_000_000,
            step=100,
            key=k("input_tokens", int(wf["input_tokens"])),
            help=LENS_HELP["input_tokens"],
        )
        tokens_out = c6.number_input(
            "Output tokens / request",
            min_value=1,
            max_value=1_000_000,
            step=50,
            key=k("output_tokens", int(wf["output_tokens"])),
            help=LENS_HELP["output_tokens"],
        )
        c4.caption(
            f"≈ {rpd * (tokens_in + tokens_out) / 1e6:,.1f} M tokens/day: sets local utilisation and break-even."
        )
        capability = c7.selectbox(
            "⑤ Capability frontier",
            CAPABILITIES,
            key=k("capability", wf["capability"]),
            format_func=CAPABILITY_LABELS.__getitem__,
            help=LENS_HELP["capability"],
        )
        c7.caption(_capability_effect(capability, name))
    state.update_workflow(
        uid,
        {
            "name": name.strip(),
            "task": task,
            "data_sensitivity": sensitivity,
            "iteration": iteration,
            "latency_budget_s": budget,
            "interactive": interactive,
            "requests_per_day": rpd,
            "input_tokens": tokens_in,
            "output_tokens": tokens_out,
            "capability": capability,
        },
    )


def _sensitivity_effect(value: str) -> str:
    n = len(state.approved())
    return {
        "public": "All local and hosted options are considered.",
        "internal": "All local and hosted options are considered.",
        "confidential": f"Hosted only through approved providers ({n} approved, see below).",
        "regulated": "Local only: never sent to a hosted API.",
    }[value]


def _iteration_effect(value: str) -> str:
    return {
        "prototype": "Local options first when they meet the need.",
        "evolving": "Ranked by seconds per accepted answer.",
        "stable": "Ranked by dollars per accepted answer.",
    }[value]


def _capability_effect(value: str, name: str) -> str:
    """What the tier asks for: a margin below the best published score in the task's area (policy.py margins)."""
    margin = {"routine": ROUTINE_MARGIN, "advanced": ADVANCED_MARGIN, "frontier": FRONTIER_MARGIN}[value]
    text = f"Needs a task score within {margin:g} points of the best published model in this task's area"
    # The actual threshold is known once a recommendation has been made (capability.need in its JSON).
    result = state.recommendation_cached()
    entry = next((w for w in (result or {}).get("workflows", []) if w["name"] == name), None)
    need = (entry or {}).get("capability") or {}
    if need.get("need") is not None and need.get("area"):
        text += f" (≥ {need['need']:.0f} on the {need['area']} scale)"
    return text + (": routes to hosted unless data forbids it." if value == "frontier" else ".")


def _costs_and_policy() -> None:
    costs = state.costs()
    with st.expander("Cost assumptions and approved hosted providers", icon=":material/payments:"):
        c1, c2, c3, c4 = st.columns(4)
        electricity = c1.number_input(
            "Electricity ($/kWh)",
            min_value=0.0,
            max_value=5.0,
            step=0.01,
            format="%.3f",
            key=state.bind("cost-electricity", float(costs["electricity_usd_per_kwh"])),
            help="Energy for the time the machine is busy with a request.",
        )
        price = costs.get("hardware_usd")
        hardware_usd = c2.number_input(
            "Hardware price ($)",
            min_value=0.0,
            max_value=10_000_000.0,
            step=100.0,
            value=None,
            placeholder="catalog price",
            key=state.bind("cost-hardware", None if price is None else float(price)),
            help="Amortised over the requests the volume implies. Empty: the catalog's sourced price for the "
            "device, or an assumed default (labelled) when the catalog has none.",
        )
        months = c3.number_input(
            "Amortisation (months)",
            min_value=1.0,
            max_value=240.0,
            step=6.0,
            key=state.bind("cost-months", float(costs["amortization_months"])),
        )
        ops = c4.number_input(
            "Operations ($/month)",
            min_value=0.0,
            max_value=10_000_000.0,
            step=50.0,
            key=state.bind("cost-ops", float(costs.get("ops_usd_per_month", 0.0))),
            help="Staff time, support and monitoring a local deployment needs (your estimate).",
        )
        d1, d2, d3 = st.columns(3)
        utilization = d1.slider(
            "Busy share of the day allowed",
            min_value=0.05,
            max_value=1.0,
            step=0.05,
            key=state.bind("cost-utilization", float(costs.get("utilization_target", 0.6))),
            help="When sizing how many machines a volume needs: the rest of the day is margin for peaks.",
        )
        rtt = d2.number_input(
            "Network round trip to hosted APIs (ms)",
            min_value=0.0,
            max_value=10_000.0,
            step=10.0,
            key=state.bind("cost-rtt", float(costs.get("network_rtt_ms", 80.0))),
        )
        with d3:
            sunk = st.checkbox(
                "The machine is already bought (count energy only)",
                key=state.bind("cost-sunk", bool(costs["hardware_sunk"])),
            )
            redundancy = st.checkbox(
                "Production needs a second machine for uptime",
                key=state.bind("cost-redundancy", bool(costs.get("redundancy", False))),
            )
        state.set_costs(
            {
                **costs,
                "electricity_usd_per_kwh": electricity,
                "hardware_usd": hardware_usd,
                "amortization_months": months,
                "ops_usd_per_month": ops,
                "utilization_target": utilization,
                "network_rtt_ms": rtt,
                "hardware_sunk": sunk,
                "redundancy": redundancy,
            }
        )
        current = state.approved()
        chosen = st.multiselect(
            "Hosted providers approved for confidential data",
            sorted(set(COMMON_PROVIDERS) | set(current)),
            key=state.bind("cost-approved", list(current)),
            accept_new_options=True,
            help="Only providers with zero data retention or a private endpoint for you. Type a provider or model id to add it.",
            placeholder="none — confidential workflows stay local",
        )
        state.set_approved(chosen)


def _save_and_load() -> None:
    with st.expander("Save or load the profile (YAML)", icon=":material/save:"):
        st.caption("The same file `python -m advisor recommend PROFILE.yaml` reads.")
        try:
            text = state.profile_yaml()
        except AdvisorError:
            text = None
        st.download_button(
            "Download profile YAML",
            data=text or "",
            file_name="decision-lens-profile.yaml",
            mime="application/x-yaml",
            key="yaml-download",
            icon=":material/download:",
            disabled=text is None,
            help=None if text else "Add a valid workflow first.",
        )
        upload = st.file_uploader("Open a profile YAML", type=["yaml", "yml"], key="yaml-upload")
        if upload is not None and state.first_time("yaml-upload", upload.file_id):
            _load(upload.getvalue().decode("utf-8", errors="replace"), source=upload.name)
        pasted = st.text_area(
            "…or paste YAML", key="yaml-paste", height=160, placeholder="workflows:\n  - name: support reply drafts"
        )
        if st.button("Load pasted YAML", key="yaml-load", icon=":material/upload:"):
            _load(pasted, source="pasted YAML")
    st.caption(
        f"Your answers are saved as you edit (in `{state.autosave_path()}`) and come back after a reload or a restart."
    )
    st.button(
        "Start over",
        key="start-over",
        icon=":material/restart_alt:",
        on_click=state.start_over,
        help="Clear every workflow, hardware answer, cost and approval, here and in the autosave.",
    )


def _load(text: str, *, source: str) -> None:
    try:
        profile = state.load_profile_text(text, source=source)
    except AdvisorError as exc:
        show_error(exc, prefix="The profile was not loaded; nothing changed.")
        return
    state.flash(f"Loaded {len(profile.workflows)} workflow(s) from {source}.")
    st.rerun()
