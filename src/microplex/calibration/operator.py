"""The calibration design as an operator: the few products the Newton dual solver needs.

The solver (:mod:`microplex.calibration.solver`) never touches records. At a multiplier vector
``lambda`` it asks an operator for one :class:`Point`:

- the achieved totals ``X' (d * g)`` with ``g = F(X lambda)`` (the distance's weight ratios),
- the dual potential ``sum_i d_i rho(x_i' lambda)`` (for the line search, only when asked),
- the sparse Gram matrix ``X' diag(d * F'(X lambda)) X`` (the Newton system, only when asked).

Three operators give them:

- :class:`MatrixOperator`: a sparse ``(n, m)`` matrix in memory (records, households, or the distinct
  rows / observed cells a design collapses to, with summed initial weights: exact, as units with equal
  rows get equal ratios);
- :class:`PartitionedOperator`: a sum over partitions (e.g. the files of a Parquet dataset), each read
  and reduced on its own, locally or on a Dask cluster; memory is bounded by the targets (``m`` values
  and the Gram matrix, which is sparse because a record touches few targets), not by the records. Every
  evaluation is one pass over the data, counted in :attr:`PartitionedOperator.passes`.

The Gram matrix is dense (ndarray) for at most ``DENSE_MAX`` targets, sparse CSR above.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .distances import Bounds, Distance

__all__ = ["DENSE_MAX", "DesignOperator", "MatrixOperator", "PartitionedOperator", "Point", "part_point"]

#: Most targets for which the Gram matrix is held (and factorized) dense.
DENSE_MAX = 1500


@dataclass
class Point:
    """The operator's products at one ``lambda`` (see the module docstring).

    Attributes
    ----------
    achieved : ndarray of shape (m,)
        ``X' (d * g)``.
    finite : bool
        Whether every weight ratio ``g`` is finite.
    g : ndarray of shape (n,) or None
        The weight ratios (None for operators that do not hold the records).
    potential : callable () -> float
        ``sum_i d_i rho(x_i' lambda)`` (computed on first call).
    gram : callable () -> ndarray or csr_matrix
        ``X' diag(d * F'(X lambda)) X`` of shape ``(m, m)``.
    sizes : ndarray of shape (m,) or None
        ``|X|' |d * g|``, what each target's records add up to in size at the weights (the size a miss of its
        achieved total is rounding of), for operators that do not hold the records (None: from ``g``).
    """

    achieved: np.ndarray
    finite: bool
    g: np.ndarray | None
    potential: Callable[[], float]
    gram: Callable[[], np.ndarray | sp.csr_matrix]
    sizes: np.ndarray | None = None


class DesignOperator:
    """Base class of the design operators: ``m`` targets, :meth:`at` a ``lambda``, and a pass count."""

    m: int
    passes: int = 0

    def at(self, lam: np.ndarray, distance: Distance, bounds: Bounds, *, need_potential: bool = True) -> Point:
        """The operator's products at ``lam`` (``need_potential=False`` lets a one-pass operator skip it)."""
        raise NotImplementedError


