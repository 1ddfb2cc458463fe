"""Per-variable encoders: point-mass states, support-aware transforms and standardization.

Every statistic is weighted by the survey weights. Encoders serialize to plain JSON dicts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._errors import DataValidationError
from .._params import to_python
from .._stats import category_codes, detect_point_masses, sorted_categories, stored_at, value_shares
from ._segment import _Segment, _weighted_mean_std
from .heaps import detect_heaps
from .rounding import RoundingGrid
from .schema import VariableSpec

__all__ = ["ContinuousEncoder", "CategoricalEncoder", "ConditionEncoder", "integer_point_masses", "condition_moments"]


class ContinuousEncoder:
    """Encodes a continuous (or integer) variable as a discrete state and a standardized value.

    States ``0 .. k-1`` are the point masses (sorted values); the states after them are the
    continuous *segments*. There is one segment when some values are not point masses, and two
    (negative values, then positive values) when a zero point mass lies between negative and
    positive values (losses and profits, tax payments and refunds): the sign is then a discrete
    state, modelled jointly with the other point masses, instead of a flow having to move mass
    across the gap at zero. A variable whose continuous values are all at or below 0 (losses only) has
    one negative segment: the model of the same values made positive, mirrored (bounded at 0 as they
    are, where it was unbounded: its tails 4 times heavier, integer draws of 0 and 1). Each segment is
    mapped by a support-aware transform (``logit``
    between bounds, ``log`` above a bound, else ``asinh``; mirrored for the negative segment)
    and standardized with weighted moments. Beyond the training range, on unbounded sides, the
    inverse transform continues linearly (values there are still drawn, without the
    exponential blow-up of ``exp`` or ``sinh``). Integer variables are dequantized with uniform
    noise in training and rounded on output; their detected point masses are 0 and their end
    values (:func:`integer_point_masses`).

    *Heaps* (:mod:`~microplex.synthesis.heaps`) are values inside a segment that carry mass
    below the point-mass threshold; they keep the segment's state, are encoded exactly (never
    dequantized), and decode to the heap value itself. A heap index per value is 0 for none,
    ``k + 1`` for ``heaps[k]``.

    An integer variable's heaps are taken out of the flow's coordinate (``compact``): the
    values between them are counted without the heap integers (with heaps 35 and 40, the
    values 34, 36 and 41 sit at 34, 35 and 39), so the flow models a density without holes and
    no flow draw rounds onto a heap. Otherwise a heap would get its head's probability plus
    the flow's draws that round onto it (a heap of 5.3% came out at 5.7%, its neighbours at
    60-75% of their share). A heap's pinned coordinate lies between its neighbours'.

    A target with missing values (NaN: hours of those not working, the earnings of a non-respondent) has
    one more state after the segments, *missing* (``missing``): its records are a state of the pattern,
    modelled jointly with the other targets' states and the conditions, and decode to NaN. Point masses,
    heaps, segments and the rounding grid are fitted on the values given.

    A *rounding grid* (:mod:`~microplex.synthesis.rounding`, fitted with ``rounding=True``) holds
    the shares of the decimal levels (multiples of 10, 100, 1,000, ..., whole numbers, cents) of
    the values the flow models, per magnitude (and sign); :meth:`decode` given uniforms moves each flow value
    to a level drawn from them, never onto a point mass or heap and never out of its segment.
    """

    def __init__(self, name: str, integer: bool = False) -> None:
        self.name = name
        self.integer = integer
        self.heaps: list[float] = []
        #: Whether the heaps are taken out of the flow's coordinate (integer variables with heaps).
        self.compact = False
        #: Decimal levels of the flow's values per magnitude (:mod:`.rounding`); ``None``: drawn as the flow gives them.
        self.rounding: RoundingGrid | None = None
        #: Whether missing values (NaN) are a state of their own (the last one, :attr:`missing_state`).
        self.missing = False

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
        rounding: bool = False,
        precision: str = "float64",
    ) -> ContinuousEncoder:
        """Fits the encoder; ``standardize="quantile"`` maps each segment's values off its heaps
        to normal scores (:mod:`._quantile_map`), ``"moments"`` standardizes them by mean and std;
        ``rounding=True`` fits a rounding grid (:mod:`.rounding`) to those values, a level kept
        where at least ``min_heap_count`` records of positive weight hold it. ``precision`` is the float
        type the column stores its values at (:func:`~microplex._stats.storage_precision`): declared point
        masses and heaps are read as it holds them (16.6 is a float32 column's 16.600000381469727), and the
        rounding grid reads and draws its levels at it."""
        def as_stored(values: tuple[float, ...]) -> tuple[float, ...]:  # declared values as the column holds them
            return tuple(sorted(set(stored_at(np.asarray(values, dtype=float), precision).tolist())))

        x, w = np.asarray(x, dtype=float), np.asarray(w, dtype=float)
        given = ~np.isnan(x)
        # missing values held by records of positive weight are a state; the rest is fitted on the values given
        self.missing = bool((~given & (w > 0)).any())
        if not given.all():
            x, w = x[given], w[given]
        if spec.point_masses is not None:
            masses = as_stored(spec.point_masses)
        elif self.integer:
            masses = integer_point_masses(x, w, threshold, min_heap_count)
        else:
            masses = detect_point_masses(x, w, threshold, max_point_masses, min_heap_count)
        self.point_masses = [float(v) for v in masses]
        # The continuous part models the values of the population: off the point masses and of positive weight.
        # A value only records of weight 0 hold is outside it (its records are left out of the fit when no segment
        # holds it): counted, such values refused a variable whose weighted values all sit on point masses, or
        # whose negative values all have weight 0, and stretched a segment's bounds and tails to reach them.
        cont = ~np.isin(x, masses) & (w > 0)
        xc, wc = x[cont].astype(float), w[cont]
        split = spec.transform == "auto" and 0.0 in masses and (xc < 0).any() and (xc > 0).any()
        # values all at or below 0 (some below, no point mass above 0): one mirrored segment, the model of their
        # mirror image -x (bounded at 0 as that is; unbounded, its tails were 4 times as heavy)
        negative = (spec.transform == "auto" and not split and bool(len(xc)) and xc.max() <= 0 and xc.min() < 0
                    and all(m <= 0 for m in masses))
        whole = np.ones(len(xc), dtype=bool)
        sides = [(-1, xc < 0), (1, xc > 0)] if split else [(-1 if negative else 1, whole)]
        self.segments: list[_Segment] = []
        if spec.heaps is not None:
            self.heaps = self._declared_heaps(as_stored(spec.heaps))
        else:
            self.heaps = list(detect_heaps(xc, wc, float(w.sum()), heap_threshold, min_heap_count, max_heaps))
        self.compact = self.integer and bool(self.heaps) and all(float(h).is_integer() for h in self.heaps)
        yc = self._coordinate(xc)
        if cont.any():
            for sign, sel in sides:
                mirrored = sorted(sign * float(self._coordinate(np.array([m]))[0]) for m in self.point_masses)
                # non-negative on the values: a heap at 0 (the smallest) has compact coordinate -0.5
                seg = _Segment(sign).fit(sign * yc[sel], wc[sel], mirrored, spec.transform, self.integer, self.name,
                                         nonnegative=bool((sign * xc[sel]).min() >= 0))
                self.segments.append(seg)
        if spec.heaps is not None:
            self._check_heaps(x[w > 0], min_heap_count)
        free = self.heap_index(xc) == 0  # the values the flow models: off the point masses and heaps
        if self.heaps:  # a segment whose every value sits on a heap draws heaps only (see _Segment.free)
            for seg, (_, sel) in zip(self.segments, sides, strict=True):
                seg.free = bool((sel & free).any())
        if standardize == "quantile" and self.segments:
            held = set(self.heap_states)
            for i, (seg, (sign, sel)) in enumerate(zip(self.segments, sides, strict=True)):
                seg.fit_knots(sign * yc[sel & free], wc[sel & free], self.integer,
                              heaps=len(self.point_masses) + i in held)
        self.rounding = None
        if rounding and self.segments:
            self.rounding = RoundingGrid.fit(xc[free], wc[free], max(int(min_heap_count), 1),
                                             self._allowed(self.states(xc[free])), precision)
        return self

    def _declared_heaps(self, heaps: tuple[float, ...]) -> list[float]:
        """Declared heaps, sorted; none may be a point mass."""
        for h in heaps:
            if h in self.point_masses:
                raise DataValidationError(
                    f"Target {self.name!r}: declared heap {h!r} is also a point mass; declare it once."
                )
        return sorted(float(h) for h in heaps)

    def _check_heaps(self, x: np.ndarray, min_count: int) -> None:
        """Declared heaps, checked against the fitted segments and the values ``x`` of positive weight."""
        for h in self.heaps:
            if int(self.states(np.array([h]))[0]) < len(self.point_masses):
                raise DataValidationError(
                    f"Target {self.name!r}: declared heap {h!r} is outside the continuous support "
                    "(beyond a point-mass bound or on a side without continuous values)."
                )
            count = int(np.sum(x == h))
            if count < max(min_count, 1):
                raise DataValidationError(
                    f"Target {self.name!r}: declared heap {h!r} is held by {count} training records of positive "
                    "weight; "
                    f"a heap needs at least min_heap_count={max(min_count, 1)}."
                )

    # -- the flow's coordinate of a compact (integer, heaped) variable -------------------
    def _coordinate(self, x: np.ndarray) -> np.ndarray:
        """Values in the segments' coordinate: ``x`` itself, or (``compact``) ``x`` less the
        number of heaps between it and zero, so that the values between heaps are contiguous.
        A heap sits between its neighbours' coordinates (:meth:`_heap_coordinates`)."""
        x = np.asarray(x, dtype=float)
        if not self.compact:
            return x
        heaps = np.asarray(self.heaps, dtype=float)
        y = x - np.searchsorted(heaps, x, side="left") + np.searchsorted(heaps, 0.0, side="left")
        heap = self.heap_index(x)
        on = heap > 0
        y[on] = self._heap_coordinates()[heap[on] - 1]
        return y

    def _heap_coordinates(self) -> np.ndarray:
        """Coordinate of each heap of a compact variable: a run of ``r`` adjacent heap integers
        between two values at coordinates ``c`` and ``c + 1`` sits at ``c + j / (r + 1)``,
        ``j = 1..r`` (one heap at the midpoint), so that each heap keeps its own coordinate."""
        heaps = np.asarray(self.heaps, dtype=float)
        above = heaps - np.arange(heaps.size) + np.searchsorted(heaps, 0.0, side="left")  # next value's
        _, first, runs = np.unique(above, return_index=True, return_counts=True)
        j = np.arange(heaps.size) - np.repeat(first, runs) + 1
        return above - 1 + j / (np.repeat(runs, runs) + 1)

    def _expand(self, m: np.ndarray) -> np.ndarray:
        """Integer values of integer coordinates ``m`` (the inverse of :meth:`_coordinate` off
        the heaps): the heap integers are skipped."""
        heaps = np.asarray(self.heaps, dtype=float)
        shifted = m - np.searchsorted(heaps, 0.0, side="left")
        gaps = heaps - np.arange(heaps.size)  # the coordinate at which each heap is skipped
        return shifted + np.searchsorted(gaps, shifted, side="right")

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
            out[i] = self.segments[s - k].encode(self._coordinate(np.array([h], dtype=float)))[0]
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
        return len(self.point_masses) + len(self.segments) + int(self.missing)

    @property
    def missing_state(self) -> int | None:
        """The state of missing values (after the point masses and segments), ``None`` without one."""
        return len(self.point_masses) + len(self.segments) if self.missing else None

    @property
    def continuous_states(self) -> list[int]:
        """State indices of the continuous segments."""
        k = len(self.point_masses)
        return list(range(k, k + len(self.segments)))

    def states(self, x: np.ndarray) -> np.ndarray:
        """State index per value, shape (N,); values outside every segment's support (beyond a
        bound, or on a side without a segment) get ``-1``, and so do missing values (NaN) without a
        missing state."""
        x = np.asarray(x, dtype=float)
        state = np.full(x.shape, -1, dtype=np.int64)
        k = len(self.point_masses)
        y = self._coordinate(x)
        for i, seg in enumerate(self.segments):
            # Split segments are bounded below by the zero mass (mirrored), so each holds its side only.
            state[seg.contains(seg.sign * y)] = k + i
        for i, m in enumerate(self.point_masses):
            state[x == m] = i
        nan = np.isnan(x)
        if nan.any():  # an unbounded segment "contains" NaN
            state[nan] = -1 if self.missing_state is None else self.missing_state
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
                xc = self._coordinate(x[on])
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
                out[on] = seg.log_jacobian(self._coordinate(x[on]))
        if self.heaps:  # a heap is a discrete state: no Jacobian
            out[self.heap_index(x) > 0] = 0.0
        return out

    def decode(self, u: np.ndarray, state: np.ndarray, heap: np.ndarray | None = None,
               rounding: np.ndarray | None = None) -> np.ndarray:
        """Values from standardized ``u`` (N,), ``state`` (N,) and heap index ``heap`` (N,);
        ``rounding`` (N,), uniforms in [0, 1), draws the decimal level of each flow value when the
        encoder has a rounding grid."""
        x = np.empty(u.shape, dtype=float)
        for seg, on in self._segment_rows(state):
            x[on] = seg.decode(u[on])
            if self.integer:
                x[on] = seg.round_inside(x[on])  # never onto a bound (a point mass): see round_inside
                if self.compact:
                    x[on] = self._expand(x[on])
            if self.rounding is not None and rounding is not None:
                free = on if heap is None or not self.heaps else on & (heap == 0)
                x[free] = self._round(x[free], rounding[free], state[free])
        for i, m in enumerate(self.point_masses):
            x[state == i] = m
        if self.missing:
            x[state == self.missing_state] = np.nan
        if heap is not None and self.heaps:
            on = heap > 0
            x[on] = np.asarray(self.heaps, dtype=float)[heap[on] - 1]
        return x

    def _allowed(self, state: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """Which round values may stand for the values of rows ``rows`` (in continuous states
        ``state[rows]``): those in the same segment, off the point masses and heaps (the heads
        alone draw those)."""
        def allowed(candidate: np.ndarray, rows: np.ndarray) -> np.ndarray:
            ok = self.states(candidate) == state[rows]
            return ok & (self.heap_index(candidate) == 0) if self.heaps else ok
        return allowed

    def _edges(self) -> np.ndarray | None:
        """The values where :meth:`_allowed` can change (point masses, heaps, segment bounds),
        sorted; ``None`` for a compact variable (its bounds are in the flow's coordinate)."""
        if self.compact:
            return None
        bounds = [seg.sign * b for seg in self.segments for b in (seg.lower, seg.upper) if b is not None]
        return np.unique(np.asarray([*self.point_masses, *self.heaps, *bounds], dtype=float))

    def _round(self, x: np.ndarray, u: np.ndarray, state: np.ndarray) -> np.ndarray:
        """Flow values ``x`` (in continuous states ``state``) moved to the decimal levels their
        uniforms ``u`` draw (:meth:`RoundingGrid.apply`)."""
        return self.rounding.apply(x, u, self._allowed(state), self._edges())

    # -- serialization -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = {"name": self.name, "integer": self.integer, "point_masses": self.point_masses,
             "segments": [seg.to_dict() for seg in self.segments]}
        if self.heaps:  # without heaps, files stay byte-identical to those written before heaps
            d["heaps"] = list(self.heaps)
        if self.compact:  # files written before compact coordinates load as they were fitted
            d["compact"] = True
        if self.missing:  # files of targets without missing values stay as before
            d["missing"] = True
        if self.rounding is not None:  # files written before rounding grids (or without one) keep their keys
            d["rounding"] = self.rounding.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ContinuousEncoder:
        enc = cls(d["name"], d["integer"])
        enc.point_masses = list(d["point_masses"])
        enc.heaps = [float(h) for h in d.get("heaps", [])]
        enc.compact = bool(d.get("compact", False))
        enc.missing = d.get("missing", False) is True
        if d.get("rounding") is not None:
            enc.rounding = RoundingGrid.from_dict(d["rounding"], f"encoders.{enc.name}.rounding")
        if "segments" in d:
            enc.segments = [_Segment.from_dict(s) for s in d["segments"]]
        else:  # files written before segments: one segment, described by flat keys
            enc.segments = [_Segment.from_dict(d)] if d.get("has_continuous") else []
        return enc


def integer_point_masses(x: np.ndarray, w: np.ndarray, threshold: float, min_count: int = 0) -> tuple[float, ...]:
    """Point masses of an integer variable: 0, and its smallest and largest values (bottom and top
    codes), each when it carries at least ``threshold`` of the weight (the ends: and is held by at least
    ``min_count`` records of positive weight); sorted.

    Its other heavy values (ages, round hours) become heaps, not point masses: every value of a
    short integer range may carry 1% of the weight. A heavy end value is a bound: as a heap it let
    the flow's tail draw beyond it (an integer income top-coded at 50,000 was drawn up to 50,295),
    as a point mass it bounds the continuous segment, as for a float variable.

    Examples
    --------
    >>> integer_point_masses(np.array([0, 3, 5, 9, 9, 9]), np.ones(6), 0.15)
    (0.0, 9.0)
    >>> integer_point_masses(np.array([-4, -4, 1, 2, 3, 7]), np.ones(6), 0.2)
    (-4.0,)
    """
    values, shares = value_shares(x, w)
    ends = {0, len(values) - 1} | set(np.flatnonzero(values == 0).tolist())
    def held(v: float) -> int:  # records of positive weight at v
        return int(np.count_nonzero((x == v) & (w > 0)))
    return tuple(float(values[i]) for i in sorted(ends)
                 if shares[i] >= threshold and (values[i] == 0 or held(values[i]) >= min_count))


def in_dtype_order(dtype: object, categories: list[Any]) -> list[Any] | None:
    """``categories`` in the order of an ordered pandas categorical ``dtype`` (those the dtype does not
    list last, as given); ``None`` when ``dtype`` is not an ordered categorical."""
    if not (isinstance(dtype, pd.CategoricalDtype) and dtype.ordered):
        return None
    rank = {v: i for i, v in enumerate(dtype.categories.tolist())}
    return sorted(categories, key=lambda v: rank.get(v, len(rank)))


class CategoricalEncoder:
    """Encodes a categorical target as integer codes over the categories seen in training.

    The categories are sorted by value, or, for an ordered pandas categorical column, kept in the
    column's order (``ordered``): the draws then come back as an ordered categorical of that order.
    A pandas categorical column's own categories (``levels``: all of them, in the dtype's order, also
    those no record holds) are kept when they differ from the categories seen, and the draws carry
    them: the draws' dtype is then the training column's, with the same codes per label (they came
    back with the categories seen only, sorted, so ``.cat.codes`` gave other numbers for the same
    label and real and synthetic records concatenated to text).

    Missing values (NaN, None, pandas' NA) are one more state after the categories (``missing``),
    drawn as a missing value of the column's dtype.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.ordered = False
        #: Whether missing values are a state of their own (the last one).
        self.missing = False
        #: The training column's categorical dtype's categories, when they differ from ``categories``.
        self.levels: list[Any] | None = None

    def fit(self, x: pd.Series) -> CategoricalEncoder:
        self.missing = bool(x.isna().any())
        self.categories = sorted_categories(pd.unique(x.dropna()).tolist())
        order = in_dtype_order(x.dtype, self.categories)
        self.ordered = order is not None
        if order is not None:
            self.categories = order
        self.levels = None
        if isinstance(x.dtype, pd.CategoricalDtype):
            levels = x.dtype.categories.tolist()
            if levels != self.categories:
                self.levels = levels
        return self

    @property
    def dtype_categories(self) -> list[Any]:
        """The categories of the draws' categorical dtype: ``levels`` when kept, else ``categories``."""
        return self.categories if self.levels is None else self.levels

    @property
    def pandas_dtype(self) -> pd.CategoricalDtype:
        """The categorical dtype of draws of a ``category`` column: :attr:`dtype_categories`, ``ordered``."""
        return pd.CategoricalDtype(self.dtype_categories, ordered=self.ordered)

    @property
    def n_states(self) -> int:
        return len(self.categories) + int(self.missing)

    def states(self, x: pd.Series) -> np.ndarray:
        """Category codes, shape (N,); ``-1`` for categories not seen in training (and for missing values
        without a missing state), ``len(categories)`` for missing values with one."""
        codes = category_codes(x, self.categories)
        if self.missing:
            codes[np.asarray(pd.isna(x), dtype=bool)] = len(self.categories)
        return codes

    def decode(self, state: np.ndarray) -> np.ndarray:
        return np.asarray(self.categories + [np.nan] * int(self.missing), dtype=object)[state]

    def to_dict(self) -> dict[str, Any]:
        d = {"name": self.name, "categories": [to_python(v) for v in self.categories]}
        if self.ordered:
            d["ordered"] = True
        if self.levels is not None:  # absent unless they differ: other files stay as they were
            d["levels"] = [to_python(v) for v in self.levels]
        if self.missing:  # absent without missing values: other files stay as they were
            d["missing"] = True
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CategoricalEncoder:
        enc = cls(d["name"])
        enc.categories = list(d["categories"])
        enc.ordered = d.get("ordered", False) is True
        enc.levels = list(d["levels"]) if d.get("levels") is not None else None
        enc.missing = d.get("missing", False) is True
        return enc


def condition_moments(values: pd.Series, w: np.ndarray) -> tuple[float, float]:
    """Weighted mean and standard deviation of a numeric condition's values given (its missing values are an
    indicator column of their own), as :class:`ConditionEncoder` standardizes it (overflow gives inf or NaN)."""
    x = values.to_numpy(float, na_value=np.nan)
    given = ~np.isnan(x)
    with np.errstate(over="ignore", invalid="ignore"):
        return _weighted_mean_std(x[given], np.asarray(w, dtype=float)[given])


class ConditionEncoder:
    """Encodes conditioning columns: numeric ones standardized, categorical ones one-hot.

    ``weightless`` names, per categorical condition, the categories that only training records of
    weight 0 hold: the networks never learnt from them (their one-hot input keeps its initial
    weights), so :meth:`Synthesizer.generate` and :meth:`Synthesizer.log_prob` warn about rows that
    hold them (:meth:`weightless_rows`), as about numeric conditions beyond their training range.

    ``missing`` names the conditions with missing values in training: for a categorical condition a
    missing value is one more one-hot column after the categories; for a numeric one, an indicator
    column after its standardized value, which is 0 (the weighted mean of the values given) where the
    value is missing (the mean and standard deviation are those of the values given).
    """

    def __init__(self, kinds: dict[str, str]) -> None:
        self.kinds = dict(kinds)
        self.weightless: dict[str, list[Any]] = {}
        self.missing: list[str] = []

    def fit(self, df: pd.DataFrame, w: np.ndarray, known: Mapping[str, Sequence[Any]] | None = None) -> ConditionEncoder:
        """Fits the statistics to ``df`` with weights ``w``; ``known`` adds, per categorical condition, categories
        that no row of ``df`` may hold (they join ``weightless``: a :class:`HouseholdSynthesizer`'s member models
        know every region, also one that only one-person households hold)."""
        self.stats: dict[str, Any] = {}
        self.weightless = {}
        self.missing = [n for n in self.kinds if df[n].isna().any()]
        for name, kind in self.kinds.items():
            if kind == "categorical":
                values = pd.unique(df[name].dropna()).tolist()
                if known and name in known:
                    values = pd.unique(pd.Series([*values, *known[name]], dtype=object)).tolist()
                cats = sorted_categories(values)
                self.stats[name] = cats
                codes = category_codes(df[name], cats)[np.asarray(w) > 0]
                held = np.bincount(codes[codes >= 0], minlength=len(cats)) > 0
                if not held.all():
                    self.weightless[name] = [c for c, h in zip(cats, held, strict=True) if not h]
            else:
                mean, std = condition_moments(df[name], w)
                if not (np.isfinite(mean) and np.isfinite(std) and std > 0):
                    raise DataValidationError(
                        f"Condition column {name!r}: its weighted mean and standard deviation overflow float64 "
                        f"(largest |value| {float(np.nanmax(np.abs(df[name].to_numpy(float, na_value=np.nan)))):g}); "
                        "rescale it (e.g. log, or a smaller unit) or drop the extreme records."
                    )
                self.stats[name] = (mean, std)
        return self

    @property
    def n_features(self) -> int:
        return sum(self._width(name) for name in self.kinds)

    def _width(self, name: str) -> int:
        """The number of columns of condition ``name`` in :meth:`transform`."""
        base = len(self.stats[name]) if self.kinds[name] == "categorical" else 1
        return base + (name in self.missing)

    def offsets(self) -> dict[str, int]:
        """Each condition's first column in :meth:`transform` (its columns follow it, in :attr:`kinds` order)."""
        out, col = {}, 0
        for name in self.kinds:
            out[name] = col
            col += self._width(name)
        return out

    def column_conditions(self) -> dict[int, str]:
        """Column index of :meth:`transform` -> the condition it encodes."""
        return {first + k: name for name, first in self.offsets().items() for k in range(self._width(name))}

    def cells(self) -> dict[int, tuple[str, Any]]:
        """The binary inputs of :meth:`transform`: column index -> (condition, category), the category ``None``
        for a missing value (a categorical condition's column after its categories, a numeric one's indicator)."""
        out: dict[int, tuple[str, Any]] = {}
        for name, first in self.offsets().items():
            if self.kinds[name] == "categorical":
                out.update({first + k: (name, cat) for k, cat in enumerate(self.stats[name])})
            if name in self.missing:
                out[first + self._width(name) - 1] = (name, None)
        return out

    def numeric_columns(self) -> dict[int, str]:
        """The columns of :meth:`transform` holding a numeric condition's standardized value: index -> condition."""
        return {first: name for name, first in self.offsets().items() if self.kinds[name] != "categorical"}

    def weightless_rows(self, df: pd.DataFrame) -> dict[str, tuple[int, list[Any]]]:
        """Per categorical condition, the rows of ``df`` that hold a category only training records of
        weight 0 held (``weightless``): their count and those categories (conditions without such rows
        are left out)."""
        out = {}
        for name, levels in self.weightless.items():
            codes = category_codes(df[name], levels)
            on = codes >= 0
            if on.any():
                out[name] = (int(on.sum()), [to_python(levels[i]) for i in sorted(set(codes[on].tolist()))])
        return out

    def block(self, name: str, values: pd.Series) -> np.ndarray:
        """The columns of condition ``name`` in :meth:`transform` for its ``values``, shape (N, width), float32."""
        if self.kinds[name] == "categorical":
            cats = self.stats[name]
            codes = category_codes(values, cats)
            if name in self.missing:  # a missing value: the column after the categories
                codes[values.isna().to_numpy(bool)] = len(cats)
            if (codes < 0).any():
                # the values themselves, not their str(): 'True' (str) and True (bool) read alike
                unseen = sorted({to_python(v) for v in values[codes < 0].unique()}, key=str)[:5]
                alike = {str(v) for v in unseen} <= {str(c) for c in cats}
                raise DataValidationError(
                    f"Condition column {name!r} has categories not seen in training: {unseen}. "
                    f"Expected one of {[to_python(c) for c in cats][:20]}."
                    + (f" The labels agree but the types differ ({type(unseen[0]).__name__} given, "
                       f"{type(to_python(cats[0])).__name__} in training): convert the column first."
                       if alike else "")
                )
            block = np.zeros((len(values), self._width(name)), dtype=np.float32)
            block[np.arange(len(values)), codes] = 1.0
        else:
            mean, std = self.stats[name]
            x = values.to_numpy(float, na_value=np.nan)
            block = ((x - mean) / std).astype(np.float32)[:, None]
            if name in self.missing:  # a missing value: 0 (the mean), and 1 in the indicator column after it
                gap = np.isnan(x)
                block[gap, 0] = 0.0
                block = np.concatenate([block, gap.astype(np.float32)[:, None]], axis=1)
        return block

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        """Feature matrix, shape (N, n_features), float32.

        Raises
        ------
        DataValidationError
            If a categorical column holds a category not seen in training.
        """
        blocks = [self.block(name, df[name]) for name in self.kinds]
        if not blocks:
            return np.zeros((len(df), 0), dtype=np.float32)
        return np.concatenate(blocks, axis=1)

    def to_dict(self) -> dict[str, Any]:
        stats = {
            n: ([to_python(v) for v in s] if self.kinds[n] == "categorical" else list(s))
            for n, s in self.stats.items()
        }
        d = {"kinds": self.kinds, "stats": stats}
        if self.weightless:  # absent unless some category has only records of weight 0: other files unchanged
            d["weightless"] = {n: [to_python(v) for v in levels] for n, levels in self.weightless.items()}
        if self.missing:  # absent unless a condition has missing values: other files unchanged
            d["missing"] = list(self.missing)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConditionEncoder:
        enc = cls(d["kinds"])
        enc.stats = {n: (list(s) if enc.kinds[n] == "categorical" else tuple(s)) for n, s in d["stats"].items()}
        enc.weightless = {n: list(levels) for n, levels in (d.get("weightless") or {}).items()}
        enc.missing = list(d.get("missing") or [])
        return enc


