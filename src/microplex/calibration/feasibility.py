"""Guards shared by every calibration front end: targets no weights can reach, and solutions that miss.

Before a solve, :func:`unreachable_targets` checks each target alone against the weights the method
allows (a box ``lower_i <= w_i <= upper_i``): a count or sum must lie between the smallest and the
largest total the box allows, a mean between the smallest and largest value it averages (and, within
bounds, the weighted mean the box allows). These are necessary conditions, one target at a time, so
they are cheap (one pass over the sparse design) and never refuse a feasible problem.

After a solve, :func:`achieved_values` gives every target's achieved value in its own units (means as
means, not as the ``sum w (y - v)`` the solver drives to zero, which zero weights also satisfy), and
:func:`solution_problems` lists what is wrong with a set of weights: non-finite weights, a total weight
collapsed to about zero, mean targets whose records lost all their weight, and targets missed by more
than the tolerance (R survey's test ``|achieved - target| / (1 + |target|)``).

The linear programs over the design are here too: :func:`best_tolerance` (the smallest reachable
relative error), :func:`lp_vertex` (the sparse ``"l1"`` weights) and :func:`check_feasible` (whether the
targets can be met together at all, naming those in conflict). Their tolerance band (:func:`band_constraint`)
holds a mean target within ``tol |v|`` of its value ``v``, as the checks above read it, not its row
``sum w (y - v)`` to exactly 0.
"""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import LinearConstraint, linprog, milp

from microplex._errors import ConvergenceError

from .design import (Design, in_weight_units, miss_units, natural_sizes, rounding_slack, target_ratio, value_sizes,
                     weight_unit)
from .diagnostics import format_pair, relative_errors
from .distances import Distance
from .._stats import ROUNDING_SHARE, misfit_denominator, relative_error, zero_scale
from .solver import column_top
from .targets import Targets

__all__ = [
    "achieved_values",
    "band",
    "band_constraint",
    "best_tolerance",
    "check_feasible",
    "lp_row_scale",
    "lp_vertex",
    "mean_floors",
    "with_mean_floor",
    "mean_scale",
    "zero_columns",
    "natural_at",
    "soft_units",
    "met_tolerance",
    "misfits",
    "solution_problems",
    "rounding_sizes",
    "smaller_sizes",
    "survey_errors",
    "target_errors",
    "target_misses",
    "totals_design",
    "unreachable_targets",
    "weight_problems",
    "zero_margins",
]

#: A calibrated total weight below this share of the initial total weight is a collapse.
COLLAPSE = 1e-9
#: A weight below this share of its initial weight is an exact zero: a vertex's, or a soft solve's underflow
#: (a sparse subset does not keep it).
NEGLIGIBLE_RATIO = 1e-9


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def _columns(m: sp.spmatrix) -> sp.csc_matrix:
    return sp.csc_matrix(m)


def unreachable_targets(
    design: Design,
    lower: np.ndarray | float,
    upper: np.ndarray | float,
    *,
    rtol: float = 0.0,
    means_only_range: bool = False,
) -> list[str]:
    """Describes every target that no weights in ``[lower, upper]`` can reach (one target at a time).

    Parameters
    ----------
    design : Design
    lower, upper : float or ndarray of shape (n_units,)
        Bounds on the unit weights (``-inf``/``inf`` allowed).
    rtol : float, default=0
        Relative slack: a target within ``rtol * |value|`` of the reachable range passes.
    means_only_range : bool, default=False
        Check mean targets only against the range of their values (not against the bounds).

    Returns
    -------
    list of str
        One sentence per unreachable target, naming it, its value and the reachable range.
    """
    n, m = design.x.shape
    lo = np.broadcast_to(np.asarray(lower, dtype=np.float64), (n,))
    hi = np.broadcast_to(np.asarray(upper, dtype=np.float64), (n,))
    x = _columns(design.x)
    cnt = _columns(design.mean_count)
    # a count's or a sum's rounding: of its value, and of what its records add up to in size (as the solvers meet
    # it, ROUNDING_SHARE of it), not of one unit of the weights and values: with both of 1e-10, a sum of 5e-20 over
    # records that all contribute 0 passed as within rounding of 0 and failed the solve instead
    rounding = ROUNDING_SHARE * design.initial_sizes
    out: list[str] = []
    for j, t in enumerate(design.targets):
        rows = x.indices[x.indptr[j] : x.indptr[j + 1]]
        vals = x.data[x.indptr[j] : x.indptr[j + 1]]
        v = float(t.value)
        slack = rtol * abs(v) + rounding_slack(v, 0.0) + float(rounding[j])
        if t.aggregate == "mean":
            crow = cnt.indices[cnt.indptr[j] : cnt.indptr[j + 1]]
            cval = cnt.data[cnt.indptr[j] : cnt.indptr[j + 1]]
            if len(crow) == 0:
                out.append(
                    f"{t.name}: a mean over no records (its filter selects none); expected a filter that "
                    "selects at least one record"
                )
                continue
            dev = np.zeros(n)
            dev[rows] = vals  # sum over the unit's records of (y - value); absent entries are exact zeros
            unit_mean = dev[crow] / cval + v
            mn, mx = float(unit_mean.min()), float(unit_mean.max())
            slack = rtol * abs(v) + rounding_slack(v, max(abs(mn), abs(mx)))  # the size of the values averaged
            if v < mn - slack or v > mx + slack:
                out.append(
                    f"{t.name} = {_fmt(v)} is outside [{_fmt(mn)}, {_fmt(mx)}], the range of "
                    f"{t.variable!r} over the {len(crow)} records (or households) its filter selects (a weighted mean lies "
                    "within the values it averages)"
                )
                continue
            if means_only_range:
                continue
            # weighted mean within the bounds: sum_i w_i (y_i - v') must be able to reach 0 for some v' within
            # slack of v (a value v computed in floating point can lie a rounding error beyond every record's mean)
            def extremes(shift: float) -> tuple[float, float, float]:
                dv = dev[crow] - shift * cval
                with np.errstate(invalid="ignore"):
                    a, b = lo[crow] * dv, hi[crow] * dv
                    smin = float(np.sum(np.where(dv == 0, 0.0, np.minimum(a, b))))
                    smax = float(np.sum(np.where(dv == 0, 0.0, np.maximum(a, b))))
                eps = 1e-9 * float(np.sum(np.abs(np.where(np.isfinite(a), a, 0.0))
                                          + np.abs(np.where(np.isfinite(b), b, 0.0))))
                return smin, smax, eps
            smin, _, eps_above = extremes(slack)  # the mean stays above v + slack
            _, smax, eps_below = extremes(-slack)  # the mean stays below v - slack
            if smin > eps_above or smax < -eps_below:
                out.append(
                    f"{t.name} = {_fmt(v)} cannot be reached within the weight bounds: the weighted mean "
                    f"of {t.variable!r} stays {'above' if smin > eps_above else 'below'} it"
                )
            continue
        if len(rows) == 0:
            if abs(v) > slack:
                what = f"every record its filter selects contributes 0 to {t.variable!r}" if t.variable else "its filter selects no record"
                out.append(f"{t.name} = {_fmt(v)} but {what} (closest achievable 0)")
            continue
        with np.errstate(invalid="ignore"):
            a, b = lo[rows] * vals, hi[rows] * vals
            smin = float(np.sum(np.minimum(a, b)))
            smax = float(np.sum(np.maximum(a, b)))
        if np.isnan(smin) or np.isnan(smax):
            continue
        if v < smin - slack - 1e-9 * abs(smin) or v > smax + slack + 1e-9 * abs(smax):
            near = smin if v < smin else smax
            what = (
                f"every record it covers contributes 0 to {t.variable!r}" if smin == smax == 0 and t.variable
                else f"reachable: [{_fmt(smin)}, {_fmt(smax)}]"
            )
            value, closest = format_pair(v, near)
            out.append(f"{t.name} = {value} (closest achievable {closest}; {what})")
    return out


