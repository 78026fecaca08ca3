"""The machine a plan is for: detection or the profile, catalog facts, usable memory, power and price."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from advisor.decide.catalog import DecisionCatalog
from advisor.decide.costs import ASSUMED_HARDWARE_USD
from advisor.knowledge import Knowledge, hardware_tokens
from advisor.schemas import Costs, Hardware

# Assumptions used only where knowledge/ has no figure; every use is labelled "assumed" in the output.
ASSUMED_POWER_W = {"nvidia": 350.0, "amd": 300.0, "intel": 200.0, "apple": 60.0, "cpu": 65.0}
APPLE_GPU_WIRED_FRACTION = 0.75  # Metal wires ~75% of unified memory by default (iogpu.wired_limit_mb raises it)
RIG_OVERHEAD_GB_PER_EXTRA_DEVICE = 0.5  # assumed: each extra device holds its own compute buffers and context
COMPUTE_HEADROOM = 0.05  # assumed: compute buffers grow with the model and context; 5% of what it needs is kept free


# llama.cpp's default multi-GPU mode splits layers across devices (pipeline): each token still reads every weight
# once, at one device's bandwidth at a time, plus a hand-off per device. Published: an 8B model on RTX 3090s over
# PCIe, 111.7 tok/s on one card, 108.1 on two, 104.9 on four, 101.1 on six (layer split).
RIG_SOURCE_URL = "https://insiderllm.com/guides/multi-gpu-local-ai"
RIG_SOURCE_DATE = "2026-12"  # retrieval date (the page shows none)
RIG_LAYER_SPLIT_DECODE = {2: 108.1 / 111.7, 4: 104.9 / 111.7, 6: 101.1 / 111.7}
RIG_NAME = re.compile(r"^\s*(?:(\d+)\s*[x×]\s*|(dual|twin|quad)\s+)(.+)$", re.IGNORECASE)
RIG_WORDS = {"dual": 2, "twin": 2, "quad": 4}


@dataclass(frozen=True)
class RigFactor:
    """The decode-speed factor of a multi-device rig against one device, with its label and source."""

    devices: int
    interconnect: str
    split: str
    decode_factor: float
    label: str  # published | assumed
    basis: str

    def as_json(self) -> dict[str, object]:
        return {
            "devices": self.devices,
            "interconnect": self.interconnect,
            "split": self.split,
            "decode_factor": round(self.decode_factor, 3),
            "label": self.label,
            "basis": self.basis,
        }


def rig_from_name(name: str | None) -> tuple[int, str] | None:
    """'2x RTX 3090', '2 x RTX 3090', 'dual RTX 3090' -> (2, 'RTX 3090'); None when the name has no count."""
    found = RIG_NAME.match(name or "")
    if not found:
        return None
    count = int(found.group(1)) if found.group(1) else RIG_WORDS[found.group(2).lower()]
    return count, found.group(3).strip()


def layer_split_factor(hw: Hardware) -> RigFactor | None:
    """llama.cpp / Ollama on a rig: layers split across the devices; decode slightly below one device's rate."""
    count = hw.count or 1
    if count <= 1:
        return None
    link = hw.interconnect or "pcie"
    known = max((n for n in RIG_LAYER_SPLIT_DECODE if n <= count), default=2)
    factor = RIG_LAYER_SPLIT_DECODE[known]
    if link == "pcie" and known == count:
        return RigFactor(
            count,
            link,
            "layer",
            factor,
            "published",
            f"layer split over PCIe: {count} RTX 3090s decoded an 8B model at {factor:.1%} of one card's rate "
            f"({RIG_SOURCE_URL}, {RIG_SOURCE_DATE})",
        )
    return RigFactor(
        count,
        link,
        "layer",
        factor,
        "assumed",
        f"assumed {factor:.1%} of one device's decode rate: the published layer-split figure for {known} devices over "
        f"PCIe ({RIG_SOURCE_URL}, {RIG_SOURCE_DATE}); a layer split passes only activations between devices, so "
        f"{link} is assumed to change it little",
    )


def is_this_machine(given_fields: dict[str, Any], detected: Hardware) -> bool:
    """The profile describes this machine unless it names another accelerator kind or another device."""
    if given_fields.get("accelerator", detected.accelerator) != detected.accelerator:
        return False
    name = given_fields.get("name")
    if name and detected.name:
        return hardware_tokens(name) == hardware_tokens(detected.name)
    return True


