"""The fully synthetic mode: ``Synthesizer(condition_model=True)`` draws conditions from a model.

``sample`` must never copy real condition rows, the estimator and its model file keep no training
row or weight, the saved condition model is validated as untrusted data, and files of the default
settings keep their former layout (no ``condition_model`` parameter, a ``conditions`` table).
"""

import json
import warnings
import zipfile

import pandas as pd
import pytest

from microplex import DataValidationError, Synthesizer
from microplex.datasets import load_dataset
from microplex.evaluation import exact_copy_rate
from microplex.scale.sources import as_source

CONDITIONS = ["age", "educ", "black", "marr", "re74"]


@pytest.fixture(scope="module")
def split():
    df = load_dataset("cps1").sample(3000, random_state=1).reset_index(drop=True)
    return df.iloc[:2000].reset_index(drop=True), df.iloc[2000:].reset_index(drop=True)


def _synth(**kw):
    kw = {"epochs": 15, **kw}
    return Synthesizer(["re78"], CONDITIONS, hidden_features=(16,), transforms=1, verbose=False, **kw)


@pytest.fixture(scope="module")
def fitted(split):
    return _synth(condition_model=True).fit(split[0], seed=0)


def test_sample_never_copies_real_condition_rows(split, fitted):
    train, holdout = split
    default = _synth().fit(train, seed=0).sample(1000, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = fitted.sample(1000, seed=1)
    assert list(out.columns) == CONDITIONS + ["re78"]
    assert out[CONDITIONS].dtypes.equals(train[CONDITIONS].dtypes)
    # The default mode resamples real condition tuples: every one is a training tuple. Drawn from
    # the model, tuples match training ones no more often than fresh records do (holdout: 0.18
    # with the continuous re74, 0.84 on the discrete columns alone; model: 0.11 and 0.69).
    assert exact_copy_rate(default[CONDITIONS], train[CONDITIONS]) == 1.0
    for cols in (CONDITIONS, CONDITIONS[:-1]):
        natural = exact_copy_rate(holdout[cols], train[cols])
        drawn = exact_copy_rate(out[cols], train[cols])
        assert drawn <= natural + 0.05, (cols, drawn, natural)
        assert drawn >= natural - 0.3, (cols, drawn, natural)  # still the population's cells
    # The conditions' distribution is the training one: zero share of re74, share of black.
    assert abs((out["re74"] == 0).mean() - (train["re74"] == 0).mean()) < 0.04
    assert abs(out["black"].mean() - train["black"].mean()) < 0.04
    assert not hasattr(fitted, "training_conditions_") and not hasattr(fitted, "training_weights_")
    assert not hasattr(fitted.condition_model_, "training_conditions_")
    # reproducible by seed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pd.testing.assert_frame_equal(out, fitted.sample(1000, seed=1))


def test_file_holds_no_training_rows_and_round_trips(fitted, tmp_path):
    path = tmp_path / "m.mpx"
    fitted.save(path)
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist() == ["metadata.json", "weights.safetensors"]
        meta = json.loads(zf.read("metadata.json"))
    assert meta["params"]["condition_model"] is True
    assert meta["condition_model"]["params"]["target_vars"] == CONDITIONS
    assert sorted(meta["condition_ranges"]) == sorted(CONDITIONS)  # all numeric here
    loaded = Synthesizer.load(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pd.testing.assert_frame_equal(loaded.sample(300, seed=4), fitted.sample(300, seed=4), check_exact=True)
    loaded.save(tmp_path / "again.mpx")
    assert (tmp_path / "again.mpx").read_bytes() == path.read_bytes()
    # generate() with given conditions still works; extrapolation is judged on the saved ranges
    assert loaded._condition_ranges() == fitted._condition_ranges()
    rows = pd.DataFrame({"age": [30], "educ": [12], "black": [0], "marr": [1], "re74": [0.0]})
    assert loaded.generate(rows, seed=0).shape == (1, 6)
    # the streaming writer has no training rows to resample: it draws the conditions from the condition model
    # (session 53; it refused before), the same rows as the fitted model's
    from microplex.scale.sources import ModelConditions

    source = as_source(None, loaded, seed=2)
    assert isinstance(source, ModelConditions) and source.columns == CONDITIONS
    pd.testing.assert_frame_equal(source.draw(loaded, 0, 50), as_source(None, fitted, seed=2).draw(fitted, 0, 50),
                                  check_exact=True)


def test_default_files_keep_their_layout(split, tmp_path):
    synth = _synth(epochs=1).fit(split[0].head(300), seed=0)
    path = tmp_path / "d.mpx"
    synth.save(path)
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["conditions.parquet", "metadata.json", "weights.safetensors"]
        meta = json.loads(zf.read("metadata.json"))
    assert "condition_model" not in meta["params"] and "condition_model" not in meta
    loaded = Synthesizer.load(path)
    assert loaded.condition_model is None  # the default, off without epsilon: the real conditions are kept
    assert hasattr(loaded, "training_conditions_") and not hasattr(loaded, "condition_model_")


def test_refit_in_the_other_mode_keeps_nothing_of_the_previous(split):
    train = split[0].head(400)
    synth = _synth(epochs=1).fit(train, seed=0)
    assert hasattr(synth, "training_conditions_")
    synth.set_params(condition_model=True).fit(train, seed=0)
    assert not hasattr(synth, "training_conditions_") and hasattr(synth, "condition_model_")
    synth.set_params(condition_model=False).fit(train, seed=0)
    assert hasattr(synth, "training_conditions_") and not hasattr(synth, "condition_model_")


def test_bad_parameters():
    with pytest.raises(DataValidationError, match="'condition_model' parameter must be a bool or None. Got 'yes'"):
        Synthesizer(["a"], ["b"], condition_model="yes")._check_params()
    with pytest.raises(DataValidationError, match="'condition_model' parameter needs condition columns"):
        Synthesizer(["a"], condition_model=True)._check_params()


@pytest.mark.parametrize("case, match", [
    (dict(meta_fn=lambda m: m["condition_ranges"].pop("age")), "condition_ranges"),
    (dict(meta_fn=lambda m: m["condition_ranges"].update(age=[5, 1])), "condition_ranges"),
    (dict(meta_fn=lambda m: m.pop("condition_model")), "metadata"),
    # without the flag, the ranges read as a model that kept its conditions' ranges only, which has no
    # condition model: the leftover field is refused
    (dict(meta_fn=lambda m: m["params"].pop("condition_model")), r"field 'metadata' must be an object with keys"),
    (dict(meta_fn=lambda m: m["condition_model"]["params"].update(
        target_vars=["age", "educ", "black", "marr", "re78"])), "condition model"),
    # str categories of the int64 column 'black': refused by the categories' dtype check (session 47) before
    # the check that the main model's encoder accepts them
    (dict(meta_fn=lambda m: m["condition_model"]["encoders"]["black"].update(categories=["x", "y"])),
     r"condition 'black'|field 'encoders.black.categories' must be values of the column's dtype 'int64'"),
    (dict(tensor_fn=lambda t: t.pop(next(k for k in t if k.startswith("condition_model.")))), "condition model"),
    (dict(add_table=True), "tables"),
    (dict(meta_fn=lambda m: m["condition_model"]["params"].update(condition_model=True)), "has no condition model"),
])
def test_tampered_condition_model_is_refused(fitted, case, match, tmp_path, edit_model_file):
    fitted.save(tmp_path / "m.mpx")
    with pytest.raises(DataValidationError, match=match):
        Synthesizer.load(edit_model_file((tmp_path / "m.mpx").read_bytes(), **case))
