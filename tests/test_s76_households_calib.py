"""Session 76: hard calibration from initial weights far below the targets' scale with a mean target beside the
counts (raking did not converge: the mean was solved in relative units counted at the initial weights), and a
linear solve from weights far above it (its ratios lost digits to cancellation). Every miss is computed by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex import Calibrator
from microplex.calibration import Target


def _records(n: int = 20, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"g": rng.choice(list("abc"), n), "y": rng.uniform(-1e3, 1e3, n),
                         "weight": rng.uniform(0.5, 50, n)})


@pytest.mark.parametrize("factor", [1e6, 3e6, 1e7])
def test_a_mean_beside_a_count_is_solved_from_weights_far_below_the_targets(factor):
    """A total count ``factor`` times what the initial weights reach and the initial weights' mean of y (so w = d *
    factor is the solution). Before: "Calibration (raking) did not converge in 50 iterations: max relative misfit
    2.89e-09 > tol 1e-10" at 1e6 (6.93e-08 at 3e6, 3.69e-08 at 1e7): the mean's misfit was read in units counted
    at the initial weights, 1e6 times its relative miss."""
    df = _records()
    d, y = df.weight.to_numpy(), df.y.to_numpy()
    mean = float(np.sum(d * y) / d.sum())
    cal = Calibrator("raking", tol=1e-10).fit(df, [Target(factor * d.sum()),
                                                   Target(mean, aggregate="mean", variable="y")])
    w = cal.weights.to_numpy()
    assert cal.summary["converged"]
    assert abs(w.sum() / (factor * d.sum()) - 1) < 1e-10
    assert abs(np.sum(w * y) / w.sum() - mean) < 1e-10 * (1 + abs(mean))
    np.testing.assert_allclose(w, d * factor, rtol=1e-9)
    assert bool(cal.report()["met"].all())


def test_group_counts_a_sum_and_a_mean_are_solved_from_weights_1e6_below_the_targets():
    """The case the property test of tests/test_s76_calibration_scale.py left out: every group's count, a group's
    sum and its mean, 1e6 times what the initial weights reach. Before: "did not converge in 50 iterations: max
    relative misfit 9.17e-09 > tol 1e-10"."""
    df = _records(n=12, seed=3)
    d, y, g = df.weight.to_numpy(), df.y.to_numpy(), df.g.to_numpy()
    a = g == "a"
    targets = [Target(1e6 * d[g == k].sum(), filters={"g": k}) for k in "abc"]
    targets += [Target(1e6 * float(np.sum(d[a] * y[a])), aggregate="sum", variable="y", filters={"g": "a"}),
                Target(float(np.sum(d[a] * y[a]) / d[a].sum()), aggregate="mean", variable="y", filters={"g": "a"})]
    cal = Calibrator("raking", tol=1e-10).fit(df, targets)
    w = cal.weights.to_numpy()
    assert cal.summary["converged"]
    for k in "abc":
        assert abs(w[g == k].sum() / (1e6 * d[g == k].sum()) - 1) < 1e-10
    assert abs(np.sum(w[a] * y[a]) / (1e6 * np.sum(d[a] * y[a])) - 1) < 1e-9
    np.testing.assert_allclose(w, d * 1e6, rtol=1e-9)


@pytest.mark.parametrize("factor", [1e-7, 1.5e-7])
def test_a_linear_solve_from_weights_1e7_above_the_targets_meets_them(factor):
    """Group counts ``factor`` times what the initial weights reach (w = d * factor is the solution). Before: the
    linear solve's ratios 1 + x'lambda near 1e-7 lost digits to cancellation: at 1e-7 "did not converge in 50
    iterations: max relative misfit 2.63e-10 > tol 1e-10", the weights 5.3e-10 off; at 1.5e-7 converged with the
    weights 1.6e-10 off."""
    rng = np.random.default_rng(1)
    n = 20
    g = rng.choice(list("abc"), n)
    d = rng.uniform(0.5, 50, n)
    df = pd.DataFrame({"g": g, "weight": d})
    cal = Calibrator("linear", tol=1e-10).fit(df, [Target(factor * d[g == k].sum(), filters={"g": k})
                                                   for k in "abc"])
    w = cal.weights.to_numpy()
    assert cal.summary["converged"]
    np.testing.assert_allclose(w, d * factor, rtol=3e-11)  # before: 5.3e-10 and 1.6e-10 off
    np.testing.assert_array_equal(cal.result_.initial_weights.to_numpy(), d)
