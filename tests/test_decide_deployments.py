"""Issue 14: deployments, not one process — what to launch, multi-GPU rigs, batching servers and MLX."""

from __future__ import annotations

import shlex
from typing import Any

from advisor.knowledge import Knowledge
from advisor.predict import SpeedPredictor
from advisor.profiles import parse_profile
from advisor.recommend import recommend
from advisor.settings import BENCHMARKS_DIR

PROFILES = BENCHMARKS_DIR / "profiles"
DETECTED_CPU = {
    "hardware": {"name": "Test CPU", "accelerator": "cpu", "memory_gb": 24.0, "system_ram_gb": 32.0},
    "how": {},
    "notes": [],
    "fingerprint": "hw-test",
}


def run(text: str, knowledge: Knowledge, predictor: SpeedPredictor) -> dict[str, Any]:
    return recommend(parse_profile(text, source="test"), knowledge, predictor, DETECTED_CPU)


def run_file(name: str, knowledge: Knowledge, predictor: SpeedPredictor) -> dict[str, Any]:
    return run((PROFILES / name).read_text(), knowledge, predictor)


def local_entries(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The choice and every alternative that runs here (hybrid routes name their local leg's launch)."""
    out = [entry["choice"]] if entry["choice"] and entry["choice"]["kind"] != "hosted" else []
    return out + [a for a in entry["alternatives"] if a["kind"] != "hosted"]


def flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_every_local_option_names_a_command_that_parses(knowledge: Knowledge, predictor: SpeedPredictor) -> None:
    """Item 3: the llama.cpp command carries the workflow's context (input + output, rounded up, times the slots),
    the quantization in the file name, every layer on the GPU, and parallel slots from the volume."""
    result = run_file("high-volume-classification.yaml", knowledge, predictor)
    entry = result["workflows"][0]
    locals_ = local_entries(entry)
    assert locals_
    for option in locals_:
        launch = option["launch"]
        assert set(launch) == {"engine", "command", "settings"}
        args = shlex.split(launch["command"])
        assert launch["settings"]["quantization"] == option["quantization"]
        if launch["engine"] == "llama.cpp":
            assert args[0] == "llama-server" and option["quantization"] in flag(args, "-m")
            slots = int(flag(args, "--parallel"))
            assert int(flag(args, "-c")) == 1024 * slots  # 300 + 3 tokens -> 1024 per slot
            assert int(flag(args, "-ngl")) >= 1
            assert slots > 1  # a million a day keeps more than one request in flight
        elif launch["engine"] in ("vllm", "sglang"):
            assert int(flag(args, "--max-model-len")) == 1024
    llama = next(o for o in locals_ if o["launch"]["engine"] == "llama.cpp")
    spec = knowledge.model(llama["model"])
    assert (
        spec is not None and spec.layers and int(flag(shlex.split(llama["launch"]["command"]), "-ngl")) == spec.layers
    )


def test_slots_follow_the_volume(knowledge: Knowledge, predictor: SpeedPredictor) -> None:
    """A trickle of requests needs one slot; the context is the workflow's, rounded up to 1,024."""
    text = (PROFILES / "high-volume-classification.yaml").read_text()
    text = text.replace("requests_per_day: 1000000", "requests_per_day: 10").replace(
        "input_tokens: 300", "input_tokens: 1500"
    )
    entry = run(text, knowledge, predictor)["workflows"][0]
    llama = next(o for o in local_entries(entry) if o["launch"]["engine"] == "llama.cpp")
    args = shlex.split(llama["launch"]["command"])
    assert flag(args, "--parallel") == "1" and flag(args, "-c") == "2048"
