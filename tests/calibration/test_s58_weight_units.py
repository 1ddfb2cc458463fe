"""Sparse calibration in any units of weight: the linear programs (HiGHS) hold absolute tolerances and read values of
1e20 as infinite, so the same problem with weights of 1 or of 2**20 kept other records, and totals beyond 1e20
(weights of 1e6 on sums of 1e14) were refused as a "model error" whose best achievable error was nan. The sparse
solves now work in units of the typical weight (a power of two: no digit changes)."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest

from microplex import ConvergenceError
from microplex.calibration import SparseCalibrator, Target, Targets
from microplex.calibration.design import build_design, in_weight_units, weight_unit
from microplex.calibration.feasibility import best_tolerance, lp_vertex


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 600
    return pd.DataFrame({"state": rng.choice(list("ABCD"), n), "grp": rng.choice(["x", "y"], n),
                         "income": rng.lognormal(10, 1, n), "w": rng.uniform(0.5, 2.0, n)})


def _targets(df: pd.DataFrame, w_unit: float = 1.0, v_unit: float = 1.0) -> Targets:
    """Counts of state x grp 3% and state income sums 5% above the frame's, in the given units."""
    counts = df.groupby(["state", "grp"])["w"].sum() * 1.03 * w_unit
    sums = (df["income"] * df["w"]).groupby(df["state"]).sum() * 1.05 * w_unit * v_unit
    return (Targets.from_margins({("state", "grp"): counts})
            + Targets.from_margins({"state": sums}, aggregate="sum", variable="income"))


def _fit(df: pd.DataFrame, targets: Targets, **kw) -> SparseCalibrator:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SparseCalibrator(60, seed=0, **kw).fit(df, targets, weight_col="w")


@pytest.mark.parametrize("method", ["l0", "l1"])
def test_weights_in_other_units_keep_the_same_records_and_weights(frame, method):
    """Before: with weights and totals times 2**20 (or 2**-20, 2**30) the default l0 kept other records (and l1 gave
    one record another weight) than with the same weights in units of 1."""
    base = _fit(frame, _targets(frame), method=method).weights.to_numpy()
    assert (base > 0).sum() <= 60
    for unit in (2.0**20, 2.0**-20, 2.0**30):
        scaled = _fit(frame.assign(w=frame["w"] * unit), _targets(frame, unit), method=method).weights.to_numpy()
        np.testing.assert_array_equal(scaled / unit, base)


@pytest.mark.parametrize("method", ["l0", "l1"])
def test_totals_beyond_1e20_are_met(frame, method):
    """Weights of 1e8 on incomes of about 4e10 (state income sums near 1e21): before, l1 raised 'HiGHS Status 2:
    Model error' and 'the best achievable max relative error ... is nan' (with weights of 1e7, 'HiGHS Status 15')."""
    df = frame.assign(w=frame["w"] * 1e8, income=frame["income"] * 1e6)
    sc = _fit(df, _targets(frame, 1e8, 1e6), method=method)
    assert sc.summary["max_rel_error"] <= 0.005 * (1 + 1e-9)
    achieved = (df["income"] * sc.weights).groupby(df["state"]).sum()
    wanted = (frame["income"] * frame["w"]).groupby(frame["state"]).sum() * 1.05 * 1e14
    np.testing.assert_allclose(achieved, wanted, rtol=0.006)


def test_targets_in_conflict_at_any_scale_name_the_best_error_and_their_values(frame):
    """Sums of values of 1e17 that no weights meet together (grp x's income 1.5 times the total's): before, the
    error said the best achievable error was nan. Now (B - A) / (A + B) = 0.2, with the targets' values in the
    caller's units, also when the weights are of 1e6."""
    for w_unit in (1.0, 1e6):
        df = frame.assign(income=1e17, w=w_unit)
        n, n_x = len(df), int((df["grp"] == "x").sum())
        conflict = Targets([Target(4.0e17 * n * w_unit / 5, aggregate="sum", variable="income"),
                            Target(6.0e17 * n * w_unit / 5, aggregate="sum", variable="income", filters={"grp": "x"})])
        assert n_x < n  # every record of grp x could carry the total alone
        design = build_design(df, conflict, "w", None)
        assert best_tolerance(design) == pytest.approx(0.2, rel=1e-6)
        with pytest.raises(ConvergenceError, match=r"best achievable max relative error .* is 0\.2;") as err:
            SparseCalibrator(method="l1").fit(df, conflict, weight_col="w")
        listed = re.findall(r"= ([0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?)", str(err.value).split("conflict")[-1])
        assert len(listed) == 2
        assert sorted(float(v) for v in listed) == pytest.approx([t.value for t in conflict], rel=1e-5)


def test_weight_unit_and_the_design_in_it(frame):
    assert weight_unit(np.array([1.0, 1.5, 3.0])) == 1.0
    assert weight_unit(np.array([0.0, 3000.0, 5000.0, np.inf])) == 2048.0
    assert weight_unit(np.zeros(3)) == 1.0
    df = frame.assign(w=frame["w"] * 3000.0)
    design = build_design(df, _targets(frame, 3000.0), "w", None)
    work = in_weight_units(design)
    assert work.unit == 2048.0 and design.unit == 1.0
    np.testing.assert_array_equal(work.d * 2048.0, design.d)
    np.testing.assert_array_equal(work.totals * 2048.0, design.totals)
    assert [t.value * 2048.0 for t in work.targets] == [t.value for t in design.targets]
    assert in_weight_units(work) is work  # already in its unit
    w = lp_vertex(design, 0.005)  # in the caller's units
    achieved = design.x.T @ w
    assert np.all(np.abs(achieved - design.totals) <= 0.005 * np.abs(design.totals) * (1 + 1e-9))


def test_a_calibration_conflict_is_diagnosed_alike_in_any_unit_of_weight():
    """Two counts each reachable within the bounds, not together. Before, with weights of 2**40 (or 2**60) the
    diagnosis "did not solve" ("which targets conflict is unknown"), and with weights of 2**-40 it named both
    targets with closest values off by 17% and 41%; the diagnosis now solves in units of the typical weight."""
    from microplex import Calibrator

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"g": rng.choice(["a", "b"], 3000, p=[0.5, 0.5]), "w": rng.uniform(0.5, 2.0, 3000)})
    total, in_a = float(df["w"].sum()), float(df.loc[df["g"] == "a", "w"].sum())
    closest = {}
    for k in (0, 40, -40, 60):
        unit = 2.0**k
        targets = Targets([Target(1.15 * total * unit), Target(0.85 * in_a * unit, filters={"g": "a"})])
        with pytest.raises(ConvergenceError, match=r"This target cannot be met together with the others within the "
                           r"bounds: count\[\] = .* The targets it conflicts with: count\[g == 'a'\]\.") as err:
            Calibrator(method="linear", bounds=(0.8, 1.2)).fit(df.assign(w=df["w"] * unit), targets, weight_col="w")
        closest[k] = float(re.search(r"closest achievable ([0-9.e+-]+)\)", str(err.value)).group(1)) / unit
    assert closest[0] == pytest.approx(0.85 * in_a + 1.2 * (total - in_a), rel=1e-5)  # g == a met, the rest at 1.2
    for k in (40, -40, 60):
        assert closest[k] == pytest.approx(closest[0], rel=1e-5)
