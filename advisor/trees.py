"""Fitted histogram-boosting trees as plain numpy arrays: predictions without importing scikit-learn.

scikit-learn and skops take ~2 s to import on a 2-core machine, longer than ranking every workflow. Once
fitted, a HistGradientBoostingRegressor is a baseline plus a sum of small trees of numeric splits; this
module copies those trees into arrays (saved with numpy, `allow_pickle=False`: a file that cannot run
code) and evaluates them exactly as scikit-learn does (tested to 1e-9 on the real predictor).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

FIELDS = ("feature", "threshold", "missing_left", "left", "right", "leaf", "value")


@dataclass(frozen=True)
class TreeEnsemble:
    """A baseline and n_trees trees padded to one node count; node 0 is each tree's root."""

    baseline: float
    n_features: int
    feature: np.ndarray  # (n_trees, n_nodes) int64: the split feature's column
    threshold: np.ndarray  # float64: go left when x <= threshold
    missing_left: np.ndarray  # bool: where NaN goes
    left: np.ndarray  # int64
    right: np.ndarray  # int64
    leaf: np.ndarray  # bool
    value: np.ndarray  # float64: a leaf's contribution (learning rate already applied)

    @classmethod
    def from_sklearn(cls, model: Any) -> TreeEnsemble:
        """Copy a fitted single-output HistGradientBoostingRegressor (numeric features only), or the mean of
        several (an object whose `models` lists them): the mean of their baselines plus every tree, each leaf
        value divided by their number, predicts exactly their average."""
        members = list(getattr(model, "models", None) or [model])
        trees = [iteration[0].nodes for member in members for iteration in member._predictors]
        if any(bool(nodes["is_categorical"].any()) for nodes in trees):
            raise ValueError("categorical splits are not supported; keep the sklearn model")
        width = max(len(nodes) for nodes in trees)

        def padded(field: str, dtype: Any, fill: Any) -> np.ndarray:
            out = np.full((len(trees), width), fill, dtype=dtype)
            for i, nodes in enumerate(trees):
                out[i, : len(nodes)] = nodes[field]
            return out

        return cls(
            baseline=float(np.mean([np.ravel(m._baseline_prediction)[0] for m in members])),
            n_features=int(members[0].n_features_in_),
            feature=padded("feature_idx", np.int64, 0),
            threshold=padded("num_threshold", np.float64, 0.0),
            missing_left=padded("missing_go_to_left", bool, True),
            left=padded("left", np.int64, 0),
            right=padded("right", np.int64, 0),
            leaf=padded("is_leaf", bool, True),
            value=padded("value", np.float64, 0.0) / len(members),
        )

    @cached_property
    def _flat(self) -> tuple[np.ndarray, ...]:
        """Every node numbered across all trees (tree i's node n is i x width + n); a leaf's children are itself,
        so a walk of `depth` steps ends every row on its leaf without asking which nodes are leaves."""
        n_trees, width = self.feature.shape
        offset = (np.arange(n_trees, dtype=np.int64) * width)[:, None]
        node = np.arange(width, dtype=np.int64)[None, :] + offset
        left = np.where(self.leaf, node, self.left + offset).ravel()
        right = np.where(self.leaf, node, self.right + offset).ravel()
        return self.feature.ravel(), self.threshold.ravel(), self.missing_left.ravel(), left, right, offset.ravel()

    @cached_property
    def depth(self) -> int:
        """The deepest leaf of any tree: how many steps the walk takes."""
        n_trees, width = self.feature.shape
        level = np.zeros((n_trees, width), dtype=np.int64)
        inner = np.nonzero(~self.leaf)
        # scikit-learn numbers a tree's nodes parent first, so one pass in node order sets every child's level.
        for n in range(width):
            rows = inner[0][inner[1] == n]
            level[rows, self.left[rows, n]] = level[rows, n] + 1
            level[rows, self.right[rows, n]] = level[rows, n] + 1
        return int(level.max())

    def predict(self, X: Any) -> np.ndarray:
        """Raw predictions (identity link, as for the absolute-error and squared-error losses)."""
        data = np.asarray(X, dtype=np.float64)
        if data.ndim != 2 or data.shape[1] != self.n_features:
            raise ValueError(f"expected {self.n_features} feature columns, got shape {data.shape}")
        feature, threshold, missing_left, left, right, roots = self._flat
        flat_data = data.ravel()
        base = (np.arange(len(data), dtype=np.int64) * self.n_features)[:, None]
        at = np.broadcast_to(roots[None, :], (len(data), len(roots)))
        has_missing = bool(np.isnan(data).any())
        # Walk every tree for every row at once, one level a step (numbered nodes: no per-tree indexing).
        for _ in range(self.depth):
            x = flat_data[base + feature[at]]
            go_left = x <= threshold[at]
            if has_missing:
                go_left |= np.isnan(x) & missing_left[at]
            at = np.where(go_left, left[at], right[at])
        return self.baseline + self.value.ravel()[at].sum(axis=1)

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """The ensemble as named arrays for np.savez."""
        out = {f"{prefix}.{name}": getattr(self, name) for name in FIELDS}
        out[f"{prefix}.meta"] = np.array([self.baseline, float(self.n_features)])
        return out

    @classmethod
    def from_arrays(cls, data: Any, prefix: str) -> TreeEnsemble:
        meta = data[f"{prefix}.meta"]
        fields = {name: np.asarray(data[f"{prefix}.{name}"]) for name in FIELDS}
        return cls(baseline=float(meta[0]), n_features=int(meta[1]), **fields)


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez to a temp file renamed over the target (a reader never sees half a file)."""
    tmp = path.with_name(f".{path.name}.tmp.npz")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(tmp, **arrays)  # type: ignore[arg-type]
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of an .npz, read with allow_pickle=False: no object in the file can run code."""
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}
