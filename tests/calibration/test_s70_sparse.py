"""Sparse subsets and areas, s70.

1. Records with no area: ``[sparsify] by = "state"`` on a population with records of no state (a source read with
   ``dropna = false``: the model keeps the missing condition and ``generate`` draws it) dropped them without a word
   (116 of 2,000 generated records, 11,600 of the population's 200,000 weight; exit 0), or, with ``max_records``,
   failed with an internal ``ValueError`` ("'list' argument must have no negative elements"); ``generate.by``
   failed with the same internal error. Both now refuse the missing areas up front, naming the column and the count.
2. Persons in another order within their households: ``SparseCalibrator(household_col=...)`` on the same person
   file sorted by age kept other households (60 of 60 kept, 8 in common at ``max_records=60``): households were
   ranked by a hash that included their first person, and the persons' order reached the auxiliaries' codes
   (numbered by first appearance). A household's persons are now ordered by their values, unless a value read on
   its first record (a household target's column, a stratify column) varies within the household.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError
from microplex._pipeline_areas import _area_conditions, _sparsify_by
from microplex.calibration import Target, Targets
from microplex.datasets import load_dataset
from microplex.evaluation.areas import cell_totals
from microplex.pipeline import run_pipeline

STATES = ["California", "Texas", "New York"]


def _no_state_frame() -> tuple[pd.DataFrame, Targets]:
    """600 records of two states, every 20th with no state (30 records, weight 60), and a count per state."""
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"state": rng.choice(["X", "Y"], 600).astype(object), "sex": rng.integers(0, 2, 600),
                       "weight": 2.0})
    df.loc[::20, "state"] = np.nan
    counts = df.groupby(["state", "sex"]).size() * 2.1
    return df, Targets([Target(float(v), filters={"state": s, "sex": int(x)}) for (s, x), v in counts.items()])


@pytest.mark.parametrize("budget", [None, 40])
def test_sparsify_by_refuses_records_of_no_area(budget):
    """Before: without a budget the 30 records of no state got weight 0 with no error (weight 60 of 1,200 gone);
    with a budget of 40 a builtins ValueError from np.bincount."""
    df, targets = _no_state_frame()
    params = {"seed": 0} if budget is None else {"seed": 0, "max_records": budget}
    with pytest.raises(DataValidationError, match=r"'sparsify.by' column 'state' has 30 records \(of 600\) with no "
                                                  r"value.*drop them.*dropna\(subset=\['state'\]\)"):
        _sparsify_by(df, targets, "state", params, "weight", None)
    # the same records with an area of their own are subset, every area's targets met
    given = df.assign(state=df["state"].fillna("none"))
    extra = Targets([Target(float(v), filters={"state": "none", "sex": int(x)})
                     for x, v in (given[given["state"] == "none"].groupby("sex").size() * 2.1).items()])
    w, table = _sparsify_by(given, targets + extra, "state", params, "weight", None)
    assert table["area"].tolist() == ["X", "Y", "none"] and (table["kept"] > 0).all()
    achieved = cell_totals(given.assign(weight=w)[w > 0], targets + extra)
    assert np.abs(achieved / [t.value for t in targets + extra] - 1).max() <= 0.005


def test_area_conditions_refuse_training_records_of_no_area():
    """Before: generate.by on training conditions with missing areas raised a builtins ValueError (np.bincount of
    the code -1)."""
    cond = pd.DataFrame({"area": ["a", "b", None, "a", "b", None, "a"], "x": np.arange(7)})
    with pytest.raises(DataValidationError, match=r"'generate.by' column 'area' has 2 training records \(of 7\) with "
                                                  r"no value.*drop them"):
        _area_conditions(cond, np.ones(7), 100, "area", np.random.default_rng(0))


@pytest.fixture(scope="module")
def no_state_source(tmp_path_factory):
    """1,500 census2000 records of three states, every 20th with no state (75 records)."""
    d = tmp_path_factory.mktemp("nostate")
    df = load_dataset("census2000")
    df = df[df["state"].isin(STATES)].sample(1500, random_state=3).reset_index(drop=True)
    df["state"] = df["state"].astype(object)
    df.loc[::20, "state"] = np.nan
    df["weight"] = 10.0
    df[["state", "lweekinc", "exper", "weight"]].to_csv(d / "src.csv", index=False)
    pd.DataFrame({"value": [float(df["weight"][df["state"] == s].sum() * 40 / 3) for s in STATES],
                  "filter": [f"state == '{s}'" for s in STATES]}).to_csv(d / "targets.csv", index=False)
    return d


def _config(d, out, **stages) -> dict:
    return {"output": str(out), "seed": 0, "_base": str(d),
            "sources": [{"name": "src", "path": str(d / "src.csv"), "weight": "weight", "dropna": False}],
            "model": {"targets": ["lweekinc", "exper"], "conditions": ["state"], "epochs": 1},
            "generate": {"n": 2000, "population": 200000}, **stages}


@pytest.mark.parametrize("budget", [None, 50])
def test_pipeline_sparsify_by_refuses_records_of_no_area(no_state_source, tmp_path, budget):
    """Before (microplex run): exit 0 with the 116 generated records of no state (11,600 of 200,000 weight) left out
    of subset.parquet, or, with max_records = 50, exit 2 with an internal ValueError."""
    d = no_state_source
    sparsify = {"targets": str(d / "targets.csv"), "by": "state"}
    if budget is not None:
        sparsify["max_records"] = budget
    with pytest.raises(DataValidationError, match=r"'sparsify.by' column 'state' has \d+ records .*with no value"):
        run_pipeline(_config(d, tmp_path, sparsify=sparsify), force=True, progress=False)
    assert (tmp_path / "synthetic.parquet").exists() and not (tmp_path / "subset.parquet").exists()


def test_pipeline_generate_by_refuses_training_records_of_no_area(no_state_source, tmp_path):
    d = no_state_source
    config = _config(d, tmp_path)
    config["generate"]["by"] = "state"
    with pytest.raises(DataValidationError, match=r"'generate.by' column 'state' has \d+ training records .*with no "
                                                  r"value"):
        run_pipeline(config, force=True, progress=False)
    assert not (tmp_path / "synthetic.parquet").exists()


def test_pipeline_calibrate_geography_refuses_records_of_no_area(no_state_source, tmp_path):
    """Checked alike, no change needed: calibrate (with geography) solves all areas at once and refuses a missing
    value in a targeted column, naming it."""
    d = no_state_source
    config = _config(d, tmp_path, calibrate={"targets": str(d / "targets.csv"), "geography": ["state"]})
    with pytest.raises(DataValidationError, match=r"Column 'state' \(used by target .*\) has \d+ missing values"):
        run_pipeline(config, force=True, progress=False)


# 2. Persons in another order within their households -------------------------------------------------------------


@pytest.fixture(scope="module")
def households() -> tuple[pd.DataFrame, Targets]:
    """800 eusilc households; person and household counts by region (region and weight constant within a
    household) and a person count of females."""
    df = load_dataset("eusilc")
    rng = np.random.default_rng(0)
    df = df[df["db030"].isin(rng.choice(df["db030"].unique(), 800, replace=False))].reset_index(drop=True)
    first = ~df["db030"].duplicated()
    tg = []
    for r in sorted(df["db040"].unique()):
        m = df["db040"] == r
        tg.append(Target(float(df["db090"][m].sum()), filters={"db040": r}))
        tg.append(Target(float(df["db090"][m & first].sum()), filters={"db040": r}, entity="household"))
    tg.append(Target(float(df["db090"][df["rb090"] == "female"].sum()), filters={"rb090": "female"}))
    return df, Targets(tg)


def _household_weights(df: pd.DataFrame, targets: Targets, **kw) -> pd.Series:
    """One weight per household id, sorted by id."""
    import warnings

    from microplex.calibration import SparseCalibrator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = SparseCalibrator(**kw).fit(df, targets, weight_col="db090", household_col="db030").result_.record_weights
    per = pd.Series(w.to_numpy(), index=df["db030"].to_numpy()).groupby(level=0)
    assert (per.nunique() == 1).all()  # one weight per household
    return per.first().sort_index()


HOUSEHOLD_CASES = {"budget": {"max_records": 60}, "budget, no auxiliaries": {"max_records": 60, "auxiliary": None},
                   "l0, no budget": {}, "l1": {"method": "l1"}}


@pytest.mark.parametrize("case", list(HOUSEHOLD_CASES))
def test_persons_sorted_by_age_keep_the_same_households_and_weights(households, case):
    """Before (households kept, original / sorted by age, in common): budget 60/60, 8 in common; without
    auxiliaries 60/60, 9; l0 without a budget 19/18, 4; l1 19/19, 9. The targets read only values constant within a
    household, so the order of a household's persons says nothing: they are now ordered by their values."""
    df, tg = households
    assert (df.groupby("db030")[["db040", "db090"]].nunique() == 1).all().all()
    base = _household_weights(df, tg, **HOUSEHOLD_CASES[case])
    for other in (df.sort_values("age", kind="stable"), df.sort_values(["rb090", "age"], ascending=False),
                  df.sample(frac=1.0, random_state=4)):
        assert len(other) == len(df) and (other.groupby("db030", sort=False).head(1).index
                                          != df.groupby("db030", sort=False).head(1).index).any()
        got = _household_weights(other.reset_index(drop=True), tg, **HOUSEHOLD_CASES[case])
        assert (got > 0).sum() == (base > 0).sum()
        pd.testing.assert_series_equal(got, base, check_exact=True)


