"""Data types and missing values that round-trip (session 72).

1. A float income held in an object column (``df.replace({np.nan: None})``, a common step before SQL or JSON)
   was modelled as hundreds of categories: every draw a copy of a training income, the missing share 0.002 for
   0.289 in the data. Such a column is now refused, naming ``pd.to_numeric``, unless declared categorical.
2. ``sample`` (and ``generate_dataset`` without conditions) drew nullable ``Int64``/``Float64`` conditions with
   missing values as float64 (``generate`` kept them): the stored training conditions were the float64 copy the
   encoders read. They keep the training dtype, also after ``save``/``load``.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError, Synthesizer, VariableSpec
from microplex.fusion import Source, fuse

FAST = {"epochs": 1, "hidden_features": (8,), "transforms": 1, "verbose": False}


def _incomes(n: int = 300) -> pd.DataFrame:
    """An income with 30% missing values and a covariate, as float64."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=n)
    inc = np.round(rng.lognormal(3 + 0.3 * x, 1, n), 2)
    inc[rng.random(n) < 0.3] = np.nan
    return pd.DataFrame({"x": x, "inc": inc})


# -- 1. numbers in an object column --------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["target", "condition"])
def test_numbers_in_an_object_column_are_refused_naming_to_numeric(role):
    df = _incomes()
    first = float(df["inc"].dropna().iloc[0])
    df["inc"] = df["inc"].replace({np.nan: None})  # the whole frame's replace turns x into objects too
    assert df["inc"].dtype == object and {type(v) for v in df["inc"]} == {float, type(None)}
    targets, conditions = (["inc"], ["x"]) if role == "target" else (["x"], ["inc"])
    with pytest.raises(DataValidationError, match=(
            rf"{role.capitalize()} column 'inc' holds numbers in a column of dtype object \(e\.g\. {re.escape(repr(first))}\).*"
            r"pd\.to_numeric\(df\['inc'\]\).*VariableSpec\(kind='categorical'\)")):
        Synthesizer(targets, conditions, **FAST).fit(df, seed=0)  # before: kind 'categorical', one per value
    # the conversion the message names fits the column as numbers
    converted = df.assign(inc=pd.to_numeric(df["inc"]))
    assert converted["inc"].dtype == np.float64
    synth = Synthesizer(targets, conditions, **FAST).fit(converted, seed=0)
    assert synth.kinds_["inc"] == "continuous"


def test_integers_in_an_object_column_are_refused_too():
    df = _incomes().assign(kids=lambda d: pd.Series((np.arange(len(d)) % 40).tolist(), dtype=object))
    with pytest.raises(DataValidationError, match=r"Target column 'kids' holds numbers in a column of dtype object"):
        Synthesizer(["kids"], ["x"], **FAST).fit(df, seed=0)


def test_numbers_in_an_object_column_declared_categorical_are_categories():
    df = _incomes().assign(code=lambda d: pd.Series((np.arange(len(d)) % 3 + 1).tolist(), dtype=object))
    synth = Synthesizer(["code"], ["x"], schema={"code": VariableSpec(kind="categorical")}, **FAST).fit(df, seed=0)
    assert synth.kinds_["code"] == "categorical"
    drawn = synth.sample(50, seed=1)["code"]
    assert drawn.dtype == object and set(drawn) <= {1, 2, 3}
    # a declared condition too
    synth = Synthesizer(["x"], ["code"], schema={"code": VariableSpec(kind="categorical")}, **FAST).fit(df, seed=0)
    assert synth.kinds_["code"] == "categorical"


def test_bools_and_text_in_an_object_column_stay_categories():
    df = _incomes().dropna().reset_index(drop=True)
    df["flag"] = pd.Series((df["x"] > 0).tolist(), dtype=object)
    df["tenure"] = pd.Series(np.where(df["x"] > 0.5, "own", "rent"), dtype=object)
    synth = Synthesizer(["flag", "tenure"], ["x"], **FAST).fit(df, seed=0)
    assert synth.kinds_ == {"flag": "categorical", "tenure": "categorical", "x": "continuous"}


