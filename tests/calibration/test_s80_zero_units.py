"""Targets of 0 and targets that net to nearly 0, read in one unit everywhere: a thousandth of what their records
add up to in size at the weights the solve started from. The :class:`~microplex.SparseCalibrator` judges and
reports them as the :class:`~microplex.Calibrator` does (its ``summary["max_rel_error"]``, ``within_tolerance`` and
``report()``), and a non-zero target far below its records' size is measured against at least that unit, so that
one met to float64 rounding never reads a relative error of 0.38 while its ``met`` reads True."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from microplex import Calibrator, SparseCalibrator, Target

from .conftest import net_zero


def _signed(sv: float) -> tuple[pd.DataFrame, list[Target]]:
    """Six records of weight 1 and values of both signs (times ``sv``): a count of 6 and a sum of 0, which only the
    records 4.0 and -2.0 at weights 2 and 4 meet among pairs (the pair 4.0 and -2.5 at 3 each leaves 0.6 ``sv``,
    400 thousandths of the records' size of 15 ``sv``)."""
    df = pd.DataFrame({"y": np.array([1.0, -3.0, 2.5, 4.0, -2.0, -2.5]) * sv, "weight": 1.0})
    return df, [Target(6.0, aggregate="count"), Target(0.0, aggregate="sum", variable="y")]


def _sparse(**kw: object) -> SparseCalibrator:
    return SparseCalibrator(auxiliary=None, **kw)


@pytest.mark.parametrize("sv", [1e-10, 1e10])
def test_a_sparse_zero_sum_is_held_in_the_unit_of_its_records_size(sv: float) -> None:
    """Two records of six, values ``sv`` times those at 1: the same weights as at 1 (the sum met to rounding), and
    ``summary["max_rel_error"]`` is ``report()``'s. Before: at values of 1e-10 the subset kept 4.0 and -2.5 at
    weights 3 each, the sum 6e-10 off (400 thousandths of its records' size) read met ("converged"), its
    ``max_rel_error`` 6e-10 beside a ``rel_error`` of 400 in ``report()``."""
    base = _sparse(max_records=2).fit(*_signed(1.0))
    sc = _sparse(max_records=2).fit(*_signed(sv))
    rep = sc.report()
    assert sc.summary["converged"] and sc.summary["within_tolerance"] and rep["met"].all()
    np.testing.assert_allclose(sc.weights.to_numpy(), base.weights.to_numpy(), rtol=1e-9, atol=1e-12)
    assert sc.summary["max_rel_error"] == float(rep["rel_error"].max()) < 1e-8
    assert abs(float(rep["achieved"].iloc[1])) <= 1e-12 * 15.0 * 6.0 * sv


@pytest.mark.parametrize("method", ["l0", "l1"])
def test_a_sparse_zero_sum_met_to_rounding_from_far_off_weights_is_met(method: str) -> None:
    """Weights of 1 against counts 1e20 times them: the zero sum is met to rounding of its records' size at the
    weights the solve started from (1.96e5 off for l0, 4.4e8 for l1, of 6.5e20), and reads a relative error below
    the tolerance, as a Calibrator's does. Before: a ``ConvergenceError`` ("relative error 196608 > tolerance
    0.005"), the absolute miss."""
    df, targets = net_zero(1e20)
    sc = _sparse(method=method).fit(df, targets)
    rep = sc.report()
    assert sc.summary["converged"] and rep["met"].all()
    assert sc.summary["max_rel_error"] == float(rep["rel_error"].max()) <= sc.tolerance
    assert sc.result_.start_scale > 1e19
    b = (df.g == "b").to_numpy()
    natural = sc.result_.start_scale * float(np.sum(np.abs(df.y.to_numpy()[b])))  # at the start weights
    assert rep["rel_error"].iloc[2] == pytest.approx(abs(float(rep["achieved"].iloc[2])) / (1e-3 * natural),
                                                     rel=1e-9, abs=1e-300)
    assert rep["rel_error"].iloc[2] < 1e-9


@pytest.mark.parametrize("sv", [1e-10, 1.0, 1e10])
def test_a_sparse_fit_that_misses_reads_the_same_at_any_size_of_the_values(sv: float) -> None:
    """One record for a count of 6 and a sum of 0 (``force=True``): the same weights and errors at every size of the
    values, the count missed (``max_rel_error`` about 1) and the sum within the tolerance. Before:
    ``max_rel_error`` 93,754 at 1e10 (the sum's absolute miss, read 6.25e-4 in ``report()``), and at 1e-10 the
    record of weight 6 kept the sum 2.4e-9 off (1600 thousandths of its records' size) and read converged."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc = _sparse(max_records=1, force=True).fit(*_signed(sv))
    rep = sc.report()
    assert not sc.summary["within_tolerance"] and not sc.summary["converged"]
    assert rep["met"].tolist() == [False, True]
    assert sc.summary["max_rel_error"] == float(rep["rel_error"].max()) == pytest.approx(1.0, abs=1e-5)
    assert rep["rel_error"].iloc[1] == pytest.approx(6.25e-4, rel=1e-2)


def _nearly_zero(t: float) -> tuple[pd.DataFrame, list[Target]]:
    """400 records of weights 1 to 3, values of both signs adding up to 1.4e6 in size, and a sum target ``t`` far
    below that size beside two counts: linear and raking meet it to float64 rounding (a miss of about 1e-10)."""
    rng = np.random.default_rng(3)
    y = rng.lognormal(0, 1, 200) * 1e3
    df = pd.DataFrame({"g": np.r_[np.zeros(200, int), np.ones(200, int)], "y": np.r_[y, -y * 1.01],
                       "weight": rng.uniform(1, 3, 400)})
    return df, [Target(float(df.weight.sum()), aggregate="count"), Target(500.0, aggregate="count", filters={"g": 1}),
                Target(t, aggregate="sum", variable="y")]


@pytest.mark.parametrize("t", [1e-9, 1e-3])
@pytest.mark.parametrize("method", ["linear", "raking"])
def test_a_target_netting_to_nearly_0_met_to_rounding_reads_a_tiny_relative_error(method: str, t: float) -> None:
    """The sum of 1e-9 (or 1e-3) met to about 1e-10 reads a relative error below ``met_rtol``, as a sum of 0 met so
    does, and ``met``. Before: ``rel_error`` and ``summary["max_rel_error"]`` were the miss over 1e-9, 0.38 for
    linear and 0.11 for raking (1.7e-7 over 1e-3), beside ``met`` True."""
    df, targets = _nearly_zero(t)
    cal = Calibrator(method).fit(df, targets)
    rep = cal.report()
    assert cal.summary["converged"] and rep["met"].all()
    assert cal.summary["max_rel_error"] == float(rep["rel_error"].max()) <= cal.summary["met_rtol"]
    natural = float((df.weight * df.y.abs()).sum())
    miss = abs(float(rep["achieved"].iloc[2]) - t)
    assert 0 < miss < 1e-15 * natural  # float64 rounding of its records' size
    assert rep["rel_error"].iloc[2] == pytest.approx(miss / (1e-3 * natural), rel=1e-9)


def _positive(t: float) -> tuple[pd.DataFrame, list[Target]]:
    """A count over group a and a sum ``t`` over group b, whose values are all positive: within ratios (0.5, 2) the
    sum reaches [2, 8], never 0 (its records add up to 4 at the initial weights)."""
    df = pd.DataFrame({"g": ["a", "a", "b", "b"], "y": [1.0, 2.0, 1.0, 3.0], "weight": 1.0})
    return df, [Target(2.0, aggregate="count", filters={"g": "a"}),
                Target(t, aggregate="sum", variable="y", filters={"g": "b"})]


@pytest.mark.parametrize("method", ["linear", "raking"])
def test_a_target_near_0_missed_reads_as_a_target_of_0_does(method: str) -> None:
    """A sum of 1e-12 held at 2 by the bounds (``force=True``) reads missed with the relative error of the sum of 0
    beside it, 500 (2 over a thousandth of its records' size of 4): the scale is continuous at 0. Before: 2e12, the
    miss over 1e-12."""
    errors = {}
    for t in (0.0, 1e-12):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cal = Calibrator(method, bounds=(0.5, 2.0), force=True).fit(*_positive(t))
        rep = cal.report()
        assert rep["met"].tolist() == [True, False]
        errors[t] = float(rep["rel_error"].iloc[1])
        assert cal.summary["max_rel_error"] == errors[t]
    assert errors[0.0] == pytest.approx(500.0, rel=1e-9)
    assert errors[1e-12] == pytest.approx(errors[0.0], rel=1e-9)
