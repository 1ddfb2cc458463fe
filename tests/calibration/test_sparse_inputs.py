"""Odd inputs to SparseCalibrator (fit, frontier, auxiliary columns, stratify): a right result or a microplex error
naming the column, never a bare Python exception; the caller's frame unchanged."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest

from microplex import ConvergenceError, DataValidationError
from microplex.calibration import SparseCalibrator, Target, Targets
from microplex.calibration.sparse import default_holdout

from .conftest import untargeted_population


@pytest.fixture(scope="module")
def population():
    return untargeted_population(3, 600)


@pytest.mark.parametrize(
    "params",
    [{"auxiliary": ["lists"]}, {"auxiliary": None, "stratify": ["lists"]}, {"auxiliary": None, "stratify": "auto"}],
)
def test_a_column_of_lists_named_in_auxiliary_or_stratify_is_named(population, params):
    """Was a bare TypeError (unhashable type: 'list'); the 'auto' auxiliaries leave such a column out."""
    df, targets = population
    df = df.assign(lists=[[i % 3] for i in range(len(df))])
    before = df.copy(deep=True)
    with pytest.raises(DataValidationError, match=r"Column 'lists' holds unhashable values"):
        SparseCalibrator(100, **params).fit(df, targets)
    pd.testing.assert_frame_equal(df, before)


def test_automatic_auxiliaries_leave_out_complex_columns(population):
    """A complex column of few values was taken by auxiliary='auto' and then refused as an auxiliary column the
    caller never named; complex numbers have no margins, as the explicit auxiliaries say."""
    df, targets = population
    df = df.assign(z=(np.arange(len(df)) % 3) * 1j)
    sc = SparseCalibrator(100).fit(df, targets)
    assert "z" not in sc.summary["auxiliary_columns"] and sc.summary["within_tolerance"]
    with pytest.raises(DataValidationError, match="auxiliary column 'z' holds complex numbers"):
        SparseCalibrator(100, auxiliary=["z"]).fit(df, targets)


def test_stratify_orders_complex_values_as_categories(population):
    """A complex stratifying column lost its imaginary part (numpy ComplexWarning); now ranked by frequency."""
    df, targets = population
    df = df.assign(z=(np.arange(len(df)) % 3) * 1j)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sc = SparseCalibrator(100, auxiliary=None, stratify=["z"]).fit(df, targets)
    assert sc.summary["n_nonzero"] == 100 and sc.summary["within_tolerance"]


@pytest.mark.parametrize(
    "column, values",
    [
        (5, lambda n: np.arange(n) % 7),  # a name no target filter takes
        ("", lambda n: np.arange(n) % 3),
        ("period", lambda n: pd.period_range("2020-01", periods=5, freq="M").repeat(n // 5 + 1)[:n]),
        ("bytes", lambda n: [b"x" if i % 2 else b"y" for i in range(n)]),
        ("lists", lambda n: [[i % 3] for i in range(n)]),
        ("z", lambda n: np.arange(n) * (1 + 1j)),  # deciles of the real part only (ComplexWarning)
    ],
)
def test_frontier_default_holdout_skips_columns_no_target_can_filter_on(population, column, values):
    """fit works on such a frame; frontier failed (a bare TypeError, or an error naming a holdout target the
    caller never wrote) because its default holdout made a target of every untargeted column."""
    df, targets = population
    df = df.copy()
    df[column] = values(len(df))
    before = df.copy(deep=True)
    hold = default_holdout(df, targets, "weight")
    assert len(hold) == len(default_holdout(df.drop(columns=[column]), targets, "weight"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = SparseCalibrator(auxiliary=None).frontier(df, targets, [100])
    assert "error" not in table and np.isfinite(table["holdout_max_rel_error"]).all()
    pd.testing.assert_frame_equal(df, before)


def test_l1_beyond_a_tiny_tolerance_says_by_how_much_and_what_to_do(population):
    """The 'l1' vertex at tolerance 1e-10 misses by 1.00003e-10 (HiGHS's precision): the error read
    "1e-10 > tolerance 1e-10 ... raise max_records" (no budget was given) and listed each worst target as equal to
    what it achieved; now the error and each target's relative error have 6 digits and the advice fits 'l1'."""
    df, targets = population
    targets = targets + Targets.from_margins({"region": (df["weight"] * df["income"]).groupby(df["region"]).sum()},
                                             aggregate="sum", variable="income")
    sc = SparseCalibrator(method="l1", tolerance=1e-10)
    try:
        sc.fit(df, targets)
    except ConvergenceError as exc:
        msg = str(exc)
        err = float(re.search(r"target error of (\S+) > tolerance 1e-10", msg).group(1))
        assert err > 1e-10 and "max_records" not in msg and "method='l0'" in msg
        assert re.search(r"relative error \d\.\d+e-10\)", msg)
    else:  # a solver that meets it: then every target is within it
        assert sc.summary["max_rel_error"] <= 1e-10 * (1 + 1e-9)
    # method='l0' calibrates the records it keeps exactly
    assert SparseCalibrator(tolerance=1e-10).fit(df, targets).summary["max_rel_error"] <= 1e-10


@pytest.mark.parametrize("parameter", ["holdout", "auxiliary"])
def test_holdout_and_auxiliary_targets_that_do_not_fit_the_candidates_name_the_parameter(population, parameter):
    """A holdout or auxiliary target on a column the candidates lack was reported as any target ("Target
    'count[nope == 1]' uses column 'nope'"), as if it were one of the fitted targets."""
    df, targets = population
    bad = Targets([Target(100.0, filters={"nope": 1})])
    with pytest.raises(DataValidationError, match=rf"The '{parameter}' targets do not fit the candidates: .*'nope'"):
        if parameter == "holdout":
            SparseCalibrator().frontier(df, targets, [100], holdout=bad)
        else:
            SparseCalibrator(100, auxiliary=bad).fit(df, targets)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"distance": "rakingg"}, r"The 'distance' parameter must be a Distance or one of .*'rakingg'"),
        ({"distance": "logit"}, r"The 'distance' parameter 'logit' needs finite bounds"),
    ],
)
def test_a_misspelt_distance_names_the_distance_parameter(population, params, match):
    """Named 'method' (SparseCalibrator's l0/l1 choice) or "Method 'logit'": the parameter is 'distance'."""
    df, targets = population
    with pytest.raises(DataValidationError, match=match):
        SparseCalibrator(100, **params).fit(df, targets)


def test_a_failed_fit_keeps_no_auxiliary_matrix(population):
    """A fit that failed after building the auxiliary matrix kept it on the estimator (memory held until the next
    fit, and seen by anything calling the subset solve directly)."""
    df, targets = population
    df = df.assign(lists=[[i % 3] for i in range(len(df))])
    sc = SparseCalibrator(100, stratify=["lists"])
    with pytest.raises(DataValidationError, match=r"Column 'lists' holds unhashable values"):
        sc.fit(df, targets)
    assert sc._aux is None


def test_l1_meets_a_tolerance_of_1e_10_by_solving_again_in_a_narrower_band(population):
    """HiGHS meets the linear program's band to about 1e-7 absolute: at tolerance 1e-10 the vertex missed by
    1.00003e-10 and the fit raised. lp_vertex solves again in a band narrowed by twice the miss."""
    df, targets = population
    targets = targets + Targets.from_margins({"region": (df["weight"] * df["income"]).groupby(df["region"]).sum()},
                                             aggregate="sum", variable="income")
    sc = SparseCalibrator(method="l1", tolerance=1e-10).fit(df, targets)
    assert sc.summary["within_tolerance"] and sc.summary["max_rel_error"] <= 1e-10
