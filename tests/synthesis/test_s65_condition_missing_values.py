"""Missing values in numeric conditions are an indicator input (session 65).

acs12's ``hrs_work`` is missing for the 51% of adults not working. As a condition of ``income`` (hours worked
predict earnings) it was refused: "drop or impute those rows first". Dropping them dropped everyone not working
from the population; filling them with 0 hours made the model learn "no hours" and "not working" as one thing.
A numeric condition's missing values are now an indicator column after its standardized value (the value itself is
then the mean of the values given): the networks tell a missing value apart from any value.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError, Synthesizer
from microplex.datasets import load_dataset


def _toy(n: int = 1200, seed: int = 0) -> pd.DataFrame:
    """``y`` follows ``x`` where ``x`` is given and is 10 where ``x`` is missing: a model that reads a missing ``x``
    as its mean (0) draws ``y`` near 0 there."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    gap = rng.random(n) < 0.3
    y = np.where(gap, 10.0, x) + rng.normal(scale=0.2, size=n)
    return pd.DataFrame({"x": np.where(gap, np.nan, x), "y": y})


@pytest.fixture(scope="module")
def toy_model():
    return Synthesizer(["y"], ["x"], epochs=30, verbose=False).fit(_toy(), seed=0)


def test_the_indicator_tells_a_missing_value_from_the_mean(toy_model):
    enc = toy_model.condition_encoder_
    assert enc.missing == ["x"] and enc.n_features == 2
    features = enc.transform(pd.DataFrame({"x": [np.nan, enc.stats["x"][0], 1.0]}))
    mean, std = enc.stats["x"]
    np.testing.assert_allclose(features, [[0.0, 1.0], [0.0, 0.0], [(1.0 - mean) / std, 0.0]], atol=1e-6)
    # the mean and standard deviation are those of the values given
    given = _toy()["x"].dropna()
    np.testing.assert_allclose([mean, std], [given.mean(), given.std(ddof=0)], rtol=1e-9)
    drawn = toy_model.generate(pd.DataFrame({"x": [np.nan] * 400 + [0.0] * 400}), seed=1)["y"].to_numpy()
    assert abs(np.median(drawn[:400]) - 10) < 1.0 and abs(np.median(drawn[400:])) < 1.0


def test_acs12_income_given_hours_that_are_missing_for_those_not_working():
    """The default call on acs12's adults with an income: the zero-income share of those without working hours
    (1.00 in the data) and of those with hours (0.07); filling the hours with 0 drew 0.965 and 0.080 (measured once,
    seed 0, on these training conditions)."""
    acs = load_dataset("acs12")[["income", "hrs_work", "age", "gender", "edu"]].dropna(
        subset=["income", "age", "gender", "edu"]).reset_index(drop=True)
    synth = Synthesizer(["income"], ["hrs_work", "age", "gender", "edu"], verbose=False).fit(acs, seed=0)
    drawn = synth.generate(pd.concat([acs] * 3, ignore_index=True), seed=1)
    off = np.tile(acs["hrs_work"].isna().to_numpy(), 3)
    zero = drawn["income"].to_numpy() == 0
    assert zero[off].mean() > 0.98 and abs(zero[~off].mean() - (acs.loc[acs["hrs_work"].notna(), "income"] == 0).mean()) < 0.03


def test_a_file_keeps_the_indicator_and_draws_the_same_bytes(tmp_path, toy_model):
    toy_model.save(tmp_path / "m.mpx")
    loaded = Synthesizer.load(tmp_path / "m.mpx")
    given = pd.DataFrame({"x": [np.nan, 0.5, np.nan, -1.0]})
    pd.testing.assert_frame_equal(loaded.generate(given, seed=3), toy_model.generate(given, seed=3))
    np.testing.assert_array_equal(loaded.log_prob(given.assign(y=1.0)), toy_model.log_prob(given.assign(y=1.0)))
    assert loaded.sample(300, seed=0)["x"].isna().any()  # the training conditions, missing values included


@pytest.mark.parametrize("edit, field", [
    (lambda m: m["condition_encoder"].update(missing=["y"]), "condition_encoder.missing"),
    (lambda m: m["condition_encoder"].update(missing=[]), "condition_encoder.missing"),
    (lambda m: m["condition_encoder"]["stats"].update(x=[0.0, 1.0]), "condition_encoder.stats.x"),
])
def test_a_tampered_file_is_refused(tmp_path, toy_model, edit, field, edit_model_file):
    toy_model.save(tmp_path / "m.mpx")
    (tmp_path / "bad.mpx").write_bytes(edit_model_file((tmp_path / "m.mpx").read_bytes(), meta_fn=edit).getvalue())
    with pytest.raises(DataValidationError, match=f"field '{field}"):
        Synthesizer.load(tmp_path / "bad.mpx")


