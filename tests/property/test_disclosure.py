"""Property: the privacy and disclosure figures read a release as the population it stands for.

The same reading of weights as the fidelity metrics (:mod:`.test_weighted_metrics`): a record of
integer weight ``k`` stands for ``k`` records, so the weighted AUC and attribute disclosure of a
frame with integer weights equal those of the frame with each record repeated ``k`` times (records
of weight 0 dropped). Row order never matters; a release that copies the training file is found to
copy all of it (exact-copy rate 1, every DCR 0, membership AUC 1 against fresh records), and one
record equal to a training record, however its columns store the values, is an exact copy at
distance 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from microplex.evaluation import attacks as A
from microplex.evaluation import privacy as P

SCORES = st.one_of(st.floats(-1e3, 1e3, allow_nan=False), st.sampled_from([0.0, 1.0, 1.0, 2.5]))
NUMBERS = st.one_of(st.integers(-3, 3).map(float), st.floats(-1e4, 1e4, allow_nan=False), st.just(np.nan))
CATEGORIES = st.one_of(st.sampled_from(["a", "b", "c"]), st.none())


def _close(a: float, b: float) -> None:
    assert np.isclose(a, b, rtol=1e-9, atol=1e-12), (a, b)


@st.composite
def scored(draw) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n, m = draw(st.integers(1, 20)), draw(st.integers(1, 20))
    pos = np.asarray(draw(st.lists(SCORES, min_size=n, max_size=n)))
    neg = np.asarray(draw(st.lists(SCORES, min_size=m, max_size=m)))
    kp = np.asarray(draw(st.lists(st.integers(0, 4), min_size=n, max_size=n)))
    kn = np.asarray(draw(st.lists(st.integers(0, 4), min_size=m, max_size=m)))
    kp[0], kn[0] = max(kp[0], 1), max(kn[0], 1)
    return pos, neg, kp, kn


@given(case=scored(), seed=st.integers(0, 2**32 - 1))
def test_weighted_auc_is_the_auc_of_repeated_scores_in_any_order(case, seed):
    pos, neg, kp, kn = case
    auc = A.weighted_auc(pos, neg, kp.astype(float), kn.astype(float))
    _close(auc, A.weighted_auc(np.repeat(pos, kp), np.repeat(neg, kn)))
    # the Mann-Whitney count, ties 1/2, by brute force over the repeated scores
    p, q = np.repeat(pos, kp)[:, None], np.repeat(neg, kn)[None, :]
    _close(auc, float(np.mean((p > q) + 0.5 * (p == q))))
    _close(auc + A.weighted_auc(neg, pos, kn.astype(float), kp.astype(float)), 1.0)
    rng = np.random.default_rng(seed)
    op, on = rng.permutation(pos.size), rng.permutation(neg.size)
    _close(auc, A.weighted_auc(pos[op], neg[on], kp[op].astype(float), kn[on].astype(float)))
    _close(A.weighted_auc(pos, pos, kp.astype(float), kp.astype(float)), 0.5)


@st.composite
def frames(draw, min_rows: int = 1) -> pd.DataFrame:
    n = draw(st.integers(min_rows, 15))
    return pd.DataFrame({
        "x": draw(st.lists(NUMBERS, min_size=n, max_size=n)),
        "k": draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)),
        "g": draw(st.lists(CATEGORIES, min_size=n, max_size=n)),
    })


@given(train=frames(), query=frames(), seed=st.integers(0, 2**32 - 1))
def test_exact_copies_and_distances_to_closest_record(train, query, seed):
    rng = np.random.default_rng(seed)
    _close(P.exact_copy_rate(train, train), 1.0)
    assert (P.dcr(train, train, max_rows=None) == 0.0).all()
    # a copy of some training rows, shuffled, with its integers stored as floats: all copies, all at 0
    rows = rng.integers(0, len(train), size=len(train) + 2)
    copied = train.iloc[rows].astype({"k": float}).reset_index(drop=True)
    _close(P.exact_copy_rate(copied, train), 1.0)
    assert (P.dcr(copied, train, max_rows=None) == 0.0).all()
    # the rate is the share of query rows equal to some training row: checked row by row
    def same(a: pd.Series, b: pd.Series) -> bool:
        return all((pd.isna(u) and pd.isna(v)) or (not pd.isna(u) and not pd.isna(v) and u == v) for u, v in zip(a, b))
    found = [any(same(q, t) for _, t in train.iterrows()) for _, q in query.iterrows()]
    _close(P.exact_copy_rate(query, train), float(np.mean(found)))
    d = P.dcr(query, train, max_rows=None)
    assert (d >= 0).all() and ((d == 0) >= np.asarray(found)).all()
    # neither figure depends on the order of the rows or of the columns
    oq, ot = rng.permutation(len(query)), rng.permutation(len(train))
    shuffled_q, shuffled_t = query.iloc[oq][["g", "k", "x"]], train.iloc[ot][["g", "x", "k"]]
    _close(P.exact_copy_rate(shuffled_q, shuffled_t), P.exact_copy_rate(query, train))
    np.testing.assert_allclose(P.dcr(shuffled_q, shuffled_t, max_rows=None, columns=["x", "k", "g"]), d[oq],
                               rtol=1e-12, atol=1e-12)


@given(train=frames(min_rows=2), holdout=frames(min_rows=2), seed=st.integers(0, 2**32 - 1))
def test_membership_auc_of_a_copied_release_and_row_order(train, holdout, seed):
    size = min(len(train), len(holdout))
    train, holdout = train.iloc[:size].reset_index(drop=True), holdout.iloc[:size].reset_index(drop=True)
    with pytest.warns(UserWarning, match="scatters"):
        auc = A.membership_auc(train, train.copy(), holdout, max_rows=None)
    # every member is at distance 0 from the release; a non-member only when it equals a training row
    members = np.zeros(size)
    others = -P.dcr(holdout, train, max_rows=None)
    _close(auc, A.weighted_auc(members, others))
    if P.exact_copy_rate(holdout, train) == 1.0:
        _close(auc, 0.5)
    order = np.random.default_rng(seed).permutation(size)
    with pytest.warns(UserWarning, match="scatters"):
        _close(A.membership_auc(train, train.iloc[order], holdout, max_rows=None), auc)


CELLS = st.sampled_from(["a", "b", "c"])


@st.composite
def disclosure_case(draw):
    def frame(n: int) -> pd.DataFrame:
        return pd.DataFrame({
            "q": draw(st.lists(CELLS, min_size=n, max_size=n)),
            "age": draw(st.lists(st.integers(20, 60), min_size=n, max_size=n)),
            "s": draw(st.lists(st.one_of(st.just(0.0), st.floats(0, 1e5, allow_nan=False)), min_size=n, max_size=n)),
        })
    n, m, h = (draw(st.integers(1, 15)) for _ in range(3))
    ks = [np.asarray(draw(st.lists(st.integers(0, 3), min_size=k, max_size=k))) for k in (n, m, h)]
    for k in ks:
        k[0] = max(k[0], 1)
    return frame(n), frame(m), frame(h), ks, draw(st.integers(2, 6))


def _repeated(frame: pd.DataFrame, k: np.ndarray) -> pd.DataFrame:
    return frame.loc[frame.index.repeat(k)].reset_index(drop=True)


@given(case=disclosure_case(), seed=st.integers(0, 2**32 - 1))
def test_attribute_disclosure_reads_weights_as_repeated_records_in_any_order(case, seed):
    train, synthetic, holdout, (kt, ks, kh), bins = case
    args = (["q", "age"], "s")
    weighted = A.attribute_disclosure(train, synthetic, holdout, *args, bins=bins, train_weights=kt.astype(float),
                                      synthetic_weights=ks.astype(float), holdout_weights=kh.astype(float))
    repeated = A.attribute_disclosure(_repeated(train, kt), _repeated(synthetic, ks), _repeated(holdout, kh), *args,
                                      bins=bins)
    for key in weighted:
        _close(weighted[key], repeated[key])
        assert 0.0 <= weighted[key] <= 1.0
        assert weighted["disco_synthetic"] <= weighted["attribution_synthetic"] + 1e-12
    rng = np.random.default_rng(seed)
    ot, os_ = rng.permutation(len(train)), rng.permutation(len(synthetic))
    shuffled = A.attribute_disclosure(train.iloc[ot], synthetic.iloc[os_], holdout, *args, bins=bins,
                                      train_weights=kt[ot].astype(float), synthetic_weights=ks[os_].astype(float),
                                      holdout_weights=kh.astype(float))
    for key in weighted:
        _close(weighted[key], shuffled[key])
    # releasing the training file itself discloses every record whose cell holds one sensitive group
    copied = A.attribute_disclosure(train, train.copy(), holdout, *args, bins=bins, train_weights=kt.astype(float),
                                    synthetic_weights=kt.astype(float), holdout_weights=kh.astype(float))
    assert copied["attribution_synthetic"] > 0.0
