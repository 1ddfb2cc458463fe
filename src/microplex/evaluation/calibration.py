"""Calibration diagnostics: achieved vs target totals, weight distribution, Kish effective sample size.

(:func:`kish_ess` and :func:`design_effect` live in :mod:`microplex._stats` and are re-exported here.)

Plain functions of arrays and frames: they judge weights from any calibration method.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np
import pandas as pd

from .._errors import DataValidationError
from .._stats import check_weights, design_effect, kish_ess, misfit_denominator, relative_error

__all__ = [
    "kish_ess",
    "design_effect",
    "weight_summary",
    "weighted_totals",
    "achieved_vs_target",
]


def weight_summary(weights: object) -> pd.Series:
    """Summarises a weight vector.

    Returns
    -------
    pandas.Series
        ``n``, ``sum``, ``mean``, ``min``, ``p1``, ``p50``, ``p99``, ``max``, ``max_over_mean``,
        ``cv`` (population coefficient of variation), ``zero_share``, ``kish_ess``,
        ``ess_share`` (ESS / n) and ``design_effect`` (n / ESS). ``n`` counts every record, those of
        weight 0 too, so ``ess_share`` and ``design_effect`` read the file as it is: a file of
        candidates of which few carry weight (sparse weights on every candidate) shows a large
        design effect beside its ``zero_share``, where ``SparseCalibrator``'s summary gives the
        design effect of the kept records (``n`` their number).

    Examples
    --------
    >>> weight_summary([1.0, 1.0, 2.0])[["n", "sum", "kish_ess"]].round(3).tolist()
    [3.0, 4.0, 2.667]
    """
    w = np.asarray(weights, dtype=float).reshape(-1)
    ess = kish_ess(w)
    mean = w.mean()
    scaled = w / w.max()
    return pd.Series(
        {
            "n": float(w.shape[0]),
            "sum": float(w.sum()),
            "mean": float(mean),
            "min": float(w.min()),
            "p1": float(np.quantile(w, 0.01)),
            "p50": float(np.quantile(w, 0.5)),
            "p99": float(np.quantile(w, 0.99)),
            "max": float(w.max()),
            "max_over_mean": float(w.max() / mean),
            "cv": float(scaled.std() / scaled.mean()),  # scaled: the squares of weights near 1e300 overflow
            "zero_share": float(np.mean(w == 0)),
            "kish_ess": ess,
            "ess_share": ess / w.shape[0],
            "design_effect": w.shape[0] / ess,
        }
    )


def _target_name(key: Hashable) -> str:
    if isinstance(key, tuple) and len(key) == 2:
        return f"{key[0]}={key[1]}"
    return str(key)


def weighted_totals(df: pd.DataFrame, weights: object, keys: object) -> pd.Series:
    """Returns weighted totals of ``df`` for each target key.

    A key ``"col"`` is the weighted sum of a numeric column; a key ``("col", value)`` is the
    weighted count of rows where ``col == value``, matched as the calibration matches a filter value
    (``1`` finds ``1.0`` and ``"1"``; a boolean is no number); a value no row holds counts 0. Missing
    values count as 0.

    Examples
    --------
    >>> df = pd.DataFrame({"inc": [10.0, 20.0], "sex": ["f", "m"]})
    >>> weighted_totals(df, [2.0, 3.0], ["inc", ("sex", "f")]).tolist()
    [80.0, 2.0]
    """
    from ..calibration.design import value_codes

    w = check_weights(weights, len(df))
    values = {}
    codes: dict[Hashable, tuple[np.ndarray, pd.Index]] = {}
    for key in keys:
        if isinstance(key, tuple) and len(key) == 2:
            col, level = key
            if col not in df.columns:
                raise DataValidationError(f"Target {key!r} names column {col!r}, which is not in the data: got {list(df.columns)}.")
            if col not in codes:  # coded once per column, however many of its levels are targets
                codes[col] = value_codes(df[col])
            values[_target_name(key)] = float(np.sum(w[_level_rows(df[col], key, *codes[col])]))
        else:
            if key not in df.columns:
                raise DataValidationError(f"Target {key!r} is not a column of the data: got {list(df.columns)}.")
            if not pd.api.types.is_numeric_dtype(df[key]):
                raise DataValidationError(
                    f"Target {key!r} must be a numeric column to total: got dtype {df[key].dtype}; "
                    f"use ({key!r}, level) for counts."
                )
            values[_target_name(key)] = float(np.sum(w * df[key].fillna(0).to_numpy(dtype=float)))
    return pd.Series(values, dtype=float)


def _level_rows(column: pd.Series, key: tuple, codes: np.ndarray, uniques: pd.Index) -> np.ndarray:
    """The rows of ``column`` (coded as ``codes`` of ``uniques`` by
    :func:`microplex.calibration.design.value_codes`) holding the level of the count target ``key``, found by
    the calibration's own lookup; a level that matches only by Python's ``True == 1`` is refused, as the
    calibration finds no record for it."""
    from ..calibration.design import lookup_values

    pos = lookup_values(uniques, [key[1]])[0]
    if pos < 0 and bool(np.any((column == key[1]).fillna(False).to_numpy(dtype=bool))):
        raise DataValidationError(
            f"Target {key!r}: column {key[0]!r} holds {key[1]!r} only as a value of another type (a boolean is "
            f"no number: True is not 1), so the calibration finds no record for it; give the level as the column "
            f"holds it (dtype {column.dtype})."
        )
    return codes == pos if pos >= 0 else np.zeros(len(column), dtype=bool)


def _as_totals(x: object) -> pd.Series:
    if isinstance(x, pd.Series):
        x = x.to_dict()
    if isinstance(x, Mapping):
        return pd.Series({_target_name(k): float(v) for k, v in x.items()}, dtype=float)
    return pd.Series(np.asarray(x, dtype=float).reshape(-1))


def achieved_vs_target(achieved: object, targets: object) -> pd.DataFrame:
    """Tabulates achieved against target totals.

    Parameters
    ----------
    achieved, targets : mapping, pandas.Series or array-like
        Totals, matched by key (mappings and Series) or by position (arrays).

    Returns
    -------
    pandas.DataFrame
        Indexed by target name: ``target``, ``achieved``, ``error`` (achieved - target),
        ``rel_error`` (error / |target|, or error when target is 0) and ``misfit``
        (|error| / (1 + |target|), the convergence test of R survey's ``grake``; for targets below 1 in size,
        |error| / (2 |target|), as every calibration front end tests it: :func:`microplex._stats.misfit_denominator`).

    Notes
    -----
    Only totals are given, not the records behind them, so no target's natural size (``sum_i d_i |x_ij|``, what
    its records add up to in size) is known here, and no rounding floor applies: a target of 0 reads its absolute
    error in both ``rel_error`` and ``misfit``. (:meth:`microplex.calibration.CalibrationResult.report` reads it
    over a thousandth of that size at the weights its solve started from, a hard fit's count or sum of 0 at the
    targets' scale, which weights judged after the fact do not have: at the weights judged, a count of 0's size
    is its own miss, so that unit would read 1000 for any count left in the cell, of 1e-12 persons or of 1e6.) This
    table gives no verdict: a calibration front end calls such a target met when its miss is within float64
    rounding of its natural size (:func:`microplex._stats.rounding_scale`; its report's ``met`` column), which can
    leave a miss of 1 or more on a total of 0 over records weighing 1e12.

    Examples
    --------
    >>> achieved_vs_target({"a": 110.0, "b": 50.0}, {"a": 100.0, "b": 50.0})["rel_error"].tolist()
    [0.1, 0.0]
    >>> achieved_vs_target({"zero": 1e-13}, {"zero": 0.0})[["rel_error", "misfit"]].iloc[0].tolist()
    [1e-13, 1e-13]
    """
    a, t = _as_totals(achieved), _as_totals(targets)
    missing = [k for k in t.index if k not in a.index]
    if missing or len(a) != len(t):
        raise DataValidationError(
            f"achieved and targets must have the same keys: expected {list(t.index)}, got {list(a.index)}."
        )
    a = a.reindex(t.index)
    err = a - t
    rel = pd.Series(relative_error(a.to_numpy(), t.to_numpy()), index=t.index)
    misfit = err.abs() / misfit_denominator(t.to_numpy())
    return pd.DataFrame({"target": t, "achieved": a, "error": err, "rel_error": rel, "misfit": misfit})
