"""The Calibrator estimator: new weights that hit targets, close to the initial weights."""

from __future__ import annotations

import dataclasses
import logging
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from microplex._errors import ConvergenceError, ConvergenceWarning, DataValidationError
from microplex._estimator import Estimator, check_is_fitted
from microplex._params import check_bool, check_float, check_int, check_names
from microplex._stats import miss_scale, relative_error, rounding_scale

from ._checks import check_column, check_distance, check_records
from .consistency import check_consistency
from .design import Design, build_design, collapse_rows, target_scale
from .diagnostics import design_effect, explain_failure, format_pair, kish_ess, relative_errors, weight_ratio_range
from .distances import Distance, linear, raking
from .feasibility import (box, mean_scale, met_tolerance, natural_at, only_nonnegative, rounding_sizes, soft_units,
                          solution_problems, survey_errors, unreachable_targets, zero_columns)
from .solver import SolverResult, newton_dual
from .targets import Target, Targets

__all__ = ["Calibrator", "CalibrationResult", "as_targets", "target_report"]

logger = logging.getLogger(__name__)


def as_targets(targets: Any, name: str = "targets") -> Targets:
    """Accepts Targets, a list of Target, a target table (DataFrame), a margins dict or a file path
    (``.csv``, ``.parquet``, ``.yaml``/``.yml``); ``name`` is the parameter the messages name."""
    if isinstance(targets, Targets):
        return targets
    if isinstance(targets, (str, Path)):
        suffix = Path(targets).suffix.lower()
        readers = {".csv": Targets.from_csv, ".parquet": Targets.from_parquet, ".yaml": Targets.from_yaml}
        readers[".yml"] = Targets.from_yaml
        if suffix not in readers or not Path(targets).exists():
            raise DataValidationError(
                f"{name} path {str(targets)!r} must be an existing .csv, .parquet, .yaml or .yml file."
            )
        return readers[suffix](targets)
    if isinstance(targets, pd.DataFrame):
        return Targets.from_frame(targets)
    if isinstance(targets, Mapping):
        return Targets.from_margins(targets)
    if isinstance(targets, Sequence) and all(isinstance(t, Target) for t in targets):
        return Targets(targets)
    raise DataValidationError(
        f"{name} must be Targets, a list of Target, a DataFrame or a margins dict. "
        f"Got {type(targets).__name__} instead."
    )


#: The ``summary`` keys every calibration result has, with one meaning: :class:`CalibrationResult` (weights in
#: memory) and :class:`microplex.scale.RakingResult` (out of core; it adds ``n_passes``, ``n_cells``).
SUMMARY_KEYS = ("converged", "n_iter", "max_rel_error", "n_units", "n_targets", "method", "soft", "met_rtol")


@dataclass
class CalibrationResult:
    """Calibrated weights and their diagnostics.

    Attributes
    ----------
    weights : Series
        One weight per weighting unit: per record, or per household (indexed by household id).
    record_weights : Series
        One weight per record (each person carries its household's weight), indexed like the records.
    initial_weights : Series
        The initial weights, aligned with ``weights``.
    summary : dict
        ``converged``, ``n_iter``, ``max_rel_error``, ``kish_ess``, ``design_effect``,
        ``min_ratio``, ``max_ratio``, ``n_units``, ``n_targets``, ``method``, ``seconds``, and ``n_negative``
        (weights below zero, which a linear distance without bounds may give, as GREG does; Kish's
        ``kish_ess`` and ``design_effect`` are then NaN, being defined for non-negative weights); a soft fit
        adds ``default_tolerance`` and ``n_far_missed`` (targets missed by more than :data:`FAR_MISS` times
        their tolerance).
    inconsistencies : DataFrame
        Nested geography targets that do not add up (see :func:`check_consistency`).
    infeasible : DataFrame
        For a failed solve: targets that cannot be met together, with the closest achievable values.
    start_scale : float
        The factor the solve brought the initial weights by before solving (the targets' scale,
        :func:`hard_start` for a hard solve; 1 for weights solved from as given): ``report()`` measures every miss
        against its target's sizes at those weights, as the solve did (a hard fit's counts and sums of 0 against
        theirs at the targets' scale, :func:`zero_sized`).
    """

    weights: pd.Series
    record_weights: pd.Series
    initial_weights: pd.Series
    summary: dict[str, Any]
    design: Design = field(repr=False)
    solver: SolverResult | None = field(repr=False)
    inconsistencies: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    infeasible: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    start_scale: float = 1.0

    def report(self) -> pd.DataFrame:
        """Returns one row per target: target value, initial and achieved values, relative error.

        For ``mean`` targets the values are means; otherwise totals. A sparse fit (its summary holds
        ``within_tolerance``) held every target to the fit's ``tolerance``: that is the ``tolerance``
        shown and what ``met`` reads (a target's own tolerance serves soft calibration only).
        """
        if "within_tolerance" in self.summary:
            tol = float(self.summary["tolerance"])  # the fit's, not a later set_params
            rep = target_report(self.design, self.weights.to_numpy(), tol, start_scale=self.start_scale)
            rep["tolerance"] = tol
            sized = at_start(self.design, self.start_scale)
            rep["met"] = _met(sized, rep, np.full(len(rep), tol * (1 + 1e-9)))  # as summary["within_tolerance"]
            return rep
        return target_report(self.design, self.weights.to_numpy(), self.summary.get("met_rtol", 1e-8),
                             self.summary.get("default_tolerance") if self.summary.get("soft") else None,
                             start_scale=self.start_scale)


