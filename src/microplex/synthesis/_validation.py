"""Input checks shared by the estimators; messages name the column and show expected vs got."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .._errors import DataValidationError

__all__ = ["check_frame", "check_weights"]


def check_frame(df: object, columns: Sequence[str], what: str, *, allow_empty: bool = False) -> None:
    """Checks that ``df`` is a DataFrame holding ``columns`` (and rows, unless ``allow_empty``)."""
    if not isinstance(df, pd.DataFrame):
        raise DataValidationError(f"{what!r} must be a pandas DataFrame. Got {type(df).__name__} instead.")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataValidationError(
            f"{what!r} is missing columns {missing}; it has {list(df.columns)[:20]}."
        )
    if not allow_empty and len(df) == 0:
        raise DataValidationError(f"{what!r} is empty; at least one row is needed.")


def check_weights(df: pd.DataFrame, weight_col: str | None) -> np.ndarray:
    """Survey weights as float64 (N,): finite, non-negative, with a positive sum."""
    if weight_col is None:
        return np.ones(len(df))
    if not pd.api.types.is_numeric_dtype(df[weight_col].dtype):
        raise DataValidationError(
            f"Weight column {weight_col!r} must be numeric. Got dtype {df[weight_col].dtype} instead."
        )
    w = df[weight_col].to_numpy(float)
    if not np.isfinite(w).all():
        raise DataValidationError(f"Weight column {weight_col!r} has {int((~np.isfinite(w)).sum())} missing or infinite values.")
    if (w < 0).any():
        raise DataValidationError(
            f"Weight column {weight_col!r} has {int((w < 0).sum())} negative weights (min {w.min():g}); weights must be >= 0."
        )
    if w.sum() <= 0:
        raise DataValidationError(f"Weight column {weight_col!r} sums to {w.sum():g}; it must sum to a positive value.")
    return w
