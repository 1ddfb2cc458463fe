"""Session 76: a DP condition tree's draws near a public bound."""

import numpy as np
import pandas as pd
import pytest

from microplex import Synthesizer
from microplex.synthesis._dp_tree import draw_conditions
from test_s76_dp_tail import fit_moments_dp


def _tree_model(seed: int) -> tuple[Synthesizer, pd.DataFrame]:
    """A moments-mode DP model (epsilon 1, one epoch) with two conditions, so that its condition model is a tree:
    ``r`` log-uniform between 1 and 999 with public bounds (0, 1000) (no training value within 1 of 0), and an
    integer ``a``."""
    rng = np.random.default_rng(0)
    n = 4000
    df = pd.DataFrame({"r": np.exp(rng.uniform(0.0, np.log(999.0), n)), "a": rng.integers(16, 56, n),
                       "y": rng.normal(size=n)})
    bounds = {"r": (0.0, 1000.0), "a": (16, 55), "y": (-10.0, 10.0)}
    return fit_moments_dp(df, ["y"], ["r", "a"], bounds, seed), df


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_condition_tree_makes_no_point_mass_at_a_public_bound(seed):
    # The tree draws a score uniform in probability within its bin; the lowest bin's normal tail reached beyond
    # the public bound 0 (into the encoder's margin) and those draws were clipped onto it: 0.23-0.35% of the
    # draws of r exactly at 0, where no training value lies within 1 of it. The draw is now restricted to the
    # part of the bin inside the bounds (an exact truncation), so the bin keeps its share.
    synth, df = _tree_model(seed)
    assert hasattr(synth.condition_model_, "condition_tree_")
    assert (df["r"] >= 1.0).all()
    drawn = draw_conditions(synth.condition_model_, 400_000, seed)
    assert drawn["r"].between(0.0, 1000.0).all()
    assert int((drawn["r"] == 0.0).sum()) == 0
    assert int((drawn["r"] == 1000.0).sum()) == 0
    # the released draws too
    released = synth.sample(50_000, seed=seed)
    assert int((released["r"] == 0.0).sum()) == 0 and released["r"].between(0.0, 1000.0).all()
