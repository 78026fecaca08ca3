"""Every page of the Streamlit app through AppTest: widgets by key, real core underneath, no mocks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import advisor.api
from tests.conftest import SHORT_SUITE_NAME, write_short_suite

REPO = Path(__file__).resolve().parent.parent
DECISION_TEXTS = ("Run locally", "Route to a hosted API", "Local, with a gap")
# The first recommendation fits the predictor (~5 s on a fresh ADVISOR_HOME); allow for slow CI machines.
TIMEOUT_S = 180
# A quick calibration of the packaged SmolLM2 takes ~20 s on a desktop, ~90 s on a busy 2-core CI box.
CALIBRATION_TIMEOUT_S = 600
# Port 1 needs root to listen on, so nothing a test (or a neighbour's test) starts can be answering there.
UNREACHABLE = "http://127.0.0.1:1"


@pytest.fixture(autouse=True)
def fresh_caches(isolated_home: Path) -> Iterator[None]:
    """Each test starts cold: Streamlit caches and the core's in-process caches are cleared."""
    st.cache_resource.clear()
    st.cache_data.clear()
    advisor.api.clear_caches()
    yield
    st.cache_resource.clear()
    st.cache_data.clear()


def _app_on(target: str | None) -> None:
    """The real app (same pages and navigation), opened on one page; AppTest runs this function as a script."""
    import streamlit as st

    from advisor.ui import build_pages, page

    nav = st.navigation(build_pages())
    if target and not st.session_state.get("_test_opened"):
        st.session_state["_test_opened"] = True
        st.switch_page(page(target))
    nav.run()


def app(page: str | None = None) -> AppTest:
    """app.py itself for the landing page; any other page through the same navigation."""
    if page is None:
        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT_S)
    else:
        at = AppTest.from_function(_app_on, args=(page,), default_timeout=TIMEOUT_S)
    return at.run()


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def workflows(at: AppTest) -> list[dict[str, Any]]:
    return list(at.session_state["dl_workflows"])


