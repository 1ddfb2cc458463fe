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
