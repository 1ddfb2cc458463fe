from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex import ConvergenceError, DataValidationError, SparseCalibrator, Targets
from microplex.calibration.sparse import default_holdout, inclusion_probabilities


@pytest.fixture(scope="module")
def census_problem():
    from microplex.datasets import load_dataset

    c = load_dataset("census2000").assign(weight=100.0)
    c["inc"] = np.exp(c["lweekinc"])
    c["educ_group"] = pd.cut(c["educ"], [0, 12, 13, 16, 99], right=False, labels=["a", "b", "c", "d"]).astype(str)
    targets = Targets.from_margins(
        {("state", "educ_group"): c.groupby(["state", "educ_group"])["weight"].sum()}
    ) + Targets.from_margins({"state": (c["weight"] * c["inc"]).groupby(c["state"]).sum()}, aggregate="sum", variable="inc")
    return c, targets


def test_inclusion_probabilities_sum_to_budget_and_cap():
    pi = inclusion_probabilities(np.array([100.0, 1, 1, 1, 1]), 3)
    assert pi[0] == 1.0 and pi.sum() == pytest.approx(3.0)


@pytest.mark.parametrize("method", ["l1", "l0"])
def test_census_without_budget_keeps_about_one_record_per_target(census_problem, method):
    c, targets = census_problem
    sc = SparseCalibrator(method=method, tolerance=0.005).fit(c, targets, weight_col="weight")
    s = sc.summary
    assert s["n_nonzero"] <= len(targets)
    assert s["max_rel_error"] <= 0.005 * (1 + 1e-9)
    assert (sc.weights >= 0).all() and (sc.weights == 0).sum() > 0.95 * len(c)


def test_budget_is_met_exactly_and_deterministic(census_problem):
    c, targets = census_problem
    before = c.copy()
    a = SparseCalibrator(2000, seed=3).fit(c, targets, weight_col="weight")
    b = SparseCalibrator(2000, seed=3).fit(c, targets, weight_col="weight")
    pd.testing.assert_frame_equal(c, before, check_exact=True)
    assert a.summary["n_nonzero"] == 2000
    assert a.summary["max_rel_error"] < 1e-6
    pd.testing.assert_series_equal(a.weights, b.weights)
    c2 = SparseCalibrator(2000, seed=4).fit(c, targets, weight_col="weight")
    assert not a.weights.equals(c2.weights)


def test_budget_below_what_targets_need_is_a_clear_error(census_problem):
    c, targets = census_problem
    with pytest.raises(DataValidationError, match=r"max_records=100 is below the \d+ records .* reaches a max rel"):
        SparseCalibrator(100).fit(c, targets, weight_col="weight")


def test_infeasible_tolerance_reports_the_problem():
    df = pd.DataFrame({"g": ["a"] * 10 + ["b"] * 10, "weight": 1.0})
    targets = Targets.from_margins({"g": {"a": 10.0, "b": 10.0}}) + Targets.from_margins({"g": {"a": 20.0}})
    with pytest.raises(ConvergenceError, match=r"best achievable max relative error .* is 0.3333"):
        SparseCalibrator(method="l1", tolerance=0.01).fit(df, targets, weight_col="weight")


def test_frontier_reports_fitted_and_holdout_errors(census_problem):
    c, targets = census_problem
    fr = SparseCalibrator(tolerance=0.005).frontier(c, targets, sizes=[100, 1000, 3000], weight_col="weight")
    # 100 records are below what the targets need: the row shows the best fitted error of that size, beyond the tolerance
    assert fr.loc[0, "kept"] <= 100 and fr.loc[0, "max_rel_error"] > 0.005
    ok = fr[fr["max_rel_error"] <= 0.005]
    assert list(ok["size"]) == [1000, 3000]  # at most the budget: a record the calibration weighs ~0 is not kept
    assert ((ok["kept"] <= ok["size"]) & (ok["kept"] >= 0.99 * ok["size"])).all()
    assert (ok["max_rel_error"] <= 0.005).all()
    assert ok["holdout_mean_rel_error"].is_monotonic_decreasing


def test_default_holdout_uses_untargeted_columns(census_problem):
    c, targets = census_problem
    hold = default_holdout(c, targets, "weight")
    cols = {col for t in hold for col in t.filters}
    assert cols == {"puma", "educ", "lweekinc", "exper"}
    total = sum(t.value for t in hold if "exper" in t.filters)
    assert total == pytest.approx(c["weight"].sum())


def test_households_with_person_targets(eusilc):
    df = eusilc.copy()
    df["age_group"] = pd.cut(df["age"], [-np.inf, 18, 65, np.inf], right=False, labels=["0", "18", "65"]).astype(str)
    cells = df.groupby(["db040", "rb090", "age_group"])["db090"].sum()
    targets = Targets.from_margins({("db040", "rb090", "age_group"): cells})
    sc = SparseCalibrator(600, tolerance=0.01).fit(df, targets, weight_col="db090", household_col="db030")
    assert sc.summary["n_nonzero"] == 600 and len(sc.weights) == 6000
    assert sc.summary["max_rel_error"] <= 0.01
    rw = sc.result_.record_weights
    assert rw.groupby(df["db030"]).nunique().max() == 1


def test_stratify_columns_are_used_and_checked(census_problem):
    c, targets = census_problem
    # stratify orders the balanced sample, which chooses the records without auxiliaries
    a = SparseCalibrator(1500, stratify="auto", auxiliary=None).fit(c, targets, weight_col="weight")
    b = SparseCalibrator(1500, auxiliary=None).fit(c, targets, weight_col="weight")
    assert a.summary["n_nonzero"] == 1500 and a.summary["max_rel_error"] < 1e-6
    assert not a.weights.equals(b.weights)
    with pytest.raises(DataValidationError, match=r"stratify columns \['nope'\]"):
        SparseCalibrator(1500, stratify=["nope"]).fit(c, targets, weight_col="weight")


@pytest.mark.parametrize("params,match", [({"method": "l2"}, "'method' parameter"), ({"max_records": 0}, "'max_records'")])
def test_bad_parameters(census_problem, params, match):
    c, targets = census_problem
    with pytest.raises(DataValidationError, match=match):
        SparseCalibrator(**params).fit(c, targets, weight_col="weight")


def test_l1_respects_the_budget_or_says_so(census_problem):
    c, targets = census_problem
    with pytest.raises(DataValidationError, match=r"'l1' vertex keeps \d+ records, more than max_records=50"):
        SparseCalibrator(50, method="l1").fit(c, targets, weight_col="weight")