def texts(at: AppTest) -> str:
    """Every markdown, caption and alert text on the page, for content checks."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [x.value for x in at.error] + [x.value for x in at.warning] + [x.value for x in at.success]
    return "\n".join(str(p) for p in parts)


# --- Workflows (landing) --------------------------------------------------------------------------------


def test_landing_page_renders_without_fitting_the_predictor() -> None:
    at = app()
    no_exception(at)
    assert at.title[0].value == "Decision Lens"
    for key in ("tpl-support", "tpl-phi", "tpl-autocomplete", "tpl-classification", "tpl-research"):
        assert at.button(key=key).label == "Add"
    assert "No workflows yet" in texts(at) + "".join(i.value for i in at.info)
    # First paint must stay fast: the landing page never loads or fits the speed predictor.
    assert advisor.api._predictor.cache_info().currsize == 0


def test_add_edit_duplicate_remove_workflow() -> None:
    at = app()
    at.button(key="tpl-support").click().run()
    no_exception(at)
    [wf] = workflows(at)
    uid = wf["_id"]
    assert wf["name"] == "support reply drafts" and wf["task"] == "drafting"
    assert at.button(key="go-recommendations")  # the next step is offered once a workflow exists

    at.text_input(key=f"wf-{uid}-name").input("ticket drafts").run()
    at.selectbox(key=f"wf-{uid}-data_sensitivity").select("regulated").run()
    at.number_input(key=f"wf-{uid}-requests_per_day").set_value(5000).run()
    at.toggle(key=f"wf-{uid}-interactive").set_value(False).run()
    no_exception(at)
    [wf] = workflows(at)
    assert (wf["name"], wf["data_sensitivity"], wf["requests_per_day"], wf["interactive"]) == (
        "ticket drafts",
        "regulated",
        5000,
        False,
    )
    assert "Local only" in texts(at)  # the one-line effect of the answer follows it

    at.button(key=f"wf-{uid}-duplicate").click().run()
    names = [w["name"] for w in workflows(at)]
    assert names == ["ticket drafts", "ticket drafts copy"]
    at.button(key=f"wf-{uid}-remove").click().run()
    no_exception(at)
    assert [w["name"] for w in workflows(at)] == ["ticket drafts copy"]

    at.button(key="wf-add-blank").click().run()
    assert len(workflows(at)) == 2


def test_duplicate_names_are_reported_not_raised() -> None:
    at = app()
    at.button(key="wf-add-blank").click().run()
    at.button(key="wf-add-blank").click().run()
    second = workflows(at)[1]["_id"]
    at.text_input(key=f"wf-{second}-name").input("new workflow").run()
    no_exception(at)
    assert any("unique" in e.value for e in at.error)


def test_every_template_makes_a_valid_profile_yaml() -> None:
    from advisor.profiles import parse_profile
    from advisor.ui import TEMPLATES

    at = app()
    for key in TEMPLATES:
        at.button(key=f"tpl-{key}").click().run()
    no_exception(at)
    assert [d.proto.label for d in at.get("download_button")] == ["Download profile YAML"]
    profile = parse_profile(_profile_yaml(at), source="app")
    assert [w.name for w in profile.workflows] == [t["workflow"]["name"] for t in TEMPLATES.values()]


def _profile_yaml(at: AppTest) -> str:
    """The profile YAML the app would save, built from the session the way the download button does."""
    from advisor.profiles import dump_profile
    from advisor.schemas import Profile

    raw = {
        "hardware": at.session_state["dl_hw_overrides"] or None,
        "costs": at.session_state["dl_costs"],
        "hosted": {"approved_for_confidential": at.session_state["dl_approved"]},
        "workflows": [{k: v for k, v in w.items() if k != "_id"} for w in workflows(at)],
    }
    return dump_profile(Profile.model_validate(raw))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("workflows:\n  - name: a\n   task: [unclosed", "not valid YAML"),
        ("workflows:\n  - name: a\n    data_sensitivity: secret\n    colour: blue", "data_sensitivity"),
        ("just a string", "YAML mapping"),
        ("workflows: []", "workflows"),
    ],
)
def test_malformed_yaml_shows_an_error_and_changes_nothing(text: str, expected: str) -> None:
    at = app()
    at.button(key="tpl-support").click().run()
    at.text_area(key="yaml-paste").input(text).run()
    at.button(key="yaml-load").click().run()
    no_exception(at)
    assert at.error, "a malformed profile must show st.error"
    assert any(expected in e.value for e in at.error), [e.value for e in at.error]
    assert [w["name"] for w in workflows(at)] == ["support reply drafts"]


def test_valid_yaml_replaces_the_profile() -> None:
    text = """
hardware:
  accelerator: nvidia
  memory_gb: 24
  memory_bandwidth_gbs: 1008
costs:
  electricity_usd_per_kwh: 0.3
hosted:
  approved_for_confidential: [anthropic]
workflows:
  - name: contracts
    task: extraction
    data_sensitivity: confidential
    requests_per_day: 300
  - name: chat
