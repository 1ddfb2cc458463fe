"""Value shapes: a fitted Synthesizer's draws respect the shape of each target column's values
(the dtype's range, integers, point masses, heaps)."""

import copy

import numpy as np
import pandas as pd
import pytest

from microplex import Synthesizer, VariableSpec
from microplex.synthesis._generation import _cast


def _raw_twin(synth: Synthesizer, name: str) -> Synthesizer:
    """A copy of ``synth`` that draws ``name`` as float64: the model's draws before the cast to its dtype."""
    raw = copy.deepcopy(synth)
    raw.dtypes_ = {**raw.dtypes_, name: "float64"}
    return raw


@pytest.mark.parametrize("dtype", ["int8", "Int8"])
def test_draws_beyond_a_narrow_integer_dtype_are_held_at_its_limits(dtype):
    # A left-skewed int8 column that fills its dtype: the model's lower tail draws below -128.
    rng = np.random.default_rng(0)
    n = 1500
    x = (127 - np.round(rng.exponential(30, n))).clip(-128, 127)
    df = pd.DataFrame({"y": pd.array(x.astype("int8"), dtype=dtype), "g": rng.integers(0, 2, n)})
    synth = Synthesizer(["y"], ["g"], epochs=10, max_heaps=0, verbose=False).fit(df, seed=0)
    y = synth.sample(5000, seed=1)["y"]
    raw = _raw_twin(synth, "y").sample(5000, seed=1)["y"].to_numpy()
    assert ((raw < -128) | (raw > 127)).sum() > 50  # the case is exercised
    assert str(y.dtype) == dtype  # a nullable Int8 column became float64
    # held at the limits (were wrapped around: -998 became 26)
    np.testing.assert_array_equal(np.asarray(y, dtype=float), np.clip(raw, -128, 127))
    cast = _cast(np.array([-1e40, -998.0, 5.0, 1e19, 1e40]), "int64", "integer")
    assert cast.dtype == np.int64 and cast.tolist() == [-2**63, -998, 5, 2**63 - 1024, 2**63 - 1024]
    assert _cast(np.array([-1.0, 256.0]), "UInt8", "integer").tolist() == [0, 255]
    wide = _cast(np.array([-1e39, 1e39]), "float32", "continuous")  # was inf
    assert wide.dtype == np.float32 and np.isfinite(wide).all()


def test_an_integer_column_declared_continuous_is_rounded_not_truncated():
    rng = np.random.default_rng(0)
    n = 1000
    x = np.round(rng.normal(-1, 300, n))
    x[x == 0] = 1  # no zero point mass: every draw comes from the flow
    df = pd.DataFrame({"y": x.astype(np.int64), "g": rng.integers(0, 2, n)})
    # rounding=False: the flow's values as drawn (a grid would draw this column's whole numbers already)
    synth = Synthesizer(["y"], ["g"], epochs=5, max_heaps=0, verbose=False, rounding=False,
                        schema={"y": VariableSpec(kind="continuous")}).fit(df, seed=0)
    y = synth.sample(4000, seed=1)["y"]
    raw = _raw_twin(synth, "y").sample(4000, seed=1)["y"].to_numpy()
    assert y.dtype == np.int64 and (raw != np.round(raw)).mean() > 0.9
    np.testing.assert_array_equal(y.to_numpy(), np.round(raw))  # were truncated toward 0 (3.9 -> 3, -3.9 -> -3)
    assert abs(y.mean() - raw.mean()) < 0.1  # truncation moved it by about 0.5 toward 0
    assert _cast(np.array([3.9, -3.9, 2.4]), "int64", "continuous").tolist() == [4, -4, 2]


def test_a_top_coded_integer_is_never_drawn_beyond_its_codes():
    """An integer income top-coded at 50,000 (17% of the weight) and bottom-coded at -20,000: both ends are
    point masses bounding the flow's segments, as for a float column (they were heaps, and the flow's tail drew
    beyond them)."""
    rng = np.random.default_rng(0)
    n = 2000
    x = np.minimum(np.round(rng.lognormal(10.3, 0.6, n)), 50_000)
    u = rng.random(n)
    x[u < 0.1] = 0
    x[u > 0.95] = -np.round(rng.lognormal(9.5, 1, n)).clip(max=20_000)[u > 0.95]
    df = pd.DataFrame({"y": x.astype(np.int64), "g": rng.integers(0, 2, n)})
    assert np.mean(x == 50_000) > 0.15 and 0.01 < np.mean(x == -20_000) < 0.05
    synth = Synthesizer(["y"], ["g"], epochs=40, verbose=False).fit(df, seed=0)  # the pattern head converges
    assert synth.kinds_["y"] == "integer" and synth.point_masses_["y"] == (-20_000.0, 0.0, 50_000.0)
    assert 50_000.0 not in synth.heaps_["y"]
    y = synth.sample(20_000, seed=1)["y"].to_numpy()
    assert y.dtype == np.int64 and y.min() == -20_000 and y.max() == 50_000
    for code in (-20_000, 0, 50_000):
        p = np.mean(x == code)
        assert abs(np.mean(y == code) - p) < 3 * np.sqrt(p * (1 - p) / n), code
