"""Session 55: a fit with nothing to learn is a clear error. Every target constant on the records of positive weight
(its other values held by records of weight 0 only, which the model leaves out) left no network to train, and
torch raised "optimizer got an empty parameter list" (found by the nightly property suite, through a
HouseholdSynthesizer whose person target was constant on the weighted households)."""

import pandas as pd
import pytest

from microplex import DataValidationError, Synthesizer
from microplex.households import HouseholdSynthesizer


def test_targets_constant_on_the_weighted_records_are_refused():
    df = pd.DataFrame({"sex": ["f"] * 19 + ["m"], "age": range(20), "w": [1.0] * 19 + [0.0]})
    synth = Synthesizer(["sex"], ["age"], epochs=1, verbose=False)
    with pytest.raises(DataValidationError, match=r"Every target \(\['sex'\]\) is constant on the records of positive"):
        synth.fit(df, weight_col="w", seed=0)
    assert not hasattr(synth, "patterns_")  # nothing half-fitted
    # one more weighted record of the other value: a model to train, as before
    df.loc[19, "w"] = 1.0
    out = synth.fit(df, weight_col="w", seed=0).sample(50, seed=1)
    assert set(out["sex"]) <= {"f", "m"}


def test_the_household_case_of_the_property_suite():
    frame = pd.DataFrame({"hid": [1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 10, 11, 12], "region": list("aaaaaaaaaaaba"),
                          "w": [0.0] * 10 + [1.0, 1.0, 0.0], "sex": ["f"] * 13})
    frame.loc[0, "sex"] = "m"  # a value only a household of weight 0 holds
    model = HouseholdSynthesizer(["region"], ["sex"], "hid", household_weight="w", geography="region", epochs=1,
                                 verbose=False)
    with pytest.raises(DataValidationError, match="constant"):
        model.fit(frame, seed=0)
