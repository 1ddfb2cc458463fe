"""The support of a noisy DP histogram (``synthesis/_dp_histogram.py``)."""

from __future__ import annotations

import numpy as np
import pytest

from microplex.synthesis._dp_histogram import core, histogram_support, posterior_counts

#: A body of 7 bins among 32 (a target's values between wide public bounds), in noise standard deviations.
BODY = np.zeros(32)
BODY[8:15] = np.array([20, 60, 150, 400, 300, 80, 10]) / 59.0


def _draws(reps: int, seed: int = 0) -> np.ndarray:
    return BODY[None, :] + np.random.default_rng(seed).normal(0.0, 1.0, (reps, len(BODY)))


def test_noise_far_from_the_mass_is_left_out():
    """Bins 4 or more away from the body hold noise only. A threshold of 2 noise standard deviations
    per bin (the rule before) keeps about one such bin in 44, about 0.5 a histogram here; the
    support keeps one in a few hundred histograms."""
    far = np.r_[0:4, 19:32]
    noisy = _draws(2000)
    kept = np.array([histogram_support(v, 1.0)[far].sum() for v in noisy])
    per_bin_rule = (noisy[:, far] >= 2.0).sum(axis=1)
    assert per_bin_rule.mean() > 0.3  # what the support is there to avoid
    assert kept.mean() < 0.05


def test_the_body_is_kept():
    """The bins holding at least 150 / 59 = 2.5 noise standard deviations each are (almost) always
    kept, the run is one piece around them, and the body's bins of 0.2-1.4 noise standard deviations
    are kept about half the time (bins 9 and 13, of 1.0 and 1.4: 45%; bins 8 and 14: 15%)."""
    masks = np.array([histogram_support(v, 1.0) for v in _draws(500, seed=1)])
    assert masks[:, 10:13].mean() > 0.97
    assert masks[:, 8:15].mean() > 0.5
    runs = [np.flatnonzero(np.diff(np.r_[0, m.astype(int), 0]) == 1).size for m in masks]
    assert np.mean(np.array(runs) == 1) > 0.95


def test_a_second_mode_is_kept():
    """A second body 10 bins away (6 noise standard deviations a bin) is its own run."""
    v = BODY.copy()
    v[24:27] = 6.0
    masks = np.array([histogram_support(v + e, 1.0) for e in np.random.default_rng(2).normal(0, 1, (200, 32))])
    assert masks[:, 25].mean() > 0.97
    assert masks[:, 18:21].mean() < 0.1  # the gap between the modes stays empty


def test_without_noise_the_bins_with_mass():
    v = np.array([0.0, 0.0, 3.0, 0.0, 5.0, 0.0])
    assert histogram_support(v, 0.0).tolist() == [False, False, True, False, True, False]


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_bad_noise_is_refused(bad):
    with pytest.raises(ValueError, match="noise_sd"):
        histogram_support(np.ones(5), bad)


def test_no_run_crosses_a_barrier():
    """A body starting at the barrier (values of one sign) with 1.5 noise standard deviations in
    each of the 3 bins below: without the barrier the run grows into them, with it the run stops;
    a body below the barrier of its own (6 standard deviations a bin) is a run of its own."""
    v = np.zeros(16)
    v[8:12] = [8.0, 6.0, 3.0, 1.0]
    v[5:8] = 1.5
    assert histogram_support(v, 1.0)[6:8].all()
    mask = histogram_support(v, 1.0, barriers=(8,))
    assert not mask[:8].any() and mask[8:11].all()
    v[5:8], v[2:5] = 0.0, 6.0
    mask = histogram_support(v, 1.0, barriers=(8,))
    assert mask[2:5].all() and not mask[5:8].any() and mask[8:11].all()


def test_noise_of_each_bin():
    """A bin of 2.5 units beside the body: 2.5 noise standard deviations where its noise is 1 (it is
    kept), 1.25 where its noise is 2 (a free point-mass candidate's noise joined it): the window
    beyond the run then passes only with a larger count. A scalar and an array of equal values agree."""
    v = np.zeros(12)
    v[3:6] = [10.0, 20.0, 10.0]
    v[6], v[7] = 2.5, 0.0
    sd = np.ones(12)
    assert histogram_support(v, sd)[6] and histogram_support(v, 1.0).tolist() == histogram_support(v, sd).tolist()
    sd[6:9] = 2.0  # the window [6, 9) now has noise sd sqrt(12) = 3.46 > 2.5
    assert not histogram_support(v, sd)[6]
    with pytest.raises(ValueError, match="noise_sd"):
        histogram_support(v, np.r_[sd[:-1], -1.0])


