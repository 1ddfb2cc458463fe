"""Property: on clean frames a Synthesizer fits (never refuses) and its draws keep what the data promise.

Clean frames (finite numbers with zeros, heaps and whole numbers, categories, positive weights with some
records of weight 0) must fit; then, for ``generate`` and ``sample``:

- a categorical target draws only categories that records of positive weight hold;
- a numeric target whose training values of positive weight are all >= 0 draws values >= 0 (its support's
  bound; a negative value of weight 0 is outside the population);
- an integer column draws values of its dtype, and a column of whole numbers draws whole numbers once the
  rounding grid may learn them (``min_heap_count`` records of positive weight);
- every drawn record has a finite ``log_prob`` (the model that drew it holds it possible);
- the same seed gives the same frame.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from microplex import Synthesizer

FAST = {"epochs": 1, "hidden_features": (4,), "transforms": 1, "verbose": False}


@st.composite
def clean_frames(draw) -> pd.DataFrame:
    n = draw(st.integers(20, 150))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    zero_share = draw(st.sampled_from([0.0, 0.3, 0.7]))
    money = np.where(rng.random(n) < zero_share, 0.0, np.round(rng.lognormal(9, 1, n), draw(st.sampled_from([-2, 0, 2]))))
    hours = np.where(rng.random(n) < 0.4, 40, rng.integers(1, 80, n)).astype(draw(st.sampled_from(["int64", "int32", "float64"])))
    signed = rng.normal(0, 5, n).round(1)
    cats = rng.choice(list("abcd"), n, p=[0.4, 0.3, 0.2, 0.1])
    region = rng.choice(["n", "s", "e"], n)
    age = rng.integers(18, 90, n)
    w = rng.uniform(0.5, 5.0, n)
    if draw(st.booleans()):  # records of weight 0, one holding a category of its own
        w[rng.random(n) < 0.1] = 0.0
        w[0] = 0.0
        cats[0] = "only_weight_0"
    return pd.DataFrame({"money": money, "hours": hours, "signed": signed, "cat": cats, "region": region,
                         "age": age, "w": w})


@given(df=clean_frames(), data=st.data())
def test_clean_frames_fit_and_draws_keep_the_data_promises(df, data):
    targets = data.draw(st.lists(st.sampled_from(["money", "hours", "signed", "cat"]), min_size=1, max_size=3, unique=True))
    conditions = data.draw(st.lists(st.sampled_from(["region", "age"]), max_size=2, unique=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # a clean frame is never refused: a small one whose records of positive weight all sit on point masses (the
        # rest of weight 0) has no continuous part, as the population it stands for
        synth = Synthesizer(targets, conditions, **FAST).fit(df, weight_col="w", seed=0)
        gen = synth.generate(df[conditions], seed=1)
        pop = synth.sample(50, seed=2)
        again = synth.sample(50, seed=2)
    pd.testing.assert_frame_equal(pop, again)
    positive = df["w"] > 0
    for out in (gen, pop):
        # every drawn record is possible under the model that drew it: a finite log-likelihood
        log_prob = synth.log_prob(out)
        assert np.isfinite(log_prob).all(), out[~np.isfinite(log_prob)]
        for t in targets:
            col = out[t]
            if t == "cat":
                assert set(col.dropna()) <= set(df.loc[positive, "cat"]), set(col) - set(df.loc[positive, "cat"])
                continue
            values = col.to_numpy(float)
            assert np.isfinite(values).all()
            if (df.loc[positive, t] >= 0).all():
                assert (values >= 0).all(), values.min()
            if pd.api.types.is_integer_dtype(df[t]):
                assert col.dtype == df[t].dtype
            # whole numbers are drawn whole once the rounding grid may learn them: at least min_heap_count (20)
            # training records of positive weight off the point masses and heaps (a margin for the validation split)
            fixed = [*synth.point_masses_.get(t, ()), *synth.heaps_.get(t, ()), 0.0]
            held = int((~df[t].isin(fixed) & positive).sum())
            if np.equal(np.mod(df[t].to_numpy(float), 1), 0).all() and held >= 40:
                assert np.equal(np.mod(values, 1), 0).all(), values[np.mod(values, 1) != 0][:5]
