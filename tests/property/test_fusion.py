"""Property-based trust tests of :func:`fuse`: any pair of sources gives a correct fusion or a microplex error.

Generated sources share a column and carry other columns with NaN, inf and huge values, odd
dtypes and odd names, 1 to 25 records, optional weights. The property: ``fuse`` raises a
:class:`~microplex.MicroplexError`, or returns the base records unchanged (same columns, index
order and values) with every donor-only column added, numeric imputed values finite; the
callers' frames are unchanged.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from microplex import Source, fuse

from ._invariants import assert_unchanged, result_or_microplex_error, snapshot
from .test_synthesis import columns

FAST = {"epochs": 1, "hidden_features": (4,), "transforms": 1}
_NAMES = st.sampled_from(["y", "z", "u", "v", "__weight__", "_imputation"])


@st.composite
def sources(draw):
    frames = []
    for _ in range(2):
        n = draw(st.integers(1, 25))
        shared = draw(st.sampled_from(["numeric", "categorical"]))
        x = (pd.Series(draw(st.lists(st.floats(-100, 100), min_size=n, max_size=n)), dtype=float)
             if shared == "numeric" else pd.Series(draw(st.lists(st.sampled_from(["a", "b"]), min_size=n, max_size=n))))
        cols = {"x": x}
        for name in draw(st.lists(_NAMES, max_size=2, unique=True)):
            cols[name] = draw(columns(n))
        df = pd.DataFrame(cols)
        if draw(st.booleans()):
            df["w"] = draw(st.lists(st.sampled_from([0.0, 1.0, 2.5, 1e6]), min_size=n, max_size=n))
        frames.append(df)
    return frames


@given(frames=sources(), holdout=st.sampled_from([0.0, 0.2]), n_imputations=st.integers(1, 2))
def test_fuse_result_or_microplex_error(frames, holdout, n_imputations):
    a, b = frames
    before_a, before_b = snapshot(a), snapshot(b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result, err = result_or_microplex_error(lambda: fuse(
            [Source(a, "a", weight_col="w" if "w" in a else None),
             Source(b, "b", weight_col="w" if "w" in b else None)],
            base="a", synthesizer_params=FAST, holdout_fraction=holdout, n_imputations=n_imputations, seed=0,
        ))
    assert_unchanged(before_a, a)
    assert_unchanged(before_b, b)
    if err is not None:
        return
    block = [c for c in b.columns if c not in a.columns and c != "w"]
    data = result.data
    assert len(data) == len(a) * n_imputations
    for i, completed in enumerate(result.imputations()):
        base_part = completed[list(a.columns)].reset_index(drop=True)
        pd.testing.assert_frame_equal(base_part, a.reset_index(drop=True), check_dtype=False)
        for c in block:
            assert c in completed.columns
            if pd.api.types.is_numeric_dtype(completed[c].dtype) and not pd.api.types.is_bool_dtype(completed[c].dtype):
                assert np.isfinite(completed[c].to_numpy(float)).all()


@st.composite
def clean_sources(draw):
    """Two surveys sharing age and region, the donor carrying an income with zeros and a category; some records
    of weight 0 in either (one donor record of weight 0 with a tenure and a negative income of its own)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    frames = []
    for role in ("base", "donor"):
        n = draw(st.integers(40, 100))
        df = pd.DataFrame({"age": rng.integers(18, 90, n), "region": rng.choice(["n", "s", "e"], n)})
        if role == "donor":
            df["inc"] = np.where(rng.random(n) < 0.3, 0.0, np.round(rng.lognormal(10, 1, n), -2))
            df["tenure"] = rng.choice(["own", "rent"], n)
        else:
            df["hours"] = rng.integers(0, 60, n)
        df["w"] = rng.uniform(0.5, 5.0, n)
        if draw(st.booleans()):  # records of weight 0 are outside the population: never refused, never drawn
            df.loc[rng.random(n) < 0.1, "w"] = 0.0
            if role == "donor":
                df.loc[0, ["inc", "tenure", "w"]] = [-500.0, "only_weight_0", 0.0]
        frames.append(df)
    return frames


@given(frames=clean_sources(), n_imputations=st.integers(1, 2))
def test_clean_sources_fuse_and_imputations_keep_the_donor_support(frames, n_imputations):
    """Clean surveys fuse (never refused); imputed categories are the donor's, an income >= 0 stays >= 0."""
    a, b = frames
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fuse([Source(a, "a", weight_col="w"), Source(b, "b", weight_col="w")], base="a",
                      synthesizer_params=FAST, n_imputations=n_imputations, seed=0)
    for completed in result.imputations():
        pd.testing.assert_frame_equal(completed[list(a.columns)].reset_index(drop=True), a.reset_index(drop=True),
                                      check_dtype=False)
        held = b[b["w"] > 0]
        assert set(completed["tenure"]) <= set(held["tenure"])
        inc = completed["inc"].to_numpy(float)
        assert np.isfinite(inc).all() and (inc >= 0).all()
