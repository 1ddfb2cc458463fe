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
        # since session 58 the diagnosis weighs in units of the typical weight (1e-300 is no longer tiny there), and
        # HiGHS refuses the values of 1e300 as a model error instead: still "unknown", never a bare error. The mean of
        # 0 alone is met as in any unit (the third weight 6.9e-13 times its initial one, a mean 3.5e-13 of the values'
        # size: the check judges a target of 0 in the unit the solve holds it to), so a count and a sum that put the
        # mean at 1 / 3e-300 make the solve fail
        targets = Targets([Target(3e-300), Target(1.0, aggregate="sum", variable="y"),
                           Target(0.0, aggregate="mean", variable="y")])
        with pytest.raises(ConvergenceError, match=r"Which targets conflict is unknown: the infeasibility diagnosis "
                                                   r"\(a linear program\) (cannot be set up|did not solve)"):
            Calibrator(method="raking").fit(df, targets, weight_col="weight")
