"""Out-of-core calibration of a Parquet dataset, locally or through Dask, with the one calibration solver.

A record's calibrated weight is ``w_i = d_i F(x_i' lambda)`` (Deville & Sarndal 1992), where ``x_i`` has
a 1 for every margin category the record is in and ``F`` is the calibration distance (raking by default;
every registered distance works, with bounds). The dual is solved by the calibration engine's Newton
solver (:func:`microplex.calibration.solver.solve_dual`), which only needs, at each ``lambda``, the
achieved totals ``X' w``, the dual potential and the sparse Gram matrix ``X' diag(d F') X``: sums over
records, hence sums over partitions. Two design operators give them
(:mod:`microplex.calibration.operator`):

- collapsed: as the weight of a record depends only on its cell (its categories in every margin), one
  pass of per-partition group-bys (combined in a tree) reduces the dataset to initial-weight totals per
  observed cell, solved in memory (exact, not an approximation);
- partitioned: beyond ``max_cells`` observed cells, every evaluation is one pass over the partitions, each
  returning its share of the totals and of the sparse Gram matrix; memory is bounded by the targets.

The feasibility guards of :mod:`microplex.calibration.feasibility` run on every path: targets no weights
can reach before solving, and non-finite, collapsed or missed weights after. The convergence test is R
survey's: ``|t_j - achieved_j| / (1 + |t_j|) < tol`` for every ``j``, with ``1 + |t_j|`` at least the target's
rounding scale (:func:`~microplex._stats.rounding_scale` of the smaller of its initial and final totals, the initial
one at the targets' scale for a target of 0: :func:`~microplex.calibration.feasibility.smaller_sizes`), as the
:class:`~microplex.calibration.Calibrator` tests it: a count of 0 over records of large weight is met within float64
rounding of their initial total. Initial weights far from the targets' scale are first brought to it by the
Calibrator's rule (:func:`~microplex.calibration.calibrator.bounded_start`, within the same box of weights).

References
----------
Deville, J.-C. and Sarndal, C.-E. (1992). Calibration estimators in survey sampling.
*Journal of the American Statistical Association*, 87(418), 376-382.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._errors import ConvergenceError, ConvergenceWarning, DataValidationError
from .._stats import misfit_denominator
from .._params import check_bool, check_float, check_int, check_names
from ..calibration._checks import check_distance
from ..calibration.calibrator import bounded_start, rescales, start_bounds
from ..calibration.design import Design, target_scale
from ..calibration.diagnostics import explain_failure, relative_errors
from ..calibration.distances import Distance
from ..calibration.feasibility import (box, met_tolerance, misfits, only_nonnegative, smaller_sizes, target_misses,
                                       totals_design, unreachable_targets, weight_problems, zero_margins)
from ..calibration.operator import MatrixOperator, PartitionedOperator, Point, add_parts, part_point
from ..calibration.solver import SolverResult, on_final_sizes, solve_dual
from ..calibration.targets import Targets
from ._calibrated_copy import _write_copy, write_calibrated  # noqa: F401 - re-exported
from ._margins import _as_margins, _frame_part, _Margins, check_text_partition_keys, held_part, union_forms
from ._layout import dask_files, dask_read_options
from .sources import check_same_schema, parquet_files

__all__ = ["RakingResult", "rake_dataset", "rake_frame", "write_calibrated"]

logger = logging.getLogger(__name__)


def _cells(codes: np.ndarray, d: np.ndarray, count: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique code rows, their summed initial weights and their numbers of records."""
    count = np.ones(len(d)) if count is None else count
    if len(codes) == 0:
        return codes, d, count
    uniq, inverse = np.unique(codes, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    return uniq, np.bincount(inverse, weights=d, minlength=len(uniq)), np.bincount(inverse, weights=count, minlength=len(uniq))


def _part_cells(part: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _cells(*part)


def _merge(*parts: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _cells(*(np.concatenate([p[i] for p in parts]) for i in range(3)))


def _design(codes: np.ndarray, m: int) -> sp.csr_matrix:
    """The sparse 0/1 design of margin codes ``(n, K)`` (``-1``: in no category of that margin)."""
    rows, cols = np.nonzero(codes >= 0)
    return sp.csr_matrix((np.ones(len(rows)), (rows, codes[rows, cols])), shape=(len(codes), m))


def _part_point(part: tuple[np.ndarray, np.ndarray], m: int, lam: np.ndarray, distance: Distance, bounds: tuple[float, float]) -> tuple:
    codes, d = part
    return part_point((_design(codes, m), d), lam, distance, bounds, True)


def _tree(items: list, combine) -> Any:
    import dask

    items = list(items)
    while len(items) > 1:
        items = [dask.delayed(combine)(*items[i : i + 8]) for i in range(0, len(items), 8)]
    return items[0]


class _Passes:
    """The passes over a dataset's partitions, the first of which settles the margins' categories on the values of the
    whole dataset: computed together with it, the union (``union``) of the values the partitions hold that the numbers
    and numbered categories (``'015'`` kept with 15) may find and of what every category found there, collected from
    the same reads (no other pass); ``settle`` resolves them on the values of the whole dataset (or refuses them: two
    categories that name the same records there, ``(15, 1)`` and ``("15", 1)`` where one file holds ``"15"`` and
    another the sex 1) and says whether a partition must be coded again (a number found ``"015"`` in one file where
    the dataset holds ``"15"``): then that pass is made again on the partitions coded anew (``again``: 1).
    ``coded()`` gives the partitions' parts, ``coded_held()`` pairs (part, values held) of the first pass."""

    def __init__(self, run: Callable[[Any], Any], coded: Callable[[], list], coded_held: Callable[[], list],
                 union: Callable[..., Any], settle: Callable[[Any], bool]) -> None:
        self.run, self.coded, self.coded_held, self.union, self.settle = run, coded, coded_held, union, settle
        self.parts, self.again, self._settling = coded(), 0, True

    def __call__(self, tree: Callable[[list], Any]) -> Any:
        """The pass ``tree(parts)`` (the partitions' parts reduced to one delayed result), computed."""
        import dask

        if not self._settling:
            return self.run(tree(self.parts))
        self._settling = False
        read = self.coded_held()
        out, held = self.run(dask.delayed(tuple)([tree([r[0] for r in read]), _tree([r[1] for r in read], self.union)]))
        if self.settle(held):
            self.parts, self.again = self.coded(), 1
            out = self.run(tree(self.parts))
        return out


@dataclass
class RakingResult:
    """Outcome of :func:`rake_dataset` and :func:`rake_frame`.

    Attributes
    ----------
    lam : ndarray of shape (m,)
        Dual solution; a record's weight is ``d * F(sum of lam over its categories)``.
    report : DataFrame
        One row per target: ``margin``, ``category``, ``target``, ``initial``, ``achieved``, ``rel_error``
        (``|achieved - target| / |target|``; where the target is 0, the miss over a thousandth of its records'
        initial weight at the targets' scale (:func:`~microplex.calibration.calibrator.zero_sized`), the unit the solve
        and its check hold it to, as in
        :meth:`microplex.calibration.CalibrationResult.report`).
    converged : bool
    n_iter : int
    max_misfit : float
        ``max_j |t_j - achieved_j| / (1 + |t_j|)`` at exit.
    n_cells : int
        Observed cells (0 when the solve passed over the partitions every iteration).
    n_passes : int
        Passes over the data: the cell table (or the initial totals) plus, out of core, one per evaluation.
    summary : dict
        The keys of :attr:`microplex.calibration.CalibrationResult.summary` that do not need every weight
        in memory: ``converged``, ``n_iter``, ``max_rel_error``, ``n_units``, ``n_targets``, ``method``,
        ``soft`` (False), ``met_rtol``, ``n_passes``, ``n_cells``.
    solver : SolverResult
        The solver's own outcome.
    start_scale : float
        The factor the initial weights were solved from (a power of two, the :class:`~microplex.calibration.Calibrator`'s
        :func:`~microplex.calibration.calibrator.bounded_start`; 1 for weights within its band of the targets' scale): a
        record's weight is ``start_scale * d * F(...)``, ``F`` within :attr:`solve_bounds`.
    """

    lam: np.ndarray
    report: pd.DataFrame
    converged: bool
    n_iter: int
    max_misfit: float
    n_cells: int
    weight_col: str | None = None
    _margins: _Margins | None = field(default=None, repr=False)
    n_passes: int = 0
    distance: Distance | None = field(default=None, repr=False)
    bounds: tuple[float, float] = (-np.inf, np.inf)
    summary: dict[str, Any] = field(default_factory=dict)
    solver: SolverResult | None = field(default=None, repr=False)
    initial_weight: float = 1.0
    household_id: str | None = None
    start_scale: float = 1.0

    def weights(self, frame: pd.DataFrame, persons: pd.DataFrame | None = None) -> np.ndarray:
        """Calibrated weights of the records in ``frame`` (one partition or a whole frame), shape (n,).

        After a household calibration (``rake_dataset(..., persons=...)``), ``frame`` holds households and
        ``persons`` their persons (every person of those households), and the weights are the households'.
        """
        if self.household_id is not None:
            from ._linked import linked_weights

            if not isinstance(persons, pd.DataFrame):
                raise DataValidationError("This result calibrated households: pass their persons as 'persons'.")
            return linked_weights(self, frame, persons)
        codes, d = _frame_part(frame, self._margins, self.weight_col, self.initial_weight)
        u = np.append(self.lam, 0.0)[codes].sum(axis=1)
        return d * self.start_scale * self.distance.inverse(u, self.solve_bounds)

    @property
    def solve_bounds(self) -> tuple[float, float]:
        """The ratio bounds the solve held ``F(...)`` to: ``bounds`` as ratios to the initial weights times
        ``start_scale`` (:func:`~microplex.calibration.calibrator.start_bounds`, the caller's box of weights)."""
        return start_bounds(self.bounds, self.start_scale)


def _check_args(
    weight_col: Any, tol: Any, max_iter: Any, force: Any, method: Any, bounds: Any, initial_weight: Any = None
) -> tuple[float, int, Distance, tuple[float, float], float]:
    if weight_col is not None and (not isinstance(weight_col, str) or not weight_col):
        raise DataValidationError(f"The 'weight_col' parameter must be a column name (str) or None. Got {weight_col!r} instead.")
    initial = check_float(initial_weight, "initial_weight", low=0.0, low_inclusive=False, allow_none=True)
    if initial is not None and weight_col is not None:
        raise DataValidationError(
            f"Give either 'weight_col' (initial weights from a column; got {weight_col!r}) or 'initial_weight' "
            f"(one constant initial weight; got {initial_weight!r}), not both."
        )
    check_bool(force, "force")
    tol = check_float(tol, "tol", low=0.0, low_inclusive=False)
    max_iter = check_int(max_iter, "max_iter", low=1)
    dist, bounds = check_distance(method, bounds)
    return tol, max_iter, dist, bounds, 1.0 if initial is None else initial


def _cells_design(op: MatrixOperator, mg: _Margins, d: np.ndarray) -> Design:
    """The design of the observed-cell table ``op`` (cells as units) with initial weights ``d``."""
    return Design(op.x, mg.totals, d, pd.RangeIndex(op.n), np.arange(op.n), mg.targets, sp.csr_matrix(op.x.shape))


def _start_scale(op: MatrixOperator | PartitionedOperator, mg: _Margins, initial: np.ndarray, dist: Distance,
                 bounds: tuple[float, float]) -> tuple[float, float]:
    """The factor a solve brings the initial weights by, as the :class:`~microplex.calibration.Calibrator`
    does (:func:`~microplex.calibration.calibrator.bounded_start` of :func:`~microplex.calibration.design.target_scale`,
    whose rule is: only where every unit is in some category): on the observed cells where they are in memory; over
    the partitions from the initial totals ``initial``, where the first pass (``op.last``, at the initial weights)
    counted no unit in no category (margins that cover every unit together, none alone, too). The solve's ratio
    bounds are then ``start_bounds(bounds, factor)`` (the caller's box of weights). 1 where ``bounded_start`` keeps
    the weights given (logit, or bounds a factor would change for another distance). Returned with the targets'
    scale itself (``target_scale``; 1 where the factor is 1 for want of one), at which a count of 0 is sized, as the
    Calibrator sizes it (:func:`~microplex.calibration.calibrator.zero_sized`)."""
    if not rescales(dist, bounds):
        return 1.0, 1.0
    if isinstance(op, MatrixOperator):
        design = _cells_design(op, mg, op.d)
    elif op.last["n_unreached"] == 0:
        design = totals_design(mg.targets, initial)
    else:
        return 1.0, 1.0
    at_targets = target_scale(design)
    return bounded_start(dist, bounds, at_targets), at_targets


def _solve(
    op: MatrixOperator | PartitionedOperator, mg: _Margins, initial: np.ndarray, w0: float, n_units: int,
    first: Point | None, *, dist: Distance, bounds: tuple[float, float], tol: float, max_iter: int, force: bool,
    n_cells: int, passes0: int, weight_col: str | None, initial_weight: float = 1.0,
) -> RakingResult:
    """The guards before and after, and the one solver in between (every path of this module)."""
    tg = mg.targets
    source = (f"the weight column {weight_col!r}" if weight_col is not None
              else f"the 'initial_weight' parameter ({initial_weight:g}) for each of {n_units} units")
    if not np.isfinite(w0) or not np.all(np.isfinite(initial)):
        raise DataValidationError(
            f"The initial weights ({source}) sum to {w0:.6g}: beyond float64, so no calibration can be computed. "
            "Give initial weights on the scale of the targets (e.g. initial_weight = population / records)."
        )
    bad = zero_margins(tg, initial, w0)
    nonneg = only_nonnegative(dist, bounds)
    bad += unreachable_targets(totals_design(tg, initial), *box(np.ones(1), (-np.inf, np.inf), nonneg))
    if bad:
        raise DataValidationError(
            f"{len(bad)} targets cannot be reached by any {'non-negative ' if nonneg else ''}weights: "
            + "; ".join(bad[:10]) + "."
        )
    # solved from the initial weights brought to the targets' scale where they lie far from it, and checked for a
    # collapse against the initial total at that scale, as the Calibrator: weights 1e8 times the targets' read met
    # 5.5e-8 off them, and weights beyond 1e9 times were refused (DataValidationError) where the Calibrator solves
    scale, at_targets = _start_scale(op, mg, initial, dist, bounds)
    solve_bounds = start_bounds(bounds, scale)  # ratios to the weights times scale: the caller's box of weights
    hard = unreachable_targets(totals_design(tg, initial), *box(np.ones(1), bounds, dist.nonnegative))
    if hard:
        msg = (f"Calibration ({dist.name}): these {len(hard)} targets cannot be met within the bounds {bounds}: "
               + "; ".join(hard[:10]) + ".")
        if not force:
            raise ConvergenceError(msg)
        logger.warning(msg)
    # a count's natural size (sum_i d_i |x_ij|, the Calibrator's rounding scale) is its initial total: entries >= 0.
    # From weights times `scale`: the same ratios solve X'(d g) = t / scale, each misfit measured in the targets' units
    # (at scale 1 this is the plain solve: natural=initial gives the solver that denominator itself); held to the
    # rounding of the final sizes as the Calibrator's solve is: a count's final size is what its records' weights add
    # up to in size, sum_i |w_i| (its achieved total only where no weight is negative: a linear solve whose weights
    # of both signs net a count to 1e-6 of that was held to the rounding of 1e-6 and refused where the Calibrator met it)
    t = mg.totals
    # the sizes every test reads: a count's initial total at the start weights, a count of 0's at the targets' scale
    # (zero_sized, as the Calibrator's), in thousandths of which it is solved, checked and reported
    natural = np.where(t == 0, initial * at_targets, initial * scale)

    def solved(lam0: np.ndarray | None, sizes: np.ndarray, n_iter: int, at: Point | None = None) -> SolverResult:
        out = solve_dual(op, t / scale, dist, solve_bounds, tol=tol, max_iter=n_iter, first=at, lam0=lam0,
                         denom=misfit_denominator(t, sizes, tol, zero=True) / scale)
        out.achieved = out.achieved * scale
        if out.g is not None:  # the observed cells: a cell's records share its ratio, their initial weights >= 0
            out.sizes = op.rmatvec(np.abs(op.d * out.g))
        out.sizes = np.asarray(out.sizes, dtype=np.float64) * scale
        return out

    # the first point (lambda = 0) was taken within the bounds given: solved from there where the solve's are those
    sol = on_final_sizes(solved(None, natural, max_iter, first if solve_bounds == bounds else None), t, natural, tol, max_iter,
                         lambda r: r.sizes, lambda r, sizes, n_iter: solved(r.lam, sizes, n_iter), zero=True)
    if isinstance(op, PartitionedOperator):
        total, n_bad = op.last["total_weight"] * scale, op.last["n_nonfinite"]
    else:
        w = op.d * scale * sol.g
        total, n_bad = float(w.sum()), int(np.sum(~np.isfinite(w)))
    met_rtol = met_tolerance(tol)
    # as the Calibrator's survey_errors: rounding of the smaller of the initial and final sizes (counts: sum |w|)
    errors = misfits(sol.achieved, t, smaller_sizes(natural, sol.sizes, t), met_rtol, zero=True)
    if n_bad or not np.all(np.isfinite(sol.lam)):
        raise ConvergenceError(f"Calibration ({dist.name}) failed after {sol.n_iter} iterations: {n_bad} weights are not finite.")
    collapsed = weight_problems(total=total, initial_total=w0 * scale, n_units=n_units)
    if collapsed:
        raise ConvergenceError(f"Calibration ({dist.name}) failed: {collapsed[0]}. Refusing a population of (almost) no weight.")
    problems = target_misses(tg, sol.achieved, errors, met_rtol)
    converged = bool(sol.converged) and not problems
    n_passes = passes0 + (op.passes if isinstance(op, PartitionedOperator) else 0)
    report = pd.DataFrame(
        {
            "margin": [lab[0] for lab in mg.labels],
            "category": [lab[1] for lab in mg.labels],
            "target": t,
            "initial": initial,
            "achieved": sol.achieved,
            "rel_error": relative_errors(sol.achieved, t, natural),  # a count of 0 as its misfit
        }
    )
    summary = {
        "converged": converged, "n_iter": sol.n_iter, "max_rel_error": float(report["rel_error"].max()) if len(t) else 0.0,
        "n_units": n_units, "n_targets": len(t), "method": dist.name, "soft": False, "met_rtol": met_rtol,
        "n_passes": n_passes, "n_cells": n_cells,
    }
    result = RakingResult(sol.lam, report, converged, sol.n_iter, sol.max_misfit, n_cells, weight_col, mg, n_passes,
                          dist, bounds, summary, sol, initial_weight, start_scale=scale)
    if not converged:
        msg = (f"Calibration ({dist.name}) did not converge in {sol.n_iter} iterations: max relative misfit "
               f"{sol.max_misfit:.3g}" + ("; " + "; ".join(problems) if problems and sol.converged else "") + ".")
        msg += _diagnosis(op, mg, dist, solve_bounds, sol.converged, float(sol.max_misfit), scale)
        if not force:  # one report: the error (as Calibrator); a warning as well made it the exception under -W error
            raise ConvergenceError(msg + " Pass force=True to keep these weights.")
        warnings.warn(msg, ConvergenceWarning, stacklevel=3)
    return result


#: Most observed cells on which a failed solve is diagnosed by a linear program (:func:`_diagnosis`).
DIAGNOSE_MAX_CELLS = 200_000


def _diagnosis(op: MatrixOperator | PartitionedOperator, mg: _Margins, dist: Distance, bounds: tuple[float, float],
               solver_converged: bool, misfit: float | None = None, scale: float = 1.0) -> str:
    """For a failed solve on the observed-cell table, the targets that cannot be met together and their closest
    achievable values (:func:`~microplex.calibration.diagnostics.min_violation`, the in-memory Calibrator's
    diagnosis). Cells are exact units here: every record of a cell is in the same targets, so a cell's weight can
    be anything within its records' bounds summed. Partitioned solves and tables above
    :data:`DIAGNOSE_MAX_CELLS` cells get the general hint only. ``scale``: the factor the solve brought the initial
    weights by (:func:`_start_scale`), diagnosed from there as the Calibrator's, within ``bounds`` (the solve's,
    ratios to the weights times ``scale``)."""
    hint = " Check that the margins agree (same grand total) and every category has records."
    if not isinstance(op, MatrixOperator) or op.n > DIAGNOSE_MAX_CELLS:
        return hint
    d = op.d * scale
    design = _cells_design(op, mg, d)
    why, _ = explain_failure(design, *box(d, bounds, dist.nonnegative), solver_converged=solver_converged,
                             misfit=misfit)
    return why or hint


def _solve_cells(cells: np.ndarray, dsum: np.ndarray, mg: _Margins, n_units: int, passes0: int, **kw: Any) -> RakingResult:
    """The collapsed operator: the observed-cell table in memory."""
    op = MatrixOperator(_design(cells, mg.m), dsum)
    initial = op.rmatvec(dsum)
    return _solve(op, mg, initial, float(dsum.sum()), n_units, None, n_cells=len(cells), passes0=passes0, **kw)


def rake_frame(
    frame: pd.DataFrame, margins: Mapping | Targets, weight_col: str | None = None, *, tol: float = 1e-10,
    max_iter: int = 50, force: bool = False, method: str | Distance = "raking", bounds: tuple[float, float] | None = None,
    initial_weight: float | None = None,
) -> RakingResult:
    """In-memory calibration of a DataFrame to margins (the same solve as :func:`rake_dataset`).

    Examples
    --------
    >>> df = pd.DataFrame({"sex": [1, 1, 2, 2], "age": ["y", "o", "y", "o"]})
    >>> res = rake_frame(df, {"sex": {1: 60, 2: 40}, "age": {"y": 50, "o": 50}})
    >>> res.weights(df).round(3).tolist()
    [30.0, 30.0, 20.0, 20.0]
    """
    tol, max_iter, dist, bounds, initial = _check_args(weight_col, tol, max_iter, force, method, bounds, initial_weight)
    if not isinstance(frame, pd.DataFrame):
        raise DataValidationError(f"The 'frame' parameter must be a DataFrame. Got {type(frame).__name__} instead.")
    mg = _Margins(_as_margins(margins))
    # coded once with what each category finds, then settled on the frame's own values (the whole data): the
    # refusals of codes(frame), and the numbers pinned so that result.weights(part) finds their records as here
    (codes, d), held = held_part(frame, mg.coder, weight_col, initial)
    if mg.coder.settle(held):
        codes = mg.coder.codes(frame)
    cells, dsum, _ = _cells(codes, d)
    return _solve_cells(cells, dsum, mg, len(frame), 1, dist=dist, bounds=bounds, tol=tol, max_iter=max_iter,
                        force=force, weight_col=weight_col, initial_weight=initial)


def rake_dataset(
    path: str | os.PathLike,
    margins: Mapping | Targets,
    weight_col: str | None = None,
    *,
    tol: float = 1e-10,
    max_iter: int = 50,
    force: bool = False,
    max_cells: int = 2_000_000,
    client=None,
    method: str | Distance = "raking",
    bounds: tuple[float, float] | None = None,
    initial_weight: float | None = None,
    persons: str | os.PathLike | None = None,
    household_id: str | None = None,
    geography: list[str] | None = None,
) -> RakingResult:
    """Calibrates a Parquet dataset (any size) to count margins, out of core, locally or through Dask.

    Parameters
    ----------
    path : str or path-like
        A Parquet file or (hive-partitioned) dataset, e.g. written by :func:`generate_dataset`. Before
        solving, :class:`DataValidationError` names the path when it does not exist or holds no
        ``.parquet`` file, the first other file a folder holds (a ``README.txt``, a ``data.parq``: every reader
        takes the folder's ``*.parquet`` files, ``.``/``_`` names skipped), and the first file that lacks a margin, weight or geography column the first
        file stores, or stores it as another type (the check of :class:`~microplex.scale.ParquetSource`;
        hive partition columns live in the folder names). ``persons`` datasets are checked the same way.
        Partition columns are read with the types of the dataset's schema file (:func:`generate_dataset`
        writes one) or, without one, as the text of the folder names (``state=01`` is ``"01"``, found by the
        keys ``"01"`` and 1; ``flag=true`` is ``"true"``: a boolean key on it is refused, naming the column).
        A pandas index the files store as metadata only (a RangeIndex with a name, ``df.rename_axis("id")``:
        row numbers) is left out, and refused as a margin, weight or geography column; a file whose pandas
        metadata is damaged is refused, naming it (:func:`microplex.io.pandas_metadata`).
    margins : dict or Targets
        ``{column: {category: total}}``; crossed margins as ``{(c1, c2): {(a, b): total}}`` (the margins
        format of :meth:`microplex.calibration.Targets.from_margins`), or :class:`Targets` of person counts
        on equality filters.
    weight_col : str, default=None
        Column of initial weights (positive), as in :class:`microplex.calibration.Calibrator`; every
        record weighs ``initial_weight`` when ``None``.
    tol : float, default=1e-10
        Convergence when ``|t_j - achieved_j| / (1 + |t_j|) < tol`` for every target (``1 + |t_j|`` at least
        ``2**-40 / tol`` times the target's initial total, as :class:`~microplex.calibration.Calibrator` tests it:
        a count of 0 is met within float64 rounding of its records' initial weight).
    max_iter : int, default=50
    force : bool, default=False
        Return the last iterate with a :class:`ConvergenceWarning` instead of raising
        :class:`ConvergenceError` when the solve does not converge (or targets lie outside ``bounds``).
        Non-finite or collapsed weights and targets no weights can reach raise anyway.
    max_cells : int, default=2000000
        Largest observed-cell table solved in memory; beyond it (or with 0) every evaluation of the
        solver is one pass over the partitions, with memory bounded by the targets.
    client : dask.distributed.Client, default=None
        Cluster to run on; ``None`` uses Dask's local scheduler.
    method : str or Distance, default="raking"
        Calibration distance, as in :class:`microplex.calibration.Calibrator` (any registered distance).
    bounds : (float, float), optional
        Bounds on the weight ratios ``w / d``; required by ``"logit"``.
    initial_weight : float, default=None
        One initial weight ``d`` (> 0) of every record, when the data have no weight column (e.g. the
        population total over the records generated); 1 when ``None``. Not with ``weight_col``. Initial
        weights summing beyond float64, or a margin covering every record whose targets total less than
        1e-9 of the initial weights' total (weights meeting it would be refused as collapsed), raise
        :class:`DataValidationError` naming ``initial_weight`` (or ``weight_col``) before solving.
    persons : str or path-like, default=None
        Household calibration: ``path`` holds households (one weight each, ``weight_col`` a household
        column) and ``persons`` their persons, file by file (the persons of a household file in the persons
        file of the same relative path, as :func:`generate_household_dataset` writes them). Margins (and
        :class:`Targets` of entity ``"person"``) count each household's persons; :class:`Targets` of entity
        ``"household"`` count households. Person margins may use household columns: a margin column is read from
        the persons when they have it (each person's own value), else from the households. Every evaluation of
        the solver is one pass over the pairs of files (``max_cells`` is not used).
    household_id : str, default=None
        The household id column of both datasets; required with ``persons``.
    geography : list of str, default=None
        Nested geography columns, coarsest first (``["state", "county", "tract"]``). One more pass collects
        the distinct areas; before solving, areas that do not nest (a county in two states) and nested
        targets that do not add up (a state's target against the sum of its counties', as
        :func:`microplex.calibration.consistency.check_consistency` compares them) raise
        :class:`DataValidationError` naming the areas. (Targets whose area has no record raise anyway.)

    Returns
    -------
    RakingResult
        ``result.weights(frame)`` gives the weights of any partition's records; ``result.n_passes`` the
        passes over the data.
    """
    import dask
    import dask.dataframe as dd

    tol, max_iter, dist, bounds, initial = _check_args(weight_col, tol, max_iter, force, method, bounds, initial_weight)
    max_cells = check_int(max_cells, "max_cells", low=0)
    if not isinstance(path, str | os.PathLike) or not os.fspath(path):
        raise DataValidationError(f"The 'path' parameter must be a non-empty str or path-like. Got {path!r} instead.")
    if client is not None and not callable(getattr(client, "compute", None)):
        raise DataValidationError(
            f"The 'client' parameter must be a dask.distributed.Client or None. Got {type(client).__name__} instead."
        )
    compute = client.compute if client is not None else None

    def run(obj):
        return obj.compute() if compute is None else compute(obj).result()

    kw = dict(dist=dist, bounds=bounds, tol=tol, max_iter=max_iter, force=force)
    if persons is not None or household_id is not None:
        from ._linked import rake_linked

        if geography is not None:
            raise DataValidationError(
                "The 'geography' check is not available with 'persons' (household calibration) yet; check the "
                "nested targets on the households dataset alone, or leave 'geography' out."
            )
        return rake_linked(path, persons, margins, household_id, weight_col, initial, run, **kw)
    kw.update(weight_col=weight_col, initial_weight=initial)
    mg = _Margins(_as_margins(margins))
    columns = list(dict.fromkeys(mg.columns + ([weight_col] if weight_col else [])))  # a margin may be the weights
    if geography is not None:
        geography = check_names(geography, "geography", allow_empty=False)
    files = parquet_files(path, "Parquet dataset")
    check_text_partition_keys(path, [mg.coder])
    # Dask takes the schema of one file; a later file storing a margin as strings would silently fall out of
    # its categories. Columns the first file stores (not hive partition keys) must be in every file, same type.
    ranges = check_same_schema(files, columns + (geography or []), "Parquet dataset")
    named = [c for c in dict.fromkeys(columns + (geography or [])) if c in ranges]
    if named:
        raise DataValidationError(
            f"The Parquet dataset {str(path)!r} holds the pandas index {named} as metadata only (a RangeIndex, "
            "row numbers 0, 1, ..., n - 1, as pandas writes df.rename_axis(...) of its default index), no column of "
            "its files; it cannot be a margin, weight or geography column. Write it as a column "
            "(df.reset_index().to_parquet(...)), or name another column.")
    # partition columns typed as written ("01" stays "01"), a categorical one too; a RangeIndex with a name stored
    # as metadata only is left out (Dask's default index=None failed on it with KeyError '[nan] not in index')
    options = {**dask_read_options(path, files), **({"index": False} if ranges else {})}  # the folder listed once
    try:
        ddf = dd.read_parquet(dask_files(path, files), **options)  # the files checked above, no other
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise DataValidationError(f"Cannot read the Parquet dataset {str(path)!r}: {exc}") from exc
    if ddf.index.name is not None:  # a pandas index the files store (pid): a column, as read_table reads it
        ddf = ddf.reset_index()  # (not read_parquet(index=False), which warns on every partition under pandas 3)
    missing = [c for c in columns if c not in ddf.columns]
    if missing:
        raise DataValidationError(
            f"The Parquet dataset {str(path)!r} lacks margin or weight columns {missing}; it has {list(ddf.columns)}."
        )
    if geography is not None:
        from ._areas import area_table, check_areas, merge_areas

        missing = [c for c in geography if c not in ddf.columns]
        if missing:
            raise DataValidationError(f"The geography columns {missing} are not in the dataset {str(path)!r}.")
        areas = run(_tree([dask.delayed(area_table)(p, geography) for p in ddf[geography].to_delayed()], merge_areas))
        check_areas(areas, mg.targets, geography)
    ddf = ddf[columns]
    pieces = ddf.to_delayed()

    def coded(make: Callable = _frame_part) -> list:
        coder = dask.delayed(mg.coder)  # one task of the graph, not a copy of the margins in every partition's task
        return [dask.delayed(make)(p, coder, weight_col, initial) for p in pieces]

    # numbers and codes '015' kept with their number 15 find their records among the values of every file ("15" in
    # one, "015" in another), collected in the first pass from the partitions it reads anyway, as what every category
    # found (two that name the same records over the files are refused); where a file found a number elsewhere, the
    # pass is made again with the numbers pinned
    passes = _Passes(run, coded, lambda: coded(held_part), union_forms, mg.coder.settle)

    if max_cells > 0:
        cells, dsum, count = passes(lambda ps: _tree([dask.delayed(_part_cells)(p) for p in ps], _merge))
        if len(cells) <= max_cells:
            logger.info("Calibrating %s: %d observed cells, solved in memory.", path, len(cells))
            return _solve_cells(cells, dsum, mg, int(round(count.sum())), 1 + passes.again + (geography is not None),
                                **kw)

    logger.info("Calibrating %s: one pass over %d partitions per evaluation.", path, len(passes.parts))

    def reduce(lam, distance, bnds, need_potential):
        at = dask.delayed(lam)  # shipped once a pass, not with every partition's task
        return passes(lambda ps: _tree([dask.delayed(_part_point)(p, mg.m, at, distance, bnds) for p in ps],
                                       add_parts))

    op = PartitionedOperator(mg.m, reduce)
    first = op.at(np.zeros(mg.m), dist, bounds)  # lambda = 0: the initial totals (F(0) = 1)
    w0, n_units = op.last["total_weight"], op.last["n_units"]
    return _solve(op, mg, first.achieved, w0, n_units, first, n_cells=0,
                  passes0=int(max_cells > 0) + passes.again + (geography is not None), **kw)
