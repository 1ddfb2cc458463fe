"""Sparse calibration with initial weights spread over ten orders of magnitude (session 70).

Half of the records weighed about ``lo``, half about ``hi``; the targets are 1.2 times the initial totals of two
count margins and 1.25 times the initial weighted income, so ``w = 1.2 d`` (or ``1.25 d``) is within reach. With
the unit of the linear programs taken from the median weight (the light half's) the totals reached 1e17..1e22 in
its units, beyond what HiGHS solves ("model_status is Unknown", "Model error"), and that failure was reported as
"No non-negative weights meet tolerance 0.005 ... best achievable ... 7.243e-17; raise the tolerance to at least
that". The unit now follows the weight where the median's leaves the totals that large, and a solver failure is
reported as one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import OptimizeResult

import microplex.calibration.feasibility as feasibility
from microplex import ConvergenceError, SparseCalibrator, Target, Targets
from microplex.calibration.design import build_design, in_weight_units, weight_unit

TOL = 0.005


def _spread(lo: float, hi: float, income_factor: float = 1.2, margin_factor: float = 1.2, n: int = 3000):
    rng = np.random.default_rng(13)
    d = np.where(rng.random(n) < 0.5, lo, hi) * rng.uniform(0.5, 1.5, n)
    df = pd.DataFrame({"g": rng.integers(0, 4, n), "h": rng.integers(0, 3, n), "weight": d,
                       "inc": rng.lognormal(12, 1, n)})
    tg = (Targets.from_margins({"g": df.groupby("g").weight.sum() * 1.2,
                                "h": df.groupby("h").weight.sum() * margin_factor})
          + Targets([Target(aggregate="sum", variable="inc", value=float((df.inc * df.weight).sum() * income_factor))]))
    return df, tg


def _max_rel_miss(df: pd.DataFrame, tg: Targets, w: pd.Series) -> float:
    """Every target's relative miss recomputed with pandas from the returned weights."""
    out = []
    for t in tg:
        if t.aggregate == "sum":
            achieved = float((df["inc"] * w).sum())
        else:
            (col, val), = t.filters.items()
            achieved = float(w[df[col] == val].sum())
        out.append(abs(achieved - t.value) / abs(t.value))
    return max(out)


@pytest.mark.parametrize("method", ["l0", "l1"])
@pytest.mark.parametrize("lo,hi,factor", [(1.0, 1e10, 1.2), (1e-6, 1e9, 1.2), (1e-3, 1e6, 1.25), (1.0, 1e10, 1.25)])
def test_weights_spread_over_ten_orders_with_a_sum_target_meet_the_targets(lo, hi, factor, method):
    df, tg = _spread(lo, hi, factor)
    sc = SparseCalibrator(method=method, tolerance=TOL).fit(df, tg, weight_col="weight")
    w = sc.weights
    assert np.isfinite(w).all() and (w >= 0).all()
    assert 0 < int((w > 0).sum()) <= 20
    assert _max_rel_miss(df, tg, w) <= TOL


def test_weight_unit_is_the_medians_unless_its_totals_are_too_large():
    # not spread (the sparse benchmark's weights: census2000 all 100, eusilc's db090): the median's power of two
    assert weight_unit(np.full(4000, 100.0)) == 64.0
    rng = np.random.default_rng(0)
    d = rng.lognormal(7, 1, 50_000)  # weights from ~10 to ~50000
    assert weight_unit(d) == 2.0 ** (np.frexp(np.median(d))[1] - 1)
    # half the records at 1, half at 1e10: the heavy half's unit (weighted median), not the light half's
    d = np.where(rng.random(3000) < 0.5, 1.0, 1e10) * rng.uniform(0.5, 1.5, 3000)
    u = weight_unit(d)
    assert u == 2.0 ** 33 and float(np.median(d)) < 2.0
    assert weight_unit(d / u) == 1.0  # already in its unit: solved again in the same unit


@pytest.mark.parametrize("message", [
    "The HiGHS status code was not recognized. (HiGHS Status 15: model_status is Unknown; primal_status is Feasible)",
    "(HiGHS Status 2: Model error)",
])
def test_a_solver_failure_is_not_reported_as_no_weights_meet(monkeypatch, message):
    df, tg = _spread(1.0, 10.0)
    work = in_weight_units(build_design(df, tg, "weight", None))
    monkeypatch.setattr(feasibility, "milp", lambda *a, **k: OptimizeResult(
        x=None, status=4 if "15" in message else 2, success=False, message=message))
    with pytest.raises(ConvergenceError, match="failed numerically") as info:
        feasibility.lp_vertex(work, TOL)
    text = str(info.value)
    assert "No non-negative weights meet" not in text and "raise the tolerance to at least" not in text
    assert message.split("(")[-1].rstrip(")") in text  # the solver's status, named


def test_a_claimed_infeasibility_that_the_targets_contradict_is_a_solver_failure(monkeypatch):
    # HiGHS says "infeasible" but the best achievable error (0 here) is within the tolerance: never "raise the
    # tolerance to at least 0"
    df, tg = _spread(1.0, 10.0)
    work = in_weight_units(build_design(df, tg, "weight", None))
    monkeypatch.setattr(feasibility, "milp", lambda *a, **k: OptimizeResult(
        x=None, status=2, success=False, message="The problem is infeasible. (HiGHS Status 8: model_status is Infeasible)"))
    with pytest.raises(ConvergenceError, match="failed numerically") as info:
        feasibility.lp_vertex(work, TOL)
    assert "raise the tolerance to at least" not in str(info.value)


@pytest.mark.parametrize("method", ["l0", "l1"])
@pytest.mark.parametrize("lo,hi", [(1.0, 1e10), (1.0, 3.0)])
def test_targets_that_conflict_still_say_no_weights_meet(lo, hi, method):
    # the g margin asks for 1.2 times the population, the h margin for 1.0 times it: 1/11 apart at best
    df, tg = _spread(lo, hi, margin_factor=1.0)
    with pytest.raises(ConvergenceError, match="No non-negative weights meet tolerance 0.005") as info:
        SparseCalibrator(method=method, tolerance=TOL).fit(df, tg, weight_col="weight")
    best = float(str(info.value).split("non-negative weights is ")[1].split(";")[0])
    assert best == pytest.approx(0.2 / 2.2, rel=1e-3)
