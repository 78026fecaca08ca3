"""Hardware detection (psutil, NVML / nvidia-smi, sysctl on macOS), overrides, and a bandwidth probe."""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

from advisor.schemas import Hardware

# Share of system RAM we assume usable for weights on CPU-only machines: the OS and the app need the rest.
CPU_USABLE_RAM_FRACTION = 0.75
# Unified memory: macOS lets the GPU wire about 75% of RAM by default (more with sysctl iogpu.wired_limit_mb).
APPLE_GPU_WIRED_FRACTION = 0.75


@dataclass
class Detection:
    """What was found, how each field was found, and where detection is unsure."""

    hardware: Hardware
    how: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    cpu_model: str = "unknown"
    cpu_cores: int | None = None
    gpus: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "hardware": self.hardware.model_dump(),
            "how": self.how,
            "notes": self.notes,
            "cpu_model": self.cpu_model,
            "cpu_cores": self.cpu_cores,
            "gpus": self.gpus,
            "fingerprint": fingerprint(self),
        }


def _run(cmd: list[str], timeout: float = 5.0) -> str | None:
    """Output of a detection command, or None when it is absent or fails."""
    if not shutil.which(cmd[0]):
        return None
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    brand = _run(["sysctl", "-n", "machdep.cpu.brand_string"])
    return (brand or platform.processor() or "unknown").strip()


def _nvidia_gpus() -> tuple[list[dict[str, Any]], str | None]:
    """NVIDIA GPUs via NVML, else nvidia-smi; ([], None) when neither is there."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            gpus = []
            for index in range(pynvml.nvmlDeviceGetCount()):
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                name = pynvml.nvmlDeviceGetName(handle)
                memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
                try:
                    power = pynvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000
                except pynvml.NVMLError:
                    power = None
                gpus.append(
                    {
                        "name": name if isinstance(name, str) else name.decode(),
                        "memory_gb": memory.total / 1e9,
                        "power_w": power,
                    }
                )
            return gpus, "nvidia-ml-py (NVML)"
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - NVML missing or no driver: fall through to nvidia-smi
        pass
    out = _run(["nvidia-smi", "--query-gpu=name,memory.total,power.limit", "--format=csv,noheader,nounits"])
    if not out:
        return [], None
    gpus = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 2:
            power = float(parts[2]) if len(parts) > 2 and parts[2].replace(".", "", 1).isdigit() else None
            gpus.append({"name": parts[0], "memory_gb": float(parts[1]) / 1024, "power_w": power})
    return gpus, "nvidia-smi"


def _apple_chip() -> dict[str, Any] | None:
    if platform.system() != "Darwin":
        return None
    brand = _run(["sysctl", "-n", "machdep.cpu.brand_string"])
    memsize = _run(["sysctl", "-n", "hw.memsize"])
    if not brand or "Apple" not in brand:
        return None
    info: dict[str, Any] = {"name": brand.strip(), "memory_gb": int(memsize) / 1e9 if memsize else None}
    profile = _run(["system_profiler", "SPDisplaysDataType", "-json"], timeout=15)
    if profile:
        try:
            cores = json.loads(profile)["SPDisplaysDataType"][0].get("sppci_cores")
            info["gpu_cores"] = int(cores) if cores else None
        except (ValueError, KeyError, IndexError):
            pass
    return info


def detect() -> Detection:
    """Detect this machine; fields that cannot be known stay empty with a note, never a guess."""
    import psutil

    ram_gb = psutil.virtual_memory().total / 1e9
    det = Detection(
        hardware=Hardware(system_ram_gb=round(ram_gb, 1)),
        cpu_model=_cpu_model(),
        cpu_cores=psutil.cpu_count(logical=False),
    )
    det.how["system_ram_gb"] = "psutil"
    gpus, gpu_source = _nvidia_gpus()
    apple = _apple_chip()
    hw = det.hardware
    if gpus:
        det.gpus = gpus
        top = max(gpus, key=lambda g: g["memory_gb"])
        hw.accelerator = "nvidia"
        hw.name = top["name"] if len(gpus) == 1 else f"{len(gpus)}x {top['name']}"
        hw.memory_gb = round(sum(g["memory_gb"] for g in gpus), 1)
        hw.power_w = sum(g["power_w"] for g in gpus if g["power_w"]) or None
        for key in ("accelerator", "name", "memory_gb", "power_w"):
            det.how[key] = gpu_source or "unknown"
        det.notes.append("memory bandwidth is looked up from knowledge/hardware.csv by GPU name when it matches")
    elif apple:
        hw.accelerator = "apple"
        hw.name = apple["name"]
        hw.memory_gb = round((apple.get("memory_gb") or ram_gb) * APPLE_GPU_WIRED_FRACTION, 1)
        det.how.update(
            accelerator="sysctl",
            name="sysctl machdep.cpu.brand_string",
            memory_gb="sysctl hw.memsize x 0.75 (default GPU wired limit)",
        )
    else:
        hw.accelerator = "cpu"
        hw.name = det.cpu_model
        hw.memory_gb = round(ram_gb * CPU_USABLE_RAM_FRACTION, 1)
        det.how.update(
            accelerator="no GPU found (NVML, nvidia-smi, sysctl)",
            name="/proc/cpuinfo",
            memory_gb=f"psutil RAM x {CPU_USABLE_RAM_FRACTION}",
        )
        det.notes.append(
            "no NVIDIA or Apple GPU detected: AMD/Intel GPUs are not auto-detected; set hardware.accelerator if you have one"
        )
    if hw.memory_bandwidth_gbs is None:
        det.notes.append("memory bandwidth unknown until the bandwidth probe runs (calibrate) or you enter it")
    if hw.power_w is None:
        det.notes.append("power draw unknown: enter hardware.power_w for energy costs (a default is used otherwise)")
    return det


def fingerprint(det: Detection) -> str:
    """A short stable id of this machine: CPU, cores, RAM and GPUs (no serial numbers, nothing personal)."""
    parts = [det.cpu_model, str(det.cpu_cores), f"{det.hardware.system_ram_gb or 0:.0f}"]
    parts += sorted(g["name"] for g in det.gpus)
    return "hw-" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


def probe_bandwidth(*, size_mb: int = 256, repeats: int = 5) -> dict[str, Any]:
    """STREAM-like copy with numpy: best-of-N host memory bandwidth in GB/s (read + write bytes)."""
    import numpy as np

    n = size_mb * 1024 * 1024 // 8
    src = np.ones(n, dtype=np.float64)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # first touch pages so the timed runs do not include page faults
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        np.copyto(dst, src)
        times.append(time.perf_counter() - started)
    moved = 2 * src.nbytes  # a copy reads and writes every byte
    rates = sorted(moved / t / 1e9 for t in times)
    return {
        "label": "measured",
        "method": f"numpy copy of {size_mb} MiB, best of {repeats}",
        "bandwidth_gbs": round(rates[-1], 2),
        "median_gbs": round(rates[len(rates) // 2], 2),
        "min_gbs": round(rates[0], 2),
    }