"""
    at = app()
    at.button(key="tpl-phi").click().run()
    at.text_area(key="yaml-paste").input(text).run()
    at.button(key="yaml-load").click().run()
    no_exception(at)
    assert [w["name"] for w in workflows(at)] == ["contracts", "chat"]
    assert at.session_state["dl_costs"]["electricity_usd_per_kwh"] == 0.3
    assert at.session_state["dl_approved"] == ["anthropic"]
    assert at.session_state["dl_hw_overrides"]["memory_bandwidth_gbs"] == 1008
    assert any("Loaded 2 workflow" in s.value for s in at.success)
    uid = workflows(at)[0]["_id"]
    assert at.selectbox(key=f"wf-{uid}-data_sensitivity").value == "confidential"
    assert at.number_input(key="cost-electricity").value == 0.3


def test_cost_assumptions_and_approved_providers_are_kept() -> None:
    at = app()
    at.button(key="tpl-autocomplete").click().run()
    at.number_input(key="cost-hardware").set_value(4000.0).run()
    at.checkbox(key="cost-sunk").check().run()
    at.multiselect(key="cost-approved").select("anthropic").run()
    no_exception(at)
    assert at.session_state["dl_costs"]["hardware_usd"] == 4000.0
    assert at.session_state["dl_costs"]["hardware_sunk"] is True
    assert at.session_state["dl_approved"] == ["anthropic"]
    # Values survive a trip to another page and back (widget state is re-seeded from the profile).
    at.button(key="go-hardware").click().run()
    at.button(key="go-calibrate").click().run()
    no_exception(at)
    assert at.session_state["dl_costs"]["hardware_usd"] == 4000.0


# --- Recommendations --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_template_to_recommendation_card() -> None:
    at = app()
    at.button(key="tpl-support").click().run()
    at.button(key="tpl-phi").click().run()
    at.button(key="go-recommendations").click().run()
    no_exception(at)
    assert at.title[0].value == "Recommendations"
    page = texts(at)
    assert "### support reply drafts" in page and "### PHI visit summaries" in page
    assert any(text in page for text in DECISION_TEXTS)
    assert "predicted" in page  # every figure says where it came from
    labels = [m.label for m in at.metric]
    assert "Seconds / accepted answer" in labels and "Success probability" in labels
    assert "Data sensitivity" in page and "Capability frontier" in page
    assert at.session_state["dl_recommendation"][1]["workflows"][0]["decision"] in ("local", "hosted", "local-with-gap")
    # PHI data is regulated: never hosted.
    phi = at.session_state["dl_recommendation"][1]["workflows"][1]
    assert phi["decision"] in ("local", "local-with-gap")


@pytest.mark.slow
def test_recommendations_with_bandwidth_show_local_options_and_charts() -> None:
    at = app()
    at.button(key="tpl-classification").click().run()
    at.button(key="go-hardware").click().run()
    at.number_input(key="hwf-memory_bandwidth_gbs").set_value(100.0).run()
    no_exception(at)
    assert at.session_state["dl_hw_overrides"] == {"memory_bandwidth_gbs": 100.0}
    at.button(key="go-calibrate").click().run()
    at.button(key="go-recommendations-cal").click().run()
    no_exception(at)
    result = at.session_state["dl_recommendation"][1]
    assert result["hardware"]["used"]["memory_bandwidth_gbs"] == 100.0
    kinds = {a["kind"] for a in result["workflows"][0]["alternatives"]} | {result["workflows"][0]["choice"]["kind"]}
    assert "local" in kinds
    assert len(at.get("vega_lite_chart")) >= 3  # speed vs success, cost vs volume (memory in a tab)


def test_recommendations_without_workflows_points_back() -> None:
    at = app("recommendations")
    no_exception(at)
    assert at.title[0].value == "Recommendations"
    assert any("no workflows yet" in e.value for e in at.error)
    assert at.button(key="go-workflows-empty")


# --- Hardware ---------------------------------------------------------------------------------------------


def test_hardware_page_shows_detection_and_overrides() -> None:
    at = app("hardware")
    no_exception(at)
    assert at.title[0].value == "Hardware"
    detected = advisor.api.detected_hardware()
    assert [m.label for m in at.metric][:4] == ["Accelerator", "Memory for weights", "Memory bandwidth", "System RAM"]
    notes = [w.value for w in at.warning]
    assert all(note in notes for note in detected["notes"])
    assert at.text_input(key="hwf-name").value == (detected["hardware"]["name"] or "")

    at.number_input(key="hwf-power_w").set_value(450.0).run()
    at.selectbox(key="hwf-accelerator").select("nvidia").run()
    no_exception(at)
    assert at.session_state["dl_hw_overrides"] == {"power_w": 450.0, "accelerator": "nvidia"}
    at.button(key="hw-reset").click().run()
    no_exception(at)
    assert at.session_state["dl_hw_overrides"] == {}
    assert at.number_input(key="hwf-power_w").value == detected["hardware"]["power_w"]


def test_hardware_catalog_specs_become_overrides() -> None:
    at = app("hardware")
    name = at.selectbox(key="catalog-pick").options[0]
    at.selectbox(key="catalog-pick").select(name).run()
    at.button(key="catalog-use").click().run()
    no_exception(at)
    overrides = at.session_state["dl_hw_overrides"]
    assert overrides["name"] == name and overrides["memory_bandwidth_gbs"] > 0
    assert at.text_input(key="hwf-name").value == name


# --- Calibrate --------------------------------------------------------------------------------------------


def test_calibrate_page_lists_embedded_models() -> None:
    from advisor.backends.embedded import EmbeddedBackend

    at = app("calibrate")
    no_exception(at)
    assert at.radio(key="cal-backend").value == "embedded"
    assert at.multiselect(key="cal-models-embedded").value == EmbeddedBackend().list_models()[:1]
    assert at.button(key="cal-cancel").disabled
    assert "None yet" in "".join(i.value for i in at.info)


def test_unreachable_ollama_shows_an_error() -> None:
    at = app("calibrate")
    at.radio(key="cal-backend").set_value("ollama").run()
    at.text_input(key="cal-url-ollama").input(UNREACHABLE).run()
    at.button(key="cal-list-ollama").click().run()
    no_exception(at)
    assert at.error, ("an unreachable server must show st.error", [w.value for w in at.warning])


def test_unreachable_openai_server_fails_the_run_with_a_message() -> None:
    at = app("calibrate")
    at.radio(key="cal-backend").set_value("openai").run()
    at.text_input(key="cal-url-openai").input(f"{UNREACHABLE}/v1").run()
    [models] = [m for m in at.multiselect if str(m.key).startswith("cal-models-openai")]
    models.set_value(["some-model"]).run()
    at.toggle(key="cal-probe").set_value(False).run()
    at.button(key="cal-start").click().run()
    _wait_for_job(at, timeout_s=60)
    no_exception(at)
    report = at.session_state["dl_job"].report
    errors = [e.value for e in at.error]
    assert errors, "an unreachable server must show st.error"
    assert report is None or not report["complete"]


def _wait_for_job(at: AppTest, *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = at.session_state["dl_job"] if "dl_job" in at.session_state else None
        if job is not None and not job.running:
            at.run()
            return
        time.sleep(0.5)
        at.run()
    pytest.fail(f"calibration did not finish within {timeout_s} s")


@pytest.fixture
def short_suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The app calibrates with the short suite (one repetition, two tasks: 5 requests, not 17) on the real model.

    The app reads the suite from DEFAULT_SUITE (advisor.settings when a run starts, the Calibrate page for its
    labels); the default quick suite itself is pinned by test_quick_calibration_cli_writes_measured_report_and_store.
    """
    import advisor.settings
    import advisor.ui.pages.calibrate as calibrate_page

    path = write_short_suite(tmp_path / "suite.yaml")
    monkeypatch.setattr(advisor.settings, "DEFAULT_SUITE", path)
    monkeypatch.setattr(calibrate_page, "DEFAULT_SUITE", path)
    return path


