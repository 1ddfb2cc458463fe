"""The one Newton solver on the calibration dual, shared by every calibration front end.

Solves ``X' (d * F(X lambda)) + lambda / c = t`` for ``lambda`` (the ``lambda / c`` term only in soft
mode), where ``X`` is the sparse ``(n, m)`` design matrix, ``d`` the initial weights and ``F`` the
calibration distance's inverse. Each iteration costs two sparse mat-vecs and one sparse
``X' diag(d F') X`` product, then one ``(m, m)`` solve; a backtracking line search on the dual
objective (or on the squared misfit for distances without a potential) makes it globally convergent.

The convergence test is R survey's: ``|misfit_j| / (1 + |t_j|) < tol`` for every target ``j``, where
``1 + |t_j|`` is at least the target's rounding scale (:func:`~microplex._stats.misfit_denominator` given the
natural sizes ``sum_i d_i |x_ij|``): a miss that float64 rounding of the natural size leaves is met.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg

try:  # OpenBLAS threads spin on a busy machine; small dense solves are fastest on one thread
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

from .._stats import ROUNDING_SHARE, misfit_denominator
from .distances import Bounds, Distance
from .operator import DENSE_MAX, DesignOperator, MatrixOperator, Point

__all__ = ["SolverResult", "newton_dual", "solve_dual"]

logger = logging.getLogger(__name__)


@dataclass
class SolverResult:
    """Outcome of :func:`newton_dual`.

    Attributes
    ----------
    lam : ndarray of shape (m,)
        Dual solution (Lagrange multipliers).
    g : ndarray of shape (n,) or None
        Weight ratios ``F(X lambda)``; calibrated weights are ``d * g`` (None when the operator does not
        hold the records, e.g. a partitioned dataset: weights are then computed partition by partition).
    achieved : ndarray of shape (m,)
        ``X' (d * g)``.
    converged : bool
    n_iter : int
    max_misfit : float
        ``max_j |t_j - achieved_j| / (1 + |t_j|)`` at exit (soft mode: of the dual equations).
    history : list of float
        ``max_misfit`` after every iteration.
    seconds : float
    n_passes : int
        Evaluations of the operator (for a partitioned design: passes over the data).
    sizes : ndarray of shape (m,) or None
        ``|X|' |d * g|`` at exit where the operator gives it (:attr:`~microplex.calibration.operator.Point.sizes`:
        a partitioned design's), else None (from ``g``).
    """

    lam: np.ndarray
    g: np.ndarray | None
    achieved: np.ndarray
    converged: bool
    n_iter: int
    max_misfit: float
    history: list[float] = field(default_factory=list)
    seconds: float = 0.0
    n_passes: int = 0
    sizes: np.ndarray | None = None


def _solve(jac: sp.spmatrix | np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solves ``jac @ x = rhs`` for a PSD, possibly singular ``jac`` (Jacobi-scaled, tiny ridge)."""
    m = jac.shape[0]
    diag = np.asarray(jac.diagonal())
    pos = diag > 0
    scale = np.where(pos, 1.0 / np.sqrt(np.where(pos, diag, 1.0)), 1.0)
    b = rhs * scale
    ridge = 1e-11
    if isinstance(jac, np.ndarray) or m <= DENSE_MAX or jac.nnz > 0.2 * m * m:
        dense = jac if isinstance(jac, np.ndarray) else jac.toarray()
        dense = dense * scale[:, None] * scale[None, :]
        for _ in range(6):
            try:
                cf = scipy.linalg.cho_factor(dense + np.diag(np.where(pos, ridge, 1.0)), check_finite=False)
                return scipy.linalg.cho_solve(cf, b, check_finite=False) * scale
            except np.linalg.LinAlgError:
                ridge *= 100.0
        return scipy.linalg.lstsq(dense, b, check_finite=False)[0] * scale
    js = sp.diags(scale) @ jac @ sp.diags(scale)
    eye = sp.diags(np.where(pos, ridge, 1.0))
    # the Gram matrix is symmetric: a minimum-degree ordering of A' + A keeps the LU factors about as
    # sparse as the matrix (COLAMD, SuperLU's default, filled a 112,712-target tract problem with 242M
    # entries, 2.8 GB, against 2.0M here; benchmarks/results/scale_calibration.md)
    x = scipy.sparse.linalg.spsolve((js + eye).tocsc(), b, permc_spec="MMD_AT_PLUS_A")
    return np.asarray(x) * scale


