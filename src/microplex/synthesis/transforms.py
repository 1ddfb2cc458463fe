"""Per-variable encoders: point-mass states, support-aware transforms and standardization.

Every statistic is weighted by the survey weights. Encoders serialize to plain JSON dicts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._errors import DataValidationError
from .._stats import detect_point_masses, weighted_mean_var, weighted_quantile
from . import _quantile_map as qmap
from .heaps import detect_heaps
from .schema import VariableSpec

__all__ = ["ContinuousEncoder", "CategoricalEncoder", "ConditionEncoder"]


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
    positive part, so both sides use the same code.
    """

    #: Transformed values beyond which the inverse transform continues linearly (``None``: no
    #: linear tail on that side); see :meth:`_forward`.
    tail_lo: float | None = None
    tail_hi: float | None = None
    #: Knots ``(t, z)`` of the quantile standardization (:mod:`._quantile_map`); ``None``: the
    #: transformed values are standardized by their weighted mean and standard deviation.
    knots: qmap.Knots | None = None

    def __init__(self, sign: int = 1) -> None:
        self.sign = sign

    def fit(
        self, y: np.ndarray, w: np.ndarray, masses: list[float], transform: str, integer: bool, name: str
    ) -> _Segment:
        """Fits the segment to values ``y`` (already multiplied by ``sign``) with weights ``w``;
        ``masses`` are the variable's point masses in the same (mirrored) scale."""
        lo, hi = float(y.min()), float(y.max())
        below = [m for m in masses if m < lo]
        above = [m for m in masses if m > hi]
        if integer:
            lower = lo - 0.5 if (below or lo >= 0) else None
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

    def fit_knots(self, y: np.ndarray, w: np.ndarray, integer: bool) -> None:
        """Quantile standardization (:mod:`._quantile_map`) fitted to the values ``y`` (mirrored)
        that the flow models: the segment's values off its heaps."""
        if not (len(y) and w.sum() > 0):
            return
        spread = self._forward(y[:, None] + qmap.DEQUANTIZE[None, :]) if integer else None
        self.knots = qmap.fit_knots(self._forward(y), w, spread)

    def contains(self, y: np.ndarray) -> np.ndarray:
        """Whether mirrored values ``y`` lie strictly inside the segment's bounds."""
        inside = np.ones(y.shape, dtype=bool)
        if self.lower is not None:
            inside &= y > self.lower
        if self.upper is not None:
            inside &= y < self.upper
        return inside

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
        t = qmap.inverse(u, *self.knots) if self.knots is not None else u * self.std + self.mean
        return self.sign * self._inverse(t)

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
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> _Segment:
        seg = cls(int(d.get("sign", 1)))
        for k in cls._FIELDS:
            if k in d:
                setattr(seg, k, d[k])
        if d.get("knots") is not None:
            seg.knots = qmap.knots_from_dict(d["knots"])
        return seg


