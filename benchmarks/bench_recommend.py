"""Benchmark: recommend 10 workflows against the full catalog (goal: <= 0.5 s, predictor already fitted),
and `python -m advisor recommend PROFILE` end to end in a new process: cold (a fresh ADVISOR_HOME, as on a
fresh install: the predictor is fitted) goal <= 4 s, and warm (its caches on disk) goal <= 1.5 s.

Run: python benchmarks/bench_recommend.py [--cli-runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from advisor import api  # noqa: E402
from advisor.profiles import load_profile  # noqa: E402

PROFILE = Path(__file__).resolve().parent / "profiles" / "team-mixed.yaml"


def cli_seconds(home: str) -> float:
    """Wall time of one `python -m advisor recommend` in a new process."""
    env = {**os.environ, "ADVISOR_HOME": home}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "advisor", "recommend", str(PROFILE)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"recommend failed: {done.stderr.strip()}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cli-runs", type=int, default=3)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="dl-bench-cli-")
    cold_cli = cli_seconds(home)
    warm_cli = [cli_seconds(home) for _ in range(args.cli_runs)]
    print(
        f"python -m advisor recommend, cold (fresh ADVISOR_HOME: the shipped, digest-checked predictor): {cold_cli:.2f} s (goal <= 4 s)"
    )
    print(
        f"python -m advisor recommend, warm (caches on disk): median {statistics.median(warm_cli):.2f} s, "
        f"max {max(warm_cli):.2f} s (goal <= 1.5 s)"
    )
    os.environ.setdefault("ADVISOR_HOME", tempfile.mkdtemp(prefix="dl-bench-"))
    base = load_profile(PROFILE)
    # Ten workflows: the five examples twice, with different volumes so nothing is trivially repeated.
    workflows = [
        w.model_copy(update={"name": f"{w.name} #{i}", "requests_per_day": w.requests_per_day * (i + 1)})
        for i in range(2)
        for w in base.workflows
    ]
    profile = base.model_copy(update={"workflows": workflows})
    started = time.perf_counter()
    api.recommend_profile(profile)  # fits or loads the predictor, detects hardware
    cold = time.perf_counter() - started
    times = []
    for _ in range(7):
        started = time.perf_counter()
        api.recommend_profile(profile)
        times.append(time.perf_counter() - started)
    candidates = len(api.knowledge().models)
    print(
        f"workflows: {len(workflows)}; catalog: {candidates} models x quantizations x runtimes + {len(api.knowledge().hosted)} hosted"
    )
    print(f"first call (load the predictor, detect hardware): {cold:.2f} s")
    print(
        f"recommend 10 workflows: median {statistics.median(times):.3f} s, min {min(times):.3f} s, max {max(times):.3f} s (goal <= 0.5 s)"
    )


if __name__ == "__main__":
    main()
