"""Calibration: (backend, models, suite, callbacks) -> measured speed and task success. No file I/O here."""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml

from advisor.backends.base import Backend, GenerationRequest, GenerationResult, ModelInfo
from advisor.checkers import CheckSpecError, run_check, run_pair_check, validate_spec
from advisor.doctor import NON_PORTABLE, REINSTALL, compiled_features
from advisor.errors import AdvisorError, BackendError, BackendUnreachable, InputError, ModelNotFound
from advisor.knowledge import SAFE_LOADER
from advisor.schemas import Measurement, Spread
from advisor.settings import DEFAULT_SUITE as DEFAULT_SUITE_PATH

REPORT_SCHEMA = "decision-lens/calibration/v1"
# Filler for prefill probes: plain words, shuffled by a nonce so no prompt cache can reuse a prefix.
FILLER_WORDS = (
    "river stone market ladder orange winter signal copper garden window planet silver thunder pencil "
    "harbor meadow candle rocket violet engine forest bridge crystal lantern falcon marble ribbon "
    "velvet comet island pepper saddle tunnel walnut anchor basket cactus dolphin feather glacier"
).split()
DECODE_PROMPT = "Write a long, detailed story about a lighthouse keeper and a storm. Do not stop early."


@dataclass(frozen=True)
class Suite:
    """A versioned calibration suite read from benchmarks/suites/*.yaml."""

    name: str
    version: int
    timeout_s: float
    prefill_prompt_tokens: tuple[int, ...]
    decode_tokens: int
    repetitions: int
    warmup: int
    quick_tasks: tuple[str, ...]
    quick_repetitions: int
    tasks: tuple[dict[str, Any], ...]


def _read_yaml_mapping(path: Path, what: str) -> dict[str, Any]:
    """A YAML file that must hold a mapping with a 'tasks' list; errors name the file and the fix."""
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    except OSError as exc:
        raise InputError(f"{what} '{path}' cannot be read: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise InputError(f"{what} '{path}' is not UTF-8 text (a binary file?); give a YAML file") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{what} '{path}' is not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("tasks"), list):
        raise InputError(f"{what} '{path}' must be a mapping with a 'tasks' list (the suite's task format)")
    return raw


def _validate_tasks(tasks: list[Any], source: Path, *, taken: set[str] | None = None) -> set[str]:
    """Every task has an id, a prompt (or a pair of prompts) and a valid check; returns the ids."""
    ids = set(taken or ())
    for index, task in enumerate(tasks):
        if not isinstance(task, dict):
            raise InputError(f"{source}: task #{index + 1} must be a mapping with id, prompt and check")
        where = f"{source}: task {task.get('id', f'#{index + 1}')!r}"
        if not task.get("id") or ("prompt" not in task and "prompts" not in task) or "check" not in task:
            raise InputError(f"{where} needs id, prompt (or prompts) and check")
        if task["id"] in ids:
            raise InputError(f"{where} repeats an id; task ids must be unique")
        ids.add(task["id"])
        try:
            if "prompts" in task:
                validate_spec(task["check"]["each"], where=where)
            else:
                validate_spec(task["check"], where=where)
        except (CheckSpecError, KeyError, TypeError) as exc:
            raise InputError(f"{where}: bad check: {exc}") from exc
    return ids


def load_suite(path: Path) -> Suite:
    """Read and validate a suite file; errors name the file, the task and the fix."""
    raw = _read_yaml_mapping(path, "suite file")
    speed = raw.get("speed") or {}
    quick = raw.get("quick") or {}
    ids = _validate_tasks(raw["tasks"], path)
    missing = [t for t in quick.get("tasks", []) if t not in ids]
    if missing:
        raise InputError(f"{path}: quick.tasks names unknown task ids: {', '.join(missing)}")
    return Suite(
        name=str(raw.get("suite", path.stem)),
        version=int(raw.get("version", 1)),
        timeout_s=float(raw.get("timeout_s", 60)),
        prefill_prompt_tokens=tuple(int(n) for n in speed.get("prefill_prompt_tokens", [128, 512])),
        decode_tokens=int(speed.get("decode_tokens", 64)),
        repetitions=int(speed.get("repetitions", 3)),
        warmup=int(speed.get("warmup", 1)),
        quick_tasks=tuple(quick.get("tasks", [])),
        quick_repetitions=int(quick.get("repetitions", 3)),
        tasks=tuple(raw["tasks"]),
    )


USER_PREFIX = "yours:"  # the user's own task ids are kept apart from the built-in suite's


def with_user_tasks(suite: Suite, path: Path) -> Suite:
    """The suite plus the user's own tasks (the suite's task format), run in quick and full mode alike.

    Task success is then measured on the user's own prompts too, reported under their own category.
    """
    raw = _read_yaml_mapping(path, "tasks file")
    tasks = [
        {**task, "id": USER_PREFIX + str(task.get("id")), "category": str(task.get("category") or "your tasks")}
        if isinstance(task, dict) and task.get("id")
        else task
        for task in raw["tasks"]
    ]
    if not tasks:
        raise InputError(f"tasks file '{path}' has an empty 'tasks' list; add at least one task")
    _validate_tasks(tasks, path, taken={t["id"] for t in suite.tasks})
    added = tuple(t["id"] for t in tasks)
    return replace(
        suite,
        name=f"{suite.name}+{path.stem}",
        tasks=suite.tasks + tuple(tasks),
        quick_tasks=suite.quick_tasks + added,
    )


def save_tasks_file(folder: Path, name: str, data: bytes) -> tuple[Path, int]:
    """Keep a tasks file (e.g. uploaded in the app) in folder after checking it; (path, how many tasks).

    A file that does not load as tasks is an InputError naming it, and is not kept.
    """
    import re

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).name).lstrip(".") or "tasks.yaml")
    path.write_bytes(data)
    try:
        base = load_suite(DEFAULT_SUITE_PATH)
        count = len(with_user_tasks(base, path).tasks) - len(base.tasks)
    except AdvisorError:
        path.unlink(missing_ok=True)
        raise
    return path, count


