"""Sparse reweighting: the smallest set of records whose weights still hit the targets.

Two methods share the calibration targets, design matrix, entities and diagnostics:

* ``"l1"``: the linear program ``min sum_i w_i / d_i`` subject to ``|X'w - t| <= tol |t|``, ``w >= 0``,
  solved by HiGHS (a mean target within ``tol |v|`` of its value ``v``:
  :func:`~microplex.calibration.feasibility.band_constraint`); a vertex has at most one non-zero weight per
  linearly independent constraint.
* ``"l0"``: a budget of ``K`` records. With ``auxiliary`` (internal margins of the full candidate
  population, :mod:`microplex.calibration.auxiliary`), the records are chosen by linear programs that keep
  the targets within the tolerance and fit the auxiliary totals in L1, each kept weight capped at a few
  Horvitz-Thompson weights (:mod:`microplex.calibration._subset_choice`); over the caps, the calibrated
  subset with the smallest auxiliary miss is kept (``summary["auxiliary_cap"]``, ``["auxiliary_l1"]``,
  ``["auxiliary_tries"]``). Otherwise (or where no cap gives a subset within the tolerance), first a
  balanced sample of ``K`` records alone; if it cannot meet the tolerance, a core from the support of an
  ``"l1"`` vertex (favouring records of that sample) plus ``K - |core|`` balanced records. The balanced
  sample is systematic rounding of ``pi_i ~ d_i`` along the records ordered by their target cells. The
  kept records start from ``d_i / pi_i`` and are calibrated with the chosen distance (raking by default;
  the one Newton solver, optionally bounded): the targets exactly, the auxiliaries softly; a subset too
  small for both is calibrated to the targets alone (``summary["auxiliary_converged"]`` False, with a
  :class:`ConvergenceWarning`; ``["auxiliary_dropped"]`` counts such solves over every subset tried). Where
  no calibration of an auxiliary program's records meets the tolerance, the program chooses them again with
  half the tolerance, so that their calibration has room (``summary["auxiliary_tries"]``,
  ``"program_tolerance"``); where that fails too, a linear program's own weights are kept (with auxiliaries,
  the auxiliary program over the kept records, else the targets' vertex: ``"weights"``).
  ``subset_solve`` says what happens when a subset cannot meet the targets exactly:
  ``"exact_then_soft"`` (default) then solves softly (misses penalized at a third of the tolerance) and
  counts it in ``summary["soft_subset_solves"]``; ``"exact"`` keeps the exact solve's last iterate; ``"soft"``
  always solves softly. Either way the fit fails if the best error exceeds the tolerance.
  Without a budget, ``K`` is the core size.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from microplex._errors import ConvergenceError, ConvergenceWarning, DataValidationError
from microplex._estimator import DEPRECATED, deprecated_random_state
from microplex._params import check_bool, check_choice, check_float, check_int, check_names, shown
from microplex._random import content_order, named_child

from .calibrator import CalibrationResult, _FittedResult, as_targets, at_start, zero_sized
from ._checks import check_bounds, check_distance
from .design import Design, build_design, in_weight_units, reordered, target_order, target_scale, weight_unit
from .feasibility import NEGLIGIBLE_RATIO, achieved_values, lp_vertex, solution_problems, target_errors
from .diagnostics import design_effect, kish_ess, weight_ratio_range
from .distances import Distance
from .auxiliary import auxiliary_design, cell_crosses, crossing
from ._sparse_frontier import check_reachable, checked_inputs, frontier_table, parameter_design
from ._subset_choice import auxiliary_l1, best_auxiliary_subset
from ._subset_refine import REFINE_PENALTIES, refine_subset, relative_cells
from .subsets import (
    _balanced_order,
    _max_error,
    calibrate_subset,
    _stratifiers,
    _systematic,
    _untargeted_columns,
    default_holdout,
    inclusion_probabilities,
)
from .targets import Target, Targets

__all__ = ["SparseCalibrator", "default_holdout", "inclusion_probabilities"]

logger = logging.getLogger(__name__)

_SUBSET_SOLVES = ("exact_then_soft", "exact", "soft")
#: Above this many cells, the target cells' crosses are left out of the refinement's objective.
MAX_CROSS_CELLS = 20_000


class SparseCalibrator(_FittedResult):
    """Creates a sparse reweighting estimator: few records with non-zero weights that still hit the targets.

    Parameters
    ----------
    max_records : int, optional
        Budget of records (households with ``household_col``) to keep. Without it, ``"l0"`` searches the
        smallest budget that meets ``tolerance``.
    tolerance : float, default=0.005
        Largest relative miss allowed on every target.
    method : {"l0", "l1"}, default="l0"
        Budgeted balanced rounding + calibration, or the HiGHS linear program (see module docstring).
    bounds : (float, float), optional
        ``"l0"``: bounds on the kept records' weight ratios to their starting weights ``d_i / pi_i``
        (default: ``(0, inf)``, non-negative weights); tighter bounds keep weights closer to the initial
        ones at the price of a larger budget. Where no kept weights within them meet the targets, the fit
        raises :class:`ConvergenceError` (``force=True`` warns and keeps the best weights). ``"l1"``
        refuses bounds.
    seed : int or None, default=0
        Seed of the rounding and of the tie-breaking between alike records in the auxiliary programs; the
        result is deterministic for a seed (``None``: fresh entropy, a different subset on every fit).
    stratify : list of str or "auto", optional
        ``"l0"``: columns that also order the records within their target cells before the systematic
        rounding (through the first principal component of their ranks), so that the subset keeps their
        distribution too; ``"auto"``: every column no target uses. Default: target cells and values only.
    force : bool, default=False
        Keep the best weights with a warning instead of raising when the tolerance cannot be met. An empty
        subset, collapsed weights or unreachable targets raise anyway.
    distance : str or Distance, default="raking"
        ``"l0"``: calibration distance of the kept records (any registered distance, as in
        :class:`Calibrator`; ``"logit"`` needs ``bounds``).
    subset_solve : {"exact_then_soft", "exact", "soft"}, default="exact_then_soft"
        ``"l0"``: how a subset is calibrated (see the module docstring); the number of soft solves is in
        ``summary["soft_subset_solves"]``.
    auxiliary : "auto", list of str, Targets or None, default="auto"
        ``"l0"``: internal margins of the full candidate population that choose the records (linear
        programs, see the module docstring) and that the subset is also calibrated to,
        *softly* (penalized misses; the official targets stay exact), so that what was not targeted
        survives: ``"auto"`` crosses the target area (the filter column most targets use) with every other
        column's categories or within-area quantile groups (a number, date or duration with more than 20
        values), a code nested in the area (a PUMA within states) by its values, another column of more
        than 20 values by each area's most frequent values (make an integer code that is not nested a
        category to have it crossed so; ``summary["auxiliary_columns"]`` says how each column was
        crossed; see
        :func:`~microplex.calibration.auxiliary.crossing`), and, where the count targets give margins separately
        (state x education, state x experience, each PUMA's count), their two-way crosses (PUMA x education:
        :func:`~microplex.calibration.auxiliary.crossed_target_cells`); a list names the
        columns to cross (the crosses of the margins join it); a :class:`Targets` gives the auxiliary totals (a sum's or mean's row divided by the
        mean size of its records' values, so that it weighs like a count of its records in any unit:
        :func:`~microplex.calibration.auxiliary.in_count_units`); ``None`` calibrates to the
        official targets only.
    auxiliary_strength : float, default=1.0
        ``"l0"``: weight ``s`` of the auxiliary misses: a cell with full-population count ``t_j`` costs
        ``s / (2 max(t_j, D))`` per squared miss (``D``: the subset's mean starting weight), so a first
        Newton step removes about ``s / (1 + s)`` of each auxiliary miss; larger values match the
        auxiliaries more closely at the price of more dispersed weights.
    refine : bool, default=True
        ``"l0"`` with auxiliaries: after the choice, swap kept records for alike candidates (the same
        count-target cells, at the same weight) while the miss of the auxiliary totals falls, the
        auxiliaries extended by every count-target cell crossed with the auxiliary columns (how each
        cell's records spread over what was not targeted: categories, a frequent-categories column's 4
        most frequent values in the cell and the rest, or a quantile column's groups within the cell and
        its bands of national quintiles, half weight each, :func:`~microplex.calibration.auxiliary.cell_crosses`;
        left out above ``MAX_CROSS_CELLS`` cells, and
        with explicit auxiliary ``Targets``), half of each cell's miss counted as population misplaced, half
        relative to the cell's size (a cell smaller than a kept record's mean weight as of that weight,
        :func:`~microplex.calibration._subset_refine.relative_cells`); the swapped subset is calibrated again
        (the targets exactly) and kept only where it meets the tolerance with a smaller miss. The sums and
        means a swap moves are penalized at each of ``REFINE_PENALTIES`` in turn (2, 1, 0.5 and 0.25
        kept records' worth per tolerance missed), each from the best subset so far
        (:mod:`microplex.calibration._subset_refine`; ``summary["refine_swaps"]``, over every rung, ``["refined"]``).
    random_state : int, optional
        Deprecated alias of ``seed`` (a :class:`FutureWarning` in :meth:`fit`; removed in the next release).

    Attributes
    ----------
    result_ : CalibrationResult
        Weights (mostly exact zeros), report and summary (``n_nonzero``, ``max_rel_error``,
        ``mean_rel_error``, ``seconds``; with auxiliaries ``auxiliary_l1``, the L1 miss of the auxiliary
        totals over the population, ``sum_j |a_j - t_j| / N``: summed over the cells of every auxiliary column,
        a misplaced person counting in the cell left and in the cell joined, so it can exceed 1 (0.34 on the
        census2000 example of ``docs/calibration.md``; an explicit auxiliary sum's miss in units of its records'
        mean value), ``auxiliary_cap``, the weight cap that chose the records (None:
        balanced sampling chose them), ``auxiliary_converged``, False where the soft auxiliary
        calibration of the kept records did not converge and was left out, ``auxiliary_tries``,
        ``refine_swaps``, the swaps of the refinement, and ``refined``, whether its subset was kept). Beside
        them the keys of every calibration result: ``converged`` (every target within the tolerance and the
        weights within the bounds: False only under ``force=True``), ``n_units`` (candidates), ``n_targets``,
        ``method``, ``soft`` (False: every target is held to the tolerance), ``met_rtol``, ``n_negative``,
        ``min_ratio`` and ``max_ratio`` (of the kept records' weights to their initial ones), and ``n_iter``,
        None (several solves choose the subset; ``soft_subset_solves`` counts the soft ones).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"region": rng.integers(0, 4, 2000), "sex": rng.integers(0, 2, 2000), "weight": 10.0})
    >>> targets = Targets.from_margins({("region", "sex"): df.groupby(["region", "sex"])["weight"].sum()})
    >>> sc = SparseCalibrator(max_records=100).fit(df, targets, weight_col="weight")
    >>> int((sc.weights > 0).sum()), bool(sc.summary["max_rel_error"] < 1e-8)
    (100, True)
    """

    def __init__(
        self,
        max_records: int | None = None,
        *,
        tolerance: float = 0.005,
        method: str = "l0",
        bounds: tuple[float, float] | None = None,
        seed: int = 0,
        stratify: str | Sequence[str] | None = None,
        force: bool = False,
        distance: str | Distance = "raking",
        subset_solve: str = "exact_then_soft",
        auxiliary: str | Sequence[str] | Targets | None = "auto",
        auxiliary_strength: float = 1.0,
        refine: bool = True,
        random_state: int | str = DEPRECATED,
    ) -> None:
        self.max_records = max_records
        self.tolerance = tolerance
        self.method = method
        self.bounds = bounds
        self.seed = seed
        self.stratify = stratify
        self.force = force
        self.distance = distance
        self.subset_solve = subset_solve
        self.auxiliary = auxiliary
        self.auxiliary_strength = auxiliary_strength
        self.refine = refine
        self.random_state = random_state

    def _check_params(self) -> tuple[float, float] | None:
        check_choice(self.method, "method", ("l0", "l1"))
        check_int(self.max_records, "max_records", low=1, allow_none=True)
        check_float(self.tolerance, "tolerance", low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
        bounds = check_bounds(self.bounds, "bounds")
        if bounds is not None and not (0 <= bounds[0] < 1 < bounds[1]):
            raise DataValidationError(f"The 'bounds' parameter must satisfy 0 <= lower < 1 < upper. Got {self.bounds!r}.")
        if bounds is not None and self.method == "l1":
            raise DataValidationError(
                "The 'bounds' parameter applies to method='l0' only: the 'l1' vertex puts each kept record's weight "
                f"where the linear program needs it. Got bounds={self.bounds!r} with method='l1'."
            )
        self._seed = deprecated_random_state(self.seed, self.random_state, "SparseCalibrator", stacklevel=4)
        if not (self.stratify is None or (isinstance(self.stratify, str) and self.stratify == "auto")):
            if isinstance(self.stratify, str):
                raise DataValidationError(
                    f"The 'stratify' parameter must be None, 'auto' or a list of column names. Got {self.stratify!r} instead."
                )
            check_names(self.stratify, "stratify")
        check_bool(self.force, "force")
        check_choice(self.subset_solve, "subset_solve", _SUBSET_SOLVES)
        if isinstance(self.auxiliary, str):
            check_choice(self.auxiliary, "auxiliary", ("auto",))
        elif not (self.auxiliary is None or isinstance(self.auxiliary, Targets)):
            check_names(self.auxiliary, "auxiliary")
        check_float(self.auxiliary_strength, "auxiliary_strength", low=0.0, low_inclusive=False)
        check_bool(self.refine, "refine")
        check_distance(self.distance, bounds, "distance")
        return bounds

    # ------------------------------------------------------------------ solvers
    def _calibrate_subset(
        self, design: Design, keep: np.ndarray, base: np.ndarray, aux: tuple[Any, np.ndarray] | None | str = "fit",
    ) -> tuple[np.ndarray, float]:
        """Weights on the kept units (calibrated from ``base``), and the max relative target error (see
        :func:`~microplex.calibration.subsets.calibrate_subset`); counts soft solves and dropped auxiliaries.
        ``aux``: the soft totals, by default the fit's auxiliaries."""
        dist, bounds = check_distance(self.distance, self.bounds, "distance")
        if self.bounds is None:  # a subset's weights stay non-negative
            bounds = (0.0, math.inf)
        if isinstance(aux, str):  # set by fit; None outside fit (benchmarks) or without auxiliaries
            aux = getattr(self, "_aux", None)
        w, err, soft, dropped = calibrate_subset(
            design, keep, base, dist, bounds, self.tolerance, self.subset_solve, aux, self.auxiliary_strength
        )
        self._soft_solves = getattr(self, "_soft_solves", 0) + soft  # also when called outside fit (benchmarks)
        self._aux_dropped = getattr(self, "_aux_dropped", 0) + dropped
        self._last_aux_dropped = bool(dropped)
        self._last_soft = bool(soft)
        return w, err

    def _fit_l0(self, design: Design, extra: Sequence[np.ndarray] = ()) -> tuple[np.ndarray, float, int]:
        n = len(design.d)
        rng = np.random.default_rng(self._seed)
        order = _balanced_order(design.x, rng, extra)
        u = rng.random()

        def balanced(d: np.ndarray, k: int, scale: int) -> np.ndarray:
            """Mask of a balanced sample of ``k`` units, ``pi_i ~ d_i``, systematic along ``order``."""
            pi = inclusion_probabilities(d, k)
            keep = np.zeros(n, dtype=bool)
            keep[order[_systematic(pi[order], np.random.default_rng(int(u * scale)))]] = True
            return keep

        def attempt(core: np.ndarray, k: int) -> tuple[np.ndarray, float]:
            """Calibrated weights of ``core`` plus a balanced sample, ``k`` units in all."""
            idx = np.flatnonzero(core | balanced(np.where(core, 0.0, design.d), k - int(core.sum()), 2**31))
            pi_all = inclusion_probabilities(design.d, len(idx))
            w_keep, err = self._calibrate_subset(design, idx, design.d[idx] / np.maximum(pi_all[idx], 1e-12))
            w = np.zeros(n)
            w[idx] = w_keep
            return w, err

        aux = getattr(self, "_aux", None)
        has_aux = aux is not None and aux[0].shape[1] > 0
        if has_aux and (self.max_records is None or self.max_records < n):
            k_aux = self._fit_l1(design)[2] if self.max_records is None else int(self.max_records)

            def attempt_flags(core: np.ndarray, k: int) -> tuple[np.ndarray, float, bool, bool]:
                return (*attempt(core, k), not self._last_aux_dropped, self._last_soft)

            chosen, self._aux_tries = best_auxiliary_subset(
                design, aux, self.tolerance, k_aux, attempt_flags, lambda size: balanced(design.d, size, 2**30),
                1.0 + np.random.default_rng(int(u * 2**29)).random(n),
            )
            # the auxiliaries chose the records, unless their weights (a linear program's where no calibration of
            # them met the targets) break the bounds; otherwise the path below (and its errors)
            if chosen is not None and not _outside_bounds(design, chosen[0], check_bounds(self.bounds, "bounds")):
                self._aux_choice = {"auxiliary_cap": chosen[3], "auxiliary_converged": chosen[4]}
                return chosen[0], chosen[1], k_aux

        def done(w: np.ndarray, err: float, k: int, converged: bool) -> tuple[np.ndarray, float, int]:
            self._aux_choice = {"auxiliary_cap": None, "auxiliary_converged": converged if has_aux else None}
            return w, err, k

        no_core = np.zeros(n, dtype=bool)
        cost = None
        if self.max_records is not None and self.max_records < n:
            w, err = attempt(no_core, int(self.max_records))  # a balanced sample alone often suffices
            if err <= self.tolerance:
                return done(w, err, int(self.max_records), not self._last_aux_dropped)
            cost = np.where(w > 0, 0.01, 1.0) / design.d  # core records from that sample where possible
        # a feasible core: the LP vertex support (at most one record per independent target)
        w_lp, _, n_core = self._fit_l1(design, cost)
        k = n_core if self.max_records is None else min(int(self.max_records), n)
        if k < n_core:
            w_short, best = attempt(np.zeros(n, dtype=bool), k)
            msg = (
                f"{shown('max_records')}={k} is below the {n_core} records the targets need within tolerance "
                f"{self.tolerance:g} (the support of the linear-programming vertex); a balanced sample of {k} "
                f"records reaches a max relative error of {best:.4g}. Raise {shown('max_records')} or the tolerance."
            )
            if not self.force:
                raise DataValidationError(msg)
            # force=True: the balanced sample's weights, which fit() reports as beyond the tolerance (a warning)
            return done(w_short, best, k, not self._last_aux_dropped)
        w, err = attempt(w_lp > 0, k)
        converged = not self._last_aux_dropped
        if err > self.tolerance and cost is not None:  # the plain vertex as the core instead
            w_lp2, _, n_core2 = self._fit_l1(design)
            if n_core2 <= k:
                w2, err2 = attempt(w_lp2 > 0, k)
                if err2 < err:
                    w, err, converged = w2, err2, not self._last_aux_dropped
        err_lp = _max_error(design, w_lp, self.tolerance)
        if err > self.tolerance and err_lp <= self.tolerance:  # the vertex itself (an exact solve is infeasible)
            w, err, converged = w_lp, err_lp, False
        return done(w, err, k, converged)

    def _refine(
        self, candidates: pd.DataFrame, design: Design, tg: Targets, weight_col: str, household_col: str | None,
        w: np.ndarray, err: float, columns: dict[str, str] | None,
    ) -> tuple[np.ndarray, float]:
        """The subset refined by swaps (see the ``refine`` parameter), or ``w`` where that is not better;
        ``columns``: the auxiliary columns and how each is crossed, resolved by the fit (None for auxiliary
        targets)."""
        x_aux, t_aux = self._aux
        if columns is None:
            x_obj, t_obj = x_aux, t_aux
        else:
            x_c, t_c, _ = cell_crosses(candidates, design, tg, weight_col, household_col, columns=columns,
                                       max_cells=MAX_CROSS_CELLS)
            x_obj, t_obj = sp.hstack([x_aux, x_c], format="csr"), np.concatenate([t_aux, t_c])
        # the swaps and the choice between subsets count half of each cell's miss relative to its size (cells
        # smaller than a kept record's mean weight as of that weight); the calibrations below fit the cells as they are
        x_cmp, t_cmp = relative_cells(x_obj, t_obj, float(w.sum()) / int((w > 0).sum()))
        rng = np.random.default_rng(named_child(self._seed, "refine"))
        population = float(design.d.sum())
        best = (auxiliary_l1(x_cmp, t_cmp, w, population), w, err)
        self._refine_info = {"refine_swaps": 0, "refined": False}
        for penalty in REFINE_PENALTIES:  # each rung from the best subset so far
            w_swap, swaps, _, _ = refine_subset(design, best[1], x_cmp, t_cmp, self.tolerance, rng, penalty=penalty)
            self._refine_info["refine_swaps"] += swaps
            if swaps == 0:
                continue
            # the swapped subset calibrated again (the targets exactly), with the fit's auxiliaries or the
            # objective's cells softly, and, without bounds, as it is (the fit's weights on alike records); the
            # smallest miss wins. Bounds are on the ratios to d_i / pi_i: then the calibration starts there.
            keep = np.flatnonzero(w_swap > 0)
            if self.bounds is None:
                options = [(w_swap, _max_error(design, w_swap, self.tolerance), self._aux_choice["auxiliary_converged"])]
                base = w_swap[keep]
            else:
                options = []
                base = design.d[keep] / np.maximum(inclusion_probabilities(design.d, len(keep))[keep], 1e-12)
            for soft in ([self._aux] if x_obj is x_aux else [self._aux, (x_obj, t_obj)]):
                w_keep, err_cal = self._calibrate_subset(design, keep, base, soft)
                w_cal = np.zeros_like(w)
                w_cal[keep] = w_keep
                options.append((w_cal, err_cal, not self._last_aux_dropped))
            for cand, cand_err, converged in options:
                if cand_err <= self.tolerance:
                    miss = auxiliary_l1(x_cmp, t_cmp, cand, population)
                    if miss < best[0]:
                        best = (miss, cand, cand_err)
                        self._refine_info["refined"] = True
                        self._aux_choice["auxiliary_converged"] = converged
        return best[1], best[2]

    def _start_factor(self, design: Design) -> float:
        """The factor the fit brings the initial weights by before solving (``result_.start_scale``): the targets'
        scale (:func:`~microplex.calibration.design.target_scale`) without bounds, 1 with them (ratios to the weights
        given)."""
        return target_scale(design) if self.bounds is None else 1.0

    def _fit_l1(self, design: Design, cost: np.ndarray | None = None) -> tuple[np.ndarray, float, int]:
        w = lp_vertex(design, self.tolerance, cost)
        return w, _max_error(design, w, self.tolerance), int((w > 0).sum())

    # ------------------------------------------------------------------ public API
    def fit(
        self,
        candidates: pd.DataFrame,
        targets: Targets | Sequence[Target] | pd.DataFrame | Mapping,
        weight_col: str = "weight",
        *,
        household_col: str | None = None,
    ) -> SparseCalibrator:
        """Selects and weights a sparse subset of ``candidates`` (households with ``household_col``).

        Returns
        -------
        self : SparseCalibrator
        """
        start = time.perf_counter()
        bounds = self._check_params()
        tg = checked_inputs(candidates, targets, weight_col, household_col)
        # records, columns and targets in orders set by what they are (the same in any order they come in): the
        # balanced samples draw by position and along the targets' cells, the automatic auxiliaries follow the
        # columns, and the linear programs break ties by position, so the order they were given in chose among
        # equally good subsets (one set of records and targets, several answers)
        # a household's persons are ordered by their values too, unless its first record carries household values
        # its other persons do not share (a household target or a stratify column read on a varying column)
        order = content_order(candidates, groups=household_col, keep_first=household_col is not None and _first_read(
            candidates, tg, weight_col, household_col, self.auxiliary, self.stratify if self.method != "l1" else None))
        columns = sorted(range(candidates.shape[1]), key=lambda j: (str(candidates.columns[j]), j))
        records = candidates.iloc[order, columns]
        by_target = target_order(tg)
        tg = Targets([tg[int(k)] for k in by_target])
        auxiliary = self.auxiliary
        if isinstance(auxiliary, Targets):
            auxiliary = Targets([auxiliary[int(k)] for k in target_order(auxiliary)])
        elif auxiliary is not None and not isinstance(auxiliary, str):
            auxiliary = sorted(auxiliary, key=str)
        design = build_design(records, tg, weight_col, household_col)
        check_reachable(design, self.tolerance, self.method, self.max_records)
        # solved from the initial weights brought to the targets' scale (a power of two, target_scale; without
        # bounds, which are ratios to the weights given): weights of 1e-9 against targets for a population of 3.3e8
        # put the totals beyond HiGHS's limits in any unit of the weights, and the feasible problem was refused
        factor = self._start_factor(design)
        # its targets of 0 solved and judged in thousandths of their records' size at the targets' scale, as the
        # Calibrator's (zero_sized): within bounds, solved from the weights given, from weights of 1 against counts
        # 1e6 times them the subset's exact solve missed a sum of 0 by float64 rounding there and fell back to a
        # soft one
        design = zero_sized(design, target_scale(design))
        scaled = at_start(design, factor)
        # solved in units of the typical weight (a power of two): the same records and weights, scaled, whatever
        # the units of the weights and totals (the linear programs' tolerances and limits are absolute)
        unit = weight_unit(scaled.d)
        work = in_weight_units(scaled, unit)
        aux_l1 = None
        aux_columns: dict[str, str] | None = None
        self._soft_solves = 0
        self._aux_dropped = 0
        self._aux = None
        self._aux_tries: list[dict[str, Any]] = []
        self._aux_choice = {"auxiliary_cap": None, "auxiliary_converged": None}
        self._refine_info = {"refine_swaps": 0, "refined": False}
        if self.method == "l1":
            w, err, budget = self._fit_l1(work)
            if self.max_records is not None and budget > self.max_records:
                raise DataValidationError(
                    f"The 'l1' vertex keeps {budget} records, more than {shown('max_records')}={self.max_records}; "
                    f"use {shown('method')}='l0' for a budget, or raise {shown('max_records')}."
                )
        else:
            if self.stratify == "auto":
                strat = _untargeted_columns(records, tg, weight_col, household_col)
            else:
                strat = list(self.stratify or [])
            missing = [c for c in strat if c not in records.columns]
            if missing:
                raise DataValidationError(f"stratify columns {missing} are not in the candidates.")
            try:  # the auxiliary matrix lives for this fit only, also when it fails
                if auxiliary is not None:
                    if not isinstance(auxiliary, Targets):  # resolved once, for the programs and the refinement
                        aux_columns = crossing(records, tg, weight_col, household_col, auxiliary)
                    x_aux, t_aux, _ = auxiliary_design(records, scaled, tg, weight_col, household_col,
                                                       columns=auxiliary if aux_columns is None else aux_columns,
                                                       budget=self.max_records)
                    self._aux = (x_aux, t_aux / unit)
                w, err, budget = self._fit_l0(work, _stratifiers(records, design, strat))
                if self.refine and self._aux is not None and self._aux[0].shape[1] > 0 and err <= self.tolerance:
                    w, err = self._refine(records, work, tg, weight_col, household_col, w, err, aux_columns)
                if self._aux is not None and self._aux[0].shape[1] > 0:
                    aux_l1 = auxiliary_l1(self._aux[0], self._aux[1], w, float(work.d.sum()))
            finally:
                self._aux = None
        w = w * unit
        design, units = reordered(design, records=np.argsort(order), targets=np.argsort(by_target))  # the caller's
        w = w[units]
        # weights that a soft solve drove towards zero (down to 1e-300) are not kept records: exact zeros, as the
        # linear program's vertex gives them
        w = np.where(w < NEGLIGIBLE_RATIO * factor * design.d, 0.0, w)
        # every error measured at the weights the solve started from (a target of 0 against a thousandth of its
        # records' size at the targets' scale, zero_sized), as a Calibrator's summary and report() read them
        started = at_start(design, factor)
        rel = target_errors(started, w)
        err = float(rel.max()) if len(rel) else 0.0
        # held to the tolerance: a miss within float64 rounding of a target's natural size meets it (report()'s "met")
        within = self.tolerance * (1 + 1e-9)
        rel_held = target_errors(started, w, within)
        err_held = float(rel_held.max()) if len(rel_held) else 0.0
        nz = w > 0
        if self._aux_choice["auxiliary_converged"] is False:
            warnings.warn(
                f"The soft calibration to the auxiliary totals did not converge on the {int(nz.sum())} kept records "
                "(too few for the targets and the auxiliaries together): the auxiliaries chose the records; their "
                "weights are a calibration to the targets alone or, where none met the tolerance, a linear program's "
                "(the targets within the tolerance, the least L1 miss of the auxiliaries; summary['auxiliary_tries'] "
                "says which: 'weights') (summary['auxiliary_converged'] is False).",
                ConvergenceWarning, stacklevel=2,
            )
        summary: dict[str, Any] = {
            "method": self.method,
            "n_nonzero": int(nz.sum()),
            "n_candidates": len(w),
            "budget": budget,
            "max_rel_error": err,
            "mean_rel_error": float(rel.mean()) if len(rel) else 0.0,
            "tolerance": self.tolerance,
            "within_tolerance": bool(err_held <= within),
            "soft_subset_solves": self._soft_solves,
            "auxiliary_dropped": self._aux_dropped,
            **self._aux_choice,
            "auxiliary_l1": aux_l1,
            "auxiliary_columns": aux_columns,
            "auxiliary_tries": list(self._aux_tries),
            **self._refine_info,
            "kish_ess": kish_ess(w[nz]) if nz.any() else 0.0,
            "design_effect": design_effect(w[nz]) if nz.any() else math.nan,
            "met_rtol": self.tolerance,
            # the keys every calibration result has (calibrator.SUMMARY_KEYS), as a Calibrator's summary reads them:
            # "converged" is set below (the tolerance met and the bounds kept); several solves choose the subset,
            # so no one iteration count stands for the fit
            "converged": False,
            "n_iter": None,
            "n_units": len(w),
            "n_targets": len(design.totals),
            "soft": False,
            "n_negative": int((w < 0).sum()),
            **dict(zip(("min_ratio", "max_ratio"), weight_ratio_range(w[nz], design.d[nz]) if nz.any()
                       else (math.nan, math.nan))),
            "seconds": time.perf_counter() - start,
        }
        # the guard of every sparse solve: never an empty subset, never collapsed or non-finite weights (and below,
        # the kept weights within the bounds asked for: a fallback such as the linear program's vertex ignores them).
        # Collapsed against the weights the solve started from, as a Calibrator's check reads them: from weights 1e9
        # times the targets' scale, kept weights summing to the targets read collapsed against the weights as given
        problems = solution_problems(started, w, errors=None, tol=self.tolerance)
        if not nz.any() or problems:
            raise ConvergenceError(
                f"Sparse calibration ({self.method}) found no valid subset: "
                + "; ".join(problems or [f"it keeps 0 of {len(w)} records"])
                + ". Check the targets (a population count fixes the scale of the weights)."
            )
        outside = _outside_bounds(design, w, bounds)
        if outside:
            fallback = ""
            if self.max_records is not None and summary["n_nonzero"] < min(int(self.max_records), len(w)):
                # the records of a linear program (the targets' vertex), which ignores the bounds: not the budget's
                fallback = (f" (no subset of {shown('max_records')}={self.max_records} met the targets within the "
                            f"bounds; these {summary['n_nonzero']} records are a linear program's, whose weights the "
                            "bounds do not constrain)")
            msg = (
                f"Sparse calibration ({self.method}) with {summary['n_nonzero']} records could not keep the weights "
                f"within bounds={self.bounds!r}: {outside}{fallback}. The records that meet the targets need weights "
                f"further from their starting ones: raise {shown('max_records')}, widen the bounds or the tolerance."
            )
            if not self.force:
                raise ConvergenceError(msg)
            warnings.warn(msg + " (force=True: keeping these weights)", ConvergenceWarning, stacklevel=2)
        summary["converged"] = bool(summary["within_tolerance"] and not outside)
        if not summary["within_tolerance"]:
            worst = np.argsort(-rel_held, kind="stable")[:5]
            ach = achieved_values(design, w)
            listed = "; ".join(f"{design.targets[j].name} = {design.targets[j].value:.6g} (achieved {ach[j]:.6g}, "
                               f"relative error {rel_held[j]:.6g})" for j in worst)
            # 6 digits, so that an error just above the tolerance does not read as equal to it
            if self.method == "l1":
                found = ("the 'l1' vertex, whose linear program spends the tolerance up to the solver's precision; "
                         f"raise the tolerance, or use {shown('method')}='l0', which calibrates its records exactly")
            else:
                found = f"best achievable with this budget; raise {shown('max_records')} or the tolerance"
            msg = (
                f"Sparse calibration ({self.method}) with {summary['n_nonzero']} records reaches a max relative "
                f"target error of {err_held:.6g} > tolerance {self.tolerance:g} ({found}). Worst targets: {listed}"
            )
            if not self.force:
                raise ConvergenceError(msg)
            warnings.warn(msg + " (force=True: keeping these weights)", ConvergenceWarning, stacklevel=2)
        self.result_ = CalibrationResult(
            weights=pd.Series(w, index=design.units, name="weight"),
            record_weights=pd.Series(w[design.record_unit], index=candidates.index, name="weight"),
            initial_weights=pd.Series(design.d, index=design.units, name="initial_weight"),
            summary=summary,
            design=design,
            solver=None,
            start_scale=float(factor),
        )
        logger.info("sparse calibration kept %d of %d units (max rel error %.2e)", nz.sum(), len(w), err)
        return self

    def frontier(
        self,
        candidates: pd.DataFrame,
        targets: Targets | Sequence[Target] | pd.DataFrame | Mapping,
        sizes: Sequence[int],
        weight_col: str = "weight",
        *,
        household_col: str | None = None,
        holdout: Targets | None = None,
    ) -> pd.DataFrame:
        """Kept records vs error on the fitted targets and on held-out targets, one row per size.

        Parameters
        ----------
        candidates, targets, weight_col, household_col
            As in :meth:`fit`: the records to choose from, the targets every size is fitted to,
            the initial weight column and the household id column.
        sizes : list of int
            Budgets to try (``max_records``).
        holdout : Targets, optional
            Targets *not* used in fitting; default :func:`default_holdout` (margins and deciles of every
            untargeted column at their initial-weight values).

        Returns
        -------
        DataFrame
            ``size``, ``kept``, ``max_rel_error``, ``mean_rel_error``, ``holdout_max_rel_error``,
            ``holdout_mean_rel_error``, ``seconds`` (``error`` holds the message where a size fails). The held-out
            errors are read as :meth:`report` reads a fitted target's: a target of 0 over a thousandth of its records'
            size at the weights the fits started from (``result_.start_scale`` times the initial ones).

        Raises
        ------
        DataValidationError
            A target no non-negative weights can reach (before any size is fitted).
        ConvergenceError
            Targets no non-negative weights meet together within the tolerance (each may alone), naming them
            (before any size is fitted: every size would fail on them).
        """
        self._check_params()
        if isinstance(sizes, (str, bytes)) or not isinstance(sizes, (Sequence, np.ndarray)) or len(sizes) == 0:
            raise DataValidationError(f"The 'sizes' parameter must be a non-empty list of ints >= 1. Got {sizes!r} instead.")
        sizes = [check_int(v, "sizes", low=1) for v in sizes]
        tg = checked_inputs(candidates, targets, weight_col, household_col)
        # bad targets, and targets that cannot be met together, are refused once, not as a failure of every size;
        # judged at the weights each fit starts from: at weights 1e-20 times the targets' (weights of 1 against counts
        # of 1e20), the feasibility program's totals were beyond HiGHS's limits and a problem every fit meets failed
        design = build_design(candidates, tg, weight_col, household_col)
        check_reachable(at_start(design, self._start_factor(design)), self.tolerance, self.method, self.max_records,
                        scale=False)
        if holdout is not None:
            holdout = as_targets(holdout, "holdout")
        if holdout is None:
            holdout = default_holdout(candidates, tg, weight_col, household_col)
        hold = parameter_design(candidates, holdout, weight_col, household_col, "holdout") if len(holdout) else None
        params = {**self.get_params(deep=False), "seed": self._seed, "force": True, "random_state": DEPRECATED}
        return frontier_table(lambda size: SparseCalibrator(**{**params, "max_records": size}), candidates, tg, sizes,
                              weight_col, household_col, hold)

    def report(self) -> pd.DataFrame:
        """Per-target report of the sparse weights: ``tolerance`` is the fit's, the one every target was held to (a
        target's own tolerance serves soft calibration only), and ``met`` says whether the target is within it."""
        return self._check_is_fitted().report()


