"""Benchmark: the quick calibration on the embedded default (SmolLM2-135M Q4_1, in its worker process).

Reports wall time (goal <= 30 s on a 2-core machine), the decode spread across repetitions (goal <= 5%),
our stream-timed decode rate (the parent's clock, across the worker's pipe) against llama.cpp's own perf
counters for the same requests (goal within 3%), and how long a cancel takes to stop a long request.
Run: python benchmarks/bench_calibration.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from advisor.backends.embedded import DEFAULT_MODEL, EmbeddedBackend  # noqa: E402
from advisor.calibrate import calibrate, load_suite  # noqa: E402
from advisor.hardware import detect, probe_bandwidth  # noqa: E402
from advisor.settings import DEFAULT_SUITE  # noqa: E402


def one_run() -> dict[str, float]:
    started = time.perf_counter()
    backend = EmbeddedBackend()
    hardware = detect().as_json()
    probe = probe_bandwidth()
    report = calibrate(
        backend, [DEFAULT_MODEL], load_suite(DEFAULT_SUITE), hardware=hardware, quick=True, bandwidth_probe=probe
    )
    wall = time.perf_counter() - started
    backend.close()
    decode_rows = [m for m in report["measurements"] if m["probe"].startswith("decode")]
    ours = [m["decode_tps"] for m in decode_rows]
    theirs = [m["counter_decode_tps"] for m in decode_rows]
    spread = report["models"][0]["speed"][decode_rows[0]["probe"]]["decode_tps"]["spread_pct"]
    gap = abs(statistics.median(ours) - statistics.median(theirs)) / statistics.median(theirs) * 100
    return {
        "wall_s": wall,
        "decode_tps": statistics.median(ours),
        "counter_tps": statistics.median(theirs),
        "spread_pct": spread,
        "gap_pct": gap,
        "tasks_passed": report["models"][0]["tasks"]["successes"],
        "tasks": report["models"][0]["tasks"]["attempts"],
        "bandwidth_gbs": probe["bandwidth_gbs"],
    }


def cancel_time() -> float:
    """Seconds from abort() to the request returning, mid-way through a long generation."""
    from advisor.backends.base import GenerationRequest

    backend = EmbeddedBackend()
    backend.load(DEFAULT_MODEL)
    marks: list[float] = []

    def on_chunk(kind: str, text: str) -> None:
        if len(marks) == 0 and text:
            marks.append(0.0)
            threading.Timer(0.5, lambda: (marks.append(time.perf_counter()), backend.abort())).start()

    request = GenerationRequest(prompt="Write a very long story about the sea.", max_tokens=1500, timeout_s=120)
    backend.generate(DEFAULT_MODEL, request, on_chunk=on_chunk)
    took = time.perf_counter() - marks[1]
    backend.close()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("ADVISOR_HOME", tempfile.mkdtemp(prefix="dl-bench-"))
    results = [one_run() for _ in range(args.runs)]
    for i, r in enumerate(results, 1):
        print(
            f"run {i}: wall {r['wall_s']:.1f} s | decode {r['decode_tps']:.1f} tok/s (llama.cpp counters {r['counter_tps']:.1f}, "
            f"gap {r['gap_pct']:.1f}%) | decode IQR spread {r['spread_pct']:.1f}% | tasks {r['tasks_passed']}/{r['tasks']} | "
            f"host bandwidth {r['bandwidth_gbs']} GB/s"
        )
    print(
        f"median wall {statistics.median(r['wall_s'] for r in results):.1f} s (goal <= 30 s); "
        f"median spread {statistics.median(r['spread_pct'] for r in results):.1f}% (goal <= 5%); "
        f"median gap to llama.cpp counters {statistics.median(r['gap_pct'] for r in results):.1f}% (goal <= 3%)"
    )
    print(f"cancel: a long request stopped {cancel_time():.2f} s after abort()")


if __name__ == "__main__":
    main()