def mean_scale(design: Design, d: np.ndarray) -> np.ndarray:
    """Per-target column scale for the solver: ``1 / miss_units`` for means (their initial weighted count times
    the size of their value, :func:`~microplex.calibration.design.miss_units`), 1 for counts and sums.

    The solver drives a mean target's column ``sum_i w_i (y_i - v)`` to 0 with R survey's test
    ``|misfit| / (1 + |t|) < tol`` and ``t = 0``; scaled, that misfit is the mean's own relative miss
    (times the share of weight kept), whatever the size of the weights and the unit of ``y`` (with
    ``1 + |v|`` in place of ``|v|``, a mean of 52 and the same mean of 0.026 in another unit were solved in
    other units, to other weights in a soft fit).
    """
    s = np.ones(len(design.targets))
    is_mean = np.array([t.aggregate == "mean" for t in design.targets], dtype=bool)
    if is_mean.any():
        u = miss_units(design, d)
        ok = is_mean & (np.asarray(design.mean_count.T @ d).ravel() > 0)
        with np.errstate(over="ignore", divide="ignore", under="ignore"):
            sj = 1.0 / u[ok]
        s[ok] = np.where(np.isfinite(sj) & (sj > 0), sj, 1.0)
    return s


def soft_units(design: Design, d: np.ndarray) -> np.ndarray:
    """Per target, what a soft solve divides its miss by, in the solver's units (mean columns scaled by
    :func:`mean_scale`): :func:`~microplex.calibration.design.miss_units` for counts and sums, 1 for means
    (already relative). A soft penalty ``importance * sum(d) / (tolerance * soft_units) ** 2`` is then the same
    in any unit of the values or the weights."""
    is_mean = np.array([t.aggregate == "mean" for t in design.targets], dtype=bool)
    return np.where(is_mean, 1.0, miss_units(design, d))


def achieved_values(design: Design, weights: np.ndarray) -> np.ndarray:
    """Every target's achieved value under ``weights`` in its own units (a mean as a mean; NaN when the
    records of a mean target carry no weight)."""
    achieved = design.x.T @ weights
    is_mean = np.array([t.aggregate == "mean" for t in design.targets], dtype=bool)
    if is_mean.any():
        value = np.array([t.value for t in design.targets])
        cnt = design.mean_count.T @ weights
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(cnt > 0, value + achieved / np.where(cnt > 0, cnt, 1.0), np.nan)
        achieved = np.where(is_mean, mean, achieved)
    return np.asarray(achieved, dtype=np.float64)