def spread(values: list[float]) -> Spread | None:
    """Median with quartiles, range and relative spread; None for no values."""
    vals = sorted(v for v in values if v is not None)
    if not vals:
        return None
    if len(vals) == 1:
        q1 = q3 = vals[0]
    else:
        q1, _, q3 = statistics.quantiles(vals, n=4, method="inclusive")
    med = statistics.median(vals)
    return Spread(
        median=med,
        p25=q1,
        p75=q3,
        min=vals[0],
        max=vals[-1],
        n=len(vals),
        spread_pct=round(100 * (q3 - q1) / med, 2) if med else 0.0,
    )


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of a list (None for an empty list)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def derive_metrics(result: GenerationResult) -> dict[str, Any]:
    """DESIGN metrics of one request, each from the stream or the runtime's counters (and which)."""
    m: dict[str, Any] = {
        "timed_out": result.timed_out,
        "error": result.error,
        "token_source": result.token_source,
        "stream_status": result.stream_status,
        "malformed_chunks": result.malformed_chunks,
        "retries": result.retries,
    }
    if result.t_first_chunk is None:
        return m
    m["ttft_s"] = result.t_first_chunk - result.t_start
    if result.t_first_answer is not None:
        m["ttfa_s"] = result.t_first_answer - result.t_start
    m["e2e_s"] = (result.t_last or result.t_first_chunk) - result.t_start
    out = result.output_tokens if result.output_tokens is not None else result.total_chunks
    reasoning = result.reasoning_tokens if result.reasoning_tokens is not None else result.reasoning_chunks
    reasoning = min(reasoning, out) if out else reasoning
    m.update(
        prompt_tokens=result.prompt_tokens,
        output_tokens=out,
        reasoning_tokens=reasoning,
        answer_tokens=max(0, out - reasoning) if out is not None else None,
    )
    if result.prompt_tokens and result.prompt_eval_s:
        m["prefill_tps"] = result.prompt_tokens / result.prompt_eval_s
        m["prefill_source"] = result.counter_source
    elif result.prompt_tokens and m["ttft_s"] > 0:
        m["prefill_tps"] = result.prompt_tokens / m["ttft_s"]
        m["prefill_source"] = "prompt tokens / TTFT"
    gaps = [b - a for a, b in zip(result.chunk_times, result.chunk_times[1:], strict=False)]
    span = (result.t_last or 0) - result.t_first_chunk
    if result.total_chunks >= 2 and span > 0:
        m["decode_tps"] = (result.total_chunks - 1) / span
        m["decode_source"] = "stream chunk times"
        m["tpot_ms"] = 1000 / m["decode_tps"]
        m["itl_p50_ms"] = 1000 * (percentile(gaps, 50) or 0)
        m["itl_p95_ms"] = 1000 * (percentile(gaps, 95) or 0)
    if result.decode_s and result.decode_counted:
        m["counter_decode_tps"] = result.decode_counted / result.decode_s
    return m