def target_report(design: Design, weights: np.ndarray, met_rtol: float = 1e-8,
                  default_tolerance: float | None = None, *, start_scale: float = 1.0) -> pd.DataFrame:
    """Per-target table of ``design``'s targets under ``weights`` (one per unit): a pure function.

    ``rel_error`` is ``|achieved - value| / |value|``; for a value of 0, the miss over a thousandth of the target's
    natural size (:func:`~microplex._stats.zero_scale`, through :func:`~microplex.calibration.diagnostics.relative_errors`),
    the unit ``met`` judges it in: a target of 0 met to rounding reads a tiny error at any size of the weights, one
    missed reads more than its tolerance; a target far below its natural size over at least that unit
    (:func:`~microplex._stats.zero_floor`), as ``met`` judges it too. ``met``: the miss is
    within the target's tolerance (at least ``met_rtol``, what a solve meets: a tolerance of 0 means "exact") or,
    for a target without one, within ``default_tolerance`` (a soft fit's) or ``met_rtol``; a miss within float64
    rounding of the target's natural size is met; a target of 0 is judged against a thousandth of its natural size
    (:func:`~microplex._stats.zero_scale`, the unit the hard solve holds it to), not against one unit of whatever
    unit the weights and values are in; and with ``default_tolerance`` (a soft fit) a miss is measured against the
    size its penalty weighs it against (:func:`_met`). Those sizes are taken at the initial weights times
    ``start_scale`` (the factor the solve started from, :attr:`CalibrationResult.start_scale`), a count or sum of 0's
    where ``design`` sizes it (a hard fit's at the targets' scale, :func:`zero_sized`)."""
    dz = design
    achieved = dz.x.T @ weights
    initial = dz.x.T @ dz.d
    value = np.array([t.value for t in dz.targets])
    is_mean = np.array([t.aggregate == "mean" for t in dz.targets], dtype=bool)
    if is_mean.any():
        cnt_w = dz.mean_count.T @ weights
        cnt_d = dz.mean_count.T @ dz.d
        with np.errstate(invalid="ignore", divide="ignore"):
            achieved = np.where(is_mean, value + achieved / cnt_w, achieved)
            initial = np.where(is_mean, value + initial / cnt_d, initial)
    sized = at_start(dz, start_scale)
    rel = relative_errors(achieved, value, sized.initial_sizes)  # a target of 0 in the unit `met` judges it in
    tol = np.array([np.nan if t.tolerance is None else t.tolerance for t in dz.targets], dtype=float)
    rep = pd.DataFrame(
        {
            "target": dz.targets.names,
            "aggregate": [t.aggregate for t in dz.targets],
            "entity": [t.entity for t in dz.targets],
            "value": value,
            "initial": initial,
            "achieved": achieved,
            "rel_error": rel,
            "tolerance": tol,
        }
    )
    rep["met"] = _met(sized, rep, np.where(np.isnan(tol), met_rtol if default_tolerance is None else default_tolerance,
                                           np.maximum(tol, met_rtol)), soft=default_tolerance is not None, weights=weights)
    return rep


def _met(design: Design, rep: pd.DataFrame, within: np.ndarray, soft: bool = False,
         weights: np.ndarray | None = None) -> np.ndarray:
    """Whether each row of a :func:`target_report` is within its tolerance ``within`` (> 0): :func:`_misses`
    at most ``within``."""
    with np.errstate(invalid="ignore"):
        return _misses(design, rep, within, soft, weights) <= within