class ContinuousEncoder:
    """Encodes a continuous (or integer) variable as a discrete state and a standardized value.

    States ``0 .. k-1`` are the point masses (sorted values); the states after them are the
    continuous *segments*. There is one segment when some values are not point masses, and two
    (negative values, then positive values) when a zero point mass lies between negative and
    positive values (losses and profits, tax payments and refunds): the sign is then a discrete
    state, modelled jointly with the other point masses, instead of a flow having to move mass
    across the gap at zero. Each segment is mapped by a support-aware transform (``logit``
    between bounds, ``log`` above a bound, else ``asinh``; mirrored for the negative segment)
    and standardized with weighted moments. Beyond the training range, on unbounded sides, the
    inverse transform continues linearly (values there are still drawn, without the
    exponential blow-up of ``exp`` or ``sinh``). Integer variables are dequantized with uniform
    noise in training and rounded on output.

    *Heaps* (:mod:`~microplex.synthesis.heaps`) are values inside a segment that carry mass
    below the point-mass threshold; they keep the segment's state, are encoded exactly (never
    dequantized), and decode to the heap value itself. A heap index per value is 0 for none,
    ``k + 1`` for ``heaps[k]``.
    """

    def __init__(self, name: str, integer: bool = False) -> None:
        self.name = name
        self.integer = integer
        self.heaps: list[float] = []

    # -- fitting -----------------------------------------------------------------------
    def fit(
        self,
        x: np.ndarray,
        w: np.ndarray,
        spec: VariableSpec,
        threshold: float,
        max_point_masses: int,
        *,
        heap_threshold: float = 0.0,
        max_heaps: int = 0,
        min_heap_count: int = 1,
        standardize: str = "moments",
    ) -> ContinuousEncoder:
        """Fits the encoder; ``standardize="quantile"`` maps each segment's values off its heaps
        to normal scores (:mod:`._quantile_map`), ``"moments"`` standardizes them by mean and std."""
        if spec.point_masses is not None:
            masses = tuple(sorted(spec.point_masses))
        elif self.integer:
            masses = (0.0,) if np.sum(w[x == 0]) >= threshold * w.sum() else ()
        else:
            masses = detect_point_masses(x, w, threshold, max_point_masses)
        self.point_masses = [float(v) for v in masses]
        cont = ~np.isin(x, masses)
        xc, wc = x[cont].astype(float), w[cont]
        split = spec.transform == "auto" and 0.0 in masses and (xc < 0).any() and (xc > 0).any()
        sides = [(-1, xc < 0), (1, xc > 0)] if split else [(1, np.ones(len(xc), dtype=bool))]
        self.segments: list[_Segment] = []
        if cont.any():
            if not wc.sum() > 0:
                raise DataValidationError(
                    f"Target column {self.name!r}: its values other than the point masses {self.point_masses} "
                    "all have weight 0; give some of them a positive weight or declare them point masses."
                )
            for sign, sel in sides:
                if not wc[sel].sum() > 0:
                    raise DataValidationError(
                        f"Target column {self.name!r}: its {'negative' if sign < 0 else 'positive'} values all have "
                        "weight 0; give some of them a positive weight or drop them."
                    )
                mirrored = sorted(sign * m for m in self.point_masses)
                seg = _Segment(sign).fit(sign * xc[sel], wc[sel], mirrored, spec.transform, self.integer, self.name)
                self.segments.append(seg)
        if spec.heaps is not None:
            self.heaps = self._check_heaps(spec.heaps, x, min_heap_count)
        else:
            self.heaps = list(detect_heaps(xc, wc, float(w.sum()), heap_threshold, min_heap_count, max_heaps))
        if standardize == "quantile" and self.segments:
            free = self.heap_index(xc) == 0
            for seg, (sign, sel) in zip(self.segments, sides, strict=True):
                seg.fit_knots(sign * xc[sel & free], wc[sel & free], self.integer)
        return self

    def _check_heaps(self, heaps: tuple[float, ...], x: np.ndarray, min_count: int) -> list[float]:
        """Declared heaps, checked against the data."""
        for h in heaps:
            if h in self.point_masses:
                raise DataValidationError(
                    f"Target {self.name!r}: declared heap {h!r} is also a point mass; declare it once."
                )
            if int(self.states(np.array([h]))[0]) < len(self.point_masses):
                raise DataValidationError(
                    f"Target {self.name!r}: declared heap {h!r} is outside the continuous support "
                    "(beyond a point-mass bound or on a side without continuous values)."
                )
            count = int(np.sum(x == h))
            if count < max(min_count, 1):
                raise DataValidationError(
                    f"Target {self.name!r}: declared heap {h!r} is held by {count} training records; "
                    f"a heap needs at least min_heap_count={max(min_count, 1)}."
                )
        return [float(h) for h in heaps]

    @property
    def heap_states(self) -> list[int]:
        """Continuous state (segment) of each heap."""
        return [int(s) for s in self.states(np.asarray(self.heaps, dtype=float))]

    @property
    def heap_encoded(self) -> np.ndarray:
        """Standardized value of each heap in its segment, shape (K,)."""
        k = len(self.point_masses)
        out = np.zeros(len(self.heaps))
        for i, (h, s) in enumerate(zip(self.heaps, self.heap_states, strict=True)):
            out[i] = self.segments[s - k].encode(np.array([h], dtype=float))[0]
        return out

    def heap_index(self, x: np.ndarray) -> np.ndarray:
        """Heap state per value, shape (N,): 0 for none, ``k + 1`` for ``heaps[k]``."""
        x = np.asarray(x, dtype=float)
        heaps = np.asarray(self.heaps, dtype=float)
        if heaps.size == 0:
            return np.zeros(x.shape, dtype=np.int64)
        pos = np.minimum(np.searchsorted(heaps, x), heaps.size - 1)
        return np.where(heaps[pos] == x, pos + 1, 0).astype(np.int64)

    @property
    def has_continuous(self) -> bool:
        return bool(self.segments)

    @property
    def n_states(self) -> int:
        return len(self.point_masses) + len(self.segments)

    @property
    def continuous_states(self) -> list[int]:
        """State indices of the continuous segments."""
        k = len(self.point_masses)
        return list(range(k, k + len(self.segments)))

    def states(self, x: np.ndarray) -> np.ndarray:
        """State index per value, shape (N,); values outside every segment's support (beyond a
        bound, or on a side without a segment) get ``-1``."""
        x = np.asarray(x, dtype=float)
        state = np.full(x.shape, -1, dtype=np.int64)
        k = len(self.point_masses)
        for i, seg in enumerate(self.segments):
            # Split segments are bounded below by the zero mass (mirrored), so each holds its side only.
            state[seg.contains(seg.sign * x)] = k + i
        for i, m in enumerate(self.point_masses):
            state[x == m] = i
        return state

    def _segment_rows(self, state: np.ndarray) -> list[tuple[_Segment, np.ndarray]]:
        """Each segment with the mask of the entries of ``state`` in it."""
        k = len(self.point_masses)
        return [(seg, state == k + i) for i, seg in enumerate(self.segments)]

    def encode(self, x: np.ndarray, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Returns (states (N,), standardized continuous values (N,), 0 where not continuous).

        With ``rng``, integer values are dequantized by uniform noise in (-0.5, 0.5).
        """
        state = self.states(x)
        u = np.zeros(x.shape, dtype=float)
        for seg, on in self._segment_rows(state):
            if on.any():
                xc = x[on].astype(float)
                if self.integer and rng is not None:
                    xc = xc + rng.uniform(-0.5, 0.5, size=xc.shape)
                u[on] = seg.encode(xc)
        if self.heaps:  # heap values are encoded exactly, never dequantized
            heap = self.heap_index(x)
            on = (heap > 0) & (state >= len(self.point_masses))
            u[on] = self.heap_encoded[heap[on] - 1]
        return state, u

    def log_jacobian(self, x: np.ndarray, state: np.ndarray) -> np.ndarray:
        """log |d u / d x| for continuous entries (0 elsewhere), shape (N,)."""
        out = np.zeros(x.shape, dtype=float)
        for seg, on in self._segment_rows(state):
            if on.any():
                out[on] = seg.log_jacobian(x[on].astype(float))
        if self.heaps:  # a heap is a discrete state: no Jacobian
            out[self.heap_index(x) > 0] = 0.0
        return out

    def decode(self, u: np.ndarray, state: np.ndarray, heap: np.ndarray | None = None) -> np.ndarray:
        """Values from standardized ``u`` (N,), ``state`` (N,) and heap index ``heap`` (N,)."""
        x = np.empty(u.shape, dtype=float)
        for seg, on in self._segment_rows(state):
            x[on] = seg.decode(u[on])
            if self.integer:
                x[on] = np.round(x[on])
        for i, m in enumerate(self.point_masses):
            x[state == i] = m
        if heap is not None and self.heaps:
            on = heap > 0
            x[on] = np.asarray(self.heaps, dtype=float)[heap[on] - 1]
        return x

    # -- serialization -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = {"name": self.name, "integer": self.integer, "point_masses": self.point_masses,
             "segments": [seg.to_dict() for seg in self.segments]}
        if self.heaps:  # without heaps, files stay byte-identical to those written before heaps
            d["heaps"] = list(self.heaps)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ContinuousEncoder:
        enc = cls(d["name"], d["integer"])
        enc.point_masses = list(d["point_masses"])
        enc.heaps = [float(h) for h in d.get("heaps", [])]
        if "segments" in d:
            enc.segments = [_Segment.from_dict(s) for s in d["segments"]]
        else:  # files written before segments: one segment, described by flat keys
            enc.segments = [_Segment.from_dict(d)] if d.get("has_continuous") else []
        return enc


class CategoricalEncoder:
    """Encodes a categorical target as integer codes over the categories seen in training."""

    def __init__(self, name: str) -> None:
        self.name = name

    def fit(self, x: pd.Series) -> CategoricalEncoder:
        self.categories = sorted(pd.unique(x).tolist(), key=lambda v: (str(type(v)), v))
        return self

    @property
    def n_states(self) -> int:
        return len(self.categories)

    def states(self, x: pd.Series) -> np.ndarray:
        """Category codes, shape (N,); ``-1`` for categories not seen in training."""
        return _codes(x, self.categories)

    def decode(self, state: np.ndarray) -> np.ndarray:
        return np.asarray(self.categories, dtype=object)[state]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "categories": [_to_json(v) for v in self.categories]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CategoricalEncoder:
        enc = cls(d["name"])
        enc.categories = list(d["categories"])
        return enc


class ConditionEncoder:
    """Encodes conditioning columns: numeric ones standardized, categorical ones one-hot."""

    def __init__(self, kinds: dict[str, str]) -> None:
        self.kinds = dict(kinds)

    def fit(self, df: pd.DataFrame, w: np.ndarray) -> ConditionEncoder:
        self.stats: dict[str, Any] = {}
        for name, kind in self.kinds.items():
            if kind == "categorical":
                self.stats[name] = sorted(pd.unique(df[name]).tolist(), key=lambda v: (str(type(v)), v))
            else:
                x = df[name].to_numpy(float)
                with np.errstate(over="ignore", invalid="ignore"):
                    mean, std = _weighted_mean_std(x, w)
                if not (np.isfinite(mean) and np.isfinite(std) and std > 0):
                    raise DataValidationError(
                        f"Condition column {name!r}: its weighted mean and standard deviation overflow float64 "
                        f"(largest |value| {float(np.abs(x).max()):g}); rescale it (e.g. log, or a smaller unit) "
                        "or drop the extreme records."
                    )
                self.stats[name] = (mean, std)
        return self

    @property
    def n_features(self) -> int:
        return sum(len(s) if self.kinds[n] == "categorical" else 1 for n, s in self.stats.items())

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        """Feature matrix, shape (N, n_features), float32.

        Raises
        ------
        DataValidationError
            If a categorical column holds a category not seen in training.
        """
        blocks = []
        for name, kind in self.kinds.items():
            if kind == "categorical":
                cats = self.stats[name]
                codes = _codes(df[name], cats)
                if (codes < 0).any():
                    unseen = sorted({str(v) for v in df[name][codes < 0].unique()})[:5]
                    raise DataValidationError(
                        f"Condition column {name!r} has categories not seen in training: {unseen}. "
                        f"Expected one of {[str(c) for c in cats][:20]}."
                    )
                block = np.zeros((len(df), len(cats)), dtype=np.float32)
                block[np.arange(len(df)), codes] = 1.0
            else:
                mean, std = self.stats[name]
                block = ((df[name].to_numpy(float) - mean) / std).astype(np.float32)[:, None]
            blocks.append(block)
        if not blocks:
            return np.zeros((len(df), 0), dtype=np.float32)
        return np.concatenate(blocks, axis=1)

    def to_dict(self) -> dict[str, Any]:
        stats = {
            n: ([_to_json(v) for v in s] if self.kinds[n] == "categorical" else list(s))
            for n, s in self.stats.items()
        }
        return {"kinds": self.kinds, "stats": stats}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConditionEncoder:
        enc = cls(d["kinds"])
        enc.stats = {n: (list(s) if enc.kinds[n] == "categorical" else tuple(s)) for n, s in d["stats"].items()}
        return enc


def _to_json(v: Any) -> Any:
    """A category value as a JSON scalar (numpy scalars to Python)."""
    return v.item() if isinstance(v, np.generic) else v


def _codes(values: pd.Series, categories: list[Any]) -> np.ndarray:
    """Position of each value in ``categories``, shape (N,); ``-1`` for values not there."""
    return pd.Index(categories, dtype=object).get_indexer(pd.Series(values, dtype=object)).astype(np.int64)
