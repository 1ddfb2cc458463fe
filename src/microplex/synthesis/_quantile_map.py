"""Quantile standardization of a continuous segment: its transformed values mapped to normal scores.

A segment's support transform (``log``, ``logit``, ``asinh``) makes its values unbounded but not
Gaussian: a skewed or peaked marginal (annual hours bunched near full time, incomes with a long
left tail on the log scale) stays skewed or peaked. A flow of affine layers (MAF) moves and
scales values given the conditions, so it cannot reshape such a marginal, and smears it. The
quantile standardization maps the transformed values ``t`` to ``z`` by a strictly increasing
piecewise-linear function through ``K`` knots: the weighted quantiles of ``t`` at probabilities
``(k + 1/2) / K`` (interpolated between distinct values, :func:`microplex._stats.weighted_quantile`
with ``method="interpolated"``) against the standard normal quantiles of the same probabilities.
The training values are then close to standard normal marginally, and the flow only models how
they depend on the conditions and on each other.

* ``K = clip(ESS / RECORDS_PER_KNOT, MIN_KNOTS, MAX_KNOTS)`` (Kish's effective sample size of the
  segment's records): about :data:`RECORDS_PER_KNOT` records' weight per knot and half of that
  beyond each end knot. A knot is a data value only where its probability falls exactly on a
  value's plotting position, or, at the ends, when the smallest or largest value alone holds
  more than ``1 / K`` of the weight (a heavy tie, never one record of ordinary weight).
* Beyond the end knots the map continues linearly (values beyond the training range are still
  drawn; the support transform keeps them inside bounds), with the slope that gives the records
  beyond each end knot their weighted mean distance from it: a standard normal beyond ``kz``
  exceeds it by ``phi(kz) / Q(kz) - |kz|`` on average, so the slope is that over the records' mean
  excess in ``t``. The end interval's slope would instead let the last, sparsest interval set the
  tail (on the PSID incomes it drew a 99.9th percentile three times the real one).
* The map is exact and invertible: ``log |dz/dt|`` (piecewise constant) enters the log-density.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import log_ndtr, ndtri

from .._stats import kish_ess, weighted_quantile

__all__ = ["RECORDS_PER_KNOT", "MIN_KNOTS", "MAX_KNOTS", "DEQUANTIZE", "fit_knots", "normal_excess", "forward",
           "inverse", "log_slope", "knots_from_histogram", "knots_to_dict", "knots_from_dict"]

#: Average records' weight per knot (Kish ESS / knots), so each end knot has half of it beyond it.
RECORDS_PER_KNOT = 20
#: Fewest and most knots of a map; a segment whose quantiles give fewer than 3 distinct knots is
#: standardized by its moments instead.
MIN_KNOTS, MAX_KNOTS = 8, 128
#: Offsets within (-1/2, 1/2) at which an integer segment's values are spread when its knots are
#: fitted: training dequantizes integers by uniform noise, so the map is fitted to that smooth
#: distribution rather than to the integer grid.
DEQUANTIZE = (np.arange(8) + 0.5) / 8 - 0.5

#: ``(kt, kz, slopes)``: the knots in ``t`` and in ``z`` and the slopes ``dz/dt`` of the lower and
#: upper linear tails.
Knots = tuple[np.ndarray, np.ndarray, np.ndarray]


def fit_knots(t: np.ndarray, w: np.ndarray) -> Knots | None:
    """Knots ``(kt, kz, slopes)`` of the map of transformed values ``t`` (weights ``w``): the knots
    in ``t`` and ``z`` and the lower and upper tail slopes (each from the records beyond its end
    knot; the end interval's slope when no weight lies beyond it), or None when fewer than 3
    distinct knots exist (e.g. a segment of one value).

    ``t`` of shape (n,) holds one value per record; of shape (n, m), each record's value at ``m``
    offsets (an integer segment's values plus each offset of :data:`DEQUANTIZE`): the knots are
    then those of the dequantized values, and ``K`` still counts records.
    """
    # scaled by the largest weight: (sum w)^2 and sum w^2 overflow (or underflow) for weights near 1e200 or 1e-320
    k = int(np.clip(kish_ess(w) // RECORDS_PER_KNOT, MIN_KNOTS, MAX_KNOTS))
    p = (np.arange(k) + 0.5) / k
    if t.ndim == 2:
        w = np.repeat(w / t.shape[1], t.shape[1])
        t = t.reshape(-1)
    kt = weighted_quantile(t, p, w, method="interpolated")
    keep = np.r_[True, np.diff(kt) > 0]  # probabilities beyond the first/last position repeat an end value
    if keep.sum() < 3:
        return None
    kt, kz = kt[keep], ndtri(p[keep])
    slopes = []
    for side, end, inner in ((-1, 0, 1), (1, -1, -2)):
        beyond = side * (t - kt[end]) > 0
        excess = np.average(side * (t[beyond] - kt[end]), weights=w[beyond]) if w[beyond].sum() > 0 else 0.0
        a = abs(kz[end])  # kz[0] < 0 < kz[-1]: both tails are normal tails beyond |kz|
        gauss = float(np.exp(-0.5 * a * a - 0.5 * np.log(2 * np.pi) - log_ndtr(-a)) - a)
        slope = gauss / excess if excess > 0 else (kz[inner] - kz[end]) / (kt[inner] - kt[end])
        slopes.append(float(slope))
    return kt, kz, np.asarray(slopes)


def normal_excess(a: float) -> float:
    """Mean distance beyond ``a`` of a standard normal beyond ``a``: ``phi(a) / Phi(-a) - a``."""
    return float(np.exp(-0.5 * a * a - 0.5 * np.log(2 * np.pi) - log_ndtr(-a)) - a)


def _tail_slope(a: float, excess: float, fallback: float) -> float:
    """Slope ``dz/dt`` of a linear tail beyond a knot at normal score ``+-a`` whose records lie on
    average ``excess`` beyond it in ``t`` (``fallback`` when ``excess`` is 0)."""
    return normal_excess(a) / excess if excess > 0 else fallback


def knots_from_histogram(edges: np.ndarray, mass: np.ndarray, k: int = MAX_KNOTS) -> Knots | None:
    """Knots ``(kt, kz, slopes)`` of the map of a histogram of transformed values: bins between
    ``edges`` (increasing, ``len(mass) + 1``) holding ``mass`` (clipped at 0; a differentially
    private release may hold negative noisy counts), each spread uniformly over its bin.

    The knots are the histogram's quantiles at probabilities ``(j + 1/2) / k`` (its CDF is linear
    inside a bin, so they are exact) against the normal quantiles; every bin first gets at least
    1e-6 of the total mass, so the CDF is strictly increasing. Each tail slope gives the mass
    beyond the end knot its mean distance from it, as :func:`fit_knots`. Pure post-processing of
    the histogram: a noisy release spends no further budget here. ``None`` when the histogram
    holds no positive mass.
    """
    edges, mass = np.asarray(edges, dtype=float), np.clip(np.asarray(mass, dtype=float), 0.0, None)
    if not mass.sum() > 0:
        return None
    mass = np.maximum(mass, 1e-6 * mass.sum())
    cdf = np.concatenate([[0.0], np.cumsum(mass)]) / mass.sum()
    p = (np.arange(k) + 0.5) / k
    kt, kz = np.interp(p, cdf, edges), ndtri(p)
    keep = np.r_[True, np.diff(kt) > 0]
    if keep.sum() < 3:
        return None
    kt, kz = kt[keep], kz[keep]
    dens = mass / mass.sum()
    slopes = []
    for side, end, inner in ((-1, 0, 1), (1, -1, -2)):
        lo, hi = (edges[:-1], np.minimum(edges[1:], kt[end])) if side < 0 else (np.maximum(edges[:-1], kt[end]), edges[1:])
        share = dens * np.clip(hi - lo, 0.0, None) / np.diff(edges)  # each bin's mass beyond the knot
        excess = float(np.sum(share * side * ((lo + hi) / 2 - kt[end])) / share.sum()) if share.sum() > 0 else 0.0
        slopes.append(_tail_slope(abs(kz[end]), excess, (kz[inner] - kz[end]) / (kt[inner] - kt[end])))
    return kt, kz, np.asarray(slopes)


def forward(t: np.ndarray, kt: np.ndarray, kz: np.ndarray, slopes: np.ndarray) -> np.ndarray:
    """Normal scores ``z`` of transformed values ``t``."""
    z = np.interp(t, kt, kz)
    z = np.where(t < kt[0], kz[0] + (t - kt[0]) * slopes[0], z)
    return np.where(t > kt[-1], kz[-1] + (t - kt[-1]) * slopes[1], z)


def inverse(z: np.ndarray, kt: np.ndarray, kz: np.ndarray, slopes: np.ndarray) -> np.ndarray:
    """Transformed values ``t`` of normal scores ``z`` (the inverse of :func:`forward`)."""
    t = np.interp(z, kz, kt)
    t = np.where(z < kz[0], kt[0] + (z - kz[0]) / slopes[0], t)
    return np.where(z > kz[-1], kt[-1] + (z - kz[-1]) / slopes[1], t)


def log_slope(t: np.ndarray, kt: np.ndarray, kz: np.ndarray, slopes: np.ndarray) -> np.ndarray:
    """``log dz/dt`` at ``t`` (constant on each interval and on each linear tail)."""
    inner = np.log(np.diff(kz) / np.diff(kt))
    i = np.clip(np.searchsorted(kt, t, side="right") - 1, 0, inner.shape[0] - 1)
    out = inner[i]
    out = np.where(t < kt[0], np.log(slopes[0]), out)
    return np.where(t > kt[-1], np.log(slopes[1]), out)


def knots_to_dict(knots: Knots) -> dict[str, Any]:
    return {"t": [float(v) for v in knots[0]], "z": [float(v) for v in knots[1]],
            "slopes": [float(v) for v in knots[2]]}


def knots_from_dict(d: dict[str, Any]) -> Knots:
    return np.asarray(d["t"], dtype=float), np.asarray(d["z"], dtype=float), np.asarray(d["slopes"], dtype=float)