def _misses(design: Design, rep: pd.DataFrame, within: np.ndarray, soft: bool = False,
            weights: np.ndarray | None = None) -> np.ndarray:
    """The miss of each row of a :func:`target_report` held to its tolerance ``within`` (> 0): its relative error,
    measured against at least the target's rounding scale (:func:`~microplex._stats.rounding_scale` of its
    :func:`~microplex.calibration.design.value_sizes` at the initial weights, or, given the report's ``weights``,
    of its :func:`~microplex.calibration.feasibility.rounding_sizes`, the smaller of those at the initial and at
    the final weights, as the hard solve's check measures it): a miss that is float64 rounding of a total netting
    values of both signs to 0 is met, as the solvers meet it. A target of 0 is measured against
    :func:`~microplex._stats.zero_scale` of its size as ``design`` sizes it (``design.initial_sizes``: a hard fit's
    count or sum of 0 at the targets' scale, :func:`zero_sized`; not R survey's 1), the unit the hard
    solve holds it to and its check judges it in (:func:`~microplex.calibration.feasibility.survey_errors`; without
    ``weights``, a sparse fit's, :func:`~microplex.calibration.feasibility.target_errors`), and a target far below
    its size against at least the same (:func:`~microplex._stats.zero_floor`), as its ``rel_error`` reads.

    ``soft``: the rows of a soft fit, whose penalty weighs each miss against the target's size
    (:func:`~microplex._stats.miss_scale` of its value against its value size: ``|t|``, at least a thousandth of
    what its records add up to, :func:`~microplex.calibration.design.miss_units`): the error is measured against
    that size too, so a soft target of 0 is met within its tolerance of a thousandth of its records' size, in
    any unit of the weights or values."""
    natural = design.initial_sizes
    value, achieved = rep["value"].to_numpy(dtype=np.float64), rep["achieved"].to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore"):
        if soft:  # the penalty's size of a miss, at least the rounding scale
            err = (achieved - value) / np.maximum(miss_scale(value, natural), rounding_scale(value, natural, within))
        else:
            err = relative_error(achieved, value, natural if weights is None else rounding_sizes(design, weights),
                                 within, zero=True)
        return np.abs(err)


#: A soft fit warns (:class:`ConvergenceWarning`) when a target misses by more than this many times its tolerance
#: (as ``report()``'s ``met`` measures a miss): soft targets may be missed, but such a miss is no trade-off within
#: the tolerance any more (targets that contradict each other, or bounds that hold the weights from them).
FAR_MISS = 10.0


#: How far (a factor either way) a hard solve's initial weights may lie from the targets' scale
#: (:func:`~microplex.calibration.design.target_scale`) and still be solved from as given: ``2**24``, about
#: 1.7e7. Beyond it they are taken as weights in other units and solved from that scale.
HARD_SCALE = 2.0**24
#: How far above the targets' scale a hard solve's initial weights may lie and still be solved from as given:
#: ``2**10``. A linear solve's ratio ``1 + x'lambda`` to weights ``f`` times the solution's loses ``eps / f`` of
#: its digits to cancellation: weights 1e7 times the targets' met them 5e-10 off, beyond ``tol=1e-10``.
HARD_SCALE_ABOVE = 2.0**10


def hard_start(at_targets: float) -> float:
    """The factor a hard solve (without bounds, or with :func:`scale_free` ones; others: :func:`bounded_start`) brings its initial weights by, given their
    :func:`~microplex.calibration.design.target_scale` ``at_targets``: that factor where the weights lie more than
    :data:`HARD_SCALE` times below the targets' scale or :data:`HARD_SCALE_ABOVE` times above it (weights in other
    units), else 1 (solved from the weights as given). The one rule of :class:`Calibrator` and of the out-of-core
    :func:`~microplex.scale.rake_dataset` / :func:`~microplex.scale.rake_frame`.

    Examples
    --------
    >>> hard_start(2.0**30), hard_start(1024.0), hard_start(2.0**-12)
    (1073741824.0, 1.0, 0.000244140625)
    """
    return 1.0 if 1.0 / HARD_SCALE_ABOVE < at_targets < HARD_SCALE else float(at_targets)


def scale_free(bounds: tuple[float, float]) -> bool:
    """Whether the ratio ``bounds`` (as :func:`~microplex.calibration._checks.check_distance` returns them) hold the
    same weights whatever factor the initial weights are brought by: no upper bound and a lower bound of 0 or none
    (``bounds=None``, raking's own ``(0, inf)``, an explicit ``(0, inf)`` or ``(-inf, inf)``). Only such solves start
    from the targets' scale with any distance (:func:`hard_start`, the soft solve's
    :func:`~microplex.calibration.design.target_scale`); other bounds (``(0.5, 2)``, ``(-1, inf)``) are ratios to the
    caller's weights: a soft or logit solve within them starts from those weights as given, a hard linear or raking
    one from the targets' scale within the same box of weights (:func:`bounded_start`). The one rule of
    :class:`Calibrator` and of the out-of-core :func:`~microplex.scale.rake_dataset` /
    :func:`~microplex.scale.rake_frame`.

    Examples
    --------
    >>> scale_free((0.0, math.inf)), scale_free((-math.inf, math.inf)), scale_free((0.5, 2.0)), scale_free((-1.0, math.inf))
    (True, True, False, False)
    """
    return bool(bounds[1] == math.inf and bounds[0] in (0.0, -math.inf))


def start_bounds(bounds: tuple[float, float], factor: float) -> tuple[float, float]:
    """The ratio ``bounds`` (to the caller's weights) as ratios to those weights brought by ``factor``: each divided
    by it, the same box of weights (``w >= -d`` is ``w >= -(f d) / f``); :func:`scale_free` bounds are unchanged.

    Examples
    --------
    >>> start_bounds((-1.0, math.inf), 2.0**-30), start_bounds((0.0, math.inf), 8.0)
    ((-1073741824.0, inf), (0.0, inf))
    """
    return float(bounds[0]) / factor, float(bounds[1]) / factor