def _head_targets(df: pd.DataFrame, tg: Targets) -> Targets:
    """``tg`` and a household count of the households whose first person (the head, by the file's convention) is
    female: a household target read on a column that varies within households."""
    first = ~df["db030"].duplicated()
    head_f = float(df["db090"][first & (df["rb090"] == "female")].sum()) * 1.01
    return tg + Targets([Target(head_f, filters={"rb090": "female"}, entity="household")])


@pytest.mark.parametrize("case", ["budget", "l0, no budget"])
def test_a_household_target_on_a_person_column_keeps_each_households_first_person(households, case):
    """A household target reads each household's first record; where it reads a column that varies within a
    household (the head's sex), the first person is part of the input and stays first: the others in any order
    keep the same households and weights, and the target is met on the first persons as given."""
    df, tg = households
    tg = _head_targets(df, tg)
    base = _household_weights(df, tg, **HOUSEHOLD_CASES[case])
    first = ~df["db030"].duplicated()
    # the same heads first, the other persons of each household sorted by age (descending) and shuffled
    rest = df[~first]
    for others in (rest.sort_values("age", ascending=False), rest.sample(frac=1.0, random_state=2)):
        reordered = pd.concat([df[first], others]).reset_index(drop=True)
        got = _household_weights(reordered, tg, **HOUSEHOLD_CASES[case])
        pd.testing.assert_series_equal(got, base, check_exact=True)
    heads = df[first].set_index("db030")
    female = heads.index[heads["rb090"] == "female"]
    target = list(tg)[-1].value
    assert abs(base.reindex(female).sum() / target - 1) <= 0.005  # read on the first persons as given


