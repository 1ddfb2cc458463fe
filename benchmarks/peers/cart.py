"""Sequential CART synthesizer in the style of R synthpop (Nowok, Raab & Dibben 2016).

Visit sequence: the conditions are taken as given; each target, in order, is drawn from the
training donors in the leaf that a CART tree, fitted on the conditions and the previous
targets, assigns to the new record (synthpop's ``syn.cart``: ``minbucket = 5``, no pruning
(``cp = 1e-8``), no smoothing). Survey weights enter the tree fit and the donor draw.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from ._common import Encoder, is_numeric


class SequentialCART:
    conditional = True

    def __init__(self, target_vars: Sequence[str], condition_vars: Sequence[str], *, min_samples_leaf: int = 5):
        self.target_vars = list(target_vars)
        self.condition_vars = list(condition_vars)
        self.min_samples_leaf = min_samples_leaf

    def fit(self, df: pd.DataFrame, weight_col: str | None = None, seed: int = 0) -> "SequentialCART":
        df = df.reset_index(drop=True)
        w = np.ones(len(df)) if weight_col is None else df[weight_col].to_numpy(dtype=float)
        self.steps_ = []
        for k, target in enumerate(self.target_vars):
            predictors = self.condition_vars + self.target_vars[:k]
            enc = Encoder().fit(df, predictors)
            x = enc.transform(df)
            y = df[target]
            keep = y.notna().to_numpy()
            if is_numeric(y):
                tree = DecisionTreeRegressor(min_samples_leaf=self.min_samples_leaf, random_state=seed)
                tree.fit(x, y.to_numpy(dtype=float), sample_weight=w)
            else:
                tree = DecisionTreeClassifier(min_samples_leaf=self.min_samples_leaf, random_state=seed)
                tree.fit(x, y.astype(str).to_numpy(), sample_weight=w)
            leaves = tree.apply(x)
            donors = {leaf: np.flatnonzero(leaves == leaf) for leaf in np.unique(leaves)}
            self.steps_.append((target, enc, tree, donors, y.to_numpy(), w, keep))
        return self

    def generate(self, conditions_df: pd.DataFrame, seed: int = 1) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        out = conditions_df[self.condition_vars].reset_index(drop=True).copy()
        for target, enc, tree, donors, y, w, _ in self.steps_:
            leaves = tree.apply(enc.transform(out))
            values = np.empty(len(out), dtype=object)
            for leaf in np.unique(leaves):
                rows = np.flatnonzero(leaves == leaf)
                pool = donors[leaf]
                p = w[pool] / w[pool].sum()
                values[rows] = y[rng.choice(pool, size=rows.size, replace=True, p=p)]
            out[target] = pd.Series(values).infer_objects()
        return out
