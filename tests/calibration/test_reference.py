"""Weights agree with R survey::calibrate (stored outputs of benchmarks/reference/make_r_reference.R)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from microplex import Calibrator, Targets

REFERENCE = Path(__file__).parent / "reference"

METHODS = {
    "census": {
        "linear": ("linear", None),
        "raking": ("raking", None),
        "linear_bounded": ("linear", (0.92, 1.08)),
        "raking_bounded": ("raking", (0.92, 1.08)),
        "logit": ("logit", (0.88, 1.14)),
    },
    "eusilc": {
        "linear": ("linear", None),
        "raking": ("raking", None),
        "linear_bounded": ("linear", (0.96, 1.08)),
        "raking_bounded": ("raking", (0.96, 1.08)),
        "logit": ("logit", (0.94, 1.09)),
    },
}


@pytest.mark.parametrize("column", list(METHODS["census"]))
def test_census_matches_r_survey(census, column):
    ref = pd.read_csv(REFERENCE / "census_weights.csv")
    targets = Targets.from_csv(REFERENCE / "census_targets.csv")
    records = census.iloc[ref["row"].to_numpy()].assign(weight=ref["d"].to_numpy())
    method, bounds = METHODS["census"][column]
    cal = Calibrator(method, bounds=bounds, tol=1e-12).fit(records, targets, weight_col="weight")
    assert cal.summary["converged"]
    np.testing.assert_allclose(cal.weights.to_numpy(), ref[column].to_numpy(), rtol=1e-6)


@pytest.mark.parametrize("column", list(METHODS["eusilc"]))
def test_eusilc_households_match_r_survey(eusilc, column):
    ref = pd.read_csv(REFERENCE / "eusilc_weights.csv")
    targets = Targets.from_csv(REFERENCE / "eusilc_targets.csv")
    persons = eusilc[eusilc["db030"].isin(ref["db030"])]
    method, bounds = METHODS["eusilc"][column]
    cal = Calibrator(method, bounds=bounds, tol=1e-12).fit(
        persons, targets, weight_col="db090", household_col="db030"
    )
    assert cal.summary["converged"]
    got = cal.weights.reindex(ref["db030"]).to_numpy()
    np.testing.assert_allclose(got, ref[column].to_numpy(), rtol=1e-6)
