"""A continuous target with exactly one value on one side of its point mass (one negative income among zeros and
positive incomes: EU-SILC's py050n, -1653.05 at weight 655.064615384615) saved a model file that its own load refused
("segments[0].knots must be present ... holds more than one value"): the weighted mean of that one value came out an
ulp off, so its variance was 7.9e-31 rather than 0, the segment kept a std of 8.9e-16 instead of fit's 1.0 for a
segment of one value, and load accepts a knotless segment only as fit writes it. The documented household model on
EU-SILC could not be reloaded (and the household pipeline loads the model fit saved)."""

import numpy as np
import pandas as pd
import pytest

from microplex import Synthesizer
from microplex._stats import weighted_mean_var, weighted_std


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 300
    df = pd.DataFrame({"age": rng.integers(20, 80, n),
                       "inc": np.where(rng.random(n) < 0.5, 0.0, np.round(rng.lognormal(9, 1, n), 2)),
                       "w": rng.uniform(200, 800, n)})
    df.loc[0, ["inc", "w"]] = [-1653.05, 655.064615384615]
    return df


@pytest.mark.parametrize("value, weight", [(np.log(1653.05), 655.064615384615), (0.1, 3.3), (-2.5e300, 1e-300)])
def test_the_weighted_moments_of_one_value_are_that_value_and_zero(value, weight):
    for x, w in ((np.array([value]), np.array([weight])), (np.full(5, value), np.array([weight, 1.7, 2.2, 5.5, 1e-3]))):
        assert weighted_mean_var(x, w) == (value, 0.0)
        assert weighted_std(x, w) == 0.0


def test_a_segment_of_one_value_round_trips_through_its_model_file(tmp_path):
    df = _frame()
    s = Synthesizer(["inc"], ["age"], epochs=2, verbose=False).fit(df, weight_col="w", seed=0)
    seg = next(g for g in s.encoders_["inc"].segments if g.sign < 0)
    assert seg.knots is None and seg.std == 1.0  # before: std 8.9e-16
    s.save(tmp_path / "m.zip")
    loaded = Synthesizer.load(tmp_path / "m.zip")  # before: DataValidationError "... knots must be present"
    cond = df[["age"]].head(50)
    pd.testing.assert_frame_equal(loaded.generate(cond, seed=3), s.generate(cond, seed=3))


def test_a_file_written_before_the_fix_still_loads(tmp_path):
    """Files fit wrote before: the one-value segment's std a few ulps of its mean, its tails equal to the mean."""
    s = Synthesizer(["inc"], ["age"], epochs=2, verbose=False).fit(_frame(), weight_col="w", seed=0)
    seg = next(g for g in s.encoders_["inc"].segments if g.sign < 0)
    seg.std = 8.881784197001252e-16
    s.save(tmp_path / "old.zip")
    loaded = Synthesizer.load(tmp_path / "old.zip")
    assert next(g for g in loaded.encoders_["inc"].segments if g.sign < 0).std == 8.881784197001252e-16


def test_the_documented_household_model_on_eusilc_round_trips(tmp_path):
    """The households the documented call trains on include the one negative py050n (household 452): its model
    file loads and samples the same households and persons (before: load refused the file save had written)."""
    from microplex import HouseholdSynthesizer
    from microplex.datasets import load_dataset

    df = load_dataset("eusilc")
    df = df[df["db030"] <= 800]
    assert ((df["py050n"] < 0) & (df["db030"] == 452)).sum() == 1
    hs = HouseholdSynthesizer(household_vars=["db040", "hsize", "hy040n", "hy050n"],
                              person_vars=["age", "rb090", "pl030", "py010n", "py050n"],
                              household_id="db030", household_weight="db090", age_var="age", epochs=1,
                              verbose=False).fit(df, seed=0)
    hs.save(tmp_path / "hh.zip")
    loaded = HouseholdSynthesizer.load(tmp_path / "hh.zip")
    for a, b in zip(loaded.sample(40, seed=1), hs.sample(40, seed=1), strict=True):
        pd.testing.assert_frame_equal(a, b)