def target_errors(design: Design, weights: np.ndarray, tol: float | None = None) -> np.ndarray:
    """Every target's relative error under ``weights`` in its own units (a mean as a mean; inf where a mean's
    records carry no weight), as :meth:`~microplex.calibration.CalibrationResult.report` reads it
    (:func:`~microplex.calibration.diagnostics.relative_errors`): a target of 0, or one far below its records' size,
    measured against a thousandth of its :func:`~microplex.calibration.design.value_sizes` at ``design.d`` (the
    weights the solve started from; a count or sum of 0 at ``design.d * design.zero_factor`` where set, the targets'
    scale; ``design.initial_sizes``, :func:`~microplex._stats.zero_scale`), not as an absolute miss. With ``tol``
    (the tolerance the errors are held to), a miss is measured against at least the target's rounding scale
    (:func:`~microplex._stats.rounding_scale` of those sizes): float64 rounding of a total netting values of both
    signs to 0 meets ``tol``."""
    value = np.array([t.value for t in design.targets], dtype=np.float64)
    if tol is None:
        err = relative_errors(achieved_values(design, weights), value, design.initial_sizes)
    else:
        err = np.abs(relative_error(achieved_values(design, weights), value, design.initial_sizes, tol, zero=True))
    return np.where(np.isnan(err), np.inf, err)


def zero_columns(design: Design, scale: np.ndarray) -> np.ndarray:
    """The solver's column ``scale`` (:func:`mean_scale`'s) with each count or sum target of 0 at ``1 /``
    :func:`~microplex._stats.zero_scale` of its natural size as ``design`` sizes it (``design.initial_sizes``: at
    the weights ``design.d`` the solve starts from times ``design.zero_factor``, the targets' scale for a
    :class:`~microplex.calibration.Calibrator`, :func:`~microplex.calibration.calibrator.zero_sized`): a hard solve
    holds such a target to its tolerance in thousandths of what its records add up to, the unit its errors and
    ``met`` are read in (:func:`target_errors`, :func:`survey_errors`), not in units of one of whatever unit the
    weights and values are in (R survey's ``1 + |t|``). The rule of :class:`~microplex.calibration.Calibrator` and of
    a sparse subset's solve (:func:`~microplex.calibration.subsets.calibrate_subset`)."""
    if not design.zero_totals.any():
        return scale
    return np.where(design.zero_totals, 1.0 / zero_scale(design.initial_sizes), scale)


def natural_at(design: Design) -> np.ndarray | None:
    """Per target, the factor of ``design.d`` at which a hard solve takes its natural size, the rounding its misses
    are met within (:func:`~microplex.calibration.solver.newton_dual`'s ``natural_at``): ``design.zero_factor`` for
    its counts and sums of 0 (where :func:`zero_columns` sizes them and :func:`survey_errors` judges them), 1
    elsewhere; None where ``design`` sizes them at ``d`` itself."""
    if design.zero_factor is None:
        return None
    return np.where(design.zero_totals, design.zero_factor, 1.0)


def misfits(
    achieved: np.ndarray, target: np.ndarray, natural: np.ndarray | None = None, tol: float | None = None, *,
    zero: bool = False,
) -> np.ndarray:
    """R survey's convergence measure ``|achieved - target| / (1 + |target|)``, per target (for targets
    below 1 in size, half the relative miss: :func:`~microplex._stats.misfit_denominator`; given the natural sizes
    and the tolerance ``tol`` the misfits are held to, ``1 + |target|`` is at least the rounding scale; with
    ``zero``, a target of 0 is measured against :func:`~microplex._stats.zero_scale` of its natural size, not 1).

    The one definition behind every calibration front end's convergence check (``Calibrator``,
    ``rake_dataset``, ``rake_frame``); reported errors are :func:`~microplex.calibration.diagnostics.relative_errors`.

    Examples
    --------
    >>> misfits(np.array([101.0, 0.5]), np.array([100.0, 0.0])).round(4).tolist()
    [0.0099, 0.5]
    """
    return np.abs(np.asarray(achieved) - target) / misfit_denominator(target, natural, tol, zero=zero)


def met_tolerance(tol: float) -> float:
    """The misfit a solution may keep on a target after a solve to tolerance ``tol``: ``max(100 tol, 1e-8)``.

    Every front end checks its solution against it (``summary["met_rtol"]``).
    """
    return max(tol * 100, 1e-8)


def rounding_sizes(design: Design, weights: np.ndarray) -> np.ndarray:
    """Per target, the size a miss of its achieved value under ``weights`` may be float64 rounding of: its
    :func:`~microplex.calibration.design.value_sizes` at the initial weights ``design.d`` or at ``|weights|``,
    whichever is smaller. A total is computed at the size of the weights it sums: weights that end 1e9 times
    below the initial ones (targets in other units) met a count 1.4e-6 off at ``tol=1e-10``, a miss within the
    rounding of the initial weights' size but 14,000 times the tolerance at the final weights'. A target of 0 keeps
    the initial size (``design.initial_sizes``: a hard fit's at the targets' scale,
    :func:`~microplex.calibration.calibrator.zero_sized`): its miss is the weight left on its records, met where it
    falls to the rounding of that size (a count of 0, which raking halves by e per iteration)."""
    final = value_sizes(design, np.abs(np.asarray(weights, dtype=np.float64)))
    return smaller_sizes(design.initial_sizes, final, np.array([t.value for t in design.targets], dtype=np.float64))


def smaller_sizes(initial: np.ndarray, final: np.ndarray, values: np.ndarray) -> np.ndarray:
    """:func:`rounding_sizes` from the sizes alone (for designs not held in memory): per target, the smaller of its
    ``initial`` and ``final`` sizes, the initial one for a target of value 0.

    Examples
    --------
    >>> smaller_sizes(np.array([1e9, 1e9]), np.array([5.0, 5.0]), np.array([5.0, 0.0])).tolist()
    [5.0, 1000000000.0]
    """
    return np.where(np.asarray(values) == 0, initial, np.minimum(initial, final))