def filler_prompt(target_tokens: int, nonce: str, count_tokens: Callable[[str], int] | None) -> str:
    """A prompt of about target_tokens (exact with a tokenizer), starting with a unique nonce."""
    words: list[str] = []
    seed = int(nonce[:8], 16)
    i = 0
    head = f"Request {nonce}. Read these words, then reply with the single word OK.\n"
    estimate = 0
    while estimate < target_tokens:
        words.append(FILLER_WORDS[(seed + i * 7) % len(FILLER_WORDS)])
        i += 1
        if count_tokens is None:
            estimate = int(len(words) * 1.3) + 20  # ~1.3 tokens per English word, plus the head
        elif i % 16 == 0:
            estimate = count_tokens(head + " ".join(words))
    return head + " ".join(words)


@dataclass
class Progress:
    """One step of a calibration, for progress bars and live result tables."""

    done: int
    total: int
    message: str
    measurement: Measurement | None = None


def host_load() -> dict[str, Any]:
    """The 1-minute load average and the CPU count (None where the OS does not say); busy = load >= half the CPUs."""
    import os

    try:
        load = round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        load = None
    cpus = os.cpu_count()
    return {"load_1m": load, "cpus": cpus, "busy": bool(load is not None and cpus and load >= 0.5 * cpus)}


