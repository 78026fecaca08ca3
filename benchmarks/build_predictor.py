"""Rebuild advisor/fitted/speed-predictor.npz: the speed predictor fitted on knowledge/, as numpy trees.

A fresh install loads it instead of fitting (no scikit-learn import on the way to the first answer). It is
used only while its recorded digest matches the knowledge files, the predictor's code and the installed
scikit-learn; otherwise the predictor is fitted as before. tests/test_trees.py fails when it is stale, and
checks that a fresh fit reproduces it. Run after changing knowledge/ or advisor/predict.py:

    python benchmarks/build_predictor.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from advisor.knowledge import load_knowledge  # noqa: E402
from advisor.predict import SHIPPED_PREDICTOR, SpeedPredictor, compiled_arrays, knowledge_digest  # noqa: E402
from advisor.settings import KNOWLEDGE_DIR  # noqa: E402
from advisor.trees import save_arrays  # noqa: E402


def main() -> None:
    started = time.perf_counter()
    predictor = SpeedPredictor.fit(load_knowledge(KNOWLEDGE_DIR))
    digest = knowledge_digest(KNOWLEDGE_DIR)
    save_arrays(SHIPPED_PREDICTOR, compiled_arrays(predictor, digest=digest))
    size_kb = SHIPPED_PREDICTOR.stat().st_size / 1024
    print(f"wrote {SHIPPED_PREDICTOR} ({size_kb:.0f} KB, digest {digest}) in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
