"""Sparse subsets refined by swaps: kept records traded for alike candidates while the auxiliary miss falls."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from microplex import DataValidationError
from microplex.calibration import SparseCalibrator, Targets
from microplex.calibration._subset_choice import auxiliary_l1
from microplex.calibration._subset_refine import alike_groups, refine_subset
from microplex.calibration.auxiliary import auxiliary_design, cell_crosses, target_cells
from microplex.calibration.design import build_design
from microplex.calibration.feasibility import achieved_values

from .conftest import untargeted_population


@pytest.fixture(scope="module")
def population():
    df, targets = untargeted_population(5, 4000)
    design = build_design(df, targets, "weight")
    x_a, t_a, _ = auxiliary_design(df, design, targets, "weight", budget=150)
    x_c, t_c, _ = cell_crosses(df, design, targets, "weight")
    return df, targets, design, sp.hstack([x_a, x_c], format="csr"), np.concatenate([t_a, t_c])


def test_target_cells_and_their_crosses(population):
    df, targets, design, *_ = population
    codes, n_cells = target_cells(df, targets, "weight")
    assert n_cells == 8  # region x sex
    cell = df["region"] * 2 + df["sex"]
    assert pd.crosstab(codes, cell.to_numpy()).gt(0).sum(axis=1).eq(1).all()  # one code per region x sex
    x, totals, names = cell_crosses(df, design, targets, "weight")
    # age and income: 5 quantile groups within each cell and 5 national bands, each grouping at half weight;
    # job: 3 categories; region and sex are the cells
    national = [nm for nm in names if "@national#" in nm]
    assert x.shape == (len(df), 8 * (5 + 5 + 3) + len(national)) and len(names) == x.shape[1]
    assert 8 * 2 * 4 <= len(national) <= 8 * 2 * 5  # a band may hold nobody of some cell
    np.testing.assert_allclose(np.asarray(x.sum(axis=1)).ravel(), 3.0)  # every column weighs one
    half = np.array([" x job#" not in nm for nm in names])
    assert set(x[:, half].data) == {0.5} and set(x[:, ~half].data) == {1.0}
    w = df["weight"].to_numpy()
    for col in ("age", "income"):
        band = np.full(len(df), -1)
        for j, nm in enumerate(names):
            if f" x {col}@national#" in nm:
                band[x[:, j].nonzero()[0]] = int(nm.rsplit("#", 1)[1])
        assert (band >= 0).all()
        lo = pd.Series(df[col].to_numpy()).groupby(band).min()
        hi = pd.Series(df[col].to_numpy()).groupby(band).max()
        assert (hi.to_numpy()[:-1] <= lo.to_numpy()[1:]).all()  # the same bounds in every cell
        share = np.bincount(band, weights=w) / w.sum()
        np.testing.assert_allclose(share, 0.2, atol=0.02)  # quintiles of the whole population
    np.testing.assert_allclose(totals, x.T @ df["weight"].to_numpy())
    job = pd.Series(df["weight"].to_numpy()).groupby([codes, df["job"].to_numpy()]).sum()
    job_names = [nm for nm in names if " x job#" in nm]
    assert sorted(totals[[names.index(nm) for nm in job_names]]) == pytest.approx(sorted(job.to_numpy()))
    assert cell_crosses(df, design, targets, "weight", max_cells=50)[0].shape == (len(df), 0)  # too many: none
    # too many with the national bands: the within-cell groups and categories alone, at full weight
    x_few = cell_crosses(df, design, targets, "weight", max_cells=8 * 13)[0]
    assert x_few.shape == (len(df), 8 * 13) and set(x_few.data) == {1.0}
    assert cell_crosses(df, design, targets, "weight", columns=["job"])[0].shape == (len(df), 8 * 3)


def test_target_cells_without_count_targets_is_one_cell():
    df = pd.DataFrame({"a": [1, 2, 3], "y": [1.0, 2.0, 3.0], "weight": 1.0})
    targets = Targets.from_margins({"a": pd.Series([6.0, 6.0, 6.0], index=[1, 2, 3])}, aggregate="sum", variable="y")
    codes, n = target_cells(df, targets, "weight")
    assert n == 1 and codes.tolist() == [0, 0, 0]


def test_alike_groups_share_their_count_contributions(population):
    df, targets, design, *_ = population
    order, starts, codes = alike_groups(design)
    assert len(starts) == 9 and starts[-1] == len(df)
    x = design.x.toarray()
    for g in range(8):
        units = order[starts[g]:starts[g + 1]]
        assert (codes[units] == g).all()
        assert (x[units] == x[units[0]]).all()  # the same targets, the same counts
    assert len({tuple(x[order[starts[g]]]) for g in range(8)}) == 8


def test_refine_keeps_count_targets_and_lowers_the_miss(population):
    df, targets, design, x_obj, t_obj = population
    w0 = SparseCalibrator(150, seed=0, refine=False).fit(df, targets).weights.to_numpy()
    w, swaps, before, after = refine_subset(design, w0, x_obj, t_obj, 0.005, np.random.default_rng(0))
    assert swaps > 0 and after < 0.9 * before
    assert before == pytest.approx(auxiliary_l1(x_obj, t_obj, w0, 1.0)) and after == pytest.approx(auxiliary_l1(x_obj, t_obj, w, 1.0))
    assert (w > 0).sum() == 150 and sorted(w[w > 0]) == pytest.approx(sorted(w0[w0 > 0]))  # the same weights, moved
    np.testing.assert_allclose(achieved_values(design, w), achieved_values(design, w0), rtol=1e-12)
    w2, *_ = refine_subset(design, w0, x_obj, t_obj, 0.005, np.random.default_rng(0))
    np.testing.assert_array_equal(w, w2)  # deterministic for a generator state


def _two_cells():
    """One target cell of four records; the kept record sits in a small income group, an alike one in the big."""
    df = pd.DataFrame({"area": ["a"] * 4, "inc": [1.0, 2.0, 2.0, 50.0], "weight": [1.0, 2.0, 1.0, 1.0]})
    targets = Targets.from_margins({"area": pd.Series([5.0], index=["a"])})
    design = build_design(df, targets, "weight")
    x = sp.csr_matrix(np.array([[1, 0], [0, 1], [0, 1], [0, 1]], dtype=float))  # cells: inc < 2, inc >= 2
    return df, design, x, np.array([1.0, 4.0])


def test_refine_moves_the_weight_to_the_best_alike_record():
    _, design, x, t = _two_cells()
    w0 = np.array([5.0, 0.0, 0.0, 0.0])  # all the weight on the record of the small cell: miss 4 + 4
    w, swaps, before, after = refine_subset(design, w0, x, t, 0.005, np.random.default_rng(0))
    assert swaps == 1 and before == 8.0 and after == 2.0  # |0 - 1| + |5 - 4|
    assert w[0] == 0.0 and w[1:].sum() == 5.0


def test_a_swap_that_misses_a_sum_target_is_penalized():
    df, *_ = _two_cells()
    # a sum target of inc besides the count: only record 3 fits the cells, and its income (50) would miss
    # the sum (5 x 1) by a factor of 50
    area = {"area": pd.Series([5.0], index=["a"])}
    targets = Targets([*Targets.from_margins(area), *Targets.from_margins(area, aggregate="sum", variable="inc")])
    design = build_design(df.assign(inc=[1.0, 1.0, 1.0, 50.0]), targets, "weight")
    x = sp.csr_matrix(np.array([[1, 0], [1, 0], [1, 0], [0, 1]], dtype=float))
    t, w0 = np.array([0.0, 5.0]), np.array([5.0, 0.0, 0.0, 0.0])
    w, swaps, before, after = refine_subset(design, w0, x, t, 0.005, np.random.default_rng(0))
    assert swaps == 0 and before == after == 10.0 and w.tolist() == w0.tolist()
    w, swaps, _, after = refine_subset(design, w0, x, t, 0.005, np.random.default_rng(0), penalty=0.0)
    assert swaps == 1 and w[3] == 5.0 and after == 0.0  # without the penalty it moves


def test_default_fit_refines_and_represents_untargeted_crosses_better(population):
    df, targets, design, x_obj, t_obj = population
    plain = SparseCalibrator(150, seed=0, refine=False).fit(df, targets)
    sc = SparseCalibrator(150, seed=0).fit(df, targets)
    s = sc.summary
    assert s["refine_swaps"] > 0 and s["refined"] is True
    assert plain.summary["refine_swaps"] == 0 and plain.summary["refined"] is False
    assert s["n_nonzero"] == 150 and s["max_rel_error"] < 1e-6
    w, w_plain = sc.weights.to_numpy(), plain.weights.to_numpy()
    assert auxiliary_l1(x_obj, t_obj, w, 1.0) < 0.9 * auxiliary_l1(x_obj, t_obj, w_plain, 1.0)

    def cross_error(weights):  # held out: region x sex x job, never a target (the crosses stand for it)
        truth = df.groupby(["region", "sex", "job"])["weight"].sum()
        got = pd.Series(weights, index=df.index).groupby([df["region"], df["sex"], df["job"]]).sum()
        return float(np.abs(got.reindex(truth.index, fill_value=0.0) - truth).sum() / truth.sum())

    assert cross_error(w) < 0.8 * cross_error(w_plain)
    again = SparseCalibrator(150, seed=0).fit(df, targets).weights.to_numpy()
    np.testing.assert_array_equal(w, again)


def test_refine_is_left_out_without_auxiliaries_and_crosses_without_auto(population, monkeypatch):
    df, targets, design, *_ = population
    assert SparseCalibrator(150, auxiliary=None).fit(df, targets).summary["refine_swaps"] == 0
    aux = Targets.from_margins({("region", "job"): df.groupby(["region", "job"])["weight"].sum()})
    x_aux = build_design(df, aux, "weight")
    plain = SparseCalibrator(150, auxiliary=aux, refine=False).fit(df, targets).weights.to_numpy()

    def no_crosses(*args, **kwargs):
        raise AssertionError("explicit auxiliary totals are the whole objective")

    monkeypatch.setattr("microplex.calibration.sparse.cell_crosses", no_crosses)
    sc = SparseCalibrator(150, auxiliary=aux).fit(df, targets)
    assert sc.summary["max_rel_error"] < 1e-6
    w = sc.weights.to_numpy()
    assert auxiliary_l1(x_aux.x, x_aux.totals, w, 1.0) <= auxiliary_l1(x_aux.x, x_aux.totals, plain, 1.0)


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_bad_refine_parameter(population, value):
    df, targets, *_ = population
    with pytest.raises(DataValidationError, match="'refine' parameter"):
        SparseCalibrator(100, refine=value).fit(df, targets)


def test_refined_weights_keep_the_bounds(population):
    """Bounds are on the ratios to the starting weights d_i / pi_i: a refined subset keeps them too (alike
    records of other initial weights: the swapped weights as they are would break them)."""
    from microplex.calibration.subsets import inclusion_probabilities

    df, *_ = population
    df = df.assign(weight=np.random.default_rng(1).uniform(10.0, 200.0, len(df)))
    targets = Targets.from_margins({("region", "sex"): df.groupby(["region", "sex"])["weight"].sum()})
    design = build_design(df, targets, "weight")
    sc = SparseCalibrator(300, seed=0, bounds=(0.5, 2.0)).fit(df, targets)
    assert sc.summary["refine_swaps"] > 0 and sc.summary["refined"] and sc.summary["max_rel_error"] < 1e-6
    w = sc.weights.to_numpy()
    keep = w > 0
    start = design.d / inclusion_probabilities(design.d, int(keep.sum()))
    ratio = w[keep] / start[keep]
    assert ratio.min() >= 0.5 - 1e-9 and ratio.max() <= 2.0 + 1e-9
