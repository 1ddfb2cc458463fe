"""Fidelity metrics: small pure functions of (real, synthetic, weights) that return numbers.

(:func:`pmse`, the propensity-score utility, lives in :mod:`.propensity` and is re-exported here.)

Every function accepts optional non-negative weights for each sample (``None`` means equal
weights), drops missing values, and treats a record of integer weight ``k`` exactly like ``k``
copies of it. Distances are 0 for identical distributions; similarities are 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .._errors import DataValidationError
from .._params import check_bool, check_float, check_int, check_names
from .._stats import (ecdf, ks_distance, narrow_type, round_shares, tv_distance, value_shares, weighted_pearson,
                      weighted_quantile, weighted_std)
from ._validation import at_shared_precision, check_weights, clean_pair, is_numeric, refuse_infinite, require_columns
from .propensity import pmse

__all__ = [
    "DEFAULT_QUANTILES",
    "weighted_quantile",
    "weighted_std",
    "ks_statistic",
    "tv_complement",
    "wasserstein",
    "point_mass_shares",
    "point_mass_errors",
    "ROUND_LEVELS",
    "round_share_errors",
    "quantile_errors",
    "weighted_corr",
    "correlation_max_abs_error",
    "discretize",
    "contingency_similarity",
    "subgroup_ks",
    "pmse",
]

#: Quantiles compared by :func:`quantile_errors`, tails included (p1 ... p99.9).
DEFAULT_QUANTILES: tuple[float, ...] = (0.01, 0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95, 0.99, 0.999)


def ks_statistic(real: object, synthetic: object, real_weights: object = None, synthetic_weights: object = None) -> float:
    """Returns the weighted two-sample Kolmogorov-Smirnov statistic sup |F_real - F_synthetic|.

    0 for identical distributions, 1 for disjoint supports. Missing values are dropped; infinite
    values are allowed (the statistic depends on the order of the values only).

    Examples
    --------
    >>> ks_statistic([1, 2, 3, 4], [1, 2, 3, 4])
    0.0
    >>> ks_statistic([1, 2], [3, 4])
    1.0
    """
    xr, xs, wr, ws = clean_pair(real, synthetic, real_weights, synthetic_weights, allow_inf=True)
    return ks_distance(xr, xs, wr, ws)


def tv_complement(real: object, synthetic: object, real_weights: object = None, synthetic_weights: object = None) -> float:
    """Returns 1 - total variation distance between two categorical distributions.

    ``1 - 0.5 * sum_k |p_real(k) - p_synthetic(k)|``: 1 for identical shares, 0 for disjoint
    categories. Missing values are dropped.

    Examples
    --------
    >>> tv_complement(["a", "a", "b", "b"], ["a", "b", "b", "b"])
    0.75
    """
    xr, xs, wr, ws = clean_pair(real, synthetic, real_weights, synthetic_weights, numeric=False)
    return 1.0 - tv_distance(xr, xs, wr, ws)


def wasserstein(
    real: object,
    synthetic: object,
    real_weights: object = None,
    synthetic_weights: object = None,
    *,
    scale: bool = False,
) -> float:
    """Returns the weighted first Wasserstein (earth mover's) distance between two samples.

    Parameters
    ----------
    real, synthetic : array-like
        Numeric samples (missing values dropped; infinite values refused: the distance would be
        infinite, or undefined when scaled).
    real_weights, synthetic_weights : array-like, default=None
        Non-negative weights.
    scale : bool, default=False
        Divide by the weighted standard deviation of ``real`` (unit-free; 1 when that is 0).

    Examples
    --------
    >>> wasserstein([0.0, 1.0], [2.0, 3.0])
    2.0
    """
    check_bool(scale, "scale")
    xr, xs, wr, ws = clean_pair(real, synthetic, real_weights, synthetic_weights)
    d = float(stats.wasserstein_distance(xr, xs, wr, ws))
    if scale:
        sd = weighted_std(xr, wr)
        d = d / sd if sd > 0 else d
    return d


def point_mass_shares(values: object, weights: object = None, *, min_share: float = 0.01) -> pd.Series:
    """Returns the weight share of 0 (where records of positive weight hold it) and of every value holding at
    least ``min_share`` of the weight.

    Examples
    --------
    >>> point_mass_shares([0, 0, 1.5, 2.5, 99, 99, 99, 7.1, 3.3, 4.4], min_share=0.15)
    0.0     0.2
    99.0    0.3
    dtype: float64
    """
    min_share = check_float(min_share, "min_share", low=0.0, high=1.0, low_inclusive=False)
    x = np.asarray(values, dtype=float).reshape(-1)
    w = check_weights(weights, x.shape[0])
    keep = ~np.isnan(x)
    if keep.any() and not w[keep].sum() > 0:
        raise DataValidationError("The weights of the non-missing values sum to 0: their shares are undefined.")
    values, share = value_shares(x[keep], w[keep])
    picked = (share >= min_share) | ((values == 0.0) & (share > 0))  # a 0 only records of weight 0 hold: none
    return pd.Series(share[picked], index=values[picked])


def point_mass_errors(
    real: object,
    synthetic: object,
    real_weights: object = None,
    synthetic_weights: object = None,
    *,
    min_share: float = 0.01,
) -> pd.DataFrame:
    """Compares point masses (zeros, top codes, any value with >= ``min_share`` of weight).

    The masses are the union of those found in either sample, so a spurious synthetic mass counts.

    Returns
    -------
    pandas.DataFrame
        One row per mass value: ``value``, ``real_share``, ``synthetic_share``, ``abs_error``.

    Examples
    --------
    >>> point_mass_errors([0, 0, 1, 2], [0, 3, 4, 5], min_share=0.3)
       value  real_share  synthetic_share  abs_error
    0    0.0         0.5             0.25       0.25
    """
    min_share = check_float(min_share, "min_share", low=0.0, high=1.0, low_inclusive=False)
    xr, xs, wr, ws = clean_pair(real, synthetic, real_weights, synthetic_weights)
    pr = point_mass_shares(xr, wr, min_share=min_share)
    ps = point_mass_shares(xs, ws, min_share=min_share)
    values = np.union1d(pr.index.to_numpy(float), ps.index.to_numpy(float))
    real_share = np.array([wr[xr == v].sum() for v in values]) / wr.sum()
    synth_share = np.array([ws[xs == v].sum() for v in values]) / ws.sum()
    return pd.DataFrame(
        {
            "value": values,
            "real_share": real_share,
            "synthetic_share": synth_share,
            "abs_error": np.abs(real_share - synth_share),
        }
    )


#: The decimal levels :func:`round_share_errors` compares: multiples of 0.01 (whole cents) up to 100,000.
ROUND_LEVELS = range(-2, 6)


def round_share_errors(
    real: object,
    synthetic: object,
    real_weights: object = None,
    synthetic_weights: object = None,
    *,
    levels: range = ROUND_LEVELS,
) -> pd.DataFrame:
    """Compares how often the nonzero values are round numbers: for each ``k`` of ``levels``, the weighted
    share of the nonzero values that are multiples of ``10**k`` (whole cents for -2, whole numbers for 0,
    round thousands for 3), real against synthetic.

    Reported values sit on round numbers far more often than a smooth density allows (an income of
    34,000 rather than 34,217); a model that smears them misses these shares although its KS, at the
    scale of the whole distribution, does not see it. Zeros are left out (:func:`point_mass_errors`
    compares them). Each side is read at the precision its values were stored at
    (:func:`microplex._stats.storage_precision`): a float32 column's 24.100000381469727 is 24.1, a multiple of 0.1.

    Returns
    -------
    pandas.DataFrame
        One row per level: ``level``, ``real_share``, ``synthetic_share``, ``abs_error``.

    Examples
    --------
    >>> round_share_errors([1000.0, 2000.0, 2500.0, 0.0], [1000.0, 2130.5, 2499.9, 0.0], levels=range(0, 4))
       level  real_share  synthetic_share  abs_error
    0      0    1.000000         0.333333   0.666667
    1      1    1.000000         0.333333   0.666667
    2      2    1.000000         0.333333   0.666667
    3      3    0.666667         0.333333   0.333333
    """
    if not isinstance(levels, range) or len(levels) == 0:
        raise DataValidationError(f"The 'levels' parameter must be a non-empty range of decimal levels. Got {levels!r} "
                                  "instead.")
    xr, xs, wr, ws = clean_pair(real, synthetic, real_weights, synthetic_weights)
    real_share, synth_share = round_shares(xr, wr, levels), round_shares(xs, ws, levels)
    return pd.DataFrame({"level": list(levels), "real_share": real_share, "synthetic_share": synth_share,
                         "abs_error": np.abs(real_share - synth_share)})


def quantile_errors(
    real: object,
    synthetic: object,
    real_weights: object = None,
    synthetic_weights: object = None,
    *,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    scale: bool = True,
) -> pd.Series:
    """Returns |q_synthetic - q_real| at each quantile, by default divided by the real weighted std.

    Examples
    --------
    >>> quantile_errors([0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 5.0], quantiles=[0.5, 1.0], scale=False)
    0.5    0.0
    1.0    2.0
    dtype: float64
    """
    check_bool(scale, "scale")
    try:
        qs = np.asarray(quantiles, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        qs = np.array([np.nan])
    if isinstance(quantiles, str) or not len(qs) or not np.all((qs >= 0) & (qs <= 1)):
        raise DataValidationError(f"The 'quantiles' parameter must hold probabilities in [0, 1]. Got {quantiles!r} instead.")
    xr, xs, wr, ws = clean_pair(real, synthetic, real_weights, synthetic_weights)
    (xr, wr), (xs, ws) = ((x[w > 0], w[w > 0]) for x, w in ((xr, wr), (xs, ws)))  # weight 0: no copy of it
    q = np.asarray(quantiles, dtype=float)
    err = np.abs(weighted_quantile(xs, q, ws) - weighted_quantile(xr, q, wr))
    if scale:
        sd = weighted_std(xr, wr)
        err = err / sd if sd > 0 else err
    return pd.Series(err, index=q)


def _weighted_ranks(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Mid-point weighted ECDF value of each entry (NaN kept)."""
    out = np.full(x.shape, np.nan)
    keep = ~np.isnan(x)
    if keep.any():
        xk, wk = x[keep], w[keep]
        below = ecdf(xk, wk, xk) - _shares_at(xk, wk)
        out[keep] = below + 0.5 * _shares_at(xk, wk)
    return out


def _shares_at(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    s = pd.Series(w).groupby(x).transform("sum").to_numpy()
    return s / w.sum()


def weighted_corr(df: pd.DataFrame, weights: object = None, *, method: str = "pearson") -> pd.DataFrame:
    """Returns the weighted correlation matrix of the numeric columns of ``df``.

    Pairwise-complete observations (for ``"spearman"`` the ranks too are taken within the rows where
    both columns are present); a constant column has correlation 0 with the others.

    Parameters
    ----------
    method : {"pearson", "spearman"}, default="pearson"
        ``"spearman"`` correlates weighted mid-ranks.

    Examples
    --------
    >>> df = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [2.0, 4.0, 6.0]})
    >>> weighted_corr(df).loc["a", "b"]
    np.float64(1.0)
    """
    if method not in ("pearson", "spearman"):
        raise DataValidationError(f"The 'method' parameter must be 'pearson' or 'spearman'. Got {method!r} instead.")
    cols = [c for c in df.columns if is_numeric(df[c])]
    w = check_weights(weights, len(df))
    arrays = {c: df[c].to_numpy(dtype=float, na_value=np.nan) for c in cols}
    if method == "pearson":
        for c, a in arrays.items():
            refuse_infinite(a, f"Column {c!r}", "its Pearson correlation is undefined")
    ranks = {c: _weighted_ranks(a, w) for c, a in arrays.items()} if method == "spearman" else arrays
    mat = np.eye(len(cols))
    for i, a in enumerate(cols):
        for j in range(i + 1, len(cols)):
            x, y = ranks[a], ranks[cols[j]]
            if method == "spearman":
                both = ~(np.isnan(arrays[a]) | np.isnan(arrays[cols[j]]))
                if not both.all():  # ranks within the pairwise-complete rows, as pandas' corr does
                    x, y = np.full(len(w), np.nan), np.full(len(w), np.nan)
                    x[both], y[both] = _weighted_ranks(arrays[a][both], w[both]), _weighted_ranks(arrays[cols[j]][both], w[both])
            mat[i, j] = mat[j, i] = weighted_pearson(x, y, w)
    return pd.DataFrame(mat, index=cols, columns=cols)


def correlation_max_abs_error(
    real_df: pd.DataFrame,
    synthetic_df: pd.DataFrame,
    real_weights: object = None,
    synthetic_weights: object = None,
    *,
    method: str = "pearson",
) -> float:
    """Returns max |corr_real - corr_synthetic| over pairs of the numeric columns of ``real_df``.

    Examples
    --------
    >>> r = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [1.0, 2.0, 3.0]})
    >>> s = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [3.0, 2.0, 1.0]})
    >>> correlation_max_abs_error(r, s)
    2.0
    """
    cols = [c for c in real_df.columns if is_numeric(real_df[c])]
    if len(cols) < 2:
        return 0.0
    require_columns(synthetic_df, cols, "synthetic_df", numeric=True)
    cr = weighted_corr(real_df[cols], real_weights, method=method)
    cs = weighted_corr(synthetic_df[cols], synthetic_weights, method=method)
    return float(np.max(np.abs(cr.to_numpy() - cs.to_numpy())))


def quantile_cuts(values: pd.Series, weights: np.ndarray, bins: int) -> np.ndarray | None:
    """The cut points that group a numeric column into ``bins`` groups at its weighted quantiles (the
    distinct inner quantiles, sorted; a value ``x`` falls in group ``searchsorted(cuts, x, side="right")``),
    or None when the column is not numeric or its records of positive weight hold at most ``bins``
    distinct values (compared as they are). Records of weight 0 are outside the weighted population:
    they neither decide whether a column is cut nor where. Every binning of :mod:`microplex.evaluation`
    (contingency tables, subgroups, attack cells) cuts here.

    Examples
    --------
    >>> quantile_cuts(pd.Series([1.0, 2.0, 3.0, 4.0]), np.ones(4), 2).tolist()
    [2.0]
    >>> quantile_cuts(pd.Series([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 0.0]), 2) is None
    True
    """
    if not is_numeric(values) or values[weights > 0].nunique() <= bins:
        return None
    x = values.to_numpy(dtype=float, na_value=np.nan)
    return np.unique(weighted_quantile(x, np.linspace(0, 1, bins + 1)[1:-1], weights))


def _cut_label(e: float, digits: int) -> str:
    """One cut point at ``digits`` significant digits, never fewer than its integer part holds; an integer as
    written (``201903``, not ``2.019e+05``)."""
    e = float(e)
    if e.is_integer() and abs(e) < 1e15:
        return str(int(e))
    whole = len(str(int(abs(e)))) if abs(e) >= 1 else 0
    return f"{e:.{max(digits, whole + 1)}g}"


def _cut_labels(cuts: Sequence[float] | np.ndarray) -> list[str]:
    """Labels of increasing cut points: 4 significant digits, more where two cuts would read alike, every
    digit of an integer part kept (a label of 201903 rounded to ``2.019e+05`` named another cut, and cells
    of one label were merged downstream).

    Examples
    --------
    >>> _cut_labels([0.123456, 2.5, 40.0]), _cut_labels([201903.0, 201906.0]), _cut_labels([1.00001, 1.00002])
    (['0.1235', '2.5', '40'], ['201903', '201906'], ['1.00001', '1.00002'])
    """
    for digits in range(4, 18):
        labels = [_cut_label(e, digits) for e in cuts]
        if len(set(labels)) == len(labels):
            return labels
    return [repr(float(e)) for e in cuts]  # pragma: no cover - distinct floats differ at 17 digits


def discretize(
    real: pd.Series,
    synthetic: pd.Series,
    real_weights: object = None,
    *,
    bins: int = 10,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Codes two columns on common categories: numeric columns with more than ``bins`` distinct
    values (among the records of positive weight) are cut at weighted quantiles of ``real``; missing values
    get their own code. Numbers are read at the narrowest float precision either column stores
    (:func:`._validation.at_shared_precision`: a float32 column's 0.699999988079071 is a float64 column's 0.7).

    Returns
    -------
    (real_codes, synthetic_codes, labels) : (ndarray of int, ndarray of int, list of str)
        ``labels[k]`` names code ``k``; code ``-1`` is missing (label ``"<missing>"`` last).

    Examples
    --------
    >>> rc, sc, labels = discretize(pd.Series(["x", "y"]), pd.Series(["y", None]))
    >>> rc.tolist(), sc.tolist(), labels
    ([0, 1], [1, -1], ['x', 'y'])
    """
    bins = check_int(bins, "bins", low=1)
    name = real.name
    w = check_weights(real_weights, len(real))
    (real, synthetic), precision = at_shared_precision(real, synthetic)
    inner = quantile_cuts(real, w, bins)
    if inner is not None:
        xr = real.to_numpy(dtype=float, na_value=np.nan)
        xs = synthetic.to_numpy(dtype=float, na_value=np.nan)
        fmt = _cut_labels(inner)
        labels = [f"{name}<{fmt[0]}"] if len(inner) else [f"{name}"]
        labels += [f"{name} in [{a}, {b})" for a, b in zip(fmt[:-1], fmt[1:])]
        if len(inner):
            labels.append(f"{name}>={fmt[-1]}")
        codes = [np.where(np.isnan(x), -1, np.searchsorted(inner, x, side="right")) for x in (xr, xs)]
        return codes[0].astype(int), codes[1].astype(int), labels
    cats = pd.Index(pd.concat([real, synthetic], ignore_index=True).dropna().unique())
    try:
        cats = cats.sort_values()
    except TypeError:
        pass
    codes = [cats.get_indexer(s.to_numpy(dtype=object)) for s in (real, synthetic)]
    narrow = narrow_type(precision)  # a value as written at the precision it is stored at: 0.7, not 0.699999988079071
    labels = [f"{float(str(narrow(v)))}" if narrow is not None and isinstance(v, float) else f"{v}" for v in cats]
    return codes[0].astype(int), codes[1].astype(int), labels


def contingency_similarity(
    real_df: pd.DataFrame,
    synthetic_df: pd.DataFrame,
    columns: Sequence[str],
    real_weights: object = None,
    synthetic_weights: object = None,
    *,
    bins: int = 10,
) -> float:
    """Returns 1 - total variation distance between the joint distributions of ``columns``.

    Numeric columns are binned as in :func:`discretize`. 1 for identical joint shares.

    Examples
    --------
    >>> r = pd.DataFrame({"a": [0, 0, 1, 1], "b": [0, 1, 0, 1]})
    >>> s = pd.DataFrame({"a": [0, 0, 1, 1], "b": [0, 0, 1, 1]})
    >>> contingency_similarity(r, s, ["a", "b"])
    0.5
    """
    bins = check_int(bins, "bins", low=1)
    columns = check_names(columns, "columns", allow_empty=False)
    wr = check_weights(real_weights, len(real_df), "real weights")
    ws = check_weights(synthetic_weights, len(synthetic_df), "synthetic weights")
    for label, df in (("real_df", real_df), ("synthetic_df", synthetic_df)):
        require_columns(df, columns, label)
    keys_r, keys_s = [], []
    for c in columns:
        rc, sc, _ = discretize(real_df[c], synthetic_df[c], wr, bins=bins)
        keys_r.append(rc)
        keys_s.append(sc)
    jr = pd.Series(wr).groupby(keys_r).sum() / wr.sum()
    js = pd.Series(ws).groupby(keys_s).sum() / ws.sum()
    return float(1.0 - 0.5 * jr.sub(js, fill_value=0.0).abs().sum())


def subgroup_ks(
    real_df: pd.DataFrame,
    synthetic_df: pd.DataFrame,
    variable: str,
    by: str,
    real_weights: object = None,
    synthetic_weights: object = None,
    *,
    bins: int = 5,
    min_rows: int = 20,
) -> pd.DataFrame:
    """Returns the KS statistic (or TV distance for categorical ``variable``) of ``variable``
    within each subgroup of ``by``; numeric ``by`` with more than ``bins`` values is binned at
    weighted quantiles of ``real_df``. Subgroups with fewer than ``min_rows`` rows of positive
    weight holding a value on a side are skipped (rows of weight 0 are not in that population: a
    subgroup of 25 rows, 24 of them of weight 0, was scored from one record).

    Returns
    -------
    pandas.DataFrame
        ``subgroup``, ``real_share`` (weight share in ``real_df``), ``n_real``, ``n_synthetic``,
        ``distance``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"g": rng.integers(0, 2, 200), "y": rng.normal(size=200)})
    >>> subgroup_ks(df, df, "y", "g")["distance"].tolist()
    [0.0, 0.0]
    """
    bins = check_int(bins, "bins", low=1)
    min_rows = check_int(min_rows, "min_rows", low=1)
    wr = check_weights(real_weights, len(real_df), "real weights")
    ws = check_weights(synthetic_weights, len(synthetic_df), "synthetic weights")
    for label, df in (("real_df", real_df), ("synthetic_df", synthetic_df)):
        require_columns(df, [variable, by], label)
    rc, sc, labels = discretize(real_df[by], synthetic_df[by], wr, bins=bins)
    # as discretize: values of positive weight, at the precision both columns share
    binned = quantile_cuts(at_shared_precision(real_df[by], synthetic_df[by])[0][0], wr, bins) is not None
    numeric = is_numeric(real_df[variable])
    rows = []
    for code in np.unique(rc):
        mr, ms = rc == code, sc == code
        yr, ys = real_df[variable].to_numpy()[mr], synthetic_df[variable].to_numpy()[ms]
        if min((pd.notna(yr) & (wr[mr] > 0)).sum(), (pd.notna(ys) & (ws[ms] > 0)).sum()) < min_rows:
            continue
        if numeric:
            d = ks_statistic(yr, ys, wr[mr], ws[ms])
        else:
            d = 1.0 - tv_complement(yr, ys, wr[mr], ws[ms])  # not tv_distance: keeps the figures to the last bit
        if code < 0:
            label = f"{by}=<missing>"
        else:
            label = labels[code] if binned else f"{by}={labels[code]}"
        rows.append((label, wr[mr].sum() / wr.sum(), int(mr.sum()), int(ms.sum()), d))
    return pd.DataFrame(rows, columns=["subgroup", "real_share", "n_real", "n_synthetic", "distance"])
