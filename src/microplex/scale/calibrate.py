"""Out-of-core raking of a Parquet dataset through Dask.

Raking (Deville & Sarndal 1992, the exponential distance) gives record ``i`` the weight
``w_i = d_i exp(x_i' lambda)``, where ``x_i`` has a 1 for every margin category the record is
in. The dual is solved by damped Newton iterations whose only data-dependent quantities,

- the dual objective ``sum_i w_i - lambda' t``,
- the achieved totals ``X' w`` (shape ``(m,)``) and
- the Jacobian ``X' diag(w) X`` (shape ``(m, m)``),

are sums over records, so each is a sum of per-partition sums. As the weights depend on a
record only through its cell (its categories in every margin), the dataset is first reduced,
in one pass, to initial-weight totals per observed cell (a per-partition group-by, combined in
a tree); the cell table is then solved in memory by the calibration engine's solver
(:func:`microplex.calibration.solver.newton_dual`, raking distance). When there are more than
``max_cells`` cells, each Newton iteration instead makes one pass over the partitions.

The convergence test is R survey's: ``|t_j - achieved_j| / (1 + |t_j|) < tol`` for every ``j``.

References
----------
Deville, J.-C. and Sarndal, C.-E. (1992). Calibration estimators in survey sampling.
*Journal of the American Statistical Association*, 87(418), 376-382.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.linalg

from .._errors import ConvergenceError, ConvergenceWarning, DataValidationError
from .._params import check_bool, check_float, check_int

#: Most targets (margin categories): the Newton step holds an (m, m) matrix.
_MAX_TARGETS = 10_000

__all__ = ["RakingResult", "rake_dataset", "rake_frame"]

logger = logging.getLogger(__name__)


class _Margins:
    """Margins ``{col: {cat: total}}`` or ``{(c1, c2): {(a, b): total}}`` as numbered targets."""

    def __init__(self, margins: Mapping) -> None:
        if not isinstance(margins, Mapping) or not margins:
            raise DataValidationError(f"'margins' must be a non-empty dict of column -> {{category: total}}. Got {margins!r}.")
        self.keys: list[tuple[str, ...]] = []
        self.indexes: list[pd.Index] = []
        self.offsets: list[int] = []
        totals, labels = [], []
        for key, values in margins.items():
            cols = (key,) if isinstance(key, str) else tuple(key) if isinstance(key, tuple) else None
            if not cols or not all(isinstance(c, str) and c for c in cols) or len(set(cols)) != len(cols):
                raise DataValidationError(
                    f"Margin {key!r} must be named by a column (str) or a tuple of distinct columns."
                )
            items = list(values.items()) if isinstance(values, Mapping | pd.Series) else None
            if not items:
                raise DataValidationError(f"Margin {key!r} must map categories to totals. Got {str(values)[:80]}.")
            if sum(len(i) for i in self.indexes) + len(items) > _MAX_TARGETS:
                raise DataValidationError(f"'margins' has more than {_MAX_TARGETS} categories; at most {_MAX_TARGETS} are supported.")
            cats = [c if len(cols) > 1 else (c,) for c, _ in items]
            if any(not isinstance(c, tuple) or len(c) != len(cols) for c in cats):
                raise DataValidationError(f"Margin {cols}: every category must be a tuple of {len(cols)} values.")
            if len(set(cats)) != len(cats) or any(pd.isna(v) for c in cats for v in c):
                raise DataValidationError(f"Margin {key!r} lists a category twice or a missing category.")
            raw = [v for _, v in items]
            if any(isinstance(v, bool | np.bool_) or not isinstance(v, int | float | np.integer | np.floating) for v in raw):
                raise DataValidationError(f"Margin {key!r} totals must be numbers. Got {str(raw)[:80]}.")
            vals = np.array(raw, dtype=float)
            if not np.isfinite(vals).all() or (vals < 0).any():
                raise DataValidationError(f"Margin {key!r} totals must be finite and >= 0. Got {vals.tolist()}.")
            self.offsets.append(sum(len(i) for i in self.indexes))
            self.keys.append(cols)
            self.indexes.append(pd.MultiIndex.from_tuples(cats) if len(cols) > 1 else pd.Index([c[0] for c in cats]))
            totals.append(vals)
            labels += [(cols if len(cols) > 1 else cols[0], c if len(cols) > 1 else c[0]) for c in cats]
        self.totals = np.concatenate(totals)
        self.labels = labels
        self.columns = sorted({c for cols in self.keys for c in cols})

    @property
    def m(self) -> int:
        return len(self.totals)

    def codes(self, frame: pd.DataFrame) -> np.ndarray:
        """Target index of every record in every margin, ``(n, K)``; ``-1`` when in no category."""
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise DataValidationError(f"The data lack margin columns {missing}; they have {list(frame.columns)}.")
        out = np.empty((len(frame), len(self.keys)), dtype=np.int64)
        for k, (cols, index) in enumerate(zip(self.keys, self.indexes, strict=True)):
            if len(cols) == 1:
                pos = index.get_indexer(pd.Index(np.asarray(frame[cols[0]])))
            else:
                pos = index.get_indexer(pd.MultiIndex.from_arrays([np.asarray(frame[c]) for c in cols]))
            out[:, k] = np.where(pos >= 0, pos + self.offsets[k], -1)
        return out


def _cells(codes: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique code rows and their summed initial weights."""
    if len(codes) == 0:
        return codes, d
    uniq, inverse = np.unique(codes, axis=0, return_inverse=True)
    return uniq, np.bincount(inverse.reshape(-1), weights=d, minlength=len(uniq))


