"""Session 70: integer targets beyond float64's resolution of half units.

An integer target is dequantized: trained on its values plus uniform noise within half a unit, its segment bounded
half a unit beyond its extreme values. Above 2**48 float64 cannot hold those half units (its spacing is 1/16 at
2**48, 1 at 2**52, 2 beyond 2**53): the bound ``min - 0.5`` rounded back onto the smallest value, whose
``log(y - lower)`` became ``-inf``. An int64 column of values up to 1e17 (amounts in cents) failed at fit with
"training loss became non-finite ... lower 'learning_rate'", one up to 9e17 was refused as "cannot be standardized
... rescale it", and one up to 6e16 leaked numpy's "divide by zero" RuntimeWarnings and fitted a lower tail of
slope 0.0, while the same values as float64 fitted fine. Such a column is now modelled as continuous (a warning names
it), its draws rounded to whole numbers of its integer dtype; declared ``kind="integer"`` it is refused."""

import re
import warnings

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError, Synthesizer, VariableSpec
from microplex.households import HouseholdSynthesizer

N = 600


def _frame(hi: int, dtype: str = "int64", seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"g": rng.integers(0, 3, N), "v": rng.integers(hi // 100, hi, N).astype(dtype)})


def _fit(df: pd.DataFrame, **params) -> tuple[Synthesizer, list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        synth = Synthesizer(["v"], ["g"], epochs=2, verbose=False, **params).fit(df, seed=0)
        synth.sample(500, seed=1)
    return synth, caught


@pytest.mark.parametrize("hi", [6 * 10**16, 10**17, 9 * 10**17])
@pytest.mark.parametrize("standardize", ["moments", "quantile"])
def test_an_int64_target_beyond_2_to_48_fits_as_its_float64_twin(hi, standardize, tmp_path):
    df = _frame(hi)
    synth, caught = _fit(df, standardize=standardize)
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]
    told = [str(w.message) for w in caught if "cannot resolve the half units" in str(w.message)]
    assert len(told) == 1 and told[0].startswith("Target column 'v'") and f"{float(df['v'].abs().max()):.6g}" in told[0]
    assert synth.kinds_["v"] == "continuous"
    # the same model as the float64 column's: encoder, networks and draws (rounded, in int64)
    twin, _ = _fit(df.astype({"v": "float64"}), standardize=standardize)
    assert synth.encoders_["v"].to_dict() == twin.encoders_["v"].to_dict()
    seg = synth.encoders_["v"].segments[0]
    assert seg.lower == 0.0
    if standardize == "quantile":
        assert seg.knots[2][0] > 0.1  # the lower tail's slope (before: 0.0)
    draws, floats = synth.sample(2000, seed=3)["v"], twin.sample(2000, seed=3)["v"]
    assert draws.dtype == np.int64
    np.testing.assert_array_equal(draws.to_numpy(), np.round(floats.to_numpy()).astype(np.int64))
    synth.save(tmp_path / "m.mpx")  # the model file loads and draws the same
    pd.testing.assert_series_equal(Synthesizer.load(tmp_path / "m.mpx").sample(2000, seed=3)["v"], draws)


def test_below_2_to_48_an_int64_target_stays_integer():
    df = _frame(10**14)  # largest value about 1e14 < 2**48 (2.8e14)
    synth, caught = _fit(df)
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning) or "half units" in str(w.message)]
    assert synth.kinds_["v"] == "integer"
    assert synth.encoders_["v"].segments[0].lower == float(df["v"].min()) - 0.5
    # the limit is the largest magnitude: a value of -(2**48) reaches it
    df.loc[0, "v"] = -(2**48)
    assert _fit(df)[0].kinds_["v"] == "continuous"
    df.loc[0, "v"] = -(2**48) + 1
    assert _fit(df)[0].kinds_["v"] == "integer"


def test_a_declared_integer_beyond_2_to_48_is_refused():
    df = _frame(10**17)
    synth = Synthesizer(["v"], ["g"], epochs=2, verbose=False, schema={"v": VariableSpec(kind="integer")})
    with pytest.raises(DataValidationError, match=r"Target column 'v' is declared kind 'integer' but its values reach "
                       rf"{re.escape(f'{float(df.v.abs().max()):.6g}')}, beyond 2\*\*48 .* rescale it \(e\.g\. to thousands\)"):
        synth.fit(df, seed=0)
    assert not hasattr(synth, "patterns_")
    # declared continuous: fitted without a warning, draws whole numbers in int64
    synth = Synthesizer(["v"], ["g"], epochs=2, verbose=False, schema={"v": VariableSpec(kind="continuous")})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        draws = synth.fit(df, seed=0).sample(500, seed=1)["v"]
    assert draws.dtype == np.int64


def test_with_dp_public_bounds_beyond_2_to_48_model_the_target_as_continuous():
    df = _frame(9 * 10**17)
    params = dict(epsilon=5.0, delta=1e-5, public_bounds={"v": (18 * 10**15, 9 * 10**17 - 1)},
                  public_categories={"g": [0, 1, 2]})
    synth, caught = _fit(df, **params)
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert any("Target column 'v': its public bounds reach 9e+17" in str(w.message) for w in caught)
    assert synth.kinds_["v"] == "continuous"
    draws = synth.sample(2000, seed=3)["v"]
    assert draws.dtype == np.int64 and draws.min() >= 18 * 10**15 and draws.max() <= 9 * 10**17
    # bounds below 2**48: integer, as before
    small = _frame(10**14)
    params["public_bounds"] = {"v": (10**12, 10**14)}
    assert _fit(small, **params)[0].kinds_["v"] == "integer"


def test_a_household_target_beyond_2_to_48_fits():
    rng = np.random.default_rng(0)
    hid = np.repeat(np.arange(150), 2)
    df = pd.DataFrame({"hid": hid, "region": np.array(list("ab"))[hid % 2], "sex": rng.choice(["f", "m"], 300),
                       "wealth": rng.integers(10**15, 10**17, 300)})
    model = HouseholdSynthesizer(["region"], ["sex", "wealth"], "hid", epochs=2, verbose=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        households, persons = model.fit(df, seed=0).sample(40, seed=1)
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert any("Target column 'wealth'" in str(w.message) and "half units" in str(w.message) for w in caught)
    assert persons["wealth"].dtype == np.int64 and persons["wealth"].min() > 0
