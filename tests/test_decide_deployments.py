"""Issue 14: deployments, not one process — what to launch, multi-GPU rigs, batching servers and MLX."""

from __future__ import annotations

import shlex
from typing import Any

import pytest

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
    text = (PROFILES / "rig-2x3090.yaml").read_text().replace("requests_per_day: 300", "requests_per_day: 20000")
    entry = run(text, knowledge, predictor)["workflows"][0]
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
            assert int(flag(args, "-c")) == 5120 * slots  # 4,000 + 800 tokens -> 5,120 per slot
            assert int(flag(args, "-ngl")) >= 1
            assert slots > 1  # 20,000 requests a day of ~10 s each keep several in flight
        elif launch["engine"] in ("vllm", "sglang"):
            assert int(flag(args, "--max-model-len")) == 5120
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


def memory_exclusions(result: dict[str, Any]) -> set[str]:
    return {e["model"] for e in result["workflows"][0]["excluded"] if "GB usable" in e["reason"]}


@pytest.mark.parametrize("name", ["2x RTX 3090", "2 x RTX 3090", "dual RTX 3090"])
def test_a_two_card_rig_fits_what_one_card_cannot(name: str, knowledge: Knowledge, predictor: SpeedPredictor) -> None:
    """Item 2: the name is read as two catalog RTX 3090s; memory summed less a per-device overhead; models one
    24 GB card cannot hold are candidates; the decode factor for the layer split is labelled and sourced."""
    text = (PROFILES / "rig-2x3090.yaml").read_text()
    rig = run(text.replace("name: 2x RTX 3090", f"name: {name}"), knowledge, predictor)
    single = run(text.replace("name: 2x RTX 3090", "name: RTX 3090"), knowledge, predictor)
    assert rig["hardware"]["used"]["count"] == 2 and rig["hardware"]["used"]["interconnect"] == "pcie"
    assert rig["hardware"]["used"]["memory_bandwidth_gbs"] == 936  # the catalog card's, not a made-up rig figure
    assert single["hardware"]["usable_memory_gb"] == 24 and rig["hardware"]["usable_memory_gb"] == 47.5
    only_on_one_card = memory_exclusions(single) - memory_exclusions(rig)
    assert only_on_one_card  # e.g. a 31B at Q8_0: excluded on one card, a candidate on two
    assert "x 2" in rig["hardware"]["cost_basis"]["hardware_usd"]  # two cards bought
    entry = rig["workflows"][0]
    assert entry["choice"]["kind"] == "local"
    assert entry["choice"]["rig"]["label"] in ("published", "assumed") and entry["choice"]["rig"]["basis"]
    assert entry["choice"]["rig"]["decode_factor"] < 1
    assert "rig" in entry["predicted"]["labels"]["decode_tps"]
    assert "--tensor-split" in entry["choice"]["launch"]["command"]


def test_an_nvlink_rig_factor_is_assumed(knowledge: Knowledge, predictor: SpeedPredictor) -> None:
    """No sourced NVLink layer-split figure: the factor is the PCIe one, and says it is assumed."""
    text = (
        (PROFILES / "rig-2x3090.yaml")
        .read_text()
        .replace("accelerator: nvidia", "accelerator: nvidia\n  interconnect: nvlink")
    )
    entry = run(text, knowledge, predictor)["workflows"][0]
    assert (
        entry["choice"]["rig"]["label"] == "assumed"
        and entry["predicted"]["labels"]["decode_tps"]["label"] == "assumed"
    )
