import numpy as np
import pandas as pd
import pytest

from microplex.evaluation import propensity as m


@pytest.fixture
def rng():
    return np.random.default_rng(42)


def test_pmse_is_near_zero_for_identical_and_c_times_one_minus_c_for_separable(rng):
    real = pd.DataFrame({"x": rng.normal(size=600), "g": rng.choice(["a", "b"], 600)})
    assert m.pmse(real, real.copy()) < 0.01
    far = real.assign(x=real["x"] + 100)
    assert m.pmse(real, far) == pytest.approx(0.25, abs=0.005)
    half = far.iloc[:300]
    assert m.pmse(real, half) == pytest.approx(2 / 9, abs=0.005)


def test_pmse_accepts_a_custom_classifier(rng):
    from sklearn.linear_model import LogisticRegression

    real = pd.DataFrame({"x": rng.normal(size=400)})
    assert m.pmse(real, real + 50, classifier=LogisticRegression()) == pytest.approx(0.25, abs=0.01)


def test_pmse_is_exported_from_metrics():
    from microplex.evaluation import metrics

    assert metrics.pmse is m.pmse


def test_pmse_repeats_average_out_the_fold_split():
    """One fold split is a noisy draw: averaging five cuts the spread over split seeds (the data
    are fixed), and the default repeats a small sample as five splits do."""
    rng = np.random.default_rng(7)
    real = pd.DataFrame({"x": rng.normal(size=700), "y": rng.normal(size=700)})
    synth = pd.DataFrame({"x": rng.normal(0.1, 1.05, size=700), "y": rng.normal(size=700)})
    one = [m.pmse(real, synth, n_repeats=1, seed=s) for s in range(8)]
    five = [m.pmse(real, synth, n_repeats=5, seed=s) for s in range(8)]
    assert np.std(five) < 0.6 * np.std(one)
    assert abs(np.mean(five) - np.mean(one)) < 2 * np.std(one) / np.sqrt(8)
    assert m.pmse(real, synth, seed=3) == m.pmse(real, synth, n_repeats=5, seed=3)
    assert m.pmse(real, synth, n_repeats=1, seed=3) != m.pmse(real, synth, n_repeats=5, seed=3)


def test_rows_of_weight_zero_change_nothing(rng):
    # rows of weight 0 are outside the population: the same pMSE as without them (they took fold places, histogram
    # bins and leaf counts of the classifier, and the row count that scales the weights: 0.0097 beside 0.0088)
    real = pd.DataFrame({"x": rng.normal(size=600), "g": rng.choice(["a", "b"], 600)})
    synth = pd.DataFrame({"x": rng.normal(0.3, 1.0, size=600), "g": rng.choice(["a", "b"], 600)})
    outside = pd.DataFrame({"x": rng.normal(5.0, 1.0, size=300), "g": ["c"] * 300})
    wr = np.r_[rng.uniform(0.5, 2.0, 600), np.zeros(300)]
    ws = rng.uniform(0.5, 2.0, 600)
    alone = m.pmse(real, synth, wr[:600], ws)
    assert m.pmse(pd.concat([real, outside], ignore_index=True), synth, wr, ws) == alone
    assert m.pmse(synth, pd.concat([real, outside], ignore_index=True), ws, wr) == m.pmse(synth, real, ws, wr[:600])