def test_fuse_refuses_numbers_in_an_object_column_of_a_source():
    rng = np.random.default_rng(1)
    x = rng.normal(size=400)
    a = pd.DataFrame({"x": x[:200], "y": x[:200] + rng.normal(size=200)})
    b = pd.DataFrame({"x": x[200:], "z": pd.Series((2 * x[200:] + rng.normal(size=200)).tolist(), dtype=object)})
    with pytest.raises(DataValidationError, match=r"Source 'b' column 'z' holds numbers in a column of dtype object"):
        fuse([Source(a, "a"), Source(b, "b")], base="a", synthesizer_params=FAST)
    # declared categorical through the donor models' schema: fused
    codes = b.assign(z=pd.Series(np.where(x[200:] > 0, 1, 2).tolist(), dtype=object))
    fused = fuse([Source(a, "a"), Source(codes, "b")], base="a",
                 synthesizer_params={**FAST, "schema": {"z": VariableSpec(kind="categorical")}})
    assert set(fused.data["z"]) <= {1, 2}


# -- 2. nullable conditions with missing values keep their dtype in sample -----------------------------------------
def _nullable_conditions(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "y": rng.lognormal(3, 1, n),
        "age": pd.array(np.where(rng.random(n) < 0.2, None, rng.integers(0, 90, n)), dtype="Int64"),
        "inc": pd.array(np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)), dtype="Float64"),
        "agefull": pd.array(rng.integers(0, 90, n), dtype="Int64"),
    })


NULLABLE = {"age": "Int64", "inc": "Float64", "agefull": "Int64"}


def test_sample_keeps_nullable_conditions_with_missing_values_in_their_dtype(tmp_path):
    df = _nullable_conditions()
    synth = Synthesizer(["y"], ["age", "inc", "agefull"], **FAST).fit(df, seed=0)
    assert {n: str(d) for n, d in synth.training_conditions_.dtypes.items()} == NULLABLE
    drawn = synth.sample(400, seed=1)
    # before: age float64, inc float64 (agefull, without missing values, stayed Int64)
    assert {n: str(drawn[n].dtype) for n in NULLABLE} == NULLABLE
    assert 0 < drawn["age"].isna().sum() < 400 and 0 < drawn["inc"].isna().sum() < 400
    # the resampled rows are training rows, values and missing values alike
    pd.testing.assert_frame_equal(synth.training_conditions_, df[["age", "inc", "agefull"]])
    path = tmp_path / "m.mpx"
    synth.save(path)
    loaded = Synthesizer.load(path)
    pd.testing.assert_frame_equal(loaded.training_conditions_, synth.training_conditions_)
    pd.testing.assert_frame_equal(loaded.sample(400, seed=1), drawn)
    # generate with the conditions as given, as before
    given = synth.generate(df[["age", "inc", "agefull"]], seed=0)
    assert {n: str(given[n].dtype) for n in NULLABLE} == NULLABLE


def test_a_nullable_condition_keeps_its_dtype_when_records_of_weight_0_are_left_out():
    df = _nullable_conditions().assign(w=1.0)
    df["cond"] = pd.array(np.where(np.arange(len(df)) < 5, None, np.arange(len(df)) % 7), dtype="Int64")
    df.loc[:4, "w"] = 0.0  # cond missing only on records of weight 0: they are left out
    synth = Synthesizer(["y"], ["age", "cond"], **FAST).fit(df, weight_col="w", seed=0)
    kept = synth.training_conditions_
    assert str(kept["age"].dtype) == "Int64" and str(kept["cond"].dtype) == "Int64" and len(kept) == len(df) - 5
    pd.testing.assert_frame_equal(kept, df[["age", "cond"]].iloc[5:].reset_index(drop=True))


def test_generate_dataset_without_conditions_writes_nullable_conditions_in_their_dtype(tmp_path):
    from microplex.io import read_table
    from microplex.scale import dataset_schema, generate_dataset

    synth = Synthesizer(["y"], ["age", "inc", "agefull"], **FAST).fit(_nullable_conditions(), seed=0)
    pop = tmp_path / "pop"
    generate_dataset(synth, n=100, path=pop, progress=False)
    types = {f.name: str(f.type) for f in dataset_schema(pop)}
    assert (types["age"], types["inc"], types["agefull"]) == ("int64", "double", "int64")  # before: age double
    back = read_table(pop)
    assert {n: str(back[n].dtype) for n in NULLABLE} == NULLABLE
