"""SDV single-table synthesizers (GaussianCopula, CTGAN, TVAE) behind the benchmark interface.

SDV takes no survey weights: weighted training data are first resampled with probability
proportional to weight. ``conditional=True`` uses SDV's ``sample_remaining_columns`` with the
holdout conditions (exact for GaussianCopula; reject sampling for CTGAN/TVAE, impractical with
numeric conditions); otherwise ``sample(num_rows)`` draws whole records unconditionally.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ._common import weighted_resample

KINDS = {"gaussian_copula": "GaussianCopulaSynthesizer", "ctgan": "CTGANSynthesizer", "tvae": "TVAESynthesizer"}


class SDVMethod:
    def __init__(self, kind: str, target_vars: Sequence[str], condition_vars: Sequence[str], *,
                 conditional: bool = False, epochs: int | None = None, enable_gpu: bool = False):
        import sdv.single_table  # noqa: F401  (fails early when SDV is missing)

        self.kind = kind
        self.target_vars = list(target_vars)
        self.condition_vars = list(condition_vars)
        self.conditional = conditional
        self.epochs = epochs
        self.enable_gpu = enable_gpu

    def fit(self, df: pd.DataFrame, weight_col: str | None = None, seed: int = 0) -> "SDVMethod":
        import torch
        from sdv import single_table
        from sdv.metadata import Metadata

        logging.getLogger("sdv").setLevel(logging.ERROR)
        logging.getLogger("rdt").setLevel(logging.ERROR)
        cols = self.condition_vars + self.target_vars
        data = weighted_resample(df, weight_col, seed)[cols]
        self.dtypes_ = data.dtypes
        data = _to_sdv(data)
        metadata = Metadata.detect_from_dataframes({"data": data})
        kwargs = {}
        if self.epochs is not None and self.kind != "gaussian_copula":
            kwargs["epochs"] = self.epochs
        if self.kind != "gaussian_copula":
            kwargs["enable_gpu"] = self.enable_gpu
        np.random.seed(seed)
        torch.manual_seed(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.model_ = getattr(single_table, KINDS[self.kind])(metadata, **kwargs)
            self.model_.fit({"data": data})  # SDV 2 takes {table name: frame}
        return self

    def generate(self, conditions_df: pd.DataFrame, seed: int = 1) -> pd.DataFrame:
        import torch

        np.random.seed(seed)
        torch.manual_seed(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.conditional:
                known = _to_sdv(conditions_df[self.condition_vars].reset_index(drop=True))
                out = self.model_.sample_remaining_columns(known_columns=known)
            else:
                out = self.model_.sample(num_rows=len(conditions_df))
        if isinstance(out, dict):
            out = out["data"]
        out = out[self.condition_vars + self.target_vars].reset_index(drop=True)
        for c, dt in self.dtypes_.items():
            if pd.api.types.is_numeric_dtype(dt):
                out[c] = pd.to_numeric(out[c], errors="coerce")
            else:
                out[c] = out[c].astype(object).where(out[c].notna(), None).astype(dt)
        return out


def _to_sdv(df: pd.DataFrame) -> pd.DataFrame:
    """SDV 2 expects object-dtype strings (pandas 2)."""
    df = df.copy()
    for c in df.columns:
        if not pd.api.types.is_numeric_dtype(df[c]):
            df[c] = df[c].astype(object)
    return df
