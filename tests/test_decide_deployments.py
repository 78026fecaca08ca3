"""Issue 14: deployments, not one process — what to launch, multi-GPU rigs, batching servers and MLX."""

from __future__ import annotations

import math
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


def no_serving_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plan as if no batching server were available: llama.cpp (with parallel slots) only."""
    monkeypatch.setattr("advisor.decide.engine.serving_quants", lambda accelerator: ())


def check_commands(locals_: list[dict[str, Any]]) -> None:
    """Every command parses and carries the context (4,000 + 800 -> 5,120 per request) and the quantization."""
    for option in locals_:
        launch = option["launch"]
        assert set(launch) == {"engine", "command", "settings"}
        args = shlex.split(launch["command"])
        assert launch["settings"]["quantization"] == option["quantization"]
        if launch["engine"] == "llama.cpp":
            assert args[0] == "llama-server" and option["quantization"] in flag(args, "-m")
            slots = int(flag(args, "--parallel"))
            assert int(flag(args, "-c")) == 5120 * slots
            assert int(flag(args, "-ngl")) >= 1
            assert slots > 1  # 20,000 requests a day of ~10 s each keep several in flight
        else:
            assert launch["engine"] == "vllm" and args[:2] == ["vllm", "serve"]
            assert int(flag(args, "--max-model-len")) == 5120
            assert flag(args, "--tensor-parallel-size") == "2"
            assert int(flag(args, "--max-num-seqs")) == option["serving"]["max_concurrency_per_machine"]
            quant = {"FP8": "fp8", "AWQ-4bit": "awq"}.get(option["quantization"])
            assert (flag(args, "--quantization") if "--quantization" in args else None) == quant


def test_every_local_option_names_a_command_that_parses(
    knowledge: Knowledge, predictor: SpeedPredictor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 3: llama.cpp's command carries the context (times the slots), the quantization in the file name, every
    layer on the GPU and parallel slots from the volume; vLLM's the context, the rig's devices as tensor parallel,
    max sequences from the volume and its quantization flag."""
    text = (PROFILES / "rig-2x3090.yaml").read_text().replace("requests_per_day: 300", "requests_per_day: 20000")
    served = local_entries(run(text, knowledge, predictor)["workflows"][0])
    assert any(o["launch"]["engine"] == "vllm" for o in served)
    check_commands(served)
    no_serving_engine(monkeypatch)
    locals_ = local_entries(run(text, knowledge, predictor)["workflows"][0])
    assert locals_ and all(o["launch"]["engine"] == "llama.cpp" for o in locals_)
    check_commands(locals_)
    spec = knowledge.model(locals_[0]["model"])
    assert spec is not None and spec.layers
    assert int(flag(shlex.split(locals_[0]["launch"]["command"]), "-ngl")) == spec.layers