def test_content_order_orders_a_groups_rows_by_their_values():
    from microplex._random import content_order

    df = pd.DataFrame({"hid": [5, 5, 5, 2, 2, 9], "age": [40, 10, 70, 30, 31, 50], "sex": list("fmfmfm")})
    order = content_order(df, groups="hid")
    rows = [tuple(r) for r in df.iloc[order].itertuples(index=False)]
    for perm in ([2, 1, 0, 4, 3, 5], [5, 3, 0, 4, 1, 2], [1, 4, 5, 2, 0, 3]):
        other = df.iloc[perm]
        assert [tuple(r) for r in other.iloc[content_order(other, groups="hid")].itertuples(index=False)] == rows
    # keep_first: each group's first row stays first, the others follow by their values, in any order
    kept = df.iloc[content_order(df, groups="hid", keep_first=True)]
    assert sorted(kept.groupby("hid", sort=False).head(1)["age"]) == [30, 40, 50]  # the rows given first
    rows = [tuple(r) for r in kept.itertuples(index=False)]
    for perm in ([0, 2, 1, 3, 4, 5], [3, 5, 4, 0, 2, 1]):  # the same first rows, the others otherwise
        other = df.iloc[perm]
        assert [tuple(r) for r in other.iloc[content_order(other, groups="hid", keep_first=True)].itertuples(
            index=False)] == rows
    other = df.iloc[[1, 0, 2, 3, 4, 5]]  # another first row of household 5
    assert 10 in other.iloc[content_order(other, groups="hid", keep_first=True)].groupby(
        "hid", sort=False).head(1)["age"].tolist()
