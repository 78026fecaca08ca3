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
