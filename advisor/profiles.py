"""Profile YAML in and out: every invalid field reported at once, with its path and what is allowed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from advisor.errors import InputError
from advisor.schemas import Profile, format_validation_error


def parse_profile(text: str, *, source: str) -> Profile:
    """A Profile from YAML text; errors name the source, the line or every bad field."""
    try:
        raw = yaml.safe_load(text)
    except yaml.reader.ReaderError as exc:  # a control character: binary data, or text in another encoding
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        raise InputError(
            f"{source}: character {exc.position + 1} is the control character {char}, which YAML does not allow; "
            "a profile is plain UTF-8 text (is this a binary file?)"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise InputError(f"{source}: not valid YAML{where}: {problem}; fix the indentation or quoting there") from None
    if not isinstance(raw, dict):
        raise InputError(
            f"{source}: a profile is a YAML mapping with a 'workflows' list (see knowledge/profiles/ for examples)"
        )
    try:
        return Profile.model_validate(raw)
    except ValidationError as exc:
        raise InputError(format_validation_error(exc, source=source)) from None


def load_profile(path: Path) -> Profile:
    """Read a profile file."""
    return parse_profile(read_text_file(path, what="profile", fix="save it as UTF-8 YAML"), source=str(path))


def read_text_file(path: Path, *, what: str, fix: str) -> str:
    """A UTF-8 text file's contents; unreadable, binary or non-UTF-8 files are an InputError naming the file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{what} '{path}' cannot be read ({exc.strerror}); check the path") from None
    if b"\x00" in data:
        raise InputError(f"{what} '{path}' is a binary file, not text; {fix}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} '{path}' is not UTF-8 text (byte {exc.start + 1} is invalid); {fix}") from None


def dump_profile(profile: Profile) -> str:
    """YAML for saving a profile (the app's save format), without empty optional fields."""
    data = json.loads(profile.model_dump_json(exclude_none=True))
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


MAX_RATE_TPS = 1e6  # tokens per second: no runtime comes near this on any hardware
MAX_SECONDS = 1e6  # a measured duration of more than ~11 days is not a measurement

Amount = Annotated[float, Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False)]
Rate = Annotated[float, Field(ge=0, le=MAX_RATE_TPS, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0)]


class _Loose(BaseModel):
    """A report section: the fields the advisor reads are checked, anything else is kept as it is."""

    model_config = ConfigDict(extra="allow")


class _Spread(_Loose):
    median: Amount
    p25: Amount | None = None
    p75: Amount | None = None
    min: Amount | None = None
    max: Amount | None = None
    n: Count | None = None


class _RateSpread(_Spread):
    median: Rate
    p25: Rate | None = None
    p75: Rate | None = None
    min: Rate | None = None
    max: Rate | None = None


class _Probe(_Loose):
    ttft_s: _Spread | None = None
    prefill_tps: _RateSpread | None = None
    decode_tps: _RateSpread | None = None
    counter_decode_tps: _RateSpread | None = None
    tpot_ms: _Spread | None = None
    e2e_s: _Spread | None = None
    prompt_tokens: Amount | None = None


class _Tasks(_Loose):
    attempts: Count = 0
    successes: Count = 0
    success_rate: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] | None = None
    seconds_per_accepted: Amount | None = None
    tokens_per_accepted: Amount | None = None

    @model_validator(mode="after")
    def _successes_within_attempts(self) -> _Tasks:
        if self.successes > self.attempts:
            raise ValueError(f"successes ({self.successes}) cannot exceed attempts ({self.attempts})")
        return self


class _ModelSummary(_Loose):
    model: Annotated[str, Field(min_length=1)]
    quantization: str | None = None
    params_b: Annotated[float, Field(gt=0, le=1e5, allow_inf_nan=False)] | None = None
    size_bytes: Count | None = None
    load_s: Amount | None = None
    speed: dict[str, _Probe] = {}
    tasks: _Tasks = _Tasks()


class _Backend(_Loose):
    kind: str


class _BandwidthProbe(_Loose):
    bandwidth_gbs: Annotated[float, Field(gt=0, le=1e5, allow_inf_nan=False)]
    method: str


class _CalibrationReport(_Loose):
    run_id: str
    backend: _Backend
    hardware: dict[str, Any] = {}
    bandwidth_probe: _BandwidthProbe | None = None
    models: list[_ModelSummary] = []
    measurements: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    complete: bool = False


def _no_constants(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON; write a number or null")


def load_calibration(reference: str, *, relative_to: Path | None = None) -> dict[str, Any]:
    """A calibration report written by `calibrate --json`; a missing, foreign or malformed file is named with the fix."""
    path = Path(reference).expanduser()
    if not path.is_absolute() and relative_to is not None:
        path = relative_to / path
    rerun = f"re-run: python -m advisor calibrate --quick --json {path}"
    if not path.exists():
        raise InputError(f"calibration file '{path}' does not exist; {rerun}")
    text = read_text_file(path, what="calibration file", fix=rerun)
    try:
        report = json.loads(text, parse_constant=_no_constants)
    except ValueError as exc:
        raise InputError(f"calibration file '{path}' is not readable JSON ({exc}); {rerun}") from None
    if not isinstance(report, dict) or report.get("schema") != "decision-lens/calibration/v1":
        raise InputError(
            f"calibration file '{path}' is not a Decision Lens calibration report (schema decision-lens/calibration/v1)"
        )
    try:
        _CalibrationReport.model_validate(report)
    except ValidationError as exc:
        source = f"calibration file '{path}'"
        raise InputError(format_validation_error(exc, source=source) + f"\n  {rerun}") from None
    return report
