"""Refining a sparse subset by swaps: kept records traded for alike candidates while the auxiliary miss falls.

A sparse subset is chosen by linear programs (:mod:`microplex.calibration._subset_choice`) whose relaxation
says little about which of several alike records should stand for a target cell when only one or two
records do. :func:`refine_subset` improves the choice directly: one kept unit at a time, it tries the
candidates *alike* to it (the same count-target cells with the same counts, so that every count target
keeps its achieved value) in its place at the same weight, and keeps the candidate that lowers the
objective the most:

``J(w) = sum_c |a_c' w - t_c| + sum_k p_k |x_k' w - T_k|``

over the objective cells ``c`` (auxiliary totals of the full population: the population placed in the
wrong cells), and over the targets ``k`` a swap can move (sums and means):
``p_k = penalty D / (tol |T_k|)`` (``D``: the mean kept weight; ``|T_k|`` the target's size,
:func:`~microplex.calibration.design.miss_units`), so missing such a target by the tolerance
costs ``penalty`` kept records' worth of misplaced population. Sweeps repeat until none moves a unit. The
caller calibrates the refined subset again (the targets exactly) and keeps it only where it meets the
tolerance with a smaller miss. :class:`~microplex.calibration.SparseCalibrator` passes the cells scaled by
:func:`relative_cells` (half of each miss relative to its cell's size) and runs the refinement at each penalty of
:data:`REFINE_PENALTIES` in turn.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .auxiliary import row_codes
from .design import Design, miss_units

__all__ = ["REFINE_PENALTIES", "alike_groups", "refine_subset", "relative_cells"]

#: Candidates tried in one unit's place (a random sample of the alike candidates when there are more).
MAX_CANDIDATES = 256
#: Sweeps over the kept units at most.
MAX_SWEEPS = 20
#: The penalties of the targets a swap moves, tried in turn by :class:`~microplex.calibration.SparseCalibrator`'s
#: refinement, each from the best subset so far: a high penalty keeps swaps to records of nearly the same value
#: (where a few records carry a sum, no swap moves at all), a low one lets the swaps move the sums further than the
#: recalibration can bring back; the subset with the smallest objective that calibrates within the tolerance is kept.
REFINE_PENALTIES = (2.0, 1.0, 0.5, 0.25)


def _count_columns(design: Design) -> np.ndarray:
    """Columns of count targets (their values cannot change when a unit is swapped for an alike one)."""
    return np.array([t.aggregate == "count" for t in design.targets], dtype=bool)


def alike_groups(design: Design) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Units grouped by their count-target contributions (the same targets with the same counts).

    Returns
    -------
    order : ndarray
        Units sorted by group.
    starts : ndarray
        ``order[starts[g]:starts[g + 1]]`` are the units of group ``g``.
    codes : ndarray
        The group of every unit.
    """
    codes = row_codes(design.x[:, np.flatnonzero(_count_columns(design))], values=True)
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(int(codes.max(initial=-1)) + 2))
    return order, starts, codes


def relative_cells(x_obj: sp.spmatrix, t_obj: np.ndarray, big_d: float) -> tuple[sp.csr_matrix, np.ndarray]:
    """The objective cells scaled by ``(1 + D / max(|t_j|, D)) / 2``: in ``J`` half of a cell's miss counts as
    population misplaced, half relative to the cell's size in kept records' worth (``D``, the mean kept weight; a
    cell smaller than one kept record as that record).

    An absolute ``J`` alone (population misplaced) lets a record that must stand alone for a small target cell
    land in the cell's rarest values (a miss of a few persons), which reads as a relative error many times 1 in
    that small area; relative misses alone let the large cells drift (the national and regional margins). Half
    each keeps both readings of a held-out table: the population it misplaces and the mean relative error of
    its cells.

    Examples
    --------
    >>> x, t = relative_cells(sp.csr_matrix(np.eye(3)), np.array([1.0, 10.0, 40.0]), 10.0)
    >>> t.tolist(), x.diagonal().tolist()
    ([1.0, 10.0, 25.0], [1.0, 1.0, 0.625])
    """
    if big_d <= 0 or not np.isfinite(big_d):
        raise ValueError(f"relative_cells needs a positive mean kept weight, got {big_d!r}")
    s_j = 0.5 * (1.0 + big_d / np.maximum(np.abs(np.asarray(t_obj, dtype=np.float64)), big_d))
    return sp.csr_matrix(sp.csr_matrix(x_obj) @ sp.diags(s_j)), t_obj * s_j


