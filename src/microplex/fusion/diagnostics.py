"""Fusion diagnostics as small pure functions of (data, weights).

* :func:`weighted_smd`, :func:`weighted_ks`, :func:`weighted_tvd`: distance between one variable's
  distributions in two sources (KS and total variation are :mod:`microplex._stats`'s, the ones the
  evaluation registry reports).
* :func:`compare_shared`: the table of those distances for every shared variable, reported before fusing.
* :func:`correlation_bounds`: the range of corr(Y, Z) compatible with the data when Y and Z are never
  observed together but both are observed with shared variables X.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
import pandas as pd

from .._errors import DataValidationError
from .._stats import ks_distance, one_hot, tv_distance, weighted_mean_var
from ._source import Source, category_labels, is_categorical

__all__ = ["weighted_smd", "weighted_ks", "weighted_tvd", "compare_shared", "correlation_bounds", "design_matrix"]


def weighted_smd(x: np.ndarray, wx: np.ndarray, y: np.ndarray, wy: np.ndarray) -> float:
    """Standardized mean difference ``(mean_y - mean_x) / sqrt((var_x + var_y) / 2)`` with weights.

    Examples
    --------
    >>> round(weighted_smd(np.array([0., 2.]), np.ones(2), np.array([1., 3.]), np.ones(2)), 6)
    1.0
    """
    mx, vx = weighted_mean_var(x, wx)
    my, vy = weighted_mean_var(y, wy)
    pooled = np.sqrt((vx + vy) / 2)
    return 0.0 if pooled == 0 else float((my - mx) / pooled)


def weighted_ks(x: np.ndarray, wx: np.ndarray, y: np.ndarray, wy: np.ndarray) -> float:
    """Kolmogorov-Smirnov distance between two weighted empirical distributions.

    Examples
    --------
    >>> weighted_ks(np.array([0., 1.]), np.array([3., 1.]), np.array([0., 1.]), np.array([1., 1.]))
    0.25
    """
    return ks_distance(x, y, wx, wy)


def weighted_tvd(x: pd.Series, wx: np.ndarray, y: pd.Series, wy: np.ndarray) -> float:
    """Total variation distance between two weighted categorical distributions.

    Examples
    --------
    >>> weighted_tvd(pd.Series(["a", "b"]), np.ones(2), pd.Series(["a", "a"]), np.ones(2))
    0.5
    """
    return tv_distance(x.astype(str), y.astype(str), wx, wy)


def compare_shared(base: Source, donor: Source, shared: Sequence[str], *,
                   categorical: Collection[str] = ()) -> pd.DataFrame:
    """Compares the distribution of every shared variable in a donor with the base.

    Parameters
    ----------
    base, donor : Source
    shared : list of str
        Columns of both sources.
    categorical : collection of str, default=()
        Columns compared as categories whatever their dtype (number codes a schema declares categorical, as
        :func:`~microplex.fusion.fuse` passes them); text and boolean columns are categories anyway.

    Returns
    -------
    DataFrame
        One row per shared variable: ``variable``, ``base``, ``donor``, ``kind``, ``smd``
        (numeric only), ``ks`` (numeric) or ``tvd`` (categorical), all with survey weights.

    Examples
    --------
    >>> a = Source(pd.DataFrame({"x": [0., 1., 2., 3.]}), "a")
    >>> b = Source(pd.DataFrame({"x": [1., 2., 3., 4.]}), "b")
    >>> compare_shared(a, b, ["x"])[["variable", "smd", "ks"]].round(3).to_dict("records")
    [{'variable': 'x', 'smd': 0.894, 'ks': 0.25}]
    >>> compare_shared(a, b, ["x"], categorical=["x"])[["kind", "tvd"]].to_dict("records")
    [{'kind': 'categorical', 'tvd': 0.25}]
    """
    rows = []
    wb, wd = base.weights, donor.weights
    for col in shared:
        b, d = base.data[col], donor.data[col]
        keep_b, keep_d = b.notna().to_numpy(), d.notna().to_numpy()
        for src, keep, w in ((base, keep_b, wb), (donor, keep_d, wd)):
            if not w[keep].sum() > 0:
                raise DataValidationError(
                    f"Shared variable {col!r} has no non-missing value with positive weight in source "
                    f"{src.name!r}: it cannot be compared (or fused on); drop it from the shared variables."
                )
        row = {"variable": col, "base": base.name, "donor": donor.name}
        if is_categorical(b, categorical):
            row.update(kind="categorical", smd=np.nan, ks=np.nan,
                       tvd=weighted_tvd(category_labels(b[keep_b]), wb[keep_b], category_labels(d[keep_d]), wd[keep_d]))
        else:
            xb, xd = b.to_numpy(float)[keep_b], d.to_numpy(float)[keep_d]
            row.update(kind="numeric", smd=weighted_smd(xb, wb[keep_b], xd, wd[keep_d]),
                       ks=weighted_ks(xb, wb[keep_b], xd, wd[keep_d]), tvd=np.nan)
        rows.append(row)
    return pd.DataFrame(rows, columns=["variable", "base", "donor", "kind", "smd", "ks", "tvd"])


def design_matrix(frames: Sequence[pd.DataFrame], columns: Sequence[str],
                  categorical: Collection[str] = ()) -> list[np.ndarray]:
    """Numeric design of ``columns`` for several frames on one coding: numeric columns as they are,
    categorical ones (and those named in ``categorical``, number codes declared categorical) as indicators of
    every category but the first (categories pooled over frames)."""
    blocks: list[list[np.ndarray]] = [[] for _ in frames]
    for col in columns:
        if is_categorical(frames[0][col], categorical):
            labels = [category_labels(f[col]) for f in frames]
            cats = pd.Index(sorted(set().union(*[set(lab) for lab in labels]))[1:])
            for i, lab in enumerate(labels):
                blocks[i].append(one_hot(cats.get_indexer(lab.to_numpy()), len(cats)))
        else:
            for i, f in enumerate(frames):
                blocks[i].append(f[col].to_numpy(float)[:, None])
    return [np.concatenate(b, axis=1) if b else np.zeros((len(f), 0)) for b, f in zip(blocks, frames)]


def _standardized_cov(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    m = np.average(x, axis=0, weights=w)
    xc = x - m
    return (xc * w[:, None]).T @ xc / w.sum()


def correlation_bounds(
    y: np.ndarray, x_y: np.ndarray, w_y: np.ndarray, z: np.ndarray, x_z: np.ndarray, w_z: np.ndarray
) -> tuple[float, float, float]:
    """Range of corr(Y, Z) compatible with the (Y, X) and (Z, X) structure when Y and Z are never
    observed together.

    With the partial correlation of Y and Z given X free in [-1, 1] (linear, Gaussian-type
    structure), corr(Y, Z) = r_YX' R_XX^-1 r_ZX + rho_YZ.X sqrt((1 - R2_Y|X)(1 - R2_Z|X)); the
    conditional-independence assumption (CIA) sets rho_YZ.X = 0, which gives the centre. For one
    shared X this is rho_YX rho_ZX +- sqrt((1 - rho_YX^2)(1 - rho_ZX^2)). ``R_XX`` pools both sources;
    ``r_YX`` and ``R2_Y|X`` come from Y's source, ``r_ZX`` and ``R2_Z|X`` from Z's source.

    Parameters
    ----------
    y : ndarray of shape (N_y,)
    x_y : ndarray of shape (N_y, K)
        Shared variables (numeric design, see :func:`design_matrix`) in Y's source.
    w_y : ndarray of shape (N_y,)
    z, x_z, w_z : the same for Z's source.

    Returns
    -------
    lower, cia, upper : float
        Bounds (clipped to [-1, 1]) and the CIA value; all 0 when Y or Z is constant (weighted), as a
        constant column has correlation 0 with the others throughout microplex.

    References
    ----------
    Kadane (1978), "Some statistical problems in merging data files"; Rässler (2002),
    *Statistical Matching*, ch. 4; D'Orazio, Di Zio and Scanu (2006), *Statistical Matching: Theory
    and Practice*, sec. 4.1.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(5000, 1))
    >>> y = 0.8 * x[:, 0] + 0.6 * rng.normal(size=5000)
    >>> z = 0.6 * x[:, 0] + 0.8 * rng.normal(size=5000)
    >>> lo, cia, hi = correlation_bounds(y, x, np.ones(5000), z, x, np.ones(5000))
    >>> print(f"{lo:.2f} {cia:.2f} {hi:.2f}")
    -0.02 0.47 0.95
    """
    y, z = np.asarray(y, float), np.asarray(z, float)
    w_y, w_z = np.asarray(w_y, float), np.asarray(w_z, float)
    if any(np.unique(v[w > 0]).size < 2 for v, w in ((y, w_y), (z, w_z))):
        return 0.0, 0.0, 0.0
    pooled = np.concatenate([x_y, x_z])
    sd_x = np.sqrt(np.diag(_standardized_cov(pooled, np.concatenate([w_y / w_y.sum(), w_z / w_z.sum()]))))
    keep = sd_x > 0
    x_y, x_z, sd_x = x_y[:, keep], x_z[:, keep], sd_x[keep]
    if x_y.shape[1] == 0:
        return -1.0, 0.0, 1.0
    r_xx = _standardized_cov(np.concatenate([x_y, x_z]), np.concatenate([w_y / w_y.sum(), w_z / w_z.sum()]))
    r_xx = r_xx / np.outer(sd_x, sd_x)

    def r_with_x(v: np.ndarray, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        c = _standardized_cov(np.column_stack([v, x]), w)
        sd = np.sqrt(np.diag(c))
        return c[0, 1:] / (sd[0] * np.where(sd[1:] > 0, sd[1:], 1.0))

    r_y, r_z = r_with_x(y, x_y, w_y), r_with_x(z, x_z, w_z)
    inv = np.linalg.pinv(r_xx)
    r2_y = float(np.clip(r_y @ inv @ r_y, 0, 1))
    r2_z = float(np.clip(r_z @ inv @ r_z, 0, 1))
    cia = float(np.clip(r_y @ inv @ r_z, -1, 1))
    half = float(np.sqrt((1 - r2_y) * (1 - r2_z)))
    return max(-1.0, cia - half), cia, min(1.0, cia + half)
