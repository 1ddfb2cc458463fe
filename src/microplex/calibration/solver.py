"""The one Newton solver on the calibration dual, shared by every calibration front end.

Solves ``X' (d * F(X lambda)) + lambda / c = t`` for ``lambda`` (the ``lambda / c`` term only in soft
mode), where ``X`` is the sparse ``(n, m)`` design matrix, ``d`` the initial weights and ``F`` the
calibration distance's inverse. Each iteration costs two sparse mat-vecs and one sparse
``X' diag(d F') X`` product, then one ``(m, m)`` solve; a backtracking line search on the dual
objective (or on the squared misfit for distances without a potential) makes it globally convergent.

The convergence test is R survey's: ``|misfit_j| / (1 + |t_j|) < tol`` for every target ``j``.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg

try:  # OpenBLAS threads spin on a busy machine; small dense solves are fastest on one thread
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

from .distances import Bounds, Distance

__all__ = ["SolverResult", "newton_dual"]

logger = logging.getLogger(__name__)

_DENSE_MAX = 1500


@dataclass
class SolverResult:
    """Outcome of :func:`newton_dual`.

    Attributes
    ----------
    lam : ndarray of shape (m,)
        Dual solution (Lagrange multipliers).
    g : ndarray of shape (n,)
        Weight ratios ``F(X lambda)``; calibrated weights are ``d * g``.
    achieved : ndarray of shape (m,)
        ``X' (d * g)``.
    converged : bool
    n_iter : int
    max_misfit : float
        ``max_j |t_j - achieved_j| / (1 + |t_j|)`` at exit (soft mode: of the dual equations).
    history : list of float
        ``max_misfit`` after every iteration.
    seconds : float
    """

    lam: np.ndarray
    g: np.ndarray
    achieved: np.ndarray
    converged: bool
    n_iter: int
    max_misfit: float
    history: list[float] = field(default_factory=list)
    seconds: float = 0.0


def _solve(jac: sp.spmatrix | np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solves ``jac @ x = rhs`` for a PSD, possibly singular ``jac`` (Jacobi-scaled, tiny ridge)."""
    m = jac.shape[0]
    diag = np.asarray(jac.diagonal())
    pos = diag > 0
    scale = np.where(pos, 1.0 / np.sqrt(np.where(pos, diag, 1.0)), 1.0)
    b = rhs * scale
    ridge = 1e-11
    if isinstance(jac, np.ndarray) or m <= _DENSE_MAX or jac.nnz > 0.2 * m * m:
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
    x = scipy.sparse.linalg.spsolve((js + eye).tocsc(), b)
    return np.asarray(x) * scale


class _Gram:
    """Computes the Jacobian ``X' diag(s) X`` for a fixed CSR ``X``, once per Newton iteration.

    When rows are short (at most 8 entries, the usual case: one entry per margin), the sparsity pattern
    of the product is found once; each iteration then costs one ``bincount`` per row position (diagonal)
    and per pair of row positions (off-diagonal), O(nnz) with no sparse-sparse product. Otherwise it
    is the general ``X' @ (diag(s) X)``.
    """

    def __init__(self, x: sp.csr_matrix, xt: sp.csr_matrix | None) -> None:
        self.x, self._xt = x, xt
        n, m = x.shape
        self.m = m
        nnz_row = np.diff(x.indptr)
        kmax = int(nnz_row.max()) if n else 0
        self.slots_ok = 0 < kmax <= 8
        if not self.slots_ok:
            return
        self.starts = x.indptr[:-1].astype(np.int64)
        self.rows = [None if (nnz_row > a).all() else np.flatnonzero(nnz_row > a) for a in range(kmax)]
        ones = bool(np.all(x.data == 1.0))
        self.ones = ones
        codes_l, meta = [], []
        for b in range(kmax):
            st = self.starts if self.rows[b] is None else self.starts[self.rows[b]]
            cb = x.indices[st + b].astype(np.int64)
            for a in range(b):
                ca = x.indices[st + a].astype(np.int64)
                codes_l.append(np.minimum(ca, cb) * m + np.maximum(ca, cb))
                meta.append((b, None if ones else x.data[st + a] * x.data[st + b]))
        self.pairs: list[tuple[np.ndarray | None, np.ndarray, np.ndarray | None]] = []
        if codes_l:
            sizes = [len(c) for c in codes_l]
            inv, uniq = pd.factorize(np.concatenate(codes_l), sort=True)
            del codes_l
            inv = inv.astype(np.int32 if len(uniq) < 2**31 else np.int64)
            for (b, vals), lo, hi in zip(meta, np.cumsum([0, *sizes[:-1]]), np.cumsum(sizes)):
                self.pairs.append((self.rows[b], inv[lo:hi], vals))
            uniq = np.asarray(uniq, dtype=np.int64)
            self.off_r, self.off_c = uniq // m, uniq % m
        else:
            self.off_r = self.off_c = np.zeros(0, dtype=np.int64)
        self.dense = m <= _DENSE_MAX

    @property
    def xt(self) -> sp.csr_matrix:
        if self._xt is None:
            self._xt = sp.csr_matrix(self.x.T)
        return self._xt

    def __call__(self, s: np.ndarray) -> sp.spmatrix | np.ndarray:
        if not self.slots_ok:
            return self.xt @ _row_scale(self.x, s)
        m, ind, dat = self.m, self.x.indices, self.x.data
        diag = np.zeros(m)
        for a, rows in enumerate(self.rows):
            pa = (self.starts if rows is None else self.starts[rows]) + a
            sa = s if rows is None else s[rows]
            diag += np.bincount(ind[pa], weights=sa if self.ones else sa * dat[pa] ** 2, minlength=m)
        off = np.zeros(len(self.off_r))
        for rows, inv, vals in self.pairs:
            sa = s if rows is None else s[rows]
            off += np.bincount(inv, weights=sa if vals is None else sa * vals, minlength=len(off))
        if self.dense:
            jac = np.zeros((m, m))
            jac[self.off_r, self.off_c] = off
            jac += jac.T
            jac[np.diag_indices(m)] += diag
            return jac
        ar = np.arange(m)
        return sp.csr_matrix(
            (
                np.concatenate([off, off, diag]),
                (np.concatenate([self.off_r, self.off_c, ar]), np.concatenate([self.off_c, self.off_r, ar])),
            ),
            shape=(m, m),
        )


