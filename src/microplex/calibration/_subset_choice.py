"""Which records a sparse subset keeps, chosen with the auxiliary totals in the objective.

Among the many subsets whose weights meet the official targets, :class:`~microplex.calibration.SparseCalibrator`
prefers one whose weights also fit the auxiliary totals of the full population
(:mod:`microplex.calibration.auxiliary`). The linear program of :func:`auxiliary_vertex` keeps the targets
within the tolerance band, pays the L1 miss of every auxiliary total (``sum_j |a_j' w - t_j|``, in units of
the population) and caps every weight at ``cap`` times its Horvitz-Thompson weight ``d_i / pi_i`` of a
``K``-record sample: with ``cap`` near 1 most records sit at the cap, so the subset keeps a sample's
proportional allocation (many records where the population is), and the records the program picks are
those whose weights balance the auxiliaries (the linear-programming relaxation of balanced sampling);
larger caps let fewer records carry more weight. A vertex has at most one record strictly between 0 and
its cap per constraint, so its support is about ``K / cap`` records plus the constraints it meets exactly.

:func:`auxiliary_subset` turns a vertex into ``K`` records: its whole support and a balanced fill when the
support fits the budget; otherwise a vertex of the targets alone whose cost favours the records the
auxiliary vertex weighted most (so that the targets stay reachable), completed with the auxiliary vertex's
heaviest records. The caller calibrates the subset and keeps, over a few caps, the calibrated subset with
the smallest auxiliary miss (an internal criterion: no held-out total is used). Where no calibration of the
``K`` records meets the targets (exact raking can need weights of zero that it cannot give), the program
of :func:`auxiliary_vertex` over those ``K`` records alone weights them instead: the targets within the
tolerance, the least auxiliary miss, on up to all ``K`` records rather than the targets' vertex's few.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from microplex._errors import ConvergenceError

from .design import Design
from .feasibility import band, band_constraint, lp_vertex, mean_floors, with_mean_floor
from .subsets import _max_error, inclusion_probabilities

__all__ = ["AUXILIARY_CAPS", "auxiliary_l1", "auxiliary_subset", "auxiliary_vertex", "best_auxiliary_subset"]

#: Above this many units, the programs run on a balanced pool of ``max(POOL_PER_RECORD * K, MAX_LP_UNITS)``
#: units (Horvitz-Thompson weights), so that their size follows the budget, not the candidates.
MAX_LP_UNITS = 50_000
POOL_PER_RECORD = 20

#: Caps on a kept record's weight, in Horvitz-Thompson weights of a ``K``-record sample, that are tried
#: (``inf``: uncapped, the sparsest fit of the auxiliaries).
AUXILIARY_CAPS = (1.0, 1.5, 2.0, 3.0, math.inf)
#: Auxiliary misses within this relative distance are a tie, which the first cap takes: subsets of alike records
#: (the same values, other initial weights) miss alike up to the last bits of the sums, and those bits moved with
#: the unit of a summed variable (values times 2 kept record 21 for record 27 of a nightly property's frame).
L1_TIE_RTOL = 1e-9


def auxiliary_l1(x_aux: sp.csr_matrix, totals: np.ndarray, w: np.ndarray, population: float) -> float:
    """L1 miss of the auxiliary totals over the population, ``sum_j |a_j - t_j| / N``: about twice the share of the
    population ``w`` places in the wrong cells of each auxiliary column, summed over the columns (it can exceed 1)."""
    return float(np.abs(x_aux.T @ w - totals).sum() / population)


def auxiliary_vertex(
    design: Design,
    x_aux: sp.csr_matrix,
    totals: np.ndarray,
    tol: float,
    upper: np.ndarray | None = None,
    jitter: np.ndarray | None = None,
) -> np.ndarray:
    """Non-negative weights (at most ``upper``) meeting the targets within ``tol`` that minimize the L1 miss of
    the auxiliary totals, a vertex of a linear program solved by HiGHS (weights below ``1e-9 d_i`` are 0).

    The objective is ``sum_j |x_aux_j' w - totals_j| + 1e-3 sum_i c_i w_i / d_i`` (the small second term
    picks, among equal fits, the vertex with the least weight over the initial weights; ``c_i = jitter``,
    default 1, breaks ties between alike records), divided by the mean initial weight (costs of order one
    record, well above HiGHS's optimality tolerances).

    Raises
    ------
    ConvergenceError
        When HiGHS finds no such weights (the caps are too tight for the targets).
    """
    n, m_a = len(design.d), x_aux.shape[1]
    eye = sp.identity(m_a, format="csr")
    c = 1e-3 / design.d if jitter is None else 1e-3 * jitter / design.d
    cost = np.concatenate([c, np.ones(2 * m_a)]) / design.d.mean()  # per record: above HiGHS's tolerances
    ub = np.concatenate([np.full(n, np.inf) if upper is None else upper, np.full(2 * m_a, np.inf)])
    rows = band_constraint(design, band(design, tol) * (1 - 1e-6))  # a mean within tol of its value
    aux_rows = sp.hstack([sp.csr_matrix(x_aux.T), eye, -eye])  # the auxiliary totals and their misses, every level
    for floor in mean_floors(design):  # a mean's records keep weight where the targets allow (MEAN_FLOORS)
        a, lo, hi = with_mean_floor(design, *rows, floor)
        m = sp.vstack([sp.hstack([a, sp.csr_matrix((a.shape[0], 2 * m_a))]), aux_rows], format="csr")
        cons = LinearConstraint(m, np.concatenate([lo, totals]), np.concatenate([hi, totals]))
        res = milp(cost, constraints=cons, bounds=Bounds(0.0, ub), options={"presolve": True})
        if res.status == 0 and res.x is not None:
            break
    else:
        raise ConvergenceError(f"The auxiliary linear program found no weights meeting the targets (HiGHS: {res.message}).")
    w = res.x[:n]
    return np.where(w > 1e-9 * design.d, w, 0.0)


def auxiliary_subset(
    design: Design, x_aux: sp.csr_matrix, totals: np.ndarray, tol: float, k: int, cap: float,
    jitter: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The records of a ``k``-record subset chosen by :func:`auxiliary_vertex` (with ``jitter``) with weights
    capped at ``cap`` Horvitz-Thompson weights.

    Returns
    -------
    core : ndarray of bool
        Records chosen by the program: its support when that fits ``k`` (the caller fills the rest by
        balanced sampling), else exactly ``k`` records (fewer only if the vertex has fewer non-zeros).
    vertex : ndarray or None
        Weights of a vertex of the targets alone on ``core`` when the support did not fit (they meet the
        targets within ``tol``: the last fallback where neither a calibration of the subset nor the
        program over it does); None otherwise.
    """
    upper = None
    if math.isfinite(cap):
        upper = cap * design.d / np.maximum(inclusion_probabilities(design.d, k), 1e-12)
    w = auxiliary_vertex(design, x_aux, totals, tol, upper, jitter)
    if int((w > 0).sum()) <= k:
        return w > 0, None
    ratio = w / design.d
    vertex = lp_vertex(design, tol, 1.0 / (ratio + 1e-3) / design.d)  # the targets, through the heaviest records
    core = vertex > 0
    if core.sum() > k:  # the targets need more records than the budget: the caller's own path says so
        return core, vertex
    rest = np.where(core, -1.0, ratio)
    add = np.argsort(-rest, kind="stable")[: k - int(core.sum())]
    core[add[rest[add] > 0]] = True
    return core, vertex


def _program_weights(design: Design, keep: np.ndarray, x_aux: sp.csr_matrix, t_aux: np.ndarray, tol: float,
                     jitter: np.ndarray | None) -> np.ndarray | None:
    """Weights of the records ``keep`` (a boolean mask) from :func:`auxiliary_vertex` on them alone: the
    targets within ``tol``, the least L1 miss of the auxiliaries (None where the program finds none). The
    fallback where no calibration of the records meets the targets: they hold a vertex that meets them
    (the targets' vertex, or the auxiliary program's support), so the program is feasible and its miss is
    at most that vertex's, while its support may use every kept record instead of the vertex's few."""
    if not keep.any():  # no record to weigh (a vertex of no record: targets of 0); HiGHS refuses an empty program
        return None
    try:
        w_keep = auxiliary_vertex(_pool_design(design, keep), x_aux[keep], t_aux, tol, None,
                                  None if jitter is None else jitter[keep])
    except ConvergenceError:
        return None
    w = np.zeros(len(design.d))
    w[keep] = w_keep
    return w


def _pool_design(design: Design, pool: np.ndarray) -> Design:
    """The design restricted to the units ``pool`` (a boolean mask), their initial weights expanded by the
    inverse of their inclusion probabilities in a sample of ``pool.sum()`` units."""
    pi = inclusion_probabilities(design.d, int(pool.sum()))
    idx = np.flatnonzero(pool)
    return Design(design.x[idx], design.totals, design.d[idx] / np.maximum(pi[idx], 1e-12), design.units[idx],
                  np.arange(len(idx)), design.targets, design.mean_count[idx], design.unit)


def best_auxiliary_subset(
    design: Design,
    aux: tuple[sp.csr_matrix, np.ndarray],
    tol: float,
    k: int,
    attempt: Callable[[np.ndarray, int], tuple[np.ndarray, float, bool, bool]],
    pool: Callable[[int], np.ndarray] | None = None,
    jitter: np.ndarray | None = None,
) -> tuple[tuple[np.ndarray, float, float, float, bool] | None, list[dict[str, Any]]]:
    """Over :data:`AUXILIARY_CAPS`, the ``k``-record subset of :func:`auxiliary_subset` calibrated by
    ``attempt(core, k) -> (weights, max target error, auxiliaries converged, soft solve)``; keeps the one
    within ``tol`` with the smallest :func:`auxiliary_l1` (misses within :data:`L1_TIE_RTOL` of each other a tie,
    kept by the first cap), preferring subsets whose targets were met by an exact solve over soft solves and
    linear-programming weights.

    Returns
    -------
    best : (weights, max target error, auxiliary miss, cap, auxiliaries converged) or None
        None when no cap gives a subset within ``tol`` (the caller's own path then decides, or raises).
    tries : list of dict
        One per cap: ``cap``, ``kept``, ``max_rel_error``, ``auxiliary_l1``, ``auxiliary_converged``,
        ``exact``, ``weights`` (``"calibration"``; ``"program"``, the auxiliary program over the ``k``
        records, where no calibration of them met ``tol``; ``"vertex"``, the targets' vertex, where
        neither did) and ``program_tolerance``: ``tol``, or ``tol / 2`` where no calibration of the records
        the program chose at ``tol`` met it, and those it chose at half of it were calibrated within ``tol``
        (a program that spends the whole tolerance may choose records that no calibration fits) (or
        ``error`` where the program found no weights, or the targets need more than ``k`` records).
        With more than :data:`MAX_LP_UNITS` units, the programs see only the units ``pool(size)`` (a
        boolean mask of a balanced sample of that size). ``jitter`` (per unit, in [1, 2)) breaks ties
        between alike records in the programs (:func:`auxiliary_vertex`): the seed's part in the choice.
    """
    x_aux, t_aux = aux
    n = len(design.d)
    population = float(design.d.sum())
    size = max(POOL_PER_RECORD * k, MAX_LP_UNITS)
    in_pool = pool(size) if pool is not None and n > size else np.ones(n, dtype=bool)
    lp_design = design if in_pool.all() else _pool_design(design, in_pool)
    best, tries = None, []
    def choose(cap: float, program_tol: float) -> tuple[np.ndarray, np.ndarray | None]:
        core_p, vertex_p = auxiliary_subset(lp_design, x_aux[in_pool], t_aux, program_tol, k, cap,
                                            None if jitter is None else jitter[in_pool])
        core, vertex = np.zeros(n, dtype=bool), None
        core[in_pool] = core_p
        if vertex_p is not None:
            vertex = np.zeros(n)
            vertex[in_pool] = vertex_p
        return core, vertex

    for cap in AUXILIARY_CAPS:
        try:
            core, vertex = choose(cap, tol)
        except ConvergenceError as exc:
            tries.append({"cap": cap, "error": str(exc)})
            continue
        if core.sum() > k:
            tries.append({"cap": cap, "error": f"the targets need {int(core.sum())} records, more than {k}"})
            continue
        w, err, converged, soft = attempt(core, k)
        source = "calibration"
        slack = False
        if err > tol:  # the program may have spent the whole tolerance on records that no calibration fits:
            try:       # chosen again with half of it, so that their calibration has room
                core_h, vertex_h = choose(cap, tol / 2)
            except ConvergenceError:
                core_h = None
            if core_h is not None and core_h.sum() <= k:
                w_h, err_h, converged_h, soft_h = attempt(core_h, k)
                if err_h <= tol:
                    core, vertex, slack = core_h, vertex_h, True
                    w, err, converged, soft = w_h, err_h, converged_h, soft_h
        if err > tol:  # no calibration of the k records meets the targets
            w_lp = _program_weights(design, core, x_aux, t_aux, tol, jitter)
            # the program over the k records, else the targets' vertex alone
            for name, fallback in (("program", w_lp), ("vertex", vertex)):
                fallback_err = math.inf if fallback is None else _max_error(design, fallback, tol)
                if fallback_err < err:
                    w, err, converged, soft, source = fallback, fallback_err, False, True, name
                    break
        l1 = auxiliary_l1(x_aux, t_aux, w, population)
        tries.append({"cap": cap, "kept": int((w > 0).sum()), "max_rel_error": err, "auxiliary_l1": l1,
                      "auxiliary_converged": converged, "exact": not soft, "weights": source,
                      "program_tolerance": tol / 2 if slack else tol})
        if err <= tol and (best is None or soft < best[5]
                           or (soft == best[5] and l1 < best[2] - L1_TIE_RTOL * abs(best[2]))):
            best = (w, err, l1, cap, converged, soft)
    return (best[:5] if best is not None else None), tries
