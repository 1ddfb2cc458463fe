"""A text column whose values are mostly one record's each (names, ids such as ``"AB12345"``, free text) is
modelled as categories: every drawn value is a category seen in training, so a released file carried real
records' names and ids without a word (400 distinct ids fitted as a target: 100% of the generated ids were
training ids). Only integers written with leading zeros were refused. Now every column drawn as categories (a
target, a condition drawn by the condition model, a household geography allotted by its shares) with at least 20
distinct values of which more than half are one record's each is refused, naming the column and the counts.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from microplex import DataValidationError, HouseholdSynthesizer, Synthesizer
from microplex.cli import app

N = 400


def _frame(n: int = N, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"age": rng.integers(18, 80, n).astype(float),
                         "pid": [f"AB{v:05d}" for v in rng.choice(100_000, n, replace=False)],
                         "occ": rng.choice([f"occupation {k}" for k in range(25)], n),
                         "inc": rng.lognormal(10, 1, n)})


@pytest.mark.parametrize("dtype", ["object", "string", "category"])
def test_a_text_target_of_mostly_unique_values_is_refused(dtype):
    df = _frame().astype({"pid": dtype})
    with pytest.raises(DataValidationError, match=r"Target column 'pid' is modelled as categories and 400 of its 400 "
                                                  r"distinct values .* each held by one record.*Drop the column, or "
                                                  r"map it to a coarser code"):
        Synthesizer(["pid", "inc"], ["age"], epochs=1, verbose=False).fit(df, seed=0)


def test_the_refusal_names_no_value():
    """The values are a record's: the message gives the counts, not an example."""
    df = _frame()
    with pytest.raises(DataValidationError) as err:
        Synthesizer(["pid"], ["age"], epochs=1, verbose=False).fit(df, seed=0)
    assert not any(v in str(err.value) for v in df["pid"])


def test_repeated_or_few_text_values_are_categories_in_silence():
    df = _frame()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        synth = Synthesizer(["occ", "inc"], ["age"], epochs=1, verbose=False).fit(df, seed=0)  # 25 values, repeated
        assert synth.kinds_["occ"] == "categorical"
        few = df.head(19)  # 19 distinct ids: fewer than 20 values are not judged
        Synthesizer(["pid"], ["age"], epochs=1, verbose=False).fit(few, seed=0)
    # exactly half the values one record's each: not more than half, fitted
    half = pd.Series([f"v{k}" for k in range(20)] + [f"v{k}" for k in range(10)] * 5)
    df = pd.DataFrame({"age": np.arange(len(half), dtype=float), "v": half})
    assert (half.value_counts() == 1).sum() * 2 == half.nunique()
    Synthesizer(["v"], ["age"], epochs=1, verbose=False).fit(df, seed=0)


def test_records_of_weight_zero_and_missing_values_are_not_counted():
    """Values only records of weight 0 hold are never drawn; missing values are a state, no copy."""
    df = _frame()
    df["w"] = 1.0
    df["id_or_occ"] = df["occ"]
    df.loc[:199, "id_or_occ"] = df.loc[:199, "pid"]  # 200 ids, each one record's, beside 25 repeated occupations
    synth = Synthesizer(["id_or_occ"], ["age"], epochs=1, verbose=False)
    with pytest.raises(DataValidationError, match=r"200 of its 225 distinct values"):
        synth.fit(df, weight_col="w", seed=0)
    df.loc[:199, "w"] = 0.0  # the ids on records of weight 0 only: 25 repeated values are judged
    synth.fit(df, weight_col="w", seed=0)
    df["w"] = 1.0
    df.loc[:199, "id_or_occ"] = None  # missing instead: not values
    synth.fit(df, weight_col="w", seed=0)


def test_a_condition_drawn_by_the_condition_model_is_refused():
    df = _frame()
    with pytest.raises(DataValidationError, match=r"Condition column 'pid' is modelled as categories \(drawn by the "
                                                  r"condition model\) and 400 of its 400"):
        Synthesizer(["inc"], ["age", "pid"], condition_model=True, epochs=1, verbose=False).fit(df, seed=0)