def new_run_id() -> str:
    """A sortable, unique id for one calibration run."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def plan_steps(suite: Suite, *, quick: bool, n_models: int) -> int:
    """How many requests a run will make (warm-ups included), for the progress bar."""
    reps = suite.quick_repetitions if quick else suite.repetitions
    tasks = len(suite.quick_tasks) if quick else len(suite.tasks)
    return n_models * (suite.warmup + reps * (len(suite.prefill_prompt_tokens) + 1) + tasks)


def calibrate(
    backend: Backend,
    models: list[str],
    suite: Suite,
    *,
    hardware: dict[str, Any],
    quick: bool = False,
    timeout_s: float | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    bandwidth_probe: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Run the suite on each model; every measurement is passed to on_progress as soon as it exists.

    Faults never discard measurements: the report says which step failed and is marked incomplete.
    """
    run_id = run_id or new_run_id()
    timeout = timeout_s if timeout_s is not None else suite.timeout_s
    fingerprint = hardware.get("fingerprint", "unknown")
    report: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "run_id": run_id,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "label": "measured",
        "suite": {"name": suite.name, "version": suite.version, "quick": quick, "timeout_s": timeout},
        "backend": {"kind": backend.kind, "version": _safe_version(backend), "url": _public_url(backend)},
        "hardware": hardware,
        "bandwidth_probe": bandwidth_probe,
        "host_load": host_load(),  # what else was running when the run started: a busy host makes noisy figures
        "models": [],
        "measurements": [],
        "errors": [],
        "complete": False,
    }
    total = plan_steps(suite, quick=quick, n_models=len(models))
    state = {"done": 0}

    def step(message: str, measurement: Measurement | None = None) -> None:
        state["done"] += 1
        if measurement is not None:
            report["measurements"].append(measurement.model_dump())
        if on_progress:
            on_progress(Progress(min(state["done"], total), total, message, measurement))

    cancelled = False
    for model in models:
        try:
            info = backend.load(model)
        except (ModelNotFound, BackendUnreachable) as exc:
            report["errors"].append({"model": model, "step": "load", "error": str(exc)})
            if isinstance(exc, BackendUnreachable):
                break
            continue
        except AdvisorError as exc:
            report["errors"].append({"model": model, "step": "load", "error": str(exc)})
            continue
        build = getattr(backend, "build", None)
        if build:  # which llama.cpp build ran: CPU features compiled in, GPU offload
            report["backend"]["build"] = build
            risky = [f for f in compiled_features(build.get("system_info", "")) if f in NON_PORTABLE]
            if risky and not report.get("warnings"):
                report["warnings"] = [
                    f"this llama.cpp build has {', '.join(risky)} compiled in (not the portable build): it can crash "
                    f"on another CPU or in a VM; fix: {REINSTALL}"
                ]
        runner = _ModelRun(
            backend,
            info,
            suite,
            run_id=run_id,
            fingerprint=fingerprint,
            timeout_s=timeout,
            version=report["backend"]["version"],
            step=step,
            should_stop=should_stop,
        )
        interrupted = False
        try:
            runner.run(quick=quick)
        except BackendError as exc:  # unreachable server, dead worker: keep what was measured, say where it stopped
            report["errors"].append({"model": model, "step": runner.current, "error": str(exc)})
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM (the CLI turns it into this): keep the report
            interrupted = True
            report["errors"].append(
                {"model": model, "step": runner.current, "error": "interrupted (Ctrl-C or SIGTERM)"}
            )
        summary = summarize(info, runner.measurements)
        report["models"].append(summary)
        speed_rows = [m for m in runner.measurements if m.kind == "speed"]
        if speed_rows and all(entry["decode_tps"] is None for entry in summary["speed"].values()):
            # Every speed stream was truncated, malformed or errored: nothing trustworthy to report as a rate.
            kinds = sorted({m.stream_status for m in speed_rows})
            report["errors"].append(
                {
                    "model": model,
                    "step": "speed",
                    "error": f"no clean stream among {len(speed_rows)} speed requests ({', '.join(kinds)}); "
                    "the rows are kept, labelled, but no rate can be measured from them",
                }
            )
        if interrupted:
            report["status"] = "interrupted"
            break
        if runner.cancelled:
            cancelled = True
            report["errors"].append({"model": model, "step": runner.current, "error": "cancelled by the user"})
            break
    report["host_load"]["end_load_1m"] = host_load()["load_1m"]
    report["complete"] = not report["errors"] and not cancelled
    report.setdefault("status", "complete" if report["complete"] else "cancelled" if cancelled else "failed")
    return report


