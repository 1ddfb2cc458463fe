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


@pytest.mark.parametrize("name, precision", [("hours", "float16"), ("hours", "float32"), ("rate", None),
                                             ("rate", "float16")])
def test_a_grid_whose_precision_the_targets_dtype_rules_out_is_refused(saved, tmp_path, name, precision):
    # fit reads an integer column's levels at float64 and a float32 column's at float32; a float16 grid on the int64
    # hours moved 285 of 2,000 draws by one (float16 holds no odd number above 2,048)
    data, _ = saved

    def edit(meta: dict) -> None:
        grid = meta["encoders"][name]["rounding"]
        if precision is None:
            del grid["precision"]
        else:
            grid["precision"] = precision
    with pytest.raises(DataValidationError, match=rf"encoders\.{name}\.rounding\.precision' must be "
                                                  rf"'float(64|32)' for a target of dtype"):
        _load(tmp_path, data, edit)


def test_a_float64_targets_grid_may_read_its_values_at_a_narrower_precision(saved, tmp_path):
    # a float64 column holding values read as float32 and widened gets a float32 grid from fit (the values' own
    # precision): the dtype alone does not rule it out
    data, conditions = saved
    loaded = _load(tmp_path, data, lambda meta: meta["encoders"]["income"]["rounding"].__setitem__("precision",
                                                                                                  "float32"))
    assert loaded.encoders_["income"].rounding.precision == "float32"
    assert len(loaded.generate(conditions.head(50), seed=0)) == 50