def newton_dual(
    x: sp.spmatrix,
    d: np.ndarray,
    totals: np.ndarray,
    distance: Distance,
    bounds: Bounds = (-math.inf, math.inf),
    *,
    tol: float = 1e-10,
    max_iter: int = 50,
    penalty: np.ndarray | None = None,
    xt: sp.csr_matrix | None = None,
    lam0: np.ndarray | None = None,
    natural_at: np.ndarray | None = None,
) -> SolverResult:
    """Solves the calibration equations of an in-memory design by damped Newton iterations on the dual.

    Parameters
    ----------
    x : sparse matrix of shape (n, m)
        Design matrix: contribution of unit ``i`` to target ``j``.
    d : ndarray of shape (n,)
        Positive initial weights.
    totals : ndarray of shape (m,)
        Target totals ``t``.
    distance : Distance
        Calibration distance (see :mod:`microplex.calibration.distances`).
    bounds : (float, float), default=(-inf, inf)
        Bounds on the weight ratios ``g = w / d``.
    tol : float, default=1e-10
        Convergence when ``|t_j - achieved_j| / (1 + |t_j|) < tol`` for all ``j`` (``1 + |t_j|`` at least
        ``ROUNDING_SHARE / tol`` times the natural size ``sum_i d_i |x_ij|``: a total of 0 netting values of both
        signs is met to float64 rounding, :func:`~microplex._stats.rounding_scale`).
    max_iter : int, default=50
    penalty : ndarray of shape (m,), optional
        Soft mode: ``c_j > 0``; the primal objective adds ``sum_j c_j / 2 (achieved_j - t_j)^2``.
    xt : sparse matrix of shape (m, n), optional
        ``x.T`` in CSR form, if the caller already has it.
    lam0 : ndarray of shape (m,), optional
        Starting multipliers (default zeros).
    natural_at : ndarray of shape (m,), optional
        Per target, the factor of ``d`` at which its natural size (the rounding its misses are met within) is taken
        (default 1: at ``d``): a :class:`~microplex.calibration.Calibrator`'s counts and sums of 0 at the targets'
        scale (:attr:`~microplex.calibration.design.Design.zero_factor`), where its check judges them.

    Returns
    -------
    SolverResult
        Never raises on non-convergence: the caller decides (``converged`` is False).
    """
    # each target's natural size sum_i d_i |x_ij|: the misses within rounding of it are met
    xt_abs = abs(sp.csr_matrix(x).T) if xt is None else abs(xt)
    d = np.asarray(d, dtype=np.float64)
    natural = np.asarray(xt_abs @ d, dtype=np.float64).ravel()
    if natural_at is not None:
        natural = natural * np.asarray(natural_at, dtype=np.float64)
    res = _newton_dual(x, d, totals, distance, bounds, tol, max_iter, penalty, xt, lam0, natural)
    if penalty is not None or res.g is None:
        return res
    return on_final_sizes(
        res, totals, natural, tol, max_iter, lambda r: np.asarray(xt_abs @ np.abs(d * r.g), dtype=np.float64).ravel(),
        lambda r, sizes, n_iter: _newton_dual(x, d, totals, distance, bounds, tol, n_iter, penalty, xt, r.lam, sizes))


def on_final_sizes(res: SolverResult, totals: np.ndarray, natural: np.ndarray, tol: float, max_iter: int,
                   final: Callable[[SolverResult], np.ndarray],
                   resolve: Callable[[SolverResult, np.ndarray, int], SolverResult], *,
                   zero: bool = False) -> SolverResult:
    """A hard solve ``res`` held to the rounding of its final sizes: a total is computed at the size of the weights it
    sums, so where the solution ends below the initial weights' size ``natural`` (targets far below their initial
    totals) its misses are held to the rounding of the smaller size (``final(res)``: ``sum_i |d_i g_i x_ij|``; a
    target of 0 keeps its initial size, :func:`~microplex.calibration.feasibility.rounding_sizes`), solving on from
    its multipliers (``resolve(res, sizes, iterations left)``), up to three times (weights 1e10 times the targets'
    met a count 0.6% off at tol=1e-10, within the initial size's). The rule of :func:`newton_dual` and of the
    out-of-core :func:`~microplex.scale.rake_dataset`; ``res.achieved`` in the units of ``totals``. ``zero``: a
    target of 0 measured against :func:`~microplex._stats.zero_scale` of its size (``totals`` not rescaled so, as the
    out-of-core solve's; :func:`~microplex._stats.misfit_denominator`)."""
    totals = np.asarray(totals, dtype=np.float64)
    for _ in range(3):
        if not res.converged:
            break
        sizes = np.where(totals == 0, natural, np.minimum(natural, final(res)))
        if float(np.max(np.abs(totals - res.achieved) / misfit_denominator(totals, sizes, tol, zero=zero),
                        initial=0.0)) < tol:
            break
        natural = sizes
        more = resolve(res, natural, max(max_iter - res.n_iter, 1))
        more.n_iter += res.n_iter
        more.n_passes += res.n_passes
        more.seconds += res.seconds
        more.history = res.history + more.history
        res = more
    return res