def rescales(dist: Distance, bounds: tuple[float, float]) -> bool:
    """Whether a hard solve with the distance ``dist`` within the ratio ``bounds`` may start from the targets' scale
    (:func:`bounded_start`): :func:`scale_free` bounds, or the linear or raking distance within any bounds.

    Examples
    --------
    >>> from microplex.calibration.distances import linear, logit
    >>> rescales(linear, (-1.0, math.inf)), rescales(logit, (0.5, 2.0)), rescales(logit, (-math.inf, math.inf))
    (True, False, True)
    """
    return scale_free(bounds) or dist in (linear, raking)


def bounded_start(dist: Distance, bounds: tuple[float, float], at_targets: float) -> float:
    """The factor a hard solve with the distance ``dist`` and the ratio ``bounds`` brings its initial weights by, given
    their :func:`~microplex.calibration.design.target_scale` ``at_targets``: :func:`hard_start`'s, solved there within
    :func:`start_bounds` (the caller's box of weights). For :func:`scale_free` bounds, and for any bounds with the
    linear or raking distance, whose solution within a box of weights does not depend on the factor where the count
    targets fix the total weight: their distances from the weights times ``f``, ``sum (w - f d)^2 / (2 f d)`` and
    ``sum w log(w / (f d)) - w + f d``, are those from the weights themselves up to a positive factor and terms in
    ``sum w`` and ``sum d`` only. From weights 1e10 times the targets', ``bounds=(-1, inf)`` solved as given lost the ratios
    ``1 + x'lambda`` (about 1e-10) to cancellation, and the weights, 1e10 times below the initial ones, read collapsed.
    1 (solved from the weights as given) for other distances (logit's ratios are a function of its bounds), and where
    the bounds divided by the factor would not contain 1, the start of every ratio. The one rule of
    :class:`Calibrator` and of the out-of-core :func:`~microplex.scale.rake_dataset` / :func:`~microplex.scale.rake_frame`.

    Examples
    --------
    >>> from microplex.calibration.distances import linear, logit
    >>> bounded_start(linear, (-1.0, math.inf), 2.0**-30), bounded_start(logit, (0.5, 2.0), 2.0**-30)
    (9.313225746154785e-10, 1.0)
    """
    if not rescales(dist, bounds):
        return 1.0
    factor = hard_start(at_targets)
    lo, hi = start_bounds(bounds, factor)
    return factor if lo <= 1.0 <= hi else 1.0


def _with_initial(design: Design, d: np.ndarray, zero_factor: float | None) -> Design:
    """``design`` with the initial weights ``d`` (its checks and sizes taken at them) and its targets of 0 sized at
    ``d * zero_factor`` (:attr:`~microplex.calibration.design.Design.zero_factor`; None: at ``d``); the cached
    transpose is shared."""
    out = dataclasses.replace(design, d=d, zero_factor=zero_factor)
    if "xt" in design.__dict__:
        out.__dict__["xt"] = design.__dict__["xt"]
    return out


def at_start(design: Design, factor: float) -> Design:
    """``design`` with its initial weights brought by ``factor``, the weights a solve started from
    (:attr:`CalibrationResult.start_scale`): the one place a fit's checks (a collapse of the weights, targets of 0
    held in thousandths of their records' size) and its report's sizes are taken, whatever unit the caller's weights
    are in. ``design`` itself for a factor of 1.

    Weights of 1 against counts 1e-10 times them, solved from 1e-10 times the weights, sum to about 1e-10 of the
    weights as given: read against those, they collapsed; against the start weights they keep their size. Its
    targets of 0 stay sized where ``design`` sizes them (:func:`zero_sized`; at the start weights where it does
    not say)."""
    if factor == 1.0:
        return design
    zero = None if design.zero_factor is None else design.zero_factor / factor
    return _with_initial(design, design.d * factor, zero)


def zero_sized(design: Design, at_targets: float) -> Design:
    """``design`` (at the caller's weights) with its targets of 0 sized at the targets' scale: its weights times
    ``at_targets`` (:func:`~microplex.calibration.design.target_scale`, 1 where the solve keeps the weights' scale),
    where the count targets fix the total weight and the solution lies. The one rule of a hard
    :class:`Calibrator` (its solve's columns, :func:`~microplex.calibration.feasibility.zero_columns`; its check,
    :func:`~microplex.calibration.feasibility.survey_errors`; its report's ``rel_error`` and ``met``) and of the
    out-of-core :func:`~microplex.scale.rake_dataset` / :func:`~microplex.scale.rake_frame`: a target of 0 is held
    to thousandths of what its records add up to there (:func:`~microplex._stats.zero_scale`), whatever unit the
    weights are in. Sized at the start weights instead (weights of 1 solved as given against counts 1e4 to 1e7 times
    them, within :data:`HARD_SCALE`), a sum of 0 over values of both signs met to float64 rounding at the solution
    read 1e4 to 1e7 times its rounding and the solve was refused."""
    return design if at_targets == 1.0 else _with_initial(design, design.d, float(at_targets))


