"""A target of 0 is judged where the hard solve held it, in units of a thousandth of its records' size
(``_stats.zero_scale``), by the check after the solve and by ``report()``'s ``met``; and ratio bounds that a factor on
the initial weights leaves as they are (``(0, inf)``, ``(-inf, inf)``, given explicitly) are solved from the targets'
scale as ``bounds=None`` is, in memory and out of core (``calibrator.scale_free``), while other bounds stay ratios
to the caller's weights."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from microplex import Calibrator
from microplex._errors import ConvergenceError
from microplex.calibration import Target, Targets
from microplex.calibration.design import build_design
from microplex.calibration.feasibility import solution_problems, survey_errors
from microplex.scale import rake_frame

from .conftest import net_zero


def _out_of_reach(sw: float, sv: float) -> tuple[pd.DataFrame, list[Target]]:
    """A count over group a and a sum of 0 over group b, whose values are all positive: within ratios (0.5, 2) the sum
    reaches [2, 8] times ``sw * sv``, never 0."""
    df = pd.DataFrame({"g": ["a", "a", "b", "b"], "y": [1.0, 2.0, 1.0, 3.0], "weight": 1.0})
    targets = [Target(2.0 * sw, aggregate="count", filters={"g": "a"}),
               Target(0.0, aggregate="sum", variable="y", filters={"g": "b"})]
    return df.assign(weight=df.weight * sw, y=df.y * sv), targets


SIZES = [(1.0, 1.0), (1e-10, 1e-10), (1e10, 1e10), (1e-10, 1.0), (1.0, 1e-10)]


@pytest.mark.parametrize("sw,sv", SIZES)
def test_a_zero_sum_missed_by_half_its_size_reads_missed_at_any_size(sw: float, sv: float) -> None:
    """Before: with weights and values of 1e-10 (sizes 1e-20) the zero sum, left at 2e-20 by the bounds (half of
    what its records add up to, 4e-20), read met in report() (an absolute miss of 2e-20 within 1e-8 of one unit),
    while at 1 the same miss of 2 read missed."""
    df, targets = _out_of_reach(sw, sv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal = Calibrator("raking", bounds=(0.5, 2.0), force=True).fit(df, targets)
    rep = cal.report()
    assert not cal.summary["converged"]
    assert rep["achieved"].iloc[1] == pytest.approx(2.0 * sw * sv, rel=1e-9)
    assert rep["met"].tolist() == [True, False]


@pytest.mark.parametrize("sw,sv", SIZES)
def test_the_check_after_the_solve_refuses_a_zero_sum_missed_by_half_its_size(sw: float, sv: float) -> None:
    """The guard every hard solve passes its weights through: at the initial weights the zero sum is 4 times
    ``sw * sv`` off (all its records' size), 1000 times a thousandth of it. Before: at sizes 1e-20 it read met (an
    error of 4e-20, no problem listed); at 1e-10 and 1 in either order, 4e-10 within 1e-8 too."""
    df, targets = _out_of_reach(sw, sv)
    design = build_design(df, Targets(targets), "weight", None)
    errors = survey_errors(design, design.d, 1e-8)
    assert errors[0] == 0.0 and errors[1] == pytest.approx(1000.0, rel=1e-9)  # 4 over a thousandth of 4
    problems = solution_problems(design, design.d, errors=errors, tol=1e-8)
    assert len(problems) == 1 and "sum(y)[g == 'b']" in problems[0]


@pytest.mark.parametrize("s", [1.0, 1e20, 1e-20])
@pytest.mark.parametrize("method", ["raking", "linear"])
def test_a_zero_sum_met_to_rounding_from_weights_far_off_the_targets_reads_met(method: str, s: float) -> None:
    """The solve starts from the targets' scale (weights 2**66 times those given for s = 1e20) and holds the zero sum
    to rounding of its records' size there. Before: raking at 1e20 converged with the sum 98,304 off (1.5e-16 of
    what its records add up to, 6.5e20), but report() read it missed: sizes taken at the weights of 1 given."""
    df, targets = net_zero(s)
    cal = Calibrator(method).fit(df, targets)
    rep = cal.report()
    w = cal.weights.to_numpy()
    y, b = df.y.to_numpy(), (df.g == "b").to_numpy()
    natural = float(np.sum(w[b] * np.abs(y[b])))
    assert cal.summary["converged"] and rep["met"].all()
    assert abs(float(np.sum(w[b] * y[b]))) <= 1e-12 * natural
    base = Calibrator(method).fit(df, net_zero(1.0)[1]).weights.to_numpy()
    np.testing.assert_allclose(w / s, base, rtol=1e-8)


def _margins_sample(n: int = 60) -> tuple[pd.DataFrame, Targets]:
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"sex": rng.choice(["f", "m"], n), "region": rng.choice(["N", "S", "E"], n),
                       "y": rng.lognormal(0, 1, n), "weight": rng.uniform(1, 3, n)})
    targets = Targets.from_margins({"sex": {"f": 70.0, "m": 60.0}, "region": {"N": 40.0, "S": 45.0, "E": 45.0}})
    return df, targets + Targets([Target(1.1 * float((df.weight * df.y).sum()), aggregate="sum", variable="y")])


@pytest.mark.parametrize("s", [1e10, 1e-10])
@pytest.mark.parametrize("bounds", [(0.0, math.inf), (-math.inf, math.inf)])
@pytest.mark.parametrize("method", ["raking", "linear"])
def test_explicit_bounds_that_no_factor_changes_are_solved_from_any_scale(method: str, bounds, s: float) -> None:
    """Bounds (0, inf) or (-inf, inf) given explicitly are bounds=None's: weights 1e10 or 1e-10 times the targets'
    give the weights at 1. Before: from 1e10 a ConvergenceError (raking: "the weights collapsed: they sum to 130
    against an initial 1.16388e+12", with a false diagnosis "count[sex == 'f'] = 70 (closest achievable 0)"; linear:
    "did not converge in 50 iterations: max relative misfit 6.46e-07")."""
    df, targets = _margins_sample()
    base = Calibrator(method, bounds=bounds).fit(df, targets).weights.to_numpy()
    scaled = Calibrator(method, bounds=bounds).fit(df.assign(weight=df.weight * s), targets).weights.to_numpy()
    unbounded = Calibrator(method).fit(df.assign(weight=df.weight * s), targets).weights.to_numpy()
    np.testing.assert_allclose(scaled, base, rtol=1e-8)
    np.testing.assert_allclose(scaled, unbounded, rtol=1e-12)


MARGINS = {"sex": {"f": 700.0, "m": 650.0}, "reg": {"N": 400.0, "S": 450.0, "E": 500.0}}
#: margins that a linear solve meets only with negative weights (sex 'm' far below its initial share)
NEGATIVE = {"sex": {"f": 1300.0, "m": 50.0}, "reg": {"N": 400.0, "S": 450.0, "E": 500.0}}


def _sample(s: float, n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"sex": rng.choice(["f", "m"], n), "reg": rng.choice(["N", "S", "E"], n),
                         "w": rng.uniform(1, 3, n) * s})


@pytest.mark.parametrize("s", [1.0, 1e10, 1e-10])
@pytest.mark.parametrize("margins", [MARGINS, NEGATIVE])
def test_explicit_zero_lower_bound_in_memory_and_out_of_core_give_one_answer(margins, s: float) -> None:
    """Linear with bounds (0, inf): the Calibrator and rake_frame agree at any scale of the weights. Before: from
    weights 1e10 times the targets the Calibrator raised ConvergenceError where rake_frame solved."""
    df = _sample(s)
    cal = Calibrator("linear", bounds=(0.0, math.inf)).fit(df, Targets.from_margins(margins), "w").weights.to_numpy()
    res = rake_frame(df, margins, "w", method="linear", bounds=(0.0, math.inf))
    np.testing.assert_allclose(np.asarray(res.weights(df)), cal, rtol=1e-9, atol=1e-12 * float(cal.max()))
    assert cal.min() >= 0.0


def test_a_negative_lower_bound_stays_a_ratio_to_the_weights_out_of_core() -> None:
    """Bounds (-1, inf) are ratios to the weights given: a factor on the weights changes them. Before: rake_frame
    solved from the targets' scale with the ratio bound taken there, and from weights of 1e-10 returned weights
    -6.2e8 times the initial ones; the Calibrator held them at -1."""
    df = _sample(1e-10)
    cal = Calibrator("linear", bounds=(-1.0, math.inf)).fit(df, Targets.from_margins(NEGATIVE), "w").weights.to_numpy()
    res = rake_frame(df, NEGATIVE, "w", method="linear", bounds=(-1.0, math.inf))
    w = np.asarray(res.weights(df))
    ratio = w / df.w.to_numpy()
    assert res.converged and ratio.min() >= -1.0 - 1e-9
    assert ratio.min() == pytest.approx(-1.0, abs=1e-9)  # the bound holds some weights
    np.testing.assert_allclose(w, cal, rtol=1e-8, atol=1e-12 * float(np.abs(cal).max()))


@pytest.mark.parametrize("s", [1e10, 1e-10])
def test_finite_bounds_stay_ratios_to_the_weights_given(s: float) -> None:
    """(0.5, 2) from weights 1e10 or 1e-10 times what meets the margins: out of reach within those ratios, refused
    by both (never solved from the targets' scale); the same problem in units times s keeps its ratios."""
    df = _sample(s)
    with pytest.raises(ConvergenceError, match="cannot be met within the bounds"):
        Calibrator("linear", bounds=(0.5, 2.0)).fit(df, Targets.from_margins(MARGINS), "w")
    with pytest.raises(ConvergenceError, match="cannot be met within the bounds"):
        rake_frame(df, MARGINS, "w", method="linear", bounds=(0.5, 2.0))
    scaled = {m: {k: v * s for k, v in cells.items()} for m, cells in MARGINS.items()}
    base = Calibrator("logit", bounds=(0.5, 2.0)).fit(_sample(1.0), Targets.from_margins(MARGINS), "w")
    other = Calibrator("logit", bounds=(0.5, 2.0)).fit(df, Targets.from_margins(scaled), "w")
    np.testing.assert_allclose(other.weights.to_numpy() / s, base.weights.to_numpy(), rtol=1e-8)
    assert other.summary["min_ratio"] >= 0.5 - 1e-12 and other.summary["max_ratio"] <= 2.0 + 1e-12


@pytest.mark.parametrize("sv", [1.0, 1e-10, 1e10])
def test_a_zero_mean_out_of_reach_within_the_bounds_reads_missed_at_any_size(sv: float) -> None:
    """A mean of 0 over values 1 and -0.1 (times ``sv``): within ratios (0.5, 2) it comes no closer than 0.12 times
    ``sv``, 218 thousandths of the mean of ``|y|``. Before: with values of 1e-10 that miss of 1.2e-11 read met (within
    1e-8 of one unit)."""
    df = pd.DataFrame({"g": ["a", "b", "b"], "y": np.array([5.0, 1.0, -0.1]) * sv, "weight": 1.0})
    targets = [Target(1.0, aggregate="count", filters={"g": "a"}),
               Target(0.0, aggregate="mean", variable="y", filters={"g": "b"})]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal = Calibrator("raking", bounds=(0.5, 2.0), force=True).fit(df, targets)
    rep = cal.report()
    assert rep["achieved"].iloc[1] == pytest.approx(0.12 * sv, rel=1e-6)
    assert rep["met"].tolist() == [True, False]


@pytest.mark.parametrize("sy,sw", [(1.0, 1.0), (1e-10, 1.0), (1e10, 1.0), (1e300, 1e-300)])
def test_a_zero_mean_that_raking_approaches_is_met_in_any_unit(sy: float, sw: float) -> None:
    """A mean of 0 over values 0, 0 and 1 (times ``sy``): raking drives the third weight towards 0 and stops at
    6.9e-13 times its initial one, a mean 3.5e-13 of the values' size, in every unit. Before: met at 1 and 1e-10,
    but at 1e10 a ConvergenceError ("mean(y)[] = 0 (achieved 0.0034572)": 0.0035 over one unit) and at 1e300 one
    whose diagnosis failed."""
    df = pd.DataFrame({"y": [0.0, 0.0, sy], "weight": [sw] * 3})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        cal = Calibrator("raking").fit(df, [Target(0.0, aggregate="mean", variable="y")])
    w = cal.weights.to_numpy() / sw
    assert cal.summary["converged"] and cal.report()["met"].all()
    np.testing.assert_allclose(w[:2], 1.0, rtol=1e-12)
    assert 0.0 < w[2] < 1e-11
    assert float(np.sum(w * df.y) / np.sum(w)) / sy < 1e-11
