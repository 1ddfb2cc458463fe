"""Argument checks of the calibration front ends (on top of :mod:`microplex._params`)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from microplex._errors import DataValidationError

__all__ = ["check_bounds", "check_column", "check_records"]


def _got(value: Any) -> str:
    from .targets import _got as short

    return short(value)


def check_bounds(value: Any, name: str) -> tuple[float, float] | None:
    """``None`` or a pair ``(lower, upper)`` of numbers (infinite allowed, NaN not) with lower < upper."""
    if value is None:
        return None
    expected = f"The {name!r} parameter must be None or a pair (lower, upper) of numbers"
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (Sequence, np.ndarray)):
        raise DataValidationError(f"{expected}. Got {_got(value)} instead.")
    items = list(value)
    if len(items) != 2 or not all(
        isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) and not math.isnan(float(v)) for v in items
    ):
        raise DataValidationError(f"{expected}. Got {_got(value)} instead.")
    lo, hi = float(items[0]), float(items[1])
    if not lo < hi:
        raise DataValidationError(f"The {name!r} parameter must have lower < upper. Got lower={lo}, upper={hi} instead.")
    return lo, hi


def check_column(value: Any, name: str, *, allow_none: bool = False) -> str | None:
    """A column name parameter: a non-empty str (or None when allowed)."""
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or not value:
        raise DataValidationError(
            f"The {name!r} parameter must be a column name (a non-empty str){' or None' if allow_none else ''}. "
            f"Got {_got(value)} instead."
        )
    return value


def check_records(records: Any, what: str = "records") -> pd.DataFrame:
    """A non-empty DataFrame with distinct column names."""
    if not isinstance(records, pd.DataFrame):
        raise DataValidationError(f"{what} must be a pandas DataFrame. Got {type(records).__name__} instead.")
    if len(records) == 0:
        raise DataValidationError(f"{what} is empty; at least one record is needed to calibrate.")
    dup = records.columns[records.columns.duplicated()]
    if len(dup):
        raise DataValidationError(
            f"{what} has duplicated column names {list(dict.fromkeys(dup))[:10]}; expected distinct names."
        )
    return records
