"""python -m advisor ...: thin click commands over the core; errors become one clear line, never a traceback."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from advisor import __version__
from advisor.errors import AdvisorError, InputError, StoreError
from advisor.settings import DEFAULT_SUITE, get_settings


def write_json(path: Path, payload: Any) -> None:
    """Write JSON atomically: a complete temp file renamed over the target, never a truncated file left behind."""
    write_atomic(path, json.dumps(payload, indent=2, default=str))


def write_atomic(path: Path, text: str) -> None:
    """Write text to a temp file in the same folder, fsync it, rename it over the target; clean up on failure."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StoreError(
            f"cannot write '{path}' ({exc.strerror or exc}); free some space or choose another path"
        ) from exc


def check_writable(path: Path, option: str) -> None:
    """Fail before measuring when an output path cannot be written."""
    target = path if path.exists() else path.parent
    if path.is_dir() or (target.exists() and not os.access(target, os.W_OK)):
        raise InputError(f"{option} '{path}' is not a writable file path")
    if not target.exists():
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"{option} '{path}': cannot create its folder ({exc.strerror})") from exc


@click.group()
@click.version_option(version=__version__, prog_name="decision-lens")
def cli() -> None:
    """Decision Lens: should each LLM workflow run locally or be routed to a hosted API?"""


@cli.command()
@click.option("--probe/--no-probe", default=False, help="Also measure host memory bandwidth (a few seconds).")
def hardware(probe: bool) -> None:
    """Print the detected hardware as JSON, and how each field was found."""
    from advisor.api import remember_bandwidth_probe
    from advisor.hardware import detect, probe_bandwidth

    det = detect()
    out = det.as_json()
    if probe:  # measured again, and kept as this machine's figure for later commands and the app
        out["bandwidth_probe"] = remember_bandwidth_probe(out["fingerprint"], probe_bandwidth())
    click.echo(json.dumps(out, indent=2))


def _fmt(spread: dict[str, Any] | None, digits: int = 2) -> str:
    if not spread:
        return "-"
    return f"{spread['median']:.{digits}f} [{spread['p25']:.{digits}f}-{spread['p75']:.{digits}f}]"


def summary_table(report: dict[str, Any]) -> str:
    """The calibration summary as a plain-text table: medians with interquartile ranges, all measured."""
    lines = ["measured (median [p25-p75]):"]
    for model in report["models"]:
        lines.append(
            f"\n{model['model']}  ({model['quantization'] or 'quantization unknown'}, {model['identity'][:23]})"
        )
        if model.get("load_s") is not None:
            lines.append(f"  load_s               {model['load_s']:.2f}  ({model['load_source']})")
        for probe, entry in model["speed"].items():
            lines.append(
                f"  {probe:<18} ttft_s {_fmt(entry['ttft_s'], 3):<24} prefill_tps {_fmt(entry['prefill_tps'], 0):<20} "
                f"decode_tps {_fmt(entry['decode_tps'], 1)}"
            )
        tasks = model["tasks"]
        if tasks["attempts"]:
            spa = tasks["seconds_per_accepted"]
            tpa = tasks["tokens_per_accepted"]
            lines.append(
                f"  tasks                {tasks['successes']}/{tasks['attempts']} passed ({tasks['timeouts']} timeouts); "
                f"seconds_per_accepted {spa:.2f}; tokens_per_accepted {tpa:.0f}"
                if spa is not None and tpa is not None
                else f"  tasks                {tasks['successes']}/{tasks['attempts']} passed ({tasks['timeouts']} timeouts); no accepted answer"
            )
    probe = report.get("bandwidth_probe")
    if probe:
        lines.append(f"\nhost memory bandwidth {probe['bandwidth_gbs']} GB/s ({probe['method']})")
    for err in report["errors"]:
        lines.append(f"\nerror ({err['model']}, {err['step']}): {err['error']}")
    return "\n".join(lines)