class _ModelRun:
    """The probes and tasks for one loaded model."""

    def __init__(
        self,
        backend: Backend,
        info: ModelInfo,
        suite: Suite,
        *,
        run_id: str,
        fingerprint: str,
        timeout_s: float,
        version: str,
        step: Callable[..., None],
        should_stop: Callable[[], bool] | None,
    ) -> None:
        self.backend, self.info, self.suite = backend, info, suite
        self.base: dict[str, Any] = dict(
            run_id=run_id,
            backend=backend.kind,
            backend_version=version,
            model=info.name,
            model_identity=info.identity,
            quantization=info.quantization,
            context_size=info.context_size,
            hardware_fingerprint=fingerprint,
            device=info.device,
        )
        self.timeout_s, self.step, self.should_stop = timeout_s, step, should_stop
        self.measurements: list[Measurement] = []
        self.current = "warm-up"
        self.cancelled = False
        count = getattr(backend, "count_tokens", None)
        self.count_tokens: Callable[[str], int] | None = count if callable(count) else None
        server_count = getattr(backend, "server_token_count", None)
        self.server_count: Callable[[str], int | None] | None = server_count if callable(server_count) else None

    def _stop(self) -> bool:
        if self.should_stop and self.should_stop():
            self.cancelled = True
        return self.cancelled

    def _ask(self, prompt: str, *, max_tokens: int, system: str | None = None) -> GenerationResult:
        request = GenerationRequest(prompt=prompt, system=system, max_tokens=max_tokens, timeout_s=self.timeout_s)
        result = self.backend.generate(self.info.name, request)
        if result.prompt_tokens is None and self.server_count is not None and result.t_first_chunk is not None:
            # The stream carried no usage: count with the server's tokenizer (chat-template tokens excluded).
            result.prompt_tokens = self.server_count((system or "") + prompt)
        return result

    def _record(
        self, kind: Literal["speed", "task"], probe: str, category: str, rep: int, metrics: dict[str, Any], **extra: Any
    ) -> Measurement:
        fields = {k: v for k, v in metrics.items() if k in Measurement.model_fields}
        m = Measurement(kind=kind, probe=probe, category=category, repetition=rep, **self.base, **fields, **extra)
        self.measurements.append(m)
        return m

    def run(self, *, quick: bool) -> None:
        suite = self.suite
        reps = suite.quick_repetitions if quick else suite.repetitions
        for _ in range(suite.warmup):  # warm-up: caches, lazy allocation; discarded
            if self._stop():
                return
            self._ask(f"Request {uuid.uuid4().hex}. Say hello.", max_tokens=8)
            self.step(f"{self.info.name}: warm-up (discarded)")
        for rep in range(1, reps + 1):
            for n in suite.prefill_prompt_tokens:
                if self._stop():
                    return
                self.current = f"prefill@{n}"
                prompt = filler_prompt(n, uuid.uuid4().hex, self.count_tokens)
                metrics = derive_metrics(self._ask(prompt, max_tokens=4))
                m = self._record("speed", f"prefill@{n}", "speed", rep, metrics)
                self.step(f"{self.info.name}: prefill {n} tokens, rep {rep}", m)
            if self._stop():
                return
            self.current = f"decode@{suite.decode_tokens}"
            metrics = derive_metrics(
                self._ask(f"Request {uuid.uuid4().hex}. {DECODE_PROMPT}", max_tokens=suite.decode_tokens)
            )
            m = self._record("speed", f"decode@{suite.decode_tokens}", "speed", rep, metrics)
            self.step(f"{self.info.name}: decode {suite.decode_tokens} tokens, rep {rep}", m)
        wanted = set(suite.quick_tasks) if quick else None
        for task in suite.tasks:
            if wanted is not None and task["id"] not in wanted:
                continue
            if self._stop():
                return
            self.current = f"task {task['id']}"
            m = self._run_task(task)
            self.step(f"{self.info.name}: task {task['id']} {'passed' if m.success else 'failed'}", m)

    def _run_task(self, task: dict[str, Any]) -> Measurement:
        max_tokens = int(task.get("max_tokens", 128))
        prompts = task.get("prompts") or [task["prompt"]]
        results = [self._ask(p, max_tokens=max_tokens, system=task.get("system")) for p in prompts]
        metrics = [derive_metrics(r) for r in results]
        timed_out = any(r.timed_out for r in results)
        error = next((r.error for r in results if r.error), None)
        if timed_out:
            passed, detail = False, f"timed out after {self.timeout_s:g} s (counts as a failure)"
        elif error:
            passed, detail = False, f"runtime error: {error}"
        elif len(results) == 2:
            check = run_pair_check(task["check"], results[0].answer_text, results[1].answer_text)
            passed, detail = check.passed, check.detail
        else:
            check = run_check(task["check"], results[0].answer_text)
            passed, detail = check.passed, check.detail
        merged = dict(metrics[0])
        for key in ("output_tokens", "reasoning_tokens", "answer_tokens", "prompt_tokens"):
            values = [m.get(key) for m in metrics]
            merged[key] = sum(v for v in values if v is not None) if any(v is not None for v in values) else None
        if all("e2e_s" in m for m in metrics):
            merged["e2e_s"] = sum(m["e2e_s"] for m in metrics)
        elif timed_out:
            merged["e2e_s"] = self.timeout_s * len(results)
        merged.update(timed_out=timed_out, error=error)
        return self._record(
            "task", task["id"], task.get("category", "task"), 1, merged, success=passed, detail=detail[:300]
        )