@pytest.mark.slow
def test_quick_calibration_runs_with_progress_and_feeds_recommendations(short_suite: Path) -> None:
    from advisor.settings import get_settings
    from advisor.store import MeasurementStore

    at = app()
    at.button(key="tpl-support").click().run()
    at.button(key="go-hardware").click().run()
    at.button(key="go-calibrate").click().run()
    at.toggle(key="cal-probe").set_value(False).run()  # the probe is exercised on the Hardware page
    at.button(key="cal-start").click().run()
    no_exception(at)
    assert at.button(key="cal-start").disabled and not at.button(key="cal-cancel").disabled
    saw_progress = False
    deadline = time.monotonic() + CALIBRATION_TIMEOUT_S
    while at.session_state["dl_job"].running and time.monotonic() < deadline:
        time.sleep(1.0)
        at.run()
        no_exception(at)
        saw_progress = saw_progress or bool(at.get("progress"))
    _wait_for_job(at, timeout_s=30)
    assert saw_progress, "a progress bar is shown while the calibration runs"
    report = at.session_state["dl_calibration"]
    assert report is not None and report["complete"], report and report["errors"]
    assert report["suite"]["name"] == SHORT_SUITE_NAME
    assert any("Calibration finished" in s.value for s in at.success)
    runs = MeasurementStore(get_settings().store_path).runs()
    assert runs[0]["run_id"] == report["run_id"] and runs[0]["measurements"] == len(report["measurements"])
    assert "measured" in texts(at)

    at.button(key="go-recommendations-cal").click().run()
    no_exception(at)
    page = texts(at)
    assert f"Using calibration run `{report['run_id']}`" in page
    assert any(h.value == "Measured vs predicted" for h in at.subheader)
    assert at.session_state["dl_recommendation"][1]["hardware"]["calibration"] == report["run_id"]


