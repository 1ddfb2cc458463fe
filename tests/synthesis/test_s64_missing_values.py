"""Missing values in numeric targets are a state of their own (session 64).

Real surveys leave values missing where they do not apply: acs12's ``hrs_work`` is missing for 52% of the
records (those not in the labour force), ``time_to_work`` for those who do not commute. ``Synthesizer.fit``
refused every missing value ("drop or impute those rows first"): dropping them dropped everyone not working from
the population, imputing them invented hours. A numeric target's missing values are now one more state of its
encoder, modelled jointly with the point masses of the other targets and given the conditions, and drawn as NaN.
"""

from __future__ import annotations

import json
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError, Synthesizer, VariableSpec
from microplex.datasets import load_dataset


def _weighted_share(mask: pd.Series, w: pd.Series | None = None) -> float:
    w = pd.Series(1.0, index=mask.index) if w is None else w
    return float(w[mask].sum() / w.sum())


@pytest.fixture(scope="module")
def acs():
    return load_dataset("acs12")[["hrs_work", "income", "employment", "age", "gender"]].dropna(subset=["income", "employment"])


@pytest.fixture(scope="module")
def fitted(acs):
    synth = Synthesizer(["hrs_work", "income"], ["employment", "age", "gender"], verbose=False)  # the default epochs
    return synth.fit(acs, seed=0)


def test_missing_values_are_drawn_at_their_share_given_the_conditions(acs, fitted):
    assert fitted.missing_vars_ == ["hrs_work"]
    assert fitted.encoders_["hrs_work"].missing and not fitted.encoders_["income"].missing
    drawn = fitted.generate(acs[["employment", "age", "gender"]], seed=1)
    real_share, drawn_share = acs["hrs_work"].isna().mean(), drawn["hrs_work"].isna().mean()
    assert 0.35 < real_share < 0.6 and abs(drawn_share - real_share) < 0.03
    # given the conditions: those not in the labour force have no hours, the employed have hours
    by_real = acs["hrs_work"].isna().groupby(acs["employment"]).mean()
    by_drawn = drawn["hrs_work"].isna().groupby(drawn["employment"]).mean()
    assert by_real["not in labor force"] > 0.85 and by_real["employed"] < 0.05
    big = ["employed", "not in labor force"]  # 1,330 and 164 records (the unemployed: 106)
    assert (by_drawn[big] - by_real[big]).abs().max() < 0.05, (by_real, by_drawn)
    # the hours given are drawn as before: finite, positive (the segment is bounded by 0), with the heap at 40
    hours = drawn["hrs_work"].dropna()
    assert np.isfinite(hours).all() and (hours > 0).all() and (hours <= 99).mean() > 0.99
    assert abs((hours == 40).mean() - (acs["hrs_work"].dropna() == 40).mean()) < 0.06
    assert drawn["income"].notna().all()