def summarize(info: ModelInfo, measurements: list[Measurement]) -> dict[str, Any]:
    """Medians with spread per probe, and the accepted-answer metrics from the tasks."""
    speed: dict[str, Any] = {}
    probes = sorted({m.probe for m in measurements if m.kind == "speed"})
    for probe in probes:
        every = [m for m in measurements if m.probe == probe]
        # Truncated, malformed, errored or timed-out streams are kept in the record, never in the medians.
        rows = [m for m in every if m.stream_status == "complete" and not m.timed_out and not m.error]
        entry: dict[str, Any] = {
            name: (
                s.model_dump()
                if (s := spread([getattr(m, name) for m in rows if getattr(m, name) is not None]))
                else None
            )
            for name in ("ttft_s", "prefill_tps", "decode_tps", "counter_decode_tps", "tpot_ms", "e2e_s")
        }
        entry["prompt_tokens"] = statistics.median([m.prompt_tokens for m in rows if m.prompt_tokens] or [0]) or None
        entry["sources"] = sorted({s for m in rows for s in (m.prefill_source, m.decode_source) if s})
        entry["excluded"] = {
            "count": len(every) - len(rows),
            "why": sorted(
                {m.stream_status if m.stream_status != "complete" else "error" for m in every if m not in rows}
            ),
        }
        speed[probe] = entry
    tasks = [m for m in measurements if m.kind == "task"]
    successes = sum(1 for m in tasks if m.success)
    e2e = [m.e2e_s for m in tasks if m.e2e_s is not None]
    generated = sum(m.output_tokens or 0 for m in tasks)
    rate = successes / len(tasks) if tasks else None
    by_category: dict[str, dict[str, int]] = {}
    for m in tasks:
        cat = by_category.setdefault(m.category, {"attempts": 0, "successes": 0})
        cat["attempts"] += 1
        cat["successes"] += int(bool(m.success))
    return {
        "model": info.name,
        "label": "measured",
        "identity": info.identity,
        "quantization": info.quantization,
        "context_size": info.context_size,
        "size_bytes": info.size_bytes,
        "params_b": info.params_b,
        "load_s": info.load_s,
        "load_source": info.load_source,
        "device": info.device,
        "speed": speed,
        "tasks": {
            "attempts": len(tasks),
            "successes": successes,
            "success_rate": rate,
            "timeouts": sum(1 for m in tasks if m.timed_out),
            "by_category": by_category,
            "reasoning_tokens": sum(m.reasoning_tokens or 0 for m in tasks),
            "answer_tokens": sum(m.answer_tokens or 0 for m in tasks),
            # Expected time until an accepted answer, retries included; None when nothing was accepted.
            "seconds_per_accepted": (statistics.fmean(e2e) / rate) if e2e and rate else None,
            "tokens_per_accepted": generated / successes if successes else None,
        },
    }


def _public_url(backend: Any) -> str | None:
    """The server a run measured (a hosted endpoint's measured TTFT is matched by it), without credentials or query."""
    from urllib.parse import urlsplit, urlunsplit

    url = getattr(backend, "base_url", None)
    if not url:
        return None
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _safe_version(backend: Backend) -> str:
    try:
        return backend.version()
    except AdvisorError:
        return "unknown"
