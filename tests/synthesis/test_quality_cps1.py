"""Quality bar on real data (issue 2): cps1 earnings, fit on 80%, synthesize the held-out 20%.

Each figure must meet the bar; a broken model (independent point masses, clipped tails, ignored
conditions) fails. Five synthetic draws per held-out record reduce the synthetic sampling noise;
the comparison is always with the held-out truth.
"""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from microplex import Synthesizer

TARGETS = ["re74", "re75", "re78"]
CONDITIONS = ["age", "educ", "black", "hisp", "marr", "nodeg"]
DRAWS = 5


@pytest.fixture(scope="module")
def split_and_synthetic(cps1):
    rng = np.random.default_rng(0)
    order = rng.permutation(len(cps1))
    cut = int(0.8 * len(cps1))
    train, holdout = cps1.iloc[order[:cut]], cps1.iloc[order[cut:]].reset_index(drop=True)
    synth = Synthesizer(TARGETS, CONDITIONS, verbose=False).fit(train, seed=0)
    conditions = pd.concat([holdout[CONDITIONS]] * DRAWS, ignore_index=True)
    return synth, holdout, synth.generate(conditions, seed=1)


def test_marginal_ks(split_and_synthetic):
    _, holdout, synthetic = split_and_synthetic
    for t in TARGETS:
        assert ks_2samp(holdout[t], synthetic[t]).statistic <= 0.05, t


def test_point_mass_shares(split_and_synthetic):
    synth, holdout, synthetic = split_and_synthetic
    for t in TARGETS:
        for value in synth.point_masses_[t]:
            err = abs((holdout[t] == value).mean() - (synthetic[t] == value).mean())
            assert err <= 0.025, (t, value, err)


def test_point_masses_are_joint_not_independent(split_and_synthetic):
    """P(all three zero) is far above the product of the marginals in the data; the model keeps it."""
    _, holdout, synthetic = split_and_synthetic
    all_zero_real = (holdout[TARGETS] == 0).all(axis=1).mean()
    all_zero_syn = (synthetic[TARGETS] == 0).all(axis=1).mean()
    independent = np.prod([(holdout[t] == 0).mean() for t in TARGETS])
    assert all_zero_real > 10 * independent
    assert abs(all_zero_syn - all_zero_real) < 0.015


def test_correlation_matrix(split_and_synthetic):
    _, holdout, synthetic = split_and_synthetic
    err = np.abs(np.corrcoef(holdout[TARGETS].T) - np.corrcoef(synthetic[TARGETS].T)).max()
    assert err <= 0.05


@pytest.mark.parametrize("group", ["marr", "nodeg"])
def test_subgroup_ks(split_and_synthetic, group):
    _, holdout, synthetic = split_and_synthetic
    for value in (0, 1):
        real, syn = holdout[holdout[group] == value], synthetic[synthetic[group] == value]
        for t in TARGETS:
            assert ks_2samp(real[t], syn[t]).statistic <= 0.08, (group, value, t)


def test_upper_quantiles_follow_the_data(split_and_synthetic):
    _, holdout, synthetic = split_and_synthetic
    for t in TARGETS:
        cont_real = holdout[t][(holdout[t] > 0) & (holdout[t] < holdout[t].max())]
        cont_syn = synthetic[t][(synthetic[t] > 0) & (synthetic[t] < holdout[t].max())]
        for q in (0.5, 0.9, 0.99):
            assert cont_syn.quantile(q) == pytest.approx(cont_real.quantile(q), rel=0.1), (t, q)


def test_holdout_log_likelihood_is_finite(split_and_synthetic):
    synth, holdout, _ = split_and_synthetic
    lp = synth.log_prob(holdout)
    assert np.isfinite(lp).all()