@cli.command()
@click.option("--backend", "backend_kind", default="embedded", show_default=True, help="embedded | openai | ollama")
@click.option("--url", default=None, help="Server URL: http://HOST:PORT/v1 for openai, http://HOST:11434 for ollama.")
@click.option(
    "--model", "models", multiple=True, help="Model(s) to calibrate; repeat the option. Default: the runtime's first."
)
@click.option(
    "--quick", is_flag=True, help="A short run (a few tasks, 3 repetitions): under 30 s on the embedded default."
)
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None, help="Also write the report here.")
@click.option(
    "--timeout", "timeout_s", type=float, default=None, help="Seconds before a request counts as failed (default 60)."
)
@click.option("--suite", "suite_path", type=click.Path(path_type=Path), default=DEFAULT_SUITE, show_default=False)
@click.option("--concurrency", default=None, help="Server concurrency sweep levels, e.g. 1,2,4,8.")
@click.option("--slo-ttft", type=float, default=2.0, show_default=True, help="Goodput objective: TTFT seconds.")
@click.option(
    "--slo-tpot-ms", type=float, default=100.0, show_default=True, help="Goodput objective: ms per output token."
)
@click.option("--probe/--no-probe", default=True, show_default=True, help="Measure host memory bandwidth too.")
@click.option(
    "--tasks",
    "tasks_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Your own tasks (the suite's task format) to run beside the suite, e.g. benchmarks/suites/your-tasks.example.yaml.",
)
def calibrate(
    backend_kind: str,
    url: str | None,
    models: tuple[str, ...],
    quick: bool,
    json_path: Path | None,
    timeout_s: float | None,
    suite_path: Path,
    concurrency: str | None,
    slo_ttft: float,
    slo_tpot_ms: float,
    probe: bool,
    tasks_path: Path | None,
) -> None:
    """Measure this machine: TTFT, prefill and decode rates, reasoning vs answer tokens, task success."""
    from advisor.api import calibrate_and_store
    from advisor.backends import make_backend
    from advisor.calibrate import load_suite, plan_steps
    from advisor.hardware import detect, probe_bandwidth
    from advisor.sweep import parse_levels, sweep

    if timeout_s is not None and timeout_s <= 0:
        raise InputError("--timeout must be a positive number of seconds")
    levels = parse_levels(concurrency) if concurrency else None
    if levels and backend_kind == "embedded":
        raise InputError(
            "--concurrency needs a server backend (--backend openai or ollama); the embedded runtime serves one request at a time"
        )
    if json_path:
        check_writable(json_path, "--json")
    suite = load_suite(suite_path)
    if tasks_path is not None:
        from advisor.calibrate import with_user_tasks

        suite = with_user_tasks(suite, tasks_path)
    settings = get_settings()  # an invalid ADVISOR_TIMEOUT_S is a bad input, reported before measuring
    timeout = timeout_s if timeout_s is not None else settings.timeout_s
    from advisor.store import MeasurementStore

    MeasurementStore(settings.store_path).close()  # a store that cannot even open fails now, not after the run
    backend = make_backend(backend_kind, url=url, api_key=os.environ.get("ADVISOR_API_KEY"))
    if backend.kind != "embedded":
        backend.list_models()  # fail fast, before measuring anything, when the server cannot be reached
    model_list = list(models) or [_default_model(backend)]
    if backend.kind == "embedded":  # a wrong path or a non-GGUF file is bad input: say so before measuring
        from advisor.backends.embedded import resolve_model_path
        from advisor.errors import ModelNotFound

        for model in model_list:
            try:
                resolve_model_path(model)
            except ModelNotFound as exc:
                raise InputError(str(exc)) from None
    det = detect().as_json()
    bandwidth = probe_bandwidth() if probe else None
    total = plan_steps(suite, quick=quick, n_models=len(model_list))
    with (
        _sigterm_as_interrupt(),
        click.progressbar(length=total, label="calibrating", file=sys.stderr, show_pos=True) as bar,
    ):
        result = calibrate_and_store(
            backend,
            model_list,
            suite,
            hardware=det,
            quick=quick,
            timeout_s=timeout,
            on_progress=lambda _progress: bar.update(1),
            bandwidth_probe=bandwidth,
            store_path=settings.store_path,
        )
        if levels and result["models"] and result.get("status") != "interrupted":
            click.echo("concurrency sweep:", err=True)
            try:
                result["concurrency"] = sweep(
                    backend,
                    result["models"][0]["model"],
                    levels,
                    slo_ttft_s=slo_ttft,
                    slo_tpot_ms=slo_tpot_ms,
                    timeout_s=timeout,
                    on_progress=lambda msg: click.echo("  " + msg, err=True),
                )
            except (AdvisorError, KeyboardInterrupt) as exc:  # the calibration above is kept and reported
                result["errors"].append(
                    {
                        "model": result["models"][0]["model"],
                        "step": "concurrency sweep",
                        "error": str(exc) or "interrupted",
                    }
                )
                result["complete"] = False
    backend.close()
    if json_path:
        write_json(json_path, result)
    store = result["store"]
    if result.get("status") == "interrupted":
        click.echo(
            f"interrupted: {store['stored']} measurement(s) kept in {store['path']}"
            + (f" and in {json_path}" if json_path else ""),
            err=True,
        )
        sys.exit(130)
    if not result["measurements"] and result["errors"]:
        raise AdvisorError("nothing was measured: " + "; ".join(e["error"] for e in result["errors"]))
    click.echo(summary_table(result))
    if levels and result.get("concurrency"):
        click.echo("\nconcurrency  tok/s    req/s   ttft_p50  ttft_p95  tpot_p50  goodput (measured)")
        for row in result["concurrency"]:
            click.echo(
                f"{row['concurrency']:>11}  {row['throughput_tok_s']!s:<8} {row['requests_per_s']!s:<7} "
                f"{_num(row['ttft_p50_s'])}  {_num(row['ttft_p95_s'])}  {_num(row['tpot_p50_ms'])}  {row['goodput_rps']}"
            )
    measured = len(result["measurements"])
    for warning in result.get("warnings", []):
        click.echo(f"warning: {warning}", err=True)
    click.echo(
        f"\nstored {store['stored']} of {measured} measurements in {store['path']} as run {result['run_id']}"
        + (f"; report written to {json_path}" if json_path else ""),
        err=True,
    )
    if store["stored"] < measured:
        raise StoreError(
            f"only {store['stored']} of {measured} measurements reached the store ({store['problem']})"
            + (f"; all {measured} are in {json_path}" if json_path else "; re-run with --json PATH to keep them all")
        )
    if not result["complete"]:
        raise AdvisorError(
            "calibration incomplete: "
            + "; ".join(e["error"] for e in result["errors"])
            + (" (measurements so far were saved)" if result["measurements"] else "")
        )


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM ends a calibration the way Ctrl-C does: what was measured is kept and the report written."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. called from a test runner thread): nothing to install
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _num(value: float | None) -> str:
    return f"{value:8.3f}" if value is not None else "       -"


