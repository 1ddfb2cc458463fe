"""Session 69: what the survey weights mean in the pipeline.

- ``[fuse] n_imputations > 1`` stacks one copy of the base per imputation, each with the record's full weight: the
  fit stage split the stacked rows one by one (331 of 403 held-out rows were copies of training records) and the
  default population was the stacked weight (x2.003 with 2 imputations, x3.018 with 3).
- ``generate.by`` over an area whose records all weigh 0 raised a raw OverflowError.
- The default ``generate.population`` was the training part's weight over ``1 - holdout``, a random estimate
  (-0.79% on skewed weights; 11.25 for 11 unweighted records) instead of the source's total weight.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError
from microplex._pipeline_areas import _area_conditions
from microplex._pipeline_inputs import base_records
from microplex.datasets import load_dataset
from microplex.pipeline import run_pipeline


def _fused_config(tmp_path, n_imputations: int, holdout_by: str | None = None) -> tuple[dict, pd.DataFrame]:
    """Base ``a`` (re74, a record id ``rid``, weights 4 or 1.5) fused with donor ``b`` (re78)."""
    cps = load_dataset("cps1").sample(1200, random_state=0).reset_index(drop=True)
    half = np.random.default_rng(0).random(len(cps)) < 0.5
    dem = ["age", "educ", "black"]
    a = cps.loc[half, dem + ["re74"]].reset_index(drop=True)
    a["rid"] = np.arange(len(a))
    a["w"] = np.where(a["black"] == 1, 4.0, 1.5)
    b = cps.loc[~half, dem + ["re78"]].assign(wb=2.0)
    a.to_parquet(tmp_path / "a.parquet")
    b.to_parquet(tmp_path / "b.parquet")
    model = {"targets": ["re74", "re78"], "conditions": ["age", "black"], "epochs": 1, "holdout": 0.2}
    if holdout_by:
        model["holdout_by"] = holdout_by
    return {"_base": str(tmp_path), "output": "out", "seed": 0,
            "sources": [{"name": "a", "path": "a.parquet", "weight": "w"},
                        {"name": "b", "path": "b.parquet", "weight": "wb"}],
            "fuse": {"base": "a", "n_imputations": n_imputations, "synthesizer": {"epochs": 1}},
            "model": model, "generate": {"n": 500}}, a


@pytest.mark.parametrize("holdout_by", [None, "black"])
def test_fused_imputations_split_by_base_record_and_count_the_population_once(tmp_path, holdout_by):
    """Before: synthetic weights summed to 2.003 x the base's total; 331 of 403 held-out rows were training records."""
    config, a = _fused_config(tmp_path, 2, holdout_by)
    run_pipeline(config, progress=False)
    out = tmp_path / "out"
    train, holdout = pd.read_parquet(out / "train.parquet"), pd.read_parquet(out / "holdout.parquet")
    assert not set(train["rid"]) & set(holdout["rid"])  # every copy of a base record on one side
    both = pd.concat([train, holdout])
    assert (both.groupby("rid")["_imputation"].apply(sorted).map(tuple) == (0, 1)).all() and both["rid"].nunique() == len(a)
    assert len(holdout) == 2 * round(0.2 * len(a))  # the held-out share is a share of the base records
    assert train.groupby("_imputation").size().tolist() == [len(train) // 2] * 2
    synthetic = pd.read_parquet(out / "synthetic.parquet")
    assert synthetic["weight"].sum() == pytest.approx(a["w"].sum(), rel=1e-12)


def test_fused_table_without_one_copy_per_imputation_is_refused():
    """The split needs the fused table as [fuse] writes it: one base-sized copy per imputation, numbered in order."""
    config = {"fuse": {"base": "a", "n_imputations": 2}}
    good = pd.DataFrame({"x": range(6), "_imputation": [0, 0, 0, 1, 1, 1]})
    assert base_records(config, good) == 3 and base_records({}, good) == 6
    for bad in (good.iloc[:-1], good.drop(columns="_imputation"), good.assign(_imputation=[0, 1, 0, 1, 0, 1])):
        with pytest.raises(DataValidationError, match=r"fused table \(\d rows\).*'_imputation'.*'n_imputations' = 2"):
            base_records(config, bad)


def _silc_by_region(tmp_path, weightless: list[str]) -> dict:
    silc = load_dataset("eusilc")[["db040", "age", "rb090", "py010n", "rb050"]]
    silc = silc[silc["age"] >= 16].sample(3000, random_state=0)
    silc.loc[silc["db040"].isin(weightless), "rb050"] = 0.0  # regions out of scope, weighted out
    silc.to_parquet(tmp_path / "silc.parquet")
    return {"_base": str(tmp_path), "output": "out", "seed": 0,
            "sources": [{"name": "silc", "path": "silc.parquet", "weight": "rb050"}],
            "model": {"targets": ["py010n"], "conditions": ["age", "rb090", "db040"], "epochs": 1},
            "generate": {"n": 1000, "by": "db040"}}


def test_generate_by_leaves_out_an_area_of_weight_zero(tmp_path):
    """Before: OverflowError 'cannot convert float infinity to integer'."""
    run_pipeline(_silc_by_region(tmp_path, ["Burgenland"]), progress=False)
    out = tmp_path / "out"
    synthetic, train = pd.read_parquet(out / "synthetic.parquet"), pd.read_parquet(out / "train.parquet")
    assert len(synthetic) == 1000 and "Burgenland" not in set(synthetic["db040"])
    expected = train.groupby("db040")["rb050"].sum() / train["rb050"].sum() * 1000
    got = synthetic["db040"].value_counts().reindex(expected.index, fill_value=0)
    assert (got - expected).abs().max() < 1 and got["Burgenland"] == 0
    assert set(got[got > 0].index) == set(expected.index) - {"Burgenland"}


def test_area_conditions_of_weightless_areas():
    rng = np.random.default_rng(0)
    conditions = pd.DataFrame({"area": ["a", "a", "b", "c", "c"], "x": [1, 2, 3, 4, 5]})
    # only weightless areas: no area to draw from
    with pytest.raises(DataValidationError, match=r"'generate.by'.*'area'.*weight 0"):
        _area_conditions(conditions, np.zeros(5), 10, "area", rng)
    # a weightless area is left out; the 'n' named for the others counts only areas of positive weight
    weights = np.array([0.0, 0.0, 1.0, 99.0, 0.0])
    with pytest.raises(DataValidationError, match=r"without a record \('b'\).*raise 'generate.n' to 100,"):
        _area_conditions(conditions, weights, 2, "area", np.random.default_rng(1))
    drawn = _area_conditions(conditions, weights, 100, "area", rng)
    assert drawn["area"].value_counts().to_dict() == {"c": 99, "b": 1} and drawn["x"].isin([3, 4]).all()


def _cps_weighted(tmp_path, rows: int = 3000) -> pd.DataFrame:
    src = load_dataset("cps1").sample(rows, random_state=0).reset_index(drop=True)
    src["w"] = np.round(np.random.default_rng(0).lognormal(0, 1.5, len(src)), 3)  # skewed survey weights
    src.to_parquet(tmp_path / "src.parquet")
    return src


def _cps_config(tmp_path, **generate) -> dict:
    return {"_base": str(tmp_path), "output": "out", "seed": 0,
            "sources": [{"name": "s", "path": "src.parquet", "weight": "w"}],
            "model": {"targets": ["re78"], "conditions": ["age", "black"], "epochs": 1},
            "generate": {"n": 1000, **generate}}


def test_default_population_is_the_source_total_weight(tmp_path):
    """Before: 8,325.78 for a source total of 8,391.97 (-0.79%), and 11.25 for 11 unweighted records."""
    src = _cps_weighted(tmp_path)
    run_pipeline(_cps_config(tmp_path), progress=False)
    synthetic = pd.read_parquet(tmp_path / "out" / "synthetic.parquet")
    assert synthetic["weight"].sum() == pytest.approx(src["w"].sum(), rel=1e-12)
    src.head(11).drop(columns="w").to_parquet(tmp_path / "eleven.parquet")
    config = _cps_config(tmp_path, n=100) | {"output": "out11", "sources": [{"name": "s", "path": "eleven.parquet"}]}
    run_pipeline(config, progress=False)
    assert pd.read_parquet(tmp_path / "out11" / "synthetic.parquet")["weight"].sum() == pytest.approx(11, rel=1e-12)


def test_default_population_of_a_streamed_population_is_the_source_total_weight(tmp_path):
    """The calibrate stage's starting weight of a streamed folder: the one target pins the black == 1 records,
    the others keep the source's total over the records generated each."""
    src = _cps_weighted(tmp_path)
    pd.DataFrame({"aggregate": ["count"], "variable": [""], "filter": ["black == 1"],
                  "value": [500.0]}).to_csv(tmp_path / "t.csv", index=False)
    config = _cps_config(tmp_path, partition_by=["black"]) | {"calibrate": {"targets": "t.csv"}}
    run_pipeline(config, progress=False)
    calibrated = pd.read_parquet(tmp_path / "out" / "calibrated")
    others = calibrated.loc[calibrated["black"].astype(int) == 0, "weight"]
    assert len(calibrated) == 1000 and np.allclose(others, src["w"].sum() / 1000, rtol=1e-12, atol=0)


def test_default_households_of_a_household_population_are_the_source_households_weight(tmp_path):
    """Before: the training households' weight over 0.8. The one target pins the households of size 2; the
    others keep the source households' total weight over the households generated each."""
    silc = load_dataset("eusilc")
    silc = silc[silc["db030"] <= 300]
    silc.to_parquet(tmp_path / "silc.parquet")
    (tmp_path / "t.csv").write_text("aggregate,variable,filter,value,entity\ncount,,hsize == 2,60000,household\n")
    config = {"_base": str(tmp_path), "output": "out", "seed": 0,
              "sources": [{"name": "silc", "path": "silc.parquet", "weight": "db090"}],
              "model": {"household_id": "db030", "household_vars": ["db040", "hsize"], "person_vars": ["age", "rb090"],
                        "person_id": "rb030", "size_var": "hsize", "geography": "db040", "age_var": "age",
                        "epochs": 1},
              "generate": {"n_households": 400, "households_per_file": 150, "partition_by": ["db040"]},
              "calibrate": {"targets": "t.csv"}}
    run_pipeline(config, progress=False)
    hh = pd.read_parquet(tmp_path / "out" / "calibrated" / "households")
    others = hh.loc[hh["hsize"] != 2, "weight"]
    total = silc.drop_duplicates("db030")["db090"].sum()
    assert len(others) > 0 and np.allclose(others, total / 400, rtol=1e-12, atol=0)