def _newton_dual(x, d, totals, distance, bounds, tol, max_iter, penalty, xt, lam0, natural) -> SolverResult:  # type: ignore[no-untyped-def]
    """:func:`newton_dual` with the natural sizes its misses' rounding is measured against."""
    s = value_scale(x)
    if s is None:
        return solve_dual(
            MatrixOperator(x, d, xt), totals, distance, bounds, tol=tol, max_iter=max_iter, penalty=penalty, lam0=lam0,
            natural=natural,
        )
    # columns of huge or tiny values solved in scaled units: x s, t s, multipliers lam / s, penalties c / s^2; the
    # misfits stay those of the original units (the denominators scaled alike), so the answer is the same problem's
    t = np.asarray(totals, dtype=np.float64)
    res = solve_dual(
        MatrixOperator(sp.csr_matrix(x @ sp.diags(s)), d),
        t * s,
        distance,
        bounds,
        tol=tol,
        max_iter=max_iter,
        penalty=None if penalty is None else np.asarray(penalty, dtype=np.float64) / s / s,
        lam0=None if lam0 is None else np.asarray(lam0, dtype=np.float64) / s,
        denom=misfit_denominator(t, natural, tol) * s,
    )
    res.lam, res.achieved = res.lam * s, res.achieved / s
    return res


#: Columns whose largest value in size lies outside ``[2**-VALUE_EXP, 2**VALUE_EXP]`` are solved scaled.
VALUE_EXP = 160


def column_top(x: sp.spmatrix) -> np.ndarray:
    """Each column's largest value in size (0 for an empty column).

    Examples
    --------
    >>> column_top(sp.csr_matrix(np.array([[1.0, -3.0, 0.0], [2.0, 0.5, 0.0]]))).tolist()
    [2.0, 3.0, 0.0]
    """
    xr = x if sp.isspmatrix_csr(x) else sp.csr_matrix(x)
    top = np.zeros(xr.shape[1])
    np.maximum.at(top, xr.indices, np.abs(xr.data))
    return top


def value_scale(x: sp.spmatrix, low: int = -VALUE_EXP, high: int = VALUE_EXP) -> np.ndarray | None:
    """Per-column powers of two that bring each column's largest value in size into ``[0.5, 1)``, for columns
    beyond ``[2**low, 2**high]`` (default ``2**±VALUE_EXP``, about 1e48) only; ``None`` when no column is (the usual
    case, left untouched).

    The Gram matrix ``X' diag(w) X`` squares the values: sums over values of 1e155 overflowed to inf (the solve
    stopped with "try more iterations"), and values of 1e-170 underflowed to 0. Powers of two scale exactly.

    Examples
    --------
    >>> value_scale(sp.csr_matrix(np.array([[1.0, 3e200], [2.0, 0.0]]))).tolist()[0]
    1.0
    >>> value_scale(sp.csr_matrix(np.array([[1.0, 2.0]]))) is None
    True
    """
    xr = x if sp.isspmatrix_csr(x) else sp.csr_matrix(x)
    size = np.abs(xr.data)
    size = size[size > 0]
    if size.size == 0 or (size.max() < 2.0**high and size.min() >= 2.0**low):
        return None  # one pass over the values, no per-column work, in the usual case
    top = column_top(xr)
    _, e = np.frexp(top)
    out = (top > 0) & ((e > high) | (e < low))
    if not out.any():
        return None
    # a subnormal column's (below 2**-1022) power is held at 2**1023, the largest double (its values end above 2**-52)
    return np.where(out, np.ldexp(1.0, np.minimum(-e, 1023)), 1.0)