def test_a_model_with_missing_values_saves_loads_and_scores(tmp_path, acs, fitted):
    fitted.save(tmp_path / "m.mpx")
    loaded = Synthesizer.load(tmp_path / "m.mpx")
    assert loaded.missing_vars_ == ["hrs_work"]
    a, b = fitted.sample(500, seed=3), loaded.sample(500, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert a["hrs_work"].isna().any()
    lp = loaded.log_prob(acs.head(200))  # records with and without hours
    assert np.isfinite(lp).all() and acs.head(200)["hrs_work"].isna().any()
    with zipfile.ZipFile(tmp_path / "m.mpx") as z:
        meta = json.loads(z.read("metadata.json"))
    assert meta["encoders"]["hrs_work"]["missing"] is True and "missing" not in meta["encoders"]["income"]


def _edited(model: Path, out: Path, edit: Callable[[dict], None]) -> dict:
    """Writes ``model`` to ``out`` with its metadata passed through ``edit``; returns the metadata as saved."""
    with zipfile.ZipFile(model) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    saved = json.loads(parts["metadata.json"])
    meta = json.loads(parts["metadata.json"])
    edit(meta)
    parts["metadata.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(out, "w") as z:
        for n, blob in parts.items():
            z.writestr(n, blob)
    return saved


@pytest.mark.parametrize("value", [False, "yes", 1])
def test_a_tampered_missing_flag_is_refused(tmp_path, fitted, value):
    fitted.save(tmp_path / "m.mpx")
    _edited(tmp_path / "m.mpx", tmp_path / "t.mpx", lambda m: m["encoders"]["hrs_work"].update(missing=value))
    with pytest.raises(DataValidationError, match=r"encoders\.hrs_work\.missing"):
        Synthesizer.load(tmp_path / "t.mpx")


def test_nullable_columns_keep_their_dtype_and_missing_values():
    rng = np.random.default_rng(0)
    n = 600
    x = rng.integers(0, 200, n).astype(float)
    x[rng.random(n) < 0.3] = np.nan
    df = pd.DataFrame({"count": pd.array(x, dtype="Float64").astype("Int64"), "amount": pd.array(x * 1.5, dtype="Float64"),
                       })
    synth = Synthesizer(["count", "amount"], epochs=2, verbose=False).fit(df, seed=0)
    assert synth.kinds_ == {"count": "integer", "amount": "continuous"}  # inferred from the dtypes given
    drawn = synth.sample(400, seed=1)
    assert str(drawn["count"].dtype) == "Int64" and str(drawn["amount"].dtype) == "Float64"
    assert drawn["count"].isna().any() and drawn["count"].notna().any()
    # the two columns are missing together in the data: the pattern head (its prior: the training shares of the
    # patterns) draws them together
    assert (drawn["count"].isna() == drawn["amount"].isna()).mean() > 0.95


def test_a_target_without_missing_values_writes_the_file_as_before(cps1):
    synth = Synthesizer(["re78"], ["age"], epochs=1, verbose=False).fit(cps1.head(300), seed=0)
    assert synth.missing_vars_ == [] and "missing" not in synth.encoders_["re78"].to_dict()


@pytest.mark.parametrize("frame, kwargs, message", [
    (lambda d: d.assign(age=np.nan), {}, r"Condition column 'age' has no value on the records of positive weight"),
    (lambda d: d.assign(re78=np.nan), {}, r"Target column 're78' has no value on the records of positive weight"),
    (lambda d: d.assign(re78=d["re78"].where(d.index % 4 > 0, np.inf)), {}, r"Target column 're78' has \d+ infinite values"),
])
def test_missing_values_where_they_cannot_be_modelled_are_refused(cps1, frame, kwargs, message):
    data = frame(cps1.head(200).reset_index(drop=True))
    targets = kwargs.get("targets", ["re78"])
    with pytest.raises(DataValidationError, match=message):
        Synthesizer(targets, ["age"], epochs=1, verbose=False).fit(data, seed=0)


def test_categorical_targets_keep_their_missing_values(tmp_path):
    """Text, category and few-valued integer targets: the missing values are a state after the categories, drawn
    as the dtype's missing value, jointly with the other targets (here: missing together)."""
    rng = np.random.default_rng(2)
    n = 800
    gone = rng.random(n) < 0.25
    df = pd.DataFrame({
        "tenure": pd.Series(np.where(gone, None, rng.choice(["own", "rent"], n)), dtype=object),
        "region": pd.Categorical(np.where(gone, None, rng.choice(["n", "s", "e"], n)), categories=["e", "n", "s", "w"]),
        "kids": pd.array(np.where(gone, np.nan, rng.integers(0, 4, n)), dtype="Float64").astype("Int64"),
        "label": pd.array(np.where(gone, None, rng.choice(["a", "b"], n)), dtype="string"),
    })
    synth = Synthesizer(["tenure", "region", "kids", "label"], epochs=1, verbose=False).fit(df, seed=0)
    assert set(synth.kinds_.values()) == {"categorical"} and all(e.missing for e in synth.encoders_.values())
    drawn = synth.sample(2000, seed=1)
    # the dtypes as without missing values (text given as object comes back as pandas' text dtype)
    plain = Synthesizer(["tenure", "label"], epochs=1, verbose=False).fit(df.dropna(), seed=0).sample(5, seed=0)
    assert {n: str(t) for n, t in drawn.dtypes.items()} == {"tenure": str(plain["tenure"].dtype), "region": "category",
                                                           "kids": "Int64", "label": "string"}
    assert list(drawn["region"].cat.categories) == ["e", "n", "s", "w"]
    missing = drawn.isna()
    assert 0.2 < missing["tenure"].mean() < 0.3 and missing.eq(missing["tenure"], axis=0).all().all()
    assert set(drawn["tenure"].dropna()) == {"own", "rent"} and set(drawn["kids"].dropna()) <= {0, 1, 2, 3}
    synth.save(tmp_path / "m.mpx")
    pd.testing.assert_frame_equal(Synthesizer.load(tmp_path / "m.mpx").sample(300, seed=4), synth.sample(300, seed=4))


def test_an_integer_target_declared_so_keeps_its_missing_values():
    rng = np.random.default_rng(1)
    kids = pd.array(np.where(rng.random(500) < 0.2, np.nan, rng.integers(0, 4, 500)), dtype="Float64").astype("Int64")
    df = pd.DataFrame({"kids": kids, "age": rng.integers(20, 60, 500)})
    synth = Synthesizer(["kids"], ["age"], epochs=2, verbose=False, schema={"kids": VariableSpec(kind="integer")})
    drawn = synth.fit(df, seed=0).sample(1000, seed=1)
    assert str(drawn["kids"].dtype) == "Int64" and 0.1 < drawn["kids"].isna().mean() < 0.3
    assert set(drawn["kids"].dropna().astype(int)) <= {0, 1, 2, 3}


def test_a_dp_fit_refuses_missing_values(cps1):
    data = cps1.head(300).reset_index(drop=True)
    data["re78"] = data["re78"].where(data.index % 5 > 0)
    synth = Synthesizer(["re78"], [], epsilon=1.0, delta=1e-5, public_bounds={"re78": (0.0, 30000.0)}, verbose=False)
    with pytest.raises(DataValidationError, match=r"Target column 're78' has \d+ missing or infinite values; microplex "
                                                  r"models missing values only in a fit without differential privacy"):
        synth.fit(data, seed=0)


def test_a_pipeline_keeps_the_rows_whose_missing_values_the_model_draws(tmp_path, acs):
    """`dropna` (default true) dropped every row with a missing model column: acs12's pipeline trained on the 48%
    of records with working hours only, and its population had no one out of work. The rows a numeric target misses
    stay (the model draws the state); so do (session 65) those a condition misses, unless it names areas (here
    `holdout_by`)."""
    from microplex.pipeline import run_pipeline

    data = acs.head(600).reset_index(drop=True)
    data.loc[:9, "gender"] = None  # the holdout_by column: those rows are dropped
    data.loc[10:14, "age"] = np.nan  # a numeric condition: those rows are kept
    data.to_parquet(tmp_path / "acs.parquet")
    config = {"_base": str(tmp_path), "output": "out", "seed": 0, "sources": [{"name": "acs", "path": "acs.parquet"}],
              "model": {"targets": ["hrs_work", "income"], "conditions": ["age", "gender"], "epochs": 3, "holdout": 0.1,
                        "holdout_by": "gender"},
              "generate": {"n": 2000}}
    with pytest.warns(UserWarning, match=r"Source 'acs' \(acs.parquet\): 10 of 600 records miss values of "
                                         r"\{'gender': 10\} and are dropped \('dropna', default true\)"):
        run_pipeline(config, progress=False)
    out = tmp_path / "out"
    kept = pd.concat([pd.read_parquet(out / "train.parquet"), pd.read_parquet(out / "holdout.parquet")])
    assert len(kept) == 590 and kept["gender"].notna().all() and kept["age"].isna().sum() == 5
    assert kept["hrs_work"].isna().sum() == data.loc[10:, "hrs_work"].isna().sum() > 200
    population = pd.read_parquet(out / "synthetic.parquet")
    assert 0.1 < population["hrs_work"].isna().mean() < 0.6  # before: none (3 epochs: the head is still learning)
    # a list of columns drops the rows missing them too (a column a calibration target filters on)
    listed = {**config, "output": "out2", "sources": [{**config["sources"][0], "dropna": ["hrs_work"]}],
              "generate": {"n": 200}}
    with pytest.warns(UserWarning, match=r"records miss values of \{'gender': 10, 'hrs_work': \d+\} and are dropped"):
        run_pipeline(listed, progress=False)
    assert pd.read_parquet(tmp_path / "out2" / "train.parquet")["hrs_work"].notna().all()
    with pytest.raises(DataValidationError, match=r"The 'dropna' columns \['hours'\] are not columns of source 'acs'"):
        run_pipeline({**listed, "output": "out3", "sources": [{**config["sources"][0], "dropna": ["hours"]}]},
                     progress=False)
    # with DP the model draws no missing state: those rows are dropped
    from microplex._pipeline_inputs import _source_frame

    src = config["sources"][0]
    dp = {**config, "model": {**config["model"], "epsilon": 1.0}}
    assert len(_source_frame(dp, src, tmp_path / "acs.parquet")) == data.iloc[15:]["hrs_work"].notna().sum()
    assert len(_source_frame(config, src, tmp_path / "acs.parquet")) == 590


def test_fuse_models_the_donor_records_missing_values(acs):
    """fuse did not model missing values: it fitted the donor on the records with hours only (an info log line
    nobody sees; session 64: a warning), then imputed hours for every base record, those out of work included.
    Session 65: the donor's missing hours are a state of its model, drawn given the predictors (employment, itself
    missing for some records of both sources)."""
    from microplex.fusion import Source, fuse

    data = load_dataset("acs12").dropna(subset=["income"]).reset_index(drop=True)
    base = data.iloc[:900][["age", "gender", "employment", "income"]].reset_index(drop=True)
    donor = data.iloc[900:][["age", "gender", "employment", "hrs_work"]].reset_index(drop=True)
    assert base["employment"].isna().any() and donor["employment"].isna().any()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no record is left out
        result = fuse([Source(base, "base"), Source(donor, "donor")], base="base", seed=0)
    fused = result.data
    real = donor["hrs_work"].isna().groupby(donor["employment"].fillna("(missing)")).mean()
    drawn = fused["hrs_work"].isna().groupby(fused["employment"].fillna("(missing)")).mean()
    # before: every base record got hours; no donor record of the employed misses them, a structural zero (session 66)
    assert real["employed"] == 0 and drawn["employed"] == 0
    assert abs(drawn["not in labor force"] - real["not in labor force"]) < 0.05
    # 8 donor and 10 base records miss employment (too few for a structural zero): drawn 0.8-1.0 over seeds 0-2,
    # twice the overall missing share (0.42)
    assert drawn["(missing)"] >= 0.8 and real["(missing)"] == 1.0
    assert result.diagnostics["missing_error"].iloc[0] < 0.05


def _text_target_model():
    rng = np.random.default_rng(5)
    tenure = pd.Series(np.where(rng.random(400) < 0.3, None, rng.choice(["own", "rent"], 400)), dtype=object)
    df = pd.DataFrame({"tenure": tenure, "age": rng.integers(20, 70, 400)})
    return Synthesizer(["tenure"], ["age"], epochs=1, verbose=False).fit(df, seed=0)


def test_a_tampered_missing_flag_of_a_categorical_target_is_refused(tmp_path):
    synth = _text_target_model()
    synth.save(tmp_path / "m.mpx")
    saved = _edited(tmp_path / "m.mpx", tmp_path / "t.mpx", lambda m: m["encoders"]["tenure"].update(missing="yes"))
    assert saved["encoders"]["tenure"]["missing"] is True
    with pytest.raises(DataValidationError, match=r"encoders\.tenure\.missing"):
        Synthesizer.load(tmp_path / "t.mpx")


def test_missing_values_stream_to_a_dataset(tmp_path):
    """Streamed generation writes the missing values as nulls, block after block (a block may hold none)."""
    from microplex.scale import generate_dataset

    synth = _text_target_model()
    generate_dataset(synth, n=3000, path=tmp_path / "pop", rows_per_file=500, seed=0, progress=False)
    pop = pd.read_parquet(tmp_path / "pop")
    assert len(pop) == 3000 and 0.2 < pop["tenure"].isna().mean() < 0.4
    assert set(pop["tenure"].dropna()) == {"own", "rent"}


def test_a_categorical_condition_keeps_its_missing_values(tmp_path, acs):
    """acs12's `employment` is missing for a fifth of the records; as a condition it was refused (drop those rows).
    Its missing values are now one more one-hot input: given at generate, resampled by sample, drawn by the
    condition model; a condition that had none in training refuses them at generate."""
    data = load_dataset("acs12")[["income", "employment", "age", "gender"]]  # income is missing with employment
    assert 0.1 < data["employment"].isna().mean() < 0.3
    synth = Synthesizer(["income"], ["employment", "age", "gender"], verbose=False).fit(data, seed=0)
    assert synth.condition_encoder_.missing == ["employment"]
    drawn = synth.generate(data[["employment", "age", "gender"]], seed=1)
    zero = lambda f: (f["income"] == 0).groupby(f["employment"].isna()).mean()  # noqa: E731
    assert abs(zero(drawn)[False] - zero(data)[False]) < 0.05 and drawn["employment"].isna().sum() == \
        data["employment"].isna().sum()
    resampled = synth.sample(2000, seed=2)
    assert abs(resampled["employment"].isna().mean() - data["employment"].isna().mean()) < 0.04
    synth.save(tmp_path / "m.mpx")
    loaded = Synthesizer.load(tmp_path / "m.mpx")
    pd.testing.assert_frame_equal(loaded.sample(300, seed=3), synth.sample(300, seed=3))
    assert np.isfinite(loaded.log_prob(data.head(200))).all() and data.head(200)["employment"].isna().any()
    with pytest.raises(DataValidationError, match="Condition column 'gender' has 1 missing"):
        synth.generate(data[["employment", "age", "gender"]].head(5).assign(gender=[None, "male", "male", "f", "m"]))
    # fully synthetic: the condition model draws the missing state at its share
    full = Synthesizer(["income"], ["employment", "age"], condition_model=True, epochs=5, verbose=False)
    share = full.fit(data, seed=0).sample(4000, seed=1)["employment"].isna().mean()
    assert abs(share - data["employment"].isna().mean()) < 0.04
    # an edited file is refused
    saved = _edited(tmp_path / "m.mpx", tmp_path / "t.mpx",
                    lambda m: m["condition_encoder"].update(missing=["gender", "gender"]))
    assert saved["condition_encoder"]["missing"] == ["employment"]
    with pytest.raises(DataValidationError, match=r"condition_encoder\.missing"):
        Synthesizer.load(tmp_path / "t.mpx")


def test_a_column_the_model_draws_missing_cannot_partition_a_dataset(tmp_path):
    """pandas cannot read back a hive dataset partitioned by a column with missing values ("Cannot yet unify
    dictionaries with nulls"): partitioning by a target the model draws missing is refused before writing."""
    from microplex.scale import generate_dataset

    synth = _text_target_model()
    with pytest.raises(DataValidationError, match=r"Partition column 'tenure' may hold missing values"):
        generate_dataset(synth, n=100, path=tmp_path / "pop", partition_by=["tenure"], progress=False)
    assert not (tmp_path / "pop").exists()
