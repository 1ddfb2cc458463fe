"""SparseCalibrator on the one solver: the chosen distance, an explicit subset solve, frontier keeps stratify."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError
from microplex.calibration import SparseCalibrator, Targets


@pytest.fixture()
def problem():
    rng = np.random.default_rng(0)
    n = 3000
    df = pd.DataFrame({"region": rng.integers(0, 4, n), "sex": rng.integers(0, 2, n), "age": rng.integers(0, 9, n), "weight": 10.0})
    return df, Targets.from_margins({("region", "sex"): df.groupby(["region", "sex"])["weight"].sum()})


@pytest.mark.parametrize("distance, bounds", [("raking", None), ("linear", None), ("logit", (0.2, 5.0))])
def test_the_chosen_distance_calibrates_the_subset(problem, distance, bounds):
    df, tg = problem
    sc = SparseCalibrator(200, distance=distance, bounds=bounds).fit(df, tg)
    assert sc.summary["within_tolerance"] and int((sc.weights > 0).sum()) == 200
    assert (sc.weights >= 0).all()


def test_subset_solve_is_explicit(problem):
    df, tg = problem
    exact = SparseCalibrator(12, tolerance=0.01, subset_solve="exact", force=True)
    soft = SparseCalibrator(12, tolerance=0.01, subset_solve="soft", force=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exact.fit(df, tg)
    assert exact.summary["soft_subset_solves"] == 0
    soft.fit(df, tg)
    assert soft.summary["soft_subset_solves"] >= 1
    with pytest.raises(DataValidationError, match="subset_solve"):
        SparseCalibrator(10, subset_solve="auto").fit(df, tg)
    with pytest.raises(DataValidationError, match="needs finite bounds"):
        SparseCalibrator(10, distance="logit").fit(df, tg)


def test_frontier_keeps_stratify(problem, monkeypatch):
    df, tg = problem
    seen = []
    original = SparseCalibrator.fit

    def spy(self, *args, **kwargs):
        seen.append((self.stratify, self.distance, self.subset_solve))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SparseCalibrator, "fit", spy)
    SparseCalibrator(stratify=["age"], subset_solve="exact").frontier(df, tg, sizes=[100, 200])
    assert seen == [(["age"], "raking", "exact")] * 2
