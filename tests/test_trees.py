"""The numpy copy of the fitted trees predicts exactly what scikit-learn predicts, and its file runs no code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from advisor.knowledge import Knowledge
from advisor.predict import FEATURES, SpeedPredictor, complete_row, feature_frame
from advisor.trees import TreeEnsemble, load_arrays, save_arrays


def training_matrix(knowledge: Knowledge) -> tuple[object, np.ndarray]:
    rows = [complete_row(dict(r), knowledge)[0] for r in knowledge.training_speeds]
    frame, _ = feature_frame(rows)
    X = frame[FEATURES].copy()
    X.iloc[::7, 3] = np.nan  # missing values must follow each split's learned side, as in scikit-learn
    return X, X.to_numpy(dtype=float)


def test_numpy_trees_match_scikit_learn_on_every_fitted_model(predictor: SpeedPredictor, knowledge: Knowledge) -> None:
    X, data = training_matrix(knowledge)
    models = [
        m for t in (predictor.tg, predictor.pp) if t is not None for m in (t.regressor, t.spread) if m is not None
    ]
    assert models
    for model in models:
        sk = model if not isinstance(model, TreeEnsemble) else None
        if sk is None:
            pytest.skip("the predictor already holds numpy trees")
        ours = TreeEnsemble.from_sklearn(sk).predict(data)
        np.testing.assert_allclose(ours, sk.predict(X), rtol=0, atol=1e-9)


def test_tree_arrays_round_trip_without_pickle(predictor: SpeedPredictor, knowledge: Knowledge, tmp_path: Path) -> None:
    assert predictor.tg is not None
    model = predictor.tg.regressor
    ensemble = model if isinstance(model, TreeEnsemble) else TreeEnsemble.from_sklearn(model)
    path = tmp_path / "trees.npz"
    save_arrays(path, ensemble.arrays("tg"))
    again = TreeEnsemble.from_arrays(load_arrays(path), "tg")
    _, data = training_matrix(knowledge)
    np.testing.assert_array_equal(again.predict(data), ensemble.predict(data))
    assert not list(tmp_path.glob(".*tmp*")), "no temp file left behind"


def test_an_object_array_in_the_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.npz"
    np.savez(path, payload=np.array([{"not": "data"}], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        load_arrays(path)


def test_wrong_feature_count_is_an_error() -> None:
    ensemble = TreeEnsemble(
        baseline=0.5,
        n_features=2,
        feature=np.zeros((1, 1), dtype=np.int64),
        threshold=np.zeros((1, 1)),
        missing_left=np.ones((1, 1), dtype=bool),
        left=np.zeros((1, 1), dtype=np.int64),
        right=np.zeros((1, 1), dtype=np.int64),
        leaf=np.ones((1, 1), dtype=bool),
        value=np.array([[0.25]]),
    )
    assert ensemble.predict(np.zeros((3, 2))).tolist() == [0.75, 0.75, 0.75]
    with pytest.raises(ValueError, match="expected 2 feature columns"):
        ensemble.predict(np.zeros((3, 5)))


def _rows() -> list[dict[str, object]]:
    base = {
        "hardware_name": "RTX 4090",
        "hardware_type": "nvidia",
        "memory_bandwidth_gbs": 1008,
        "memory_gb": 24,
        "model_name": "qwen3-8b",
        "total_params_b": 8.2,
        "active_params_b": 8.2,
        "is_moe": "no",
        "quantization": "Q4_K_M",
        "bits_per_weight": 4.85,
        "backend": "llama.cpp-cuda",
    }
    return [base, {**base, "hardware_type": "apple", "hardware_name": "M4 Pro", "memory_bandwidth_gbs": 273}]


def test_the_compiled_predictor_predicts_what_the_fitted_one_does(
    predictor: SpeedPredictor, knowledge: Knowledge, tmp_path: Path
) -> None:
    from advisor.predict import StaleArtifact, compiled_arrays, load_compiled

    path = tmp_path / "p.npz"
    save_arrays(path, compiled_arrays(predictor, digest="abc"))
    compiled = load_compiled(path, knowledge, digest="abc")
    for ours, theirs in zip(compiled.predict(_rows()), predictor.predict(_rows()), strict=True):
        for key in ("pred_tg_tok_s", "pred_tg_low", "pred_tg_high", "pred_pp_tok_s", "pred_pp_low", "pred_pp_high"):
            assert ours[key] == pytest.approx(theirs[key], rel=1e-9), key
    with pytest.raises(StaleArtifact):
        load_compiled(path, knowledge, digest="other")


def test_a_warm_start_predicts_without_importing_scikit_learn(predictor: SpeedPredictor, tmp_path: Path) -> None:
    import subprocess
    import sys

    from advisor.predict import compiled_arrays, knowledge_digest
    from advisor.settings import KNOWLEDGE_DIR

    cache = tmp_path / "cache"
    digest = knowledge_digest(KNOWLEDGE_DIR)
    save_arrays(cache / f"speed-predictor-{digest}.npz", compiled_arrays(predictor, digest=digest))
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from advisor.knowledge import load_knowledge\n"
        "from advisor.predict import get_predictor\n"
        "from advisor.settings import KNOWLEDGE_DIR\n"
        f"p = get_predictor(load_knowledge(KNOWLEDGE_DIR), KNOWLEDGE_DIR, Path({str(cache)!r}))\n"
        f"row = {_rows()[0]!r}\n"
        "print(round(p.predict([row])[0]['pred_tg_tok_s'], 6), 'sklearn' in sys.modules, 'skops' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    value, sklearn_loaded, skops_loaded = done.stdout.split()
    assert (sklearn_loaded, skops_loaded) == ("False", "False")
    assert float(value) == pytest.approx(predictor.predict([_rows()[0]])[0]["pred_tg_tok_s"], rel=1e-6)


def test_the_shipped_predictor_is_current_and_reproduced_by_a_fresh_fit(
    predictor: SpeedPredictor, knowledge: Knowledge
) -> None:
    """Rebuild with `python benchmarks/build_predictor.py` after changing knowledge/ or advisor/predict.py."""
    import importlib.metadata
    import json

    from advisor.predict import SHIPPED_PREDICTOR, knowledge_digest, load_compiled
    from advisor.settings import KNOWLEDGE_DIR

    assert SHIPPED_PREDICTOR.exists(), "run: python benchmarks/build_predictor.py"
    digest = knowledge_digest(KNOWLEDGE_DIR)
    meta = json.loads(str(load_arrays(SHIPPED_PREDICTOR)["meta"]))
    built_for = meta["digest"]
    if importlib.metadata.version("scikit-learn") != meta["scikit_learn"]:
        pytest.skip(f"built with scikit-learn {meta['scikit_learn']}; this install has another, so it refits (by design)")
    assert built_for == digest, "stale: run python benchmarks/build_predictor.py and commit advisor/fitted/"
    shipped = load_compiled(SHIPPED_PREDICTOR, knowledge, digest=digest)
    rows = _rows()
    for ours, fresh in zip(shipped.predict(rows), predictor.predict(rows), strict=True):
        for key in ("pred_tg_tok_s", "pred_tg_low", "pred_tg_high", "pred_pp_tok_s", "pred_pp_low", "pred_pp_high"):
            assert ours[key] == pytest.approx(fresh[key], rel=1e-9), key
