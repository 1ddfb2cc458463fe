"""A pipeline's `dropna` and the missing values its models take (session 65).

A household pipeline with a person variable missing for children (EU-SILC's ``py010n``, as in the households
guide) dropped every household with a child, silently: `dropna` (default true) dropped the households of which
some person missed a model column, although the household model takes "not applicable below an age".
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from microplex.datasets import load_dataset


@pytest.fixture()
def silc(tmp_path):
    data = load_dataset("eusilc")
    data = data[data["db030"] <= 400].reset_index(drop=True)
    return tmp_path, data


def _config(tmp_path, person_vars=("age", "rb090", "py010n")):
    return {"_base": str(tmp_path), "output": "out", "seed": 0,
            "sources": [{"name": "silc", "path": "silc.parquet", "weight": "db090"}],
            "model": {"household_id": "db030", "household_vars": ["db040", "hsize"], "person_vars": list(person_vars),
                      "person_id": "rb030", "size_var": "hsize", "geography": "db040", "age_var": "age", "epochs": 1,
                      "hidden_features": [8], "transforms": 1},
            "generate": {"n_households": 200}}


def test_a_household_pipeline_keeps_the_children_whose_incomes_do_not_apply(silc):
    from microplex._pipeline_inputs import _source_frame
    from microplex.pipeline import run_pipeline

    folder, data = silc
    children = int((data["age"] < 16).sum())
    assert children > 100 and data.loc[data["age"] < 16, "py010n"].isna().all()
    data.to_parquet(folder / "silc.parquet")
    config = _config(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # nothing is dropped
        kept = _source_frame(config, config["sources"][0], folder / "silc.parquet")
    assert len(kept) == len(data) and int((kept["age"] < 16).sum()) == children  # before: 0 children
    run_pipeline(config, progress=False)
    persons = pd.read_parquet(folder / "out" / "population" / "persons")
    assert (persons["age"] < 16).mean() > 0.05 and persons.loc[persons["age"] < 16, "py010n"].isna().all()


def test_a_missing_value_at_an_age_where_others_have_one_drops_the_household_with_a_warning(silc):
    from microplex._pipeline_inputs import _source_frame

    folder, data = silc
    adult = int(np.flatnonzero((data["age"] > 40).to_numpy())[0])
    household = data.loc[adult, "db030"]
    data.loc[adult, "py010n"] = np.nan  # item nonresponse of an adult: the household model does not take it
    data.loc[data.index[-1], "rb090"] = None
    data.to_parquet(folder / "silc.parquet")
    config = _config(folder)
    last = data.loc[data.index[-1], "db030"]
    gone = data["db030"].isin([household, last])
    with pytest.warns(UserWarning, match=rf"Source 'silc' \(silc.parquet\): 2 of {data['db030'].nunique()} households "
                                         rf"\({int(gone.sum())} persons\) have persons missing values of "
                                         r"\{'rb090': 1, 'py010n': 1\} and are dropped whole"):
        kept = _source_frame(config, config["sources"][0], folder / "silc.parquet")
    assert len(kept) == int((~gone).sum()) and not kept["db030"].isin([household, last]).any()


def test_a_condition_a_calibration_target_filters_on_drops_its_missing_rows_before_fitting(tmp_path):
    """Session 65 keeps the rows missing a condition; calibration refuses missing values in a column a target
    filters on (no filter tells whether they match), so a pipeline with counts by employment failed at its
    calibrate stage, after fitting and generating. Those rows are dropped up front, with the warning."""
    from microplex.pipeline import run_pipeline

    acs = load_dataset("acs12")[["income", "hrs_work", "employment", "age", "gender"]].dropna(subset=["income"])
    acs = acs.head(800).reset_index(drop=True)
    n_missing = int(acs["employment"].isna().sum())
    assert n_missing > 5 and acs["hrs_work"].isna().sum() > 100
    acs.to_parquet(tmp_path / "acs.parquet")
    shares = acs["employment"].value_counts()
    rows = [f"count,,employment == {e},{float(v) * 10}" for e, v in shares.items()]
    (tmp_path / "t.csv").write_text("aggregate,variable,filter,value\n" + "\n".join(rows) + "\n")
    config = {"_base": str(tmp_path), "output": "out", "seed": 0, "sources": [{"name": "acs", "path": "acs.parquet"}],
              "model": {"targets": ["income", "hrs_work"], "conditions": ["employment", "age", "gender"], "epochs": 2},
              "generate": {"n": 1000}, "calibrate": {"targets": "t.csv"}}
    with pytest.warns(UserWarning, match=rf"Source 'acs' \(acs.parquet\): {n_missing} of 800 records miss values of "
                                         rf"\{{'employment': {n_missing}\}} and are dropped"):
        result = run_pipeline(config, progress=False)
    assert result.stages["calibrate"]["status"] == "ran"
    calibrated = pd.read_parquet(tmp_path / "out" / "calibrated.parquet")
    assert calibrated["employment"].notna().all() and calibrated["hrs_work"].isna().any()
