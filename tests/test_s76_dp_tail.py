"""DP draws at the public bounds with standardize="moments": the tail beyond a bound is drawn again, not piled
up at the bound (session 76)."""

import warnings

import numpy as np
import pandas as pd
import pytest

from microplex import ConvergenceError, Synthesizer


def _fit(seed: int) -> tuple[Synthesizer, pd.DataFrame]:
    """A moments-mode DP model (epsilon 1, one epoch) of two percentages with public bounds (0, 100): ``hi`` with
    every training value above 21, ``lo`` with a heap of 15% at 0 (its lower bound)."""
    rng = np.random.default_rng(0)
    n = 4000
    df = pd.DataFrame({"hi": 100 * rng.beta(5, 0.7, n), "lo": 100 * rng.beta(0.7, 5, n), "a": rng.integers(16, 56, n)})
    df.loc[:599, "lo"] = 0.0
    bounds = {"hi": (0.0, 100.0), "lo": (0.0, 100.0), "a": (16, 55)}
    return fit_moments_dp(df, ["hi", "lo"], ["a"], bounds, seed), df


def fit_moments_dp(df: pd.DataFrame, targets: list[str], conditions: list[str], bounds: dict, seed: int) -> Synthesizer:
    """A moments-mode DP model of ``df`` (epsilon 1, delta 1e-5, one epoch; its warnings silenced)."""
    synth = Synthesizer(target_vars=targets, condition_vars=conditions, epsilon=1.0, delta=1e-5, public_bounds=bounds,
                        epochs=1, standardize="moments", verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        synth.fit(df, seed=seed)
    return synth


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_moments_tail_makes_no_point_mass_at_a_public_bound(seed):
    # The encoder's logit runs between the bounds widened by 1e-4 of their width; the flow's left tail reached
    # into that margin and the draws there were clipped to 0: 0.85-2.2% of the draws of hi exactly at 0 (none in
    # the data), and lo's heap at 0 (15%) released as 16.3-16.6%. The records are drawn again instead.
    synth, df = _fit(seed)
    drawn = synth.sample(50_000, seed=seed + 1)
    assert drawn[["hi", "lo"]].stack().between(0.0, 100.0).all()
    assert (df["hi"] > 21).all()
    assert float((drawn["hi"] == 0.0).mean()) < 1e-3
    assert float((drawn["hi"] == 100.0).mean()) < 1e-3
    # the data's own heap at the bound survives, as a point mass, at its share
    assert 0.0 in synth.encoders_["lo"].point_masses
    assert float((drawn["lo"] == 0.0).mean()) == pytest.approx(0.15, abs=0.008)


def test_a_model_drawing_outside_its_bounds_raises():
    # A model whose draws all lie outside the public bounds (here its standardization moved far below them, as
    # an edited model file could) is refused, not clipped to the bound.
    synth, _ = _fit(0)
    synth.encoders_["hi"].segments[0].mean = -80.0
    with pytest.raises(ConvergenceError, match=r"outside the public bounds \(0\.0, 100\.0\) of target 'hi'"):
        synth.sample(1000, seed=1)
