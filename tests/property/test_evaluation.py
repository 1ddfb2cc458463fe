"""Property: evaluate on generated frames (odd values, dtypes, names, sizes, weights) gives finite,
in-range scores or a MicroplexError, and leaves the caller's frames unchanged."""

from __future__ import annotations

import decimal
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from microplex.evaluation import PrivacyRiskWarning, evaluate

from ._invariants import assert_unchanged, nothing_written_outside, result_or_microplex_error, snapshot

NAMES = st.one_of(st.sampled_from(["x", "g", "w", "all", "__weight__", "a|b", "", "y"]), st.text(max_size=4))
KINDS = ["float", "int", "bool", "text", "category", "Int64", "datetime", "mixed", "float32", "decimal"]


def _values(kind: str, n: int, draw) -> pd.Series:
    if kind in ("float", "float32"):
        vals = st.one_of(st.floats(-5, 5), st.sampled_from([np.nan, np.inf, -np.inf, 1e308, -1e308, 0.0, 2.1, 0.3]))
        return pd.Series(draw(st.lists(vals, min_size=n, max_size=n)), dtype="float64" if kind == "float" else "float32")
    if kind == "decimal":  # numbers as objects, as a SQL NUMERIC column is read: refused, naming the column
        return pd.Series([decimal.Decimal(v) for v in draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n))],
                         dtype=object)
    if kind == "int":
        return pd.Series(draw(st.lists(st.integers(-2, 2), min_size=n, max_size=n)), dtype="int64")
    if kind == "bool":
        return pd.Series(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    if kind == "text":
        return pd.Series(draw(st.lists(st.one_of(st.sampled_from(["a", "b", ""]), st.none()), min_size=n, max_size=n)), dtype=object)
    if kind == "category":
        return pd.Series(draw(st.lists(st.sampled_from(["a", "b"]), min_size=n, max_size=n)), dtype="category")
    if kind == "Int64":
        return pd.Series(draw(st.lists(st.one_of(st.integers(0, 3), st.none()), min_size=n, max_size=n)), dtype="Int64")
    if kind == "datetime":
        return pd.Series(pd.to_datetime(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), unit="D"))
    return pd.Series(draw(st.lists(st.one_of(st.integers(0, 2), st.text(max_size=1), st.none()), min_size=n, max_size=n)), dtype=object)


@st.composite
def frame_pairs(draw):
    names = draw(st.lists(NAMES, min_size=1, max_size=3))
    kinds = [draw(st.sampled_from(KINDS)) for _ in names]
    frames = []
    for _ in range(3):  # real, synthetic, holdout
        n = draw(st.sampled_from([0, 1, 2, 5, 12]))
        cols = [_values(kind, n, draw).rename(name) for name, kind in zip(names, kinds, strict=True)]
        frames.append(pd.concat(cols, axis=1) if cols else pd.DataFrame())
    real, synth, holdout = frames
    if draw(st.booleans()):  # a column mismatch
        synth = synth.iloc[:, : max(len(synth.columns) - 1, 0)] if draw(st.booleans()) else synth.assign(extra=1.0)
    if draw(st.booleans()) and len(real.columns):
        real = real.rename(columns={real.columns[0]: draw(st.sampled_from([0, None, "x"]))})
    weight_col = None
    if draw(st.booleans()):
        weights = st.one_of(st.floats(0, 10), st.sampled_from([0.0, np.nan, -1.0, 1e308]))
        real = real.assign(wt=draw(st.lists(weights, min_size=len(real), max_size=len(real))))
        weight_col = "wt"
        if draw(st.booleans()) and len(real):  # all weight on one record
            real["wt"] = np.r_[1.0, np.zeros(len(real) - 1)]
    conditions = draw(st.one_of(st.none(), st.lists(st.sampled_from(list(map(str, real.columns)) + ["nope"]), max_size=2)))
    targets = draw(st.one_of(st.none(), st.dictionaries(st.sampled_from(["x", "g"]), st.one_of(st.floats(0, 100), st.just(np.nan)), max_size=1)))
    use_holdout = draw(st.booleans())
    pmse = draw(st.booleans())
    return real, synth, (holdout if use_holdout else None), weight_col, conditions, targets, pmse


@given(case=frame_pairs())
def test_evaluate_is_right_or_raises_and_leaves_frames_unchanged(case):
    real, synth, holdout, weight_col, conditions, targets, pmse = case
    befores = [snapshot(f) for f in (real, synth) + ((holdout,) if holdout is not None else ())]
    with tempfile.TemporaryDirectory() as tmp:
        sandbox = Path(tmp)
        with nothing_written_outside(sandbox, sandbox / "report.html"), warnings.catch_warnings():
            warnings.simplefilter("ignore", PrivacyRiskWarning)
            rep, error = result_or_microplex_error(
                lambda: evaluate(real, synth, weight_col=weight_col, targets=targets, holdout_df=holdout,
                                 conditions=conditions, pmse=pmse)
            )
    for before, after in zip(befores, (real, synth, holdout), strict=False):
        assert_unchanged(before, after)
    if error is not None:
        return
    scores = rep.scores
    fidelity = scores[~scores["metric"].str.startswith("dcr_")]  # dcr_ratio is NaN/inf by definition at times
    assert np.isfinite(fidelity["value"].to_numpy(dtype=float)).all(), fidelity
    bounded = scores[scores["metric"].isin(["ks", "tv_complement", "contingency_similarity", "subgroup_ks"])]
    assert ((bounded["value"] >= -1e-12) & (bounded["value"] <= 1 + 1e-12)).all()
