"""A DP model's draws are decoded once: the public-bounds check's values are the ones released."""

from __future__ import annotations

import warnings
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from microplex import Synthesizer
from microplex.synthesis._generation import _Generation
from microplex.synthesis.transforms import ContinuousEncoder


@pytest.fixture(scope="module")
def percentages() -> tuple[Synthesizer, pd.DataFrame]:
    return _percentages()


def _percentages() -> tuple[Synthesizer, pd.DataFrame]:
    """A moments-mode DP model (epsilon 1, one epoch) of two percentages with public bounds (0, 100), whose flow's
    tails reach beyond the bounds (some records are drawn again), and its training conditions."""
    rng = np.random.default_rng(0)
    n = 4000
    df = pd.DataFrame({"hi": 100 * rng.beta(5, 0.7, n), "lo": 100 * rng.beta(0.7, 5, n), "a": rng.integers(16, 56, n)})
    df.loc[:599, "lo"] = 0.0
    synth = Synthesizer(target_vars=["hi", "lo"], condition_vars=["a"], epsilon=1.0, delta=1e-5, epochs=1,
                        public_bounds={"hi": (0.0, 100.0), "lo": (0.0, 100.0), "a": (16, 55)},
                        standardize="moments", verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        synth.fit(df, seed=0)
    return synth, df


def test_a_dp_models_draws_are_decoded_once(percentages, monkeypatch):
    # The public-bounds check decoded every chunk's draws, and generation decoded them all again: 40,653 rows of
    # each target decoded here for 20,000 records (653 drawn again). Each record drawn is now decoded once per
    # target, the records drawn again included (20,653).
    synth, df = percentages
    conditions = pd.concat([df[["a"]]] * 5, ignore_index=True)
    decoded: Counter[str] = Counter()
    sampled = Counter()
    decode, sample = ContinuousEncoder.decode, synth.model_.sample

    def counting_decode(self, u, *args, **kwargs):
        decoded[self.name] += len(u)
        return decode(self, u, *args, **kwargs)

    def counting_sample(c, *args, **kwargs):
        sampled["rows"] += len(c)
        return sample(c, *args, **kwargs)

    monkeypatch.setattr(ContinuousEncoder, "decode", counting_decode)
    monkeypatch.setattr(synth.model_, "sample", counting_sample)
    drawn = synth.generate(conditions, seed=1, chunk_size=3000)
    assert sampled["rows"] > len(conditions)  # some records were drawn again (outside the bounds)
    assert decoded == {"hi": sampled["rows"], "lo": sampled["rows"]}
    assert drawn[["hi", "lo"]].stack().between(0.0, 100.0).all()


def test_the_values_the_bound_check_decoded_are_those_of_the_draws_released(percentages, monkeypatch):
    # the values kept from the bound check, the records drawn again included, are those that decoding the
    # released draws gives
    synth, df = percentages
    decode = _Generation._decode
    compared = Counter()

    def checked(self, pattern, u, heap, rounding=None, decoded=None):
        out = decode(self, pattern, u, heap, rounding, decoded)
        compared["kept"] += len(decoded)
        for name, values in decode(self, pattern, u, heap, rounding).items():
            np.testing.assert_array_equal(out[name], values)
        return out

    monkeypatch.setattr(_Generation, "_decode", checked)
    synth.generate(pd.concat([df[["a"]]] * 5, ignore_index=True), seed=1, chunk_size=3000)
    assert compared["kept"] == 2  # one block: both targets' values kept from the bound check
