"""Calibration from weights far off the targets' scale: a target of 0's relative error is measured in the unit its
``met`` is judged in (a thousandth of its records' size at the weights the solve started from); linear and raking
within finite ratio bounds start from the targets' scale within the same box of weights; soft fits judge their misses
at the sizes they started from; and the out-of-core solve holds a count to the rounding of what its records' weights
add up to in size (``sum |w|``), as the :class:`~microplex.Calibrator` does, so the two agree where weights are
negative."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from microplex import Calibrator
from microplex.calibration import Target, Targets
from microplex.scale import rake_dataset, rake_frame

from .conftest import net_zero


@pytest.mark.parametrize("s", [1.0, 1e20, 1e-20])
@pytest.mark.parametrize("method", ["raking", "linear"])
def test_a_zero_target_met_to_rounding_reads_a_tiny_relative_error(method: str, s: float) -> None:
    """Before: raking from weights of 1 against counts 1e20 times them met the zero sum to rounding (98,304 off,
    1.5e-16 of its records' size) and ``met`` read True, but ``rel_error`` and ``summary["max_rel_error"]`` read
    98,304 (the absolute miss). Now the miss over a thousandth of its records' size at the start weights: 2e-13."""
    df, targets = net_zero(s)
    cal = Calibrator(method).fit(df, targets)
    rep = cal.report()
    assert cal.summary["converged"] and rep["met"].all()
    assert (rep["rel_error"] <= cal.summary["met_rtol"]).all()
    assert cal.summary["max_rel_error"] == pytest.approx(float(rep["rel_error"].max()), rel=0, abs=0)
    assert cal.summary["max_rel_error"] < 1e-8
    w, y, b = cal.weights.to_numpy(), df.y.to_numpy(), (df.g == "b").to_numpy()
    natural = cal.result_.start_scale * float(np.sum(np.abs(y[b])))  # its records' size at the start weights
    assert rep["rel_error"].iloc[2] == pytest.approx(abs(float(rep["achieved"].iloc[2])) / (1e-3 * natural),
                                                     rel=1e-9, abs=1e-300)
    assert abs(float(np.sum(w[b] * y[b]))) <= 1e-12 * natural


def _out_of_reach(sw: float, sv: float) -> tuple[pd.DataFrame, list[Target]]:
    """A count over group a and a sum of 0 over group b, whose values are all positive: within ratios (0.5, 2) the sum
    reaches [2, 8] times ``sw * sv``, never 0 (its records add up to 4 times that at the initial weights)."""
    df = pd.DataFrame({"g": ["a", "a", "b", "b"], "y": [1.0, 2.0, 1.0, 3.0], "weight": 1.0})
    targets = [Target(2.0 * sw, aggregate="count", filters={"g": "a"}),
               Target(0.0, aggregate="sum", variable="y", filters={"g": "b"})]
    return df.assign(weight=df.weight * sw, y=df.y * sv), targets


@pytest.mark.parametrize("sw,sv", [(1.0, 1.0), (1e-10, 1e-10), (1e10, 1e10)])
def test_a_zero_target_missed_reads_more_than_its_tolerance_at_any_size(sw: float, sv: float) -> None:
    """The zero sum left at 2 ``sw * sv`` by the bounds: 500 thousandths of its records' size (4 ``sw * sv``), at
    every size. Before: the absolute miss, 2 at sizes 1, 2e-20 at 1e-20 (within any tolerance, though ``met`` read
    False) and 2e20 at 1e20."""
    df, targets = _out_of_reach(sw, sv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal = Calibrator("raking", bounds=(0.5, 2.0), force=True).fit(df, targets)
    rep = cal.report()
    assert rep["met"].tolist() == [True, False]
    assert rep["rel_error"].iloc[1] == pytest.approx(500.0, rel=1e-9)
    assert cal.summary["max_rel_error"] == pytest.approx(500.0, rel=1e-9)


@pytest.mark.parametrize("s", [1.0, 1e10, 1e-10])
@pytest.mark.parametrize("method", ["raking", "linear"])
def test_out_of_core_reads_a_zero_count_as_the_calibrator_does(method: str, s: float) -> None:
    """A margin with a category of 0 (region N), targets ``s`` times the weights' scale. Before: rake_frame's
    ``rel_error`` of it was the absolute miss (2.15 at 1e10, met), and its solve held the count to one unit at
    1e-10 (1.3e-17 left, 3e-7 of a thousandth of its records' size; the Calibrator 3.2e-20)."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"sex": rng.choice(["f", "m"], 600), "reg": rng.choice(["N", "S", "E"], 600),
                       "w": rng.uniform(1, 3, 600)})
    margins = {"sex": {"f": 700.0 * s, "m": 650.0 * s}, "reg": {"N": 0.0, "S": 900.0 * s, "E": 450.0 * s}}
    cal = Calibrator(method).fit(df, Targets.from_margins(margins), "w")
    res = rake_frame(df, margins, "w", method=method)
    assert res.converged and cal.summary["converged"]
    assert res.summary["max_rel_error"] < res.summary["met_rtol"]
    achieved = float(res.report["achieved"].iloc[2])
    natural = float(res.report["initial"].iloc[2]) * res.start_scale
    assert res.report["rel_error"].iloc[2] == pytest.approx(abs(achieved) / (1e-3 * natural), rel=1e-9, abs=1e-300)
    np.testing.assert_allclose(np.asarray(res.weights(df)), cal.weights.to_numpy(), rtol=1e-8,
                               atol=1e-12 * float(cal.weights.abs().max()))


MARGINS = {"sex": {"f": 700.0, "m": 650.0}, "reg": {"N": 400.0, "S": 450.0, "E": 500.0}}
#: margins that a linear solve meets only with negative weights (sex 'm' far below its initial share)
NEGATIVE = {"sex": {"f": 1300.0, "m": 50.0}, "reg": {"N": 400.0, "S": 450.0, "E": 500.0}}


def _sample(s: float, n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"sex": rng.choice(["f", "m"], n), "reg": rng.choice(["N", "S", "E"], n),
                         "w": rng.uniform(1, 3, n) * s})


#: (method, margins, scale of the weights, bounds) where the bounds do not bind at the solution: the ratios of the
#: unbounded weights lie in [0.9, 1.5] / s (MARGINS) or [-0.06, 2.6] / s (NEGATIVE, linear; raking [0.07, 2.9] / s)
NOT_BINDING = [(m, mg, s, b) for m in ("linear", "raking") for mg in ("MARGINS", "NEGATIVE") for s in (1e10, 1e-10)
               for b in ((-1.0, math.inf), (-5.0, 50.0), (1e-12, math.inf))
               if not (s == 1e-10 and b == (-5.0, 50.0))
               and not (m == "linear" and mg == "NEGATIVE" and (b == (1e-12, math.inf) or s == 1e-10))]


@pytest.mark.parametrize("method,margins,s,bounds", NOT_BINDING)
def test_finite_bounds_not_binding_are_solved_from_any_scale(bounds, method: str, margins: str, s: float) -> None:
    """Ratio bounds hold the weights to a box ``[lo d, hi d]``; from weights 1e10 or 1e-10 times the targets' scale,
    where the box does not bind at the solution, the weights are those without bounds, in memory and out of core.
    Before: linear within (-1, inf) from 1e10 was a ConvergenceError in both ("did not converge in 50 iterations:
    max relative misfit 4.97e-07"; rake_frame: "the weights collapsed: they sum to 1.35e+03 against an initial
    1.19783e+13")."""
    df, margins = _sample(s), {"MARGINS": MARGINS, "NEGATIVE": NEGATIVE}[margins]
    targets = Targets.from_margins(margins)
    free = Calibrator(method).fit(df, targets, "w").weights.to_numpy()
    ratio = free / df.w.to_numpy()
    assert bounds[0] < ratio.min() and ratio.max() < bounds[1]  # not binding
    cal = Calibrator(method, bounds=bounds).fit(df, targets, "w")
    res = rake_frame(df, margins, "w", method=method, bounds=bounds)
    scale = float(np.abs(free).max())
    np.testing.assert_allclose(cal.weights.to_numpy(), free, rtol=1e-8, atol=1e-12 * scale)
    np.testing.assert_allclose(np.asarray(res.weights(df)), free, rtol=1e-8, atol=1e-12 * scale)
    assert cal.summary["converged"] and res.converged


def test_a_binding_lower_bound_holds_after_the_rescale() -> None:
    """From weights 1e-10 times the targets' scale, linear within (-1, inf) on margins that need negative weights:
    the solve starts from the targets' scale with the bound -1 divided by the factor (the same box), and the bound
    binds as solved from the weights given (ratio -1 exactly), in memory and out of core."""
    df = _sample(1e-10)
    cal = Calibrator("linear", bounds=(-1.0, math.inf)).fit(df, Targets.from_margins(NEGATIVE), "w")
    res = rake_frame(df, NEGATIVE, "w", method="linear", bounds=(-1.0, math.inf))
    assert cal.result_.start_scale > 1e9 and res.start_scale == cal.result_.start_scale
    assert cal.summary["min_ratio"] == pytest.approx(-1.0, abs=1e-9)
    w = np.asarray(res.weights(df))
    assert (w / df.w.to_numpy()).min() >= -1.0 - 1e-9
    np.testing.assert_allclose(w, cal.weights.to_numpy(), rtol=1e-8, atol=1e-12 * float(np.abs(w).max()))


def _soft_problem(s: float) -> tuple[pd.DataFrame, list[Target]]:
    """Weights ``s`` (targets in units of weights 1): a zero sum over b's values of both signs (met, to 4e-11 of a
    thousandth of its records' size, within its tolerance 1e-3) and a zero sum over a's positive values (missed:
    2.99 thousandths of its records' size, beyond its tolerance 0.5)."""
    df = pd.DataFrame({"g": ["a", "a", "b", "b", "b"], "y": [1.0, 2.0, 1.0, -3.0, 2.5], "weight": s})
    return df, [Target(20.0, aggregate="count", filters={"g": "a"}),
                Target(30.0, aggregate="count", filters={"g": "b"}),
                Target(0.0, aggregate="sum", variable="y", filters={"g": "b"}, tolerance=1e-3),
                Target(0.0, aggregate="sum", variable="y", filters={"g": "a"}, tolerance=0.5)]


@pytest.mark.parametrize("s", [2.0**33, 2.0**-33])
def test_a_soft_fit_from_far_off_weights_judges_its_misses_at_the_start_sizes(s: float) -> None:
    """Weights 2**33 (8.6e9) or 2**-33 (1.2e-10) times those of the same soft problem at 1 start from the same
    scaled weights and give its weights, ``met``, ``rel_error`` and far misses. Judged at the sizes of the weights
    given, the zero sum over a (missed, 2.99) would read met from 2**33 (3.5e-10) and the zero sum over b (met,
    4e-11) missed from 2**-33 (0.34, beyond 1e-3)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = Calibrator("raking", soft=True).fit(*_soft_problem(1.0))
        cal = Calibrator("raking", soft=True).fit(*_soft_problem(s))
    rep, ref = cal.report(), base.report()
    assert ref["met"].tolist() == [False, True, True, False]
    assert rep["met"].tolist() == ref["met"].tolist()
    np.testing.assert_allclose(rep["rel_error"], ref["rel_error"], rtol=1e-6, atol=1e-14)
    assert ref["rel_error"].iloc[3] == pytest.approx(2.99, abs=0.01) and ref["rel_error"].iloc[2] < 1e-3
    assert cal.summary["n_far_missed"] == base.summary["n_far_missed"] == 1
    np.testing.assert_allclose(cal.weights.to_numpy(), base.weights.to_numpy(), rtol=1e-8, atol=1e-12)


def _cancelling(s: float) -> tuple[pd.DataFrame, dict]:
    """Margins whose sex 'm' count is 1e-6 times its records' initial weight: a linear solve meets it with weights
    of both signs, netting 1.0e-6 out of 117 in size (217 negative weights)."""
    df = _sample(s)
    return df, {"sex": {"f": 1350.0 * s, "m": 1e-6 * s}, "reg": {"N": 400.0 * s, "S": 450.0 * s, "E": (500.0 + 1e-6) * s}}


@pytest.mark.parametrize("s", [1.0, 1e3])
def test_out_of_core_holds_a_count_to_the_rounding_of_its_weights_size_as_the_calibrator(tmp_path, s: float) -> None:
    """The sex 'm' count is met to the rounding of ``sum |w|`` over its records (117, not its total of 1e-6), in
    memory and out of core (observed cells and a pass per evaluation) alike. Before: rake_frame and rake_dataset held
    it to the rounding of its achieved total, and raised ConvergenceError ("did not converge in 50 iterations: max
    relative misfit 4.49e-08") where the Calibrator converged in 2 iterations."""
    df, margins = _cancelling(s)
    cal = Calibrator("linear").fit(df, Targets.from_margins(margins), "w")
    w = cal.weights.to_numpy()
    assert cal.summary["converged"] and (w < 0).sum() > 100
    for k in range(3):
        df.iloc[k * 200:(k + 1) * 200].to_parquet(tmp_path / f"p{k}.parquet")
    results = [rake_frame(df, margins, "w", method="linear"),
               rake_dataset(tmp_path, margins, "w", method="linear"),
               rake_dataset(tmp_path, margins, "w", method="linear", max_cells=0)]
    for res in results:
        assert res.converged
        got = np.concatenate([np.asarray(res.weights(df.iloc[k * 200:(k + 1) * 200])) for k in range(3)])
        np.testing.assert_allclose(got, w, rtol=1e-8, atol=1e-12 * float(np.abs(w).max()))
