"""Session 62: soft calibration and sparse subsets weigh misses in no unit.

A soft fit trades misses of its targets off against each other and against the distance; a sparse subset that
cannot meet its targets exactly is calibrated softly. Their penalties divided each miss by R survey's ``1 + |t|``
(``2 |t|`` below 1), which is a relative miss only for totals far above 1: the same incomes in dollars and in
millions of dollars gave soft weights 8% apart, and a sparse subset of other records. They now divide by the
target's own size, at least a thousandth of what its records add up to (``_stats.miss_scale``,
``design.miss_units``); R survey's ``1 + |t|`` stays the convergence test and the reported misfit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError
from microplex.calibration import Calibrator, SparseCalibrator, Target, Targets


def _incomes(n: int, seed: int, groups: list[str]) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"g": rng.choice(groups, n), "inc": rng.lognormal(10, 1, n), "w": rng.uniform(50, 150, n)})


def _targets(df: pd.DataFrame, unit: float, count: float, share_a: float, sum_factor: float, mean_factor: float,
             conflict: bool = True) -> Targets:
    total = float((df["inc"] * df["w"]).sum())
    mean = float(np.average(df["inc"], weights=df["w"]))
    # conflict: the groups' counts add up to 5% of b's more than the total, a soft fit trades the targets off
    b = [Target(count * (1 - share_a) * 1.05, filters={"g": "b"})] if conflict else []
    return Targets([Target(count), Target(count * share_a, filters={"g": "a"}), *b,
                    Target(total * sum_factor / unit, "sum", "inc"),
                    Target(mean * mean_factor / unit, "mean", "inc", filters={"g": "b"})])


@pytest.mark.parametrize("unit", [1e3, 1e6, 2.0**-20])
def test_soft_fit_keeps_its_weights_when_incomes_change_unit(unit):
    """Before: incomes in millions gave weights up to 8.2% away from those of the same incomes in dollars (in
    thousands 5e-6): the sum and the mean were weighed by 1 + |t| with totals near 1."""
    df = _incomes(300, 0, ["a", "b"])
    tg = _targets(df, 1.0, 30000.0, 14000 / 30000, 1.3, 0.9)
    tg_u = _targets(df, unit, 30000.0, 14000 / 30000, 1.3, 0.9)
    a = Calibrator("raking", soft=True).fit(df, tg, weight_col="w").weights.to_numpy()
    b = Calibrator("raking", soft=True).fit(df.assign(inc=df["inc"] / unit), tg_u, weight_col="w").weights.to_numpy()
    np.testing.assert_allclose(b, a, rtol=1e-9)
    # the targets really conflict (a soft fit that met them all would be unit-free by construction)
    assert abs(a.sum() / tg[0].value - 1) > 1e-3


def test_soft_fit_keeps_its_weights_when_weights_change_unit():
    """Weights in thousands of persons, the counts and sums with them: the same weights in thousands."""
    df = _incomes(300, 0, ["a", "b"])
    tg = _targets(df, 1.0, 30000.0, 14000 / 30000, 1.3, 0.9)
    scaled = Targets([t if t.aggregate == "mean" else Target(t.value / 1000, t.aggregate, t.variable, t.filters)
                      for t in tg])
    a = Calibrator("raking", soft=True).fit(df, tg, weight_col="w").weights.to_numpy()
    b = Calibrator("raking", soft=True).fit(df.assign(w=df["w"] / 1000), scaled, weight_col="w").weights.to_numpy()
    np.testing.assert_allclose(b * 1000, a, rtol=1e-9)


def test_a_mean_of_zero_is_weighed_against_its_records_size():
    """A centered variable's mean target of 0: its miss is weighed against a thousandth of the mean of |y|, in any
    unit of y (before, against 1 unit of y: absolute)."""
    df = _incomes(300, 2, ["a", "b"]).assign(c=lambda f: f["inc"] - f["inc"].mean())
    tg = Targets([Target(30000.0), Target(0.0, "mean", "c"), Target(14000.0, filters={"g": "a"})])
    fits = []
    for unit in (1.0, 1e-6):
        fits.append(Calibrator("raking", soft=True).fit(df.assign(c=df["c"] * unit), tg, weight_col="w").weights)
    np.testing.assert_allclose(fits[1].to_numpy(), fits[0].to_numpy(), rtol=1e-9)
    achieved = float(np.average(df["c"], weights=fits[0]))
    assert abs(achieved) < 0.05 * float(np.average(df["c"].abs(), weights=df["w"]))


def test_soft_sparse_subset_keeps_its_records_when_incomes_change_unit():
    """Before: with incomes in units of 2**20 (about millions) the soft subset solve kept other records."""
    df = _incomes(400, 1, ["a", "b", "c"])
    unit = 2.0**20

    def fit(frame: pd.DataFrame, u: float) -> np.ndarray:
        tg = _targets(df, u, 40000.0, 14000 / 40000, 1.1, 0.95, conflict=False)
        cal = SparseCalibrator(method="l0", max_records=60, tolerance=0.01, subset_solve="soft")
        return cal.fit(frame, tg, weight_col="w").weights.to_numpy()

    a, b = fit(df, 1.0), fit(df.assign(inc=df["inc"] / unit), unit)
    assert (a > 0).sum() == 60
    np.testing.assert_array_equal(b > 0, a > 0)
    np.testing.assert_allclose(b, a, rtol=1e-9)


def test_miss_scale_is_the_size_floored_at_a_share_of_the_natural_size():
    from microplex._stats import MISS_FLOOR, miss_scale

    t = np.array([-451.31, -451.31 / 2048, 0.0, 1e-9, 0.0])
    natural = np.array([9000.0, 9000.0 / 2048, 50.0, 10.0, 0.0])
    s = miss_scale(t, natural)
    assert s.tolist() == [451.31, 451.31 / 2048, MISS_FLOOR * 50.0, MISS_FLOOR * 10.0, 1.0]
    # the same in any unit (a power of two: exactly)
    np.testing.assert_array_equal(miss_scale(t[:4] * 2.0**-11, natural[:4] * 2.0**-11), s[:4] * 2.0**-11)


def test_miss_units_of_counts_sums_and_means():
    from microplex._stats import MISS_FLOOR
    from microplex.calibration.design import build_design, miss_units
    from microplex.calibration.feasibility import mean_scale, soft_units

    df = pd.DataFrame({"g": ["a", "a", "b", "b"], "y": [1.0, -3.0, 2.0, 6.0], "w": [1.0, 2.0, 3.0, 4.0]})
    tg = Targets([Target(5.0, filters={"g": "a"}), Target(0.0, "sum", "y"), Target(3.0, "mean", "y", filters={"g": "b"}),
                  Target(0.0, "mean", "y")])
    design = build_design(df, tg, "w", None)
    u = miss_units(design, design.d)
    natural_y = 1 * 1 + 2 * 3 + 3 * 2 + 4 * 6  # sum d |y| = 37
    np.testing.assert_allclose(u, [5.0, MISS_FLOOR * natural_y, 7.0 * 3.0, 10.0 * MISS_FLOOR * natural_y / 10.0])
    # the solver's units: means divided by their unit, soft misses of means already relative
    np.testing.assert_allclose(mean_scale(design, design.d), [1.0, 1.0, 1 / 21.0, 1 / u[3]])
    np.testing.assert_allclose(soft_units(design, design.d), [5.0, u[1], 1.0, 1.0])


def test_subset_refine_weighs_a_sum_target_of_zero():
    """The swaps that refine a sparse subset weighed a sum target's miss by ``1 / |T|`` and a sum of 0 not at all:
    a kept record was swapped for one that moved a net sum of 0 to 2 records' worth to gain one auxiliary cell."""
    import scipy.sparse as sp

    from microplex.calibration._subset_refine import refine_subset
    from microplex.calibration.design import build_design

    df = pd.DataFrame({"y": [1.0, -1.0, 1.0, -1.0, 3.0], "z": [0.0, 0.0, 0.0, 0.0, 1.0], "w": 1.0})
    design = build_design(df, Targets([Target(5.0), Target(0.0, "sum", "y")]), "w", None)
    w = np.array([2.5, 2.5, 0.0, 0.0, 0.0])  # two records meet both targets
    x_obj = sp.csr_matrix(df[["z"]].to_numpy())
    t_obj = np.array([2.5])  # one kept record's worth of z in the population: the record with y = 3 would place it
    out, swaps, before, after = refine_subset(design, w, x_obj, t_obj, 0.01, np.random.default_rng(0))
    assert swaps == 0
    np.testing.assert_array_equal(out, w)
    assert abs(float(out @ df["y"].to_numpy())) == 0.0


