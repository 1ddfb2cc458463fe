"""Feasible calibrations that were refused (found by ``tests/property/test_feasible.py``, session 56).

Each problem has a known solution (the initial weights, or their multiple); each was refused with a
``ConvergenceError`` before the fix.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex import Calibrator, ConvergenceError, SparseCalibrator
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


def _parts_and_total(rel: float) -> tuple[pd.DataFrame, list[Target]]:
    rng = np.random.default_rng(0)
    n = 500
    df = pd.DataFrame({"g": rng.choice(list("abc"), n), "h": rng.choice([1, 2, 3], n), "y": rng.normal(5, 1, n),
                       "weight": rng.uniform(1, 3, n)})
    parts = df.groupby("g")["weight"].sum() * 10
    by_h = df.groupby("h")["weight"].sum() * 10
    targets = ([Target(float(v), filters={"g": k}) for k, v in parts.items()]
               + [Target(float(v), filters={"h": int(k)}) for k, v in by_h.items()]
               + [Target(5.05, aggregate="mean", variable="y", filters={"g": "a"}),
                  Target(float(parts.sum()) * (1 + rel))])
    return df, targets


@pytest.mark.parametrize("method", ["raking", "linear"])
def test_a_total_that_disagrees_with_its_parts_names_them_all(method):
    # the least-violation program puts the whole gap on one target; the message named that one alone ("This
    # target cannot be met together with the others"), not the parts it disagrees with
    df, targets = _parts_and_total(1e-4)
    with pytest.raises(ConvergenceError) as info:
        Calibrator(method).fit(df, targets)
    msg = str(info.value)
    # the total disagrees with either partition's sum: the message names the total and all of one of them
    by_g = ["count[g == 'a']", "count[g == 'b']", "count[g == 'c']"]
    by_h = ["count[h == 1]", "count[h == 2]", "count[h == 3]"]
    assert "count[]" in msg
    assert all(name in msg for name in by_g) or all(name in msg for name in by_h), msg
    assert "mean(y)" not in msg, msg


def test_targets_that_disagree_below_the_diagnosis_precision_are_not_called_feasible():
    # a total 1e-9 away from the sum of its parts: misfit 5e-10 > tol 1e-10, and the diagnosis (HiGHS, about 1e-7)
    # said "The targets are feasible within the bounds; try more iterations"
    df, targets = _parts_and_total(1e-9)
    with pytest.raises(ConvergenceError) as info:
        Calibrator("raking").fit(df, targets)
    msg = str(info.value)
    assert "feasible within the bounds" not in msg
    assert "disagree by less" in msg and "Raise tol above the misfit" in msg
    Calibrator("raking", tol=1e-8).fit(df, targets)  # as the message says: a tolerance above the misfit


def test_rake_frame_margins_that_disagree_below_the_diagnosis_precision():
    from microplex.scale import rake_frame

    df, _ = _parts_and_total(0.0)
    g = {k: float(v) for k, v in (df.groupby("g")["weight"].sum() * 10).items()}
    h = {int(k): float(v) * (1 + 1e-9) for k, v in (df.groupby("h")["weight"].sum() * 10).items()}
    with pytest.raises(ConvergenceError, match="disagree by less"):
        rake_frame(df, {"g": g, "h": h}, "weight")