def _part_cells(part: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    return _cells(*part)


def _part_stats(part: tuple[np.ndarray, np.ndarray], lam: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    return _stats(*part, lam)


def _merge(*parts: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    return _cells(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))


def _stats(codes: np.ndarray, d: np.ndarray, lam: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """``(sum w, X' w, X' diag(w) X)`` with ``w = d exp(X lam)``: the per-partition sums."""
    m = len(lam)
    lam_ext = np.append(lam, 0.0)  # code -1 picks the trailing 0
    u = lam_ext[codes].sum(axis=1)
    w = d * np.exp(np.minimum(u, 700.0))
    achieved = np.zeros(m)
    jac = np.zeros(m * m)
    for k in range(codes.shape[1]):
        ck = codes[:, k]
        inside = ck >= 0
        achieved += np.bincount(ck[inside], weights=w[inside], minlength=m)
        for j in range(codes.shape[1]):
            cj = codes[:, j]
            both = inside & (cj >= 0)
            jac += np.bincount(ck[both] * m + cj[both], weights=w[both], minlength=m * m)
    return float(w.sum()), achieved, jac.reshape(m, m)


def _frame_part(frame: pd.DataFrame, margins: _Margins, weight_col: str | None) -> tuple[np.ndarray, np.ndarray]:
    codes = margins.codes(frame)
    if weight_col is None:
        d = np.ones(len(frame))
    else:
        if weight_col not in frame.columns:
            raise DataValidationError(f"Weight column {weight_col!r} is not in the data; it has {list(frame.columns)}.")
        col = frame[weight_col]
        if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            raise DataValidationError(f"Weight column {weight_col!r} must be numeric. Got dtype {col.dtype}.")
        d = col.to_numpy(float, na_value=np.nan)
        if not np.isfinite(d).all() or (d <= 0).any():
            raise DataValidationError(f"Weight column {weight_col!r} must be finite and > 0.")
    return codes, d


def _tree(items: list, combine) -> Any:
    import dask

    items = list(items)
    while len(items) > 1:
        items = [dask.delayed(combine)(*items[i : i + 8]) for i in range(0, len(items), 8)]
    return items[0]


def _add(*parts: tuple) -> tuple:
    return tuple(sum(p[i] for p in parts) for i in range(len(parts[0])))


@dataclass
class RakingResult:
    """Outcome of :func:`rake_dataset`.

    Attributes
    ----------
    lam : ndarray of shape (m,)
        Dual solution; a record's weight is ``d * exp(sum of lam over its categories)``.
    report : DataFrame
        One row per target: ``margin``, ``category``, ``target``, ``initial``, ``achieved``, ``rel_error``.
    converged : bool
    n_iter : int
    max_misfit : float
        ``max_j |t_j - achieved_j| / (1 + |t_j|)`` at exit.
    n_cells : int
        Observed cells (0 when the solve passed over the partitions every iteration).
    """

    lam: np.ndarray
    report: pd.DataFrame
    converged: bool
    n_iter: int
    max_misfit: float
    n_cells: int
    weight_col: str | None = None
    _margins: _Margins | None = field(default=None, repr=False)

    def weights(self, frame: pd.DataFrame) -> np.ndarray:
        """Raked weights of the records in ``frame`` (one partition or a whole frame), shape (n,)."""
        codes, d = _frame_part(frame, self._margins, self.weight_col)
        return d * np.exp(np.append(self.lam, 0.0)[codes].sum(axis=1))


def _newton(evaluate, margins: _Margins, tol: float, max_iter: int) -> tuple[np.ndarray, bool, int, float, np.ndarray, np.ndarray]:
    t = margins.totals
    lam = np.zeros(margins.m)
    total, achieved, jac = evaluate(lam)
    initial = achieved.copy()
    total0 = float(total)
    _check_reachable(margins, initial, total0)
    obj = total - lam @ t
    misfit = float(np.max(np.abs(t - achieved) / (1 + np.abs(t))))
    n_iter = 0
    while misfit >= tol and n_iter < max_iter:
        n_iter += 1
        grad = t - achieved
        diag = np.diag(jac).copy()
        scale = 1.0 / np.sqrt(np.where(diag > 0, diag, 1.0))
        a = jac * scale[:, None] * scale[None, :] + np.diag(np.where(diag > 0, 1e-12, 1.0))
        step = scipy.linalg.lstsq(a, grad * scale, check_finite=False)[0] * scale
        for _ in range(30):  # backtracking on the convex dual objective
            cand = lam + step
            c_total, c_ach, c_jac = evaluate(cand)
            c_obj = c_total - cand @ t
            if np.isfinite(c_obj) and c_obj <= obj - 1e-4 * (step @ grad) + 1e-12 * abs(obj):
                break
            step = step / 2
        lam, obj, achieved, jac = cand, c_obj, c_ach, c_jac
        misfit = float(np.max(np.abs(t - achieved) / (1 + np.abs(t))))
        logger.debug("raking iteration %d: max relative misfit %.3g", n_iter, misfit)
    return lam, misfit < tol, n_iter, misfit, initial, achieved, float(total) / total0 if total0 > 0 else float("nan")


def _check_reachable(margins: _Margins, initial: np.ndarray, total: float) -> None:
    """Refuses margins no raked weights can reach, before solving: a category with a positive total but
    no record (raking never gives weight to an empty cell), and a margin that covers every record with
    a grand total of 0 (every weight would have to vanish)."""
    t = margins.totals
    empty = np.flatnonzero((t > 0) & ~(initial > 0))
    if len(empty):
        listed = "; ".join(f"{margins.labels[j][0]} = {margins.labels[j][1]!r}: {t[j]:g}" for j in empty[:10])
        raise DataValidationError(
            f"{len(empty)} margin categories have a positive total but no record (no weights can reach them): "
            f"{listed}. Drop them or fix the category labels."
        )
    for key, off, index in zip(margins.keys, margins.offsets, margins.indexes, strict=True):
        sl = slice(off, off + len(index))
        covered = float(initial[sl].sum())
        if total > 0 and abs(covered - total) <= 1e-12 * total and float(t[sl].sum()) == 0.0:
            raise DataValidationError(
                f"Margin {key if len(key) > 1 else key[0]!r} covers every record but its totals sum to 0: every "
                "weight would have to be 0."
            )


def _solve_cells(codes: np.ndarray, dsum: np.ndarray, margins: _Margins, tol: float, max_iter: int):
    """The calibration engine's Newton solver on the (cells x targets) design."""
    import scipy.sparse as sp

    from ..calibration.distances import get_distance
    from ..calibration.solver import newton_dual

    rows, cols = np.nonzero(codes >= 0)
    x = sp.csr_matrix(
        (np.ones(len(rows)), (rows, codes[rows, cols])), shape=(len(codes), margins.m)
    )
    initial = x.T @ dsum
    _check_reachable(margins, initial, float(dsum.sum()))
    res = newton_dual(x, dsum, margins.totals, get_distance("raking"), tol=tol, max_iter=max_iter)
    w0 = float(dsum.sum())
    share = float(dsum @ res.g) / w0 if w0 > 0 else float("nan")
    return res.lam, bool(res.converged), int(res.n_iter), float(res.max_misfit), initial, np.asarray(res.achieved), share


def _finish(lam, converged, n_iter, misfit, initial, achieved, share, margins, n_cells, weight_col, force) -> RakingResult:
    """Builds the result; the guard of every raking solve: finite, not collapsed, converged (or forced)."""
    t = margins.totals
    if not np.all(np.isfinite(lam)) or not np.isfinite(share):
        raise ConvergenceError(f"Raking failed after {n_iter} iterations: the weights are not finite.")
    if not share > 1e-9:
        raise ConvergenceError(
            f"Raking collapsed the weights: they sum to {share:.3g} times their initial total, as the margin "
            "totals ask (are they all 0?). Refusing a population of (almost) no weight."
        )
    report = pd.DataFrame(
        {
            "margin": [lab[0] for lab in margins.labels],
            "category": [lab[1] for lab in margins.labels],
            "target": t,
            "initial": initial,
            "achieved": achieved,
            "rel_error": np.abs(t - achieved) / np.maximum(np.abs(t), 1e-300),
        }
    )
    result = RakingResult(lam, report, converged, n_iter, misfit, n_cells, weight_col, margins)
    if not converged:
        msg = f"Raking did not converge in {n_iter} iterations: max relative misfit {misfit:.3g}."
        warnings.warn(msg, ConvergenceWarning, stacklevel=3)
        if not force:
            raise ConvergenceError(msg + " Check that the margins agree (same grand total) and every category has records, or pass force=True.")
    return result


def _check_solver_args(weight_col, tol, max_iter, force) -> tuple[float, int]:
    if weight_col is not None and (not isinstance(weight_col, str) or not weight_col):
        raise DataValidationError(f"The 'weight_col' parameter must be a column name (str) or None. Got {weight_col!r} instead.")
    check_bool(force, "force")
    tol = check_float(tol, "tol", low=0.0, low_inclusive=False)
    max_iter = check_int(max_iter, "max_iter", low=1)
    return tol, max_iter


def rake_frame(
    frame: pd.DataFrame, margins: Mapping, weight_col: str | None = None, *, tol: float = 1e-10, max_iter: int = 50, force: bool = False
) -> RakingResult:
    """In-memory raking of a DataFrame (the same Newton solve as :func:`rake_dataset`).

    Examples
    --------
    >>> df = pd.DataFrame({"sex": [1, 1, 2, 2], "age": ["y", "o", "y", "o"]})
    >>> res = rake_frame(df, {"sex": {1: 60, 2: 40}, "age": {"y": 50, "o": 50}})
    >>> res.weights(df).round(3).tolist()
    [30.0, 30.0, 20.0, 20.0]
    """
    tol, max_iter = _check_solver_args(weight_col, tol, max_iter, force)
    if not isinstance(frame, pd.DataFrame):
        raise DataValidationError(f"The 'frame' parameter must be a DataFrame. Got {type(frame).__name__} instead.")
    mg = _Margins(margins)
    codes, d = _frame_part(frame, mg, weight_col)
    cells, dsum = _cells(codes, d)
    out = _solve_cells(cells, dsum, mg, tol, max_iter)
    return _finish(*out, mg, len(cells), weight_col, force)


def rake_dataset(
    path: str | os.PathLike,
    margins: Mapping,
    weight_col: str | None = None,
    *,
    tol: float = 1e-10,
    max_iter: int = 50,
    force: bool = False,
    max_cells: int = 2_000_000,
    client=None,
) -> RakingResult:
    """Rakes a Parquet dataset (any size) to count margins, out of core through Dask.

    Parameters
    ----------
    path : str or path-like
        A Parquet file or (hive-partitioned) dataset, e.g. written by :func:`generate_dataset`.
    margins : dict
        ``{column: {category: total}}``; crossed margins as ``{(c1, c2): {(a, b): total}}``
        (the margins format of ``microplex.calibration.Targets.from_margins``).
    weight_col : str, default=None
        Initial weights (positive); every record weighs 1 when ``None``.
    tol : float, default=1e-10
        Convergence when ``|t_j - achieved_j| / (1 + |t_j|) < tol`` for every target.
    max_iter : int, default=50
    force : bool, default=False
        Return the last iterate with a :class:`ConvergenceWarning` instead of raising
        :class:`ConvergenceError` when the solve does not converge.
    max_cells : int, default=2000000
        Largest observed-cell table solved in memory; beyond it every iteration passes over
        the partitions.
    client : dask.distributed.Client, default=None
        Cluster to run on; ``None`` uses Dask's local scheduler.

    Returns
    -------
    RakingResult
        ``result.weights(frame)`` gives the weights of any partition's records.
    """
    import dask
    import dask.dataframe as dd

    tol, max_iter = _check_solver_args(weight_col, tol, max_iter, force)
    max_cells = check_int(max_cells, "max_cells", low=0)
    if not isinstance(path, str | os.PathLike) or not os.fspath(path):
        raise DataValidationError(f"The 'path' parameter must be a non-empty str or path-like. Got {path!r} instead.")
    if client is not None and not callable(getattr(client, "compute", None)):
        raise DataValidationError(
            f"The 'client' parameter must be a dask.distributed.Client or None. Got {type(client).__name__} instead."
        )
    mg = _Margins(margins)
    columns = mg.columns + ([weight_col] if weight_col else [])
    try:
        ddf = dd.read_parquet(str(path))
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise DataValidationError(f"Cannot read the Parquet dataset {str(path)!r}: {exc}") from exc
    missing = [c for c in columns if c not in ddf.columns]
    if missing:
        raise DataValidationError(
            f"The Parquet dataset {str(path)!r} lacks margin or weight columns {missing}; it has {list(ddf.columns)}."
        )
    ddf = ddf[columns]
    parts = [dask.delayed(_frame_part)(p, mg, weight_col) for p in ddf.to_delayed()]
    compute = client.compute if client is not None else None

    def run(obj):
        return obj.compute() if compute is None else compute(obj).result()

    cells = run(_tree([dask.delayed(_part_cells)(p) for p in parts], _merge)) if max_cells > 0 else None
    if cells is not None and len(cells[0]) <= max_cells:
        codes, dsum = cells
        logger.info("Raking %s: %d observed cells, solved in memory.", path, len(codes))
        out = _solve_cells(codes, dsum, mg, tol, max_iter)
        return _finish(*out, mg, len(codes), weight_col, force)

    logger.info("Raking %s: one pass over %d partitions per iteration.", path, len(parts))
    def evaluate(lam: np.ndarray):
        return run(_tree([dask.delayed(_part_stats)(p, lam) for p in parts], _add))

    out = _newton(evaluate, mg, tol, max_iter)
    return _finish(*out, mg, 0, weight_col, force)
