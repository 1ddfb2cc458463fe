"""A model file's rounding grids (an encoder's ``rounding`` key) read as untrusted data: consistent with the file's
``params.rounding`` and with the target's dtype, or refused naming the field."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError, Synthesizer

from _model_files import edit_metadata


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[bytes, pd.DataFrame]:
    """The bytes of a saved model with rounding grids on an int64, a float64 and a float32 target, and its
    conditions."""
    rng = np.random.default_rng(0)
    n = 1500
    age = rng.integers(20, 65, n)
    income = np.round(np.exp(rng.normal(10, 0.6, n)) / 100) * 100
    hours = np.clip(rng.normal(1800, 500, n), 100, 3500)
    hours = np.where(rng.random(n) < 0.33, np.round(hours / 10) * 10, np.round(hours)).astype(np.int64)
    rate = np.round(rng.uniform(0, 30, n), 1).astype(np.float32)
    df = pd.DataFrame({"age": age, "income": income, "hours": hours, "rate": rate})
    synth = Synthesizer(["income", "hours", "rate"], ["age"], epochs=1, hidden_features=(8,), transforms=1,
                        verbose=False).fit(df, seed=0)
    assert synth.rounded_vars_ == ["income", "hours", "rate"]
    assert synth.encoders_["rate"].rounding.precision == "float32"
    path = tmp_path_factory.mktemp("rounding") / "m.mpx"
    synth.save(path)
    return path.read_bytes(), df[["age"]].head(2000)


def _load(tmp_path, data: bytes, edit) -> Synthesizer:
    path = tmp_path / "m.mpx"
    path.write_bytes(edit_metadata(data, edit))
    return Synthesizer.load(path)


def _off(meta: dict) -> None:
    meta["params"]["rounding"] = False


def test_a_grid_in_a_file_whose_params_say_no_rounding_is_refused(saved, tmp_path):
    # params.rounding false with the grids kept: the loaded model said rounding=False and rounded its draws
    data, _ = saved
    with pytest.raises(DataValidationError, match=r"encoders\.income\.rounding' must be absent \(a DP model, a "
                                                  r"model whose params\.rounding is false"):
        _load(tmp_path, data, _off)

    def without_grids(meta: dict) -> None:  # what fit writes with rounding=False
        _off(meta)
        for enc in meta["encoders"].values():
            enc.pop("rounding", None)
    assert _load(tmp_path, data, without_grids).rounded_vars_ == []


@pytest.mark.parametrize("name, precision, allowed", [("hours", "float16", "'float64'"),
                                                      ("hours", "float32", "'float64'"),
                                                      ("rate", "float16", "'float32' or 'float64'")])
def test_a_grid_narrower_than_the_targets_dtype_is_refused(saved, tmp_path, name, precision, allowed):
    # fit reads an integer column's levels at float64 and a float32 column's at float32; a float16 grid on the int64
    # hours moved 285 of 2,000 draws by one (float16 holds no odd number above 2,048)
    data, _ = saved
    with pytest.raises(DataValidationError, match=rf"encoders\.{name}\.rounding\.precision' must be {allowed} for a "
                                                  rf"target of dtype"):
        _load(tmp_path, data, lambda meta: meta["encoders"][name]["rounding"].__setitem__("precision", precision))


def test_a_float64_targets_grid_may_read_its_values_at_a_narrower_precision(saved, tmp_path):
    # a float64 column holding values read as float32 and widened gets a float32 grid from fit (the values' own
    # precision): the dtype alone does not rule it out
    data, conditions = saved
    loaded = _load(tmp_path, data, lambda meta: meta["encoders"]["income"]["rounding"].__setitem__("precision",
                                                                                                  "float32"))
    assert loaded.encoders_["income"].rounding.precision == "float32"
    assert len(loaded.generate(conditions.head(50), seed=0)) == 50


def test_a_grid_wider_than_the_targets_dtype_loads_and_draws_what_the_dtype_holds(saved, tmp_path):
    # a float64 grid on the float32 rate (its precision deleted): the draws are cast to float32 after rounding, the
    # values a float32 grid gives to float32 rounding
    data, conditions = saved
    fitted = _load(tmp_path, data, lambda meta: None).generate(conditions, seed=0)["rate"]
    wide = _load(tmp_path, data, lambda meta: meta["encoders"]["rate"]["rounding"].pop("precision"))
    assert wide.encoders_["rate"].rounding.precision == "float64"
    drawn = wide.generate(conditions, seed=0)["rate"]
    assert drawn.dtype == np.float32
    np.testing.assert_array_equal(drawn.to_numpy(), fitted.to_numpy())