def _first_read(candidates: pd.DataFrame, targets: Targets, weight_col: str, household_col: str,
                auxiliary: Any, stratify: Any) -> bool:
    """Whether the fit reads a value on each household's first record that varies within some household: then
    which person comes first is part of the input (:func:`~microplex._random.content_order`'s ``keep_first``).

    Read on the first record are the filter columns and variables of household targets (``targets`` and
    auxiliary targets: :func:`~microplex.calibration.design.build_design`) and the stratify columns
    (:func:`~microplex.calibration.subsets._stratifiers`); where each is constant within every household, any of
    its persons gives the same values.
    """
    household_targets = [t for t in [*targets, *(auxiliary if isinstance(auxiliary, Targets) else [])]
                         if t.entity == "household"]
    read = [c for t in household_targets for c in [*t.filters, t.variable] if c is not None]
    if isinstance(stratify, str) and stratify == "auto":
        read += _untargeted_columns(candidates, targets, weight_col, household_col)
    elif stratify is not None:
        read += list(stratify)
    read = [c for c in dict.fromkeys(read) if c in candidates.columns]
    if not read:
        return False
    hh, _ = pd.factorize(candidates[household_col], use_na_sentinel=False)
    first = np.full(int(hh.max(initial=-1)) + 1, len(candidates), dtype=np.int64)
    np.minimum.at(first, hh, np.arange(len(candidates)))
    for c in read:
        try:
            codes, _ = pd.factorize(candidates[c], use_na_sentinel=False)
        except TypeError:  # unhashable values (lists): told apart by their text
            codes, _ = pd.factorize(candidates[c].astype(str), use_na_sentinel=False)
        if (codes != codes[first[hh]]).any():
            return True
    return False


def _outside_bounds(design: Design, w: np.ndarray, bounds: tuple[float, float] | None) -> str:
    """How the kept weights break ``bounds`` on their ratios to their starting weights ``d_i / pi_i`` (those of a
    ``K``-record sample, ``K`` the kept records, where the subset's calibration starts); empty when they keep them."""
    keep = w > 0
    k = int(keep.sum())
    if bounds is None or k == 0:
        return ""
    start = design.d[keep] / np.maximum(inclusion_probabilities(design.d, k)[keep], 1e-12)
    ratio = w[keep] / start
    out = (ratio < bounds[0] * (1 - 1e-6)) | (ratio > bounds[1] * (1 + 1e-6))
    if not out.any():
        return ""
    return (f"{int(out.sum())} of the {k} kept weights are outside them (ratios to d_i / pi_i from "
            f"{ratio.min():.4g} to {ratio.max():.4g})")