def test_nullable_integers_and_a_single_value_beside_missing_ones():
    rng = np.random.default_rng(4)
    n = 400
    children = pd.array(np.where(rng.random(n) < 0.4, pd.NA, rng.integers(0, 3, n)), dtype="Int64")
    single = np.where(rng.random(n) < 0.5, np.nan, 5.0)  # one value and missing ones: two states
    df = pd.DataFrame({"children": children, "single": single, "y": rng.normal(size=n)})
    synth = Synthesizer(["y"], ["children", "single"], epochs=2, verbose=False).fit(df, seed=0)
    assert synth.condition_encoder_.missing == ["children", "single"]
    assert synth.condition_encoder_.stats["single"] == (5.0, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing value is no value beyond the training range
        out = synth.generate(df[["children", "single"]].head(50), seed=0)
    assert out["children"].isna().sum() == df["children"].head(50).isna().sum()
    ranges = synth._condition_ranges()
    assert ranges == {"children": (0.0, 2.0), "single": (5.0, 5.0)}


def test_a_condition_model_draws_the_missing_share():
    df = _toy(2000)
    synth = Synthesizer(["y"], ["x"], epochs=5, condition_model=True, verbose=False).fit(df, seed=0)
    drawn = synth.sample(4000, seed=1)
    assert abs(drawn["x"].isna().mean() - df["x"].isna().mean()) < 0.03


def test_where_missing_values_cannot_be_modelled_they_are_refused():
    df = _toy(300)
    complete = Synthesizer(["y"], ["x"], epochs=1, verbose=False).fit(df.dropna(), seed=0)
    with pytest.raises(DataValidationError, match=r"Condition column 'x' has 2 missing or infinite values; .*given to "
                                                  r"a model only in columns whose training values had some"):
        complete.generate(pd.DataFrame({"x": [np.nan, 1.0, np.nan]}), seed=0)
    with pytest.raises(DataValidationError, match=r"Condition column 'x' has \d+ missing or infinite values; microplex "
                                                  r"models missing values only in a fit without differential privacy"):
        Synthesizer(["y"], ["x"], epsilon=1.0, delta=1e-5, public_bounds={"x": (-4.0, 4.0), "y": (-4.0, 12.0)},
                    verbose=False).fit(df, seed=0)
    weights = df["x"].isna().astype(float)  # the values given are all on records of weight 0
    with pytest.raises(DataValidationError, match="Condition column 'x' has no value on the records of positive weight"):
        Synthesizer(["y"], ["x"], epochs=1, verbose=False).fit(df.assign(w=weights), weight_col="w", seed=0)
    with pytest.raises(DataValidationError, match=r"Condition column 'x' has 1 infinite values"):
        Synthesizer(["y"], ["x"], epochs=1, verbose=False).fit(df.assign(x=df["x"].where(df.index > 0, np.inf)), seed=0)


def test_a_condition_model_file_whose_missing_list_was_swapped_is_refused(tmp_path, edit_model_file):
    """Without a conditions table the loader cannot see which condition had missing values; a list naming another
    condition (as many input columns) loaded and fed each record's indicator to the other condition's place."""
    rng = np.random.default_rng(3)
    df = _toy(600).assign(z=rng.normal(size=600))
    Synthesizer(["y"], ["x", "z"], epochs=1, condition_model=True, verbose=False).fit(df, seed=0).save(tmp_path / "m.mpx")
    swapped = edit_model_file((tmp_path / "m.mpx").read_bytes(), meta_fn=lambda m: m["condition_encoder"].update(missing=["z"]))
    (tmp_path / "bad.mpx").write_bytes(swapped.getvalue())
    with pytest.raises(DataValidationError, match=r"field 'condition_encoder.missing' must list the conditions \['x'\]"):
        Synthesizer.load(tmp_path / "bad.mpx")


def test_fuse_takes_missing_predictors_where_its_donor_had_some_and_names_a_chain_that_had_none():
    from microplex.fusion import Source, fuse

    rng = np.random.default_rng(6)
    n = 300
    x = rng.normal(size=3 * n)
    gap = rng.random(3 * n) < 0.3
    xs = np.where(gap, np.nan, x)
    base = pd.DataFrame({"x": xs[:n]})
    donor = pd.DataFrame({"x": xs[n:2 * n], "y": np.where(gap[n:2 * n], 5.0, x[n:2 * n]) + rng.normal(0, 0.1, n)})
    fast = {"epochs": 30, "verbose": False}
    result = fuse([Source(base, "a"), Source(donor, "b")], base="a", synthesizer_params=fast, holdout_fraction=0)
    y = result.data["y"].to_numpy()
    assert np.median(y[gap[:n]]) > 3 and np.median(y[~gap[:n]]) < 1  # a missing x is told apart from any x
    # a chain: 'b' draws y missing (its records miss some), 'c' conditions on y and has none
    donor_b = pd.DataFrame({"x": x[n:2 * n], "y": np.where(gap[n:2 * n], np.nan, x[n:2 * n])})
    donor_c = pd.DataFrame({"x": x[2 * n:], "y": x[2 * n:], "v": rng.normal(size=n)})
    with pytest.raises(DataValidationError, match=r"Donors \['b'\] draw missing values of \['y'\] \(their records miss "
                                                  r"some\), which donor 'c', conditioning on them, has none of"):
        fuse([Source(pd.DataFrame({"x": x[:n]}), "a"), Source(donor_b, "b"), Source(donor_c, "c")], base="a",
             synthesizer_params=fast, holdout_fraction=0)


@pytest.mark.parametrize("column", ["x", "g"])
def test_a_condition_missing_only_on_records_of_weight_0_takes_no_missing_value(column):
    """Such records are outside the population: the missing input was never learnt (a numeric condition's indicator
    kept its initial weights, and generate drew from them for a missing value given). They are left out, as a
    target's state only records of weight 0 hold; the model then refuses a missing value, naming the column."""
    df = _toy(400).dropna().reset_index(drop=True).assign(g=lambda d: np.where(d.index % 2, "a", "b"), w=1.0)
    df[column] = df[column].astype(object).where(df.index > 4, None) if column == "g" else df[column].where(df.index > 4)
    df.loc[:4, "w"] = 0.0
    synth = Synthesizer(["y"], ["x", "g"], epochs=1, verbose=False).fit(df, weight_col="w", seed=0)
    assert synth.condition_encoder_.missing == []
    assert synth.training_conditions_[column].notna().all() and len(synth.training_conditions_) == len(df) - 5
    with pytest.raises(DataValidationError, match=rf"Condition column '{column}' has 1 missing"):
        synth.generate(df[["x", "g"]].head(1), seed=0)
