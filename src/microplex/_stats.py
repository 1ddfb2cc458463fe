"""Weighted statistics: the one place every weighted number of microplex is computed.

Bottom layer (imports only numpy, pandas and :mod:`microplex._errors`): calibration, synthesis,
scale, fusion, households, evaluation and the benchmarks import these functions rather than
writing their own. A record of integer weight ``k`` counts exactly like ``k`` copies of it.

* :func:`check_weights`: the weight check (finite, non-negative, positive sum) behind every
  weight argument and weight column; :func:`check_weight_dtype`: a weight column's dtype.
* Moments and order statistics: :func:`weighted_quantile`, :func:`weighted_mean_var`,
  :func:`weighted_std`, :func:`weighted_pearson`, :func:`ecdf`.
* Distances between two weighted samples: :func:`ks_distance` (Kolmogorov-Smirnov),
  :func:`tv_distance` (total variation of category shares); :func:`category_shares` and
  :func:`weighted_mode` of one sample.
* Discrete structure: :func:`check_household_ids` (ids of two types that print alike),
  :func:`value_shares`, :func:`heaviest_values` (heaps), :func:`decimal_levels`,
  :func:`storage_precision` and :func:`round_shares` (round numbers),
  :func:`detect_point_masses`, :func:`one_hot`,
  :func:`is_numeric` (the categorical test), :func:`systematic_counts` (systematic rounding).
* Weights and targets: :func:`kish_ess`, :func:`design_effect`, :func:`relative_error`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ._errors import DataValidationError

__all__ = [
    "check_weights",
    "check_weight_dtype",
    "weighted_quantile",
    "weighted_mean_var",
    "weighted_std",
    "weighted_pearson",
    "ecdf",
    "ks_distance",
    "category_shares",
    "weighted_mode",
    "tv_distance",
    "unseen_categories",
    "check_household_ids",
    "value_family",
    "family_firsts",
    "category_codes",
    "sorted_categories",
    "bool_flags",
    "value_shares",
    "heaviest_values",
    "decimal_levels",
    "storage_precision",
    "dtype_precision",
    "shared_precision",
    "stored_at",
    "narrow_type",
    "round_shares",
    "detect_point_masses",
    "one_hot",
    "is_numeric",
    "systematic_counts",
    "kish_ess",
    "design_effect",
    "misfit_denominator",
    "MISS_FLOOR",
    "miss_scale",
    "zero_scale",
    "zero_unit",
    "ROUNDING_SHARE",
    "rounding_scale",
    "relative_error",
]


def check_weight_dtype(column: pd.Series, what: str) -> None:
    """Refuses a weight column whose dtype holds no real numbers: text, complex numbers, and booleans
    (read as 1/0, they dropped the records marked False without a word); ``what`` names the column.

    Examples
    --------
    >>> check_weight_dtype(pd.Series([True, False]), "Weight column 'w'")
    Traceback (most recent call last):
    ...
    microplex._errors.DataValidationError: Weight column 'w' must be numeric. Got dtype bool instead.
    """
    d = column.dtype
    if not pd.api.types.is_numeric_dtype(d) or pd.api.types.is_bool_dtype(d) or pd.api.types.is_complex_dtype(d):
        raise DataValidationError(f"{what} must be numeric. Got dtype {d} instead.")


def check_weights(weights: object, n: int | None = None, name: str = "weights", *, positive: bool = False,
                  signed: bool = False) -> np.ndarray:
    """Returns ``weights`` as a float64 array after checking them (ones when ``weights`` is None).

    Parameters
    ----------
    weights : array-like of shape (n,) or None
        The weights.
    n : int, default=None
        Expected length (the number of rows); ``None`` accepts any length (``weights`` required).
    name : str, default="weights"
        How the error messages name the weights (e.g. ``"Weight column 'w'"``, ``"real weights"``).
    positive : bool, default=False
        Require every weight > 0 (design weights) instead of >= 0.
    signed : bool, default=False
        Accept weights of any sign (a linear calibration's, totalled as they are): only weights that are not
        numbers, of another length, missing or infinite, or whose sum overflows float64, are refused.

    Raises
    ------
    DataValidationError
        Weights that are not numbers, of another length, missing or infinite, negative (or 0 with
        ``positive``), with a sum of 0 or a sum that overflows float64 (with ``signed``: of another length,
        missing or infinite, or a sum of absolute values that overflows).

    Examples
    --------
    >>> check_weights([1, 2], 2).tolist()
    [1.0, 2.0]
    >>> check_weights([1.0, -2.0], 2, "real weights")
    Traceback (most recent call last):
    ...
    microplex._errors.DataValidationError: real weights has 1 negative weights (min -2); weights must be non-negative (>= 0).
    """
    if weights is None:
        if n is None:
            raise DataValidationError(f"{name} must be given: got None.")
        return np.ones(n, dtype=float)
    try:
        w = np.asarray(weights, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        count = "" if n is None else f"{n} "
        raise DataValidationError(f"{name} must be {count}numbers. Got {type(weights).__name__} holding other values.") from None
    if n is not None and w.shape[0] != n:
        raise DataValidationError(f"{name} must have one entry per row: expected {n}, got {w.shape[0]}.")
    bad = ~np.isfinite(w)
    if bad.any():
        raise DataValidationError(f"{name} has {int(bad.sum())} missing or infinite values; weights must be finite.")
    low = (w <= 0) if positive else (w < 0)
    if not signed and low.any():
        rule = "positive (> 0)" if positive else "non-negative (>= 0)"
        kind = "non-positive" if positive else "negative"
        raise DataValidationError(f"{name} has {int(low.sum())} {kind} weights (min {w.min():g}); weights must be {rule}.")
    total = np.abs(w).sum() if signed else w.sum()
    if not np.isfinite(total):
        raise DataValidationError(
            f"{name} sums to infinity in float64 (max {np.abs(w).max():g}): the weights are too large; rescale them."
        )
    if not signed and w.shape[0] > 0 and total <= 0:
        raise DataValidationError(f"{name} sums to {total:g}; it must sum to a positive value.")
    return w


def weighted_quantile(values: object, q: object, weights: object = None, *, method: str = "inverted_cdf") -> np.ndarray:
    """Returns weighted quantiles by the inverted empirical CDF (smallest x with F(x) >= q).

    With equal weights this equals ``numpy.quantile(values, q, method="inverted_cdf")``.
    ``method="interpolated"`` instead interpolates linearly between the distinct values, each
    placed at the middle of its step of the weighted CDF (Hazen's plotting positions: with equal
    weights and distinct values, ``numpy.quantile(values, q, method="hazen")``); probabilities
    below the first or above the last position give the smallest or largest value. The result
    is continuous and strictly increasing in ``q`` between those positions, and is a data value
    only where ``q`` falls exactly on a position.

    Parameters
    ----------
    values : array-like of shape (n,)
        Sample; missing values are dropped.
    q : float or array-like of floats in [0, 1]
        Probabilities.
    weights : array-like of shape (n,), default=None
        Non-negative weights; values of weight 0 are left out.

    Examples
    --------
    >>> weighted_quantile([1.0, 2.0, 3.0], 0.5, weights=[1, 1, 5]).item()
    3.0
    >>> weighted_quantile([1.0, 2.0, 3.0, 4.0], [0.25, 0.5], method="interpolated").tolist()
    [1.5, 2.5]
    >>> weighted_quantile([0.0, 2.0, 3.0], 0.0, weights=[0, 1, 1]).item()   # weight 0: not in the population
    2.0
    """
    try:
        qa = np.atleast_1d(np.asarray(q, dtype=float)) if not isinstance(q, str) else None
    except (TypeError, ValueError):
        qa = None
    if qa is None or not np.all((qa >= 0) & (qa <= 1)):
        raise DataValidationError(f"The 'q' parameter must hold probabilities in [0, 1]. Got {q!r} instead.")
    if method not in ("inverted_cdf", "interpolated"):
        raise DataValidationError(
            f"The 'method' parameter must be 'inverted_cdf' or 'interpolated'. Got {method!r} instead."
        )
    x = np.asarray(values, dtype=float).reshape(-1)
    w = check_weights(weights, x.shape[0])
    keep = ~np.isnan(x) & (w > 0)  # a zero-weight value is not in the population (not even its minimum)
    if not np.isnan(x).all() and not keep.any():
        raise DataValidationError("weighted_quantile needs a non-missing value of positive weight, got none.")
    x, w = x[keep], w[keep]
    if x.shape[0] == 0:
        raise DataValidationError("weighted_quantile needs at least 1 non-missing value, got 0.")
    if method == "interpolated":
        distinct, inverse = np.unique(x, return_inverse=True)
        mass = np.bincount(inverse.reshape(-1), weights=w, minlength=distinct.shape[0])
        cum = np.cumsum(mass)
        return np.interp(qa, (cum - mass / 2) / cum[-1], distinct)
    order = np.argsort(x, kind="stable")
    x, w = x[order], w[order]
    cdf = np.cumsum(w) / w.sum()
    idx = np.searchsorted(cdf, qa - 1e-12, side="left")
    return x[np.clip(idx, 0, x.shape[0] - 1)]


def _power_of_two_scale(x: np.ndarray) -> float:
    """A power of two s with 1 <= max |x| / s < 2 (1 for all-zero x): dividing by it is exact in binary
    floating point (2**1024, the next power above the float64 limit, would overflow)."""
    top = float(np.max(np.abs(x), initial=0.0))
    return float(np.ldexp(1.0, np.frexp(top)[1] - 1)) if 0 < top < np.inf else 1.0


def _scaled_moments(x: np.ndarray, w: np.ndarray) -> tuple[float, float, float]:
    """(mean, variance, s) of x / s for a power of two s: exact rescaling, so ``s * mean`` and
    ``s**2 * variance`` equal the direct formulas bit for bit, yet values near the float64 limit
    do not overflow."""
    s = _power_of_two_scale(x)
    xs = x / s
    if xs.size and xs.min() == xs.max():  # one value: its mean is that value, its variance 0 (np.average of one
        return float(xs[0]), 0.0, s        # value at a weight of 655.06 is an ulp off, and its variance 8e-31)
    mean = np.average(xs, weights=w)
    return float(mean), float(np.average((xs - mean) ** 2, weights=w)), s


def weighted_mean_var(x: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Weighted mean and population variance ``sum w (x - mean)^2 / sum w`` of clean arrays.

    Examples
    --------
    >>> weighted_mean_var(np.array([0.0, 2.0]), np.array([1.0, 3.0]))
    (1.5, 0.75)
    >>> weighted_mean_var(np.array([7.410377345397439]), np.array([655.064615384615]))  # one value: exactly
    (7.410377345397439, 0.0)
    """
    mean, var, s = _scaled_moments(np.asarray(x, dtype=float), np.asarray(w, dtype=float))
    return mean * s, var * s * s


def weighted_std(values: object, weights: object = None) -> float:
    """Returns the weighted population standard deviation (missing values dropped).

    Examples
    --------
    >>> weighted_std([0.0, 2.0])
    1.0
    """
    x = np.asarray(values, dtype=float).reshape(-1)
    w = check_weights(weights, x.shape[0])
    keep = ~np.isnan(x)
    x, w = x[keep], w[keep]
    if x.shape[0] == 0 or w.sum() <= 0:
        raise DataValidationError("weighted_std needs at least 1 non-missing value with positive weight, got 0.")
    if not np.all(np.isfinite(x)):
        raise DataValidationError("weighted_std needs finite values: got an infinite value.")
    _, var, s = _scaled_moments(x, w)
    return float(s * np.sqrt(var))


def weighted_pearson(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """Weighted Pearson correlation of two arrays over the pairs where both are present.

    0 when a variable is constant or no weight is left.

    Examples
    --------
    >>> weighted_pearson(np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, np.nan]), np.ones(3))
    -1.0
    """
    x, y, w = (np.asarray(a, dtype=float) for a in (x, y, w))
    keep = ~(np.isnan(x) | np.isnan(y)) & (w > 0)  # records of weight 0 are outside the population (and its scale)
    x, y, w = x[keep], y[keep], w[keep]
    if w.sum() <= 0:
        return 0.0
    for scale in (np.max(np.abs(x), initial=0.0), np.max(np.abs(y), initial=0.0)):
        if scale == 0:
            return 0.0
    x, y = x / np.max(np.abs(x)), y / np.max(np.abs(y))  # scale-free: no overflow near the float64 limit
    dx, dy = x - np.average(x, weights=w), y - np.average(y, weights=w)
    den = np.sqrt(np.average(dx * dx, weights=w) * np.average(dy * dy, weights=w))
    return float(np.average(dx * dy, weights=w) / den) if den > 0 else 0.0


def ecdf(x: np.ndarray, w: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Weighted empirical CDF of ``x`` evaluated at ``at``: share of weight on values <= each point.

    Examples
    --------
    >>> ecdf(np.array([1.0, 2.0]), np.array([1.0, 3.0]), np.array([0.0, 1.0, 2.0])).tolist()
    [0.0, 0.25, 1.0]
    """
    order = np.argsort(x, kind="stable")
    xs, cw = x[order], np.cumsum(w[order])
    idx = np.searchsorted(xs, at, side="right")
    return np.where(idx > 0, cw[np.maximum(idx - 1, 0)], 0.0) / cw[-1]


def ks_distance(x: np.ndarray, y: np.ndarray, wx: np.ndarray | None = None, wy: np.ndarray | None = None) -> float:
    """Kolmogorov-Smirnov distance ``sup |F_x - F_y|`` of two weighted samples (clean arrays).

    0 for identical distributions, 1 for disjoint supports; 0 when both samples are empty.

    Examples
    --------
    >>> ks_distance(np.array([1.0, 2.0, 3.0, 4.0]), np.array([3.0, 4.0, 5.0, 6.0]))
    0.5
    """
    x, y = np.asarray(x, dtype=float).reshape(-1), np.asarray(y, dtype=float).reshape(-1)
    wx = np.ones(x.shape[0]) if wx is None else np.asarray(wx, dtype=float).reshape(-1)
    wy = np.ones(y.shape[0]) if wy is None else np.asarray(wy, dtype=float).reshape(-1)
    grid = np.union1d(x, y)
    if not len(grid):
        return 0.0
    return float(np.max(np.abs(ecdf(x, wx, grid) - ecdf(y, wy, grid))))


def category_shares(x: object, w: np.ndarray) -> pd.Series:
    """Weight share of every category of ``x`` (in order of first appearance).

    Examples
    --------
    >>> category_shares(["b", "a", "b"], np.array([1.0, 2.0, 1.0])).to_dict()
    {'b': 0.5, 'a': 0.5}
    """
    w = np.asarray(w, dtype=float)
    return pd.Series(w).groupby(pd.Series(x, dtype=object).to_numpy(), sort=False).sum() / w.sum()


def weighted_mode(x: object, w: np.ndarray) -> Any:
    """The category of ``x`` with the largest total weight ``w``; among categories of equal total, the first
    in :func:`sorted_categories` order (not the first met: the same records in another order give the same
    mode). Missing values are dropped; categories are compared as :func:`category_shares` compares them.

    Raises
    ------
    DataValidationError
        When ``x`` holds no value but missing ones.

    Examples
    --------
    >>> weighted_mode(["a", "a", "a", "b"], np.array([1.0, 1.0, 1.0, 5.0]))
    'b'
    >>> weighted_mode([3, 2, 1], np.array([1.0, 2.0, 2.0]))  # 1 and 2 tie: the first in sorted order
    1
    """
    vals = pd.Series(x, dtype=object).to_numpy()
    w = np.asarray(w, dtype=float).reshape(-1)
    keep = ~pd.isna(vals)
    if not keep.any():
        raise DataValidationError("weighted_mode: the values are all missing; there is no mode.")
    totals = pd.Series(w[keep]).groupby(vals[keep], sort=False).sum()
    top = sorted_categories(totals.index[totals.to_numpy() == totals.max()])[0]
    return top.item() if isinstance(top, np.generic) else top


def bool_flags(values: pd.Series | pd.Index) -> np.ndarray:
    """Which of ``values`` are booleans (``bool`` or ``numpy.bool_``): by the dtype where it says (a boolean
    dtype: every value; another numeric dtype: none), per category for a categorical, else value by value.

    Examples
    --------
    >>> bool_flags(pd.Series([True, 1, "a"], dtype=object)).tolist(), bool_flags(pd.Index([0, 1])).tolist()
    ([True, False, False], [False, False])
    """
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):  # also a categorical of booleans
        return np.ones(len(values), dtype=bool)
    if pd.api.types.is_numeric_dtype(dtype):
        return np.zeros(len(values), dtype=bool)
    if isinstance(dtype, pd.CategoricalDtype):
        cat = values.array
        flags = bool_flags(pd.Series(cat.categories, dtype=object))
        if not flags.any():
            return np.zeros(len(values), dtype=bool)
        return np.where(cat.codes >= 0, flags[np.maximum(cat.codes, 0)], False)
    return np.fromiter((isinstance(v, bool | np.bool_) for v in values), dtype=bool, count=len(values))


def category_codes(values: object, categories: object) -> np.ndarray:
    """The position of each value in ``categories`` (``-1`` where absent), shape (n,), int64.

    Values are compared as pandas compares them (``1`` and ``1.0`` match; ``1`` and ``"1"`` do not),
    except that a boolean never matches a number: Python has ``True == 1``, and a bool column given for
    categories 0/1 (or the reverse) would otherwise be read as those numbers without a word.

    Examples
    --------
    >>> category_codes(["b", "a", "z"], ["a", "b"]).tolist()
    [1, 0, -1]
    >>> category_codes([True, 1, 0.0], [0, 1]).tolist()
    [-1, 1, 0]
    """
    raw = values if isinstance(values, pd.Series) else pd.Series(values)
    vals = raw.astype(object)
    cats = pd.Index(pd.Series(categories, dtype=object), dtype=object)
    codes = cats.get_indexer(vals).astype(np.int64)
    if not any(isinstance(c, bool | np.bool_ | int | float | np.number) for c in cats):
        return codes  # no category a boolean could be confused with (or that could be confused with one)
    cat_bool = bool_flags(pd.Series(cats, dtype=object))
    val_bool = bool_flags(raw)
    hit = codes >= 0
    codes[hit & (val_bool != cat_bool[np.where(hit, codes, 0)])] = -1
    return codes


def sorted_categories(values: Any) -> list[Any]:
    """``values`` in the order a fitted model lists categories: by type name, then value (mixed types sort).

    Examples
    --------
    >>> sorted_categories(["b", 2, "a", 1.5])
    [1.5, 2, 'a', 'b']
    """
    return sorted(values, key=lambda v: (str(type(v)), v))


def unseen_categories(values: object, known: object) -> list[Any]:
    """The distinct values of ``values`` (in order of first appearance) that ``known`` does not hold,
    compared as :func:`category_codes` compares (``1`` and ``"1"`` differ, a boolean is no number); a
    missing value counts as a value (drop it first where missing is allowed).

    Examples
    --------
    >>> unseen_categories(["a", "c", "c", 1, True], ["a", "b", "1", 1])
    ['c', True]
    """
    vals = pd.Series(values, dtype=object)
    unseen = vals[category_codes(vals, known) < 0]
    # distinct by (is a boolean, value): True and 1 are equal and hash alike, so pd.unique would merge them
    firsts = ~pd.Series(list(zip(bool_flags(unseen), unseen)), dtype=object).duplicated().to_numpy()
    return [v.item() if isinstance(v, np.generic) else v for v in unseen[firsts]]


def value_family(v: object) -> str | None:
    """The scalar type of a category value: ``"bool"``, ``"int"`` (within int64), ``"float"`` (finite), ``"str"``,
    or ``None`` for anything else (a missing value, a Decimal, a date, a list). A column of categories holds one
    family: the Synthesizer models and ``evaluate`` scores categories by value, so a column mixing families (an
    income's numbers with the label 'Refused') is refused by both.

    Examples
    --------
    >>> [value_family(v) for v in (True, 3, 2.5, "a", float("nan"), None)]
    ['bool', 'int', 'float', 'str', None, None]
    """
    if isinstance(v, bool | np.bool_):
        return "bool"
    if isinstance(v, int | np.integer):
        return "int" if -(2**63) <= int(v) < 2**63 else None
    if isinstance(v, float | np.floating):
        return "float" if np.isfinite(v) else None
    if isinstance(v, str):
        return "str"
    return None


def family_firsts(values: Any) -> dict[str, Any]:
    """The first of ``values`` of each :func:`value_family`, in the order met (values of no family left out): a
    column whose values span two families mixes types.

    Examples
    --------
    >>> family_firsts(["a", 5, "b", 2.5, None])
    {'str': 'a', 'int': 5, 'float': 2.5}
    """
    firsts: dict[str, Any] = {}
    for v in values:
        family = value_family(v)
        if family is not None:
            firsts.setdefault(family, v)
    return firsts


def category_type_clash(x: object, y: object) -> tuple[Any, Any] | None:
    """The first category of ``x`` that ``y`` holds only under another type with the same label (``True`` and
    ``"True"``, ``1`` and ``"1"``), with its twin in ``y``; ``None`` when there is none. Categories are compared
    by value throughout microplex, so such a pair reads as two different categories.

    Examples
    --------
    >>> category_type_clash([1, 2], ["1", "2"])
    (1, '1')
    >>> category_type_clash(["a", "b"], ["a", "c"]) is None
    True
    """
    ys = pd.unique(pd.Series(y, dtype=object).dropna())
    labels = {str(v): v for v in ys}
    for v in unseen_categories(pd.Series(x, dtype=object).dropna(), ys):
        if str(v) in labels:
            twin = labels[str(v)]
            return (v.item() if isinstance(v, np.generic) else v, twin.item() if isinstance(twin, np.generic) else twin)
    return None


def check_household_ids(ids: pd.Series, column: str, rows: str) -> None:
    """Refuses household ids of two types that print alike (``1`` and ``"1"``, ``True`` and ``"True"``): they are
    different values, so their ``rows`` would be different households, silently. The one check behind
    ``HouseholdSynthesizer`` and the calibrators' ``household_col``.

    Parameters
    ----------
    ids : pandas.Series
        The household id column, without missing values.
    column : str
        Its name, for the message.
    rows : str
        What its rows are, for the message (``"persons"``, ``"households"``, ``"records"``).

    Raises
    ------
    DataValidationError
        Naming the column, the first five such ids and their types.

    Examples
    --------
    >>> check_household_ids(pd.Series([1, "1", 2], dtype=object), "hid", "records")
    Traceback (most recent call last):
    ...
    microplex._errors.DataValidationError: Household ids 1, '1' of column 'hid' are different values of types ['int', 'str'] ...
    """
    if isinstance(ids.dtype, pd.CategoricalDtype):
        ids = ids.astype(object)
    if ids.dtype != object:
        return
    uniq = pd.Series(pd.unique(ids), dtype=object)
    twins = [v.item() if isinstance(v, np.generic) else v for v in uniq[uniq.astype(str).duplicated(keep=False)]]
    if twins:
        shown = ", ".join(repr(v) for v in twins[:5]) + (f" and {len(twins) - 5} more" if len(twins) > 5 else "")
        raise DataValidationError(
            f"Household ids {shown} of column {column!r} are different values of types "
            f"{sorted({type(v).__name__ for v in twins})} that print alike: their {rows} would be different "
            f"households. Give the ids one type (e.g. df[{column!r}].astype(str))."
        )


def tv_distance(x: object, y: object, wx: object = None, wy: object = None) -> float:
    """Total variation distance ``0.5 * sum_k |p_x(k) - p_y(k)|`` between weighted category shares.

    0 for identical shares, 1 for disjoint categories. Categories are compared as they are
    (``1`` and ``"1"`` differ); missing values are dropped.

    Examples
    --------
    >>> tv_distance(["x", "x", "y", "y"], ["x", "y", "y", "y"])
    0.25
    """
    x, y = np.asarray(pd.Series(x, dtype=object)), np.asarray(pd.Series(y, dtype=object))
    wx = np.ones(len(x)) if wx is None else np.asarray(wx, dtype=float).reshape(-1)
    wy = np.ones(len(y)) if wy is None else np.asarray(wy, dtype=float).reshape(-1)
    kx, ky = ~pd.isna(x), ~pd.isna(y)
    x, y, wx, wy = x[kx], y[ky], wx[kx], wy[ky]
    diff = category_shares(x, wx).sub(category_shares(y, wy), fill_value=0.0).abs().sum()
    return float(0.5 * diff)


#: Finest decimal level detected: multiples of 10**-6.
MIN_LEVEL = -6
#: Coarsest decimal level detected: multiples of 10**15 (float64 holds every integer below 2**53, about 9e15).
MAX_LEVEL = 15
#: The level of a value that is a multiple of no 10**k, k >= MIN_LEVEL (a value the grid leaves as drawn).
NO_LEVEL = MIN_LEVEL - 1
#: Tolerance of "a multiple of 10**k": ``_ULPS`` float64 roundings of the ratio ``x / 10**k`` (0.1 * 3 is not 0.3;
#: 1234.56 read from text is 1234.559999...). A tolerance of 1e-9 in units of 10**k read 1e12 + 0.37 as 1e12.
_ULPS = 64
#: A level ``k`` is claimed only where its tolerance is at most ``1 / _MARGIN`` of ``10**k`` (a value of random digits
#: passes at most once in 20): near 1e12 the tolerance is 0.014, so 0.01 is no level there (every value passed).
_MARGIN = 40


#: The float types narrower than float64 whose roundings a column's values may carry (:func:`storage_precision`),
#: narrowest first.
NARROW_PRECISIONS = ("float16", "float32")


def decimal_levels(x: np.ndarray, precision: str = "float64") -> np.ndarray:
    """The decimal level of each value: the largest ``k`` in [MIN_LEVEL, MAX_LEVEL] with ``x`` a
    multiple of ``10**k``; ``NO_LEVEL`` for 0, non-finite values and values that are no multiple of
    ``10**MIN_LEVEL``.

    "A multiple" allows 64 float64 roundings of ``x / 10**k``, and a level is only claimed where that
    tolerance is at most 1/40 of ``10**k``: about 2,800 times the values' float spacing (``np.spacing``),
    so ``10**k >= 2.8e-13 * |x|``. Finer levels cannot be told from float64 rounding: near 1e12 (spacing
    1.2e-4) the finest level is 0, near 1e7 it is -5.

    ``precision`` is the float type the values were stored at (:func:`storage_precision`): at
    ``"float32"`` (or ``"float16"``) a value is a multiple of ``10**k`` when it is that type's rounding
    of one (24.100000381469727, the float32 of 24.1, has level -1; at float64 it has none).

    Examples
    --------
    >>> decimal_levels(np.array([34000.0, 34200.0, 12.5, 7.0, -300.0, 0.1 * 3, np.pi, 0.0])).tolist()
    [3, 2, -1, 0, 2, -1, -7, -7]
    >>> x = np.array([24.1, 0.3, 1e-6], dtype=np.float32).astype(float)
    >>> decimal_levels(x).tolist(), decimal_levels(x, "float32").tolist()
    ([-7, -7, -7], [-1, -1, -6])
    >>> decimal_levels(np.array([1e12 + 3.0, 1e12 + 0.37, 1e12 + 0.01])).tolist()
    [0, -7, 12]
    """
    a = np.abs(np.asarray(x, dtype=float))
    out = np.full(a.shape, NO_LEVEL, dtype=np.int64)
    finite = np.isfinite(a) & (a > 0)
    narrow = narrow_type(precision)
    with np.errstate(over="ignore", invalid="ignore"):
        stored = a.astype(narrow) if narrow is not None else None
        if stored is not None:
            finite &= np.isfinite(stored)  # beyond the narrow type's range a value is stored as no number
        for k in range(MIN_LEVEL, MAX_LEVEL + 1):
            r = a / 10.0**k if k >= 0 else a * 10.0**-k  # powers of ten from 1 up are exact
            m = np.round(r)
            if narrow is None:
                tol = _ULPS * np.finfo(float).eps * r
                on = (np.abs(r - m) <= tol) & (tol <= 1.0 / _MARGIN)
            else:  # the narrow type's rounding of the multiple, written as at_level writes it, is the value
                on = (m * 10.0**k if k >= 0 else m / 10.0**-k).astype(narrow) == stored
            out[finite & (m >= 1) & on] = k
    return out


def narrow_type(precision: str) -> type[np.floating] | None:
    """The numpy type of a narrow ``precision`` (``None`` for ``"float64"``); a :class:`DataValidationError`
    names any other value."""
    if precision == "float64":
        return None
    if precision not in NARROW_PRECISIONS:
        raise DataValidationError(f"The 'precision' must be one of {['float64', *NARROW_PRECISIONS]}. "
                                  f"Got {precision!r:.100} instead.")
    return np.float16 if precision == "float16" else np.float32


def stored_at(x: np.ndarray, precision: str) -> np.ndarray:
    """The values ``x`` (float64) as a column of ``precision`` holds them, widened back to float64 (``x``
    itself at float64).

    >>> stored_at(np.array([24.1, 0.5]), "float32").tolist()
    [24.100000381469727, 0.5]
    """
    x = np.asarray(x, dtype=float)
    narrow = narrow_type(precision)
    if narrow is None:
        return x
    with np.errstate(over="ignore"):
        return x.astype(narrow).astype(float)


def dtype_precision(dtype: Any) -> str:
    """``"float32"``/``"float16"`` for a float dtype of that width (numpy, pandas nullable or Arrow), else
    ``"float64"``: the precision a column of ``dtype`` stores its values at, known without reading them.

    >>> dtype_precision(np.dtype("float32")), dtype_precision(pd.Float32Dtype()), dtype_precision(np.dtype("int64"))
    ('float32', 'float32', 'float64')
    """
    try:
        dt = np.dtype(getattr(dtype, "numpy_dtype", dtype))
    except TypeError:
        return "float64"
    if dt.kind == "f" and dt.itemsize in (2, 4):
        return "float16" if dt.itemsize == 2 else "float32"
    return "float64"


def shared_precision(*dtypes: Any) -> str:
    """The narrowest :func:`dtype_precision` of ``dtypes``: the precision at which values of columns of
    these dtypes compare (a float32 column's 24.100000381469727 is a float64 column's 24.1).

    >>> shared_precision(np.dtype("float64"), np.dtype("float32")), shared_precision(np.dtype("int64"))
    ('float32', 'float64')
    """
    found = {dtype_precision(d) for d in dtypes}
    return next((p for p in NARROW_PRECISIONS if p in found), "float64")


def storage_precision(x: np.ndarray, dtype: Any = None) -> str:
    """The float type the values ``x`` were stored at, as :func:`decimal_levels` reads it: that of
    ``dtype`` when it is a float32 or float16 dtype (numpy, pandas nullable or Arrow), else the narrowest
    of :data:`NARROW_PRECISIONS` that holds every finite value exactly *and* whose rounding of a decimal
    some value is (a value with a coarser decimal level at that precision than at float64), else
    ``"float64"``. A float32 column, or one read as float32 and widened (a Parquet file, a
    concatenation), holds 24.100000381469727 for 24.1: read at float64 it is no multiple of 0.1, so
    its round values would not count as round. Values that are as round at float64 (integers, halves)
    give no evidence and keep ``"float64"``.

    Examples
    --------
    >>> storage_precision(np.array([24.1, 3.5, 0.0], dtype=np.float32).astype(float))
    'float32'
    >>> storage_precision(np.array([24.1, 3.5])), storage_precision(np.array([2.5, 7.0, 1e6]))
    ('float64', 'float64')
    >>> storage_precision(np.array([2.5, 7.0]), dtype=np.dtype("float32"))
    'float32'
    """
    declared = "float64" if dtype is None else dtype_precision(dtype)
    if declared != "float64":
        return declared
    a = np.abs(np.asarray(x, dtype=float))
    a = a[np.isfinite(a) & (a > 0)]
    if not a.size or (a == np.round(a)).all():  # integers are as round at every precision
        return "float64"
    base = None
    for precision in NARROW_PRECISIONS:
        if (stored_at(a, precision) == a).all():
            base = decimal_levels(a) if base is None else base
            if (decimal_levels(a, precision) > base).any():
                return precision
    return "float64"


def round_shares(x: np.ndarray, w: np.ndarray, levels: range) -> np.ndarray:
    """The weighted share of the nonzero finite values of ``x`` that are multiples of ``10**k``
    (:func:`decimal_levels` ``>= k``, at the values' :func:`storage_precision`, read from those of positive
    weight), for each ``k`` of ``levels``; zeros where no such value has weight.

    Examples
    --------
    >>> round_shares(np.array([34000.0, 34200.0, 12.5, 0.0]), np.ones(4), range(-1, 4)).tolist()
    [1.0, 0.6666666666666666, 0.6666666666666666, 0.6666666666666666, 0.3333333333333333]
    """
    x, w = np.asarray(x, dtype=float), np.asarray(w, dtype=float)
    on = np.isfinite(x) & (x != 0)
    x, w = x[on], w[on]
    lv = decimal_levels(x, storage_precision(x[w > 0]))
    total = w.sum()
    return np.array([w[lv >= k].sum() / total if total > 0 else 0.0 for k in levels])


def value_shares(x: np.ndarray, w: np.ndarray, total: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of ``x`` (sorted) and the share of the weight each carries (of ``total``,
    by default ``w.sum()``).

    Examples
    --------
    >>> v, s = value_shares(np.array([2.0, 0.0, 2.0, 2.0]), np.ones(4))
    >>> v.tolist(), s.tolist()
    ([0.0, 2.0], [0.25, 0.75])
    """
    values, inverse = np.unique(x, return_inverse=True)
    return values, np.bincount(inverse, weights=w) / (w.sum() if total is None else total)


def heaviest_values(
    x: np.ndarray, w: np.ndarray, threshold: float, max_values: int, *, total: float | None = None, min_count: int = 0
) -> tuple[float, ...]:
    """Values of ``x`` carrying at least ``threshold`` of the weight (of ``total``) and held by at least
    ``min_count`` records: at most ``max_values`` of them, heaviest first; the result is sorted.

    Examples
    --------
    >>> heaviest_values(np.array([1.0, 1.0, 1.0, 2.5, 3.0, 3.0, 7.2]), np.ones(7), 0.2, 5, min_count=3)
    (1.0,)
    """
    values, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    share = np.bincount(inverse, weights=w) / (w.sum() if total is None else total)
    keep = np.flatnonzero((share >= threshold) & (counts >= min_count))
    keep = keep[np.argsort(-share[keep], kind="stable")][:max_values]
    return tuple(sorted(float(v) for v in values[keep]))


def detect_point_masses(
    x: np.ndarray, w: np.ndarray, threshold: float, max_point_masses: int, min_count: int = 0
) -> tuple[float, ...]:
    """Values of ``x`` carrying at least ``threshold`` of the total weight ``w`` and held by at least
    ``min_count`` records of positive weight.

    Exact zeros are always a point mass when present. At most ``max_point_masses`` values are
    kept, heaviest first; the result is sorted.

    Examples
    --------
    >>> x = np.array([0, 0, 1.5, 2.5, 9, 9, 9, 3.1])
    >>> detect_point_masses(x, np.ones(8), 0.2, 5)
    (0.0, 9.0)
    """
    chosen = set(heaviest_values(x[w > 0], w[w > 0], threshold, max_point_masses, total=float(w.sum()),
                                 min_count=min_count))
    if np.any(x == 0):
        chosen.add(0.0)
    return tuple(sorted(float(v) for v in chosen))


def one_hot(codes: np.ndarray, n_levels: int) -> np.ndarray:
    """Indicator matrix of shape (len(codes), n_levels); a code outside ``0 .. n_levels - 1``
    (e.g. -1 for missing) gives a row of zeros.

    Examples
    --------
    >>> one_hot(np.array([1, -1]), 2).tolist()
    [[0.0, 1.0], [0.0, 0.0]]
    """
    return (np.asarray(codes)[:, None] == np.arange(n_levels)[None, :]).astype(float)


def is_numeric(series: pd.Series) -> bool:
    """The categorical test: whether a column is numeric (numbers, not booleans); else categorical.

    Examples
    --------
    >>> is_numeric(pd.Series([1.5])), is_numeric(pd.Series([True])), is_numeric(pd.Series(["a"]))
    (True, False, False)
    """
    dtype = getattr(series, "dtype", series)
    return bool(pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype))


def systematic_counts(p: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Integer counts summing to ``n`` with expectation ``n * p``, each within 1 of it
    (systematic rounding with a random start).

    Examples
    --------
    >>> c = systematic_counts(np.array([0.5, 0.3, 0.2]), 10, np.random.default_rng(0))
    >>> c.tolist(), int(c.sum())
    ([5, 3, 2], 10)
    """
    cum = np.floor(np.concatenate([[0.0], np.cumsum(p) / np.sum(p)]) * n + rng.uniform())
    counts = np.diff(cum).astype(np.int64)
    counts[-1] += n - counts.sum()
    return counts


def kish_ess(weights: object) -> float:
    """Returns Kish's effective sample size ``(sum w)^2 / sum w^2``.

    Equals ``n`` for equal weights and 1 when a single record holds all the weight.

    Examples
    --------
    >>> kish_ess([1.0, 1.0, 1.0, 1.0])
    4.0
    >>> kish_ess([1.0, 0.0, 0.0])
    1.0
    >>> kish_ess([1e300, 1e300])  # scaled by the largest weight first: w**2 would overflow
    2.0
    """
    w = check_weights(weights)
    if w.shape[0] == 0:
        raise DataValidationError("kish_ess needs at least 1 weight, got 0.")
    scaled = w / w.max()
    return float(scaled.sum() ** 2 / np.sum(scaled**2))


def design_effect(weights: object) -> float:
    """Returns Kish's design effect due to weighting, ``n / ESS = 1 + cv^2``.

    Examples
    --------
    >>> design_effect([1.0, 3.0])
    1.25
    """
    w = check_weights(weights)
    return float(w.shape[0] / kish_ess(w))


def misfit_denominator(totals: object, natural: object = None, tol: object = None, *, zero: bool = False) -> np.ndarray:
    """What a calibration target's miss is divided by: R survey's ``1 + |t|``, except for totals below 1 in size,
    where it is ``2 |t|`` (half the relative miss): ``1 + |t|`` would make the test absolute there, and totals of
    small weights (1e-10 each) or small values were "met" by the initial weights. A total of 0 keeps ``1`` (a hard
    :class:`~microplex.calibration.Calibrator` solves its counts and sums of 0 in units of :func:`zero_scale`),
    or with ``zero`` (and ``natural``) :func:`zero_scale` of its natural size: the unit that solve held it to, in
    which the check after it judges it (:func:`zero_unit`); with ``zero`` a total far below its natural size is
    measured against at least the same (:func:`zero_floor`), as one of 0 is.

    Given the targets' natural sizes ``natural`` (``sum_i d_i |x_ij|``, what their records add up to in size) and
    the tolerance ``tol > 0`` the misfit is held to, it is at least :func:`rounding_scale`: a miss within
    :data:`ROUNDING_SHARE` of the natural size (what float64 rounding leaves on a total netting values of both
    signs to 0 or nearly) meets ``tol``. Targets not far below their natural size keep ``1 + |t|`` exactly.

    The one definition behind every solver's convergence test and every reported misfit.

    Examples
    --------
    >>> misfit_denominator(np.array([100.0, 0.0, 0.25, -3e-10])).tolist()
    [101.0, 1.0, 0.5, 6e-10]
    >>> misfit_denominator(np.array([100.0, 0.0]), np.array([200.0, 2.0**50]), 2.0**-30).tolist()
    [101.0, 1099511627776.0]
    >>> misfit_denominator(np.array([100.0, 0.0, 1e-9]), np.array([200.0, 4e-20, 1e6]), 1e-8, zero=True).tolist()
    [101.0, 4e-23, 1000.0]
    """
    a = np.abs(np.asarray(totals, dtype=np.float64))
    out = np.where(a == 0.0, zero_unit(natural, zero), a + np.where(a >= 1.0, 1.0, a))
    if zero:  # a total near 0 in the unit of a total of 0, not far below it
        out = np.maximum(out, zero_floor(natural))
    return out if natural is None else np.maximum(out, rounding_scale(a, natural, tol))


def zero_unit(natural: object, zero: bool) -> np.ndarray | float:
    """What a miss of a target of 0 is measured against before the rounding floor, given its natural size
    ``natural``: R survey's ``1`` (one unit of whatever unit the weights and values are in), or with ``zero``
    :func:`zero_scale` of ``natural``, the unit a hard :class:`~microplex.calibration.Calibrator` solves it in, so
    that the check after that solve and ``report()``'s ``met`` judge it as the solve held it: with weights and values
    of 1e-10 a zero sum missed by half its records' size read met (an absolute miss of 2e-20), and from weights of 1
    against targets of 1e20 a zero sum met to float64 rounding of its records' size read missed (98,304 off).

    Examples
    --------
    >>> zero_unit(np.array([4e-20, 4e20]), True).tolist(), zero_unit(np.array([4e-20]), False)
    ([4e-23, 4e+17], 1.0)
    """
    if not zero:
        return 1.0
    if natural is None:
        raise ValueError("zero_unit(zero=True) needs the targets' natural sizes.")
    return zero_scale(natural)


def zero_scale(natural: object) -> np.ndarray:
    """The unit a hard calibration solves a count or sum target of 0 in, given its natural size ``natural``
    (``sum_i d_i |x_ij|``): :func:`miss_scale` of 0, a thousandth (:data:`MISS_FLOOR`) of what its records add up to
    in size (1 where that is 0, or beyond float64), so that R survey's ``1`` is that. R survey's ``1 + |t|`` is 1 there, one unit of whatever unit the weights and values
    are in: with weights or values of 1e-10 every zero total was met by weights 1e-6 off those met at 1, and
    with both (sizes of 1e-20) a zero sum that no weights within the bounds reach was "met" by weights far from it.

    Examples
    --------
    >>> zero_scale(np.array([5e-7, 0.0, 2e4])).tolist()
    [5e-10, 1.0, 20.0]
    """
    floor = zero_floor(natural)
    return np.where(floor > 0, floor, 1.0)


def zero_floor(natural: object) -> np.ndarray:
    """The least scale a miss of a count or sum target (or a mean, in its value's units) is measured against where
    it is measured as a target of 0 is (the ``zero`` of :func:`relative_error` and :func:`misfit_denominator`): a
    thousandth (:data:`MISS_FLOOR`) of its natural size ``natural``, 0 where that is beyond float64. A target of 0
    is measured against :func:`zero_scale` (this floor, or 1 where it is 0), and a target whose value nets to far
    less than its records' size (a sum of 1e-9 over values of both signs adding up to 1e6 in size) against at least
    the same floor: the scale is continuous at 0 (:func:`miss_scale` of the target against its natural size, as a
    soft fit weighs its misses), so that such a target met to float64 rounding of its records' size never reads a
    relative error of 1e3 (a miss of 1e-6 over its value of 1e-9), and its ``met`` reads as its error does.

    Examples
    --------
    >>> zero_floor(np.array([5e-7, 0.0, 2e4, np.inf])).tolist()
    [5e-10, 0.0, 20.0, 0.0]
    """
    with np.errstate(over="ignore", invalid="ignore"):
        n = np.abs(np.asarray(natural, dtype=np.float64))
        return np.where(np.isfinite(MISS_FLOOR * n), MISS_FLOOR * n, 0.0)


#: The least share of a target's natural size (what its records' values add up to in size at the initial weights)
#: that :func:`miss_scale` weighs its misses against: a total of 0, or one netting large values of both signs to
#: nearly 0, is weighed against the size of its records, not against one unit of whatever unit they are in.
MISS_FLOOR = 1e-3


def miss_scale(totals: object, natural: object, floor: object = MISS_FLOOR) -> np.ndarray:
    """The size a target's miss is weighed against where misses are traded off against each other or against the
    distance (soft calibration's penalties, a sparse subset's soft solve, a mean's solving units): the target's own
    size ``|t|``, but at least ``floor`` (default :data:`MISS_FLOOR`) times its natural size ``natural``
    (``sum_i d_i |x_ij|``), and 1 where both are 0 (a target no record reaches, always met).

    Unit-free, unlike R survey's ``1 + |t|`` (:func:`misfit_denominator`, which stays the convergence test and the
    reported misfit): a trade-off must not depend on the unit of the values or the weights. With ``1 + |t|``, a soft
    fit of incomes in dollars and in thousands of dollars kept different weights (a sum of -451 weighed like a
    relative miss, the same sum of -0.22 in another unit like twice it). With ``floor = ROUNDING_SHARE / tol``, the
    least scale of every convergence and "met" test (:func:`rounding_scale`).

    Examples
    --------
    >>> miss_scale(np.array([100.0, 0.0, 0.25, 0.0]), np.array([200.0, 50.0, 0.25, 0.0])).tolist()
    [100.0, 0.05, 0.25, 1.0]
    """
    t = np.abs(np.asarray(totals, dtype=np.float64))
    s = np.maximum(t, floor * np.abs(np.asarray(natural, dtype=np.float64)))
    return np.where(s > 0, s, 1.0)


#: The share of a target's natural size (``sum_i d_i |x_ij|``) that float64 rounding alone may leave as its miss.
#: A total netting values of both signs to 0 (a net transfer, a mean of 0 of gains and losses) is computed to about
#: 2**-52 of that size (a few hundred times it for a million records summed in order), not to its own size: with
#: weights of 1e3 and values of 1e6 its rounding is 1e-3, and a test against ``1 + |t|`` refused an exact solution.
#: 2**-40 (9.1e-13) keeps a margin of 4096 over one rounding.
ROUNDING_SHARE = 2.0**-40


def rounding_scale(totals: object, natural: object, tol: object) -> np.ndarray:
    """The least scale a miss of a target of total ``totals`` and natural size ``natural`` is measured against,
    when it is held to the tolerance ``tol`` (one, or one per target): :func:`miss_scale` with the floor
    ``ROUNDING_SHARE / tol``, so that a miss within :data:`ROUNDING_SHARE` of the natural size (float64 rounding)
    meets the tolerance. Every convergence and "met" test takes the larger of its own scale and this one
    (:func:`misfit_denominator`, :func:`relative_error`): the same test as before where ``|t|`` is not far below
    the natural size. No floor for a tolerance of 0 ("exact") or where the floor is beyond float64.

    Examples
    --------
    >>> rounding_scale(np.array([100.0, 0.0]), np.array([200.0, 2.0**50]), 2.0**-30).tolist()
    [100.0, 1099511627776.0]
    """
    tol = np.asarray(tol, dtype=np.float64)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        floor = np.where(tol > 0, ROUNDING_SHARE / np.where(tol > 0, tol, 1.0), 0.0)
        natural = np.abs(np.asarray(natural, dtype=np.float64))
        # a natural size beyond float64 (or its floor) gives no floor: the test stays R survey's, never void
        natural = np.where(np.isfinite(floor * natural), natural, 0.0)
    return miss_scale(totals, natural, floor)


def relative_error(achieved: object, target: object, natural: object = None, tol: object = None, *,
                   zero: bool = False) -> np.ndarray:
    """Signed relative error ``(achieved - target) / |target|`` (the absolute error where the target is 0; with
    ``zero``, the error over :func:`zero_scale` of its natural size there, :func:`zero_unit`, and over at least
    :func:`zero_floor` of it, a thousandth, where the target is far below its natural size).

    Given the targets' natural sizes ``natural`` and the tolerance ``tol > 0`` the error is held to, the scale is
    at least :func:`rounding_scale` (a miss that is float64 rounding of the natural size meets ``tol``); without
    ``tol``, no rounding floor (the natural sizes serve ``zero`` only).

    Examples
    --------
    >>> relative_error(np.array([101.0, 0.5]), np.array([100.0, 0.0])).tolist()
    [0.01, 0.5]
    >>> relative_error(np.array([101.0, 0.5]), np.array([100.0, 0.0]), np.array([100.0, 2.0**50]), 2.0**-30).tolist()
    [0.01, 4.547473508864641e-13]
    >>> relative_error(np.array([101.0, 2e-9]), np.array([100.0, 1e-9]), np.array([200.0, 1e6]), zero=True).tolist()
    [0.01, 1e-12]
    """
    a = np.asarray(achieved, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    scale = np.where(t == 0, zero_unit(natural, zero), np.abs(t))
    if zero:  # a target near 0 in the unit of a target of 0 (miss_scale of it), not far below it
        scale = np.maximum(scale, zero_floor(natural))
    if natural is not None and tol is not None:
        scale = np.maximum(scale, rounding_scale(t, natural, tol))
    return (a - t) / scale
