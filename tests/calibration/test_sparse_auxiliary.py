"""Sparse subsets calibrated softly to auxiliary totals of the full population: what was not targeted survives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError
from microplex.calibration import SparseCalibrator, Targets
from microplex.calibration import auxiliary as aux_mod
from microplex.calibration.auxiliary import area_groups, auxiliary_design, target_area
from microplex.calibration.design import build_design
from microplex.calibration.diagnostics import relative_errors

from .conftest import untargeted_population


@pytest.fixture(scope="module")
def population():
    return untargeted_population(1, 6000)


def _cell_error(df, w, keys):
    truth = df.groupby(keys)["weight"].sum()
    got = pd.Series(w, index=df.index).groupby([df[k] for k in keys]).sum().reindex(truth.index, fill_value=0.0)
    return float(relative_errors(got.to_numpy(), truth.to_numpy()).mean())


def test_auxiliary_design_counts_area_cells_of_the_full_population(population):
    df, targets = population
    assert target_area(targets, df) == "region"  # both columns in every target: more categories wins
    design = build_design(df, targets, "weight")
    x, totals, names = auxiliary_design(df, design, targets, "weight")
    # age and income: 5 within-region quintile groups each; job: 3 categories; sex is crossed by the targets
    assert x.shape == (len(df), 4 * (5 + 5 + 3)) and len(names) == x.shape[1]
    assert np.allclose(np.asarray(x.sum(axis=1)).ravel(), 3.0)  # one cell per auxiliary column
    np.testing.assert_allclose(totals, x.T @ df["weight"].to_numpy())
    inc = [j for j, nm in enumerate(names) if "income" in nm and nm.startswith("region#0 ")]
    share = totals[inc] / totals[inc].sum()
    np.testing.assert_allclose(share, 0.2, atol=0.002)  # within-region quintiles: a fifth of the region each


def test_area_groups_follow_the_budget_and_the_area_shares(monkeypatch):
    area = np.repeat([0, 1, 2], [5, 3, 2])  # population shares 0.5, 0.3, 0.2 (equal weights)
    w = np.ones(10)
    np.testing.assert_array_equal(area_groups(area, 3, w, None, 5), [5, 5, 5])  # no budget: n_groups
    # 2 cells per record over 2 quantile columns: K s_a groups per area and column
    np.testing.assert_array_equal(area_groups(area, 3, w, 200, 5, 2), [100, 60, 40])
    np.testing.assert_array_equal(area_groups(area, 3, w, 200, 5, 4), [50, 30, 20])
    np.testing.assert_array_equal(area_groups(area, 3, w, 20, 5, 2), [10, 6, 5])  # at least n_groups
    np.testing.assert_array_equal(area_groups(area, 3, w * np.repeat([1.0, 2.0, 3.0], [5, 3, 2]), 100, 5, 2),
                                  [29, 35, 35])  # shares by weight: 5/17, 6/17, 6/17
    cells = aux_mod.MAX_FINE_CELLS  # a huge budget: the cells in all are bounded
    assert area_groups(area, 3, w, 10**7, 5, 2).tolist() == [int(cells * 0.25), int(cells * 0.15), int(cells * 0.1)]
    monkeypatch.setattr(aux_mod, "MAX_GROUPS", 40)
    assert area_groups(area, 3, w, 200, 5, 1).tolist() == [40, 40, 40]  # and the groups per area


def test_auxiliary_design_with_a_budget_splits_areas_by_their_expected_records(population):
    df, targets = population
    design = build_design(df, targets, "weight")
    x, totals, names = auxiliary_design(df, design, targets, "weight", columns=["income", "job"], budget=400)
    region = pd.factorize(df["region"])[0]  # the area codes of the names: order of appearance
    groups = area_groups(region, 4, df["weight"].to_numpy(), 400, 5, 1)  # income is the one quantile column
    assert groups.min() > 150  # about 400 * 0.25 * 2 per region
    for r in range(4):
        inc = [j for j, nm in enumerate(names) if nm.startswith(f"region#{r} x income#")]
        assert len(inc) == groups[r]  # a continuous column: exactly the area's groups, no empty one
        np.testing.assert_allclose(totals[inc] / totals[inc].sum(), 1.0 / groups[r], rtol=0.5)
        assert sum(nm.startswith(f"region#{r} x job#") for nm in names) == 3  # categories are not split
        coarse = [j for j, nm in enumerate(names) if nm.startswith(f"region#{r} x income/5#")]
        np.testing.assert_allclose(totals[coarse] / totals[coarse].sum(), 0.2, atol=0.01)  # the quintiles kept
    np.testing.assert_allclose(np.asarray(x.sum(axis=1)).ravel(), 3.0)  # fine income, income quintile, job
    x5, _, names5 = auxiliary_design(df, design, targets, "weight", columns=["income", "job"], budget=10)
    assert x5.shape[1] == 4 * (5 + 3) and not any("/" in nm for nm in names5)  # no area split finer than 5


def test_budgeted_groups_keep_finer_quantiles_within_areas(population, monkeypatch):
    """400 records, 4 regions: about 100 income groups per region instead of 5, so that within-region income
    20-tiles (not an auxiliary) survive: share of the population in the wrong 20-tile cells 0.10 against 0.26
    with 5 fixed groups (means of seeds 0-5; seed for seed 0.085-0.119 against 0.215-0.290)."""
    df, targets = population
    g = np.minimum(np.floor(df.groupby("region")["income"].rank(method="first", pct=True) * 20), 19)
    truth = df.groupby([df["region"], g])["weight"].sum()

    def share_error(w):
        got = pd.Series(w, index=df.index).groupby([df["region"], g]).sum().reindex(truth.index, fill_value=0.0)
        return float((got - truth).abs().sum() / truth.sum())

    err = {}
    for label, cells in (("budget", aux_mod.CELLS_PER_RECORD), ("fixed", 0.0)):  # 0: the 5 default groups
        monkeypatch.setattr(aux_mod, "CELLS_PER_RECORD", cells)
        err[label] = [share_error(SparseCalibrator(400, seed=s).fit(df, targets).weights.to_numpy()) for s in (0, 1, 2)]
    assert np.mean(err["budget"]) < 0.5 * np.mean(err["fixed"])


def test_subset_keeps_untargeted_crosses_better_than_without_auxiliaries(population):
    df, targets = population
    aux_err, none_err = [], []
    for seed in range(3):
        a = SparseCalibrator(150, seed=seed).fit(df, targets)
        b = SparseCalibrator(150, seed=seed, auxiliary=None).fit(df, targets)
        assert a.summary["max_rel_error"] < 1e-6 and b.summary["max_rel_error"] < 1e-6  # targets still exact
        assert a.summary["n_nonzero"] == 150 and a.summary["auxiliary_dropped"] == 0
        aux_err.append([_cell_error(df, a.weights.to_numpy(), ["region", c]) for c in ("job",)])
        none_err.append([_cell_error(df, b.weights.to_numpy(), ["region", c]) for c in ("job",)])
    # region x job counts are among the auxiliaries: a soft fit brings them far closer than chance
    assert np.mean(aux_err) < 0.75 * np.mean(none_err)  # about 0.58 measured


def test_subset_matches_income_quintiles_within_regions(population):
    df, targets = population
    design = build_design(df, targets, "weight")
    x, totals, _ = auxiliary_design(df, design, targets, "weight", columns=["income"])
    errs = {}
    for aux in (["income"], None):
        w = SparseCalibrator(200, seed=0, auxiliary=aux).fit(df, targets).weights.to_numpy()
        errs[str(aux)] = float(relative_errors(x.T @ w, totals).mean())
    assert errs["['income']"] < 0.75 * errs["None"]  # about 0.52 measured


def test_stronger_auxiliaries_match_them_more_closely(population):
    df, targets = population
    design = build_design(df, targets, "weight")
    # region x job (12 cells) can be matched by 200 records; the auto auxiliaries of a 200-record budget
    # (about 50 income and age groups per region) cannot, and strength moves them little (0.20 -> 0.18)
    x, totals, _ = auxiliary_design(df, design, targets, "weight", columns=["job"])
    err = []
    for strength in (0.1, 10.0):
        sc = SparseCalibrator(200, seed=0, auxiliary=["job"], auxiliary_strength=strength).fit(df, targets)
        w = sc.weights.to_numpy()
        err.append(float(relative_errors(x.T @ w, totals).mean()))
    assert err[1] < 0.3 * err[0]  # 0.0136 -> 0.0023 measured


def test_explicit_auxiliary_targets_are_used_as_given(population):
    df, targets = population
    design = build_design(df, targets, "weight")
    jobs = Targets.from_margins({"job": df.groupby("job")["weight"].sum() * np.array([1.0, 1.0, 1.0])})
    x, totals, names = auxiliary_design(df, design, targets, "weight", columns=jobs)
    assert x.shape[1] == 3 and len(names) == 3
    sc = SparseCalibrator(150, seed=0, auxiliary=jobs, auxiliary_strength=100.0).fit(df, targets)
    assert sc.summary["max_rel_error"] < 1e-6
    assert float(relative_errors(x.T @ sc.weights.to_numpy(), totals).max()) < 0.03


@pytest.mark.parametrize(
    "params, match",
    [
        ({"auxiliary": "all"}, "'auxiliary' parameter"),
        ({"auxiliary": 3}, "'auxiliary' parameter"),
        ({"auxiliary_strength": 0.0}, "'auxiliary_strength' parameter"),
        ({"auxiliary_strength": float("nan")}, "'auxiliary_strength' parameter"),
        ({"auxiliary": ["nope"]}, r"auxiliary columns \['nope'\]"),
        # accepted before: the weight crossed as a margin, all-missing or complex values
        ({"auxiliary": ["weight"]}, r"auxiliary column 'weight' is the weight column"),
        ({"auxiliary": ["empty"]}, r"auxiliary column 'empty' holds only missing values"),
        ({"auxiliary": ["z"]}, r"auxiliary column 'z' holds complex numbers"),
    ],
)
def test_bad_auxiliary_parameters(population, params, match):
    df, targets = population
    df = df.assign(empty=np.nan, z=df["income"] * 1j)
    with pytest.raises(DataValidationError, match=match):
        SparseCalibrator(100, **params).fit(df, targets)


def test_budget_at_the_lp_core_meets_the_tolerance(eusilc):
    """Households at the LP core size: no calibration of the core meets the targets exactly, the vertex does."""
    df = eusilc.copy()
    df["age_group"] = pd.cut(df["age"], [-np.inf, 18, 40, 65, np.inf], right=False, labels=["0", "18", "40", "65"]).astype(str)
    df["hsize_group"] = np.minimum(df["hsize"], 5)
    w, first = df["db090"], ~df["db030"].duplicated()
    targets = Targets.from_margins(
        {("db040", "rb090", "age_group"): w.groupby([df["db040"], df["rb090"], df["age_group"]]).sum()}
    ) + Targets.from_margins({"hsize_group": w[first].groupby(df.loc[first, "hsize_group"]).sum()}, entity="household")
    df = df[["db030", "db040", "rb090", "age_group", "hsize_group", "eqIncome", "db090"]]
    core = SparseCalibrator(method="l1").fit(df, targets, "db090", household_col="db030").summary["n_nonzero"]
    sc = SparseCalibrator(core).fit(df, targets, "db090", household_col="db030")  # raises beyond the tolerance
    assert sc.summary["within_tolerance"] and sc.summary["n_nonzero"] <= core


def test_an_integer_code_nested_in_the_areas_is_crossed_by_its_values():
    """A district code stored as an integer and nested in the regions (each code in one region) is recognised
    as a sub-area code and crossed by its values, as the same code typed as a category is (160 values, nested:
    sub-area codes too); the subset keeps
    the districts' populations far better than with the codes crossed as a number (quantile groups of the
    codes, ranges that mean nothing here: the codes shifted by 0.5, no longer integers).
    ``summary["auxiliary_columns"]`` says which."""
    df, targets = untargeted_population(1, 6000)
    rng = np.random.default_rng(7)
    n_d = 40  # districts per region, uneven (1/rank) sizes, codes shuffled across regions
    p = 1.0 / np.arange(1, n_d + 1)
    codes = rng.permutation(1000)[: 4 * n_d].reshape(4, n_d)
    df["district"] = codes[df["region"].to_numpy(), rng.choice(n_d, len(df), p=p / p.sum())]
    truth = df.groupby(["region", "district"])["weight"].sum()

    def misplaced(w):
        got = pd.Series(w, index=df.index).groupby([df["region"], df["district"]]).sum()
        return float(np.abs(got.reindex(truth.index, fill_value=0.0) - truth).sum() / truth.sum())

    errs = {}
    frames = {"integer": (df, "sub-area codes"),
              "category": (df.assign(district=df["district"].astype("category")), "sub-area codes"),
              "number": (df.assign(district=df["district"] + 0.5), "quantile groups")}
    for label, (frame, kind) in frames.items():
        fits = [SparseCalibrator(300, seed=seed).fit(frame, targets) for seed in (0, 1)]
        assert all(f.summary["max_rel_error"] < 1e-6 for f in fits)
        assert fits[0].summary["auxiliary_columns"] == {"age": "quantile groups", "income": "quantile groups",
                                                        "job": "categories", "district": kind}
        errs[label] = np.mean([misplaced(f.weights.to_numpy()) for f in fits])
    assert errs["category"] < 0.85 * errs["number"]  # 0.22 -> 0.16 measured (session 41)
    assert errs["integer"] < 0.85 * errs["number"]
    assert abs(errs["integer"] - errs["category"]) < 0.1 * errs["category"]  # the same cells
    assert SparseCalibrator(300, seed=0, auxiliary=None).fit(df, targets).summary["auxiliary_columns"] is None


def test_nesting_tells_sub_area_codes_from_quantities():
    rng = np.random.default_rng(3)
    n, n_area = 20_000, 30
    area = rng.integers(0, n_area, n)
    age = pd.Series(rng.integers(16, 90, n))  # independent of the area: every value everywhere
    assert 0.9 < aux_mod.nesting(age, area, n_area) < 1.1
    sub = pd.Series(area * 100 + rng.integers(0, 20, n))  # 20 codes per area, each in one area
    assert aux_mod.nesting(sub, area, n_area) < 0.1
    own = 1000 + area * 20 + rng.integers(0, 20, n)
    mixed = pd.Series(np.where(rng.random(n) < 0.2, 100 * rng.integers(1, 4, n), own))  # 3 codes found everywhere
    assert aux_mod.nesting(mixed, area, n_area) < aux_mod.NESTED_SPREAD
    assert aux_mod.nesting(sub + 0.5, area, n_area) == np.inf  # not integers: never a code
    assert aux_mod.nesting(sub, np.zeros(n, dtype=np.int64), 1) == np.inf  # one area
    assert aux_mod.nesting(pd.Series(np.arange(n)), area, n_area) == np.inf  # no value held twice (and too many cells)
    fine = pd.Series(area * 1000 + rng.integers(0, 200, n))  # 6,000 sub-areas: above MAX_SUBAREA_CELLS
    assert aux_mod.nesting(fine, area, n_area) == np.inf


def test_crossing_counts_households_once_and_checks_given_kinds():
    """Persons of a household share their household's values and area: counted per person, a household
    quantity would look confined to areas; ``crossing`` counts one record per household."""
    rng = np.random.default_rng(4)
    n_hh, size = 1500, 4
    hh = np.repeat(np.arange(n_hh), size)
    region = np.repeat(rng.integers(0, 40, n_hh), size)
    df = pd.DataFrame({"hh": hh, "region": region.astype(str), "weight": 1.0,
                       "income": np.repeat(rng.integers(1, 400, n_hh), size)})  # in 100s, one per household
    targets = Targets.from_margins({"region": df.groupby("region")["weight"].sum()})
    per_person = aux_mod.nesting(df["income"], pd.factorize(df["region"])[0], 40)
    assert per_person < aux_mod.NESTED_SPREAD  # read per person, the household's repeats look like nesting
    assert aux_mod.crossing(df, targets, "weight", "hh") == {"income": "quantile groups"}
    with pytest.raises(DataValidationError, match="kinds"):
        aux_mod.crossing(df, targets, "weight", "hh", {"income": "deciles"})
    with pytest.raises(DataValidationError, match="not in the candidates"):
        aux_mod.crossing(df, targets, "weight", "hh", {"floors": "categories"})
    assert aux_mod.crossing(df, targets, "weight", "hh", {"income": "categories"}) == {"income": "categories"}


def test_dates_and_durations_are_crossed_by_quantile_groups_of_their_values():
    """An interview date (or a duration) with many values is a quantity, not a list of categories: its
    within-area quantile groups are those of its day numbers, missing dates a group of their own."""
    rng = np.random.default_rng(5)
    n = 4000
    day = rng.integers(0, 400, n)
    df = pd.DataFrame({"region": rng.choice(list("abcd"), n), "weight": rng.uniform(1, 3, n),
                       "date": pd.Timestamp("2024-01-01") + pd.to_timedelta(day, "D"),
                       "spell": pd.to_timedelta(day, "D"), "day": day})
    df.loc[df.index[:50], ["date", "spell"]] = pd.NaT
    df.loc[df.index[:50], "day"] = np.nan
    targets = Targets.from_margins({"region": df.groupby("region")["weight"].sum()})
    kinds = aux_mod.crossing(df, targets, "weight")
    assert kinds == {"date": "quantile groups", "spell": "quantile groups", "day": "quantile groups"}
    a, n_area = pd.factorize(df["region"])[0].astype(np.int64), 4
    w = df["weight"].to_numpy()
    want, k = aux_mod._column_codes(df["day"], a, n_area, w, 5, "quantile groups")
    for col in ("date", "spell"):
        got, k_got = aux_mod._column_codes(df[col], a, n_area, w, 5, "quantile groups")
        assert k_got == k == 6 and np.array_equal(got, want)
    assert set(want[:50]) == {5}  # the missing values' group
    sc = SparseCalibrator(200).fit(df.drop(columns="day"), targets)
    assert sc.summary["max_rel_error"] < 1e-6
    assert sc.summary["auxiliary_columns"] == {"date": "quantile groups", "spell": "quantile groups"}


def test_unhashable_columns_are_left_out_of_auto_and_named_when_named():
    df, targets = untargeted_population(1, 600)
    df["tags"] = [[i % 3] for i in range(len(df))]
    sc = SparseCalibrator(100).fit(df, targets)  # "auto": a column of lists has no margins (was refused)
    assert "tags" not in sc.summary["auxiliary_columns"] and sc.summary["max_rel_error"] < 1e-6
    with pytest.raises(DataValidationError, match="'tags' holds unhashable values"):
        SparseCalibrator(100, auxiliary=["age", "tags"]).fit(df, targets)
    sc = SparseCalibrator(100, auxiliary=["age", "job"]).fit(df, targets)  # named columns: tags left out
    assert sc.summary["max_rel_error"] < 1e-6


def test_frequent_categories_keep_each_areas_heaviest_values_and_pool_the_rest():
    # area 0: x weighs 5, y 3, z 1, w 1 (w seen after z); area 1: z weighs 4, x 1
    s = pd.Series(["x", "y", "z", "x", "y", "w", "z", "x", "z"])
    area = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1], dtype=np.int64)
    w = np.array([2.0, 1.0, 1.0, 3.0, 2.0, 1.0, 2.0, 1.0, 2.0])
    codes, n = aux_mod._column_codes(s, area, 2, w, np.array([3, 2]), "frequent categories")
    # area 0 keeps x (rank 0) and y (rank 1), pools z and w (group 2); area 1 keeps z, pools x (group 1)
    assert n == 3 and codes.tolist() == [0, 1, 2, 0, 1, 2, 0, 1, 0]
    codes, n = aux_mod._column_codes(s, area, 2, w, 10, "frequent categories")  # room for every value
    assert n == 10 and codes.tolist() == [0, 1, 2, 0, 1, 3, 0, 1, 0]


def test_a_many_valued_text_column_is_crossed_by_its_frequent_values(monkeypatch):
    """An occupation-like text column of 400 values (skewed, tied to the targeted education) in 25 regions:
    crossed value by value, its 10,000 region x occupation cells, most smaller than one kept record's weight,
    crowd out the age groups and even lose the region x occupation distribution; crossed by each region's
    frequent values (the default), the subset keeps the regions' main occupations better than without the
    column, at the cost of little else."""
    rng = np.random.default_rng(3)
    n = 8000
    educ = rng.integers(0, 4, n)
    occ = educ * 100 + np.minimum(rng.geometric(0.06, n) - 1, 99)
    df = pd.DataFrame({"region": rng.integers(0, 25, n), "educ": educ, "age": rng.integers(18, 80, n),
                       "occ": [f"o{o}" for o in occ], "weight": rng.uniform(20, 80, n)})
    targets = Targets.from_margins({("region", "educ"): df.groupby(["region", "educ"])["weight"].sum()})
    assert aux_mod.crossing(df, targets, "weight") == {"age": "quantile groups", "occ": "frequent categories"}
    _, _, names = auxiliary_design(df, build_design(df, targets, "weight"), targets, "weight", budget=300)
    assert sum(" x occ" in name for name in names) <= 2 * 300  # within the budget's cells, not 25 x 400
    main = df["occ"].where(df["occ"].isin(df["occ"].value_counts().index[:10]), "rest")

    def held_out(frame):  # people in the wrong region x age-decade and region x main-occupation cells
        fits = [SparseCalibrator(300, seed=seed).fit(frame, targets) for seed in (0, 1)]
        assert all(f.summary["max_rel_error"] < 1e-6 for f in fits)
        out = {}
        for name, key in (("age", df["age"] // 10), ("occ", main)):
            truth = df["weight"].groupby([df["region"], key]).sum()
            got = [f.weights.groupby([df["region"], key]).sum().reindex(truth.index, fill_value=0.0) for f in fits]
            out[name] = np.mean([float(np.abs(g - truth).sum() / truth.sum()) for g in got])
        return out

    frequent, without = held_out(df), held_out(df.drop(columns="occ"))
    real_crossing = aux_mod.crossing
    monkeypatch.setattr("microplex.calibration.sparse.crossing", lambda *a, **k: {
        c: "categories" if c == "occ" else kind for c, kind in real_crossing(*a, **k).items()})
    by_values = held_out(df)
    # measured: occupations 0.264 (by values 0.498, without 0.306), ages 0.307 (0.353, 0.303)
    assert frequent["occ"] < 0.7 * by_values["occ"] and frequent["occ"] < 0.95 * without["occ"]
    assert frequent["age"] < 0.95 * by_values["age"] and frequent["age"] < 1.1 * without["age"]