@pytest.mark.slow
def test_calibration_can_be_cancelled_and_keeps_measurements() -> None:
    at = app("calibrate")
    at.toggle(key="cal-probe").set_value(False).run()
    at.button(key="cal-start").click().run()
    deadline = time.monotonic() + 60
    while not at.session_state["dl_job"].rows and time.monotonic() < deadline:
        time.sleep(0.3)
    at.run()
    at.button(key="cal-cancel").click().run()
    _wait_for_job(at, timeout_s=60)
    no_exception(at)
    job = at.session_state["dl_job"]
    assert job.report is not None and not job.report["complete"]
    assert any("cancelled by the user" in e["error"] for e in job.report["errors"])
    assert job.report["measurements"], "measurements taken before the cancel are kept"
    assert any("cancelled" in e.value for e in at.error)


@pytest.mark.slow
def test_a_crashing_engine_shows_the_error_and_keeps_every_answer() -> None:
    import os
    import signal

    from tests.test_worker import workers_of

    at = app()
    at.button(key="tpl-support").click().run()
    before = workflows(at)
    at.button(key="go-hardware").click().run()
    at.button(key="go-calibrate").click().run()
    at.toggle(key="cal-probe").set_value(False).run()
    at.button(key="cal-start").click().run()
    deadline = time.monotonic() + 300
    while not at.session_state["dl_job"].rows and time.monotonic() < deadline:
        time.sleep(0.3)
    [worker] = workers_of(os.getpid())
    os.kill(worker.pid, signal.SIGSEGV)  # what a native llama.cpp crash does to the worker
    _wait_for_job(at, timeout_s=120)
    no_exception(at)
    report = at.session_state["dl_job"].report
    assert report is not None and report["status"] == "failed" and report["measurements"]
    assert any("SIGSEGV" in e.value for e in at.error), [e.value for e in at.error]
    assert workflows(at) == before, "every answer typed in is still there"
    assert "dl_calibration" not in at.session_state, "a failed run never replaces the calibration in use"


@pytest.mark.slow
def test_the_profile_is_autosaved_and_restored_in_a_new_session(isolated_home: Path) -> None:
    at = app()
    at.button(key="tpl-support").click().run()
    saved = isolated_home / "autosave.json"
    assert saved.exists() and "support reply drafts" in saved.read_text()
    fresh = app()  # a reload is a new session
    assert [w["name"] for w in workflows(fresh)] == ["support reply drafts"]
    assert any("Restored your 1 workflow(s)" in str(m.value) for m in fresh.info)
    fresh.button(key="start-over").click().run()
    assert workflows(fresh) == [] and not saved.exists()


@pytest.mark.slow
def test_calibrate_page_runs_the_doctor_checks() -> None:
    at = app("calibrate")
    at.button(key="cal-doctor").click().run()
    no_exception(at)
    lines = [s.value for s in at.success]
    assert any(line.startswith("OK   engine:") for line in lines), lines
    assert any("llama.cpp build" in line for line in lines + [w.value for w in at.warning])


def test_calibrate_page_lists_models_found_on_this_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "Qwen3-8B-Q4_K_M.gguf").write_bytes(b"GGUF" + b"\0" * 60)
    monkeypatch.setenv("ADVISOR_MODEL_DIRS", str(folder))
    monkeypatch.setenv("HOME", str(tmp_path / "empty-home"))
    at = app("calibrate")
    no_exception(at)
    assert any(h.value == "Models already on this machine" for h in at.subheader)
    [table] = [d for d in at.dataframe if "catalog model" in d.value.columns]
    assert table.value.iloc[0]["catalog model"] == "qwen3-8b"


def test_own_tasks_bad_file_is_refused_and_good_file_is_kept_and_shown(isolated_home: Path) -> None:
    from advisor.calibrate import save_tasks_file
    from advisor.errors import InputError
    from advisor.settings import BENCHMARKS_DIR

    folder = isolated_home / "tasks"
    with pytest.raises(InputError, match="bad check"):
        save_tasks_file(folder, "bad.yaml", b"tasks: [{id: a, prompt: hi, check: {kind: nope}}]")
    assert not (folder / "bad.yaml").exists()
    example = (BENCHMARKS_DIR / "suites" / "your-tasks.example.yaml").read_bytes()
    path, count = save_tasks_file(folder, "../../mine.yaml", example)
    assert path.parent == folder and count == 2
    at = app("calibrate")
    at.session_state["dl_tasks_file"] = {"path": str(path), "tasks": count}  # what the upload callback stores
    at.run()
    no_exception(at)
    assert any("2 task(s)" in s.value for s in at.success)