def _kept_tail_and_body(shrink: bool, reps: int = 300, seed: int = 3) -> tuple[float, float]:
    """Over ``reps`` noisy copies of four targets' histograms (the session-34 case: a body and empty
    bins around it, noise sd 1), (mean mass the support keeps in bins that are truly empty, mean
    relative error of the kept body's mass), with each kept bin outside the runs' cores at its
    posterior mean (``shrink``, as the statistics release) or at its noisy count clipped at 0 (the
    rule before)."""
    rng = np.random.default_rng(seed)
    tail, body = [], []
    for _ in range(reps):
        noisy = [BODY + rng.normal(0.0, 1.0, len(BODY)) for _ in range(4)]
        post = posterior_counts(noisy, [1.0] * 4) if shrink else [np.clip(v, 0, None) for v in noisy]
        for v, p in zip(noisy, post):
            support = histogram_support(v, 1.0)
            kept = np.where(support, np.where(core(v, 1.0, support), np.clip(v, 0, None), p), 0.0)
            tail.append(kept[BODY == 0].sum())
            body.append(kept[BODY > 0].sum() / BODY.sum() - 1.0)
    return float(np.mean(tail)), float(np.mean(body))


def test_posterior_counts_remove_the_selection_bias_of_the_runs_ends():
    """The runs grow while the windows beyond them pass, so an empty bin at a run's end is kept when its
    noise is positive: its clipped count is biased upwards (0.36 noise sd of mass a histogram here; the
    body is 17 sd). Outside the runs' cores, posterior means keep 0.20 of it (setting those bins to 0
    would keep 0.15 and lose more of the body's true ends). The body's mass: -6% before (the support
    cuts its ends), -11% after."""
    tail_before, body_before = _kept_tail_and_body(shrink=False)
    tail_after, body_after = _kept_tail_and_body(shrink=True)
    assert tail_before > 0.3
    assert tail_after < 0.7 * tail_before
    assert -0.15 < body_after < body_before


def test_posterior_counts_keep_large_counts_and_clip_without_noise():
    noisy = [np.r_[np.zeros(30), 50.0, 80.0] + np.random.default_rng(4).normal(0, 1, 32)]
    [post] = posterior_counts(noisy, [1.0])
    assert np.array_equal(post[30:], noisy[0][30:])  # at least PRIOR_KEEP_Z sd: unchanged
    assert (post >= 0).all() and post[:30].max() < 1.5
    [clipped] = posterior_counts([np.array([-2.0, 0.0, 3.0])], [0.0])
    assert clipped.tolist() == [0.0, 0.0, 3.0]


@pytest.mark.parametrize("sds, match", [([1.0, 1.0], "one entry per histogram"), ([-1.0], "finite numbers"),
                                        ([float("nan")], "finite numbers"), ([np.array([0.0, 1.0, 1.0])], "all 0")])
def test_posterior_counts_refuse_bad_noise(sds, match):
    with pytest.raises(ValueError, match=match):
        posterior_counts([np.ones(3)], sds)


def test_core_is_per_run():
    """A bin of 2 noise sd outside a run (noise, left out of the support) does not stretch the run's core."""
    v = np.array([2.5, 0.0, 0.0, 0.5, 3.0, 5.0, 0.5, 0.2, 0.0, 2.1])
    support = np.array([0, 0, 0, 1, 1, 1, 1, 1, 0, 0], dtype=bool)
    assert core(v, 1.0, support).astype(int).tolist() == [0, 0, 0, 0, 1, 1, 0, 0, 0, 0]
    assert not core(v, 1.0, np.zeros(10, dtype=bool)).any()


def test_posterior_means_rise_with_the_count_and_fall_with_the_noise():
    """Under one prior and one noise sd, a larger noisy count has a larger posterior mean (Gaussian noise:
    the posterior mean is non-decreasing in the observation); at the same count, a noisier bin is pulled
    further towards the prior's empty bins."""
    rng = np.random.default_rng(5)
    body = [np.r_[np.zeros(24), 300.0, 900.0, 500.0, 120.0, np.zeros(4)] + rng.normal(0, 30, 32) for _ in range(3)]
    grid = np.linspace(-60.0, 150.0, 43)
    *_, post = posterior_counts(body + [grid], [30.0] * 4)
    assert np.all(np.diff(post) >= -1e-9)
    assert post[0] < 5 and post[-1] > 100  # noise near 0 held near 0, 5 sd kept
    *_, same = posterior_counts(body + [np.array([60.0, 60.0])], [30.0] * 3 + [np.array([20.0, 40.0])])
    assert same[0] > same[1]
