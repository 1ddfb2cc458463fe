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
from collections.abc import Callable
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


class _Operator:
    """The design matrix as the solver uses it: ``X lambda``, ``X' v`` and ``X' diag(s) X``.

    For the Jacobian, when rows are short (at most 8 entries, the usual case: one entry per margin),
    ``X`` is also kept as "slots": the a-th entry of every row as one int32 column-index array (and its
    values unless all ones). The Jacobian's sparsity pattern is found once, so each iteration costs one
    ``bincount`` per slot (diagonal) and per slot pair (off-diagonal), O(nnz), with no sparse-sparse
    product. Otherwise the general CSR product is used.
    """

    def __init__(self, x: sp.csr_matrix, xt: sp.csr_matrix | None) -> None:
        self.x, self._xt = x, xt
        n, m = x.shape
        self.n, self.m = n, m
        self.dense = m <= _DENSE_MAX
        nnz_row = np.diff(x.indptr)
        kmax = int(nnz_row.max()) if n else 0
        self.slotted = 0 < kmax <= 8
        if not self.slotted:
            return
        starts = x.indptr[:-1].astype(np.int64)
        self.slots: list[tuple[np.ndarray | None, np.ndarray, np.ndarray | None]] = []
        for a in range(kmax):
            rows = None if (nnz_row > a).all() else np.flatnonzero(nnz_row > a)
            pos = (starts if rows is None else starts[rows]) + a
            vals = x.data[pos]
            self.slots.append((rows, x.indices[pos].astype(np.int32), None if np.all(vals == 1.0) else vals))
        specs = [(a, b) for b in range(kmax) for a in range(b)]
        self.pairs: list[tuple[np.ndarray | None, np.ndarray, np.ndarray | None]] = []
        self.off_r = self.off_c = np.zeros(0, dtype=np.int64)
        if specs:
            uniq, invs = _pattern(lambda i: self._pair(*specs[i])[1], len(specs), m)
            for (a, b), inv in zip(specs, invs):
                self.pairs.append((self.slots[b][0], inv, self._pair(a, b, codes=False)[2]))
            self.off_r, self.off_c = uniq // m, uniq % m

    def _pair(
        self, a: int, b: int, codes: bool = True
    ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        """Rows, codes ``min(c_a, c_b) * m + max(c_a, c_b)`` and value products of slots ``a < b``."""
        rows_b, ind_b, val_b = self.slots[b]
        rows_a, ind_a, val_a = self.slots[a]
        if val_a is None and val_b is None and not codes:
            return rows_b, None, None
        sel = None if rows_b is None else (rows_b if rows_a is None else np.searchsorted(rows_a, rows_b))
        if sel is not None:
            ind_a = ind_a[sel]
            val_a = None if val_a is None else val_a[sel]
        code = np.minimum(ind_a, ind_b).astype(np.int64) * self.m + np.maximum(ind_a, ind_b) if codes else None
        if val_a is None and val_b is None:
            return rows_b, code, None
        codes_out = code
        return rows_b, codes_out, (1.0 if val_a is None else val_a) * (1.0 if val_b is None else val_b)

    @property
    def xt(self) -> sp.csr_matrix:
        if self._xt is None:
            self._xt = sp.csr_matrix(self.x.T)
        return self._xt

    def matvec(self, lam: np.ndarray) -> np.ndarray:
        """``X @ lam``."""
        return self.x @ lam

    def rmatvec(self, v: np.ndarray) -> np.ndarray:
        """``X' @ v`` (CSC view of the transpose when no CSR transpose was given: no copy)."""
        return (self.x.T if self._xt is None else self._xt) @ v

    def gram(self, s: np.ndarray) -> sp.spmatrix | np.ndarray:
        """``X' diag(s) X`` (dense ndarray for at most ``_DENSE_MAX`` targets)."""
        m = self.m
        if not self.slotted:
            jac = self.xt @ _row_scale(self.x, s)
            return jac.toarray() if self.dense else jac
        diag = np.zeros(m)
        for rows, ind, vals in self.slots:
            ss = s if rows is None else s[rows]
            diag += np.bincount(ind, weights=ss if vals is None else ss * vals * vals, minlength=m)
        off = np.zeros(len(self.off_r))
        for rows, inv, vals in self.pairs:
            ss = s if rows is None else s[rows]
            off += np.bincount(inv, weights=ss if vals is None else ss * vals, minlength=len(off))
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


def _row_scale(x: sp.csr_matrix, s: np.ndarray) -> sp.csr_matrix:
    """Returns ``diag(s) @ x`` for CSR ``x`` in O(nnz) without a diagonal matrix product."""
    out = x.copy()
    out.data = out.data * np.repeat(s, np.diff(x.indptr))
    return out


def _pattern(codes: Callable[[int], np.ndarray], k: int, m: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Distinct codes (sorted) over ``codes(0..k-1)`` and, per array, each entry's position among them.

    The code arrays are recomputed rather than stored, to keep the peak memory low.
    """
    if m * m <= 100_000_000:  # direct table over the code space, O(n + m^2)
        present = np.zeros(m * m, dtype=bool)
        for i in range(k):
            present[codes(i)] = True
        uniq = np.flatnonzero(present)
        del present
        pos = np.zeros(m * m, dtype=np.int32)  # only the touched pages are ever written
        pos[uniq] = np.arange(len(uniq), dtype=np.int32)
        return uniq, [pos[codes(i)] for i in range(k)]
    parts = [codes(i) for i in range(k)]
    sizes = np.cumsum([0, *(len(c) for c in parts)])
    inv, uniq = pd.factorize(np.concatenate(parts), sort=True)
    return np.asarray(uniq, dtype=np.int64), [inv[lo:hi] for lo, hi in zip(sizes[:-1], sizes[1:])]


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
    op = _Operator(sp.csr_matrix(x), xt)
    d = np.asarray(d, dtype=np.float64)
    t = np.asarray(totals, dtype=np.float64)
    m = t.shape[0]
    lam = np.zeros(m) if lam0 is None else np.asarray(lam0, dtype=np.float64).copy()
    inv_c = None if penalty is None else 1.0 / np.asarray(penalty, dtype=np.float64)
    denom = 1.0 + np.abs(t)
    pot = distance.potential

    def evaluate(lam_: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
        u = op.matvec(lam_)
        g = distance.inverse(u, bounds)
        achieved = op.rmatvec(d * g)
        resid = t - achieved
        if inv_c is not None:
            resid = resid - lam_ * inv_c
        err_ = float(np.max(np.abs(resid) / denom)) if m else 0.0
        return u, g, achieved, resid, err_

    def merit(lam_: np.ndarray, u_: np.ndarray, resid_: np.ndarray) -> float:
        """Dual objective (or half the squared relative misfit for distances without a potential)."""
        if pot is None:
            return 0.5 * float(np.sum((resid_ / denom) ** 2))
        val = float(d @ pot(u_, bounds) - lam_ @ t)
        if inv_c is not None:
            val += 0.5 * float(lam_ @ (lam_ * inv_c))
        return val

    u, g, achieved, resid, err = evaluate(lam)
    history = [err]
    n_iter = 0
    converged = bool(err < tol) and bool(np.all(np.isfinite(g)))
    while not converged and n_iter < max_iter:
        n_iter += 1
        jac = op.gram(d * distance.derivative(u, bounds))
        if inv_c is not None:
            jac = jac + (np.diag(inv_c) if isinstance(jac, np.ndarray) else sp.diags(inv_c))
        step = _solve(jac if isinstance(jac, np.ndarray) else sp.csr_matrix(jac), resid)
        slope = -float(step @ resid)  # directional derivative of the dual objective
        alpha, cur_merit = 1.0, None
        for _ in range(60):
            cand = evaluate(lam + alpha * step)
            if not np.all(np.isfinite(cand[1])) or not np.isfinite(cand[4]):
                alpha *= 0.5
                continue
            if cand[4] < 0.5 * err:  # the misfit halves: accept (no potential needed)
                break
            if cur_merit is None:
                cur_merit = merit(lam, u, resid)
            new_merit = merit(lam + alpha * step, cand[0], cand[3])
            if (pot is not None and new_merit <= cur_merit + 1e-4 * alpha * slope) or (
                pot is None and new_merit <= (1 - 1e-4 * alpha) * cur_merit
            ):
                break
            alpha *= 0.5
        else:
            logger.debug("line search failed at iteration %d", n_iter)
            break
        lam = lam + alpha * step
        u, g, achieved, resid, err = cand
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