def survey_errors(design: Design, weights: np.ndarray, tol: float | None = None) -> np.ndarray:
    """:func:`misfits` of every target, in the target's units (inf where undefined); with ``tol`` (what they are
    held to), against at least the rounding scale of the target's :func:`rounding_sizes` (its
    :func:`~microplex.calibration.design.value_sizes` at ``design.d`` or at the weights, the smaller), and a target
    of 0 against :func:`~microplex._stats.zero_scale` of its size as ``design`` sizes it (``design.initial_sizes``, at
    the targets' scale for the hard :class:`~microplex.calibration.Calibrator`; not R survey's 1): the unit that
    solve holds it to (:func:`zero_columns`)."""
    value = np.array([t.value for t in design.targets], dtype=np.float64)
    natural = None if tol is None else rounding_sizes(design, weights)
    err = misfits(achieved_values(design, weights), value, natural, tol, zero=tol is not None)
    return np.where(np.isnan(err), np.inf, err)


def solution_problems(
    design: Design,
    weights: np.ndarray,
    *,
    errors: np.ndarray | None,
    tol: float,
    limit: int = 10,
) -> list[str]:
    """What is wrong with ``weights`` (one per unit): an empty list when they are a valid solution.

    Parameters
    ----------
    errors : ndarray of shape (n_targets,), optional
        Per-target errors to compare with ``tol`` (None: do not check the targets, e.g. soft mode).
    tol : float
        Largest error allowed.
    """
    w = np.asarray(weights, dtype=np.float64)
    bad = ~np.isfinite(w)
    if bad.any():
        return [f"{int(bad.sum())} of {len(w)} weights are not finite"]
    problems = weight_problems(
        total=float(w.sum()), initial_total=float(design.d.sum()), n_units=len(w), n_nonzero=int(np.count_nonzero(w))
    )
    is_mean = np.array([t.aggregate == "mean" for t in design.targets], dtype=bool)
    if is_mean.any():
        cnt_w = design.mean_count.T @ w
        cnt_d = design.mean_count.T @ design.d
        lost = np.flatnonzero(is_mean & ~(cnt_w > COLLAPSE * cnt_d))
        if len(lost):
            names = ", ".join(repr(design.targets[j].name) for j in lost[:limit])
            problems.append(f"the records of mean targets {names} lost all their weight (the mean is undefined)")
    if errors is not None:
        problems += target_misses(design.targets, achieved_values(design, w), errors, tol, limit=limit)
    return problems


def weight_problems(*, total: float, initial_total: float, n_units: int, n_nonzero: int | None = None) -> list[str]:
    """The collapse check of :func:`solution_problems` from sums alone (for designs not held in memory)."""
    if total > COLLAPSE * initial_total:
        return []
    kept = "" if n_nonzero is None else f" ({n_nonzero} of {n_units} units keep a non-zero weight)"
    return [f"the weights collapsed: they sum to {total:.3g} against an initial {initial_total:.6g}{kept}"]


def target_misses(targets: Targets, achieved: np.ndarray, errors: np.ndarray, tol: float, *, limit: int = 10) -> list[str]:
    """One sentence listing the targets whose ``errors`` exceed ``tol`` (worst first), or nothing."""
    miss = np.flatnonzero(~(errors <= tol))
    if not len(miss):
        return []
    listed = "; ".join(
        f"{targets[j].name} = {_fmt(targets[j].value)} (achieved {_fmt(achieved[j])})"
        for j in miss[np.argsort(-errors[miss], kind="stable")][:limit]
    )
    return [f"{len(miss)} targets are missed by more than {tol:g}: {listed}"]


def totals_design(targets: Targets, initial: np.ndarray) -> Design:
    """A one-unit design whose row is the initial totals ``X'd`` of count targets (unit weight 1).

    For count targets (entries 0 or 1) with weight bounds proportional to the initial weights, the
    reachable range of every target depends on the records only through ``X'd``, so
    :func:`unreachable_targets` on this design gives the same answer as on the records: the guard of a
    design that is never held in memory (a partitioned dataset).
    """
    m = len(targets)
    x = sp.csr_matrix(np.asarray(initial, dtype=np.float64).reshape(1, m))
    x.eliminate_zeros()
    totals = np.array([t.value for t in targets], dtype=np.float64)
    return Design(x, totals, np.ones(1), pd.RangeIndex(1), np.zeros(1, dtype=np.int64), targets, sp.csr_matrix((1, m)))


def zero_margins(targets: Targets, initial: np.ndarray, initial_total: float) -> list[str]:
    """Count margins (count targets on the same filter columns) that cover every record but total 0.

    Every weight would have to be 0: the targets ask for a population of no one.
    """
    groups: dict[tuple[str, ...], list[int]] = {}
    for j, t in enumerate(targets):
        if t.aggregate == "count" and t.entity == "person" and t.filters:
            groups.setdefault(tuple(sorted(t.filters)), []).append(j)
    out = []
    for cols, idx in groups.items():
        covered = float(np.sum(initial[idx]))
        if initial_total > 0 and abs(covered - initial_total) <= 1e-12 * initial_total:
            if float(sum(targets[j].value for j in idx)) == 0.0:
                out.append(
                    f"Margin {cols if len(cols) > 1 else cols[0]!r} covers every record but its totals sum to 0: "
                    "every weight would have to be 0"
                )
    return out


