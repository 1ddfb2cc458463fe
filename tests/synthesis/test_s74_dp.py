"""Session 74: defects of the DP release found by the audit of differential privacy.

Each test fails on the code before its fix: a round value on the middle edge of the statistics'
histogram that was no point-mass candidate, draws outside the public bounds, and a DP fit on few
unweighted records that said nothing.
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from microplex import PrivacyWarning, Synthesizer
from microplex.synthesis import _dp


def _layout(lo: float, hi: float, values: np.ndarray, integer: bool) -> tuple[_dp.NumericLayout, np.ndarray]:
    """The statistics' layout of one numeric target with public bounds (lo, hi) and each record's row."""
    kind = "integer" if integer else "continuous"
    synth = SimpleNamespace(target_vars=["y"], kinds_={"y": kind}, encoders_={})
    data = pd.DataFrame({"y": np.asarray(values, dtype=np.int64 if integer else float)})
    dp = {"bounds": {"y": (lo, hi)}, "categories": {}}
    rows, layout = _dp.histogram_rows(synth, data, np.ones(len(data)), dp, {}, _dp.BINS)
    return layout["y"], rows.toarray()


@pytest.mark.parametrize("lo, hi, integer", [(0.0, 1.0, False), (0.0, 10.0, False), (1.0, 5.0, False),
                                             (0.0, 40.0, False), (0, 10, True), (0, 2000, True)])
def test_the_round_middle_of_the_bounds_is_a_point_mass_candidate_of_its_own_bin(lo, hi, integer):
    # The logit's bins are symmetric: the middle of the bounds is an edge, which the logit round trip put
    # a few ulps above it (5.000000000000825 for (0, 10)); the bin above started past 5, the bin below
    # offered 4, and 5 was no candidate (candidates near the middle [4.0, 6.0]).
    mid = (lo + hi) / 2
    entry, rows = _layout(lo, hi, np.array([mid]), integer)
    assert mid in entry.cand
    i = entry.cand.index(mid)
    assert entry.share[i] == _dp.ROUND_SHARE
    # a record at the middle counts in the candidate's cell and in the candidate's own bin, the first above
    # the middle edge, which holds no other round candidate
    k = len(entry.cand)
    assert rows[0, i] == pytest.approx(_dp.ROUND_SHARE, abs=1e-15)
    assert np.flatnonzero(rows[0, k:k + entry.bins]).tolist() == [entry.home[i]] == [_dp.BINS // 2]
    others = [j for j in range(k) if entry.round[j] and j != i]
    assert entry.home[i] not in entry.home[others]
    if integer:  # the integers counted in the middle's bin (its even share) are those whose records land there
        near = np.arange(lo + 1, hi)  # neither a bound nor 0: each in a bin
        _, near_rows = _layout(lo, hi, near, integer)
        bins = near_rows[:, k:k + entry.bins].argmax(axis=1)
        assert entry.integers[i] == (bins == entry.home[i]).sum()

def test_a_heap_at_the_middle_of_the_bounds_is_released():
    # A 0-10 rating with 30.3% of the records at 5.0, bounds (0, 10), epsilon 1: the fit kept no point mass
    # and released 0.0% at 5.0 (10% smeared over [4.9, 5.1]).
    rng = np.random.default_rng(0)
    n = 4000
    score = np.where(rng.random(n) < 0.30, 5.0, np.round(rng.uniform(0, 10, n), 2))
    df = pd.DataFrame({"score": score, "age": rng.integers(16, 66, n)})
    share = float((df.score == 5.0).mean())
    synth = Synthesizer(target_vars=["score"], condition_vars=["age"], epsilon=1.0, delta=1e-5,
                        public_bounds={"score": (0.0, 10.0), "age": (16, 65)}, epochs=1, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        synth.fit(df, seed=0)
    assert 5.0 in synth.encoders_["score"].point_masses
    drawn = synth.sample(20_000, seed=1)["score"]
    assert float((drawn == 5.0).mean()) == pytest.approx(share, abs=0.04)


@pytest.mark.parametrize("standardize, epsilon", [("quantile", 8.0), ("moments", 1.0)])
def test_a_dp_release_lies_within_the_public_bounds(standardize, epsilon):
    # Shares in percent, public bounds (0, 100), every training value inside them: the encoder's logit runs
    # between the bounds widened by 1e-4 of their width and its decode held draws inside the widened
    # interval only (quantile, epsilon 8: up to 100.006 and down to -0.0065 in 50,000 draws; moments,
    # epsilon 1: 2-4% of the draws at about -0.01). Two numeric conditions: the condition model's tree
    # draws them, and they too lie within their bounds.
    rng = np.random.default_rng(0)
    n = 4000
    df = pd.DataFrame({"pct_hi": 100 * rng.beta(5, 0.7, n), "pct_lo": 100 * rng.beta(0.7, 5, n),
                       "age": rng.integers(16, 56, n), "rate": rng.beta(0.5, 0.5, n)})
    bounds = {"pct_hi": (0.0, 100.0), "pct_lo": (0.0, 100.0), "age": (16, 55), "rate": (0.0, 1.0)}
    synth = Synthesizer(target_vars=["pct_hi", "pct_lo"], condition_vars=["age", "rate"], epsilon=epsilon,
                        delta=1e-5, public_bounds=bounds, epochs=1, standardize=standardize, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        synth.fit(df, seed=0)
    drawn = synth.sample(50_000, seed=1)
    for name, (lo, hi) in bounds.items():
        assert drawn[name].between(lo, hi).all(), (name, drawn[name].min(), drawn[name].max())
    # generate, given conditions, holds them too
    given = drawn[["age", "rate"]].iloc[:2000].reset_index(drop=True)
    again = synth.generate(given, seed=2)
    assert again[["pct_hi", "pct_lo"]].stack().between(0.0, 100.0).all()


def _fit_cps1(n: int, weighted: bool) -> list[str]:
    """The PrivacyWarnings of a DP fit of ``n`` cps1 records (with a weight column of ones when ``weighted``)."""
    from microplex.datasets import load_dataset

    data = load_dataset("cps1").sample(n, random_state=1).reset_index(drop=True).assign(w=1.0)
    bounds = {"re74": (0.0, 25862.32), "re78": (0.0, 25564.67), "age": (16, 55), "educ": (0, 18)}
    synth = Synthesizer(target_vars=["re74", "re78"], condition_vars=["age", "educ"], epsilon=1.0, delta=1e-5,
                        public_bounds={**bounds, **({"w": (0.0, 1.0)} if weighted else {})}, epochs=1,
                        verbose=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        synth.fit(data, "w" if weighted else None, seed=0)
    return [str(w.message) for w in caught if issubclass(w.category, PrivacyWarning)
            and "mostly noise" in str(w.message) and w.filename == __file__]


@pytest.mark.parametrize("weighted", [False, True])
def test_a_dp_fit_on_few_records_warns_with_or_without_weights(weighted):
    # 40 cps1 records at epsilon 1 (statistics noise sd 16.6: 2.4 sd of records): the release's ages were all
    # 51-54 against 16-55 in the data. The same records with a weight column of ones and bound 1 warned that
    # the histograms are mostly noise; without the column the fit said nothing.
    said = _fit_cps1(40, weighted)
    assert len(said) == 1
    if not weighted:
        assert "has 40 records, fewer than 64 noise standard deviations" in said[0] and "'epsilon'" in said[0]


def test_a_dp_fit_on_enough_records_does_not_warn_that_it_is_noise():
    # 1,500 records are 88 noise standard deviations: no warning
    assert _fit_cps1(1500, weighted=False) == []
