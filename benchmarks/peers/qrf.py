"""Sequential quantile-regression-forest imputation (quantile-forest, default settings).

Conditions are taken as given; each numeric target, in order, is drawn by predicting, for each
new record, a random quantile of its conditional distribution from a
``RandomForestQuantileRegressor`` fitted on the conditions and the previous targets. The
random quantile is drawn from a grid of 199 levels (0.005 ... 0.995).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ._common import Encoder

GRID = np.linspace(0.005, 0.995, 199)


class SequentialQRF:
    conditional = True

    def __init__(self, target_vars: Sequence[str], condition_vars: Sequence[str]):
        self.target_vars = list(target_vars)
        self.condition_vars = list(condition_vars)

    def fit(self, df: pd.DataFrame, weight_col: str | None = None, seed: int = 0) -> "SequentialQRF":
        from quantile_forest import RandomForestQuantileRegressor

        df = df.reset_index(drop=True)
        w = None if weight_col is None else df[weight_col].to_numpy(dtype=float)
        self.steps_ = []
        for k, target in enumerate(self.target_vars):
            enc = Encoder().fit(df, self.condition_vars + self.target_vars[:k])
            model = RandomForestQuantileRegressor(random_state=seed)
            model.fit(enc.transform(df), df[target].to_numpy(dtype=float), sample_weight=w)
            self.steps_.append((target, enc, model))
        return self

    def generate(self, conditions_df: pd.DataFrame, seed: int = 1) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        out = conditions_df[self.condition_vars].reset_index(drop=True).copy()
        for target, enc, model in self.steps_:
            q = model.predict(enc.transform(out), quantiles=list(GRID))
            pick = rng.integers(0, GRID.size, len(out))
            out[target] = q[np.arange(len(out)), pick]
        return out
