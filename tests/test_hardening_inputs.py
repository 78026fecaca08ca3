"""Bad inputs at the edges that are not HTTP or SQLite: settings, profile files, calibration JSON, app config."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest

from advisor.backends.openai_compat import OpenAICompatBackend
from advisor.calibrate import calibrate, load_suite
from advisor.errors import InputError
from advisor.profiles import load_calibration, load_profile
from advisor.settings import DEFAULT_SUITE, REPO_ROOT, get_settings

# --- ADVISOR_TIMEOUT_S --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["abc", "0", "-5", "inf", "-inf", "nan", "1e308", "60s"])
def test_an_invalid_timeout_setting_is_a_bad_input_naming_the_variable_and_the_fix(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADVISOR_TIMEOUT_S", value)
    with pytest.raises(InputError) as caught:
        get_settings()
    message = str(caught.value)
    assert message.startswith(f"ADVISOR_TIMEOUT_S={value!r}") and "positive number of seconds" in message
    assert "unset it" in message and "\n" not in message


@pytest.mark.parametrize(("value", "seconds"), [(None, 60.0), ("", 60.0), ("30", 30.0), (" 2.5 ", 2.5)])
def test_a_valid_or_unset_timeout_setting_is_used(
    value: str | None, seconds: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    if value is None:
        monkeypatch.delenv("ADVISOR_TIMEOUT_S", raising=False)
    else:
        monkeypatch.setenv("ADVISOR_TIMEOUT_S", value)
    assert get_settings().timeout_s == seconds


# --- profile files that are not text -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is a binary file"),
        ("workflows:\n  - name: caf\xe9\n".encode("latin-1"), "is not UTF-8 text (byte 25 is invalid)"),
        (b"workflows: []\n\x07\n", "control character U+0007"),
    ],
    ids=["binary", "latin-1", "control-character"],
)
def test_a_profile_that_is_not_utf8_text_is_a_bad_input_naming_the_file(
    content: bytes, says: str, tmp_path: Path
) -> None:
    path = tmp_path / "profile.yaml"
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        load_profile(path)
    message = str(caught.value)
    assert str(path) in message and says in message and "\n" not in message


def test_a_profile_with_a_byte_order_mark_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "profile.yaml"
    body = "workflows:\n  - {name: a, task: chat, data_sensitivity: public, iteration: prototype,\n"
    body += "     latency_budget_s: 5, requests_per_day: 10, input_tokens: 100, output_tokens: 50}\n"
    path.write_bytes(b"\xef\xbb\xbf" + body.encode())
    assert load_profile(path).workflows[0].name == "a"


# --- calibration JSON with the wrong shape -----------------------------------------------------------

BASE: dict[str, Any] = {"schema": "decision-lens/calibration/v1", "run_id": "r1", "backend": {"kind": "openai"}}


def write(tmp_path: Path, report: dict[str, Any] | bytes) -> Path:
    path = tmp_path / "cal.json"
    path.write_bytes(report if isinstance(report, bytes) else json.dumps(report).encode())
    return path


@pytest.mark.parametrize(
    ("report", "field"),
    [
        ({**BASE, "models": "x"}, "models: Input should be a valid list"),
        ({**BASE, "measurements": {"a": 1}}, "measurements: Input should be a valid list"),
        ({**BASE, "models": ["m1"]}, "models.0: Input should be a valid dictionary"),
        ({**BASE, "models": [{"speed": {}}]}, "models.0.model: required field is missing"),
        ({**BASE, "models": [{"model": "m", "speed": []}]}, "models.0.speed: Input should be a valid dictionary"),
        (
            {**BASE, "models": [{"model": "m", "speed": {"decode@64": {"decode_tps": {"median": 1e300}}}}]},
            "models.0.speed.decode@64.decode_tps.median: Input should be less than or equal to 1000000",
        ),
        (
            {**BASE, "models": [{"model": "m", "speed": {"decode@64": {"decode_tps": 40}}}]},
            "models.0.speed.decode@64.decode_tps: Input should be a valid dictionary",
        ),
        ({**BASE, "models": [{"model": "m", "tasks": {"attempts": 1, "successes": 3}}]}, "cannot exceed attempts"),
        ({**BASE, "backend": "openai"}, "backend: Input should be a valid dictionary"),
        ({k: v for k, v in BASE.items() if k != "run_id"}, "run_id: required field is missing"),
    ],
    ids=[
        "models-string",
        "measurements-object",
        "model-string",
        "model-name-missing",
        "speed-list",
        "absurd-rate",
        "rate-not-spread",
        "successes-over-attempts",
        "backend-string",
        "run-id-missing",
    ],
)
def test_a_calibration_file_of_the_wrong_shape_names_the_file_and_field(
    report: dict[str, Any], field: str, tmp_path: Path
) -> None:
    path = write(tmp_path, report)
    with pytest.raises(InputError) as caught:
        load_calibration(str(path))
    message = str(caught.value)
    assert f"calibration file '{path}'" in message and field in message and "calibrate --quick --json" in message


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b'{"schema": "decision-lens/calibration/v1", "x": NaN}', "NaN is not valid JSON"),
        (b"\x00\x01binary", "is a binary file"),
        ('{"schema": "caf\xe9"}'.encode("latin-1"), "is not UTF-8 text"),
    ],
    ids=["nan", "binary", "latin-1"],
)
def test_a_calibration_file_that_is_not_clean_json_text_is_a_bad_input(
    content: bytes, says: str, tmp_path: Path
) -> None:
    path = write(tmp_path, content)
    with pytest.raises(InputError, match=says) as caught:
        load_calibration(str(path))
    assert str(path) in str(caught.value)


def test_a_report_calibrate_writes_passes_the_shape_check(tmp_path: Path) -> None:
    """The check accepts what the real calibration writes (a replayed server, so no model is needed)."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"data": [{"id": "smollm2-135m-q4"}]})
        if request.url.path.endswith("/chat/completions"):
            chunks = [{"choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}]} for w in "ab"]
            chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            chunks.append({"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 2}})
            body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
            return httpx.Response(200, content=body.encode(), headers={"content-type": "text/event-stream"})
        return httpx.Response(404)

    backend = OpenAICompatBackend("http://replay.test/v1", transport=httpx.MockTransport(handler))
    try:
        report = calibrate(
            backend, ["smollm2-135m-q4"], load_suite(DEFAULT_SUITE), hardware={"fingerprint": "fp"}, quick=True
        )
    finally:
        backend.close()
    assert report["models"] and report["measurements"]
    path = write(tmp_path, json.loads(json.dumps(report)))
    assert load_calibration(str(path))["run_id"] == report["run_id"]


# --- the app stays on this machine -----------------------------------------------------------------------


def test_streamlit_listens_on_loopback_and_sends_nothing_out() -> None:
    config = tomllib.loads((REPO_ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["server"]["address"] == "127.0.0.1"  # also stops the headless start-up public-IP lookup
    assert config["server"]["showEmailPrompt"] is False
    assert config["server"]["enableStaticServing"] is False
    assert config["browser"]["gatherUsageStats"] is False
    assert config["browser"]["serverAddress"] == "127.0.0.1"
