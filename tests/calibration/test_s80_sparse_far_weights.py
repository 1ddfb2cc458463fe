"""Sparse fits from weights far off the targets' scale: the collapse check and the frontier's held-out errors and
feasibility check are taken at the weights the fit started from (the initial weights brought to the targets' scale,
``result_.start_scale``), as a :class:`~microplex.Calibrator`'s are, so both fit the same problems and a held-out
target of 0 reads the same error whatever unit the weights are in."""

from __future__ import annotations

import numpy as np
import pytest

from microplex import Calibrator
from microplex.calibration import SparseCalibrator, Targets

from .conftest import net_zero


def _sparse(**kw: object) -> SparseCalibrator:
    return SparseCalibrator(auxiliary=None, **kw)


@pytest.mark.parametrize("s", [1e-9, 1e-10, 1e-20])
@pytest.mark.parametrize("method", ["l0", "l1"])
def test_a_sparse_fit_from_weights_far_above_the_targets_is_fitted_as_a_calibrator_fits_it(method: str, s: float) -> None:
    """Weights of 1 against counts ``s`` times them (2 s and 3 s) and a sum of 0: the kept weights sum to the counts'
    5 s, as the Calibrator's do. Before: ``ConvergenceError`` ("the weights collapsed: they sum to 5e-09 against an
    initial 5") from ``s = 1e-9`` down, the weights read against the weights as given, 1e9 times the start ones."""
    df, targets = net_zero(s)
    cal = Calibrator("raking").fit(df, targets)
    sc = _sparse(method=method).fit(df, targets)
    assert cal.summary["converged"] and sc.summary["converged"] and sc.report()["met"].all()
    assert float(cal.weights.sum()) == pytest.approx(5.0 * s, rel=1e-9)
    assert float(sc.weights.sum()) == pytest.approx(5.0 * s, rel=sc.tolerance)
    assert sc.summary["n_nonzero"] >= 2


@pytest.mark.parametrize("s", [1e3, 1e-3, 1e10])
def test_a_held_out_zero_reads_its_miss_at_the_start_weights(s: float) -> None:
    """The zero sum held out: its error is its miss over a thousandth of its records' size at the weights the fits
    started from, as ``report()`` reads a fitted target of 0, so within the power of two of the start scale of its
    value at ``s = 1`` (461.5 for 2 records). Before: over that size at the weights as given: 461,538 at
    ``s = 1e3`` (weights in thousands against persons), 0.46 at 1e-3, 4.6e12 at 1e10."""
    df, targets = net_zero(s)
    sizes = [2, 5]
    table = _sparse().frontier(df, targets[:2], sizes, holdout=Targets([targets[2]]))
    base = _sparse().frontier(*net_zero(1.0)[:1], net_zero(1.0)[1][:2], sizes, holdout=Targets([targets[2]]))
    b = (df.g == "b").to_numpy()
    y = df.y.to_numpy()
    for size, err, err_1 in zip(sizes, table["holdout_max_rel_error"], base["holdout_max_rel_error"]):
        sc = _sparse(max_records=size).fit(df, targets[:2])
        natural = sc.result_.start_scale * float(np.sum(np.abs(y[b])))  # the records' size at the start weights
        miss = abs(float(np.sum(sc.weights.to_numpy()[b] * y[b])))
        assert err == pytest.approx(miss / (1e-3 * natural), rel=1e-9)
        assert err == pytest.approx(err_1 * s / sc.result_.start_scale, rel=1e-6)
        assert err_1 / np.sqrt(2) <= err <= err_1 * np.sqrt(2)


@pytest.mark.parametrize("method", ["l0", "l1"])
def test_the_frontier_checks_feasibility_at_the_start_weights(method: str) -> None:
    """Weights of 1 against counts 1e20 times them, which every fit meets: the frontier's one feasibility check is
    made at the weights the fits start from. Before: ``ConvergenceError`` ("the linear program ... failed
    numerically (HiGHS: Model error)"), totals 1e20 times the weights beyond HiGHS's limits."""
    df, targets = net_zero(1e20)
    table = _sparse(method=method).frontier(df, targets, [3, 5])
    assert "error" not in table.columns
    assert (table["max_rel_error"] <= 0.005).all()
