"""Session 55: a calibration whose infeasibility diagnosis overflows raises ConvergenceError, not a bare ValueError
from scipy (found by the nightly property suite: a mean target over values of 1e300 with weights of 1e-300 made
the diagnosis's scaled rows infinite, and linprog raised "A_eq must not contain values inf, nan")."""

import warnings

import pandas as pd
import pytest

from microplex import ConvergenceError
from microplex.calibration import Calibrator, Target, Targets


def test_an_overflowing_diagnosis_is_a_convergence_error():
    df = pd.DataFrame({"g": ["a", "a", "a"], "y": [0.0, 0.0, 1e300], "weight": [1e-300] * 3})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(ConvergenceError, match="diagnosis .* cannot be set up: its scaled rows overflow"):
            Calibrator(method="raking").fit(df, Targets([Target(0.0, aggregate="mean", variable="y")]),
                                            weight_col="weight")
