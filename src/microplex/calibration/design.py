"""Sparse design matrix of calibration targets, built in O(nnz) without dense intermediates.

Targets whose filters are all equalities on the same columns (a margin, e.g. every ``state x educ``
cell) are matched to records in one pass: the record columns are factorized once, combined into a
cell code, and a lookup table sends each record to its target (or none). Targets with set or range
filters are matched one by one. Entries are assembled as COO triplets and summed into CSR, which is
also how person-level contributions are added up into their households.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import numbers
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from microplex._errors import DataValidationError
from microplex._files import ibm_zeros
from microplex._params import shown, to_python
from microplex._stats import bool_flags, check_household_ids, check_weight_dtype, dtype_precision, miss_scale, stored_at

from .filters import NumberedCode, range_label
from .targets import Target, Targets, format_filter

__all__ = ["MEDIAN_UNIT_TOTAL", "VALUE_ROUNDING", "Design", "build_design", "in_weight_units", "miss_units",
           "natural_sizes", "reordered", "rounding_slack", "target_order", "target_ratio", "target_scale", "unit_design", "value_sizes", "weight_unit"]

logger = logging.getLogger(__name__)

#: A target's value within ``VALUE_ROUNDING * max(1, |value|)`` of what weights can reach is reached: the rounding
#: of a figure computed in floating point (``sum(w * y) / sum(w)`` of values all 19.25 is 19.250000000000004, beyond
#: every value it averages).
VALUE_ROUNDING = 1e-9


def rounding_slack(value: float, scale: float | None = None) -> float:
    """The rounding slack of a target's value (:data:`VALUE_ROUNDING`): relative to ``max(1, |value|)``, or, for a
    mean, to the largest of ``|value|`` and ``scale``, the size of the values it averages (a floor of 1 let a mean
    of values near 1e-10 "reach" a target 5 times above every value: it was snapped onto the largest and the fit
    returned a mean 80% off as met).

    Examples
    --------
    >>> rounding_slack(19.25), rounding_slack(5e-10, scale=1e-10)
    (1.925e-08, 5e-19)
    """
    if scale is None:
        return VALUE_ROUNDING * max(1.0, abs(float(value)))
    return VALUE_ROUNDING * max(abs(float(value)), abs(float(scale)))


def _snap_means(x: sp.csr_matrix, mean_count: sp.csr_matrix, targets: Targets) -> sp.csr_matrix:
    """``x`` with each mean target whose value lies a rounding error (:func:`rounding_slack`) beyond every one of
    its units' means moved onto the nearest of them (its column ``sum (y - v)`` per unit shifted by its records'
    count times the gap), so that the solvers' row ``sum_i w_i x_ij = 0`` can be met; the target's value, which
    the checks compare with the achieved mean, is unchanged."""
    idx = [j for j, t in enumerate(targets) if t.aggregate == "mean"]
    if not idx:
        return x
    xc, cc = sp.csc_matrix(x), sp.csc_matrix(mean_count)
    xc.sort_indices()
    cc.sort_indices()
    changed = False
    for j in idx:
        xs, xe = xc.indptr[j], xc.indptr[j + 1]
        cs, ce = cc.indptr[j], cc.indptr[j + 1]
        if xe - xs == 0 or xe - xs != ce - cs or not np.array_equal(xc.indices[xs:xe], cc.indices[cs:ce]):
            continue  # a unit on the value itself (its entry 0): the value is in range
        counts = cc.data[cs:ce]
        dev = xc.data[xs:xe] / counts
        gap = float(dev.min()) if (dev > 0).all() else float(dev.max()) if (dev < 0).all() else 0.0
        v = float(targets[j].value)
        if gap != 0.0 and abs(gap) <= rounding_slack(v, float(np.abs(dev + v).max())):
            xc.data[xs:xe] -= gap * counts
            changed = True
    if not changed:
        return x
    out = sp.csr_matrix(xc)
    out.eliminate_zeros()
    return out


@dataclass
class Design:
    """A calibration problem in matrix form.

    Attributes
    ----------
    x : scipy.sparse.csr_matrix of shape (n_units, m)
        Contribution of each weighting unit (record, or household) to each target.
    totals : ndarray of shape (m,)
        Target totals (0 for ``mean`` targets, whose column holds ``y - value``).
    d : ndarray of shape (n_units,)
        Initial weights.
    units : pandas.Index of length n_units
        Record index, or household ids.
    record_unit : ndarray of shape (n_records,)
        Unit position of every record.
    targets : Targets
        The targets, in column order.
    mean_count : scipy.sparse.csr_matrix of shape (n_units, m)
        Counts behind ``mean`` targets (zero columns elsewhere), to report achieved means.
    unit : float, default=1.0
        The weight of one unit of ``d``, ``totals`` and the count and sum targets' values in the caller's units
        (:func:`in_weight_units`): messages report ``value * unit``.
    zero_factor : float, optional
        The factor of ``d`` at which a target of value 0 is sized (:attr:`initial_sizes`): the targets' scale
        relative to ``d`` (:func:`target_scale`) where a solve's count targets fix the weights' scale (a hard
        :class:`~microplex.calibration.Calibrator`'s, :func:`~microplex.calibration.calibrator.zero_sized`), so that
        such a target is solved and judged in thousandths of what its records add up to where the solution lies,
        whatever unit the weights are in. None (default): at ``d`` itself, whatever ``d`` is brought to.
    """

    x: sp.csr_matrix
    totals: np.ndarray
    d: np.ndarray
    units: pd.Index
    record_unit: np.ndarray
    targets: Targets
    mean_count: sp.csr_matrix
    unit: float = 1.0
    zero_factor: float | None = None

    @cached_property
    def xt(self) -> sp.csr_matrix:
        """``x.T`` in CSR form (built on first use)."""
        return sp.csr_matrix(self.x.T)

    @cached_property
    def zero_totals(self) -> np.ndarray:
        """Which targets are counts or sums of value 0 (a bool mask, read-only): those solved and judged in
        thousandths of their records' size (:func:`~microplex._stats.zero_scale`) sized at :attr:`zero_factor`."""
        zero = np.array([t.aggregate != "mean" and t.value == 0 for t in self.targets], dtype=bool)
        zero.flags.writeable = False
        return zero

    @cached_property
    def initial_sizes(self) -> np.ndarray:
        """:func:`value_sizes` at the initial weights ``d`` (built on first use, read-only): what every "met" test
        measures a target's miss against as rounding (:func:`~microplex._stats.rounding_scale`), and a target of 0
        in thousandths of (:func:`~microplex._stats.zero_scale`). A target of value 0 is sized at ``d`` times
        :attr:`zero_factor` (a count or sum, :attr:`zero_totals`; a mean's size does not depend on the scale of
        ``d``), the targets' scale: its achieved total is computed there, and weights of 1 against
        counts 1e6 times them met a sum of 0 to float64 rounding of its records' size there, 4.7e-10, which in
        thousandths of its size at weights of 1 (6.5e-3) read 7e-8 and was refused."""
        sizes = value_sizes(self, self.d)
        if self.zero_factor not in (None, 1.0) and self.zero_totals.any():
            sizes = np.where(self.zero_totals, value_sizes(self, self.d * self.zero_factor), sizes)
        sizes.flags.writeable = False
        return sizes


#: The largest total initial weight, in units of the median weight, that :func:`weight_unit` solves in those
#: units: beyond it the weights are spread (half of them carry a negligible share of the total) and the unit is
#: the weighted median's.
MEDIAN_UNIT_TOTAL = 2.0**30


def weight_unit(d: np.ndarray) -> float:
    """The power of two at or below the median positive initial weight (1.0 where none is positive): the unit in
    which the linear programs and the sparse solves weigh (:func:`in_weight_units`); where the total weight is
    more than :data:`MEDIAN_UNIT_TOTAL` such units, the power of two at or below the weighted median (the weight
    of the record at which the sorted weights reach half of their total).

    HiGHS holds bounds to absolute tolerances (about 1e-7) and reads values of 1e20 as infinite, so the same
    problem in other units of weight (weights of 1 or of 1e6, totals of 1e15 or of 1e21) was solved differently or
    refused as a "model error". A power of two changes no digit: weights scaled by one give the same records and
    the same weights, scaled. With half of the records near 1 and half near 1e10, the median's unit left the
    totals at 1e17 to 1e22 in its units (with a sum target's row at :func:`~.feasibility.lp_row_scale`), which
    HiGHS failed to solve; the weighted median's unit is that of the records that carry the totals. Weights
    that are not so spread (a total below ``2**30`` median weights) keep the median's unit, and the weighted
    median of weights in its own unit is in ``[1, 2)``: a design already in its unit has unit 1.

    Examples
    --------
    >>> weight_unit(np.array([1.0, 1.5, 3.0])), weight_unit(np.array([3000.0, 5000.0])), weight_unit(np.zeros(2))
    (1.0, 2048.0, 1.0)
    >>> weight_unit(np.array([1.0, 1.0, 1.0, 3e9, 5e9]))  # the median, 1, is far below what carries the total
    4294967296.0
    """
    d = np.asarray(d, dtype=np.float64)
    pos = d[(d > 0) & np.isfinite(d)]
    if not pos.size:
        return 1.0
    _, e = np.frexp(float(np.median(pos)))  # median = f * 2**e, f in [0.5, 1)
    unit = float(np.ldexp(1.0, int(e) - 1))
    if not float(np.sum(pos)) / unit > MEDIAN_UNIT_TOTAL:
        return unit
    pos = np.sort(pos)
    cum = np.cumsum(pos)
    heavy = float(pos[min(int(np.searchsorted(cum, 0.5 * cum[-1])), len(pos) - 1)])  # the weighted median
    _, e = np.frexp(heavy)
    return max(unit, float(np.ldexp(1.0, int(e) - 1)))


def target_scale(design: Design) -> float:
    """The power of two nearest the ratio of the targets to the totals the initial weights reach: the median, over
    the targets whose initial total ``a_j = sum_i d_i x_ij`` is nonzero and of the same sign as their total ``t_j``,
    of ``t_j / a_j``, rounded to ``2**round(log2(ratio))``; 1.0 where no target has such a total (only means, or
    none reached). Weights already at the targets' scale (a ratio between about 0.71 and 1.41) give 1.0, and a
    power of two scales the weights exactly. Only where the count targets reach every unit of positive weight (the
    targets then set the population's scale): 1.0 otherwise, as the weights of units no count target reaches are
    the caller's to keep (a count of 2,000 black persons among 90,000 would have scaled the others by 1/4).

    The soft :class:`~microplex.calibration.Calibrator` and the :class:`~microplex.calibration.SparseCalibrator`
    solve from ``d`` times this factor: their objectives price the distance from the initial weights, so weights of
    1 against targets for a population of 3.3e8 left every soft target unmet, and the linear programs saw totals
    beyond HiGHS's limits. The hard ``Calibrator`` does so for a factor above
    :data:`~microplex.calibration.calibrator.HARD_SCALE` or below ``1 /``
    :data:`~microplex.calibration.calibrator.HARD_SCALE_ABOVE` (weights in other units): its checks took their
    sizes from weights 1e9 times the targets' and refused the solution. Its mean targets are solved in relative
    units counted at this scale whatever the weights it starts from.

    Examples
    --------
    >>> df = pd.DataFrame({"w": [1.0, 1.0, 1.0, 1.0], "g": ["a", "a", "b", "b"]})
    >>> target_scale(build_design(df, Targets([Target(4000.0)]), "w", None)), target_scale(
    ...     build_design(df, Targets([Target(5.0)]), "w", None))
    (1024.0, 1.0)
    >>> target_scale(build_design(df, Targets([Target(4000.0, filters={"g": "a"})]), "w", None))  # b not reached
    1.0
    """
    counts = [j for j, t in enumerate(design.targets) if t.aggregate == "count"]
    if not counts:
        return 1.0
    reached = np.asarray(abs(design.x[:, counts]).sum(axis=1)).ravel() > 0
    if not reached[np.asarray(design.d) > 0].all():
        return 1.0
    ratio = target_ratio(design)
    if not math.isfinite(ratio):
        return 1.0
    factor = float(np.ldexp(1.0, int(np.round(np.log2(ratio)))))
    return factor if math.isfinite(factor) and factor > 0 else 1.0


def target_ratio(design: Design) -> float:
    """The median, over the targets whose initial total ``a_j = sum_i d_i x_ij`` is nonzero and of the same sign as
    their total ``t_j``, of ``t_j / a_j`` (NaN where there is no such target): how far the targets lie from what the
    initial weights reach (:func:`target_scale`)."""
    initial = np.asarray(design.x.T @ design.d, dtype=np.float64).ravel()
    totals = np.asarray(design.totals, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = totals / initial
    ratio = ratio[(initial != 0) & np.isfinite(ratio) & (ratio > 0)]
    return float(np.median(ratio)) if ratio.size else math.nan


def in_weight_units(design: Design, unit: float | None = None) -> Design:
    """``design`` with its initial weights and totals in ``unit`` (default :func:`weight_unit`): the same problem,
    whose solution ``w`` is ``w * unit`` in the original units (the design itself when the unit is 1): the count
    and sum targets' values too (copies; their errors relative, as before). Mean targets (totals 0, values of the
    variable) and the matrices are unchanged; the cached transpose is shared."""
    unit = weight_unit(design.d) if unit is None else float(unit)
    if unit == 1.0:
        return design
    scaled = []
    for t in design.targets:
        if t.aggregate != "mean":
            t = copy.copy(t)  # a validated target: only its value changes (exactly, by a power of two)
            object.__setattr__(t, "value", t.value / unit)
        scaled.append(t)
    out = dataclasses.replace(design, d=design.d / unit, totals=design.totals / unit, targets=Targets(scaled),
                              unit=design.unit * unit)
    if "xt" in design.__dict__:  # built once (cached_property): the matrices are the same
        out.__dict__["xt"] = design.__dict__["xt"]
    return out


def natural_sizes(design: Design, d: np.ndarray) -> np.ndarray:
    """Per target, what its records' values add up to in size at weights ``d``: ``sum_i d_i |x_ij|`` (a count's
    weighted count, a sum's weighted sum of ``|y|``; for a mean, whose column holds ``y - value``, of ``|y|``).

    Examples
    --------
    >>> df = pd.DataFrame({"y": [1.0, -3.0], "w": [2.0, 1.0]})
    >>> dz = build_design(df, Targets([Target(3.0), Target(0.0, "sum", "y"), Target(-0.5, "mean", "y")]), "w", None)
    >>> natural_sizes(dz, dz.d).tolist()
    [3.0, 5.0, 5.0]
    """
    d = np.asarray(d, dtype=np.float64)
    x = sp.csr_matrix(design.x)
    is_mean = np.array([t.aggregate == "mean" for t in design.targets], dtype=bool)
    if is_mean.any():  # a mean's column holds y - value: its records' y back
        value = np.array([t.value if m else 0.0 for t, m in zip(design.targets, is_mean)], dtype=np.float64)
        x = sp.csr_matrix(x + design.mean_count @ sp.diags(value))
    rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
    return np.bincount(x.indices, weights=np.abs(x.data) * d[rows], minlength=x.shape[1])


def value_sizes(design: Design, d: np.ndarray) -> np.ndarray:
    """Per target, its :func:`natural_sizes` at weights ``d`` in the target's own units: a count's or a sum's as it
    is, a mean's per unit of its records' weighted count at ``d`` (the mean of ``|y|``; the count taken as 1 where
    its records carry no weight). What a miss of its achieved value is rounding of
    (:func:`~microplex._stats.rounding_scale`).

    Examples
    --------
    >>> df = pd.DataFrame({"y": [1.0, -3.0], "w": [2.0, 1.0]})
    >>> dz = build_design(df, Targets([Target(3.0), Target(0.0, "sum", "y"), Target(-0.5, "mean", "y")]), "w", None)
    >>> value_sizes(dz, dz.d).tolist()
    [3.0, 5.0, 1.6666666666666667]
    """
    d = np.asarray(d, dtype=np.float64)
    natural = natural_sizes(design, d)
    is_mean = np.array([t.aggregate == "mean" for t in design.targets], dtype=bool)
    if not is_mean.any():
        return natural
    count = np.asarray(design.mean_count.T @ d, dtype=np.float64).ravel()
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.where(is_mean, natural / np.where(count > 0, count, 1.0), natural)


def miss_units(design: Design, d: np.ndarray) -> np.ndarray:
    """Per target, what a miss of its design column is divided by to be a relative miss: the unit-free
    :func:`~microplex._stats.miss_scale` of its total against its natural size at weights ``d``
    (``sum_i d_i |x_ij|``); for a mean (column ``y - value``, total 0), the count behind it at ``d`` times the
    miss scale of its value against the mean of ``|y|`` (the count taken as 1 where its records carry no weight).

    Soft penalties and the means' solving units are built of it, so that values or weights in another unit (times
    2**k) weigh every miss alike. (The infeasibility diagnosis, a linear program, keeps ``1 + |t|`` in units of the
    typical weight: dividing its rows by the size of a total far below its values' left entries below HiGHS's
    smallest matrix value, and a conflict was called feasible.)

    Examples
    --------
    >>> df = pd.DataFrame({"y": [1.0, 3.0], "w": [2.0, 2.0]})
    >>> dz = build_design(df, Targets([Target(10.0), Target(0.0, "sum", "y"), Target(2.5, "mean", "y")]), "w", None)
    >>> miss_units(dz, dz.d).tolist()
    [10.0, 0.008, 10.0]
    """
    d = np.asarray(d, dtype=np.float64)
    sizes = value_sizes(design, d)  # a count's or a sum's natural size; a mean's per unit of its count
    is_mean = np.array([t.aggregate == "mean" for t in design.targets], dtype=bool)
    units = miss_scale(design.totals, sizes)  # the means' rows are replaced below
    if is_mean.any():
        count = np.asarray(design.mean_count.T @ d, dtype=np.float64).ravel()
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            size = miss_scale([t.value for t in design.targets], sizes)
            units = np.where(is_mean, np.where(count > 0, count, 1.0) * size, units)
    return units


def target_order(targets: Targets) -> np.ndarray:
    """Positions of ``targets`` sorted by what they are (name, aggregate, variable, entity, value, filters, tolerance,
    importance): the same targets given in any order come out in one order, so that a solve whose outcome depends
    on the order of its rows or columns (a linear program's vertex among equal costs, a sample drawn along the
    targets' cells) gives one answer to one set of targets. Targets alike in every field keep their order."""
    keys = [(t.name, t.aggregate, str(t.variable), t.entity, float(t.value), format_filter(t.filters),
             -1.0 if t.tolerance is None else float(t.tolerance), float(t.importance)) for t in targets]
    return np.array(sorted(range(len(keys)), key=lambda k: keys[k]), dtype=np.int64)


def reordered(
    design: Design, *, records: np.ndarray | None = None, targets: np.ndarray | None = None
) -> tuple[Design, np.ndarray]:
    """``design`` for its records and targets in another order, and the units' new order.

    ``records[i]`` is the position, among ``design``'s records, of record ``i`` of the new order; ``targets[j]``
    that of target ``j`` (default: as they are). The units follow their first record, as :func:`build_design`
    orders them (for records, ``records`` itself), so the result is :func:`build_design` of the reordered frame
    and targets, without building it again. Returns the design and ``units``: new unit ``j`` is ``design``'s
    unit ``units[j]`` (a solution ``w`` reads ``w[units]`` in the new order).
    """
    out = design
    if targets is not None:
        targets = np.asarray(targets, dtype=np.int64)
        out = dataclasses.replace(out, x=out.x[:, targets].tocsr(), totals=out.totals[targets],
                                  targets=Targets([out.targets[int(k)] for k in targets]),
                                  mean_count=out.mean_count[:, targets].tocsr())
    if records is None:
        return out, np.arange(len(design.d), dtype=np.int64)
    records = np.asarray(records, dtype=np.int64)
    units = pd.unique(out.record_unit[records])
    where = np.empty(len(units), dtype=np.int64)
    where[units] = np.arange(len(units))
    out = dataclasses.replace(out, x=out.x[units], d=out.d[units], units=out.units[units],
                              record_unit=where[out.record_unit[records]], mean_count=out.mean_count[units])
    return out, units


def _csr_from_parts(
    rows_l: list[np.ndarray], cols_l: list[np.ndarray], data_l: list[np.ndarray | None], n: int, m: int
) -> sp.csr_matrix:
    """Assembles CSR directly from parts whose row arrays hold each row at most once (no sort, no COO)."""
    if all(len(r) == n for r in rows_l) and rows_l:  # every part covers every row: k entries per row
        k = len(rows_l)
        nnz = n * k
        idx_dtype = np.int32 if max(nnz, m) < 2**31 - 1 else np.int64
        indptr = np.arange(0, nnz + 1, k, dtype=idx_dtype)
        indices = np.empty((n, k), dtype=idx_dtype)
        data = np.empty((n, k))
        for a, (c, v) in enumerate(zip(cols_l, data_l)):  # r == arange(n): sorted and complete
            indices[:, a] = c
            data[:, a] = 1.0 if v is None else v
        return sp.csr_matrix((data.ravel(), indices.ravel(), indptr), shape=(n, m))
    counts = np.zeros(n, dtype=np.int64)
    for r in rows_l:
        counts += np.bincount(r, minlength=n)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    nnz = int(indptr[-1])
    idx_dtype = np.int32 if max(nnz, m) < 2**31 - 1 else np.int64
    if idx_dtype == np.int32:
        indptr = indptr.astype(np.int32)
    indices = np.empty(nnz, dtype=idx_dtype)
    data = np.empty(nnz)
    fill = indptr[:-1].copy()
    for r, c, v in zip(rows_l, cols_l, data_l):
        pos = fill[r]
        indices[pos] = c
        data[pos] = 1.0 if v is None else v
        fill[r] += 1
    return sp.csr_matrix((data, indices, indptr), shape=(n, m))


class _Columns:
    """Caches factorized record columns and checks them once."""

    def __init__(self, records: pd.DataFrame) -> None:
        self.records = records
        self._codes: dict[str, tuple[np.ndarray, pd.Index]] = {}
        self._held: dict[str, np.ndarray] = {}
        self._numbers_checked: set[str] = set()

    def _check_numbers(self, col: str, values: np.ndarray, target: Target) -> None:
        """Refuses, once per column, numbers that are zeros misread by pandas' SAS transport reader
        (:func:`microplex._files.ibm_zeros`): a filter ``income == 0`` would miss them, a sum would not."""
        if col in self._numbers_checked:
            return
        self._numbers_checked.add(col)
        found = ibm_zeros(values, col)
        if found:
            raise DataValidationError(f"Column {col!r} (used by target {target.name!r}) {found}")

    def column(self, col: str, target: Target) -> pd.Series:
        if col not in self.records.columns:
            raise DataValidationError(
                f"Target {target.name!r} (filter {format_filter(target.filters)!r}) uses column {col!r}, which is "
                f"not in the records. Expected one of {list(self.records.columns)[:50]}."
            )
        s = self.records[col]
        n_nan = int(s.isna().sum())
        if n_nan:
            raise DataValidationError(
                f"Column {col!r} (used by target {target.name!r}) has {n_nan} missing values; "
                "expected none in a targeted column: no filter tells whether they match. Give them a value of their "
                "own first (e.g. 0 hours for those not working; dropping the records would drop them from the "
                "population)."
            )
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s) \
                and not pd.api.types.is_complex_dtype(s):
            self._check_numbers(col, s.to_numpy(dtype=np.float64), target)
        return s

    def codes(self, col: str, target: Target) -> tuple[np.ndarray, pd.Index]:
        """Integer codes of a column and the values they stand for (:func:`value_codes`)."""
        if col not in self._codes:
            self._codes[col] = value_codes(self.column(col, target))
        return self._codes[col]

    def held(self, col: str, target: Target) -> np.ndarray:
        """Which of the values of :meth:`codes` some record holds (a category's unused levels, or the gaps of an
        integer range, are values no record holds)."""
        if col not in self._held:
            codes, uniques = self.codes(col, target)
            self._held[col] = np.bincount(codes[codes >= 0], minlength=len(uniques)) > 0
        return self._held[col]

    def variable(self, col: str, target: Target) -> np.ndarray:
        """A summed variable as float; missing values are checked on the records a target covers."""
        if col not in self.records.columns:
            self.column(col, target)  # raises, naming the column
        s = self.records[col]
        if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            if not pd.api.types.is_bool_dtype(s):
                raise DataValidationError(
                    f"Target {target.name!r}: variable {col!r} must be numeric. Got dtype {s.dtype} instead."
                )
        if pd.api.types.is_complex_dtype(s):
            raise DataValidationError(f"Target {target.name!r}: variable {col!r} must be real. Got dtype {s.dtype} instead.")
        values = s.to_numpy(dtype=np.float64, na_value=np.nan)
        self._check_numbers(col, values, target)
        return values


def value_codes(s: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer codes of a column (``-1`` for a missing value) and the values they stand for, to look filter values
    up in with :func:`lookup_values` (no hashing for small int ranges). Shared by the in-memory design and the margin
    codes of :func:`microplex.scale.rake_dataset`, so that both match a filter value to the same records."""
    n = len(s)
    if isinstance(s.dtype, pd.CategoricalDtype):
        codes, uniques = s.cat.codes.to_numpy().astype(np.int64), pd.Index(s.cat.categories)
    elif pd.api.types.is_integer_dtype(s) and not pd.api.types.is_bool_dtype(s) and n and not s.hasnans:
        v = s.to_numpy()
        lo, hi = int(v.min()), int(v.max())
        if hi - lo < max(2 * n, 1024) and hi <= np.iinfo(np.int64).max:  # uint64 ids beyond: factorized
            codes, uniques = v.astype(np.int64) - lo, pd.RangeIndex(lo, hi + 1)
        else:
            codes, uniques = pd.factorize(s, sort=False)
    else:
        codes, uniques = pd.factorize(s, sort=False)
    return np.asarray(codes, dtype=np.int64), pd.Index(uniques)


def lookup_values(uniques: pd.Index, values: list[Any], where: str | Callable[[int], str] | None = None) -> np.ndarray:
    """Positions of ``values`` in ``uniques`` (-1 where absent), tolerant of numeric/str mismatches.

    A :class:`~microplex.calibration.filters.NumberedCode` (``'015'`` that a filter combined with the number 15) is
    found in a text column where its text and its number find the same value; a text column where they find two
    (``"015"`` and ``"15"``) raises :class:`DataValidationError`, whose message starts with ``where`` (the value's
    index -> text, or one text for all) naming the column and target: no record meets both clauses.
    """
    idx = uniques.get_indexer(pd.Index(values, dtype=object))
    if (idx < 0).any() and pd.api.types.is_numeric_dtype(uniques.dtype):
        conv = []
        for v in values:
            try:
                conv.append(float(v))
            except (TypeError, ValueError, OverflowError):  # 10**400 is no value of a numeric column
                conv.append(math.nan)
        # as the column holds them: a float32 column's 24.1 is 24.100000381469727 (as pandas compares it with 24.1)
        idx2 = uniques.get_indexer(pd.Index(stored_at(np.asarray(conv, dtype=float), dtype_precision(uniques.dtype))))
        idx = np.where(idx < 0, idx2, idx)
    elif (idx < 0).any() and (uniques.dtype == object or pd.api.types.is_string_dtype(uniques.dtype)):
        # a number asked of a text column: the text of an integer (2 -> "2"), as "2" is found in an integer column
        conv = [str(int(v)) if is_integral_number(v) else None for v in values]
        idx2 = uniques.get_indexer(pd.Index(conv, dtype=object))
        idx = np.where(idx < 0, idx2, idx)
        if (idx < 0).any():  # 13 asked of a column of codes written with leading zeros ("013", read as text)
            idx = np.where(idx < 0, _padded_positions(uniques, values), idx)
    if not pd.api.types.is_numeric_dtype(uniques.dtype) and any(isinstance(v, NumberedCode) for v in values):
        _check_numbered_codes(uniques, values, idx, where)
    hit = idx >= 0
    if hit.any():
        # a boolean is no number (Python has True == 1): as _stats.category_codes compares categories
        val_bool = bool_flags(pd.Series(values, dtype=object))
        uniq_bool = bool_flags(uniques[np.where(hit, idx, 0)])
        idx = np.where(hit & (val_bool != uniq_bool), -1, idx)
    return idx


def _check_numbered_codes(uniques: pd.Index, values: list[Any], idx: np.ndarray,
                          where: str | Callable[[int], str] | None) -> None:
    """Refuses each :class:`~microplex.calibration.filters.NumberedCode` of ``values`` (at ``idx`` in the text
    ``uniques``) whose number finds another value than its text (:func:`lookup_values`)."""
    held = [k for k, v in enumerate(values) if isinstance(v, NumberedCode) and idx[k] >= 0]
    # a code no record holds selects no record, whatever its number finds; the numbers looked up in one call (a
    # lookup in a column of pandas' str dtype hashes the whole column again)
    numbers = lookup_values(uniques, [int(values[k]) for k in held]) if held else []
    for k, at in zip(held, numbers, strict=True):
        v, n, at = values[k], int(values[k]), int(at)
        if at == int(idx[k]):
            continue
        text = str(v)
        found = (f"the number {n} is {to_python(uniques[at])!r} there" if at >= 0 else
                 f"the number {n} finds no one value there (several codes of {n} are written with zeros)")
        other = f" both {text!r} and {to_python(uniques[at])!r}" if at >= 0 else f" {text!r}"
        head = where(k) if callable(where) else where or "A filter"
        raise DataValidationError(
            f"{head}: the filter combines the code {text!r} with the number {n} on this column (as == {text!r} with "
            f"in {{{n}}}, or with a range holding {n}), and the column holds{other}: {found}, and the code is "
            f"{text!r}, so no record meets both clauses. Write the value as the records hold it in every clause on "
            "this column.")


def _padded_positions(uniques: pd.Index, values: list[Any]) -> np.ndarray:
    """Positions in ``uniques`` (text) of the one code written with leading zeros (``"013"``,
    :data:`microplex._files.LEADING_ZERO`) of each integral number of ``values`` (13); -1 where there is none, or
    several (``"013"`` and ``"0013"``: which one is meant is not known). The padded forms (up to
    :data:`MAX_CODE_WIDTH` characters) of :data:`PADDED_BATCH` numbers at a time are looked up in one call: a lookup
    in a column of pandas' str dtype hashes the whole column again (one call per number took 94 s for 20,000 numbers
    asked of 4 files of 20,000 codes), and a tract column holds 10^5 codes."""
    out = np.full(len(values), -1, dtype=np.intp)
    index = pd.Index(uniques, dtype=object)  # hashed once for all batches, as in :func:`lookup_forms`
    for batch in _batches([k for k, v in enumerate(values) if is_integral_number(v)]):
        owner, forms = [], []
        for k in batch:
            padded = _padded_forms(int(values[k]))
            owner += [k] * len(padded)
            forms += padded
        if not forms:
            continue
        hits = index.get_indexer(pd.Index(forms, dtype=object))
        owner, hits = np.asarray(owner, dtype=np.intp)[hits >= 0], hits[hits >= 0]
        one = np.bincount(owner, minlength=len(values))[owner] == 1  # a number with several codes finds none
        out[owner[one]] = hits[one]
    return out


#: Numbers whose padded forms :func:`_padded_positions` and :func:`lookup_forms` look up in one call (about 30 forms
#: each): the forms of 200,000 numbers at once took about 490 MiB.
PADDED_BATCH = 4096


def _batches(items: list[Any]) -> Iterator[list[Any]]:
    """``items`` in consecutive slices of :data:`PADDED_BATCH` (read at each call, so a test may lower it)."""
    for start in range(0, len(items), PADDED_BATCH):
        yield items[start:start + PADDED_BATCH]


#: Longest code written with leading zeros that a number finds (:func:`_padded_positions`): a census block GEOID has
#: 15 digits.
MAX_CODE_WIDTH = 32


def _padded_forms(n: int) -> list[str]:
    """The texts of the integer ``n`` written with leading zeros, up to :data:`MAX_CODE_WIDTH` characters (13:
    ``"013"``, ``"0013"``, ...)."""
    digits, sign = str(abs(n)), "-" if n < 0 else ""
    return [sign + digits.zfill(w) for w in range(len(digits) + 1, MAX_CODE_WIDTH + 1)]


def lookup_forms(uniques: pd.Index, values: list[Any]) -> list[Any]:
    """The values of the text column values ``uniques`` that the numbers and the
    :class:`~microplex.calibration.filters.NumberedCode` values of ``values`` may find in :func:`lookup_values`: a
    number (15) itself, its text (``"15"``) and its codes written with leading zeros (``"015"``, ``"0015"`` ...); a
    numbered code (``'015'``) its text and those of its number. ``[]`` for a numeric column, where the number is the
    value. What these values find on a column split into parts (the files of a dataset) is :func:`lookup_values` on the
    union of each part's forms: it sees every value that the lookup on the whole column sees (``"15"`` in one file
    and ``"015"`` in another: 15 finds ``"15"``, as on the whole column)."""
    if pd.api.types.is_numeric_dtype(uniques.dtype):
        return []
    found: set[int] = set()
    # the forms of :data:`PADDED_BATCH` values at a time: about 33 texts a number, all at once held 490 MiB for
    # 200,000 numbers; looked up in an index of objects, which hashes the column once for all batches (one of pandas'
    # str dtype hashes it again at each call: 0.14 s a call for 200,000 codes)
    index = pd.Index(uniques, dtype=object)
    for batch in _batches([v for v in values if isinstance(v, NumberedCode) or is_integral_number(v)]):
        asked: list[Any] = []
        for v in batch:
            if isinstance(v, NumberedCode):
                asked += [str(v), int(v), str(int(v)), *_padded_forms(int(v))]
            else:
                asked += [v, str(int(v)), *_padded_forms(int(v))]
        hits = index.get_indexer(pd.Index(asked, dtype=object))
        found.update(hits[hits >= 0].tolist())
    return [to_python(uniques[k]) for k in sorted(found)]


def is_integral_number(v: Any) -> bool:
    """Whether ``v`` is a (non-bool) real number with an integer value."""
    return (
        isinstance(v, (int, float, np.integer, np.floating))
        and not isinstance(v, (bool, np.bool_))
        and math.isfinite(float(v))
        and float(v).is_integer()
    )


def _exact_bound(b: Any) -> Any:
    """A range bound to compare with an integer column exactly: an integral bound as a Python int (numpy compares
    int64/uint64 with Python ints exactly, with floats after rounding the column to float64)."""
    if isinstance(b, numbers.Integral) and not isinstance(b, bool):
        return int(b)
    if isinstance(b, numbers.Real) and math.isfinite(float(b)) and float(b).is_integer():
        return int(b)
    return b


def _holds_intervals(s: pd.Series) -> bool:
    """Whether ``s`` holds intervals as its values (``pd.cut`` bands): an Interval filter on it is an equality."""
    dtype = s.dtype.categories.dtype if isinstance(s.dtype, pd.CategoricalDtype) else s.dtype
    return isinstance(dtype, pd.IntervalDtype) or (dtype == object and len(s) > 0 and isinstance(s.iloc[0], pd.Interval))


def _holds_text(s: pd.Series) -> bool:
    """Whether ``s`` holds text (string values, or categories of them), not numbers or intervals."""
    dtype = s.dtype.categories.dtype if isinstance(s.dtype, pd.CategoricalDtype) else s.dtype
    if dtype == object:
        values = s.dropna()
        return len(values) > 0 and isinstance(values.iloc[0], str)
    return pd.api.types.is_string_dtype(dtype)


def range_mask(s: pd.Series, cond: pd.Interval, what: str) -> np.ndarray:
    """Which values of the numeric column ``s`` lie in ``cond``; integer columns are compared exactly (as floats,
    values beyond 2**53 matched their neighbours), float32 columns with the bounds as they hold them (``<= 16.6``
    keeps their 16.600000381469727, as pandas compares them). ``what`` starts the error for a column that is not
    numeric."""
    if not pd.api.types.is_numeric_dtype(s):
        raise DataValidationError(f"{what} needs a numeric column. Got dtype {s.dtype} instead.")
    exact = s.dtype.kind in "iu"
    v = s.to_numpy() if exact else s.to_numpy(dtype=np.float64)
    if exact:
        left, right = _exact_bound(cond.left), _exact_bound(cond.right)
    else:
        left, right = (float(b) for b in stored_at(np.array([cond.left, cond.right], dtype=float),
                                                   dtype_precision(s.dtype)))
    lo_ok = v >= left if cond.closed_left else v > left
    hi_ok = v <= right if cond.closed_right else v < right
    return np.asarray(lo_ok & hi_ok, dtype=bool)


def _mask(cols: _Columns, target: Target, absent: dict[str, list[Any]] | None = None) -> np.ndarray:
    """Boolean mask of records matching ``target.filters`` (one target at a time); ``absent``, when given, receives
    per column the text members of a set filter that no record holds (:func:`absent_members_error`)."""
    n = len(cols.records)
    mask = np.ones(n, dtype=bool)
    for col, cond in target.filters.items():
        column = cols.column(col, target) if isinstance(cond, pd.Interval) else None
        if column is not None and _holds_text(column):
            # text labels written as ranges ("(17,39]", as R's cut() and pandas' cut().astype(str) write them)
            # are categories: the range filter matches the labels of the same range, whatever their spacing
            codes, uniques = cols.codes(col, target)
            ranges = [range_label(u) for u in uniques]
            if not any(r is not None for r in ranges):
                shown = ", ".join(repr(u) for u in list(uniques[:3]))
                raise DataValidationError(
                    f"Target {target.name!r}: range filter on {col!r} needs a numeric column, or text labels written "
                    f"as ranges such as '(17, 39]'. Got text values such as {shown} instead.")
            hit = np.array([r is not None and r == cond for r in ranges] + [False], dtype=bool)
            mask &= hit[codes]
        elif column is not None and not _holds_intervals(column):
            mask &= range_mask(column, cond, f"Target {target.name!r}: range filter on {col!r}")
        else:
            codes, uniques = cols.codes(col, target)
            wanted = list(cond) if isinstance(cond, frozenset) else [cond]
            pos = lookup_values(uniques, wanted, f"Target {target.name!r}, column {col!r}")
            if absent is not None and isinstance(cond, frozenset):
                lost = _absent_members(cols, target, col, wanted, pos)
                if lost:
                    absent[col] = lost
            pos = pos[pos >= 0]
            hit = np.zeros(len(uniques) + 1, dtype=bool)
            hit[pos] = True
            mask &= hit[codes]
    return mask


def _is_number(v: Any) -> bool:
    """Whether ``v`` is a real number (not a bool): a member of a band of codes."""
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def _held_numbers(cols: _Columns, target: Target, col: str) -> np.ndarray:
    """The distinct values of ``col`` some record holds, as sorted floats (a text column's cells that read as
    numbers: codes ``"013"`` as 13); none for a column of other values."""
    _, uniques = cols.codes(col, target)
    held = uniques[cols.held(col, target)]
    if pd.api.types.is_bool_dtype(held.dtype):
        return np.zeros(0)
    values = pd.to_numeric(pd.Series(np.asarray(held, dtype=object)), errors="coerce").to_numpy(dtype=float)
    return np.unique(values[np.isfinite(values)])


def _absent_members(cols: _Columns, target: Target, col: str, wanted: list[Any], pos: np.ndarray) -> list[Any]:
    """The members ``wanted`` of ``target``'s set filter on ``col`` (at ``pos`` in its codes, -1 where absent)
    that no record holds and the set cannot mean: every text label (an equality on it is refused), and each number
    that falls in no band of the set's held numbers. A set of numbers is a band of codes (``educ in {9, 10, 11,
    12}``, the geo demo's targets), some of which a population may lack: a number no record holds is accepted
    where the values the records hold next to it (the nearest below and above) include one of the set's, so that
    it lies within a band the set's held codes cover (between two of them, or beyond the records' extreme value
    next to one); a number with only values the set leaves out beside it (``{12, 31}`` on codes up to 24: a typo
    for 13) is refused (:func:`absent_members_error`)."""
    held = cols.held(col, target)
    missing = [at < 0 or not held[at] for at in pos]
    lost = [v for v, gone in zip(wanted, missing, strict=True) if gone and isinstance(v, str)]
    numbers_lost = [v for v, gone in zip(wanted, missing, strict=True) if gone and _is_number(v)]
    if numbers_lost:
        _, uniques = cols.codes(col, target)
        values = _held_numbers(cols, target, col)
        set_held = pd.to_numeric(pd.Series([uniques[at] for at in pos if at >= 0 and held[at]], dtype=object),
                                 errors="coerce").to_numpy(dtype=float)
        kept = set(set_held[np.isfinite(set_held)].tolist())
        for v in numbers_lost:
            below, above = _neighbours(values, float(v))
            if not ({b for b in (below, above) if b is not None} & kept):
                lost.append(v)
    return lost


def _neighbours(values: np.ndarray, v: float) -> tuple[float | None, float | None]:
    """The nearest of the sorted ``values`` below and above ``v`` (None where there is none)."""
    k = int(np.searchsorted(values, v, side="left"))
    above = k + 1 if k < len(values) and values[k] == v else k
    return (float(values[k - 1]) if k > 0 else None, float(values[above]) if above < len(values) else None)


def unicode_hint(cols: _Columns, target: Target, col: str, labels: list[Any]) -> str:
    """Sentences naming each text label of ``labels`` (a filter's on ``col``, which no record holds) whose Unicode
    NFC form is that of a value the records hold, with that value (in ``ascii``: the two print alike), "" for
    none: "Zürich" written in NFC against the records' NFD (as files exported on macOS write it). The refusals of
    an equality and of a set's members share it."""
    _, uniques = cols.codes(col, target)
    forms: dict[str, str] = {}
    for u, h in zip(uniques, cols.held(col, target), strict=True):
        if h and isinstance(u, str):
            forms.setdefault(unicodedata.normalize("NFC", u), u)
    hints = []
    for v in labels:
        same = forms.get(unicodedata.normalize("NFC", v)) if isinstance(v, str) else None
        if same is not None and same != v:
            hints.append(
                f" {v!r} is written in another Unicode form in the records (they hold {ascii(same)}, the "
                f"filter {ascii(v)}): normalize both, e.g. df[{col!r}] = df[{col!r}].str.normalize('NFC') "
                "and the filter in NFC.")
    return "".join(hints)


def absent_members_error(cols: _Columns, target: Target, absent: dict[str, list[Any]]) -> DataValidationError:
    """The refusal of ``target``, whose set filters list the members ``absent`` (per column) that no record holds
    (:func:`_absent_members`): the set's other members took its whole total (a typo, or "Zürich" written in another
    Unicode form than the records', NFC against NFD, put it all on "Bern"; ``{12, 31}`` all on 12), as an equality
    on such a value is refused. A text member is named with the records' form of it (:func:`unicode_hint`), a
    number with the values the records hold next to it."""
    parts, hints = [], []
    for col, members in absent.items():
        members = sorted(members, key=lambda v: (not _is_number(v), v if _is_number(v) else str(v)))
        parts.append(f"its filter on {col!r} lists {[to_python(v) for v in members]}")
        hints.append(unicode_hint(cols, target, col, members))
        values = _held_numbers(cols, target, col)
        for v in members:
            if _is_number(v) and len(values):
                near = ", ".join(repr(to_python(int(b) if b.is_integer() else b))
                                 for b in _neighbours(values, float(v)) if b is not None)
                hints.append(f" The nearest values the records hold to {to_python(v)!r} are {near}, which the set "
                             "leaves out.")
    numeric = any(_is_number(v) for members in absent.values() for v in members)
    return DataValidationError(
        f"Target {target.name!r} has value {target.value:g} but {' and '.join(parts)}, which no record has; expected "
        "every label of a set to be held by some record (the others would take the whole total: a category absent "
        "from the records cannot be reached)"
        + (", and each number of a set to be held or to lie in a band of codes with held numbers of the set (no "
           "value the records hold between them that the set leaves out)" if numeric else "")
        + ". Correct the label, or drop it from the set where the records lack it." + "".join(hints)
    )


def _cell_match(cols: _Columns, group: list[tuple[int, Target]], keys: tuple[str, ...]) -> np.ndarray:
    """Per record, the position (in ``group``) of the equality target it falls in, or -1."""
    rec_code: np.ndarray | None = None
    tgt_code: np.ndarray | None = None
    space = 0  # size of the current code space
    for col in keys:
        codes, uniques = cols.codes(col, group[0][1])
        idx = lookup_values(uniques, [t.filters[col] for _, t in group],
                            lambda k, col=col: f"Target {group[k][1].name!r}, column {col!r}")
        k = len(uniques)
        if rec_code is None:
            rec_code, tgt_code, space = codes, idx, k
            continue
        raw_r = rec_code * k + codes
        raw_t = np.where((tgt_code >= 0) & (idx >= 0), tgt_code * k + idx, -1)
        if space * k <= max(4 * len(codes), 1 << 22):
            rec_code, tgt_code, space = raw_r, raw_t, space * k  # small crossed space: no re-coding
            continue
        rec_code, comb = pd.factorize(raw_r, sort=False)
        tgt_code = np.where(raw_t >= 0, pd.Index(comb).get_indexer(raw_t), -1)
        rec_code, space = rec_code.astype(np.int64, copy=False), len(comb)
    assert rec_code is not None and tgt_code is not None
    table = np.full(space + 1, -1, dtype=np.int64)
    ok = tgt_code >= 0
    table[tgt_code[ok]] = np.nonzero(ok)[0]
    return table[rec_code]


def unit_design(records: pd.DataFrame, targets: Targets) -> Design:
    """The design of ``targets`` over ``records`` on unit weights, to total given weights
    (:func:`~microplex.calibration.feasibility.achieved_values`): weights of any sign, 0 included, which
    :func:`build_design`'s check of initial weights (finite, > 0) refuses. Without the calibrators' reach check: a
    count or sum target no record matches gets an empty column (its total is 0), what an evaluation measures. The
    records are read as given: no weight column is added (one named in a message, or written over a column of theirs)."""
    return build_design(records, targets, None, check_reach=False)


def build_design(
    records: pd.DataFrame,
    targets: Targets,
    weight_col: str | None,
    household_col: str | None = None,
    *,
    check_reach: bool = True,
) -> Design:
    """Validates ``records`` and ``targets`` and builds the sparse design (see :class:`Design`).

    Parameters
    ----------
    records : pandas.DataFrame
        The records, with the columns the targets use.
    targets : Targets
        The targets, one design column each.
    weight_col : str or None
        The column of initial weights (finite, > 0); ``None``: every record has weight 1 (no ``household_col``).
    household_col : str, default=None
        The household id column: the weighting units are households (one weight each).
    check_reach : bool, default=True
        Refuse a count or sum target with a non-zero value that no record matches (no weights can reach it: the
        calibrators' check). ``False`` gives it an empty column, so that its achieved total is 0: what an
        evaluation of given weights measures. A target whose conditions exclude each other is refused either way.

    Raises
    ------
    DataValidationError
        Naming the column or target: unknown columns, missing values in targeted columns, non-positive
        or missing initial weights, household ids of two types that print alike (``1`` and ``'1'``: two
        households), household weights that vary within a household, targets whose conditions
        exclude each other, targets with a non-zero value that no record can reach (with ``check_reach``),
        household targets without ``household_col``, and a ``household_col`` that is the weight column.
    """
    if weight_col is None:
        if household_col is not None:
            raise DataValidationError(f"{shown('household_col')} needs a {shown('weight_col')} (the households' "
                                      f"weights); got {shown('weight_col')}=None.")
        w = np.ones(len(records))
    elif weight_col not in records.columns:
        raise DataValidationError(
            f"{shown('weight_col')} {weight_col!r} is not a column of the records. Got columns {list(records.columns)}."
        )
    else:
        check_weight_dtype(records[weight_col], f"Weight column {weight_col!r}")
        w = records[weight_col].to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(w) | (w <= 0)
    if bad.any():
        first = records.index[np.argmax(bad)]
        raise DataValidationError(
            f"Weight column {weight_col!r} must hold finite weights > 0; {int(bad.sum())} records do not "
            f"(first: index {to_python(first)!r}, value {to_python(w[np.argmax(bad)])!r})."
        )
    n = len(records)
    if household_col is None:
        record_unit = np.arange(n, dtype=np.int64)
        units = records.index
        d = w.copy()
        first_mask = np.ones(n, dtype=bool)
    else:
        if household_col == weight_col:
            raise DataValidationError(
                f"{shown('household_col')} and {shown('weight_col')} are both {household_col!r}; expected the "
                "household id column and the weight column to be two different columns."
            )
        if household_col not in records.columns:
            raise DataValidationError(
                f"{shown('household_col')} {household_col!r} is not a column of the records. "
                f"Got columns {list(records.columns)}."
            )
        hh = records[household_col]
        if hh.isna().any():
            raise DataValidationError(f"Household id column {household_col!r} has missing values.")
        check_household_ids(hh, household_col, "records")
        record_unit, uniq = pd.factorize(hh, sort=False)
        record_unit = record_unit.astype(np.int64, copy=False)
        units = pd.Index(uniq, name=household_col)
        first = np.full(len(uniq), n, dtype=np.int64)
        np.minimum.at(first, record_unit, np.arange(n))
        d = w[first]
        varies = np.abs(w - d[record_unit]) > 1e-9 * np.abs(d[record_unit])
        if varies.any():
            bad_hh = to_python(hh.iloc[int(np.argmax(varies))])
            raise DataValidationError(
                f"Weight column {weight_col!r} must be constant within each household of {household_col!r}; "
                f"household {bad_hh!r} has several values."
            )
        first_mask = np.zeros(n, dtype=bool)
        first_mask[first] = True

    targets = Targets(targets)
    for t in targets:
        t.validate()
    if household_col is None:
        per_household = [t.name for t in targets if t.entity == "household"]
        if per_household:
            raise DataValidationError(
                f"Targets {per_household[:5]} count households (entity='household'), but no "
                f"{shown('household_col')} was given, so a household cannot be told from a person: pass "
                f"{shown('household_col')} (the household id "
                "column), or, where every record is a household, give these targets entity='person'."
            )
    cols = _Columns(records)
    m = len(targets)
    rows_l: list[np.ndarray] = []
    cols_l: list[np.ndarray] = []
    data_l: list[np.ndarray] = []
    mc_rows: list[np.ndarray] = []
    mc_cols: list[np.ndarray] = []
    matched = np.zeros(m, dtype=np.int64)

    def emit(rec: np.ndarray, jcol: np.ndarray, t: Target, tvalue: np.ndarray | float) -> None:
        """Adds entries for records ``rec`` in target columns ``jcol`` (all like ``t``)."""
        if t.entity == "household" and household_col is not None:
            keep = first_mask[rec]
            rec, jcol = rec[keep], jcol[keep]
            if isinstance(tvalue, np.ndarray):
                tvalue = tvalue[keep]
        matched[:] += np.bincount(jcol, minlength=m)
        vals: np.ndarray | None = None
        if t.aggregate != "count":
            y = cols.variable(t.variable, t)[rec]  # type: ignore[arg-type]
            if np.isnan(y).any():
                raise DataValidationError(
                    f"Target {t.name!r}: variable {t.variable!r} has {int(np.isnan(y).sum())} missing values "
                    "among the records the target covers; expected none (give them a value first, e.g. 0 where "
                    "the variable does not apply, or filter the target to the records that have one)."
                )
            if not np.isfinite(y).all():
                raise DataValidationError(
                    f"Target {t.name!r}: variable {t.variable!r} has {int((~np.isfinite(y)).sum())} infinite values "
                    "among the records the target covers; expected finite values."
                )
            if t.aggregate == "mean":
                mc_rows.append(record_unit[rec])
                mc_cols.append(jcol)
                y = y - tvalue
            vals = y
        rows_l.append(rec)
        cols_l.append(jcol.astype(np.int32, copy=False))
        data_l.append(vals)  # type: ignore[arg-type]

    # group equality-only targets into margins; everything else is matched one by one
    groups: dict[tuple, list[tuple[int, Target]]] = defaultdict(list)
    generic: list[tuple[int, Target]] = []
    for j, t in enumerate(targets):
        if t.filters and all(not isinstance(c, (pd.Interval, frozenset)) for c in t.filters.values()):
            groups[(t.entity, t.aggregate, t.variable, tuple(sorted(t.filters)))].append((j, t))
        else:
            generic.append((j, t))
    for key, group in groups.items():
        seen: set[tuple] = set()
        uniq_group = []
        # cells are told apart by the record values they match, so that 1, 1.0 and "1" on one column are one
        # cell (a duplicate, matched separately) and not two targets sharing one cell code
        found = [
            lookup_values(cols.codes(c, group[0][1])[1], [t.filters[c] for _, t in group],
                          lambda k, c=c: f"Target {group[k][1].name!r}, column {c!r}")
            for c in key[3]
        ]
        for i, (j, t) in enumerate(group):
            at = tuple(int(f[i]) for f in found)
            k = at if min(at) >= 0 else ("absent",) + tuple(repr(t.filters[c]) for c in key[3])
            if k in seen:
                generic.append((j, t))  # duplicate cell: matched separately
            else:
                seen.add(k)
                uniq_group.append((j, t))
        pos = _cell_match(cols, uniq_group, key[3])
        rec = np.flatnonzero(pos >= 0)
        gpos = pos[rec]
        jarr = np.array([j for j, _ in uniq_group], dtype=np.int32)
        varr = np.array([t.value for _, t in uniq_group])
        emit(rec, jarr[gpos], uniq_group[0][1], varr[gpos] if key[1] == "mean" else 0.0)
    for j, t in generic:
        # a set member no record holds, refused as an equality's absent category is (a mean: over no record)
        absent: dict[str, list[Any]] | None = {} if check_reach and (t.value != 0 or t.aggregate == "mean") else None
        rec = np.flatnonzero(_mask(cols, t, absent))
        if absent:
            raise absent_members_error(cols, t, absent)
        emit(rec, np.full(len(rec), j, dtype=np.int64), t, t.value)

    for j, t in enumerate(targets):
        if matched[j] == 0 and t.value != 0 and t.aggregate != "mean":
            contradict = [c for c, cond in t.filters.items() if isinstance(cond, frozenset) and not cond]
            hint = ""
            if not contradict and not check_reach:
                continue  # an empty column: achieved 0
            empty = [
                format_filter({c: cond})
                for c, cond in t.filters.items()
                if not (isinstance(cond, frozenset) and not cond)
                and not _mask(cols, Target(1.0, filters={c: cond}, name=t.name)).any()
            ]
            if contradict:
                why = f"its conditions on {contradict} exclude each other, so it selects no record"
            elif empty:
                why = f"no record has {' and no record has '.join(empty)}"
                hint = "".join(unicode_hint(cols, t, c, [cond]) for c, cond in t.filters.items()
                               if isinstance(cond, str) and c in cols.records.columns)
            elif t.entity == "household" and household_col is not None:
                why = ("no household matches it: a household target reads its filter columns on each household's "
                       "first record (household variables), and records further down a household match it only "
                       "as persons (a person-level target)")
            else:
                why = "no record matches it"
            raise DataValidationError(
                f"Target {t.name!r} has value {t.value:g} but {why}; expected at least one record "
                "(a category absent from the records cannot be reached)." + hint
            )

    n_units = len(d)
    if household_col is None:
        x = _csr_from_parts(rows_l, cols_l, data_l, n_units, m)
    else:
        rows = np.concatenate([record_unit[r] for r in rows_l]) if rows_l else np.zeros(0, dtype=np.int64)
        cidx = np.concatenate(cols_l) if cols_l else np.zeros(0, dtype=np.int32)
        data = np.concatenate([np.ones(len(r)) if v is None else v for r, v in zip(rows_l, data_l)]) if rows_l else np.zeros(0)
        x = sp.csr_matrix(sp.coo_matrix((data, (rows, cidx)), shape=(n_units, m)))
        x.sum_duplicates()
    rows_l.clear(), cols_l.clear(), data_l.clear()  # free the parts before the rest
    x.eliminate_zeros()
    totals = np.array([0.0 if t.aggregate == "mean" else t.value for t in targets])
    if mc_rows:
        r = np.concatenate(mc_rows)
        mean_count = sp.csr_matrix(
            sp.coo_matrix((np.ones(len(r)), (r, np.concatenate(mc_cols))), shape=(n_units, m))
        )
    else:
        mean_count = sp.csr_matrix((n_units, m))
    x = _snap_means(x, mean_count, targets)
    logger.debug("design: %d units x %d targets, nnz %d", n_units, m, x.nnz)
    return Design(x, totals, d, units, record_unit, targets, mean_count)


def collapse_rows(x: sp.csr_matrix, *, max_ratio: float = 0.5, seed: int = 0) -> tuple[np.ndarray, np.ndarray] | None:
    """Finds units with identical design rows, which calibration gives identical weight ratios.

    The dual objective only depends on ``sum_i d_i rho(x_i' lambda)``, so units with equal rows can be
    solved as one with the summed initial weight: the result is exact, not an approximation. Rows are
    grouped by one random projection and the grouping is confirmed with a second, independent one and
    the row lengths.

    Parameters
    ----------
    x : scipy.sparse.csr_matrix of shape (n, m)
    max_ratio : float, default=0.5
        Only collapse when the number of distinct rows is at most ``max_ratio * n``.
    seed : int, default=0
        Seed of the random projections.

    Returns
    -------
    (representatives, groups) or None
        ``representatives`` of shape (n_groups,): one unit per distinct row; ``groups`` of shape (n,):
        the group of every unit. None when collapsing would not pay or the check fails.
    """
    n, m = x.shape
    if n < 1000:
        return None
    rng = np.random.default_rng(seed)
    h1 = x @ rng.standard_normal(m)
    sample = h1[rng.integers(0, n, min(n, 20_000))]
    if len(pd.unique(sample)) > max_ratio * len(sample):  # mostly distinct rows: not worth hashing all
        return None
    groups, uniq = pd.factorize(h1, sort=False)
    n_groups = len(uniq)
    if n_groups > max_ratio * n:
        return None
    groups = groups.astype(np.int64, copy=False)
    running = np.maximum.accumulate(groups)
    first = np.empty(n, dtype=bool)
    first[0] = True
    np.greater(running[1:], running[:-1], out=first[1:])
    reps = np.flatnonzero(first)  # first unit of every group, in group order
    r2 = rng.standard_normal(m)
    h2 = x @ r2
    nnz = np.diff(x.indptr)
    if not (np.array_equal(h2, h2[reps][groups]) and np.array_equal(nnz, nnz[reps][groups])):
        logger.debug("row collapse check failed; solving on all %d units", n)
        return None
    return reps, groups
