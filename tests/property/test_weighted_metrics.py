"""Property: the weighted metrics are the metrics of the population the weights describe.

A record of integer weight ``k`` stands for ``k`` records: every fidelity metric of a frame with integer
weights equals the metric of the frame with each record repeated ``k`` times and no weights (records of
weight 0 dropped); a frame compared with itself scores a perfect match; row order does not matter.
Survey weights change what "the population" is, so a metric that reads them differently from
repetition compares the synthetic file with the wrong population.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from microplex.evaluation import metrics as M

VALUES = st.one_of(st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False), st.sampled_from([0.0, 0.0, 100.0, 1e3, 40.0, 2.5]))


@st.composite
def weighted_frames(draw) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    n = draw(st.integers(1, 25))
    frame = pd.DataFrame({
        "x": draw(st.lists(VALUES, min_size=n, max_size=n)),
        "y": draw(st.lists(VALUES, min_size=n, max_size=n)),
        "g": draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n)),
    })
    k = np.asarray(draw(st.lists(st.integers(0, 4), min_size=n, max_size=n)), dtype=np.int64)
    if k.sum() == 0:
        k[0] = 1
    m = draw(st.integers(1, 25))
    other = pd.DataFrame({
        "x": draw(st.lists(VALUES, min_size=m, max_size=m)),
        "y": draw(st.lists(VALUES, min_size=m, max_size=m)),
        "g": draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=m, max_size=m)),
    })
    return frame, k, other


def _repeated(frame: pd.DataFrame, k: np.ndarray) -> pd.DataFrame:
    return frame.loc[frame.index.repeat(k)].reset_index(drop=True)


def _close(a: float, b: float) -> None:
    assert np.isclose(a, b, rtol=1e-9, atol=1e-9), (a, b)


@given(case=weighted_frames())
def test_integer_weights_are_repeated_records(case):
    frame, k, other = case
    rep = _repeated(frame, k)
    w = k.astype(float)
    for col in ("x", "y"):
        _close(M.ks_statistic(frame[col], other[col], w), M.ks_statistic(rep[col], other[col]))
        _close(M.wasserstein(frame[col], other[col], w), M.wasserstein(rep[col], other[col]))
        a = M.point_mass_errors(frame[col], other[col], w)
        b = M.point_mass_errors(rep[col], other[col])
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_exact=False, rtol=1e-9)
        a = M.round_share_errors(frame[col], other[col], w)
        b = M.round_share_errors(rep[col], other[col])
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_exact=False, rtol=1e-9)
        if frame[col].nunique() > 1 and rep[col].nunique() > 1:
            a = M.quantile_errors(frame[col], other[col], w)
            b = M.quantile_errors(rep[col], other[col])
            np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=1e-9, atol=1e-9)
    _close(M.tv_complement(frame["g"], other["g"], w), M.tv_complement(rep["g"], other["g"]))
    for method in ("pearson", "spearman"):
        _close(M.correlation_max_abs_error(frame[["x", "y"]], other[["x", "y"]], w, method=method),
               M.correlation_max_abs_error(rep[["x", "y"]], other[["x", "y"]], method=method))
    for cols in (["x", "g"], ["x", "y"]):
        _close(M.contingency_similarity(frame, other, cols, w), M.contingency_similarity(rep, other, cols))


@given(case=weighted_frames(), seed=st.integers(0, 2**32 - 1))
def test_a_frame_matches_itself_in_any_order(case, seed):
    frame, k, _ = case
    w = k.astype(float)
    order = np.random.default_rng(seed).permutation(len(frame))
    shuffled, ws = frame.iloc[order].reset_index(drop=True), w[order]
    rep = _repeated(frame, k)
    for col in ("x", "y"):
        _close(M.ks_statistic(frame[col], shuffled[col], w, ws), 0.0)
        _close(M.ks_statistic(frame[col], rep[col], w), 0.0)
        assert (M.round_share_errors(frame[col], rep[col], w)["abs_error"].fillna(0.0).abs() <= 1e-12).all()
    _close(M.tv_complement(frame["g"], rep["g"], w), 1.0)
    _close(M.correlation_max_abs_error(frame[["x", "y"]], shuffled[["x", "y"]], w, ws), 0.0)
    _close(M.correlation_max_abs_error(frame[["x", "y"]], rep[["x", "y"]], w), 0.0)
