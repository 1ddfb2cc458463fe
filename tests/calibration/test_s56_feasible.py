"""Feasible calibrations that were refused (found by ``tests/property/test_feasible.py``, session 56).

Each problem has a known solution (the initial weights, or their multiple); each was refused with a
``ConvergenceError`` before the fix.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex import Calibrator, SparseCalibrator
from microplex.calibration import Target


def _mean(df: pd.DataFrame, mask: np.ndarray) -> float:
    return float(np.sum(df["weight"][mask] * df["y"][mask]) / df["weight"][mask].sum())


@pytest.mark.parametrize("method", ["l1", "l0"])
def test_sparse_subset_keeps_records_of_a_mean_target_where_the_targets_allow(method):
    # a linear program meets a mean's row sum w (y - v) = 0 by giving its records no weight: the sparsest vertex
    # kept one record of group b only, and the fit failed ("lost all their weight") though one record of group a
    # with weight 6 meets both targets
    df = pd.DataFrame({"g": list("aaaba"), "y": [0.0, 0.0, 0.0, 0.0, 0.0], "weight": [1.0, 1.0, 1.0, 2.0, 1.0]})
    targets = [Target(6.0), Target(0.0, aggregate="mean", variable="y", filters={"g": "a"})]
    sc = SparseCalibrator(method=method, tolerance=0.01).fit(df, targets)
    w = sc.weights.to_numpy()
    a = (df["g"] == "a").to_numpy()
    assert w[a].sum() > 0
    assert w.sum() == pytest.approx(6.0, rel=0.01)


@pytest.mark.parametrize("method,bounds", [("raking", None), ("linear", None), ("logit", (0.5, 2.0))])
def test_a_mean_a_rounding_error_beyond_its_values_is_met(method, bounds):
    # the weighted mean of values all 19.25 computes to 19.250000000000004: "cannot be reached within the weight
    # bounds" (logit), and raking beside a count drove sum w (y - v) towards 0 (misfit 0.49 after 50 iterations)
    df = pd.DataFrame({"y": [19.25, 19.25, 19.25], "weight": [1.0, 3.0, 49.70271]})
    value = _mean(df, np.ones(3, dtype=bool))
    assert value != 19.25  # the premise: the value lies beyond every record's
    cal = Calibrator(method, bounds=bounds).fit(df, [Target(0.8 * 53.70271), Target(value, aggregate="mean", variable="y")])
    w = cal.weights.to_numpy()
    assert w.sum() == pytest.approx(0.8 * 53.70271, rel=1e-9)
    np.testing.assert_allclose(w, 0.8 * df["weight"].to_numpy(), rtol=1e-9)


def test_a_mean_beyond_its_values_by_more_than_rounding_is_still_refused():
    df = pd.DataFrame({"y": [19.25, 19.25, 19.25], "weight": [1.0, 3.0, 5.0]})
    with pytest.raises(Exception, match="19.2501"):
        Calibrator("logit", bounds=(0.5, 2.0)).fit(df, [Target(19.2501, aggregate="mean", variable="y")])


@pytest.mark.parametrize("value", [2.225074e-313, 1e-310])
def test_a_sum_of_subnormal_values_is_met(value):
    # the column's power-of-two scale 2**1037 overflowed to inf: "max relative misfit nan"
    df = pd.DataFrame({"y": [0.0] * 7 + [value], "weight": 1.0})
    cal = Calibrator("raking").fit(df, [Target(value, aggregate="sum", variable="y")])
    np.testing.assert_allclose(cal.weights.to_numpy(), 1.0)


@pytest.mark.parametrize("method", ["l1", "l0"])
def test_sparse_sum_of_tiny_values_is_met(method, recwarn):
    # HiGHS drops matrix values below 1e-9 and holds bounds to about 1e-7: a sum of 2.9e-177 was "met" by no
    # weight (the l1 vertex then missed it by 100%), and a penalty's underflow warned "divide by zero"
    tiny = 2.890153e-177
    df = pd.DataFrame({"y": [0.0] * 8 + [tiny], "weight": 1.0})
    sc = SparseCalibrator(method=method, tolerance=0.01).fit(df, [Target(9.0), Target(tiny, aggregate="sum", variable="y")])
    w = sc.weights.to_numpy()
    assert abs(w.sum() - 9.0) <= 0.01 * 9.0 * (1 + 1e-6)
    assert abs(w[-1] * tiny - tiny) <= 0.01 * tiny * (1 + 1e-6)
    assert not [r for r in recwarn if issubclass(r.category, RuntimeWarning)]