def resolve_hardware(
    given: Hardware | None, detected: dict[str, Any], knowledge: Knowledge, calibration: dict[str, Any] | None
) -> tuple[Hardware, dict[str, Any]]:
    """Detected hardware with the profile's fields on top; empty facts filled from the catalog or the probe.

    A profile naming another machine (another kind of accelerator, or another device name) plans for that
    machine: nothing detected or probed here is used, and this machine's calibration does not apply.
    """
    detected_hw = Hardware.model_validate(detected["hardware"])
    given_fields = given.model_dump(exclude_none=True) if given else {}
    same_machine = is_this_machine(given_fields, detected_hw)
    base = detected_hw if same_machine else Hardware()
    how = dict(detected.get("how", {})) if same_machine else {}
    notes = list(detected.get("notes", [])) if same_machine else []
    hw = base.model_copy(update=given_fields)
    for key in given_fields:
        how[key] = "given in the profile"
    rig = rig_from_name(hw.name)
    if rig and hw.count is None:
        hw = hw.model_copy(update={"count": rig[0]})
        how["count"] = f"read from the name '{hw.name}'"
    if (hw.count or 1) > 1 and hw.interconnect is None:
        hw = hw.model_copy(update={"interconnect": "pcie"})
        how["interconnect"] = "assumed pcie (set hardware.interconnect: nvlink if the devices are bridged)"
    device_name = rig[1] if rig else hw.name
    catalog = knowledge.hardware_named(device_name or "") if device_name else None
    if catalog and hw.accelerator is None and catalog.get("type"):
        hw = hw.model_copy(update={"accelerator": catalog["type"]})
        how["accelerator"] = f"knowledge/hardware.csv '{catalog['name']}' ({catalog['source_url']})"
    if catalog:
        fills = {"memory_bandwidth_gbs": "memory_bandwidth_gbs", "power_w": "power_w", "fp16_tflops": "fp16_tflops"}
        if hw.accelerator != "apple" and hw.accelerator != "cpu":
            fills["memory_gb"] = "memory_gb"
        for field_name, col in fills.items():
            if getattr(hw, field_name) is None and catalog.get(col) is not None:
                hw = hw.model_copy(update={field_name: catalog[col]})
                how[field_name] = f"knowledge/hardware.csv '{catalog['name']}' ({catalog['source_url']})"
    probe = (calibration or {}).get("bandwidth_probe") if same_machine else None
    if hw.memory_bandwidth_gbs is None and probe and hw.accelerator == "cpu":
        hw = hw.model_copy(update={"memory_bandwidth_gbs": probe["bandwidth_gbs"]})
        how["memory_bandwidth_gbs"] = f"measured: {probe['method']}"
    # Detection notes about facts that are now known would only confuse the record.
    notes = [n for n in notes if not (n.startswith("power draw unknown") and hw.power_w)]
    notes = [n for n in notes if not (n.startswith("memory bandwidth unknown") and hw.memory_bandwidth_gbs)]
    usable, usable_how = usable_memory_gb(hw, memory_detected="memory_gb" not in given_fields and same_machine)
    if hw.memory_gb is None:
        notes.append("memory for weights unknown: memory fit is not checked; set hardware.memory_gb")
    if hw.memory_bandwidth_gbs is None:
        notes.append(
            "memory bandwidth unknown: local speeds cannot be predicted; run calibrate or set hardware.memory_bandwidth_gbs"
        )
    info = {
        "used": hw.model_dump(),
        "source": "given" if given_fields else "detected",
        "how": how,
        "notes": notes,
        "calibration_applies": bool(calibration) and same_machine,
        "usable_memory_gb": usable,
        "usable_memory_how": usable_how,
    }
    return hw, info


def usable_memory_gb(hw: Hardware, *, memory_detected: bool) -> tuple[float | None, str]:
    """Memory the weights may use: Apple's GPU-wired share, summed over a rig's devices less per-device overhead.

    Detection already reports Apple's wired share, so only a memory size given in the profile (as sold) is derated.
    """
    if hw.memory_gb is None:
        return None, "unknown"
    per_device, how = hw.memory_gb, "memory_gb"
    if hw.accelerator == "apple":
        if hw.gpu_memory_limit_gb is not None:
            per_device, how = min(hw.gpu_memory_limit_gb, hw.memory_gb), "gpu_memory_limit_gb (given)"
        elif not memory_detected:
            per_device = hw.memory_gb * APPLE_GPU_WIRED_FRACTION
            how = f"memory_gb x {APPLE_GPU_WIRED_FRACTION:g} (Metal's default GPU-wired share; set gpu_memory_limit_gb if raised)"
        else:
            how = "detected GPU-wired share"
    count = hw.count or 1
    if count == 1:
        return round(per_device, 2), how
    overhead = RIG_OVERHEAD_GB_PER_EXTRA_DEVICE * (count - 1)
    total = per_device * count - overhead
    return round(total, 2), (
        f"{count} x {per_device:g} GB ({how}) less {overhead:g} GB assumed for each extra device's buffers "
        f"({hw.interconnect or 'pcie'}; layers split across devices)"
    )


def site_power_w(hw: Hardware) -> tuple[float, str]:
    """Power drawn while busy: the device's (or an assumed figure) times the devices in the rig."""
    count = hw.count or 1
    if hw.power_w:
        return hw.power_w * count, f"{hw.power_w:g} W" + (f" x {count} devices" if count > 1 else "")
    assumed = ASSUMED_POWER_W[hw.accelerator or "cpu"]
    return assumed * count, (
        f"assumed {assumed:g} W per device" + (f" x {count}" if count > 1 else "") + " (set hardware.power_w)"
    )


def device_price_usd(hw: Hardware, costs: Costs, catalog: DecisionCatalog) -> tuple[float, str]:
    """The hardware price to amortise: the profile's, else the catalog's sourced price, else an assumed default."""
    count = hw.count or 1
    if costs.hardware_usd is not None:
        return costs.hardware_usd, "given in the profile (costs.hardware_usd)"
    row = catalog.price_for(hw.name)
    if row is not None:
        return row.price_usd * count, (
            f"published: {row.device} ${row.price_usd:,.0f}"
            + (f" x {count}" if count > 1 else "")
            + f" ({row.source_url}, {row.source_date})"
        )
    return ASSUMED_HARDWARE_USD * count, (
        f"assumed: ${ASSUMED_HARDWARE_USD:,.0f} per device"
        + (f" x {count}" if count > 1 else "")
        + " (no catalog price for this device; set costs.hardware_usd)"
    )