def _gather(m: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The entries of ``m``'s ``rows``: (position in ``rows``, column, value)."""
    starts, ends = m.indptr[rows], m.indptr[rows + 1]
    lens = ends - starts
    which = np.repeat(np.arange(len(rows)), lens)
    at = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens) + np.repeat(starts, lens)
    return which, m.indices[at], m.data[at]


def refine_subset(
    design: Design,
    w: np.ndarray,
    x_obj: sp.csr_matrix,
    t_obj: np.ndarray,
    tol: float,
    rng: np.random.Generator,
    *,
    penalty: float = 2.0,
    max_sweeps: int = MAX_SWEEPS,
    max_candidates: int = MAX_CANDIDATES,
) -> tuple[np.ndarray, int, float, float]:
    """Swaps kept units (``w > 0``) for alike candidates at the same weight while the objective ``J`` (module
    docstring) falls.

    Parameters
    ----------
    design : Design
        The targets' design (all candidate units).
    w : ndarray
        Weights of the subset (zero for units not kept).
    x_obj, t_obj : csr_matrix of shape (n_units, m), ndarray of shape (m,)
        The objective cells (unit rows of every candidate) and their full-population totals.
    tol : float
        The targets' relative tolerance (scales the penalty of the targets a swap can move).
    rng : numpy.random.Generator
        The order of the units in a sweep and the candidates tried where there are more than
        ``max_candidates``.

    Returns
    -------
    weights, swaps, objective before, objective after
    """
    w = np.asarray(w, dtype=np.float64).copy()
    kept = w > 0
    k = int(kept.sum())
    if k == 0 or x_obj.shape[1] == 0:
        return w, 0, 0.0, 0.0
    big_d = float(w.sum()) / k
    x_obj = sp.csr_matrix(x_obj)
    free = np.flatnonzero(~_count_columns(design))
    x_t = sp.csr_matrix(design.x[:, free])
    # a miss measured against the target's size (design.miss_units at the subset's weights: a mean's count times
    # its value; a sum of 0 against a thousandth of its records' size, where it went unweighed)
    den = miss_units(design, w)[free]
    p = penalty * big_d / (tol * np.maximum(den, 1e-300))
    r_a = np.asarray(x_obj.T @ w).ravel() - t_obj
    r_t = np.asarray(x_t.T @ w).ravel() - design.totals[free]

    def cost() -> float:
        return float(np.abs(r_a).sum() + (p * np.abs(r_t)).sum())

    before = cost()
    order, starts, codes = alike_groups(design)
    swaps = 0
    eps = 1e-9 * big_d
    for _ in range(max_sweeps):
        moved = 0
        for i in rng.permutation(np.flatnonzero(kept)):
            g = codes[i]
            members = order[starts[g]:starts[g + 1]]
            cand = members[~kept[members]]
            if len(cand) == 0:
                continue
            if len(cand) > max_candidates:
                cand = rng.choice(cand, max_candidates, replace=False)
            wi = w[i]
            change = np.zeros(len(cand))
            removal = 0.0
            for m, r, sc in ((x_obj, r_a, None), (x_t, r_t, p)):
                if m.shape[1] == 0:
                    continue
                _, ci, vi = _gather(m, np.array([i]))
                old_i = r[ci].copy()
                r[ci] -= wi * vi  # i out
                gain = np.abs(r[ci]) - np.abs(old_i)
                removal += float((gain if sc is None else sc[ci] * gain).sum())
                which, cj, vj = _gather(m, cand)
                delta = np.abs(r[cj] + wi * vj) - np.abs(r[cj])
                if sc is not None:
                    delta *= sc[cj]
                change += np.bincount(which, weights=delta, minlength=len(cand))
                r[ci] = old_i  # back in, until a swap is chosen
            best = int(np.argmin(change))
            if removal + change[best] < -eps:
                j = int(cand[best])
                for m, r in ((x_obj, r_a), (x_t, r_t)):
                    if m.shape[1] == 0:
                        continue
                    _, ci, vi = _gather(m, np.array([i]))
                    r[ci] -= wi * vi
                    _, cj, vj = _gather(m, np.array([j]))
                    r[cj] += wi * vj
                w[j], w[i] = wi, 0.0
                kept[j], kept[i] = True, False
                moved += 1
        swaps += moved
        if moved == 0:
            break
    return w, swaps, before, cost()