# --- Knowledge and Export ---------------------------------------------------------------------------------


def test_knowledge_page_filters_catalogs_with_sources() -> None:
    at = app("knowledge")
    no_exception(at)
    assert at.title[0].value == "Knowledge"
    assert [t.label.split(" (")[0] for t in at.tabs] == ["Models", "Hardware", "Hosted APIs", "Published speeds"]
    frames = at.dataframe
    assert len(frames) == 4
    all_models = len(frames[0].value)
    at.text_input(key="kn-query").input("qwen").run()
    no_exception(at)
    filtered = at.dataframe[0].value
    assert 0 < len(filtered) < all_models and filtered["id"].str.contains("qwen").all()
    assert "source" in filtered.columns
    assert any("http" in m.value for m in at.markdown)  # every source of the picked model, as links


@pytest.mark.slow
def test_export_page_offers_every_format() -> None:
    at = app()
    at.button(key="tpl-research").click().run()
    at.button(key="go-recommendations").click().run()
    at.button(key="go-export").click().run()
    no_exception(at)
    assert at.title[0].value == "Export"
    labels = [d.proto.label for d in at.get("download_button")]
    assert labels == ["Decision record (.md)", "Recommendation (.json)", "Table (.csv)", "Profile (.yaml)"]
    assert any("# Decision record" in m.value for m in at.markdown)
    assert any("workflow,decision" in c.value for c in at.code)


def test_export_without_workflows_points_back() -> None:
    at = app("export")
    no_exception(at)
    assert at.error and at.button(key="go-workflows-export")


# --- charts (pure functions over the recommendation JSON) ------------------------------------------------------


def _entry() -> dict[str, Any]:
    local = {"kind": "local", "model": "m-local", "quantization": "Q4_K_M", "runtime": "llama.cpp"}
    predicted = {
        "ttft_s": 0.5,
        "decode_tps": 40.0,
        "e2e_s": 5.5,
        "seconds_per_accepted": 6.9,
        "tokens_per_accepted": 250.0,
        "success_probability": 0.8,
        "success_interval": [0.6, 0.9],
        "label": "predicted",
    }
    hosted = {
        "kind": "hosted",
        "model": "h-model",
        "provider": "p",
        "basis": "published",
        "predicted": {**predicted, "e2e_s": 2.0, "success_probability": 0.9, "success_interval": [0.8, 0.95]},
        "cost": {"usd_per_request": 0.002, "usd_per_accepted": 0.0022},
    }
    return {
        "name": "w",
        "decision": "local",
        "choice": {**local, "memory_required_gb": 5.0, "basis": "predicted"},
        "predicted": predicted,
        "cost": {
            "local_usd_per_1k_requests": None,
            "hosted_usd_per_1k_requests": 2.0,
            "break_even_requests_per_day": 1234,
            "usd_per_accepted": 0.001,
            "usd_per_request": 0.0008,
            "local_reference": {"model": "m-local", "quantization": "Q4_K_M", "runtime": "llama.cpp", "e2e_s": 5.5},
            "hosted_reference": {"model": "h-model", "provider": "p", "e2e_s": 2.0},
        },
        "alternatives": [hosted],
    }


