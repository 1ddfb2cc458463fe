"""microplex's own Synthesizer (MAF and NSF flows) behind the benchmark interface."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd


class MicroplexMethod:
    conditional = True

    def __init__(self, flow: str, target_vars: Sequence[str], condition_vars: Sequence[str], *, epochs: int | None = None,
                 **params):
        from microplex import Synthesizer  # ImportError -> reported as unavailable

        self._cls = Synthesizer
        self.flow = flow
        self.target_vars = list(target_vars)
        self.condition_vars = list(condition_vars)
        self.epochs = epochs
        self.params = params  # settings other than the defaults (e.g. an earlier release's defaults)

    def fit(self, df: pd.DataFrame, weight_col: str | None = None, seed: int = 0) -> "MicroplexMethod":
        cols = self.condition_vars + self.target_vars + ([weight_col] if weight_col else [])
        self.model_ = self._cls(target_vars=self.target_vars, condition_vars=self.condition_vars, flow=self.flow,
                                verbose=False, **self.params)  # no progress bar; other settings: the defaults
        self.model_.fit(df[cols].reset_index(drop=True), weight_col=weight_col, epochs=self.epochs, seed=seed)
        return self

    def generate(self, conditions_df: pd.DataFrame, seed: int = 1) -> pd.DataFrame:
        out = self.model_.generate(conditions_df[self.condition_vars].reset_index(drop=True), seed=seed)
        return out[self.condition_vars + self.target_vars].reset_index(drop=True)