def solve_dual(
    op: DesignOperator,
    totals: np.ndarray,
    distance: Distance,
    bounds: Bounds = (-math.inf, math.inf),
    *,
    tol: float = 1e-10,
    max_iter: int = 50,
    penalty: np.ndarray | None = None,
    lam0: np.ndarray | None = None,
    first: Point | None = None,
    denom: np.ndarray | None = None,
    natural: np.ndarray | None = None,
) -> SolverResult:
    """:func:`newton_dual` on any design operator (in memory, collapsed, or summed over partitions).

    Each iteration asks ``op`` for the achieved totals and the Gram matrix at the current multipliers,
    solves one sparse ``(m, m)`` system, and backtracks on the dual objective; see
    :mod:`microplex.calibration.operator`. ``first``: the operator's point at ``lam0`` (or zeros), if the
    caller already evaluated it (saves one pass over a partitioned dataset). ``denom``: what each misfit is
    divided by, if not :func:`~microplex._stats.misfit_denominator` of ``totals`` (a scaled problem's);
    ``natural``: the targets' natural sizes ``sum_i d_i |x_ij|``, for its rounding scale (None: without).
    """
    if threadpool_limits is not None and len(totals) <= DENSE_MAX:
        with threadpool_limits(1, user_api="blas"):
            return _staged(op, totals, distance, bounds, tol, max_iter, penalty, lam0, first, denom, natural)
    return _staged(op, totals, distance, bounds, tol, max_iter, penalty, lam0, first, denom, natural)


#: A penalized (soft) solve with bounds starts with its penalties scaled down until none is more than ``STIFF``
#: times the curvature its target has at the start (``c_j G_jj``), but not below ``FIRST_STAGE`` of their own,
#: and raises them ``STAGE`` times per stage.
STIFF = 1.0
FIRST_STAGE = 1e-3
STAGE = 10.0
#: The misfit (of the scaled problem) each stage before the last is solved to: a warm start for the next.
STAGE_TOL = 1e-5


def _staged(op, totals, distance, bounds, tol, max_iter, penalty, lam0, first, denom, natural) -> SolverResult:  # type: ignore[no-untyped-def]
    """:func:`_newton`, through a continuation on the penalties for a penalized solve with bounds.

    Where a weight ratio reaches a bound, its record adds nothing to the dual's curvature (``F' = 0``, or
    nearly 0 near a logit bound), so once most records reach one (targets far from what the bounds allow)
    the Newton matrix is about the penalty's ``diag(1 / c)`` alone: a stiff penalty (``c_j G_jj`` of 1e4 to
    1e8 at the usual tolerances) makes a step ``c * misfit`` that overshoots by orders of magnitude, and the
    line search then crawls from kink to kink (soft fits within bounds took 50 to 300 iterations). Each
    stage's solution is close to the next one's, whose Newton steps stay short. The iterations of all stages
    count against ``max_iter``; the last stage is the problem asked.
    """
    if penalty is None or not _reaches_bounds(distance, bounds):
        return _newton(op, totals, distance, bounds, tol, max_iter, penalty, lam0, first, denom, natural)[0]
    c = np.asarray(penalty, dtype=np.float64)
    lam = np.zeros(len(c)) if lam0 is None else np.asarray(lam0, dtype=np.float64)
    start, passes = time.perf_counter(), 0
    if first is None:
        first, passes = op.at(lam, distance, bounds), 1
    curv = np.abs(np.asarray(first.gram().diagonal(), dtype=np.float64).ravel())
    held = np.isfinite(c) & (curv > 0)  # an infinite penalty (an exact target) is held as it is
    top = float(np.max(c[held] * curv[held])) if held.any() and first.finite else 0.0
    # stages: penalties x STAGE**-k, ..., STAGE**-1, then their own
    k = 0 if top <= STIFF else min(math.ceil(math.log(top / STIFF) / math.log(STAGE)), round(-math.log(FIRST_STAGE, STAGE)))
    history: list[float] = []
    n_iter = 0
    for stage in range(k, -1, -1):
        res, first = _newton(
            op, totals, distance, bounds, max(tol, STAGE_TOL) if stage else tol,
            max(max_iter - n_iter - 1, 0) if stage else max_iter - n_iter, c * STAGE**-stage if stage else c, lam,
            first, denom, natural,
        )
        n_iter, passes, lam = n_iter + res.n_iter, passes + res.n_passes, res.lam
        history += res.history if not history else res.history[1:]
        if stage:
            logger.debug("soft solve: penalties / %g in %d iterations, max rel misfit %.3e", STAGE**stage, res.n_iter,
                         res.max_misfit)
    res.n_iter, res.n_passes, res.history, res.seconds = n_iter, passes, history, time.perf_counter() - start
    return res


def _reaches_bounds(distance: Distance, bounds: Bounds) -> bool:
    """Whether the distance's ratios reach a bound (held there, ``F' = 0``): linear and logit within finite bounds,
    raking within a finite upper or a positive lower bound (its ratios never reach 0).

    Examples
    --------
    >>> from microplex.calibration.distances import raking
    >>> _reaches_bounds(raking, (0.0, math.inf)), _reaches_bounds(raking, (0.5, math.inf))
    (False, True)
    """
    if not (math.isfinite(bounds[0]) or math.isfinite(bounds[1])):
        return False
    with np.errstate(all="ignore"):
        ends = np.asarray(distance.inverse(np.array([-700.0, 700.0]), bounds), dtype=np.float64)
    return bool(ends[0] <= bounds[0] or ends[1] >= bounds[1])