def far_miss_note(summary: dict[str, Any]) -> str:
    """The clause the command line's and the pipeline's summaries add for a soft fit's far misses
    (``summary["n_far_missed"]``), or "" where there are none."""
    far = summary.get("n_far_missed") or 0
    return f", {far} soft targets missed by more than {FAR_MISS:g} times their tolerance" if far else ""


def _far_misses(design: Design, rep: pd.DataFrame, default_tolerance: float, met_rtol: float) -> pd.DataFrame:
    """The targets of a soft fit's :func:`target_report` missed by more than :data:`FAR_MISS` times their
    tolerance (the target's, at least ``met_rtol``, else ``default_tolerance``), worst first, with their
    ``miss`` (as ``met`` measures it) and ``times`` (the miss over the tolerance); ``design`` at the weights the
    solve started from."""
    tol = rep["tolerance"].to_numpy(dtype=np.float64)
    within = np.where(np.isnan(tol), default_tolerance, np.maximum(tol, met_rtol))
    miss = _misses(design, rep, within, soft=True)
    with np.errstate(invalid="ignore"):
        times = miss / within
        far = ~(times <= FAR_MISS)  # a NaN miss (a mean whose records lost every weight) is far too
    out = rep.loc[far, ["target", "value", "achieved"]].assign(miss=miss[far], tolerance=within[far], times=times[far])
    return out.sort_values("times", ascending=False, na_position="first", kind="stable")


class _FittedResult(Estimator):
    """Shortcuts of a fitted calibration estimator to its ``result_`` (a CalibrationResult)."""

    result_: CalibrationResult
    _fitted_attribute = "result_"

    def _check_is_fitted(self) -> CalibrationResult:
        check_is_fitted(self)
        return self.result_

    @property
    def weights(self) -> pd.Series:
        """Weights, one per unit (shortcut to ``result_.weights``)."""
        return self._check_is_fitted().weights

    @property
    def summary(self) -> dict[str, Any]:
        """Fit diagnostics (shortcut to ``result_.summary``)."""
        return self._check_is_fitted().summary