def test_charts_build_from_the_recommendation_json() -> None:
    from advisor import charts
    from advisor.recommend import local_cost_per_request
    from advisor.schemas import Costs

    entry = _entry()
    frame = charts.candidates(entry)
    assert list(frame["kind"]) == ["local", "hosted"] and frame["chosen"].tolist() == [True, False]
    assert frame.loc[0, "usd_per_request"] == pytest.approx(0.0008)  # per accepted x success

    spec = charts.speed_vs_success(entry, latency_budget_s=3.0).to_dict()
    assert any(layer.get("mark", {}).get("type") == "rule" and "budget" in str(layer) for layer in spec["layer"])

    hardware = {"used": {"accelerator": "cpu", "power_w": 100.0}, "costs": Costs().model_dump()}
    curve = charts.cost_curve(entry, hardware, requests_per_day=500)
    local = curve[curve["kind"] == "local"]
    assert local["usd_per_1k"].is_monotonic_decreasing  # utilisation lowers local cost per request
    expected = 1000 * local_cost_per_request(5.5, float(local["volume"].iloc[0]), 100.0, Costs())
    assert local["usd_per_1k"].iloc[0] == pytest.approx(expected)
    assert set(curve[curve["kind"] == "hosted"]["usd_per_1k"]) == {2.0}
    assert "break-even" in str(charts.cost_vs_volume(entry, hardware, requests_per_day=500).to_dict())

    memory = charts.memory_fit(entry, available_gb=4.0)
    assert memory is not None and "available 4 GB" in str(memory.to_dict())
    assert charts.memory_fit({**entry, "choice": None, "alternatives": []}, available_gb=4.0) is None


def test_local_cost_line_follows_the_core_reference_option() -> None:
    from advisor import charts
    from advisor.recommend import local_cost_per_request
    from advisor.schemas import Costs

    costs = Costs()
    entry = {**_entry(), "choice": None, "predicted": None, "alternatives": []}
    entry["cost"] = {
        **entry["cost"],
        "local_reference": {"model": "ref", "e2e_s": 12.0},
        "local_usd_per_1k_requests": 1000 * local_cost_per_request(12.0, 2000, 65.0, costs),
    }
    hardware = {"used": {"accelerator": "cpu", "power_w": None}, "costs": costs.model_dump()}
    curve = charts.cost_curve(entry, hardware, requests_per_day=2000)
    local = curve[curve["kind"] == "local"]
    assert set(local["series"]) == {"local: ref"}
    again = 1000 * local_cost_per_request(12.0, float(local["volume"].iloc[10]), 65.0, costs)
    assert local["usd_per_1k"].iloc[10] == pytest.approx(again, rel=1e-6)


# --- issue 17: labels, calibration from another machine, noisy runs, on-screen words --------------------------

RTX_HYBRID = """
hardware:
  name: RTX 4090 desktop
  accelerator: nvidia
  memory_gb: 24
  memory_bandwidth_gbs: 1008
  power_w: 450
workflows:
  - name: research synthesis
    task: reasoning
    data_sensitivity: internal
    iteration: prototype
    latency_budget_s: 300
    interactive: false
    requests_per_day: 500
    input_tokens: 8000
    output_tokens: 1500
    capability: frontier
  - name: PHI visit summaries
    task: summarization
    data_sensitivity: regulated
    latency_budget_s: 30
    requests_per_day: 500
    input_tokens: 3000
    output_tokens: 300
"""
CONFIDENTIAL_HERE = """
workflows:
  - name: contract notes
    task: summarization
    data_sensitivity: confidential
    latency_budget_s: 60
    requests_per_day: 50
    input_tokens: 400
    output_tokens: 100
"""


def _calibration_report(*, spread_pct: float) -> dict[str, Any]:
    """A calibration report of this machine in the shape calibrate writes (one model, decode and prefill probes)."""
    detected = advisor.api.detected_hardware()
    return {
        "run_id": "run-test",
        "created_at": "2026-12-03T10:00:00+00:00",
        "label": "measured",
        "backend": {"kind": "embedded", "version": "test"},
        "hardware": detected,
        "bandwidth_probe": {"bandwidth_gbs": 20.0, "method": "test"},
        "models": [
            {
                "model": "smollm2-135m-instruct-q4_1",
                "quantization": "Q4_1",
                "size_bytes": 98_000_000,
                "params_b": 0.135,
                "speed": {
                    "decode@64": {
                        "decode_tps": {"median": 80.0, "p25": 70.0, "p75": 90.0, "spread_pct": spread_pct, "n": 3}
                    },
                    "prefill@512": {
                        "prefill_tps": {"median": 250.0, "p25": 240.0, "p75": 260.0, "spread_pct": 4.0, "n": 3},
                        "prompt_tokens": 529,
                    },
                },
                "tasks": {"successes": 5, "attempts": 7},
            }
        ],
        "measurements": [],
        "errors": [],
        "complete": True,
    }


