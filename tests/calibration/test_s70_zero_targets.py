"""A target of 0 (a net sum or mean of values of both signs) is judged against float64 rounding of its records'
size, not against one unit: an exact solution is found and kept, never refused for the rounding it leaves."""

from __future__ import annotations

import warnings
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from microplex import Calibrator, SparseCalibrator, Target, Targets
from microplex._errors import ConvergenceError, DataValidationError


def _twins(sw: float, sy: float, n: int = 1000) -> pd.DataFrame:
    """Each record has a twin of the same weight and cell and the opposite value: ``w = 1.05 d`` meets the counts
    below and a sum (or mean) of ``y`` of exactly 0."""
    rng = np.random.default_rng(19)
    w = rng.uniform(1, 10, n) * sw
    y = rng.lognormal(0, 1, n) * sy
    g = rng.integers(0, 2, n)
    return pd.DataFrame({"g": np.r_[g, g], "weight": np.r_[w, w], "y": np.r_[y, -y]})


def _targets(df: pd.DataFrame, aggregate: str = "sum") -> Targets:
    counts = df.groupby("g").weight.sum() * 1.05
    return Targets.from_margins({"g": counts}) + Targets([Target(aggregate=aggregate, variable="y", value=0.0)])


SCALES = [(100.0, 1e3), (1e3, 1e6)]


def test_witness_is_exact() -> None:
    """The data themselves: ``1.05 d`` gives a sum of exactly 0 (exact fractions), so a refusal is wrong."""
    df = _twins(1e3, 1e6)
    total = sum(Fraction(1.05) * Fraction(float(a)) * Fraction(float(b)) for a, b in zip(df.weight, df.y))
    assert total == 0


@pytest.mark.parametrize("sw,sy", SCALES)
@pytest.mark.parametrize("method", ["linear", "raking", "logit"])
def test_zero_sum_hard(method: str, sw: float, sy: float) -> None:
    df = _twins(sw, sy)
    bounds = (0.5, 2.0) if method == "logit" else None
    cal = Calibrator(method=method, bounds=bounds).fit(df, _targets(df), weight_col="weight")
    ratio = cal.weights.to_numpy() / df.weight.to_numpy()
    np.testing.assert_allclose(ratio, 1.05, rtol=1e-9, atol=0)
    rep = cal.report()
    assert rep["met"].all()
    assert cal.summary["converged"]
    natural = float((cal.weights * df.y.abs()).sum())
    assert abs(rep["achieved"].iloc[-1]) < 1e-12 * natural


@pytest.mark.parametrize("sw,sy", SCALES)
def test_zero_sum_soft(sw: float, sy: float) -> None:
    df = _twins(sw, sy)
    cal = Calibrator(soft=True).fit(df, _targets(df), weight_col="weight")
    ratio = cal.weights.to_numpy() / df.weight.to_numpy()
    # soft: the counts are traded against the distance (a miss of about 3e-6 of them, far within their tolerance),
    # and twins keep one weight, so the sum stays 0 to rounding
    np.testing.assert_allclose(ratio, 1.05, rtol=1e-5, atol=0)
    half = len(df) // 2
    np.testing.assert_allclose(ratio[:half], ratio[half:], rtol=1e-12, atol=0)
    rep = cal.report()
    assert rep["met"].all() and cal.summary["converged"]
    natural = float((cal.weights * df.y.abs()).sum())
    assert abs(rep["achieved"].iloc[-1]) < 1e-12 * natural


@pytest.mark.parametrize("sw,sy", [(1e3, 1e7), (1e5, 1e9)])
def test_zero_mean_hard(sw: float, sy: float) -> None:
    df = _twins(sw, sy)
    cal = Calibrator().fit(df, _targets(df, "mean"), weight_col="weight")
    np.testing.assert_allclose(cal.weights.to_numpy() / df.weight.to_numpy(), 1.05, rtol=1e-9, atol=0)
    assert cal.report()["met"].all()


@pytest.mark.parametrize("sw,sy", SCALES)
def test_zero_sum_sparse(sw: float, sy: float) -> None:
    df = _twins(sw, sy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the balanced sample's notes
        sc = SparseCalibrator(max_records=200).fit(df, _targets(df), weight_col="weight")
    assert sc.summary["within_tolerance"] and sc.summary["converged"]
    rep = sc.report()
    assert rep["met"].all()
    w = sc.weights.to_numpy()
    natural = float(np.sum(w * np.abs(df.y.to_numpy())))
    assert abs(float(np.sum(w * df.y.to_numpy()))) < 1e-12 * natural


def test_infeasible_zero_sum_still_refused() -> None:
    """All values positive: a sum of 0 needs every weight at 0, which the counts forbid."""
    df = _twins(1e3, 1e6)
    df["y"] = df["y"].abs()
    tg = _targets(df)
    for method in ("raking", "logit"):  # non-negative weights (a linear fit may go negative and meet it)
        with pytest.raises((ConvergenceError, DataValidationError), match="sum"):
            Calibrator(method=method, bounds=(0.0, 10.0) if method == "logit" else None).fit(df, tg, weight_col="weight")
    with pytest.raises((ConvergenceError, DataValidationError)):
        SparseCalibrator(max_records=200).fit(df, tg, weight_col="weight")


def test_nearly_zero_sum_missed_beyond_rounding_is_refused() -> None:
    """The floor is rounding, not a tolerance: a sum of 0 that the counts hold at 1e-9 of its records' size is
    refused (the counts fix every weight in a cell of twins whose values do not cancel)."""
    df = _twins(1e3, 1e6, n=100)
    df.loc[0, "y"] = df.loc[0, "y"] * (1 + 1e-6)  # one value off its twin's: no weights meet a sum of exactly 0
    df["c"] = np.arange(len(df))  # one cell per record: the counts fix every weight at 1.05 d
    counts = df.set_index("c").weight * 1.05
    tg = Targets.from_margins({"c": counts}) + Targets([Target(aggregate="sum", variable="y", value=0.0)])
    with pytest.raises(ConvergenceError):
        Calibrator(method="linear").fit(df, tg, weight_col="weight")


def test_ordinary_targets_unchanged() -> None:
    """A non-zero sum of ordinary size keeps the relative test (the floor does not loosen it)."""
    from microplex._stats import ROUNDING_SHARE, misfit_denominator

    t = np.array([100.0, 0.0, 1e6, -5.0])
    natural = np.array([200.0, 1e13, 2e6, 10.0])
    out = misfit_denominator(t, natural, 1e-10)
    assert out.tolist()[0] == 101.0 and out.tolist()[2] == 1e6 + 1 and out.tolist()[3] == 6.0
    assert out[1] == ROUNDING_SHARE * 1e13 / 1e-10