def best_tolerance(design: Design) -> float:
    """Smallest ``eps`` such that some ``w >= 0`` has ``|X'w - t| <= eps |t|`` for every count or sum target and a
    weighted mean within ``eps |v|`` of every mean target's value ``v`` (linear programs)."""
    return _best_fit(design)[0]


def band(design: Design, tol: float) -> np.ndarray:
    """Per-target half-width of the tolerance band: ``tol |t|`` for a count or sum, ``tol |v|`` for a mean (its
    value; the band of a mean is relative to the mean, :func:`band_constraint`); at least
    :data:`~microplex._stats.ROUNDING_SHARE` of the target's natural size (``tol`` times its rounding scale: a
    total of 0 netting values of both signs is an equality no solver holds beyond rounding)."""
    value = np.array([t.value if t.aggregate == "mean" else 0.0 for t in design.targets], dtype=np.float64)
    rel = _relative_means(design, np.ones(len(design.targets)))
    # a relative mean's band is in units of the mean, every other row's in those of its column
    floor = ROUNDING_SHARE * np.where(rel, design.initial_sizes, natural_sizes(design, design.d))
    return np.maximum(tol * np.where(rel, np.abs(value), np.abs(design.totals)), floor)


def _relative_means(design: Design, slack: np.ndarray) -> np.ndarray:
    """Mean targets whose band is relative to their mean (non-zero value and slack); the rest keep ``|x'w - t| <= slack``."""
    return np.array([t.aggregate == "mean" and t.value != 0 for t in design.targets], dtype=bool) & (np.asarray(slack) > 0)


#: The linear programs hold every sum and mean target's row with its largest value in size in
#: ``[2**LP_VALUE_EXP, 2**(LP_VALUE_EXP + 1))`` (:func:`lp_row_scale`).
LP_VALUE_EXP = 20


def lp_row_scale(design: Design) -> np.ndarray:
    """Per target, the power of two that brings a sum or mean target's largest value in size into
    ``[2**LP_VALUE_EXP, 2**(LP_VALUE_EXP + 1))``; 1 for a count (its values do not depend on a unit).

    The linear programs' rows are then the same whatever the unit of the values (dollars or cents give the same
    records). HiGHS drops matrix values below 1e-9 and holds bounds to about 1e-7 absolute: a sum of values of
    1e-177 was "met" by no weight at all, a mean of values near 1e-8 was missed beyond the tolerance, and sums in
    another unit kept other records. Rows of large values keep the solver's absolute precision small beside the
    totals. Powers of two scale exactly.
    """
    top = column_top(design.x)
    _, e = np.frexp(top)
    valued = np.array([t.aggregate != "count" for t in design.targets], dtype=bool)
    # a subnormal column's power is held at 2**1023, the largest double (its values end above 2**-52)
    return np.where(valued & (top > 0), np.ldexp(1.0, np.minimum(LP_VALUE_EXP + 1 - e, 1023)), 1.0)


#: The least weighted count a linear program's vertex leaves on each mean target's records, in units of the
#: lightest of them (its initial weight; :func:`mean_floors`), tried in this order: one such record, else (where
#: the other targets leave less) a millionth of one, else none (zero weights meet a mean's row
#: ``sum w (y - v) = 0``; :func:`solution_problems` then names the mean whose records lost their weight).
MEAN_FLOORS = (1.0, 1e-6, 0.0)


def mean_floors(design: Design) -> tuple[float, ...]:
    """The levels of :data:`MEAN_FLOORS` to try: all of them with mean targets, else none but 0."""
    return MEAN_FLOORS if any(t.aggregate == "mean" for t in design.targets) else (0.0,)