def test_explicit_auxiliary_sums_choose_the_same_records_in_any_unit():
    """``SparseCalibrator(auxiliary=Targets)`` with area income sums beside education counts: the income sums'
    misses were in the incomes' unit, so in dollars they outweighed every count and in units of 2**20 they hardly
    counted, and the two kept other records (another weight cap chosen). Sum rows now weigh like counts of their
    records (``auxiliary.in_count_units``)."""
    rng = np.random.default_rng(5)
    n = 2000
    df = pd.DataFrame({"st": rng.choice(["a", "b", "c", "d"], n), "ed": rng.choice(["x", "y", "z"], n),
                       "inc": rng.lognormal(10, 1, n), "w": rng.uniform(50, 150, n)})
    tg = Targets([Target(float(df.loc[df.st == s, "w"].sum()), filters={"st": s}) for s in "abcd"])

    def fit(unit: float) -> np.ndarray:
        d = df.assign(inc=df["inc"] / unit)
        aux = Targets([Target(float(df.loc[df.ed == e, "w"].sum()), filters={"ed": e}) for e in "xyz"]
                      + [Target(float((d.inc * d.w)[d.st == s].sum()), "sum", "inc", filters={"st": s}) for s in "abcd"])
        return SparseCalibrator(method="l0", max_records=80, tolerance=0.01, auxiliary=aux).fit(d, tg, weight_col="w").weights.to_numpy()

    a, b = fit(1.0), fit(2.0**20)
    assert (a > 0).sum() == 80
    np.testing.assert_array_equal(b > 0, a > 0)
    np.testing.assert_allclose(b, a, rtol=1e-9)


