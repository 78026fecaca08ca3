"""Session state and caches: the only module that touches st.session_state or st.cache_*.

Widgets never own data. Every editable value lives under a canonical key here; a widget's own key is
seeded from it (`bind`) and its return value written back, so values survive page switches (Streamlit
drops the state of widgets that are not rendered).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from advisor.errors import AdvisorError, InputError
from advisor.schemas import Costs, Hardware, Profile, Workflow

WORKFLOWS = "dl_workflows"  # list of workflow dicts, each with a private "_id" for widget keys
COSTS = "dl_costs"
APPROVED = "dl_approved"
HW_OVERRIDES = "dl_hw_overrides"
CALIBRATION = "dl_calibration"  # the calibration report passed to recommend_profile
JOB = "dl_job"
RECOMMENDATION = "dl_recommendation"  # (key, result) memo of the last recommendation
FLASH = "dl_flash"
BANDWIDTH_PROBE = "dl_bandwidth_probe"


# --- widgets ---------------------------------------------------------------------------------------------


def bind(key: str, value: Any) -> str:
    """Seed a widget key from its canonical value (only when absent) and return the key."""
    if key not in st.session_state:
        st.session_state[key] = value
    return key


def forget_widgets(prefix: str) -> None:
    """Drop widget keys under a prefix so they are re-seeded from canonical values (call from callbacks)."""
    for key in [k for k in st.session_state if isinstance(k, str) and k.startswith(prefix)]:
        del st.session_state[key]


def flash(message: str, kind: str = "success") -> None:
    """A message shown once on the next run (after a callback changed something)."""
    st.session_state[FLASH] = (kind, message)


def first_time(tag: str, token: Any) -> bool:
    """True the first time a token (e.g. an uploaded file id) is seen under a tag in this session."""
    key = f"dl_seen_{tag}"
    if st.session_state.get(key) == token:
        return False
    st.session_state[key] = token
    return True


def pop_flash() -> tuple[str, str] | None:
    """The pending one-shot message, if any."""
    return st.session_state.pop(FLASH, None)


# --- the profile being edited ------------------------------------------------------------------------------


def workflows() -> list[dict[str, Any]]:
    """The workflows being edited (live list; mutate through the functions below)."""
    return st.session_state.setdefault(WORKFLOWS, [])


def _unique_name(name: str) -> str:
    taken = {w["name"] for w in workflows()}
    if name not in taken:
        return name
    n = 2
    while f"{name} ({n})" in taken:
        n += 1
    return f"{name} ({n})"


def add_workflow(data: dict[str, Any]) -> str:
    """Append a workflow (its name made unique) and return its id."""
    wf = Workflow.model_validate(data).model_dump()
    wf["name"] = _unique_name(wf["name"])
    wf["_id"] = uuid.uuid4().hex[:8]
    workflows().append(wf)
    return str(wf["_id"])


def duplicate_workflow(uid: str) -> None:
    """Insert a copy right after the original."""
    items = workflows()
    index = next(i for i, w in enumerate(items) if w["_id"] == uid)
    copy = {k: v for k, v in items[index].items() if k != "_id"}
    copy["name"] = _unique_name(f"{copy['name']} copy")
    copy["_id"] = uuid.uuid4().hex[:8]
    items.insert(index + 1, copy)


def remove_workflow(uid: str) -> None:
    """Remove a workflow and its widget state."""
    st.session_state[WORKFLOWS] = [w for w in workflows() if w["_id"] != uid]
    forget_widgets(f"wf-{uid}-")


def update_workflow(uid: str, values: dict[str, Any]) -> None:
    """Write widget values back to the canonical workflow."""
    for wf in workflows():
        if wf["_id"] == uid:
            wf.update(values)


def costs() -> dict[str, Any]:
    """Cost assumptions (advisor.schemas.Costs fields)."""
    return st.session_state.setdefault(COSTS, Costs().model_dump())


def set_costs(values: dict[str, Any]) -> None:
    st.session_state[COSTS] = values


def approved() -> list[str]:
    """Hosted providers approved for confidential data."""
    return st.session_state.setdefault(APPROVED, [])


def set_approved(values: list[str]) -> None:
    st.session_state[APPROVED] = list(values)


def hardware_overrides() -> dict[str, Any]:
    """Hardware fields the user set (None or absent = use detected)."""
    return st.session_state.setdefault(HW_OVERRIDES, {})


def set_hardware_overrides(values: dict[str, Any]) -> None:
    st.session_state[HW_OVERRIDES] = {k: v for k, v in values.items() if v is not None}


def reset_hardware() -> None:
    """Use detected values again (button callback)."""
    st.session_state[HW_OVERRIDES] = {}
    st.session_state.pop(BANDWIDTH_PROBE, None)
    forget_widgets("hwf-")


def set_bandwidth_probe(probe: dict[str, Any]) -> None:
    """Remember a bandwidth probe and use it as the memory bandwidth override."""
    st.session_state[BANDWIDTH_PROBE] = probe
    overrides = dict(hardware_overrides())
    overrides["memory_bandwidth_gbs"] = probe["bandwidth_gbs"]
    set_hardware_overrides(overrides)
    forget_widgets("hwf-memory_bandwidth_gbs")


def bandwidth_probe() -> dict[str, Any] | None:
    return st.session_state.get(BANDWIDTH_PROBE)


def build_profile() -> Profile:
    """The Profile the pages describe; raises InputError with every bad field named."""
    from pydantic import ValidationError

    from advisor.schemas import format_validation_error

    raw = {
        "hardware": hardware_overrides() or None,
        "costs": costs(),
        "hosted": {"approved_for_confidential": approved()},
        "workflows": [{k: v for k, v in w.items() if k != "_id"} for w in workflows()],
    }
    if not raw["workflows"]:
        raise InputError("no workflows yet: add one on the Workflows page (a template is the quickest start)")
    try:
        return Profile.model_validate(raw)
    except ValidationError as exc:
        raise InputError(format_validation_error(exc, source="this profile")) from None


def profile_yaml() -> str:
    """The profile as YAML (the CLI's input format)."""
    from advisor.profiles import dump_profile

    return dump_profile(build_profile())


def load_profile_text(text: str, *, source: str) -> Profile:
    """Replace the edited profile with a parsed YAML; on error nothing changes and AdvisorError is raised."""
    from advisor.profiles import parse_profile

    profile = parse_profile(text, source=source)
    forget_widgets("wf-")
    forget_widgets("hwf-")
    forget_widgets("cost-")
    st.session_state[WORKFLOWS] = []
    for wf in profile.workflows:
        add_workflow(wf.model_dump())
    set_costs(profile.costs.model_dump())
    set_approved(profile.hosted.approved_for_confidential)
    set_hardware_overrides(profile.hardware.model_dump() if profile.hardware else {})
    return profile


def hardware_model(values: dict[str, Any]) -> Hardware:
    """Validate hardware fields (raises InputError naming the field)."""
    from pydantic import ValidationError

    from advisor.schemas import format_validation_error

    try:
        return Hardware.model_validate(values)
    except ValidationError as exc:
        raise InputError(format_validation_error(exc, source="hardware")) from None


# --- what the user already has: models on disk and their own tasks ---------------------------------------------


@st.cache_data(show_spinner=False, ttl=60)
def found_models() -> list[dict[str, Any]]:
    """GGUF files in LM Studio's and Hugging Face's caches and ADVISOR_MODEL_DIRS, and Ollama's models (listed, never downloaded)."""
    from advisor.api import knowledge
    from advisor.discover import discover

    return [f.as_json() for f in discover(knowledge=knowledge())]


TASKS_FILE = "dl_tasks_file"


def save_user_tasks(name: str, data: bytes) -> str:
    """Keep an uploaded tasks file in ADVISOR_HOME/tasks after checking it; returns its path (InputError if bad)."""
    from advisor.calibrate import save_tasks_file
    from advisor.settings import get_settings

    path, count = save_tasks_file(get_settings().home / "tasks", name, data)
    st.session_state[TASKS_FILE] = {"path": str(path), "tasks": count}
    return str(path)


def user_tasks() -> dict[str, Any] | None:
    """The tasks file the next calibration runs beside the suite, if any."""
    return st.session_state.get(TASKS_FILE)


def forget_user_tasks() -> None:
    st.session_state.pop(TASKS_FILE, None)


# --- autosave: the profile being edited survives reloads, restarts and crashes ------------------------------------

AUTOSAVE_NAME = "autosave.json"
AUTOSAVED = "dl_autosaved"  # digest of what is on disk, so unchanged runs write nothing
RESTORED = "dl_restored"


def autosave_path() -> Any:
    from advisor.settings import get_settings

    return get_settings().home / AUTOSAVE_NAME


def _editable() -> dict[str, Any]:
    return {
        "version": 1,
        "workflows": workflows(),
        "costs": costs(),
        "approved": approved(),
        "hardware": hardware_overrides(),
        "bandwidth_probe": bandwidth_probe(),
    }


def autosave() -> None:
    """Write the edited profile to ADVISOR_HOME/autosave.json when it changed (atomically; a failure is a warning)."""
    text = json.dumps(_editable(), sort_keys=True, default=str)
    mark = hashlib.sha256(text.encode()).hexdigest()
    if st.session_state.get(AUTOSAVED) == mark:
        return
    path = autosave_path()
    tmp = path.with_name(f".{path.name}.tmp")
    data = _editable()
    blank = not (data["workflows"] or data["approved"] or data["hardware"]) and data["costs"] == Costs().model_dump()
    try:
        if blank:  # nothing typed yet (or just started over): nothing to restore
            path.unlink(missing_ok=True)
            st.session_state[AUTOSAVED] = mark
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        st.session_state[AUTOSAVED] = mark  # say it once, not on every rerun
        st.toast(
            f"Could not autosave to {path} ({exc.strerror}); export the profile to keep it.", icon=":material/warning:"
        )
        return
    st.session_state[AUTOSAVED] = mark


def restore_autosave() -> None:
    """Once per session: load the autosaved profile, skipping (and naming) anything that no longer validates."""
    if st.session_state.get(RESTORED):
        return
    st.session_state[RESTORED] = True
    path = autosave_path()
    if not path.exists():
        return
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        restored = []
        for raw in data.get("workflows") or []:
            wf = Workflow.model_validate({k: v for k, v in raw.items() if k != "_id"}).model_dump()
            wf["_id"] = str(raw.get("_id") or uuid.uuid4().hex[:8])
            restored.append(wf)
        st.session_state[WORKFLOWS] = restored
        st.session_state[COSTS] = Costs.model_validate(data.get("costs") or {}).model_dump()
        st.session_state[APPROVED] = [str(a) for a in data.get("approved") or []]
        st.session_state[HW_OVERRIDES] = Hardware.model_validate(data.get("hardware") or {}).model_dump(
            exclude_none=True
        )
        if data.get("bandwidth_probe"):
            st.session_state[BANDWIDTH_PROBE] = data["bandwidth_probe"]
    except (OSError, ValueError, TypeError, AttributeError) as exc:  # pydantic's ValidationError is a ValueError
        bad = path.with_name(AUTOSAVE_NAME + ".bad")
        try:
            path.replace(bad)
        except OSError:
            pass
        flash(
            f"The autosaved profile could not be restored ({str(exc).splitlines()[0]}); it was kept as {bad}.",
            "warning",
        )
        return
    if restored:
        flash(f"Restored your {len(restored)} workflow(s) and settings from {path}.", "info")


def start_over() -> None:
    """Forget the edited profile, here and on disk (button callback)."""
    for key in (WORKFLOWS, COSTS, APPROVED, HW_OVERRIDES, BANDWIDTH_PROBE, RECOMMENDATION, AUTOSAVED):
        st.session_state.pop(key, None)
    for prefix in ("wf-", "hwf-", "cost-"):
        forget_widgets(prefix)
    autosave_path().unlink(missing_ok=True)
    flash("Started over: the workflows, hardware answers, costs and approvals were cleared.", "info")


# --- heavy things, cached per process ------------------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def detected_hardware() -> dict[str, Any]:
    """This machine, detected once per process."""
    from advisor.api import detected_hardware as detect

    return detect()


@st.cache_resource(show_spinner=False)
def knowledge() -> Any:
    """The validated catalog."""
    from advisor.api import knowledge as load

    return load()


@st.cache_resource(show_spinner=False)
def predictor() -> Any:
    """The fitted speed predictor (first fit ~5 s, then read from ADVISOR_HOME/cache)."""
    from advisor.api import predictor as fit

    return fit()


@st.cache_resource(show_spinner=False)
def embedded_models() -> list[str]:
    """Models the embedded runtime can load without downloading anything."""
    from advisor.backends.embedded import EmbeddedBackend

    return EmbeddedBackend().list_models()


def ollama_models(url: str) -> list[dict[str, Any]]:
    """Models installed in an Ollama server (raises BackendError when unreachable)."""
    from advisor.backends.ollama import OllamaBackend

    backend = OllamaBackend(url)
    try:
        return backend.installed()
    finally:
        backend.close()


def openai_models(url: str) -> list[str]:
    """Models an OpenAI-compatible server lists (raises BackendError when unreachable)."""
    from advisor.backends import make_backend

    backend = make_backend("openai", url=url)
    try:
        return backend.list_models()
    finally:
        backend.close()


def clear_caches() -> None:
    """Forget every cached resource (tests, or after the knowledge files change)."""
    st.cache_resource.clear()
    st.cache_data.clear()


# --- recommendations -----------------------------------------------------------------------------------------


def calibration() -> dict[str, Any] | None:
    """The calibration report used for recommendations, if any."""
    return st.session_state.get(CALIBRATION)


def set_calibration(report: dict[str, Any] | None) -> None:
    st.session_state[CALIBRATION] = report


def recommendation_cached() -> dict[str, Any] | None:
    """The last recommendation, when it still matches the profile and calibration."""
    try:
        key = _recommendation_key(build_profile())
    except AdvisorError:
        return None
    memo = st.session_state.get(RECOMMENDATION)
    return memo[1] if memo and memo[0] == key else None


def _recommendation_key(profile: Profile) -> str:
    report = calibration()
    run = report.get("run_id") if report else None
    return hashlib.sha256((profile.model_dump_json() + f"|{run}").encode()).hexdigest()


def recommendation(profile: Profile) -> dict[str, Any]:
    """advisor.api.recommend_profile for this profile and the active calibration, memoised per session."""
    from advisor.api import recommend_profile

    key = _recommendation_key(profile)
    memo = st.session_state.get(RECOMMENDATION)
    if memo and memo[0] == key:
        return dict(memo[1])
    predictor()  # warm the process-wide cache under the caller's spinner
    result = recommend_profile(profile, calibration=calibration())
    st.session_state[RECOMMENDATION] = (key, result)
    return result


# --- calibration in a background thread ------------------------------------------------------------------------


@dataclass
class CalibrationJob:
    """One calibration running in a thread; the page polls it, the thread never touches Streamlit."""

    backend_kind: str
    models: list[str]
    quick: bool
    url: str | None = None
    tasks_path: str | None = None  # the user's own tasks, run beside the suite
    total: int = 0
    done: int = 0
    message: str = "starting"
    rows: list[dict[str, Any]] = field(default_factory=list)
    report: dict[str, Any] | None = None
    error: str | None = None
    store_problem: str | None = None
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    backend: Any = None  # set by the thread; cancel stops an embedded worker at once through it

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    @property
    def elapsed_s(self) -> float:
        return (self.finished or time.monotonic()) - self.started


@st.cache_resource(show_spinner=False)
def _runtime_lock() -> threading.Lock:
    """One calibration per server process: two at once would measure each other."""
    return threading.Lock()


def job() -> CalibrationJob | None:
    """This session's calibration job (running or finished)."""
    return st.session_state.get(JOB)


def start_calibration(
    backend_kind: str, models: list[str], *, quick: bool, url: str | None, probe: bool, tasks_path: str | None = None
) -> None:
    """Start a calibration thread; raises AdvisorError when another one runs or the input is bad."""
    current = job()
    if current is not None and current.running:
        raise InputError("a calibration is already running; cancel it first")
    lock = _runtime_lock()
    if not lock.acquire(blocking=False):
        raise InputError("another session is calibrating on this machine right now; try again when it finishes")
    try:
        new = CalibrationJob(
            backend_kind=backend_kind, models=list(models), quick=quick, url=url, tasks_path=tasks_path
        )
        hardware = detected_hardware()
        thread = threading.Thread(
            target=_run_calibration, args=(new, hardware, probe, lock), name="decision-lens-calibration", daemon=True
        )
        new.thread = thread
        st.session_state[JOB] = new
        thread.start()
    except BaseException:
        lock.release()
        raise


def cancel_calibration() -> None:
    """Ask the running calibration to stop after the current request (button callback)."""
    current = job()
    if current is not None:
        current.stop.set()
        abort = getattr(current.backend, "abort", None)
        if callable(abort):  # the embedded worker is stopped now, not after the request in flight
            abort()
            current.message = "cancelling…"
        else:
            current.message = "cancelling after the current request…"


def _run_calibration(job: CalibrationJob, hardware: dict[str, Any], probe: bool, lock: threading.Lock) -> None:
    """Thread body: the same advisor.api.calibrate_and_store as `python -m advisor calibrate`."""
    import os

    from advisor.api import calibrate_and_store
    from advisor.backends import make_backend
    from advisor.calibrate import load_suite, plan_steps
    from advisor.hardware import probe_bandwidth
    from advisor.settings import DEFAULT_SUITE, get_settings

    backend = None
    try:
        settings = get_settings()
        suite = load_suite(DEFAULT_SUITE)
        if job.tasks_path:
            from pathlib import Path

            from advisor.calibrate import with_user_tasks

            suite = with_user_tasks(suite, Path(job.tasks_path))
        job.total = plan_steps(suite, quick=job.quick, n_models=len(job.models))
        backend = make_backend(job.backend_kind, url=job.url, api_key=os.environ.get("ADVISOR_API_KEY"))
        job.backend = backend
        bandwidth = None
        if probe:
            job.message = "measuring host memory bandwidth…"
            bandwidth = probe_bandwidth()

        def on_progress(progress: Any) -> None:
            job.done, job.total, job.message = progress.done, progress.total, progress.message
            if progress.measurement is not None:
                job.rows.append(progress.measurement.model_dump())

        job.message = f"loading {', '.join(job.models)}…"
        report = calibrate_and_store(
            backend,
            job.models,
            suite,
            hardware=hardware,
            quick=job.quick,
            timeout_s=settings.timeout_s,
            on_progress=on_progress,
            should_stop=job.stop.is_set,
            bandwidth_probe=bandwidth,
            store_path=settings.store_path,
        )
        job.store_problem = report["store"]["problem"]
        job.report = report
        job.message = {"complete": "finished", "cancelled": "cancelled"}.get(
            report.get("status", ""), "finished with problems"
        )
    except AdvisorError as exc:
        job.error = str(exc)
        job.message = "failed"
    except Exception as exc:  # noqa: BLE001 - a thread must report, not die silently
        job.error = f"unexpected error: {type(exc).__name__}: {exc}"
        job.message = "failed"
    finally:
        if backend is not None:
            try:
                backend.close()
            except Exception:  # noqa: BLE001, S110 - closing must not hide the real outcome
                pass
        job.finished = time.monotonic()
        lock.release()


def finish_job() -> bool:
    """Once per finished job: adopt its report for recommendations. True the first time (the page then reruns)."""
    current = job()
    if current is None or current.running or not first_time("job-finished", id(current)):
        return False
    # Only a complete run replaces the calibration in use; a cancelled or failed one is kept in the store and
    # listed under Past runs, where the user can still pick it.
    if current.report is not None and current.report.get("complete") and current.report.get("models"):
        set_calibration(current.report)
    return True


def listed_models(kind: str, url: str) -> list[str]:
    """Models last listed for a server (kept so the picker survives reruns)."""
    return list(st.session_state.get(f"dl_listed_{kind}_{url}", []))


def set_listed_models(kind: str, url: str, names: list[str]) -> None:
    st.session_state[f"dl_listed_{kind}_{url}"] = list(names)


def past_runs() -> list[dict[str, Any]]:
    """Calibration runs in the measurement store, newest first."""
    from advisor.settings import get_settings
    from advisor.store import MeasurementStore

    store = MeasurementStore(get_settings().store_path)
    try:
        return store.runs()
    finally:
        store.close()


def digest(data: Any) -> str:
    """A short stable hash of JSON-able data (for widget keys that depend on content)."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:10]