def _default_model(backend: Any) -> str:
    if backend.kind == "embedded":
        from advisor.backends.embedded import DEFAULT_MODEL

        return DEFAULT_MODEL
    models = backend.list_models()
    if not models:
        raise InputError(f"the {backend.kind} server lists no models; pass --model NAME")
    return models[0]


@cli.command()
@click.argument("profile_path", metavar="PROFILE.yaml", type=click.Path(path_type=Path))
@click.option(
    "--json", "json_path", type=click.Path(path_type=Path), default=None, help="Write the recommendation JSON here."
)
@click.option(
    "--markdown", "md_path", type=click.Path(path_type=Path), default=None, help="Write the decision record here."
)
@click.option(
    "--csv", "csv_path", type=click.Path(path_type=Path), default=None, help="Write one CSV row per workflow here."
)
@click.option(
    "--calibration",
    "calibration_path",
    type=click.Path(path_type=Path),
    default=None,
    help="A calibrate --json report (overrides the profile's calibration:).",
)
def recommend(
    profile_path: Path,
    json_path: Path | None,
    md_path: Path | None,
    csv_path: Path | None,
    calibration_path: Path | None,
) -> None:
    """Recommend, per workflow, a local model or hosted routing, with a reason per lens."""
    from advisor.api import recommend_profile
    from advisor.profiles import load_calibration, load_profile
    from advisor.report import csv_rows, markdown_record, terminal_table

    for path, option in ((json_path, "--json"), (md_path, "--markdown"), (csv_path, "--csv")):
        if path:
            check_writable(path, option)
    profile = load_profile(profile_path)
    calibration = load_calibration(str(calibration_path)) if calibration_path else None
    result = recommend_profile(profile, calibration=calibration, base_dir=profile_path.parent)
    click.echo(terminal_table(result))
    if json_path:
        write_json(json_path, result)
    if md_path:
        _write_text(md_path, markdown_record(result, profile_source=str(profile_path)))
    if csv_path:
        _write_text(csv_path, csv_rows(result))


def _write_text(path: Path, text: str) -> None:
    write_atomic(path, text)