def _recommend(text: str, *, calibration: dict[str, Any] | None = None) -> AppTest:
    """Load a profile YAML on the landing page, optionally use a calibration report, open Recommendations."""
    at = app()
    at.text_area(key="yaml-paste").input(text).run()
    at.button(key="yaml-load").click().run()
    if calibration is not None:
        at.session_state["dl_calibration"] = calibration
    at.button(key="go-recommendations").click().run()
    no_exception(at)
    assert at.title[0].value == "Recommendations"
    return at


@pytest.mark.slow
def test_a_hybrid_card_shows_both_legs_and_one_label_per_figure() -> None:
    at = _recommend(RTX_HYBRID)
    result = at.session_state["dl_recommendation"][1]
    research = result["workflows"][0]
    assert research["decision"].startswith("hybrid"), research["decision"]
    choice = research["choice"]
    page = texts(at)
    assert "Local first" in page and "Escalates to" in page
    assert choice["local"]["model"] in page and choice["hosted"]["model"] in page
    assert f"{choice['escalation_rate']:.0%}" in page
    # One label per figure: a badge under each of the four metrics, from the six labels only.
    badges = [m.value for m in at.markdown if str(m.value).startswith(":") and "-badge[" in str(m.value)]
    names = ("measured", "calibrated", "predicted", "published", "assumed", "imputed")
    assert len([b for b in badges if b.count("-badge[") == 1]) >= 4 * len(result["workflows"])
    assert all(any(b.endswith(f" {n}]") for n in names) for b in badges if b.count("-badge[") == 1)
    # Never a "predicted" badge beside "basis: published".
    assert not any("predicted]" in b and "basis: published" in b for b in badges)
    # The sensitivity chart and what local leaves to the team appear with the card.
    assert any("What would flip this choice" in e.label for e in at.expander)
    assert any("What local leaves to your team" in e.label for e in at.expander)


@pytest.mark.slow
def test_the_overview_never_shows_none() -> None:
    at = _recommend(RTX_HYBRID)
    overview = at.dataframe[1].value  # [0] is the hardware table in its expander
    assert list(overview.columns)[:3] == ["workflow", "decision", "choice"]
    cells = overview[["$ / accepted", "$ / 1k local", "$ / 1k hosted"]].astype(str).to_numpy().ravel()
    assert not any(c in ("None", "nan", "") for c in cells), cells
    assert "—" in cells  # regulated PHI: no hosted option, shown as a dash


@pytest.mark.slow
def test_a_warning_uses_the_on_screen_label_not_the_yaml_key() -> None:
    at = _recommend(CONFIDENTIAL_HERE)
    warnings = [w.value for w in at.warning]
    assert any("Approved hosted providers" in w for w in warnings), warnings
    assert not any("hosted.approved_for_confidential" in w for w in warnings)
    assert not any("hardware.power_w" in w for w in warnings + [c.value for c in at.caption])


@pytest.mark.slow
def test_a_calibration_from_this_machine_is_not_applied_to_another() -> None:
    at = _recommend(RTX_HYBRID, calibration=_calibration_report(spread_pct=2.0))
    result = at.session_state["dl_recommendation"][1]
    assert result["hardware"]["calibration_applies"] is False
    page = texts(at)
    assert "shifted to this machine" not in page
    assert any("not applied" in w.value and "run-test" in w.value for w in at.warning)
    assert any(h.value == "Measured vs predicted" for h in at.subheader)
    assert "Not shown" in page


@pytest.mark.slow
def test_a_noisy_calibration_is_flagged_with_a_run_again_action() -> None:
    at = _recommend(CONFIDENTIAL_HERE, calibration=_calibration_report(spread_pct=23.0))
    result = at.session_state["dl_recommendation"][1]
    assert result["hardware"]["calibration_applies"] is True
    noisy = [w.value for w in at.warning if "noisy" in w.value]
    assert noisy and "23%" in noisy[0] and "5%" in noisy[0], [w.value for w in at.warning]
    assert at.button(key="go-calibrate-noisy")
    assert "shifted to this machine" in texts(at)


@pytest.mark.slow
def test_a_quiet_calibration_is_not_flagged() -> None:
    at = _recommend(CONFIDENTIAL_HERE, calibration=_calibration_report(spread_pct=3.0))
    assert not any("noisy" in w.value for w in at.warning)