@pytest.mark.parametrize("make", [lambda: Calibrator(), lambda: SparseCalibrator()], ids=["Calibrator", "SparseCalibrator"])
def test_a_mean_of_tiny_values_beyond_every_value_is_refused(make):
    """Values near 1e-10 and a mean target 5 times above every one of them: the rounding slack had a floor of 1e-9
    (absolute), so the target was snapped onto the largest value and the fit returned a mean 80% off as met (in
    another unit, times 2**40, the same target was refused). The slack is now relative to the values averaged."""
    df = pd.DataFrame({"y": np.linspace(0, 1e-10, 50), "w": 1.0})
    for unit in (1.0, 2.0**40):
        with pytest.raises(DataValidationError, match=r"mean\(y\)\[\] = .* is outside \[0, .*\], the range of 'y'"):
            make().fit(df.assign(y=df["y"] * unit), Targets([Target(50.0), Target(5e-10 * unit, "mean", "y")]),
                       weight_col="w")


def test_a_mean_a_rounding_error_beyond_its_values_is_still_met():
    """The rounding slack still lets a mean computed in floating point (all values 1.1e-10 averaged: a rounding
    error above every value) be met."""
    df = pd.DataFrame({"y": np.full(30, 1.1e-10), "w": np.linspace(1, 3, 30)})
    v = float(np.sum(df["y"] * df["w"]) / np.sum(df["w"]))
    res = Calibrator().fit(df, Targets([Target(60.0), Target(v, "mean", "y")]), weight_col="w")
    assert abs(res.weights.sum() - 60.0) < 1e-8
