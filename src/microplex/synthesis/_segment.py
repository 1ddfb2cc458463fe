"""One continuous part of an encoded variable: a support-aware transform and its weighted standardization.

Used by :class:`~microplex.synthesis.transforms.ContinuousEncoder`; a segment serializes to a
plain JSON dict inside the encoder's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._errors import DataValidationError
from .._stats import weighted_mean_var, weighted_quantile
from . import _quantile_map as qmap


def _weighted_mean_std(x: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    mean, var = weighted_mean_var(x, w)
    std = float(np.sqrt(var))
    return mean, std if std > 0 else 1.0


def _asinh_scale(x: np.ndarray, w: np.ndarray) -> float:
    """Scale ``s`` of ``asinh(x / s)`` that makes ``x`` most Gaussian (Box-Cox style).

    Candidates are the weighted median of ``|x|`` times powers of ten; the chosen one
    maximizes the weighted Gaussian profile log-likelihood of the transformed values plus the
    log-Jacobian. Large scales are nearly linear (light tails), small ones log-like (heavy
    tails), so the transform only compresses tails the data actually has.
    """
    med = float(weighted_quantile(np.abs(x), 0.5, w)[0])
    med = med if med > 0 else float(np.average(np.abs(x), weights=w)) or 1.0
    best, best_score = med, -np.inf
    for s in med * 10.0 ** np.arange(-2, 4):
        t = np.arcsinh(x / s)
        var = np.average((t - np.average(t, weights=w)) ** 2, weights=w)
        score = -0.5 * np.log(var) - 0.5 * np.average(np.log(s * s + x * x), weights=w)
        if score > best_score:
            best, best_score = float(s), score
    return best


class _Segment:
    """One continuous part of a variable: a support-aware transform and its standardization.

    A segment models ``y = sign * x`` on one side of the point masses: ``sign=-1`` mirrors the
    negative values of a variable whose zero point mass splits it into a negative and a
    positive part, or of one whose values are all at or below 0, so both sides use the same code.
    """

    #: Transformed values beyond which the inverse transform continues linearly (``None``: no
    #: linear tail on that side); see :meth:`_forward`.
    tail_lo: float | None = None
    tail_hi: float | None = None
    #: Knots ``(t, z, tail slopes)`` of the quantile standardization (:mod:`._quantile_map`);
    #: ``None``: the transformed values are standardized by their weighted mean and standard deviation.
    knots: qmap.Knots | None = None
    #: Whether the segment holds a training value of positive weight off its variable's heaps (values the flow
    #: draws); ``False``: every one sits on a heap, and its records draw a heap, never a flow value (which
    #: decoded to a heap plus or minus a few units in the last place, the flow fitted to a single value).
    free: bool = True
    #: The segment's one (mirrored) value off its heaps, where fit leaves a float segment that holds heaps without
    #: knots (:meth:`fit_knots`: its values off the heaps are, in weight, that single value); ``None`` otherwise.
    #: Recorded so that a model file's claim to be such a segment can be checked on load.
    single_value: float | None = None

    def __init__(self, sign: int = 1) -> None:
        self.sign = sign

    def fit(
        self, y: np.ndarray, w: np.ndarray, masses: list[float], transform: str, integer: bool, name: str,
        nonnegative: bool | None = None,
    ) -> _Segment:
        """Fits the segment to values ``y`` (already multiplied by ``sign``) with weights ``w``;
        ``masses`` are the variable's point masses in the same (mirrored) scale. ``nonnegative``: whether the
        segment's values (mirrored) are all 0 or above, read on the values themselves (``y`` may be compact
        coordinates, where a heap at 0 sits at -0.5); by default ``y.min() >= 0``. An integer segment of such
        values is bounded half a unit below its smallest coordinate."""
        lo, hi = float(y.min()), float(y.max())
        below = [m for m in masses if m < lo]
        above = [m for m in masses if m > hi]
        if integer:
            lower = lo - 0.5 if (below or (lo >= 0 if nonnegative is None else nonnegative)) else None
            upper = hi + 0.5 if above else None
        else:
            lower = max(below) if below else (0.0 if lo > 0 else None)
            upper = min(above) if above else None
        if transform == "auto":
            if lower is not None and upper is not None:
                transform = "logit"
            elif lower is not None:
                transform = "log"
            else:
                transform = "asinh"
        if transform == "logit" and (lower is None or upper is None):
            lower, upper = (lo - 0.5, hi + 0.5) if integer else (lower, upper)
            if lower is None or upper is None:
                raise DataValidationError(
                    f"Target {name!r}: transform 'logit' needs point masses below and above "
                    "the continuous values (e.g. zero and a top code)."
                )
        if transform == "log" and lower is None:
            raise DataValidationError(
                f"Target {name!r}: transform 'log' needs values above a lower bound; "
                f"the continuous values reach {lo}."
            )
        self.lower, self.upper, self.transform = lower, upper, transform
        self.scale = _asinh_scale(y, w) if transform == "asinh" else 1.0
        t = self._core_forward(y)
        self.tail_lo = float(t.min()) if transform == "asinh" else None
        self.tail_hi = float(t.max()) if transform in ("log", "asinh") else None
        self.mean, self.std = _weighted_mean_std(t, w)
        return self

    def fit_knots(self, y: np.ndarray, w: np.ndarray, integer: bool, heaps: bool = False) -> None:
        """Quantile standardization (:mod:`._quantile_map`) fitted to the values ``y`` (mirrored)
        that the flow models: the segment's values off its heaps. ``heaps``: whether the segment holds
        heaps; a float one whose values off them give no knots (a single value) records that value
        (:attr:`single_value`)."""
        if not (len(y) and w.sum() > 0):
            return
        self.knots = qmap.fit_knots(self._forward(y[:, None] + qmap.DEQUANTIZE[None, :] if integer else y), w)
        if self.knots is None and heaps and not integer and bool(np.all(y == y[0])):
            self.single_value = float(y[0])

    def contains(self, y: np.ndarray) -> np.ndarray:
        """Whether mirrored values ``y`` lie strictly inside the segment's bounds."""
        inside = np.ones(y.shape, dtype=bool)
        if self.lower is not None:
            inside &= y > self.lower
        if self.upper is not None:
            inside &= y < self.upper
        return inside

    def round_inside(self, x: np.ndarray) -> np.ndarray:
        """Integer coordinates of an integer segment's decoded values ``x`` (sign applied): each
        rounded to the nearest integer, held within the smallest and largest values the bounds
        enclose (an integer segment's bounds lie half a unit beyond its extreme values).

        Rounding alone can leave the segment: when its smallest (largest) value is a heap of a
        compact variable, that heap's coordinate lies between two integers, the bound half a
        unit below it, and a draw just inside the bound rounded onto the integer below, the
        coordinate of the point mass or of the value beyond the training range (a zero drawn by
        the continuous state, a value below the training minimum or the top code drawn by the flow).

        Examples
        --------
        >>> seg = _Segment(1)
        >>> seg.lower, seg.upper = -0.25, 9.5   # smallest value a heap at coordinate 0.25, largest 9
        >>> seg.round_inside(np.array([-0.2, 4.4, 9.4])).tolist()
        [1.0, 4.0, 9.0]
        """
        y = np.round(self.sign * np.asarray(x, dtype=float))
        if self.lower is not None:
            y = np.maximum(y, np.ceil(self.lower + 0.5))
        if self.upper is not None:
            y = np.minimum(y, np.floor(self.upper - 0.5))
        return self.sign * y

    # -- transforms --------------------------------------------------------------------
    # The support transform t = f(y) is exact inside the training range; on a side where the
    # support is unbounded (the upper side of ``log``, both sides of ``asinh``) its inverse
    # continues linearly beyond the most extreme training value, with the slope it has there.
    # Tails are kept (values beyond the training range are still drawn), but a flow that
    # extrapolates a few standard deviations no longer meets an exponential blow-up
    # (``exp``/``sinh``) that turns it into values hundreds of times the largest observed.
    def _core_forward(self, y: np.ndarray) -> np.ndarray:
        if self.transform == "logit":
            p = (y - self.lower) / (self.upper - self.lower)
            return np.log(p) - np.log1p(-p)
        if self.transform == "log":
            return np.log(y - self.lower)
        if self.transform == "asinh":
            return np.arcsinh(y / self.scale)
        return y.astype(float)

    def _core_inverse(self, t: np.ndarray) -> np.ndarray:
        if self.transform == "logit":
            return self.lower + (self.upper - self.lower) / (1.0 + np.exp(-t))
        if self.transform == "log":
            return self.lower + np.exp(t)
        if self.transform == "asinh":
            return self.scale * np.sinh(t)
        return t

    def _core_log_slope(self, t: np.ndarray | float) -> np.ndarray:
        """log dy/dt of the core inverse, for the ``log`` and ``asinh`` transforms."""
        if self.transform == "log":
            return np.asarray(t, dtype=float)
        return np.log(self.scale) + np.log(np.cosh(t))

    def _tails(self) -> list[tuple[float, float, float, int]]:
        """(t bound, y bound, log slope dy/dt, side) of each linear tail; side +1 upper, -1 lower."""
        out = []
        for t0, side in ((self.tail_hi, 1), (self.tail_lo, -1)):
            if t0 is not None:
                out.append((t0, float(self._core_inverse(np.float64(t0))), float(self._core_log_slope(t0)), side))
        return out

    @staticmethod
    def _clip(v: np.ndarray, tails: list[tuple[float, float, float, int]], at: int) -> np.ndarray:
        """``v`` moved inside the tail bounds (``at=0``: t bounds, ``at=1``: y bounds)."""
        for tail in tails:
            v = np.minimum(v, tail[at]) if tail[3] > 0 else np.maximum(v, tail[at])
        return v

    def _forward(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=float)
        tails = self._tails()
        t = self._core_forward(self._clip(y, tails, 1))
        for t0, y0, log_slope, side in tails:
            t = np.where(side * (y - y0) > 0, t0 + (y - y0) * np.exp(-log_slope), t)
        return t

    def _inverse(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        tails = self._tails()
        y = self._core_inverse(self._clip(t, tails, 0))
        for t0, y0, log_slope, side in tails:
            y = np.where(side * (t - t0) > 0, y0 + (t - t0) * np.exp(log_slope), y)
        return y

    def _log_derivative(self, y: np.ndarray) -> np.ndarray:
        """log |d t / d y| of the support transform."""
        if self.transform == "logit":
            width = self.upper - self.lower
            p = (y - self.lower) / width
            return -(np.log(p) + np.log1p(-p) + np.log(width))
        if self.transform == "identity":
            return np.zeros_like(y, dtype=float)
        y = np.asarray(y, dtype=float)
        tails = self._tails()
        out = -self._core_log_slope(self._core_forward(self._clip(y, tails, 1)))
        for _, y0, log_slope, side in tails:
            out = np.where(side * (y - y0) > 0, -log_slope, out)
        return out

    # -- standardized scale (the flow's coordinates) -----------------------------------
    def encode(self, x: np.ndarray) -> np.ndarray:
        t = self._forward(self.sign * x)
        return qmap.forward(t, *self.knots) if self.knots is not None else (t - self.mean) / self.std

    def decode(self, u: np.ndarray) -> np.ndarray:
        """Values of standardized ``u`` (sign applied), strictly inside the segment's bounds (:meth:`inside`)."""
        t = qmap.inverse(u, *self.knots) if self.knots is not None else u * self.std + self.mean
        return self.sign * self.inside(self._inverse(t))

    def inside(self, y: np.ndarray) -> np.ndarray:
        """Mirrored values ``y`` held strictly inside the segment's bounds, the support :meth:`contains` gives
        (and ``log_prob`` scores): a value beyond a bound is reflected about it (``2 * lower - y``), one at a
        bound (or still beyond the other after the reflection) moves to the nearest float inside.

        Only ``log`` and ``logit`` map the whole line into the bounds (and reach a bound where ``exp``
        underflows); a segment declared ``asinh`` or ``identity`` keeps the bound ``log`` would have (a
        zero point mass below positive values) but decodes onto the whole line: 195 of 20,000 acs12 incomes
        declared ``asinh`` came out negative, values its own ``log_prob`` scored -inf. Reflected, the little
        mass the flow puts beyond the bound folds back onto the values next to it; held at the bound, it made
        a spike of 0.2-1% of the draws at 5e-324.

        Examples
        --------
        >>> seg = _Segment(1)
        >>> seg.lower, seg.upper = 0.0, None
        >>> seg.inside(np.array([-3.0, 0.0, 2.5])).tolist()
        [3.0, 5e-324, 2.5]
        """
        if self.lower is not None:
            y = np.where(y < self.lower, 2.0 * self.lower - y, y)
        if self.upper is not None:
            y = np.where(y > self.upper, 2.0 * self.upper - y, y)
        if self.lower is not None:
            y = np.maximum(y, np.nextafter(self.lower, np.inf))
        if self.upper is not None:
            y = np.minimum(y, np.nextafter(self.upper, -np.inf))
        return y

    def log_jacobian(self, x: np.ndarray) -> np.ndarray:
        """log |d u / d x|."""
        y = self.sign * x
        if self.knots is not None:
            return self._log_derivative(y) + qmap.log_slope(self._forward(y), *self.knots)
        return self._log_derivative(y) - np.log(self.std)

    _FIELDS = ("lower", "upper", "transform", "scale", "mean", "std", "tail_lo", "tail_hi")

    def to_dict(self) -> dict[str, Any]:
        d = {"sign": self.sign, **{k: getattr(self, k) for k in self._FIELDS}}
        if self.knots is not None:  # moment-standardized segments keep the keys of older files
            d["knots"] = qmap.knots_to_dict(self.knots)
        if not self.free:  # segments with values off the heaps keep the keys of older files
            d["free"] = False
        if self.single_value is not None:  # only on a float segment holding heaps that fit leaves without knots
            d["single_value"] = self.single_value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> _Segment:
        seg = cls(int(d.get("sign", 1)))
        for k in cls._FIELDS:
            if k in d:
                setattr(seg, k, d[k])
        if d.get("knots") is not None:
            seg.knots = qmap.knots_from_dict(d["knots"])
        if d.get("free") is False:
            seg.free = False
        if d.get("single_value") is not None:
            seg.single_value = float(d["single_value"])
        return seg
