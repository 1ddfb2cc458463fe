"""Shared helpers for the peer synthesizers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from microplex._stats import is_numeric, one_hot


class Encoder:
    """One-hot codes categorical predictors and passes numeric ones through (NaN -> -1e9 sentinel)."""

    def fit(self, df: pd.DataFrame, columns: Sequence[str]) -> "Encoder":
        self.columns = list(columns)
        self.levels = {c: sorted(df[c].dropna().astype(str).unique()) for c in self.columns if not is_numeric(df[c])}
        return self

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        parts = []
        for c in self.columns:
            if c in self.levels:
                codes = pd.Categorical(df[c].astype(object).where(df[c].notna(), None).map(
                    lambda v: None if v is None else str(v)), categories=self.levels[c]).codes
                parts.append(one_hot(codes, len(self.levels[c])).astype(np.float32))
            else:
                x = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float)
                parts.append(np.where(np.isnan(x), -1e9, x)[:, None].astype(np.float32))
        return np.hstack(parts) if parts else np.zeros((len(df), 0), dtype=np.float32)


def weighted_resample(df: pd.DataFrame, weight_col: str | None, seed: int) -> pd.DataFrame:
    """Resamples rows with probability proportional to weight (for methods that take no weights)."""
    if weight_col is None:
        return df.reset_index(drop=True)
    w = df[weight_col].to_numpy(dtype=float)
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(df), size=len(df), replace=True, p=w / w.sum())
    return df.iloc[idx].reset_index(drop=True)