def newton_dual(
    x: sp.csr_matrix,
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
) -> SolverResult:
    """Solves the calibration equations by damped Newton iterations on the dual.

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
        Convergence when ``|t_j - achieved_j| / (1 + |t_j|) < tol`` for all ``j``.
    max_iter : int, default=50
    penalty : ndarray of shape (m,), optional
        Soft mode: ``c_j > 0``; the primal objective adds ``sum_j c_j / 2 (achieved_j - t_j)^2``.
    xt : sparse matrix of shape (m, n), optional
        ``x.T`` in CSR form, if the caller already has it.
    lam0 : ndarray of shape (m,), optional
        Starting multipliers (default zeros).

    Returns
    -------
    SolverResult
        Never raises on non-convergence: the caller decides (``converged`` is False).
    """
    if threadpool_limits is not None and len(totals) <= _DENSE_MAX:
        with threadpool_limits(1, user_api="blas"):
            return _newton(x, d, totals, distance, bounds, tol, max_iter, penalty, xt, lam0)
    return _newton(x, d, totals, distance, bounds, tol, max_iter, penalty, xt, lam0)


def _newton(x, d, totals, distance, bounds, tol, max_iter, penalty, xt, lam0) -> SolverResult:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    x = sp.csr_matrix(x)
    gram = _Gram(x, xt)
    xt = x.T if xt is None else xt  # CSC view: mat-vecs need no transposed copy
    d = np.asarray(d, dtype=np.float64)
    t = np.asarray(totals, dtype=np.float64)
    m = t.shape[0]
    lam = np.zeros(m) if lam0 is None else np.asarray(lam0, dtype=np.float64).copy()
    inv_c = None if penalty is None else 1.0 / np.asarray(penalty, dtype=np.float64)
    denom = 1.0 + np.abs(t)
    pot = distance.potential

    def evaluate(lam_: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
        u = x @ lam_
        g = distance.inverse(u, bounds)
        achieved = xt @ (d * g)
        resid = t - achieved
        if inv_c is not None:
            resid = resid - lam_ * inv_c
        if pot is not None:
            merit = float(d @ pot(u, bounds) - lam_ @ t)
            if inv_c is not None:
                merit += 0.5 * float(lam_ @ (lam_ * inv_c))
        else:
            merit = 0.5 * float(np.sum((resid / denom) ** 2))
        return u, g, achieved, resid, merit

    u, g, achieved, resid, merit = evaluate(lam)
    err = float(np.max(np.abs(resid) / denom)) if m else 0.0
    history = [err]
    n_iter = 0
    converged = bool(err < tol) and np.all(np.isfinite(g))
    while not converged and n_iter < max_iter:
        n_iter += 1
        dg = distance.derivative(u, bounds)
        jac = gram(d * dg)
        if inv_c is not None:
            jac = jac + (np.diag(inv_c) if isinstance(jac, np.ndarray) else sp.diags(inv_c))
        step = _solve(jac if isinstance(jac, np.ndarray) else sp.csr_matrix(jac), resid)
        slope = -float(step @ resid)  # directional derivative of the dual objective
        alpha = 1.0
        for _ in range(60):
            cand = evaluate(lam + alpha * step)
            finite = np.isfinite(cand[4]) and np.all(np.isfinite(cand[1]))
            if not finite:
                alpha *= 0.5
                continue
            cand_err = float(np.max(np.abs(cand[3]) / denom))
            if (
                (pot is not None and cand[4] <= merit + 1e-4 * alpha * slope)
                or (pot is None and cand[4] <= (1 - 1e-4 * alpha) * merit)
                or cand_err < 0.5 * err  # rounding noise in the merit near the solution
            ):
                break
            alpha *= 0.5
        else:
            logger.debug("line search failed at iteration %d", n_iter)
            break
        lam = lam + alpha * step
        u, g, achieved, resid, merit = cand
        err = float(np.max(np.abs(resid) / denom))
        history.append(err)
        logger.debug("newton iter %d: step %.3g, max rel misfit %.3e", n_iter, alpha, err)
        converged = err < tol
    return SolverResult(
        lam=lam,
        g=g,
        achieved=achieved,
        converged=bool(converged),
        n_iter=n_iter,
        max_misfit=err,
        history=history,
        seconds=time.perf_counter() - start,
    )
