"""Sparse subsets whose records are chosen by linear programs with the auxiliary totals in the objective."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from microplex import ConvergenceWarning
from microplex.calibration import SparseCalibrator, Targets
from microplex.calibration import _subset_choice
from microplex.calibration._subset_choice import AUXILIARY_CAPS, auxiliary_l1, auxiliary_subset, auxiliary_vertex
from microplex.calibration.auxiliary import auxiliary_design
from microplex.calibration.design import build_design
from microplex.calibration.feasibility import lp_vertex
from microplex.calibration.subsets import _max_error

from .conftest import untargeted_population


@pytest.fixture(scope="module")
def population():
    df, targets = untargeted_population(3, 4000)
    design = build_design(df, targets, "weight")
    x, t, _ = auxiliary_design(df, design, targets, "weight")
    return df, targets, design, x, t


def test_auxiliary_vertex_meets_targets_and_fits_auxiliaries_better_than_a_plain_vertex(population):
    _, _, design, x, t = population
    pop = design.d.sum()
    w = auxiliary_vertex(design, x, t, 0.005)
    assert _max_error(design, w) <= 0.005
    plain = lp_vertex(design, 0.005)
    # the plain vertex puts each target cell on one record (L1 miss near 2 per auxiliary column)
    assert auxiliary_l1(x, t, w, pop) < 0.05 * auxiliary_l1(x, t, plain, pop)
    upper = np.full(len(design.d), 2.0 * pop / 300)
    wc = auxiliary_vertex(design, x, t, 0.005, upper=upper)
    assert _max_error(design, wc) <= 0.005 and wc.max() <= upper[0] * (1 + 1e-9)
    assert (wc > 0).sum() >= 150  # a cap of 2 HT weights of a 300-record sample: at least 150 records


@pytest.mark.parametrize("cap", [1.0, 2.0, math.inf])
def test_auxiliary_subset_keeps_at_most_the_budget_and_a_vertex_that_meets_the_targets(population, cap):
    _, _, design, x, t = population
    core, vertex = auxiliary_subset(design, x, t, 0.005, 60, cap)
    assert core.sum() <= 60
    if vertex is not None:
        assert _max_error(design, vertex) <= 0.005 and not (vertex[~core] > 0).any()


def test_default_fit_reports_the_chosen_cap_and_its_auxiliary_miss(population):
    df, targets, design, *_ = population
    x, t, _ = auxiliary_design(df, design, targets, "weight", budget=150)  # the auxiliaries of a 150-record fit
    sc = SparseCalibrator(150, seed=0, refine=False).fit(df, targets)  # the programs' choice, not refined
    s = sc.summary
    assert s["n_nonzero"] == 150 and s["max_rel_error"] < 1e-6
    assert s["auxiliary_cap"] in AUXILIARY_CAPS and s["auxiliary_converged"] is True
    w = sc.weights.to_numpy()
    assert s["auxiliary_l1"] == pytest.approx(auxiliary_l1(x, t, w, design.d.sum()), rel=1e-9)
    tries = [r for r in s["auxiliary_tries"] if "auxiliary_l1" in r]
    assert len(s["auxiliary_tries"]) == len(AUXILIARY_CAPS)
    exact = [r for r in tries if r["exact"] and r["max_rel_error"] <= 0.005]
    assert all(r["weights"] == "calibration" for r in exact)
    assert s["auxiliary_l1"] == pytest.approx(min(r["auxiliary_l1"] for r in exact))
    # the records the programs choose fit the auxiliaries better than balanced sampling's
    none = SparseCalibrator(150, seed=0, auxiliary=None).fit(df, targets).weights.to_numpy()
    assert s["auxiliary_l1"] < 0.6 * auxiliary_l1(x, t, none, design.d.sum())
    assert SparseCalibrator(150, seed=0, auxiliary=None).fit(df, targets).summary["auxiliary_cap"] is None


def test_seed_breaks_ties_and_is_reproducible(population):
    """Categorical columns only: many alike records, among which the seed chooses."""
    df, targets, *_ = population
    df = df[["region", "sex", "job", "weight"]].assign(age=df["age"] // 20)
    a = SparseCalibrator(150, seed=1).fit(df, targets).weights
    b = SparseCalibrator(150, seed=1).fit(df, targets).weights
    c = SparseCalibrator(150, seed=2).fit(df, targets).weights
    pd.testing.assert_series_equal(a, b)
    assert not a.equals(c)


def test_large_candidate_sets_use_a_balanced_pool(population, monkeypatch):
    df, targets, design, x, t = population
    monkeypatch.setattr(_subset_choice, "MAX_LP_UNITS", 500)
    monkeypatch.setattr(_subset_choice, "POOL_PER_RECORD", 5)
    seen = []
    real = _subset_choice.auxiliary_vertex

    def spy(design, *args, **kwargs):
        seen.append(len(design.d))
        return real(design, *args, **kwargs)

    monkeypatch.setattr(_subset_choice, "auxiliary_vertex", spy)
    sc = SparseCalibrator(100, seed=0).fit(df, targets)
    assert seen and set(seen) == {500}  # max(5 * 100, 500) units, not 4000
    assert sc.summary["n_nonzero"] == 100 and sc.summary["max_rel_error"] < 1e-6
    assert sc.summary["auxiliary_cap"] is not None


def test_subset_too_small_for_the_auxiliaries_says_so():
    """One record per target cell: the soft auxiliary solve cannot converge; the fit says so (summary and warning)."""
    rng = np.random.default_rng(0)
    n = 600
    df = pd.DataFrame({"region": rng.integers(0, 3, n), "age": rng.integers(18, 80, n),
                       "job": rng.choice(["a", "b", "c", "d"], n), "weight": 10.0})
    df["income"] = np.exp(rng.normal(10, 1, n))
    targets = Targets.from_margins({"region": df.groupby("region")["weight"].sum()}) + Targets.from_margins(
        {"region": (df["weight"] * df["income"]).groupby(df["region"]).sum()}, aggregate="sum", variable="income")
    core = SparseCalibrator(method="l1").fit(df, targets).summary["n_nonzero"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sc = SparseCalibrator(core).fit(df, targets)
    s = sc.summary
    assert s["within_tolerance"]
    if s["auxiliary_converged"] is False:
        assert any(issubclass(w.category, ConvergenceWarning) and "auxiliary" in str(w.message) for w in caught)
    else:
        assert not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    assert s["auxiliary_converged"] in (True, False)


def test_records_are_chosen_again_with_half_the_tolerance_where_no_calibration_fits(population):
    """A program that spends the whole tolerance may choose records that no calibration fits (census2000 with a
    500-value occupation column, 556 records, seed 2: Vermont's income sum): the records are then chosen again
    with half the tolerance, and those are calibrated. Here a calibration fits only records chosen so."""
    _, _, design, x, t = population
    k = 60
    full = {cap: auxiliary_subset(design, x, t, 0.005, k, cap)[0] for cap in AUXILIARY_CAPS}
    half = {cap: auxiliary_subset(design, x, t, 0.0025, k, cap)[0] for cap in AUXILIARY_CAPS}
    assert any(not np.array_equal(full[c], half[c]) for c in AUXILIARY_CAPS)

    def picky(core, k):  # fits the records chosen at half the tolerance only
        if not any(np.array_equal(core, h) for h in half.values()):
            return np.zeros(len(design.d)), math.inf, False, True
        w = _subset_choice._program_weights(design, core, x, t, 0.0025, None)
        return w, _max_error(design, w), True, False

    best, tries = _subset_choice.best_auxiliary_subset(design, (x, t), 0.005, k, picky)
    assert best is not None and [r["cap"] for r in tries] == list(AUXILIARY_CAPS)
    for r, cap in zip(tries, AUXILIARY_CAPS):
        assert r["weights"] == "calibration" and r["exact"] is True
        assert r["program_tolerance"] == (0.005 if np.array_equal(full[cap], half[cap]) else 0.0025)
    w, err, _, cap, converged = best
    assert err <= 0.0025 and converged is True and not (w[~half[cap]] > 0).any()


def test_records_no_calibration_fits_are_weighted_by_the_program_over_them(population):
    """Where no calibration of the k chosen records meets the targets, the auxiliary program over those
    records alone weights them (targets within the tolerance, least auxiliary miss): with the targets'
    vertex on them, on more records than that vertex's few, and a smaller miss."""
    _, _, design, x, t = population
    k, pop = 60, design.d.sum()

    def failing(core, k):  # a calibration that misses the targets, whatever the records
        return np.zeros(len(design.d)), math.inf, False, True

    best, tries = _subset_choice.best_auxiliary_subset(design, (x, t), 0.005, k, failing)
    assert best is not None and [r["cap"] for r in tries] == list(AUXILIARY_CAPS)
    w, err, l1, cap, converged = best
    assert err == pytest.approx(_max_error(design, w)) and err <= 0.005 and converged is False
    core, _ = auxiliary_subset(design, x, t, 0.005, k, cap)
    assert not (w[~core] > 0).any() and (w >= 0).all() and l1 == pytest.approx(auxiliary_l1(x, t, w, pop))
    with_vertex = 0
    for r in tries:
        assert r["max_rel_error"] <= 0.005 and r["exact"] is False and r["auxiliary_converged"] is False
        assert r["weights"] == "program"
        core, vertex = auxiliary_subset(design, x, t, 0.005, k, r["cap"])
        if vertex is not None:
            with_vertex += 1
            assert r["kept"] > (vertex > 0).sum()  # more of the budget than the vertex's records
            assert r["auxiliary_l1"] < auxiliary_l1(x, t, vertex, pop)
    assert with_vertex  # the budget is below the support of some cap's program
