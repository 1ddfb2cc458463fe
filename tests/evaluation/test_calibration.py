import numpy as np
import pandas as pd
import pytest

from microplex._errors import DataValidationError
from microplex.evaluation.calibration import (
    achieved_vs_target,
    design_effect,
    kish_ess,
    weight_summary,
    weighted_totals,
)


def test_kish_ess_closed_forms():
    assert kish_ess(np.full(10, 3.0)) == pytest.approx(10.0)
    assert kish_ess([5.0, 0.0, 0.0, 0.0]) == 1.0
    # two groups of weights 1 and 3, equal sizes: (4n/2)^2/(10n/2) = 0.8 n
    w = np.r_[np.ones(50), np.full(50, 3.0)]
    assert kish_ess(w) == pytest.approx(80.0)


def test_design_effect_is_one_plus_cv_squared():
    w = np.random.default_rng(0).lognormal(0, 0.7, 1000)
    cv = w.std() / w.mean()
    assert design_effect(w) == pytest.approx(1 + cv**2)


def test_weight_summary():
    s = weight_summary([1.0, 1.0, 0.0, 2.0])
    assert s["n"] == 4
    assert s["sum"] == 4
    assert s["zero_share"] == 0.25
    assert s["max_over_mean"] == 2.0
    assert s["ess_share"] == pytest.approx(s["kish_ess"] / 4)


def test_weighted_totals_and_fit():
    df = pd.DataFrame({"inc": [10.0, np.nan, 30.0], "sex": ["f", "m", "f"]})
    got = weighted_totals(df, [1.0, 2.0, 3.0], ["inc", ("sex", "f"), ("sex", "m")])
    assert got.to_dict() == {"inc": 100.0, "sex=f": 4.0, "sex=m": 2.0}
    fit = achieved_vs_target(got, {"inc": 100.0, ("sex", "f"): 5.0, ("sex", "m"): 0.0})
    assert fit.loc["sex=f", "rel_error"] == pytest.approx(-0.2)
    assert fit.loc["sex=m", "rel_error"] == 2.0  # target 0: absolute error
    assert fit.loc["inc", "misfit"] == 0.0
    assert fit.loc["sex=f", "misfit"] == pytest.approx(1 / 6)


def test_misfit_is_the_calibration_solvers_test():
    """A total below 1 is judged relatively, as every calibration front end judges it (the column kept R survey's
    ``1 + |t|``: a share of 0.25 missed by 0.2 read as a misfit of 0.16, met at a tolerance of 0.2)."""
    fit = achieved_vs_target({"share": 0.05, "big": 1010.0, "none": 0.5}, {"share": 0.25, "big": 1000.0, "none": 0.0})
    assert fit.loc["share", "misfit"] == pytest.approx(0.2 / 0.5)
    assert fit.loc["big", "misfit"] == pytest.approx(10 / 1001)
    assert fit.loc["none", "misfit"] == 0.5


def test_kish_ess_of_huge_weights_is_finite():
    """Weights of 1e299 squared overflow: the effective size was NaN (inf / inf)."""
    assert kish_ess([1e299, 1e299, 1e299]) == pytest.approx(3.0)
    assert kish_ess([1e300, 0.0]) == 1.0
    assert weight_summary([1e300, 2e300, 3e300])["cv"] == pytest.approx(weight_summary([1.0, 2.0, 3.0])["cv"])


def test_positional_arrays():
    fit = achieved_vs_target(np.array([1.0, 2.0]), np.array([1.0, 4.0]))
    assert fit["error"].tolist() == [0.0, -2.0]


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: weighted_totals(pd.DataFrame({"a": [1]}), [1.0], ["b"]), "'b' is not a column"),
        (lambda: weighted_totals(pd.DataFrame({"a": ["x"]}), [1.0], ["a"]), "must be a numeric column"),
        (lambda: achieved_vs_target({"a": 1.0}, {"b": 1.0}), r"expected \['b'\], got \['a'\]"),
        (lambda: kish_ess([1.0, -2.0]), "non-negative"),
        (lambda: kish_ess([]), "at least 1 weight"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(DataValidationError, match=match):
        call()
