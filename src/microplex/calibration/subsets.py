"""Sampling helpers for sparse reweighting: balanced ordering, systematic rounding, subset calibration,
held-out targets.

Pure functions of the design (and the candidate records); :class:`~microplex.calibration.SparseCalibrator`
assembles them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from microplex._errors import DataValidationError

from .auxiliary import _is_number, distinct_values
from .design import Design
from .distances import Bounds, Distance
from .feasibility import mean_scale, natural_at, soft_units, target_errors, zero_columns
from .solver import newton_dual
from .targets import Target, Targets

__all__ = ["calibrate_subset", "inclusion_probabilities", "default_holdout"]

logger = logging.getLogger(__name__)


def _max_error(design: Design, w: np.ndarray, tol: float | None = None) -> float:
    """The largest :func:`~microplex.calibration.feasibility.target_errors` (with ``tol``, the tolerance it is held
    to: a miss within float64 rounding of a target's natural size meets it)."""
    return float(np.max(target_errors(design, w, tol))) if len(design.targets) else 0.0


def calibrate_subset(
    design: Design,
    keep: np.ndarray,
    base: np.ndarray,
    dist: Distance,
    bounds: Bounds,
    tolerance: float,
    subset_solve: str,
    aux: tuple[sp.csr_matrix, np.ndarray] | None = None,
    strength: float = 1.0,
) -> tuple[np.ndarray, float, int, int]:
    """Calibrates the units ``keep`` from ``base`` weights: the targets exact, the auxiliary totals soft.

    In order, until one converges: the exact targets plus the auxiliary totals ``aux = (x_aux, t_aux)``
    (unit rows of all candidates, full-population totals) penalized by ``strength / max(t_j, D)`` per
    squared miss (``D``: mean of ``base``); the exact targets alone; then (``subset_solve``
    ``"exact_then_soft"``, or at once for ``"soft"``) the targets softly (misses penalized at a third of
    ``tolerance``), with the auxiliaries if the targets stay within ``tolerance``, else without.
    ``"exact"`` returns the last iterate of the exact solve instead.

    Returns
    -------
    weights, max relative target error, soft solves (0 or 1), auxiliary solves dropped (0 or 1)
    """
    sub = Design(design.x[keep], design.totals, base, design.units[keep], np.arange(len(keep)), design.targets,
                 design.mean_count[keep], design.unit, design.zero_factor)
    scale = mean_scale(sub, base)
    # the exact solves hold a target of 0 in the unit its error is read in (a thousandth of its records' size); the
    # soft ones weigh its miss against that size already (soft_units)
    exact_scale = zero_columns(sub, scale)
    exact_at = natural_at(sub)  # met within rounding of their size there too
    x_soft = sub.x if np.all(scale == 1.0) else sp.csr_matrix(sub.x @ sp.diags(scale))
    x_exact = x_soft if exact_scale is scale else sp.csr_matrix(sub.x @ sp.diags(exact_scale))
    totals = design.totals
    tol = min(tolerance * 1e-3, 1e-8)
    use_aux = aux is not None and aux[0].shape[1] > 0
    aux_pen = strength / np.maximum(aux[1], base.mean()) if use_aux else np.zeros(0)
    t_all = np.concatenate([totals, aux[1]]) if use_aux else totals
    with_aux_x: dict[bool, sp.csr_matrix] = {}  # the targets' columns beside the auxiliaries', per kind of solve

    def solve(soft_pen: np.ndarray | None, with_aux: bool) -> tuple[np.ndarray, bool, float]:
        soft_targets = soft_pen is not None  # else exact: an infinite penalty
        pen = soft_pen if soft_targets else np.full(len(totals), np.inf)
        kw = {"tol": 1e-9, "max_iter": 100} if soft_targets else {"tol": tol, "max_iter": 60}
        at = None if soft_targets else exact_at
        x = x_soft if soft_targets else x_exact
        with np.errstate(over="ignore"):  # the line search backs off from overflowing steps
            if with_aux:
                if soft_targets not in with_aux_x:
                    with_aux_x[soft_targets] = sp.hstack([x, aux[0][keep]], format="csr")
                sol = newton_dual(with_aux_x[soft_targets], base, t_all, dist, bounds,
                                  penalty=np.concatenate([pen, aux_pen]), **kw,
                                  natural_at=None if at is None else np.concatenate([at, np.ones(len(aux_pen))]))
            else:
                sol = newton_dual(x, base, totals, dist, bounds, penalty=pen if soft_targets else None, **kw,
                                  natural_at=at)
        w = base * sol.g
        return w, sol.converged, _max_error(sub, w, tolerance)

    if subset_solve != "soft":
        for with_aux in ([True, False] if use_aux else [False]):
            w, ok, err = solve(None, with_aux)
            if ok:
                return w, err, 0, int(use_aux and not with_aux)
        if subset_solve == "exact":  # the exact solve's last iterate; the caller checks the error
            return w, err, 0, int(use_aux)
        logger.info("subset of %d units: exact %s failed; soft solve (subset_solve=%r)", len(keep), dist.name, subset_solve)
    # the targets' soft penalties (a pass over the whole design: only where a soft solve is needed)
    with np.errstate(divide="ignore", over="ignore"):  # a total of 1e-177: its penalty is infinite (held exactly)
        soft_pen = base.sum() / (tolerance / 3 * soft_units(design, design.d)) ** 2
    if use_aux:  # the auxiliaries too, if the targets stay within the tolerance
        w, _, err = solve(soft_pen, True)
        if err <= tolerance:
            return w, err, 1, 0
    w, _, err = solve(soft_pen, False)
    return w, err, 1, int(use_aux)


def inclusion_probabilities(d: np.ndarray, k: float) -> np.ndarray:
    """Probabilities proportional to ``d`` summing to ``k``, capped at 1 (capped units are certain).

    Examples
    --------
    >>> inclusion_probabilities(np.array([10.0, 1.0, 1.0]), 2).tolist()
    [1.0, 0.5, 0.5]
    """
    d = np.asarray(d, dtype=np.float64)
    pi = np.zeros_like(d)
    free = d > 0
    certain = np.zeros_like(free)
    for _ in range(100):
        rest = k - certain.sum()
        if rest <= 0 or not free.any():
            break
        pi[free] = rest * d[free] / d[free].sum()
        over = free & (pi >= 1.0)
        if not over.any():
            break
        certain |= over
        free &= ~over
    pi[certain] = 1.0
    return pi


def _balanced_order(x: sp.csr_matrix, rng: np.random.Generator, extra: Sequence[np.ndarray] = ()) -> np.ndarray:
    """Units sorted by their target cells (row entries in order), then by ``extra`` keys (stratifying
    columns), then by their values, ties at random.

    Systematic rounding along this order is implicit stratification: every cell, and within a cell
    every range of the stratifying columns, keeps its share of the sample.
    """
    n = x.shape[0]
    nnz = np.diff(x.indptr)
    kmax = int(min(nnz.max(initial=0), 4))
    starts = x.indptr[:-1]
    idx_keys, val_keys = [], []
    for a in range(kmax):
        has = nnz > a
        key = np.full(n, -1, dtype=np.int64)
        key[has] = x.indices[starts[has] + a]
        idx_keys.append(key)
        val = np.zeros(n)
        val[has] = x.data[starts[has] + a]
        if np.ptp(val) > 0:
            val_keys.append(val)
    keys = [rng.random(n), *reversed(val_keys), *reversed(list(extra)), *reversed(idx_keys)]
    return np.lexsort(keys)  # the last key is the primary one


def _stratifiers(candidates: pd.DataFrame, design: Design, columns: Sequence[str]) -> list[np.ndarray]:
    """One per-unit sort key from stratifying columns: the first principal component of their ranks.

    Units take their first record's values; categories (and booleans, complex numbers) are ranked by
    frequency; missing values rank in the middle. A column of unhashable values (lists, dicts) is refused
    (:class:`DataValidationError` naming it).
    """
    first = np.full(len(design.d), len(candidates), dtype=np.int64)
    np.minimum.at(first, design.record_unit, np.arange(len(candidates)))
    cols = []
    for col in columns:
        s = candidates[col].iloc[first]
        if _is_number(s):
            v = s.to_numpy(dtype=np.float64)
        else:  # categories ordered by frequency
            distinct_values(s, col, "ordered: drop it from stratify (stratify='auto' uses every untargeted column)")
            codes, uniq = pd.factorize(s)
            freq = np.bincount(codes[codes >= 0], minlength=len(uniq)).astype(np.float64)
            v = np.where(codes >= 0, np.argsort(np.argsort(-freq))[np.maximum(codes, 0)], np.nan).astype(np.float64)
        r = pd.Series(v).rank(pct=True).to_numpy()
        cols.append(np.where(np.isnan(r), 0.5, r))
    if not cols:
        return []
    z = np.column_stack(cols)
    z = z - z.mean(0)
    sd = z.std(0)
    z = z[:, sd > 0] / sd[sd > 0]
    if z.shape[1] == 0:
        return []
    _, _, vt = np.linalg.svd(z[:: max(1, len(z) // 20000)], full_matrices=False)
    return [z @ vt[0]]


def _systematic(pi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Systematic sampling with probabilities ``pi`` (in the given order): a boolean mask."""
    cum = np.cumsum(pi) - rng.random()
    hit = np.floor(cum)
    prev = np.concatenate([[-1.0], hit[:-1]])
    return hit > prev


def _untargeted_columns(candidates: pd.DataFrame, targets: Targets, weight_col: str, household_col: str | None) -> list[str]:
    """Columns no target uses (nor the weight and household id): what a subset should keep."""
    used = {weight_col, household_col}
    for t in targets:
        used.update(t.filters)
        used.add(t.variable)
    return [c for c in candidates.columns if c not in used]


def default_holdout(
    candidates: pd.DataFrame,
    targets: Targets,
    weight_col: str,
    household_col: str | None = None,
    *,
    max_categories: int = 20,
) -> Targets:
    """Held-out targets: margins of every column the targets do not use, at their initial-weight values.

    Categorical columns (at most ``max_categories`` values) give one count per category; numeric columns
    give counts per weighted decile. Columns with missing values are skipped, as are columns no target can
    filter on: a name that is not a non-empty str, complex numbers, unhashable values (lists, dicts) or
    values a filter does not take (bytes, periods).
    """
    used = {weight_col, household_col}
    for t in targets:
        used.update(t.filters)
        used.add(t.variable)
    w = candidates[weight_col].to_numpy(dtype=np.float64)
    out: list[Target] = []
    for col in candidates.columns:
        if col in used or not isinstance(col, str) or not col:
            continue
        s = candidates[col]
        if pd.api.types.is_complex_dtype(s) or s.isna().any():
            continue
        try:
            values = s.unique()
        except TypeError:  # unhashable values (lists, dicts): no margins
            continue
        if len(values) <= max_categories:
            sums = pd.Series(w).groupby(s.to_numpy()).sum()
            try:
                out.extend([Target(v, filters={col: k}, name=f"holdout[{col} == {k!r}]") for k, v in sums.items()])
            except DataValidationError:  # values a filter does not take (bytes, periods): no margins
                continue
        elif _is_number(s):
            v = s.to_numpy(dtype=np.float64)
            order = np.argsort(v, kind="stable")
            cw = np.cumsum(w[order]) / w.sum()
            edges = np.unique(v[order][np.searchsorted(cw, np.linspace(0.1, 0.9, 9))])
            edges = np.concatenate([[-math.inf], edges, [math.inf]])
            for lo, hi in zip(edges[:-1], edges[1:]):
                mask = (v >= lo) & (v < hi)
                if mask.any():
                    iv = pd.Interval(lo, hi, closed="left")
                    out.append(Target(float(w[mask].sum()), filters={col: iv}, name=f"holdout[{col} in {iv}]"))
    return Targets(out)


