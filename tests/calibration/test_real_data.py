"""The issue's real-data bar: census2000 and eusilc calibrations met to 1e-8 relative."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex import Calibrator, DataValidationError, Target, Targets

EDUC = {"<12": pd.Interval(0, 12, closed="left"), "12": pd.Interval(12, 13, closed="left"),
        "13-15": pd.Interval(13, 16, closed="left"), "16+": pd.Interval(16, 99, closed="left")}


def _census_targets(census: pd.DataFrame) -> tuple[pd.DataFrame, Targets]:
    """Targets = totals under randomly perturbed weights (consistent and feasible by construction)."""
    rng = np.random.default_rng(7)
    df = census.assign(weight=100.0, inc=np.exp(census["lweekinc"]))
    df["educ_group"] = pd.cut(df["educ"], [0, 12, 13, 16, 99], right=False, labels=list(EDUC))
    pw = df["weight"] * rng.uniform(0.8, 1.25, len(df))
    se = pw.groupby([df["state"], df["educ_group"]], observed=True).sum()
    puma = pw.groupby([df["state"], df["puma"]]).sum()
    inc = (pw * df["inc"]).groupby(df["state"]).sum()
    targets = (
        Targets.from_margins({("state", "educ_group"): se})
        + Targets.from_margins({("state", "puma"): puma})
        + Targets.from_margins({"state": inc}, aggregate="sum", variable="inc")
    )
    return df, targets


@pytest.mark.parametrize("method,bounds", [("raking", None), ("linear", None), ("raking", (0.5, 2.0))])
def test_census2000_state_educ_puma_income_met_to_1e8(census, method, bounds):
    df, targets = _census_targets(census)
    assert len(targets) > 2000
    before = df.copy()
    cal = Calibrator(method, bounds=bounds).fit(df, targets, weight_col="weight", geography=["state", "puma"])
    pd.testing.assert_frame_equal(df, before)  # the caller's frame is never modified
    rep = cal.report()
    assert cal.summary["converged"]
    assert rep["rel_error"].max() < 1e-8
    assert cal.summary["max_rel_error"] < 1e-8
    assert (cal.weights > 0).all()
    if bounds:
        ratio = cal.weights / df["weight"]
        assert ratio.min() >= 0.5 - 1e-12 and ratio.max() <= 2.0 + 1e-12


def test_census2000_inconsistent_state_total_is_named(census):
    df, targets = _census_targets(census)
    ca = sum(t.value for t in targets if t.filters.get("state") == "California" and "puma" in t.filters)
    bad = targets + [Target(ca * 1.1, filters={"state": "California"})]
    with pytest.raises(DataValidationError, match=r"count\[state == 'California'\] = .* children"):
        Calibrator("raking").fit(df, bad, weight_col="weight", geography=["state", "puma"])


def test_eusilc_household_weights_with_person_targets(eusilc):
    rng = np.random.default_rng(3)
    df = eusilc.copy()
    df["age_group"] = pd.cut(df["age"], [-np.inf, 18, 40, 65, np.inf], right=False, labels=["0-17", "18-39", "40-64", "65+"])
    df["hsize_group"] = np.minimum(df["hsize"], 5)
    f = pd.Series(rng.uniform(0.8, 1.25, df["db030"].nunique()), index=df["db030"].unique())
    pw = df["db090"] * df["db030"].map(f)
    cells = pw.groupby([df["db040"], df["rb090"], df["age_group"]], observed=True).sum()
    first = ~df["db030"].duplicated()
    hs = pw[first].groupby(df.loc[first, "hsize_group"]).sum()
    targets = Targets.from_margins({("db040", "rb090", "age_group"): cells}) + Targets.from_margins(
        {"hsize_group": hs}, entity="household"
    )
    cal = Calibrator("raking", bounds=(0.3, 3.0)).fit(df, targets, weight_col="db090", household_col="db030")
    res = cal.result_
    assert cal.summary["converged"] and cal.report()["rel_error"].max() < 1e-8
    assert len(cal.weights) == df["db030"].nunique() == 6000
    # integrated weighting: every person carries the weight of its household
    assert res.record_weights.groupby(df["db030"]).nunique().max() == 1
    np.testing.assert_allclose(res.record_weights.to_numpy(), cal.weights.reindex(df["db030"]).to_numpy())
    assert 0 < cal.summary["kish_ess"] <= 6000 and cal.summary["design_effect"] >= 1