def test_a_condition_given_at_generation_is_not_judged():
    """Without a condition model the conditions are the user's at generate, not drawn from training."""
    df = _frame()
    Synthesizer(["inc"], ["age", "pid"], epochs=1, verbose=False).fit(df, seed=0)


def test_padded_integers_as_a_drawn_condition_are_refused_naming_the_reading():
    df = _frame().assign(income=lambda d: [f"{v:07d}" for v in np.round(d["inc"]).astype(int)])
    with pytest.raises(DataValidationError, match=r"Condition column 'income' holds integers written with leading "
                                                  r"zeros \('0\d+'\), read as codes.*pd.to_numeric\(df\['income'\]\)"):
        Synthesizer(["inc"], ["age", "income"], condition_model=True, epochs=1, verbose=False).fit(df, seed=0)


def _households(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 4, 300)
    n = int(sizes.sum())
    return pd.DataFrame({"hid": np.repeat(np.arange(300), sizes), "hsize": np.repeat(sizes, sizes),
                         "region": np.repeat(rng.choice(["N", "S", "E"], 300), sizes),
                         "addr": np.repeat([f"{k} Main St" for k in rng.choice(10**5, 300, replace=False)], sizes),
                         "age": rng.integers(20, 80, n).astype(float),
                         "pname": [f"P{v:06d}" for v in rng.choice(10**6, n, replace=False)],
                         "inc": rng.lognormal(10, 1, n)})


def test_a_household_geography_of_mostly_unique_values_is_refused():
    """The geography is allotted by its training shares, not drawn by a Synthesizer: before, every one of 300
    households drawn had a training household's address."""
    df = _households()
    hs = HouseholdSynthesizer(["addr", "hsize"], ["age", "inc"], "hid", size_var="hsize", geography="addr",
                              age_var="age", epochs=1, verbose=False)
    with pytest.raises(DataValidationError, match=r"Geography column 'addr' is modelled as categories \(allotted by "
                                                  r"its weighted training shares\) and 300 of its 300"):
        hs.fit(df, seed=0)


@pytest.mark.parametrize("where", ["household", "person"])
def test_household_and_person_variables_of_mostly_unique_values_are_refused(where):
    df = _households()
    hh, persons, col = ((["region", "hsize", "addr"], ["age", "inc"], "addr") if where == "household"
                        else (["region", "hsize"], ["age", "pname", "inc"], "pname"))
    hs = HouseholdSynthesizer(hh, persons, "hid", size_var="hsize", geography="region", age_var="age", epochs=1,
                              verbose=False)
    with pytest.raises(DataValidationError, match=rf"Target column '{col}' is modelled as categories"):
        hs.fit(df, seed=0)


def test_the_command_line_refuses_an_id_target(tmp_path):
    f = tmp_path / "d.csv"
    _frame().to_csv(f, index=False)
    r = CliRunner().invoke(app, ["fit", str(f), "--targets", "pid,inc", "--conditions", "age", "-o",
                                 str(tmp_path / "m.mpx"), "--epochs", "1", "-q"])
    assert r.exit_code == 1 and "Target column 'pid' is modelled as categories and 400 of its 400" in r.output


def test_a_pipeline_refuses_an_id_target(tmp_path):
    from microplex.pipeline import run_pipeline

    _frame().to_csv(tmp_path / "train.csv", index=False)
    config = {"_base": str(tmp_path), "output": "out", "seed": 0, "sources": [{"name": "s", "path": "train.csv"}],
              "model": {"targets": ["pid", "inc"], "conditions": ["age"], "epochs": 1}, "generate": {"n": 50}}
    with pytest.raises(DataValidationError, match=r"Target column 'pid' is modelled as categories"):
        run_pipeline(config, progress=False)


def test_fuse_refuses_a_donor_id_variable():
    """``fuse`` draws a donor's variables from a Synthesizer: a donor's ids would be copied onto the base records."""
    from microplex.fusion import Source, fuse

    df = _frame()
    base, donor = Source(df[["age", "inc"]], "base"), Source(df[["age", "pid"]], "donor")
    with pytest.raises(DataValidationError, match=r"donor 'donor'.*Target column 'pid' is modelled as categories"):
        fuse([base, donor], base="base", synthesizer_params={"epochs": 1, "verbose": False})
