"""The Python API: one call per job, shared by the CLI and the app (both are thin edges over these)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from advisor.knowledge import Knowledge, cached_knowledge
from advisor.predict import SpeedPredictor, get_predictor
from advisor.profiles import load_calibration
from advisor.recommend import recommend
from advisor.schemas import Profile
from advisor.settings import get_settings


def knowledge() -> Knowledge:
    """The validated catalog (read once per process)."""
    return cached_knowledge(str(get_settings().knowledge_dir))


@lru_cache(maxsize=2)
def _predictor(knowledge_dir: str, cache_dir: str) -> SpeedPredictor:
    return get_predictor(cached_knowledge(knowledge_dir), Path(knowledge_dir), Path(cache_dir))


def predictor() -> SpeedPredictor:
    """The fitted speed predictor (cached on disk with skops, and in memory)."""
    settings = get_settings()
    return _predictor(str(settings.knowledge_dir), str(settings.home / "cache"))


@lru_cache(maxsize=1)
def detected_hardware() -> dict[str, Any]:
    """This machine, detected once per process; a CPU-only machine gets its bandwidth measured (about 1 s)."""
    from advisor.hardware import detect, probe_bandwidth

    detected = detect().as_json()
    hw = detected["hardware"]
    if hw["accelerator"] == "cpu" and hw["memory_bandwidth_gbs"] is None:
        # CPU decode speed is set by memory bandwidth, which no OS call reports: measure it once per machine
        # and keep it, so every start (and every command) plans with the same figure.
        probe = cached_bandwidth_probe(detected["fingerprint"])
        if probe is None:
            probe = remember_bandwidth_probe(detected["fingerprint"], probe_bandwidth())
        hw["memory_bandwidth_gbs"] = probe["bandwidth_gbs"]
        detected["how"]["memory_bandwidth_gbs"] = (
            f"measured {probe.get('measured_at', '')[:10]}: {probe['method']} (kept in {_probe_path()}; "
            "`python -m advisor hardware --probe` measures again)"
        )
        detected["bandwidth_probe"] = probe
        detected["notes"] = [n for n in detected["notes"] if not n.startswith("memory bandwidth unknown")]
    return detected


def _probe_path() -> Path:
    return get_settings().home / "bandwidth-probe.json"


def cached_bandwidth_probe(fingerprint: str) -> dict[str, Any] | None:
    """This machine's last bandwidth probe, if one was kept for the same hardware fingerprint."""
    import json

    try:
        kept = json.loads(_probe_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    probe = kept.get(fingerprint) if isinstance(kept, dict) else None
    return probe if isinstance(probe, dict) and isinstance(probe.get("bandwidth_gbs"), int | float) else None


def remember_bandwidth_probe(fingerprint: str, probe: dict[str, Any]) -> dict[str, Any]:
    """Keep a probe for this fingerprint (best effort: a read-only home only costs a re-measure next time)."""
    import json
    from datetime import UTC, datetime

    probe = {**probe, "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
    path = _probe_path()
    try:
        kept = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        kept = kept if isinstance(kept, dict) else {}
        kept[fingerprint] = probe
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(kept, indent=1), encoding="utf-8")
        tmp.replace(path)
    except (OSError, ValueError):
        pass
    return probe


def clear_caches() -> None:
    """Forget the cached knowledge, predictor and detection (after editing knowledge/, or between tests)."""
    cached_knowledge.cache_clear()
    _predictor.cache_clear()
    detected_hardware.cache_clear()


def recommend_profile(
    profile: Profile, *, calibration: dict[str, Any] | None = None, base_dir: Path | None = None
) -> dict[str, Any]:
    """Recommendations for every workflow; the profile's own calibration file is used when none is passed."""
    if calibration is None and profile.calibration:
        calibration = load_calibration(profile.calibration, relative_to=base_dir)
    return recommend(profile, knowledge(), predictor(), detected_hardware(), calibration)


def calibrate_and_store(
    backend: Any,
    models: list[str],
    suite: Any,
    *,
    hardware: dict[str, Any],
    quick: bool = False,
    timeout_s: float | None = None,
    bandwidth_probe: dict[str, Any] | None = None,
    on_progress: Any = None,
    should_stop: Any = None,
    store_path: Path | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Calibrate and append every measurement to the SQLite store as it arrives (the CLI and the app both call this).

    The report gains `store`: the path, how many rows were stored, and the problem if the store failed, so a
    caller can say when fewer rows were stored than measured. Measuring goes on when the store fails.
    """
    from advisor.calibrate import calibrate, new_run_id
    from advisor.errors import StoreError
    from advisor.store import MeasurementStore

    path = store_path or get_settings().store_path
    run_id = run_id or new_run_id()
    problems: list[str] = []
    stored = 0
    store: MeasurementStore | None = None
    try:
        store = MeasurementStore(path)
        store.start_run(run_id, run_id[:15], backend.kind)
    except StoreError as exc:
        problems.append(str(exc))

    def progress(step: Any) -> None:
        nonlocal stored
        if step.measurement is not None and store is not None and not problems:
            try:
                store.add(step.measurement)
                stored += 1
            except StoreError as exc:  # keep measuring; the report still gets everything
                problems.append(str(exc))
        if on_progress is not None:
            on_progress(step)

    try:
        report = calibrate(
            backend,
            models,
            suite,
            hardware=hardware,
            quick=quick,
            timeout_s=timeout_s,
            on_progress=progress,
            should_stop=should_stop,
            bandwidth_probe=bandwidth_probe,
            run_id=run_id,
        )
        if store is not None and not problems:
            try:
                store.finish_run(report)
            except StoreError as exc:
                problems.append(str(exc))
    finally:
        if store is not None:
            store.close()
    report["store"] = {"path": str(path), "stored": stored, "problem": problems[0] if problems else None}
    return report
