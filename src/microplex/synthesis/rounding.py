"""Round numbers: the decimal grid that reported values sit on, learnt per magnitude and drawn again.

Survey values are reported on round numbers far more often than a smooth density allows: an
income of 34,000 rather than 34,217, 88% of one survey's nonzero incomes on multiples of 100 and
76% on multiples of 1,000, integers stored as floats, amounts in whole cents. A heap
(:mod:`~microplex.synthesis.heaps`) captures one heavy value; most round values are each too rare
to be a heap (20 records at 35,000, 12 at 37,000, ...), yet together they hold most of the
values, and a flow draws 34,217.3.

The *decimal level* of a value ``x != 0`` is the largest ``k`` (from :data:`MIN_LEVEL` to
:data:`MAX_LEVEL`) with ``x`` a multiple of ``10**k``: 34,000 has level 3, 34,200 level 2, 12.5
level -1, and a value that is a multiple of no ``10**k`` down to ``10**MIN_LEVEL`` (a computed
ratio, a log) has no level (:data:`NO_LEVEL`). A :class:`RoundingGrid` holds, for each magnitude
band ``floor(log10 |x|)``, how often the training values that the flow models (off the point
masses and heaps) take each level; for a variable with values on both sides of 0, for each sign
and band, so losses reported in thousands and gains to the ten keep their own grids (pooled, the
gains were drawn on round thousands 28 times as often as in training). A draw of the flow in band
``b`` (of its sign) goes through the band's levels coarse to fine and takes the nearest value of
level ``k`` (a multiple of ``10**k`` that is not a multiple of the band's next coarser level, any
multiple of ``10**k`` for its coarsest level) with the
level's hazard (:class:`RoundingGrid`), so the share of every level comes out as in training;
``NO_LEVEL`` keeps the flow's value. A value of a level is never a point mass or heap and never leaves its segment: where the nearest round
thousand is a heap, the draw goes on to the hundreds.

Disclosure: a level is kept in a band only when at least ``min_count`` training records of
positive weight hold it (else its records count toward the next finer level, which then takes the
multiples of both: with round hundred-thousands merged into the ten-thousands, 100,000 is drawn among
them; it was skipped as of a level the band no longer had, and never drawn), as a heap needs
``min_heap_count`` records; a band of fewer records uses the shares of its sign's values, and a sign
of fewer records those of the whole variable. The grid is a data-dependent statistic that no DP
mechanism covers: a DP fit learns none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .._errors import DataValidationError
from .._stats import (MAX_LEVEL, MIN_LEVEL, NARROW_PRECISIONS, NO_LEVEL, decimal_levels, narrow_type, storage_precision,
                      stored_at)

__all__ = ["MAX_LEVEL", "MIN_LEVEL", "NO_LEVEL", "RoundingGrid", "decimal_levels"]  # levels: microplex._stats


#: The powers of ten float64 holds, as their decimal literals read (``1e-5``, not ``10.0 ** -5``), and the
#: exponent of the first: a value's band is the index of the last power at or below it.
_POWERS = np.array([float(f"1e{k}") for k in range(-323, 309)])
_FIRST_POWER = -323


def magnitude_bands(x: np.ndarray) -> np.ndarray:
    """``floor(log10 |x|)`` of each value, exact at the powers of ten (0 for 0 and non-finite values).

    >>> magnitude_bands(np.array([34000.0, 999.9999999999999, 1000.0, -0.05, 1e-5, 0.0])).tolist()
    [4, 2, 3, -2, -5, 0]
    """
    a = np.abs(np.asarray(x, dtype=float))
    out = np.searchsorted(_POWERS, a, side="right") - 1 + _FIRST_POWER
    out[~(np.isfinite(a) & (a >= _POWERS[0]))] = 0  # 0, subnormal, inf and nan
    return out


def _values_of(ints: np.ndarray) -> list[int]:
    """The distinct values of small-range ints, sorted (``np.unique`` without its hashing)."""
    if not ints.size:
        return []
    low = int(ints.min())
    return (np.flatnonzero(np.bincount(ints - low)) + low).tolist()


def at_level(x: np.ndarray, level: int | np.ndarray, *, other: bool = False,
             precision: str = "float64") -> np.ndarray:
    """The nearest value to each ``x`` of exactly decimal level ``level`` (a multiple of
    ``10**level`` that is not a multiple of ``10**(level + 1)``); with ``other``, the nearest such
    value on the other side of ``x``. ``x`` itself where ``level`` is ``NO_LEVEL``. A negative
    level divides by a power of ten, so 123 at level -2 is 1.23 exactly as Python writes it. At a
    narrow ``precision`` (:func:`~microplex._stats.storage_precision`) every value is that type's
    rounding (24.1 at float32 is 24.100000381469727, as a float32 column holds it).

    Examples
    --------
    >>> at_level(np.array([34217.3, 34217.3, 2996.0, 1.2345, 5.5]), np.array([3, 2, 2, -2, -7])).tolist()
    [34000.0, 34200.0, 2900.0, 1.23, 5.5]
    >>> at_level(np.array([34217.3, 2996.0]), 2, other=True).tolist()
    [34300.0, 3100.0]
    >>> at_level(np.array([24.13]), -1, precision="float32").tolist()
    [24.100000381469727]
    """
    x = np.asarray(x, dtype=float)
    if np.ndim(level) == 0:
        return stored_at(_at(x, int(level), other, int(level) + 1), precision)
    level = np.asarray(level, dtype=np.int64)
    out = x.copy()
    for k in _values_of(level):
        on = level == k
        out[on] = _at(x[on], k, other, k + 1)
    return stored_at(out, precision)


def _nearest(x: np.ndarray, level: int, coarser: int | None, other: bool = False,
             precision: str = "float64") -> np.ndarray:
    """The nearest value to each ``x`` of ``level`` that is no multiple of ``10**coarser`` (``None``: any
    multiple of ``10**level``), at ``precision``: a level of a band's grid, whose next coarser level there
    is ``coarser`` (:func:`_coarser_levels`). ``x`` itself where ``level`` is ``NO_LEVEL``.

    >>> _nearest(np.array([96000.0, 204000.0]), 4, None).tolist()   # the coarsest level: any multiple
    [100000.0, 200000.0]
    >>> _nearest(np.array([96000.0, 204000.0]), 4, 5).tolist()      # multiples of 100,000 skipped
    [90000.0, 210000.0]
    """
    return stored_at(_at(np.asarray(x, dtype=float), int(level), other, coarser), precision)


def _at(x: np.ndarray, level: int, other: bool, coarser: int | None) -> np.ndarray:
    """:func:`at_level` for one level: the nearest multiple of ``10**level`` that is not a multiple of
    ``10**coarser`` (``level + 1``: a value of exactly ``level``; ``None``: any multiple)."""
    if level == NO_LEVEL:
        return x.copy()
    scale = 10.0 ** abs(level)
    with np.errstate(over="ignore", invalid="ignore"):
        r = x / scale if level >= 0 else x * scale
        lo = np.floor(r)
        if coarser is None:
            hi = lo + 1.0
        else:  # the neighbours below and above: a multiple of 10 ** coarser is of a coarser level, skipped
            m = 10.0 ** (coarser - level)
            digit = lo - m * np.floor(lo / m)  # np.mod(lo, m), 3x faster
            hi = lo + 1.0 + (digit == m - 1)
            lo -= digit == 0
        m = np.where((r - lo <= hi - r) != other, lo, hi)
        if level >= 0:
            m *= scale
        else:
            m /= scale
        return m


def _kept_levels(levels: np.ndarray, min_count: int) -> np.ndarray:
    """Each record's level, a level held by fewer than ``min_count`` records counted as the next
    finer level (coarse to fine; the finest level present keeps what remains)."""
    present = _values_of(levels)[::-1]
    out = levels.copy()
    waiting: list[int] = []
    count = 0
    for i, level in enumerate(present):
        on = levels == level
        count += int(on.sum())
        waiting.append(level)
        if count >= min_count or i == len(present) - 1:
            out[np.isin(levels, waiting)] = level
            waiting, count = [], 0
    return out


Allowed = Callable[[np.ndarray, np.ndarray], np.ndarray]
#: A band's (or a variable's) levels, coarse to fine, and their hazards (the last 1).
Levels = tuple[tuple[int, ...], tuple[float, ...]]


def _coarser_levels(levels: tuple[int, ...] | list[int]) -> list[int | None]:
    """For each of a band's levels (coarse to fine, repeats allowed), the next coarser level among them whose
    multiples its values skip; ``None`` for the coarsest, whose values are any multiple of its unit (the
    records of the coarser levels :func:`_kept_levels` merged into it are among them).

    >>> _coarser_levels([4, 3, 3, 0])
    [None, 4, 4, 3]
    """
    out: list[int | None] = []
    for i, level in enumerate(levels):
        out.append(next((c for c in reversed(levels[:i]) if c > level), None))
    return out

#: Steps of ``10**k`` on each side that :func:`_outward` tries beyond a value's two refused neighbours.
OUTWARD_STEPS = 20


def _outward(x: np.ndarray, out: np.ndarray, rows: np.ndarray, level: int, allowed: Allowed,
             precision: str = "float64", coarser: int | None = None) -> None:
    """Sets ``out[rows]`` to the nearest value of ``level`` (no multiple of ``10**coarser``, :func:`_nearest`)
    that ``allowed`` takes, looking up to
    :data:`OUTWARD_STEPS` steps of ``10**level`` beyond the two neighbours of each ``x[rows]``, nearer side first;
    a value with none keeps ``out``'s value (the flow's)."""
    step = 10.0**level
    for s in range(1, OUTWARD_STEPS + 1):
        if not rows.size:
            return
        with np.errstate(over="ignore", invalid="ignore"):
            below = _nearest(x[rows] - s * step, level, coarser, precision=precision)
            above = _nearest(x[rows] + s * step, level, coarser, precision=precision)
        near = np.abs(x[rows] - below) <= np.abs(above - x[rows])
        first, second = np.where(near, below, above), np.where(near, above, below)
        ok = np.asarray(allowed(first, rows), dtype=bool) & np.isfinite(first)
        out[rows[ok]] = first[ok]
        rows, second = rows[~ok], second[~ok]
        if rows.size:
            ok = np.asarray(allowed(second, rows), dtype=bool) & np.isfinite(second)
            out[rows[ok]] = second[ok]
            rows = rows[~ok]


def _hazards(x: np.ndarray, w: np.ndarray, levels: np.ndarray, rows: np.ndarray,
             allowed: Allowed | None, precision: str = "float64") -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Levels (coarse to fine) and their hazards among the values ``x`` (``rows``: their indices
    for ``allowed``): the weighted share of the values of each level among those of that level or
    finer whose nearest value of that level (:func:`_nearest`, skipping the multiples of the next coarser
    level present) is allowed (the last level's hazard is 1)."""
    present = _values_of(levels)[::-1]
    hazards = []
    for level, coarser in zip(present[:-1], _coarser_levels(present), strict=False):
        finer = levels <= level
        cand = _nearest(x[finer], level, coarser, precision=precision)
        ok = np.ones(cand.size, dtype=bool) if allowed is None else np.asarray(allowed(cand, rows[finer]), dtype=bool)
        ok |= levels[finer] == level  # a value of the level is its own nearest value of it
        hazards.append(float(w[levels == level].sum() / w[finer][ok].sum()))
    return tuple(int(v) for v in present), (*hazards, 1.0)