class MatrixOperator(DesignOperator):
    """An in-memory sparse design ``x`` of shape ``(n, m)`` with initial weights ``d``.

    For the Gram matrix, when rows are short (at most 8 entries, the usual case: one entry per margin),
    ``X`` is also kept as "slots": the a-th entry of every row as one int32 column-index array (and its
    values unless all ones). The Gram matrix's sparsity pattern is found once, so each evaluation costs
    one ``bincount`` per slot (diagonal) and per slot pair (off-diagonal), O(nnz), with no sparse-sparse
    product. Otherwise the general CSR product is used.

    Parameters
    ----------
    x : sparse matrix of shape (n, m)
    d : ndarray of shape (n,), optional
        Initial weights (required by :meth:`at`, not by the raw products).
    xt : csr_matrix of shape (m, n), optional
        ``x.T`` in CSR form, if the caller already has it.
    """

    def __init__(self, x: sp.spmatrix, d: np.ndarray | None = None, xt: sp.csr_matrix | None = None) -> None:
        x = sp.csr_matrix(x)
        self.x, self._xt = x, xt
        self.d = None if d is None else np.asarray(d, dtype=np.float64)
        n, m = x.shape
        self.n, self.m = n, m
        self.dense = m <= DENSE_MAX
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
        return rows_b, code, (1.0 if val_a is None else val_a) * (1.0 if val_b is None else val_b)

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

    def gram(self, s: np.ndarray) -> sp.csr_matrix | np.ndarray:
        """``X' diag(s) X`` (dense ndarray for at most ``DENSE_MAX`` targets)."""
        m = self.m
        if not self.slotted:
            jac = self.xt @ _row_scale(self.x, s)
            return jac.toarray() if self.dense else sp.csr_matrix(jac)
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

    def at(self, lam: np.ndarray, distance: Distance, bounds: Bounds, *, need_potential: bool = True) -> Point:
        if self.d is None:
            raise ValueError("MatrixOperator.at needs the initial weights d")
        d = self.d
        u = self.matvec(lam)
        g = distance.inverse(u, bounds)
        achieved = self.rmatvec(d * g)
        pot = distance.potential
        return Point(
            achieved=achieved,
            finite=bool(np.all(np.isfinite(g))),
            g=g,
            potential=(lambda: float(d @ pot(u, bounds))) if pot is not None else (lambda: float("nan")),
            gram=lambda: self.gram(d * distance.derivative(u, bounds)),
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


# ------------------------------------------------------------------------------ partitioned
def part_point(
    part: tuple[sp.csr_matrix, np.ndarray], lam: np.ndarray, distance: Distance, bounds: Bounds, need_potential: bool
) -> tuple[np.ndarray, float, int, sp.csr_matrix, float, int, int, np.ndarray]:
    """One partition's share of a :class:`Point`: ``(X'(d g), potential, non-finite g, Gram, sum d g, n, n
    unreached, |X|'|d g|)``; ``n unreached`` the units of positive initial weight in no target (a row of ``x``
    without entries): the count targets set the population's scale only where there is none
    (:func:`~microplex.calibration.design.target_scale`); the last the targets' sizes at the weights
    (:attr:`Point.sizes`), ``X'(d g)`` itself where no weight or value is negative.

    The Gram matrix is sparse CSR: its non-zeros are the pairs of targets some record of the partition
    touches together.
    """
    x, d = part
    u = x @ lam
    g = distance.inverse(u, bounds)
    w = d * g
    achieved = x.T @ w
    pot = float(d @ distance.potential(u, bounds)) if need_potential and distance.potential is not None else 0.0
    gram = sp.csr_matrix(x.T @ _row_scale(x, d * distance.derivative(u, bounds)))
    unreached = int(np.sum((np.diff(sp.csr_matrix(x).indptr) == 0) & (d > 0)))
    achieved = np.asarray(achieved, dtype=np.float64)
    signed = bool(np.any(w < 0)) or bool(np.any(sp.csr_matrix(x).data < 0))
    sizes = np.asarray(abs(x).T @ np.abs(w), dtype=np.float64) if signed else achieved
    return achieved, pot, int(np.sum(~np.isfinite(g))), gram, float(w.sum()), len(d), unreached, sizes


def add_parts(*parts: tuple) -> tuple:
    """Element-wise sum of per-partition tuples (arrays, numbers and sparse matrices)."""
    out = list(parts[0])
    for p in parts[1:]:
        for i, v in enumerate(p):
            out[i] = out[i] + v
    return tuple(out)


class PartitionedOperator(DesignOperator):
    """A design summed over partitions, each a ``(x_p, d_p)`` pair produced on demand.

    Parameters
    ----------
    m : int
        Number of targets.
    reduce : callable ``(lam, distance, bounds, need_potential) -> tuple``
        One pass over the partitions: the element-wise sum of :func:`part_point` over them (locally, or
        as a tree of Dask tasks). The operator counts its calls in :attr:`passes`.

    Attributes
    ----------
    passes : int
        Passes over the data so far.
    last : dict
        ``total_weight``, ``n_nonfinite``, ``n_units`` and ``n_unreached`` (units of positive initial weight in no
        target) of the last evaluation.
    """

    def __init__(self, m: int, reduce: Callable[..., tuple]) -> None:
        self.m = int(m)
        self._reduce = reduce
        self.passes = 0
        self.last: dict[str, Any] = {}

    @classmethod
    def local(cls, m: int, parts: Sequence[Callable[[], tuple[sp.csr_matrix, np.ndarray]]]) -> PartitionedOperator:
        """Partitions read one at a time in this process: ``parts[k]()`` returns ``(x_k, d_k)``."""

        def reduce(lam: np.ndarray, distance: Distance, bounds: Bounds, need_potential: bool) -> tuple:
            acc: tuple | None = None
            for load in parts:
                out = part_point(load(), lam, distance, bounds, need_potential)
                acc = out if acc is None else add_parts(acc, out)
            if acc is None:
                return np.zeros(m), 0.0, 0, sp.csr_matrix((m, m)), 0.0, 0, 0, np.zeros(m)
            return acc

        return cls(m, reduce)

    def at(self, lam: np.ndarray, distance: Distance, bounds: Bounds, *, need_potential: bool = True) -> Point:
        self.passes += 1
        achieved, pot, n_bad, gram, total, n, unreached, sizes = self._reduce(lam, distance, bounds, True)
        self.last = {"total_weight": float(total), "n_nonfinite": int(n_bad), "n_units": int(n),
                     "n_unreached": int(unreached)}
        gram = sp.csr_matrix(gram)
        return Point(
            achieved=np.asarray(achieved, dtype=np.float64),
            finite=n_bad == 0,
            g=None,
            potential=lambda: float(pot) if distance.potential is not None else float("nan"),
            gram=lambda: gram.toarray() if self.m <= DENSE_MAX else gram,
            sizes=np.asarray(sizes, dtype=np.float64),
        )
