"""Session 72, lumpy values: merged rounding levels, a heap at an integer's zero, log_prob outside a lone
segment's support, and all-negative targets modelled as the mirror image of all-positive ones."""

import numpy as np
import pandas as pd
import pytest

from microplex import Synthesizer
from microplex.synthesis.rounding import RoundingGrid, decimal_levels, magnitude_bands

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _merged_band_values():
    """Band 2 (100-999): 10 records at multiples of 100 (too few for level 2 of its own: merged into level 1),
    40 at other multiples of 10, 50 whole numbers."""
    rng = np.random.default_rng(0)
    hundreds = rng.integers(1, 10, 10) * 100.0
    tens = rng.integers(10, 100, 200) * 10.0
    tens = tens[tens % 100 != 0][:40]
    whole = rng.integers(100, 1000, 400).astype(float)
    whole = whole[whole % 10 != 0][:50]
    return np.concatenate([hundreds, tens, whole])


def test_a_merged_level_is_drawn_as_multiples_of_the_finer_level_it_joins():
    """A level held by too few records in a band counts toward the next finer level; that level then takes any
    multiple of its unit (round hundreds among the tens). It took only values of exactly that level, so the
    round hundreds of the band were never drawn: a share of 0 where the grid gives hazard * 1/10."""
    x = _merged_band_values()
    grid = RoundingGrid.fit(x, np.ones(x.size), min_count=20)
    (levels, hazards) = grid.bands[2]
    assert levels == (1, 0) and hazards[0] == pytest.approx(0.5)  # 50 of 100 records at level 1 or coarser
    rng = np.random.default_rng(1)
    flow = rng.uniform(100.0, 999.0, 400_000)
    out = grid.apply(flow, rng.random(flow.size))
    assert np.isin(magnitude_bands(out), [2, 3]).all()
    # level 1 drawn half the time, a tenth of its nearest multiples of 10 are multiples of 100 (sd 0.00035)
    assert np.mean(out % 100 == 0) == pytest.approx(0.05, abs=0.002)
    assert np.mean(out % 10 == 0) == pytest.approx(0.5, abs=0.003)


def test_a_kept_coarser_level_is_still_skipped_by_the_finer_one():
    """Where the coarser level is kept in the band, the finer one still skips its multiples (the exact shares
    of each level)."""
    x = np.concatenate([_merged_band_values(), np.arange(1, 10) * 100.0, np.arange(1, 3) * 100.0 + 0.0])
    x = np.concatenate([x, np.full(10, 300.0)])  # 31 multiples of 100: level 2 kept
    grid = RoundingGrid.fit(x, np.ones(x.size), min_count=20)
    levels, hazards = grid.bands[2]
    assert levels == (2, 1, 0)
    rng = np.random.default_rng(2)
    out = grid.apply(rng.uniform(100.0, 999.0, 400_000), rng.random(400_000))
    h2, h1 = hazards[0], hazards[1]
    # the coarsest level takes any multiple of 100 (1,000 for a value above 950), level 1 none
    assert np.mean(out % 100 == 0) == pytest.approx(h2, abs=0.003)
    assert np.mean(decimal_levels(out) == 1) == pytest.approx((1 - h2) * h1, abs=0.003)


def test_synthesizer_draws_the_round_values_of_a_sparse_band():
    """The reproducer's integer: in the band 100-999, 8 of 78 training records are multiples of 10 (level 1
    merged into level 0 there); none of the 3,128 synthetic values of that band was."""
    rng = np.random.default_rng(11)
    n = 3000
    c = rng.normal(size=n)
    w = rng.lognormal(0, 0.5, n)
    x = np.round(rng.gamma(2, 15, n) * np.exp(0.3 * c)).astype(np.int64) + 1
    df = pd.DataFrame({"x": x, "c": c, "w": w})
    s = Synthesizer(["x"], ["c"], epochs=3, verbose=False, max_heaps=0).fit(df, weight_col="w", seed=0)
    bands = {b: levels for b, levels, _ in s.rounding_["x"]["bands"]}
    assert bands[2] == [0]
    o = s.sample(100_000, seed=1)["x"].to_numpy()
    in_band = magnitude_bands(o) == 2
    assert in_band.sum() > 1000
    # whole numbers drawn as any integer: about a tenth of them multiples of 10 (the training share 0.11)
    assert np.mean(o[in_band] % 10 == 0) == pytest.approx(0.1, abs=0.03)


def _count_with_a_zero_heap():
    """A count 0..~66 whose 0 holds about 1% of the records: a heap, not a point mass (the reproducer's)."""
    rng = np.random.default_rng(9)
    n = 3000
    c = rng.normal(size=n)
    w = rng.lognormal(0, 0.8, n)
    q = np.round(rng.gamma(3, 5, n)).astype(np.int64) + 1
    q[rng.random(n) < 0.006] = 0
    return pd.DataFrame({"q": q, "c": c, "w": w})