def _newton(op, totals, distance, bounds, tol, max_iter, penalty, lam0, first, denom=None, natural=None) -> tuple[SolverResult, Point]:  # type: ignore[no-untyped-def]
    """The damped Newton iterations; returns the result and the operator's point at its multipliers."""
    start = time.perf_counter()
    t = np.asarray(totals, dtype=np.float64)
    m = t.shape[0]
    lam = np.zeros(m) if lam0 is None else np.asarray(lam0, dtype=np.float64).copy()
    inv_c = None if penalty is None else 1.0 / np.asarray(penalty, dtype=np.float64)
    denom = misfit_denominator(t, natural, tol) if denom is None else np.asarray(denom, dtype=np.float64)
    has_pot = distance.potential is not None
    n_eval = 0

    def evaluate(lam_: np.ndarray, pt: Point | None = None):  # type: ignore[no-untyped-def]
        nonlocal n_eval
        if pt is None:
            n_eval += 1
            pt = op.at(lam_, distance, bounds)
        resid = t - pt.achieved
        if inv_c is not None:
            resid = resid - lam_ * inv_c
        err_ = float(np.max(np.abs(resid) / denom)) if m else 0.0
        return pt, resid, err_

    def merit(lam_: np.ndarray, pt, resid_: np.ndarray) -> tuple[float, float]:  # type: ignore[no-untyped-def]
        """Dual objective (or half the squared relative misfit for distances without a potential), and the
        share of its terms' size that float64 rounding can leave on it."""
        if not has_pot:
            return 0.5 * float(np.sum((resid_ / denom) ** 2)), 0.0
        pot, lin = float(pt.potential()), float(lam_ @ t)
        val, size = float(pot - lin), abs(pot) + abs(lin)
        if inv_c is not None:
            pen = 0.5 * float(lam_ @ (lam_ * inv_c))
            val, size = val + pen, size + pen
        return val, ROUNDING_SHARE * size

    pt, resid, err = evaluate(lam, first)
    history = [err]
    n_iter = 0
    converged = bool(err < tol) and pt.finite
    while not converged and n_iter < max_iter:
        n_iter += 1
        jac = pt.gram()
        if inv_c is not None:
            jac = jac + (np.diag(inv_c) if isinstance(jac, np.ndarray) else sp.diags(inv_c))
        step = _solve(jac if isinstance(jac, np.ndarray) else sp.csr_matrix(jac), resid)
        slope = -float(step @ resid)  # directional derivative of the dual objective
        alpha, cur_merit = 1.0, None
        for _ in range(60):
            cand = evaluate(lam + alpha * step)
            if not cand[0].finite or not np.isfinite(cand[2]):
                alpha *= 0.5
                continue
            # a step that halves the misfit is taken where the dual objective does not rise beyond its rounding (near
            # the solution it cannot resolve the decrease): sure without the potential where the objective's slope
            # along the step is still <= 0 there (it is convex). Taking steps that raise it, a soft raking within
            # (0.9, 1.1) alternated between two points, misfits 3.8e-4 and 7.8e-4, whatever max_iter
            if cand[2] < 0.5 * err and (not has_pot or float(step @ cand[1]) >= 0.0):
                break
            if cur_merit is None:
                cur_merit, noise = merit(lam, pt, resid)
            new_merit = merit(lam + alpha * step, cand[0], cand[1])[0]
            if (has_pot and (new_merit <= cur_merit + 1e-4 * alpha * slope
                             or (cand[2] < 0.5 * err and new_merit <= cur_merit + noise))) or (
                not has_pot and new_merit <= (1 - 1e-4 * alpha) * cur_merit
            ):
                break
            alpha *= 0.5
        else:
            logger.debug("line search failed at iteration %d", n_iter)
            break
        lam = lam + alpha * step
        pt, resid, err = cand
        history.append(err)
        logger.debug("newton iter %d: step %.3g, max rel misfit %.3e", n_iter, alpha, err)
        converged = err < tol
    return SolverResult(
        lam=lam,
        g=pt.g,
        achieved=pt.achieved,
        converged=bool(converged),
        n_iter=n_iter,
        max_misfit=err,
        history=history,
        seconds=time.perf_counter() - start,
        n_passes=n_eval,
        sizes=pt.sizes,
    ), pt
