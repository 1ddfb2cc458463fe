"""Session 71, quality and privacy figures: held-out cell totals under negative and missing weights, and the
distance of a missing category in the privacy encoding."""

import warnings

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError
from microplex.calibration import Calibrator
from microplex.evaluation.areas import cell_totals, heldout_errors
from microplex.evaluation.privacy import dcr, encode_records


def _linear_fit() -> pd.DataFrame:
    """400 records calibrated by GREG without bounds to targets far from the sample's shares: most weights < 0."""
    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame({"area": rng.choice(["a", "b"], n, p=[0.9, 0.1]), "age": rng.integers(18, 80, n),
                       "weight": 1.0})
    targets = pd.DataFrame({"aggregate": "count", "variable": None,
                            "filter": ["area == 'a'", "area == 'b'", "age >= 60"], "value": [100.0, 900.0, 300.0]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal = Calibrator(method="linear").fit(df, targets, weight_col="weight")
    return df.assign(weight=np.asarray(cal.result_.record_weights, dtype=float))


def test_cell_totals_count_negative_weights_as_they_are():
    out = _linear_fit()
    assert (out["weight"] < 0).sum() > 100  # the case: a documented calibration that gives negative weights
    cells = pd.DataFrame({"aggregate": "count", "variable": None, "value": [100.0, 300.0, 50.0, 1.0],
                          "filter": ["area == 'a'", "age >= 60", "area == 'b' & age < 40", "area == 'a' & age in [30, 50)"]})
    w = out["weight"]
    want = [w[out.area == "a"].sum(), w[out.age >= 60].sum(), w[(out.area == "b") & (out.age < 40)].sum(),
            w[(out.area == "a") & out.age.between(30, 49)].sum()]
    got = cell_totals(out, cells)
    np.testing.assert_allclose(got, want, rtol=1e-9)
    np.testing.assert_allclose(got[:2], [100.0, 300.0], rtol=1e-9)  # the calibrated cells read back as calibrated
    errors = heldout_errors({"calibrated": out}, cells)
    np.testing.assert_allclose(errors["achieved"], want, rtol=1e-9)
    assert abs(errors["rel_error"].iloc[0]) < 1e-9  # (before: +0.28, the cell read as 128.22)


def test_cell_totals_of_mixed_signs_and_zero_weights_match_pandas():
    rng = np.random.default_rng(3)
    n = 300
    df = pd.DataFrame({"g": rng.choice(["x", "y", "z"], n), "age": rng.integers(0, 90, n), "inc": rng.normal(size=n),
                       "weight": rng.normal(1.0, 2.0, n)})
    df.loc[::7, "weight"] = 0.0
    df.loc[::7, "inc"] = np.nan  # on records of weight 0 only: they are left out (a missing value is refused)
    cells = pd.DataFrame({"aggregate": ["count", "sum", "count"], "variable": [None, "inc", None], "value": 1.0,
                          "filter": ["g == 'x' & age >= 40", "g in {'y', 'z'}", "age in [10, 20)"]})
    w = df["weight"]
    want = [w[(df.g == "x") & (df.age >= 40)].sum(), (w * df.inc)[(w != 0) & df.g.isin(["y", "z"])].sum(),
            w[df.age.between(10, 19)].sum()]
    np.testing.assert_allclose(cell_totals(df, cells), want, rtol=1e-12)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_cell_totals_refuse_a_missing_or_infinite_weight_naming_the_column(bad):
    df = pd.DataFrame({"age": [20, 30, 40, 50], "wt": [1.0, bad, 2.0, 3.0]})
    cells = pd.DataFrame({"aggregate": ["count"], "variable": [None], "filter": ["age >= 0"], "value": [1.0]})
    with pytest.raises(DataValidationError, match=r"Weight column 'wt' has 1 missing or infinite values"):
        cell_totals(df, cells, weight_col="wt")  # (before: NaN dropped, the total read 6.0 with no error)
    with pytest.raises(DataValidationError, match=r"Weight column 'wt'"):
        heldout_errors({"p": df}, cells, weight_col="wt")
    with pytest.raises(DataValidationError, match=r"Weight column 'wt' must be numeric"):
        cell_totals(df.assign(wt="1"), cells, weight_col="wt")


def test_a_missing_category_is_a_mismatch_of_one():
    train = pd.DataFrame({"g": ["a"]})
    for query in (["b"], [None], [np.nan]):
        assert dcr(pd.DataFrame({"g": query}), train)[0] == pytest.approx(1.0, abs=1e-12)  # (before: None 0.7071)
    assert dcr(pd.DataFrame({"g": [None]}), pd.DataFrame({"g": [None]}))[0] == 0.0
    assert dcr(pd.DataFrame({"g": [None]}), pd.DataFrame({"g": [np.nan]}))[0] == 0.0
    # beside a numeric column: the squared distances add
    ref = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "g": ["a", None, "b", "a"]})
    xr, xq = encode_records(ref, pd.DataFrame({"x": [1.0, 2.0], "g": [None, "a"]}))
    d2 = ((xq[:, None, :] - xr[None, :, :]) ** 2).sum(axis=2)
    rank_gap = np.abs(np.array([1.0, 2.0])[:, None] - np.array([1.0, 2.0, 3.0, 4.0])[None, :]) / 4
    mismatch = np.array([[1, 0, 1, 1], [0, 1, 1, 0]], dtype=float)
    np.testing.assert_allclose(d2, rank_gap ** 2 + mismatch, atol=1e-12)


def test_no_missing_category_keeps_the_encoding():
    ref = pd.DataFrame({"g": ["a", "b", "a"]})
    xr, xq = encode_records(ref, pd.DataFrame({"g": ["b", "c"]}))
    assert xr.shape == (3, 3) and xq.shape == (2, 3)
    np.testing.assert_allclose(xq * np.sqrt(2.0), [[0, 1, 0], [0, 0, 1]])