def test_a_non_negative_integer_whose_zero_is_a_heap_draws_no_negative_value():
    """The heap at 0 sits at compact coordinate -0.5, so the segment looked signed and got no lower bound: draws of
    -1 and -2 (30 in 100,000) and a finite log_prob below 0 (scored -inf since, see the log_prob test below).
    Non-negativity is read on the values themselves; the
    bound lies half a unit below the heap's coordinate."""
    df = _count_with_a_zero_heap()
    s = Synthesizer(["q"], ["c"], epochs=3, verbose=False).fit(df, weight_col="w", seed=0)
    enc = s.encoders_["q"]
    assert 0.0 not in enc.point_masses and 0.0 in enc.heaps and enc.compact
    assert enc.segments[0].lower == -1.0 and enc.segments[0].transform == "log"
    assert (s.sample(200_000, seed=5)["q"] >= 0).all()
    # the flow's values too, swept far below and above the training values
    u = np.linspace(-12.0, 12.0, 100_001)
    state = np.full(u.size, enc.continuous_states[0])
    assert enc.decode(u, state, np.zeros(u.size, dtype=np.int64)).min() == 1.0  # 0 is the heap's, drawn by its head


def test_a_zero_heap_model_file_loads_with_its_bound(tmp_path):
    """The bound half a unit below the zero heap's coordinate (-1.0) is what fit writes: the file loads and draws
    the same."""
    df = _count_with_a_zero_heap()
    s = Synthesizer(["q"], ["c"], epochs=1, verbose=False).fit(df, weight_col="w", seed=0)
    s.save(tmp_path / "m.json")
    loaded = Synthesizer.load(tmp_path / "m.json")
    assert loaded.encoders_["q"].segments[0].lower == -1.0
    pd.testing.assert_frame_equal(loaded.sample(2000, seed=3), s.sample(2000, seed=3))


def test_log_prob_is_minus_infinity_outside_a_lone_segments_support():
    """A target of one segment and no point mass has no discrete state: its state -1 beyond the segment's bound
    never reached the pattern lookup, and log_prob scored such values with the flow's mode (eusilc eqIncome > 0:
    -1.24 at -5, above the -10 to -11 of typical values)."""
    rng = np.random.default_rng(0)
    n = 2000
    c = rng.normal(size=n)
    df = pd.DataFrame({"y": np.exp(rng.normal(10, 0.7, n) + 0.3 * c), "c": c})
    s = Synthesizer(["y"], ["c"], epochs=2, verbose=False).fit(df, seed=0)
    seg = s.encoders_["y"].segments[0]
    assert s.encoders_["y"].n_states == 1 and seg.lower == 0.0
    lp = s.log_prob(pd.DataFrame({"y": [-1e6, -5.0, 0.0, 20000.0], "c": 0.0}))
    assert np.isneginf(lp[:3]).all() and np.isfinite(lp[3])
    # and the non-negative count whose 0 is a heap: below its bound
    count = Synthesizer(["q"], ["c"], epochs=1, verbose=False).fit(_count_with_a_zero_heap(), weight_col="w", seed=0)
    lp = count.log_prob(pd.DataFrame({"q": [-3, -1, 0, 5], "c": 0.0}))
    assert np.isneginf(lp[:2]).all() and np.isfinite(lp[2:]).all()


def _gains_and_losses():
    rng = np.random.default_rng(1)
    n = 3000
    c = rng.normal(size=n)
    w = rng.lognormal(0, 0.5, n)
    mag = np.round(np.exp(rng.normal(0, 1.0, n) + 0.5 * c), 2) + 0.01  # 0.01 .. ~80
    cents = np.round(mag * 10).astype(np.int64) + 1  # 1 .. ~800
    return pd.DataFrame({"gain": mag, "loss": -mag, "gain_i": cents, "loss_i": -cents, "c": c, "w": w})


@pytest.mark.parametrize("positive", ["gain", "gain_i"])
def test_an_all_negative_target_is_the_mirror_image_of_the_all_positive_one(positive, tmp_path):
    """Values all below 0 were modelled unbounded (asinh) where their mirror image is bounded at 0 (log): the
    99.9% quantile of |x| 116.9 against 28.0 (training 42.4), integer draws of 0 and +1 never seen. Now one
    segment of sign -1: the same transform, bounds and moments (the point masses and heaps come in the opposite
    order, so the networks train apart: the draws agree in distribution, not value by value)."""
    df = _gains_and_losses()
    negative = positive.replace("gain", "loss")
    fits = {col: Synthesizer([col], ["c"], epochs=2, verbose=False).fit(df, weight_col="w", seed=0)
            for col in (positive, negative)}
    pos, neg = (fits[col].encoders_[col].segments for col in (positive, negative))
    assert len(pos) == len(neg) == 1 and (pos[0].sign, neg[0].sign) == (1, -1)
    assert neg[0].transform == pos[0].transform == "log"
    assert (neg[0].lower, neg[0].upper) == (pos[0].lower, pos[0].upper) == (0.5 if "_i" in positive else 0.0, None)
    assert (neg[0].mean, neg[0].std, neg[0].tail_hi) == pytest.approx((pos[0].mean, pos[0].std, pos[0].tail_hi),
                                                                       rel=1e-12)
    drawn = {col: fits[col].sample(50_000, seed=1)[col].to_numpy() for col in fits}
    assert drawn[negative].max() < 0
    q = [0.5, 0.9, 0.99, 0.999]
    assert np.quantile(-drawn[negative], q) == pytest.approx(np.quantile(drawn[positive], q), rel=0.1)
    # the file loads (a single segment of sign -1) and draws the same
    fits[negative].save(tmp_path / "m.json")
    np.testing.assert_array_equal(
        Synthesizer.load(tmp_path / "m.json").sample(50_000, seed=1)[negative].to_numpy(), drawn[negative])