@cli.command("predict-speed")
@click.argument("input_csv", metavar="INPUT.csv", type=click.Path(path_type=Path))
@click.option("--out", "out_path", type=click.Path(path_type=Path), default=None, help="Output CSV (default: stdout).")
@click.option(
    "--measured",
    "measured_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Measured rows (same columns plus tg_tok_s, pp_tok_s): their hardware gets its own residual shift.",
)
def predict_speed(input_csv: Path, out_path: Path | None, measured_path: Path | None) -> None:
    """Predict decode and prefill tok/s with 80% intervals for each row of a CSV."""
    from advisor.api import knowledge, predictor
    from advisor.speedio import predict_csv

    if out_path:
        check_writable(out_path, "--out")
    text = predict_csv(input_csv, predictor(), knowledge(), measured_path=measured_path)
    if out_path:
        _write_text(out_path, text)
    else:
        click.echo(text, nl=False)


@cli.group("knowledge")
def knowledge_group() -> None:
    """Inspect the sourced knowledge base."""


@knowledge_group.command("validate")
@click.option(
    "--dir", "directory", type=click.Path(path_type=Path), default=None, help="Knowledge folder (default: ./knowledge)."
)
def knowledge_validate(directory: Path | None) -> None:
    """Validate every knowledge file; fails with the file, row and field on any error."""
    from advisor.knowledge import load_knowledge

    k = load_knowledge(directory or get_settings().knowledge_dir)
    click.echo(
        f"ok: {len(k.models)} models, {len(k.hardware)} hardware, {len(k.hosted)} hosted offers, "
        f"{len(k.speeds)} published speed measurements ({len(k.speeds) - len(k.training_speeds)} excluded, each with "
        f"its reason), {len(k.quantization)} quantization types"
    )
    for warning in k.warnings:
        click.echo(f"warning: {warning}", err=True)


@cli.command()
@click.option("--backend", "backend_kind", default=None, help="Also check a server: openai | ollama (with --url).")
@click.option("--url", default=None, help="The server URL to check.")
@click.option("--no-engine", is_flag=True, help="Skip the embedded llama.cpp check (a few seconds).")
def doctor(backend_kind: str | None, url: str | None, no_engine: bool) -> None:
    """Check this install: the engine decodes in a worker, the store and cache are writable, the predictor loads."""
    from advisor.doctor import passed, run_checks

    if url and backend_kind not in ("openai", "ollama"):
        raise InputError("--url needs --backend openai or --backend ollama")
    checks = run_checks(backend=backend_kind, url=url, engine=not no_engine, on_check=lambda c: click.echo(c.line()))
    if not passed(checks):
        failed = [c.name for c in checks if c.required and c.status == "fail"]
        raise AdvisorError(f"{len(failed)} required check(s) failed: {', '.join(failed)}")


@cli.command()
@click.option("--dir", "dirs", multiple=True, type=click.Path(path_type=Path), help="Also look in this folder.")
@click.option("--ollama-url", default=None, help="Ollama's URL (default http://127.0.0.1:11434).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def models(dirs: tuple[Path, ...], ollama_url: str | None, as_json: bool) -> None:
    """Models already on this machine (LM Studio and Hugging Face caches, your folders, Ollama), nothing downloaded."""
    from advisor.api import knowledge
    from advisor.discover import discover

    found = discover(extra_dirs=list(dirs), ollama_url=ollama_url, knowledge=knowledge())
    if as_json:
        click.echo(json.dumps([f.as_json() for f in found], indent=2))
        return
    if not found:
        click.echo("no GGUF files in the LM Studio or Hugging Face caches, and no Ollama answering; add --dir FOLDER")
        return
    for f in found:
        where = f.path or f"ollama: {f.name}"
        size = f"{f.size_gb:.2f} GB" if f.size_gb is not None else "?"
        click.echo(
            f"{f.source:<11} {f.catalog_id or '(not in the catalog)':<26} {f.quantization or '?':<8} {size:>9}  {where}"
        )
    click.echo(
        "\ncalibrate with one: python -m advisor calibrate --model PATH (embedded) or --backend ollama --model TAG"
    )


@cli.command()
def runs() -> None:
    """List past calibration runs from the store."""
    from advisor.store import MeasurementStore

    store = MeasurementStore(get_settings().store_path)
    for run in store.runs():
        state = "complete" if run["complete"] else "incomplete"
        click.echo(f"{run['run_id']}  {run['backend']:<9} {run['measurements']:>4} measurements  {state}")


def main() -> None:
    """Entry point: AdvisorErrors and usage errors print one line and exit non-zero."""
    try:
        cli.main(standalone_mode=False)
    except AdvisorError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted; measurements so far are in the store", err=True)
        sys.exit(130)