class RoundingGrid:
    """The decimal levels of a variable's values, per magnitude band (see the module docstring).

    Levels are drawn coarse to fine: a value whose nearest value of level ``k`` is allowed (inside
    its segment, no point mass or heap) takes it with the level's *hazard*, the share of the
    training values of level ``k`` among those of level ``k`` or finer whose nearest value of
    level ``k`` is allowed; else it goes on to the next finer level. So a level that heaps or point
    masses leave no room for in some places (round thousands that are heaps) is not pushed onto
    the others, and each level's share comes out as in training wherever the flow's values do.

    Parameters
    ----------
    bands : dict of int to (tuple of int, tuple of float)
        Per band ``floor(log10 |x|)``, its levels (coarse to fine) and their hazards (the last 1), for the
        values of both signs; empty with ``sides``.
    pooled : (tuple of int, tuple of float)
        The levels and hazards of the whole variable, for bands without enough records (and, with
        ``sides``, for the values of a sign without enough records).
    precision : str
        The float type the training values were stored at (:func:`~microplex._stats.storage_precision`):
        ``"float32"`` for a float32 column (or one read as float32 and widened), whose 24.1 is
        24.100000381469727; levels are read and drawn values written at it. ``"float64"`` by default.
    sides : dict of int to (bands, pooled), optional
        A variable with values on both sides of 0: per sign (-1, 1) with at least ``min_count`` records, the
        bands and pooled levels and hazards of its values alone, which a draw of that sign takes in place of
        ``bands`` and ``pooled``. ``None`` (values of one sign, or a grid written before signs): ``bands``
        and ``pooled`` serve both signs.

    Examples
    --------
    >>> x = np.array([34000.0] * 30 + [34200.0] * 30 + [34217.0] * 40)
    >>> grid = RoundingGrid.fit(x, np.ones(100), min_count=20)
    >>> grid.bands[4]        # 30 of 100 at level 3, 30 of the other 70 at level 2, the rest whole
    ((3, 2, 0), (0.3, 0.42857142857142855, 1.0))
    >>> grid.apply(np.array([41234.5, 41234.5, 41234.5]), np.array([0.1, 0.5, 0.9])).tolist()
    [41000.0, 41200.0, 41234.0]
    >>> signed = RoundingGrid.fit(np.concatenate([-x, x + 1.0]), np.ones(200), min_count=20)
    >>> signed.sides[-1][0][4], signed.sides[1][0][4]     # losses of levels 3, 2, 0; gains all whole
    (((3, 2, 0), (0.3, 0.42857142857142855, 1.0)), ((0,), (1.0,)))
    """

    def __init__(self, bands: dict[int, Levels], pooled: Levels, precision: str = "float64",
                 sides: dict[int, tuple[dict[int, Levels], Levels]] | None = None) -> None:
        narrow_type(precision)  # a DataValidationError names any other precision
        self.bands = bands
        self.pooled = pooled
        self.precision = precision
        self.sides = sides

    @classmethod
    def fit(cls, x: np.ndarray, w: np.ndarray, min_count: int, allowed: Allowed | None = None,
            precision: str | None = None) -> RoundingGrid | None:
        """The grid of values ``x`` with weights ``w`` (records of weight 0 and zeros left out);
        ``allowed(values, rows)`` says which values of a level may be drawn in place of ``x[rows]``
        (see :meth:`apply`). ``None`` when no decimal level is held by ``min_count`` records
        (nothing to round), in particular when fewer than ``min_count`` records of positive weight
        are left. The levels are read at ``precision``, by default the values' own
        (:func:`~microplex._stats.storage_precision`): a float32 column's 24.100000381469727 is 24.1."""
        x, w = np.asarray(x, dtype=float), np.asarray(w, dtype=float)
        rows = np.flatnonzero((w > 0) & (x != 0) & np.isfinite(x))
        if rows.size < max(int(min_count), 1):
            return None
        x, w = x[rows], w[rows]
        precision = storage_precision(x) if precision is None else precision
        raw = decimal_levels(x, precision)
        levels = _kept_levels(raw, min_count)
        if (levels == NO_LEVEL).all():  # no level held by min_count records: nothing to round
            return None
        pooled = _hazards(x, w, levels, rows, allowed, precision)
        bands = magnitude_bands(x)

        def by_band(on: np.ndarray) -> dict[int, Levels]:
            out = {}
            for band in _values_of(bands[on]):
                sel = on & (bands == band)
                if sel.sum() >= min_count:
                    out[int(band)] = _hazards(x[sel], w[sel], _kept_levels(raw[sel], min_count), rows[sel],
                                              allowed, precision)
            return out

        if not ((x < 0).any() and (x > 0).any()):
            return cls(by_band(np.ones(x.size, dtype=bool)), pooled, precision)
        # both signs: a band pooled over them gave the losses' round thousands to the gains (keyed by |x| alone)
        sides = {}
        for sign in (-1, 1):
            on = sign * x > 0
            if on.sum() >= min_count:  # else the sign's draws take the whole variable's shares, as a sparse band
                sides[sign] = (by_band(on), _hazards(x[on], w[on], _kept_levels(raw[on], min_count), rows[on],
                                                     allowed, precision))
        return cls({}, pooled, precision, sides)

    @property
    def finest(self) -> int:
        """The finest level of the variable (``NO_LEVEL`` when some values have none)."""
        return min(self.pooled[0])

    def apply(self, x: np.ndarray, u: np.ndarray, allowed: Allowed | None = None,
              edges: np.ndarray | None = None) -> np.ndarray:
        """Each value ``x`` moved to a level drawn by its uniform ``u`` in [0, 1).

        Levels are tried coarse to fine (each at most the value's band, since a value of band
        ``b`` is no multiple of ``10**(b + 1)``, and at least the variable's finest level):
        ``allowed(values, rows)`` says which candidate values may be taken (``rows`` index ``x``);
        an allowed candidate is taken with its level's hazard (the uniform is rescaled to go
        on). At the finest level a refused nearest value is replaced by the nearest on the
        other side, and where both are refused by the nearest allowed value of that level further out
        (:func:`_outward`); a value with no allowed candidate there keeps its drawn value.

        ``edges`` (sorted), with ``allowed``: every value where ``allowed`` can change (point
        masses, heaps, segment bounds). A value with no edge within ``10**k`` of it, ``k`` its
        band's coarsest level, has every level allowed; its level is then drawn in one step (the
        inverse CDF of the levels' probabilities, the same level for the same uniform).
        Without ``edges`` every value goes level by level.

        With :attr:`sides`, a value takes the bands of its sign (:meth:`_groups`).

        At a narrow :attr:`precision` every value comes out as that type holds it (candidates are
        rounded to it before ``allowed`` sees them; a value ``allowed`` refuses once rounded, next to a
        heap or a bound, keeps its float64 value), so a float32 column's synthetic values are float32
        numbers as its training values are.
        """
        x, u = np.asarray(x, dtype=float), np.asarray(u, dtype=float).copy()
        out = x.copy()
        floor = self.finest if self.finest != NO_LEVEL else MIN_LEVEL
        for pending, band, (levels, hazards) in self._groups(x):
            ks = [NO_LEVEL if v == NO_LEVEL else max(min(v, band), floor) for v in levels]
            coarser = _coarser_levels(ks)
            if allowed is None or edges is not None:
                clear = np.ones(pending.size, dtype=bool)
                top = max(ks)
                if allowed is not None and top != NO_LEVEL and len(edges):
                    near = x[pending]
                    d = 10.0**top
                    clear = (np.searchsorted(edges, near - d, side="left")
                             == np.searchsorted(edges, near + d, side="right"))
                fast = pending[clear]
                # P(level i) = hazard_i * prod_{j < i} (1 - hazard_j): the levels' inverse CDF
                stay = np.cumprod([1.0, *(1.0 - h for h in hazards[:-1])])
                cdf = np.cumsum(np.asarray(hazards) * stay)
                pick = np.minimum(np.searchsorted(cdf, u[fast], side="right"), len(ks) - 1)
                for i in _values_of(pick):
                    on = fast[pick == i]
                    out[on] = _nearest(x[on], ks[i], coarser[i], precision=self.precision)
                pending = pending[~clear]
            for i, (k, hazard) in enumerate(zip(ks, hazards, strict=True)):
                if k == NO_LEVEL or not pending.size:
                    break  # the flow's value
                tries = (False, True) if i == len(ks) - 1 else (False,)
                for other in tries:
                    cand = _nearest(x[pending], k, coarser[i], other=other, precision=self.precision)
                    ok = np.ones(pending.size, dtype=bool) if allowed is None else np.asarray(
                        allowed(cand, pending), dtype=bool)
                    take = ok & (u[pending] < hazard)
                    out[pending[take]] = cand[take]
                    go_on = ok & ~take  # allowed but not drawn: the uniform rescaled for the finer levels
                    u[pending[go_on]] = (u[pending[go_on]] - hazard) / (1.0 - hazard)
                    pending = pending[~take]
            if pending.size and allowed is not None and ks[-1] != NO_LEVEL:
                # both neighbours at the finest level refused (point masses on either side, 2,500 and 2,600 for
                # 2,594.7): the nearest allowed value of that level further out
                _outward(x, out, pending, ks[-1], allowed, self.precision, coarser[-1])
        if self.precision != "float64":  # the flow's values too, where the rounded value is still allowed
            stored = stored_at(out, self.precision)
            if allowed is not None:
                idx = np.flatnonzero(stored != out)
                keep = ~np.asarray(allowed(stored[idx], idx), dtype=bool)
                stored[idx[keep]] = out[idx[keep]]
            out = stored
        return out

    def _groups(self, x: np.ndarray) -> Iterator[tuple[np.ndarray, int, Levels]]:
        """The nonzero finite values ``x`` by the levels they take: the indices of each group, its band and its
        levels and hazards (its band's, or the pooled ones; with :attr:`sides`, those of its sign)."""
        bands = magnitude_bands(x)
        live = (x != 0) & np.isfinite(x)
        if self.sides is None:
            tables = [(live, self.bands, self.pooled)]
        else:
            tables = [(live & (sign * x > 0), *self.sides.get(sign, ({}, self.pooled))) for sign in (-1, 1)]
        for on, table, pooled in tables:
            for band in _values_of(bands[on]):
                yield np.flatnonzero(on & (bands == band)), band, table.get(int(band), pooled)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: ``{"bands": [[band, levels, hazards], ...], "pooled": [levels, hazards]}``
        (``NO_LEVEL`` written as ``null``), ``"precision"`` when it is not float64 (so float64 grids
        write what they wrote before precisions), and with :attr:`sides` ``"sides": [[sign, bands, pooled],
        ...]`` (``"bands"`` then empty; a grid of values of one sign writes what it wrote before signs)."""
        def levels(ls: tuple[int, ...]) -> list[int | None]:
            return [None if v == NO_LEVEL else int(v) for v in ls]

        def pair(p: Levels) -> list[list[Any]]:
            return [levels(p[0]), [float(s) for s in p[1]]]

        def by_band(bands: dict[int, Levels]) -> list[list[Any]]:
            return [[int(b), *pair(p)] for b, p in sorted(bands.items())]

        d: dict[str, Any] = {"bands": by_band(self.bands), "pooled": pair(self.pooled)}
        if self.precision != "float64":
            d["precision"] = self.precision
        if self.sides is not None:
            d["sides"] = [[int(sign), by_band(b), pair(p)] for sign, (b, p) in sorted(self.sides.items())]
        return d

    @classmethod
    def from_dict(cls, d: Any, field: str = "rounding",
                  fail: Callable[[str, str, Any], Exception] | None = None) -> RoundingGrid:
        """The grid of :meth:`to_dict`, read as untrusted data: every level an int in [MIN_LEVEL,
        MAX_LEVEL] or null, listed coarse to fine without repeats, every hazard in (0, 1] and the
        last 1, bands increasing ints in [-400, 400] (float64's magnitudes), a ``precision``, when present,
        one of :data:`~microplex._stats.NARROW_PRECISIONS`, ``sides``, when present, a list of
        ``[sign, bands, pooled]`` for signs -1 then 1 (each at most once) beside empty ``bands``; a grid
        without ``sides`` (one written before signs) applies its bands to both signs. A
        :class:`DataValidationError` names the entry otherwise (``fail(where, expected, got)``
        builds it when given; ``where`` follows ``field``)."""
        if fail is None:
            def fail(where: str, expected: str, got: Any) -> Exception:
                return DataValidationError(f"{field}{where} must be {expected}. Got {got!r:.200} instead.")

        def pair(levels: Any, hazards: Any, where: str) -> Levels:
            if not isinstance(levels, list) or not isinstance(hazards, list) or not levels \
                    or len(levels) != len(hazards) or len(levels) > MAX_LEVEL - NO_LEVEL + 1:
                raise fail(where, "a non-empty list of levels and a list of hazards of the same length",
                           [levels, hazards])
            out = []
            for v in levels:
                if v is None:
                    out.append(NO_LEVEL)
                elif isinstance(v, int) and not isinstance(v, bool) and MIN_LEVEL <= v <= MAX_LEVEL:
                    out.append(v)
                else:
                    raise fail(f"{where}.levels", f"ints in [{MIN_LEVEL}, {MAX_LEVEL}] or null", v)
            if out != sorted(set(out), reverse=True):
                raise fail(f"{where}.levels", "distinct levels, coarse to fine (null last)", levels)
            if not all(isinstance(h, int | float) and not isinstance(h, bool) and 0 < h <= 1 for h in hazards) \
                    or hazards[-1] != 1:
                raise fail(f"{where}.hazards", "numbers in (0, 1], the last 1", hazards)
            return tuple(out), tuple(float(h) for h in hazards)

        def by_band(entries: Any, where: str) -> dict[int, Levels]:
            if not isinstance(entries, list):
                raise fail(where, "a list of [band, levels, hazards] triples", entries)
            if len(entries) > 1000:
                raise fail(where, "at most 1000 bands", len(entries))
            bands: dict[int, Levels] = {}
            for i, entry in enumerate(entries):
                if not isinstance(entry, list) or len(entry) != 3 or not isinstance(entry[0], int) \
                        or isinstance(entry[0], bool) or not -400 <= entry[0] <= 400 \
                        or (bands and entry[0] <= max(bands)):
                    raise fail(f"{where}[{i}]", "a [band, levels, hazards] triple, bands increasing ints", entry)
                bands[entry[0]] = pair(entry[1], entry[2], f"{where}[{i}]")
            return bands

        def pooled(p: Any, where: str) -> Levels:
            if not isinstance(p, list) or len(p) != 2:
                raise fail(where, "a [levels, hazards] pair", p)
            return pair(p[0], p[1], where)

        keys = {"bands", "pooled", "precision", "sides"}
        if not isinstance(d, dict) or not {"bands", "pooled"} <= set(d) <= keys \
                or not isinstance(d["bands"], list) or not isinstance(d["pooled"], list) or len(d["pooled"]) != 2:
            raise fail("", "an object with keys 'bands' (a list), 'pooled' (a [levels, hazards] pair) and "
                       "optionally 'precision' and 'sides'", d)
        if "precision" in d and (not isinstance(d["precision"], str) or d["precision"] not in NARROW_PRECISIONS):
            raise fail(".precision", f"one of {list(NARROW_PRECISIONS)} (absent for float64)", d["precision"])
        sides = None
        if "sides" in d:  # bands per sign (a variable with values on both sides of 0)
            if not isinstance(d["sides"], list) or len(d["sides"]) > 2:
                raise fail(".sides", "a list of at most 2 [sign, bands, pooled] triples", d["sides"])
            if d["bands"]:
                raise fail(".bands", "empty beside 'sides' (the bands of each sign are in 'sides')", d["bands"])
            sides = {}
            for i, entry in enumerate(d["sides"]):
                if not isinstance(entry, list) or len(entry) != 3 or type(entry[0]) is not int \
                        or entry[0] not in (-1, 1) or (sides and entry[0] <= max(sides)):
                    raise fail(f".sides[{i}]", "a [sign, bands, pooled] triple, signs -1 then 1, each at most once",
                               entry)
                sides[entry[0]] = (by_band(entry[1], f".sides[{i}].bands"), pooled(entry[2], f".sides[{i}].pooled"))
        return cls(by_band(d["bands"], ".bands"), pooled(d["pooled"], ".pooled"), d.get("precision", "float64"),
                   sides)