def test_slots_follow_the_volume(
    knowledge: Knowledge, predictor: SpeedPredictor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trickle of requests needs one slot; the context is the workflow's, rounded up to 1,024."""
    no_serving_engine(monkeypatch)
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
def test_a_two_card_rig_fits_what_one_card_cannot(
    name: str, knowledge: Knowledge, predictor: SpeedPredictor, monkeypatch: pytest.MonkeyPatch
) -> None:
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
    served = rig["workflows"][0]["choice"]
    assert served["runtime"] == "vllm"  # both cards hold one vLLM server (tensor parallel 2)
    assert served["rig"]["label"] == "assumed" and served["rig"]["split"] == "tensor"  # no sourced TP figure
    no_serving_engine(monkeypatch)  # the layer-split factor is llama.cpp's (vLLM's tensor parallel: item 1)
    entry = run(text.replace("name: 2x RTX 3090", f"name: {name}"), knowledge, predictor)["workflows"][0]
    assert entry["choice"]["kind"] == "local"
    assert entry["choice"]["rig"]["label"] in ("published", "assumed") and entry["choice"]["rig"]["basis"]
    assert entry["choice"]["rig"]["decode_factor"] < 1
    assert "rig" in entry["predicted"]["labels"]["decode_tps"]
    assert "--tensor-split" in entry["choice"]["launch"]["command"]


def test_an_nvlink_rig_factor_is_assumed(
    knowledge: Knowledge, predictor: SpeedPredictor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No sourced NVLink layer-split figure: the factor is the PCIe one, and says it is assumed."""
    no_serving_engine(monkeypatch)
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


# --- item 1: serving engines -------------------------------------------------------------------------------


def h100(requests_per_day: int = 200_000, utilization: float = 0.6) -> str:
    text = (PROFILES / "h100-team-server.yaml").read_text()
    text = text.replace("requests_per_day: 200000", f"requests_per_day: {requests_per_day}")
    return text.replace("utilization_target: 0.6", f"utilization_target: {utilization}")


def batching_machines(entry: dict[str, Any], requests_per_day: int, utilization: float) -> int:
    machine_s = entry["choice"]["serving"]["machine_s_per_request"]
    return max(1, math.ceil(requests_per_day * machine_s / (86_400 * utilization) - 1e-3))


def test_an_h100_team_server_is_planned_with_batching(
    knowledge: Knowledge, predictor: SpeedPredictor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """200k/day on an H100: a vLLM option wins; its machines come from batched throughput (Little's law) at the
    utilisation target, fewer than llama.cpp at batch 1 needs; its figures are predicted from a sourced sweep."""
    entry = run(h100(), knowledge, predictor)["workflows"][0]
    choice = entry["choice"]
    assert entry["decision"] == "local" and choice["runtime"] == "vllm"
    serving = choice["serving"]
    assert serving["label"] == "predicted" and serving["source"].startswith("https://")
    assert 1 <= serving["concurrency"] <= serving["max_concurrency_per_machine"]
    assert serving["per_request_decode_tps"] <= serving["batch1_decode_tps"] + 1e-6  # never faster than alone
    assert serving["aggregate_output_tok_s"] > serving["batch1_decode_tps"]  # batching buys throughput
    assert choice["quantization"] in ("BF16", "FP8", "AWQ-4bit")
    assert entry["cost"]["machines"] == batching_machines(entry, 200_000, 0.6)
    busy = run(h100(5_000_000), knowledge, predictor)["workflows"][0]
    assert busy["cost"]["machines"] == batching_machines(busy, 5_000_000, 0.6) > 1
    assert any("with batching" in w for w in busy["warnings"])
    tight = run(h100(5_000_000, 0.3), knowledge, predictor)["workflows"][0]
    assert tight["cost"]["machines"] > busy["cost"]["machines"]  # the utilisation target sizes the fleet
    no_serving_engine(monkeypatch)
    batch1 = run(h100(), knowledge, predictor)["workflows"][0]
    assert "serving" not in batch1["choice"]
    assert batch1["cost"]["machines"] > entry["cost"]["machines"]
    assert run(h100(5_000_000), knowledge, predictor)["workflows"][0]["cost"]["machines"] > busy["cost"]["machines"]


def test_mlx_on_apple_and_no_serving_engine_there(knowledge: Knowledge, predictor: SpeedPredictor) -> None:
    """MLX (mlx-lm) is a candidate on Apple, predicted from the predictor's mlx backend rows; no vLLM there."""
    entry = run_file("judge-panel-m4-pro.yaml", knowledge, predictor)["workflows"][0]
    options = [c["option"] for c in entry["candidates"]]
    assert any(o.endswith(" on mlx") for o in options) and not any(o.endswith(" on vllm") for o in options)
    mlx = next(o for o in local_entries(entry) if o["runtime"] == "mlx")
    assert mlx["quantization"].startswith("MLX-") and mlx["label"] == "predicted"
    assert shlex.split(mlx["launch"]["command"])[0] == "mlx_lm.server"
    assert mlx["quantization"].removeprefix("MLX-") in mlx["launch"]["command"]
    runtimes = {r["runtime"] for r in mlx["runtime_comparison"]}
    assert {"mlx", "llama.cpp"} <= runtimes  # compared with the same model at the comparable GGUF quantization


def test_a_measured_concurrency_sweep_is_used_for_that_server(knowledge: Knowledge) -> None:
    """The user's sweep (calibration key `concurrency`) replaces the published curve for the model it served."""
    from advisor.decide.capability import CapabilityScale
    from advisor.decide.catalog import load_catalog
    from advisor.decide.costs import Site
    from advisor.decide.options import Context
    from advisor.decide.serving import serving_options
    from advisor.schemas import Costs, Hardware, Workflow
    from advisor.settings import KNOWLEDGE_DIR

    calibration = {
        "run_id": "run-sweep",
        "backend": {"kind": "openai"},
        "models": [
            {
                "model": "Qwen3-8B",
                "quantization": "Q4_K_M",
                "size_bytes": 5_000_000_000,
                "speed": {
                    "decode_128": {"decode_tps": {"median": 150.0, "p25": 148.0, "p75": 152.0}},
                    "prefill_1024": {"prefill_tps": {"median": 6000.0}, "prompt_tokens": 1024},
                },
            }
        ],
        "concurrency": [
            {"concurrency": 1, "throughput_tok_s": 140.0, "tpot_p50_ms": 6.7, "goodput_rps": 1.0},
            {"concurrency": 4, "throughput_tok_s": 520.0, "tpot_p50_ms": 7.5, "goodput_rps": 3.5},
            {"concurrency": 16, "throughput_tok_s": 1500.0, "tpot_p50_ms": 10.0, "goodput_rps": 9.0},
            {"concurrency": 32, "throughput_tok_s": 1400.0, "tpot_p50_ms": 22.0, "goodput_rps": 6.0},
        ],
    }
    workflow = Workflow(name="w", requests_per_day=500_000, input_tokens=500, output_tokens=200, latency_budget_s=30)
    hw = Hardware(name="NVIDIA H100 SXM", accelerator="nvidia", memory_gb=80, memory_bandwidth_gbs=3352)
    site = Site(Costs(), 27_500.0, 700.0)
    ctx = Context(
        workflow, knowledge, CapabilityScale(knowledge), load_catalog(KNOWLEDGE_DIR), site, 80.0, 80.0, hardware=hw
    )
    options, _ = serving_options(ctx, {}, calibration)
    assert len(options) == 1
    server = options[0]
    info = dict(server.serving or ())
    assert info["label"] == "measured" and server.decode_label == "measured" and "run-sweep" in str(info["source"])
    assert info["concurrency"] == 16  # the volume fills the measured peak; never the slower 32
    assert info["aggregate_output_tok_s"] == pytest.approx(1500.0, rel=0.01)
    assert server.machine_s == pytest.approx(server.e2e_s / 16, rel=1e-3)
    assert server.local_busy_s < server.e2e_s  # requests share the server
