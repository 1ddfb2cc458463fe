"""Calibration diagnostics: the weights (small pure functions of the weights and the initial weights)
and, when the targets cannot be met together, which ones (:func:`min_violation`).

:func:`kish_ess`, :func:`design_effect` and the relative error live in :mod:`microplex._stats`
(re-exported here).

:func:`min_violation` solves ``min sum_j (s+_j + s-_j)`` subject to ``X'w + s+ - s- = t`` and the weight
bounds (``w >= 0`` for raking and logit) with a linear program (HiGHS): the least total change, each slack in its
target's own units (weights in units of the typical weight; a mean's slack in its row's units), each row divided
by ``1 + |t_j|`` for the solver's precision only. The change is absolute, so which of several conflicting targets
is named depends on the units of the values: of a count in persons and an income sum that conflict, the count is
named with incomes in dollars, the sum with incomes in millions. (Weighing each slack by the target's size instead, tried,
answered targets 1e20 times what the weights give with "closest achievable 0" where the linear program failed
honestly before.) Targets with a
non-zero slack in the optimum are the ones that must move for the others to be met; a zero optimum
means the targets are feasible and a failed solve is a numerical problem, not a data problem.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import linprog

from .._errors import ConvergenceError
from .._stats import design_effect, kish_ess, relative_error
from .design import Design, in_weight_units, weight_unit

__all__ = ["DIAGNOSIS_RTOL", "kish_ess", "design_effect", "weight_ratio_range", "relative_errors", "min_violation", "explain_failure"]

logger = logging.getLogger(__name__)


def weight_ratio_range(weights: np.ndarray, initial: np.ndarray) -> tuple[float, float]:
    """Smallest and largest ratio ``weights / initial``.

    Examples
    --------
    >>> weight_ratio_range(np.array([1.0, 3.0]), np.array([2.0, 2.0]))
    (0.5, 1.5)
    """
    g = np.asarray(weights, dtype=np.float64) / np.asarray(initial, dtype=np.float64)
    return float(g.min()), float(g.max())


def relative_errors(achieved: np.ndarray, target: np.ndarray, natural: np.ndarray | None = None) -> np.ndarray:
    """``|achieved - target| / |target|``; for a target of 0, given the targets' natural sizes ``natural`` (what
    their records add up to in size at the weights the solve started from; a hard fit's count or sum of 0 at the
    targets' scale, :func:`~microplex.calibration.calibrator.zero_sized`), the miss over
    :func:`~microplex._stats.zero_scale` of that size (a thousandth of it, :func:`~microplex._stats.zero_unit`): the
    unit a hard solve holds a target of 0 to and its ``met`` judges it in, so a zero target met to rounding never
    reads a huge error, in any unit of the weights or values, and one missed reads more than its tolerance; a target
    far below its natural size (a sum of 1e-9 over values of both signs adding up to 1e6) over at least the same
    unit (:func:`~microplex._stats.zero_floor`), so that one met to rounding reads as one of 0 does. Without
    ``natural``, the absolute miss (R survey's).

    Examples
    --------
    >>> relative_errors(np.array([101.0, 0.5]), np.array([100.0, 0.0])).tolist()
    [0.01, 0.5]
    >>> relative_errors(np.array([101.0, 0.5]), np.array([100.0, 0.0]), np.array([300.0, 2e3])).tolist()
    [0.01, 0.25]
    """
    return np.abs(relative_error(achieved, target, natural, zero=natural is not None))


#: The relative gap below which :func:`min_violation` counts a target as met: about the precision of its linear
#: program (HiGHS holds rows to about 1e-7), so targets that disagree by less are not told apart from agreeing ones.
DIAGNOSIS_RTOL = 1e-7


def min_violation(design: Design, lower: np.ndarray, upper: np.ndarray, *, rtol: float = DIAGNOSIS_RTOL) -> pd.DataFrame:
    """Returns the targets that must be relaxed, with the closest achievable value.

    Parameters
    ----------
    design : Design
    lower, upper : ndarray of shape (n_units,)
        Bounds on the weights (may be infinite).
    rtol : float, default=1e-7
        Relative slack below which a target counts as met.

    Returns
    -------
    DataFrame
        Columns ``target``, ``value``, ``closest_achievable``, ``rel_gap``; empty when feasible.

    Raises
    ------
    ConvergenceError
        When the linear program itself does not solve (e.g. totals of 1e300): feasibility is then unknown,
        which an empty frame would misstate.
    """
    return _min_violation(design, lower, upper, rtol)[0]


def _min_violation(design: Design, lower: np.ndarray, upper: np.ndarray, rtol: float) -> tuple[pd.DataFrame, list[str]]:
    """:func:`min_violation`'s frame, and the names of the targets its optimum binds (non-zero duals).

    Solved in units of the typical weight (:func:`~microplex.calibration.design.weight_unit`; values reported in
    the caller's): with weights of 2**40 the scaled rows fell below HiGHS's smallest matrix value (the diagnosis
    "did not solve"), and with weights of 2**-40 totals below its tolerance named targets that do not conflict."""
    unit = weight_unit(design.d)
    design = in_weight_units(design, unit)
    lower, upper = np.asarray(lower, dtype=np.float64) / unit, np.asarray(upper, dtype=np.float64) / unit
    n, m = design.x.shape
    t = design.totals
    scale = 1.0 / (1.0 + np.abs(t))
    # rows divided by 1 + |t| (a mean's, sum_i w_i (y_i - value) over its records with total 0, by its records'
    # initial count times 1 + |value|) for HiGHS's precision; the slacks stay in the targets' own units (the
    # objective is the least total change) and a mean's closest value is reported as a mean below
    is_mean = np.array([tg.aggregate == "mean" for tg in design.targets], dtype=bool)
    value = np.where(is_mean, [tg.value for tg in design.targets], t).astype(np.float64)
    if is_mean.any():
        cnt_d = np.asarray(design.mean_count.T @ design.d, dtype=np.float64).ravel()
        scale = np.where(is_mean, 1.0 / ((1.0 + np.abs(value)) * np.where(cnt_d > 0, cnt_d, 1.0)), scale)
    a_eq = sp.hstack([sp.diags(scale) @ design.xt, sp.diags(scale), -sp.diags(scale)]).tocsc()
    b_eq = t * scale
    cost = np.concatenate([np.zeros(n), np.ones(2 * m)])
    lb = np.concatenate([lower, np.zeros(2 * m)])
    ub = np.concatenate([upper, np.full(2 * m, math.inf)])
    bounds = np.column_stack([np.where(np.isfinite(lb), lb, -np.inf), np.where(np.isfinite(ub), ub, np.inf)])
    if not (np.isfinite(a_eq.data).all() and np.isfinite(b_eq).all()):  # linprog raised a bare ValueError
        raise ConvergenceError("the infeasibility diagnosis (a linear program) cannot be set up: its scaled rows "
                               "overflow (values or weights near the limits of float64, e.g. 1e300 with weights of "
                               "1e-300)")
    res = linprog(cost, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
    if res.status != 0:
        raise ConvergenceError(f"the infeasibility diagnosis (a linear program) did not solve: {res.message}")
    slack = res.x[n : n + m] - res.x[n + m :]
    closest = t - slack
    gap = np.abs(slack) / np.where(t == 0, 1.0, np.abs(t))
    if is_mean.any():  # the mean the linear program's weights give (undefined where its records keep no weight)
        w = res.x[:n]
        cnt_w = np.asarray(design.mean_count.T @ w, dtype=np.float64).ravel()
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(cnt_w > 0, value + (t - slack) / np.where(cnt_w > 0, cnt_w, 1.0), np.nan)
        closest = np.where(is_mean, mean, closest)
        gap = np.where(is_mean, np.abs(mean - value) / np.where(value == 0, 1.0, np.abs(value)), gap)
    bad = gap > rtol
    names = design.targets.names
    in_caller_units = np.where(is_mean, 1.0, design.unit)  # counts and sums in the caller's units, means as means
    frame = pd.DataFrame(
        {
            "target": [names[j] for j in np.flatnonzero(bad)],
            "value": (value * in_caller_units)[bad],
            "closest_achievable": (closest * in_caller_units)[bad],
            "rel_gap": gap[bad],
        }
    )
    # the targets the optimum binds (non-zero duals of their rows): those whose slack moves with the conflict,
    # e.g. a total and each of its parts, where the slack itself sits on one of them
    duals = np.abs(np.asarray(res.eqlin.marginals, dtype=np.float64)) if bad.any() else np.zeros(m)
    binding = [names[j] for j in np.flatnonzero(duals > 1e-9 * max(float(duals.max(initial=0.0)), 1e-300))]
    return frame, binding


def format_pair(a: float, b: float) -> tuple[str, str]:
    """``a`` and ``b`` written with the fewest significant digits (at least 6) that tell them apart, so that a
    message never reads "1e+06 but ... 1e+06" for two different numbers.

    >>> format_pair(1_000_000.0, 1_000_004.0)
    ('1000000', '1000004')
    >>> format_pair(1_000_004.0, 999_999.0)
    ('1000004', '999999')
    >>> format_pair(25.0, 40.0)
    ('25', '40')
    """
    scale, gap = max(abs(a), abs(b)), abs(a - b)
    digits = 6 if gap == 0 or not math.isfinite(scale / gap) else min(17, max(6, math.ceil(math.log10(scale / gap)) + 2))
    return f"{a:.{digits}g}", f"{b:.{digits}g}"


#: Targets this many times the initial weights' totals (or as small a share) are named as a likely cause.
FAR_RATIO = 1e8


def _scale_hint(design: Design) -> str:
    """A sentence naming targets that are orders of magnitude away from what the initial weights give
    (weights of 1 against national totals); empty otherwise."""
    initial = np.asarray(design.x.T @ design.d, dtype=float).ravel()
    t = np.asarray(design.totals, dtype=float)
    ok = (initial != 0) & (t != 0) & np.isfinite(initial) & np.isfinite(t)
    if not ok.any():
        return ""
    ratio = np.abs(t[ok] / initial[ok])
    worst = float(ratio.max()) if ratio.max() >= 1 / ratio.min() else float(ratio.min())
    if 1 / FAR_RATIO < worst < FAR_RATIO:
        return ""
    return (f" The targets are up to {worst:.3g} times what the initial weights give: start from weights on the "
            "targets' scale (e.g. each record weighing population / records).")


def _given_twice(design: Design, listed: list[str]) -> str:
    """A sentence naming each of the ``listed`` targets that the design holds more than once with different values
    (one definition, so one name: two rows of a targets file for one cell, :class:`Targets` accepts the same
    definition given twice), with its values; empty where none is. The conflict it names is otherwise invisible:
    the two rows share the name, so "the targets it conflicts with" listed none.

    >>> from microplex.calibration import Targets
    >>> from microplex.calibration.design import build_design
    >>> import pandas as pd
    >>> df = pd.DataFrame({"sex": ["f", "m", "f"], "weight": 1.0})
    >>> t = Targets.from_frame(pd.DataFrame({"sex": ["f", "f"], "value": [4000, 5000]}))
    >>> _given_twice(build_design(df, t, "weight"), ["count[sex == 'f']"])
    " The cell of count[sex == 'f'] is given 2 times, with the values 4000 and 5000: give it once."
    """
    values: dict[str, list[float]] = {}
    for tg in design.targets:
        values.setdefault(str(tg.name), []).append(float(tg.value))
    out = []
    for name in listed:
        distinct = sorted(set(values.get(name, [])))
        if len(distinct) > 1:
            shown = ", ".join(f"{v:.10g}" for v in distinct[:-1]) + f" and {distinct[-1]:.10g}"
            out.append(f" The cell of {name} is given {len(values[name])} times, with the values {shown}: give it "
                       "once.")
    return "".join(out)


def explain_failure(
    design: Design, lower: np.ndarray, upper: np.ndarray, *, solver_converged: bool, misfit: float | None = None
) -> tuple[str, pd.DataFrame]:
    """The sentence a failed calibration's error ends with, and :func:`min_violation`'s frame.

    Names the targets that cannot be met together (at most 10) with their closest achievable values; where
    no target conflicts by more than the diagnosis's precision (:data:`DIAGNOSIS_RTOL`) and the solver did not
    converge, says that, and that a smaller conflict (a total and the sum of its parts, each rounded when
    published) is not ruled out: the program cannot tell it from feasible targets, whatever the solver's misfit
    (a conflict of 1e-9 of a total can leave a misfit of 1e-3 on a small target). With the solver's ``misfit`` at
    exit below that precision, the sentence says that such targets may be why. Where the diagnosis itself does
    not solve, says that it is unknown which targets conflict. Never that the targets are feasible.

    Returns
    -------
    message : str
        Starts with a space; empty when the targets are feasible and the solver converged (the failure is
        then the caller's own check of the weights).
    infeasible : DataFrame
        :func:`min_violation`'s frame (empty where the diagnosis failed).
    """
    try:
        infeasible, binding = _min_violation(design, lower, upper, DIAGNOSIS_RTOL)
    except ConvergenceError as e:
        logger.warning("%s", e)
        return f" Which targets conflict is unknown: {e}.{_scale_hint(design)}", pd.DataFrame(
            columns=["target", "value", "closest_achievable", "rel_gap"]
        )
    if len(infeasible):
        listed = "; ".join(
            "{} = {} (closest achievable {})".format(r.target, *format_pair(r.value, r.closest_achievable))
            for r in infeasible.head(10).itertuples()
        )
        several = len(infeasible) > 1
        others = [b for b in binding if b not in set(infeasible["target"])]
        bound = ""
        if others:
            more = f" (and {len(others) - 10} more)" if len(others) > 10 else ""
            bound = f" The targets {'they conflict' if several else 'it conflicts'} with: {', '.join(others[:10])}{more}."
        bound += _given_twice(design, list(infeasible["target"].head(10)))
        if several:
            return f" These {len(infeasible)} targets cannot be met together within the bounds: {listed}.{bound}", infeasible
        return f" This target cannot be met together with the others within the bounds: {listed}.{bound}", infeasible
    if not solver_converged and misfit is not None and 0 < misfit < DIAGNOSIS_RTOL:
        return (f" No target conflicts with the others by more than {DIAGNOSIS_RTOL:g} of its value (the precision of "
                f"the diagnosis), so a misfit of {misfit:.3g} may be targets that disagree by less: totals rounded "
                "when published (a total and the sum of its parts) differ by about that much. Raise tol above the "
                "misfit, make such totals agree, or try more iterations (max_iter)." + _scale_hint(design)), infeasible
    if not solver_converged:  # the program holds rows to about 1e-7: it proves no agreement closer than that
        return (f" No target conflicts with the others by more than {DIAGNOSIS_RTOL:g} of its value (the precision of "
                "the diagnosis); a conflict below that is not ruled out (a total and the sum of its parts that differ "
                "by less, which no iteration meets). Make such totals agree, or try more iterations (max_iter) or "
                "another method." + _scale_hint(design)), infeasible
    return "", infeasible