def with_mean_floor(
    design: Design, a: sp.csr_matrix, lo: np.ndarray, hi: np.ndarray, floor: float
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """The rows of :func:`band_constraint` and, with ``floor > 0``, one more per mean target: its records keep a
    weighted count of at least ``floor`` times their lightest unit's (:data:`MEAN_FLOORS`)."""
    if floor <= 0:
        return a, lo, hi
    rows, least = _floor_rows(design, floor)
    return (sp.vstack([a, rows], format="csr"), np.concatenate([lo, least]),
            np.concatenate([hi, np.full(len(least), np.inf)]))


def _floor_rows(design: Design, floor: float) -> tuple[sp.csr_matrix, np.ndarray]:
    """Rows ``c_j'w >= floor * min_i d_i c_ij`` (over the units ``i`` of mean target ``j``'s records): the mean's
    records keep at least ``floor`` of their lightest unit's initial weighted count."""
    idx = np.flatnonzero([t.aggregate == "mean" for t in design.targets])
    c = sp.csc_matrix(design.mean_count)[:, idx]
    lowest = np.zeros(len(idx))
    held = np.diff(c.indptr) > 0
    if held.any():  # per column, the least d_i c_ij (empty columns skipped: their start is the next one's)
        lowest[held] = np.minimum.reduceat(design.d[c.indices] * c.data, c.indptr[:-1][held])
    return sp.csr_matrix(c.T), floor * lowest


def band_constraint(design: Design, slack: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Rows ``A`` (over the units) and bounds ``lo <= A w <= hi`` of the tolerance band with half-widths ``slack``.

    A count or sum target ``j`` is one row ``|x_j'w - t_j| <= slack_j``. A mean target (its row ``x_j`` is
    ``sum_i w_i (y_i - v_j)`` over its records, total 0) with ``slack_j > 0`` and ``v_j != 0`` is two rows,
    ``(x_j - slack_j c_j)'w <= 0`` in its place and ``(x_j + slack_j c_j)'w >= 0`` appended (``c_j``: its
    records' indicator, ``design.mean_count``): ``|x_j'w| <= slack_j c_j'w``, the weighted mean within
    ``slack_j`` of ``v_j`` (a relative miss ``slack_j / |v_j|``, as every other check reads a mean). Without
    such means the rows are ``X'`` itself (:func:`with_mean_floor` appends the floors of a mean's records).
    """
    scale = lp_row_scale(design)
    if (scale != 1.0).any():  # rows in units HiGHS's absolute tolerances hold, whatever the unit of the values
        design = dataclasses.replace(design, x=sp.csr_matrix(design.x @ sp.diags(scale)), totals=design.totals * scale)
        slack = slack * scale
    t = design.totals
    xt = sp.csr_matrix(design.xt)
    rel = np.flatnonzero(_relative_means(design, slack))
    if not len(rel):
        return xt, t - slack, t + slack
    m = len(t)
    s = np.zeros(m)
    s[rel] = slack[rel]
    sc = (sp.diags(s) @ sp.csr_matrix(design.mean_count.T)).tocsr()
    sc.eliminate_zeros()
    top = (xt - sc).tocsr()
    extra = (xt[rel] + sc[rel]).tocsr()
    lo, hi = t - slack, t + slack
    lo[rel], hi[rel] = -np.inf, 0.0
    a = sp.vstack([top, extra], format="csr")
    return a, np.concatenate([lo, np.zeros(len(rel))]), np.concatenate([hi, np.full(len(rel), np.inf)])


def _band_excess(design: Design, w: np.ndarray, slack: np.ndarray, half: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How far ``w`` lies outside the band of half-widths ``half`` (per target, > 0 where outside), in units of
    ``slack`` (a mean's relative band: divided by its weighted count), and which targets have a relative band."""
    achieved = sp.csr_matrix(design.xt) @ w
    over = np.abs(achieved - design.totals) - half
    rel = _relative_means(design, slack)
    if rel.any():
        cnt = design.mean_count.T @ w
        with np.errstate(invalid="ignore", divide="ignore"):
            over_rel = np.where(cnt > 0, (np.abs(achieved) - half * cnt) / np.where(cnt > 0, cnt, 1.0), np.inf)
        over = np.where(rel, over_rel, over)
    return over, rel


def _fit_lp(
    design: Design, slack_mean: float | None, counts: np.ndarray | None = None
) -> tuple[float, np.ndarray | None, np.ndarray]:
    """The linear program of :func:`_best_fit`: ``min e`` with ``|X'w - t| <= e |t|`` (``|t|``: 1 where 0) on every
    target but the relative means, which are held within ``slack_mean |v|`` of their value (left out with None);
    with ``counts`` (per target), a relative mean is instead ``|x_j'w| <= e |v_j| counts_j`` (its weighted count
    taken as fixed: the program linearized about a solution, whose duals name the targets that bind).
    Returns ``e`` (nan where infeasible), the weights and the per-target duals.

    Rows are scaled by powers of two (:func:`lp_row_scale`; their duals scaled back), and ``e`` is solved in a unit that keeps its column ``|t|`` below HiGHS's matrix limit (1e15: totals
    of 1e18 were a "model error" and the best achievable error nan)."""
    n, m = design.x.shape
    row = lp_row_scale(design)
    t = design.totals * row
    scale = row * np.where(design.totals == 0, 1.0, np.abs(design.totals))
    rel = _relative_means(design, np.ones(m))
    value = np.array([tg.value for tg in design.targets], dtype=np.float64) * row
    if counts is not None:
        scale = np.where(rel, np.abs(value) * counts, scale)
        rel = np.zeros(m, dtype=bool)
    free = np.flatnonzero(~rel)
    top = int(np.frexp(scale[free].max())[1]) if len(free) else 0
    e_unit = math.ldexp(1.0, max(0, top - 40))  # e solved as e * e_unit: its column at most 2**40
    xt = sp.csr_matrix(sp.diags(row) @ design.xt)
    a = sp.hstack([xt[free], sp.csr_matrix((scale[free] / e_unit).reshape(-1, 1))]).tocsr()
    b = sp.hstack([xt[free], sp.csr_matrix((-scale[free] / e_unit).reshape(-1, 1))]).tocsr()
    rows, rhs = [-a, b], [-t[free], t[free]]
    idx = np.flatnonzero(rel)
    if slack_mean is not None and len(idx):
        sc = sp.diags(slack_mean * np.abs(value[idx])) @ sp.csr_matrix(design.mean_count.T)[idx]
        zero = sp.csr_matrix((len(idx), 1))
        rows += [sp.hstack([xt[idx] - sc, zero]), sp.hstack([-xt[idx] - sc, zero])]
        rhs += [np.zeros(len(idx)), np.zeros(len(idx))]
    cost = np.zeros(n + 1)
    cost[-1] = 1.0
    res = linprog(cost, A_ub=sp.vstack(rows).tocsr(), b_ub=np.concatenate(rhs), bounds=(0, None), method="highs")
    duals = np.zeros(m)
    if res.x is None:
        return math.nan, None, duals
    marg = np.abs(res.ineqlin.marginals)
    k = len(free)
    duals[free] = np.maximum(marg[:k], marg[k:2 * k]) * row[free]
    return float(res.x[-1]) / e_unit, res.x[:n], duals


def _binding(duals: np.ndarray) -> list[int]:
    return [int(j) for j in np.flatnonzero(duals > 1e-9 * max(float(duals.max(initial=0.0)), 1e-300))]


#: Linear programs of :func:`_best_fit` at most, bisecting the relative miss of the mean targets, and the relative
#: width of the bracket at which it stops.
BEST_FIT_STEPS = 40
BEST_FIT_RTOL = 1e-4


def _best_fit(design: Design) -> tuple[float, list[int]]:
    """:func:`best_tolerance` and the targets that bind it (non-zero duals of the linear program): the targets
    that no non-negative weights can meet together (each of them may alone).

    Counts and sums (and means of value 0, held as ``|sum w (y - v)| <= e``) alone: one linear program. A mean's
    relative miss ``|x_j'w| <= e |v_j| c_j'w`` is not linear in ``(w, e)``: its bound ``e_m`` is bisected, each
    program giving ``f(e_m)``, the least miss of the rest with the means within ``e_m``; the answer
    ``min max(e_m, f(e_m))`` lies between ``e_m`` and ``f(e_m)`` (``f`` does not increase).
    """
    design = in_weight_units(design)
    m = len(design.targets)
    rel = _relative_means(design, np.ones(m))
    if not rel.any():
        e, _, duals = _fit_lp(design, None)
        return e, (_binding(duals) if math.isfinite(e) else [])
    e, w, duals = _fit_lp(design, None)  # the means left free: a lower bound
    if w is None:
        return math.nan, []
    lo, hi, w_hi = e, max(e, _mean_error(design, w, rel)), w
    for _ in range(BEST_FIT_STEPS):
        if hi - lo <= BEST_FIT_RTOL * hi:
            break
        mid = 0.5 * (lo + hi) if math.isfinite(hi) else max(2.0 * lo, 1.0)
        f, w_mid, _ = _fit_lp(design, mid)
        if w_mid is None or not math.isfinite(f):
            lo = mid  # no weights hold the means within mid
        elif f <= mid:
            lo, hi, w_hi = max(lo, f), mid, w_mid
        else:
            lo = mid
            if f < hi:
                hi, w_hi = f, w_mid
    # the targets that bind: duals of the program linearized about the best weights (their means' counts fixed)
    counts = design.mean_count.T @ w_hi
    counts = np.where(counts > 0, counts, design.mean_count.T @ design.d)
    _, _, duals = _fit_lp(design, None, counts)
    return float(hi), _binding(duals)


def _mean_error(design: Design, w: np.ndarray, rel: np.ndarray) -> float:
    """The largest relative miss ``|mean - v| / |v|`` of the mean targets ``rel`` under ``w`` (inf where their
    records carry no weight)."""
    achieved = achieved_values(design, w)[rel]
    value = np.array([t.value for t in design.targets], dtype=np.float64)[rel]
    err = np.abs(achieved - value) / np.abs(value)
    return float(np.max(np.where(np.isnan(err), np.inf, err)))


def _infeasible(design: Design, tol: float, reason: str) -> ConvergenceError:
    """The error of targets that no non-negative weights meet within ``tol`` together: the best achievable max
    relative error, and the targets in conflict (those that bind it, with their values). Where that error is
    within ``tol`` (or the programs give none), HiGHS's infeasibility contradicts it: :func:`_solver_failure`."""
    best, binding = _best_fit(design)
    if not best > tol:
        return _solver_failure(design, f"{reason}; yet the best achievable max relative error is {best:.4g}")
    listed = "; ".join(f"{design.targets[j].name} = {_fmt(design.targets[j].value * design.unit)}" for j in binding[:10])
    more = f" (and {len(binding) - 10} more)" if len(binding) > 10 else ""
    conflict = f" The targets that conflict (no non-negative weights meet them together): {listed}{more}." if listed else ""
    return ConvergenceError(
        f"No non-negative weights meet tolerance {tol:g} on every target ({reason}). "
        f"The best achievable max relative error with any non-negative weights is {best:.4g}; raise "
        f"the tolerance to at least that.{conflict}"
    )


def _solver_failure(design: Design, reason: str) -> ConvergenceError:
    """The error of a linear program that HiGHS did not solve (a numerical failure, not a proof that no weights
    meet the targets): its status, the spread of the initial weights, and what may help."""
    d = design.d[design.d > 0] * design.unit
    failed = (f"The linear program of the sparse calibration failed numerically ({reason}): it proved neither weights "
              "that meet the targets nor that none exist.")
    rest = "and Calibrator (not sparse) solves the same targets without a linear program."
    if d.size and d.max() > 2.0 * d.min():  # spread weights: their range is what to narrow
        return ConvergenceError(
            f"{failed} The initial weights range from {d.min():.3g} to {d.max():.3g}; initial weights within fewer "
            f"orders of magnitude, targets in moderate units, or dropping redundant targets may let it solve, {rest}"
        )
    # weights all alike (within a factor of 2): how far the targets lie from what they reach, not their range
    ratio = target_ratio(design)
    lie = (f"the targets are {ratio:.3g} times the totals the initial weights reach" if math.isfinite(ratio)
           else "no target has a total of the sign its initial weights reach")
    alike = f"all near {d.min():.3g}" if d.size else "all 0"
    return ConvergenceError(
        f"{failed} The initial weights are {alike} and {lie}; initial weights at the targets' scale, targets in "
        f"moderate units, or dropping redundant targets may let it solve, {rest}"
    )


#: HiGHS's model status ``kInfeasible`` (``highspy.HighsModelStatus``); scipy reports it, and a "Model error"
#: (status 2) too, as its status 2, so the HiGHS status is read from the message.
HIGHS_INFEASIBLE = 8
#: HiGHS's ``kUnboundedOrInfeasible``: a proof of infeasibility where the cost cannot decrease without bound.
HIGHS_UNBOUNDED_OR_INFEASIBLE = 9


def _proves_infeasible(message: str, cost: np.ndarray) -> bool:
    """Whether HiGHS's answer (its ``message``, "... (HiGHS Status N: ...)") proves that no ``w >= 0`` lies in the
    band: status Infeasible, or UnboundedOrInfeasible under a non-negative ``cost`` (bounded below by 0). Any other
    status (a model error, "Unknown", a time or iteration limit) is a failure of the solver, not a proof."""
    found = re.search(r"HiGHS Status (\d+)", str(message))
    status = int(found.group(1)) if found else None
    return status == HIGHS_INFEASIBLE or (status == HIGHS_UNBOUNDED_OR_INFEASIBLE and bool((cost >= 0).all()))


def check_feasible(design: Design, tol: float) -> None:
    """Raises the :class:`~microplex._errors.ConvergenceError` of :func:`lp_vertex` when no non-negative weights
    meet every target within ``tol`` together (its band, a feasibility program without cost): once, before the
    solves of many budgets, each of which would fail on it."""
    work = in_weight_units(design)
    _band_solve(work, tol, np.zeros(work.x.shape[0]), band(work, tol) * (1 - 1e-6), (0.0,))


def _band_solve(
    design: Design, tol: float, cost: np.ndarray, slack: np.ndarray, floors: tuple[float, ...] | None = None
) -> np.ndarray:
    """HiGHS's non-negative ``w`` minimizing ``cost @ w`` within the band of half-widths ``slack``
    (:func:`band_constraint`: ``|X'w - t| <= slack``, a mean within ``slack`` of its value), its mean targets'
    records keeping weight at the first level of ``floors`` (default :func:`mean_floors`) that the targets allow;
    the :class:`ConvergenceError` of :func:`_infeasible` (for tolerance ``tol``) when HiGHS proves there is none
    (at the last, least demanding, level), of :func:`_solver_failure` when it fails otherwise."""
    rows = band_constraint(design, slack)
    for floor in mean_floors(design) if floors is None else floors:
        a, lo, hi = with_mean_floor(design, *rows, floor)
        res = milp(cost, constraints=LinearConstraint(a, lo, hi), bounds=(0, np.inf), options={"presolve": True})
        if res.status == 0 and res.x is not None:
            return res.x
    if not _proves_infeasible(res.message, np.asarray(cost)):
        raise _solver_failure(design, f"HiGHS: {res.message}")
    raise _infeasible(design, tol, f"HiGHS: {res.message}")


#: Solves of :func:`lp_vertex` again in a narrowed band when the solver's precision missed the tolerance.
LP_RESOLVES = 3


def lp_vertex(design: Design, tol: float, cost: np.ndarray | None = None) -> np.ndarray:
    """Non-negative weights with ``|X'w - t| <= tol |t|`` for every count or sum target and a weighted mean within
    ``tol |v|`` of every mean target's value ``v`` (:func:`band_constraint`): a vertex of the linear program
    minimizing ``cost @ w`` (default ``sum_i w_i / d_i``), solved by HiGHS; weights below ``NEGLIGIBLE_RATIO d_i`` are 0.

    Raises :class:`~microplex._errors.ConvergenceError` (naming :func:`best_tolerance` and the targets in conflict)
    when no such weights exist (:func:`check_feasible` raises it without solving for a vertex).
    """
    unit = weight_unit(design.d)  # solved in units of the typical weight (HiGHS's absolute tolerances and limits)
    work = in_weight_units(design, unit)
    half = band(work, tol)
    slack = half * (1 - 1e-6)
    c = 1.0 / work.d if cost is None else np.asarray(cost, dtype=np.float64) * unit
    for _ in range(LP_RESOLVES + 1):
        x = _band_solve(work, tol, c, slack)
        w = np.where(x > NEGLIGIBLE_RATIO * work.d, x, 0.0)
        # HiGHS meets the band to its feasibility tolerance (about 1e-7 absolute), and the negligible weights are
        # dropped: beyond a tolerance of about 1e-10 the vertex missed it. Solved again in a band narrowed by twice
        # the miss (the usual tolerances never get here: their band's 1e-6 margin holds the solver's precision)
        over, _ = _band_excess(work, w, slack, half)
        if not ((over > 0) & (slack > 0)).any():
            break
        slack = np.maximum(slack - 2.0 * np.maximum(over, 0.0), 0.0)
    return w * unit


def only_nonnegative(distance: Distance, bounds: tuple[float, float]) -> bool:
    """Whether ``distance`` within ``bounds`` gives only weights >= 0: a finite lower bound decides (logit within
    (-0.5, 3) reaches negative weights, as R survey's), else the distance's own range (raking's >= 0, linear's of
    either sign). What the "reachable by any weights" checks allow, before the bounds are applied."""
    return bounds[0] >= 0 if math.isfinite(bounds[0]) else distance.nonnegative


def box(d: np.ndarray, bounds: tuple[float, float], nonnegative: bool) -> tuple[np.ndarray, np.ndarray]:
    """Unit weight bounds ``d * bounds`` (a lower bound of ``-inf`` becomes 0 for non-negative distances)."""
    lo = bounds[0] if math.isfinite(bounds[0]) else (0.0 if nonnegative else -math.inf)
    with np.errstate(invalid="ignore"):
        return d * lo, d * bounds[1]
