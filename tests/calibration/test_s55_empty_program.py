"""Session 55: a sparse subset whose targets keep no record (a count of 0 beside a mean) raises ConvergenceError,
not scipy's bare ValueError ("`c` must be a one-dimensional array of finite numbers with at least one element":
the auxiliary program of no record; found by the nightly property suite)."""

import warnings

import pandas as pd
import pytest

from microplex import ConvergenceError
from microplex.calibration import SparseCalibrator, Target, Targets


def test_targets_that_keep_no_record_are_a_convergence_error():
    df = pd.DataFrame({"g": ["a"] * 4, "y": [0.0, 0.0, 0.0, 1.0], "weight": [1.0] * 4})
    targets = Targets([Target(0.0, aggregate="count"), Target(0.25, aggregate="mean", variable="y")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ConvergenceError, match=r"mean\(y\)"):
            SparseCalibrator(method="l0", max_records=1).fit(df, targets, weight_col="weight")
