"""Argument checks of the calibration front ends (on top of :mod:`microplex._params`)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from microplex._errors import DataValidationError

__all__ = ["check_bounds", "check_column", "check_distance", "check_records"]


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
    """A non-empty DataFrame with distinct, flat column names."""
    if not isinstance(records, pd.DataFrame):
        raise DataValidationError(f"{what} must be a pandas DataFrame. Got {type(records).__name__} instead.")
    if len(records) == 0:
        raise DataValidationError(f"{what} is empty; at least one record is needed to calibrate.")
    if isinstance(records.columns, pd.MultiIndex):  # a name would select a frame of columns, not one
        raise DataValidationError(
            f"{what} has MultiIndex columns {list(records.columns)[:3]}; calibration names one column by one str: "
            "flatten them first (e.g. df.columns = ['_'.join(map(str, c)) for c in df.columns])."
        )
    dup = records.columns[records.columns.duplicated()]
    if len(dup):
        raise DataValidationError(
            f"{what} has duplicated column names {list(dict.fromkeys(dup))[:10]}; expected distinct names."
        )
    return records


def check_distance(method: Any, bounds: Any, name: str = "method") -> tuple[Any, tuple[float, float]]:
    """A calibration distance (registered name or Distance) and its ratio bounds, checked together.

    Returns ``(distance, (lower, upper))``: bounds default to ``(-inf, inf)``, must contain 1, must be
    finite with ``lower < 1 < upper`` for distances that need it (logit); raking's lower bound is at least 0.
    """
    from .distances import DISTANCES, Distance, get_distance

    if not isinstance(method, (str, Distance)) or (isinstance(method, str) and method not in DISTANCES):
        raise DataValidationError(
            f"The {name!r} parameter must be a Distance or one of {sorted(DISTANCES)}. Got {method!r} instead."
        )
    dist = get_distance(method)
    checked = check_bounds(bounds, "bounds")
    if checked is None:
        checked = (-math.inf, math.inf)
    else:
        lo, hi = checked
        if not lo <= 1.0 <= hi:
            raise DataValidationError(
                f"The 'bounds' parameter must contain 1 (the ratio of unchanged weights). Got {(lo, hi)}."
            )
    if dist.requires_finite_bounds and not (
        math.isfinite(checked[0]) and math.isfinite(checked[1]) and checked[0] < 1.0 < checked[1]
    ):
        raise DataValidationError(
            f"The {name!r} parameter {dist.name!r} needs finite bounds with lower < 1 < upper. Got {bounds!r} instead."
        )
    if dist.name == "raking" and checked[0] < 0:
        checked = (0.0, checked[1])
    return dist, checked