class Calibrator(_FittedResult):
    """Creates a calibration estimator (Deville & Sarndal 1992) with sparse Newton solves on the dual.

    Parameters
    ----------
    method : str or Distance, default="raking"
        ``"linear"`` (GREG / chi-square), ``"raking"`` or ``"logit"``, or any registered or user
        :class:`~microplex.calibration.distances.Distance`.
    bounds : (float, float), optional
        Bounds ``(lower, upper)`` on the weight ratios ``w / d``; required by ``"logit"``. A hard linear or raking
        solve from weights far from the targets' scale starts from that scale with the same box of weights
        (:func:`bounded_start`): ``(-1, inf)`` from weights 1e10 times the targets' solves as from weights at their
        scale.
    tol : float, default=1e-10
        Convergence when ``|achieved - t| / (1 + |t|) < tol`` for every target (R survey's test; ``2 |t|``
        instead of ``1 + |t|`` for totals below 1 in size, where the test would be absolute). A miss within
        float64 rounding of the target's natural size ``sum_i d_i |x_ij|`` (2**-40 of it,
        :func:`~microplex._stats.rounding_scale`) is met whatever ``tol``: a total of 0 netting values of both
        signs is computed to that precision, not to a unit.
    max_iter : int, default=50
    soft : bool, default=False
        Minimize the distance plus ``sum_j c_j / 2 (achieved_j - t_j)^2`` with
        ``c_j = importance_j * sum(d) / (tolerance_j * s_j)^2`` instead of meeting targets exactly, where
        ``s_j = max(|t_j|, 1e-3 sum_i d_i |x_ij|)`` is the target's size, at least a thousandth of what its
        records add up to (for a mean, its value against the mean of ``|y|``, times its records' initial count:
        :func:`~microplex.calibration.design.miss_units`), so the same values or weights in another unit give
        the same weights; always solvable, the misses are in :meth:`CalibrationResult.report`. Without
        ``bounds``, ``d`` is first brought to the targets' scale: times the power of two nearest the median ratio
        of the targets to their initial totals (:func:`~microplex.calibration.design.target_scale`; 1 for weights
        already at that scale), so that weights of 1, or in thousands, against targets in persons give the weights
        that weights in persons give. The distance is measured from those scaled weights; ``summary``'s
        ``min_ratio`` and ``max_ratio`` and ``initial_weights`` stay those of the weights given. With ``bounds``
        (ratios to the weights given) ``d`` is used as given. Targets missed by more than :data:`FAR_MISS` (10)
        times their tolerance (as ``report()``'s ``met`` measures a miss) warn (:class:`ConvergenceWarning`, naming
        the worst) and are counted in ``summary["n_far_missed"]``; the weights are the soft problem's optimum all the
        same.
    default_tolerance : float, default=0.01
        Soft-mode tolerance of targets without one.
    force : bool, default=False
        On a failed solve (not converged, or weights that fail the check made after every solve: finite,
        not collapsed, every target met in its own units), warn (:class:`ConvergenceWarning`) and keep the
        best weights instead of raising; ``summary["converged"]`` is then False. Targets that no weights
        can reach (e.g. a mean outside the range of its values) raise :class:`DataValidationError` anyway.
    consistency_rtol : float, default=1e-6
        Relative tolerance of the nested-geography check (run when ``fit`` gets ``geography``).
    diagnose : bool, default=True
        On a failed hard solve, run a linear program naming the targets that cannot be met together.
    collapse : bool, default=True
        Solve once per distinct design row (units with identical rows get identical weight ratios, so
        this is exact); pays off for count targets on categorical cells.

    Attributes
    ----------
    result_ : CalibrationResult
        Set by :meth:`fit`; ``weights``, ``report()`` and ``summary`` are shortcuts to it.

    References
    ----------
    Deville, J.-C. and Sarndal, C.-E. (1992). Calibration estimators in survey sampling. *JASA* 87, 376-382.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"sex": ["f", "f", "m", "m"], "region": ["N", "S", "N", "S"], "weight": 1.0})
    >>> targets = Targets.from_margins({"sex": {"f": 6, "m": 4}, "region": {"N": 5, "S": 5}})
    >>> cal = Calibrator(method="raking").fit(df, targets, weight_col="weight")
    >>> cal.weights.round(3).tolist()
    [3.0, 3.0, 2.0, 2.0]
    >>> cal.summary["converged"], bool(cal.report()["rel_error"].max() < 1e-10)
    (True, True)
    """

    def __init__(
        self,
        method: str | Distance = "raking",
        *,
        bounds: tuple[float, float] | None = None,
        tol: float = 1e-10,
        max_iter: int = 50,
        soft: bool = False,
        default_tolerance: float = 0.01,
        force: bool = False,
        consistency_rtol: float = 1e-6,
        diagnose: bool = True,
        collapse: bool = True,
    ) -> None:
        self.method = method
        self.bounds = bounds
        self.tol = tol
        self.max_iter = max_iter
        self.soft = soft
        self.default_tolerance = default_tolerance
        self.force = force
        self.consistency_rtol = consistency_rtol
        self.diagnose = diagnose
        self.collapse = collapse

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> tuple[Distance, tuple[float, float]]:
        dist, bounds = check_distance(self.method, self.bounds)
        check_float(self.tol, "tol", low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
        check_float(self.default_tolerance, "default_tolerance", low=0.0, low_inclusive=False)
        check_float(self.consistency_rtol, "consistency_rtol", low=0.0)
        check_int(self.max_iter, "max_iter", low=1)
        for name in ("soft", "force", "diagnose", "collapse"):
            check_bool(getattr(self, name), name)
        return dist, bounds

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        records: pd.DataFrame,
        targets: Targets | Sequence[Target] | pd.DataFrame | Mapping,
        weight_col: str = "weight",
        *,
        household_col: str | None = None,
        geography: Sequence[str] | None = None,
    ) -> Calibrator:
        """Calibrates the weights of ``records`` to ``targets``.

        Parameters
        ----------
        records : DataFrame of shape (n_records, n_columns)
            Never modified.
        targets : Targets, list of Target, DataFrame (as read by Targets.from_frame), margins dict or file path
        weight_col : str, default="weight"
            Column of positive initial weights (household weights: constant within each household).
        household_col : str, optional
            Household id column: weights are calibrated per household, person targets count the
            household's persons, ``entity="household"`` targets count households. Ids of two types that
            print alike (``1`` and ``'1'``) are refused: they would be two households.
        geography : list of str, optional
            Nested geography columns, coarsest first; targets at nested levels are checked to add up
            before solving (a hard solve raises on inconsistency, a soft one logs a warning).

        Returns
        -------
        self : Calibrator
        """
        start = time.perf_counter()
        dist, bounds = self._check_params()
        check_records(records)
        check_column(weight_col, "weight_col")
        check_column(household_col, "household_col", allow_none=True)
        if geography is not None:
            geography = check_names(geography, "geography", allow_empty=False)
        tg = as_targets(targets)
        if len(tg) == 0:
            raise DataValidationError("targets is empty; expected at least one target.")
        design = build_design(records, tg, weight_col, household_col)
        self._check_reachable(design, dist, bounds)

        inconsistencies = pd.DataFrame()
        if geography is not None:
            inconsistencies = check_consistency(design.targets, records, geography, rtol=self.consistency_rtol)
            if len(inconsistencies):
                lines = "; ".join(_inconsistency(r) for r in inconsistencies.head(10).itertuples())
                msg = f"{len(inconsistencies)} nested geography targets do not add up: {lines}"
                if not self.soft:
                    raise DataValidationError(msg)
                logger.warning(msg)

        # a soft solve starts from the initial weights brought to the targets' scale (a power of two, target_scale):
        # its penalties price misses against the distance from them, so weights of 1 against targets for a
        # population of 3.3e8 were left where they were and every target missed. A hard solve is brought there only
        # from weights more than HARD_SCALE times below it or HARD_SCALE_ABOVE times above it (weights in other
        # units; its optimum does not depend on that scale where the counts fix the total): its collapse check, the
        # rounding allowance of its "met" tests and its diagnosis took their sizes from weights 1e9 times the
        # targets' and refused or loosely met the solution. Bounds that a factor on the weights changes (ratios to the
        # caller's weights) solve from the weights as given; (0, inf) or (-inf, inf) given explicitly are bounds=None's
        # (scale_free): solved from weights 1e10 times the targets' as given, they did not converge
        # (scale_free). A hard linear or raking solve within other bounds starts there too, its bounds divided by the
        # factor (bounded_start): from weights 1e10 times the targets' within (-1, inf) it did not converge
        rescaled = scale_free(bounds) if self.soft else rescales(dist, bounds)
        factor = at_targets = target_scale(design) if rescaled else 1.0
        if not self.soft:
            factor = bounded_start(dist, bounds, factor)
            # its counts and sums of 0 solved, checked and reported in thousandths of their records' size at the
            # targets' scale, where the solution lies (zero_sized), as its means are (below)
            design = zero_sized(design, at_targets)
        solve_bounds = start_bounds(bounds, factor)
        solved = at_start(design, factor)
        start_d = solved.d
        # mean targets are solved in their own relative units (see feasibility.mean_scale), counted at the targets'
        # scale, where the solution lies: counted at initial weights 1e6 times below it (a hard solve from weights
        # within HARD_SCALE), a mean's misfit read 1e6 times its relative miss and raking did not converge
        scale = mean_scale(design, design.d * at_targets)
        if not self.soft:  # a hard solve's counts and sums of 0 in their own relative units too (zero_scale)
            scale = zero_columns(solved, scale)
        x_full = design.x if np.all(scale == 1.0) else sp.csr_matrix(design.x @ sp.diags(scale))
        penalty = None
        if self.soft:
            tol_j = np.array(
                [self.default_tolerance if t.tolerance is None else max(t.tolerance, 1e-12) for t in design.targets]
            )
            imp = np.array([t.importance for t in design.targets])
            with np.errstate(over="ignore", under="ignore", divide="ignore"):
                penalty = imp * start_d.sum() / (tol_j * soft_units(design, start_d)) ** 2
            bad = ~(np.isfinite(penalty) & (penalty > 0))
            if bad.any():
                names = [design.targets[j].name for j in np.flatnonzero(bad)[:5]]
                raise DataValidationError(
                    f"Soft calibration cannot weigh {int(bad.sum())} targets whose totals or tolerances are too large "
                    f"or too small for float64 ({names}); rescale their variables (e.g. to thousands) or the weights."
                )

        groups = collapse_rows(x_full) if self.collapse else None
        if groups is None:
            x, xt, d = x_full, (design.xt if x_full is design.x else None), start_d
        else:
            reps, inv = groups
            x = x_full[reps]
            xt, d = None, np.bincount(inv, weights=start_d, minlength=len(reps))
            logger.debug("collapsed %d units to %d distinct design rows", len(design.d), len(reps))
        # its counts and sums of 0 met within rounding of their size where zero_sized sizes them, as its check meets
        # them: at the start weights, 100 times the targets', a count of 0 was left 10 times what the check allows
        sol = newton_dual(x, d, design.totals, dist, solve_bounds, tol=self.tol, max_iter=self.max_iter, penalty=penalty,
                          xt=xt, natural_at=None if self.soft else natural_at(solved))
        if groups is not None:
            sol.g = sol.g[groups[1]]
        w = start_d * sol.g
        met_rtol = met_tolerance(self.tol)
        # the guard of every solve: the weights must be finite, not collapsed, and (hard mode) meet the
        # targets in their own units, whatever the solver reported
        problems = solution_problems(solved, w, errors=None if self.soft else survey_errors(solved, w, met_rtol),
                                     tol=met_rtol)
        converged = bool(sol.converged) and not problems
        infeasible = pd.DataFrame()
        if not converged:
            if not sol.converged:
                msg = (
                    f"Calibration ({dist.name}) did not converge in {sol.n_iter} iterations: max relative misfit "
                    f"{sol.max_misfit:.3g} > tol {self.tol:g}."
                )
            else:
                msg = f"Calibration ({dist.name}) failed: " + "; ".join(problems) + "."
            if self.diagnose and not self.soft:
                why, infeasible = explain_failure(
                    solved, *box(solved.d, solve_bounds, dist.nonnegative), solver_converged=bool(sol.converged),
                    misfit=float(sol.max_misfit),
                )
                msg += why
            if not self.force:
                raise ConvergenceError(msg)
            warnings.warn(msg + " (force=True: keeping these weights)", ConvergenceWarning, stacklevel=2)

        ratio = weight_ratio_range(w, design.d)
        negative = int((w < 0).sum())
        summary = {
            "converged": converged,
            "n_iter": sol.n_iter,
            "max_rel_error": math.nan,
            # Kish's figures hold for non-negative weights; a linear (GREG) solve without bounds may give negative ones
            "kish_ess": kish_ess(w) if negative == 0 else math.nan,
            "design_effect": design_effect(w) if negative == 0 else math.nan,
            "n_negative": negative,
            "min_ratio": ratio[0],
            "max_ratio": ratio[1],
            "n_units": len(w),
            "n_targets": len(design.totals),
            "method": dist.name,
            "soft": bool(self.soft),
            **({"default_tolerance": float(self.default_tolerance)} if self.soft else {}),
            "met_rtol": met_rtol,
            "seconds": time.perf_counter() - start,
        }
        units = pd.Series(w, index=design.units, name="weight")
        self.result_ = CalibrationResult(
            weights=units,
            record_weights=pd.Series(w[design.record_unit], index=records.index, name="weight"),
            initial_weights=pd.Series(design.d, index=design.units, name="initial_weight"),
            summary=summary,
            design=design,
            solver=sol,
            inconsistencies=inconsistencies,
            infeasible=infeasible,
            start_scale=float(factor),
        )
        rep = self.result_.report()
        summary["max_rel_error"] = float(rep["rel_error"].max())
        if self.soft:
            far = _far_misses(solved, rep, float(self.default_tolerance), met_rtol)
            summary["n_far_missed"] = len(far)
            if len(far):
                worst = "; ".join(f"{r.target!r} missed by {r.miss:.3g} ({r.times:.3g} times its tolerance {r.tolerance:g}"
                                  f": {r.achieved:.6g} for {r.value:.6g})" for r in far.head(5).itertuples())
                warnings.warn(
                    f"Soft calibration ({dist.name}) missed {len(far)} of {len(rep)} targets by more than "
                    f"{FAR_MISS:g} times their tolerance (summary['n_far_missed']; every miss in report()): {worst}"
                    f"{'; ...' if len(far) > 5 else ''}. Targets that contradict each other, or bounds that hold "
                    "the weights from them, leave such misses; check the targets or give these a larger importance.",
                    ConvergenceWarning, stacklevel=2,
                )
        logger.info(
            "calibrated %d units to %d targets in %d iterations (max rel error %.2e)",
            len(w),
            len(design.totals),
            sol.n_iter,
            summary["max_rel_error"],
        )
        return self

    def _check_reachable(self, design: Design, dist: Distance, bounds: tuple[float, float]) -> None:
        """Refuses targets that no weights can reach, before solving.

        Targets out of reach of any weights the distance allows (a mean outside the range of its values,
        a non-zero total over records that all contribute 0, a positive total of non-positive values)
        are bad targets: :class:`DataValidationError`. Targets out of reach only within ``bounds`` make
        the hard solve fail: :class:`ConvergenceError` (``force=True`` goes on and warns).
        """
        nonneg = only_nonnegative(dist, bounds)
        lo_any, hi_any = box(design.d, (-math.inf, math.inf), nonneg)
        bad = unreachable_targets(design, lo_any, hi_any, means_only_range=True)
        if bad:
            raise DataValidationError(
                f"{len(bad)} targets cannot be reached by any {'non-negative ' if nonneg else ''}weights: "
                + "; ".join(bad[:10])
                + "."
            )
        if self.soft or not (math.isfinite(bounds[0]) or math.isfinite(bounds[1])):
            return
        lo, hi = box(design.d, bounds, dist.nonnegative)
        bad = unreachable_targets(design, lo, hi)
        if bad:
            msg = (
                f"Calibration ({dist.name}): these {len(bad)} targets cannot be met within the bounds {bounds}: "
                + "; ".join(bad[:10])
                + "."
            )
            if not self.force:
                raise ConvergenceError(msg)
            logger.warning(msg)

    def report(self) -> pd.DataFrame:
        """Per-target report (shortcut to ``result_.report()``)."""
        return self._check_is_fitted().report()


def _inconsistency(r: Any) -> str:
    """One row of :func:`check_consistency`'s frame as a sentence (the two sums told apart)."""
    parent, children = format_pair(r.parent_value, r.children_sum)
    named = ", ".join(r.children[:3]) + (", ..." if len(r.children) > 3 else "")
    return (
        f"{r.parent} = {parent} but its {r.n_children} children (the finer targets inside it with none in between) "
        f"sum to {children} ({named})"
    )
