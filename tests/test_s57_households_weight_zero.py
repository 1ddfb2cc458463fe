"""Session 57: households of weight 0 are outside the population a `HouseholdSynthesizer` learns. One such household
in a second region made the geography look varying: the size was to be drawn given the region, and the household
model refused the region as "constant on the records of positive weight", where the same households without it fit.
Whether the geography, the size and the inner models' conditions vary is now read on the records of positive
weight."""

import warnings

import numpy as np
import pandas as pd

from microplex.households import HouseholdSynthesizer


def _households(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for h in range(n):
        size, inc = int(rng.integers(1, 4)), float(rng.lognormal(10, 1))
        for _ in range(size):
            rows.append({"hid": h, "region": "N", "hsize": size, "inc": inc, "age": float(rng.integers(0, 90)),
                         "w": 1.0})
    return pd.DataFrame(rows)


def _fit(frame: pd.DataFrame) -> HouseholdSynthesizer:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return HouseholdSynthesizer(["hsize", "inc", "region"], ["age"], "hid", "w", geography="region", epochs=2,
                                    verbose=False).fit(frame, seed=0)


def test_a_household_of_weight_zero_in_another_region_changes_nothing():
    frame = _households(60, 0)
    outside = pd.DataFrame({"hid": [999, 999], "region": ["S", "S"], "hsize": [2, 2], "inc": [5e4, 5e4],
                            "age": [40.0, 38.0], "w": [0.0, 0.0]})
    alone, with_zero = _fit(frame), _fit(pd.concat([frame, outside], ignore_index=True))
    assert with_zero.allotted_ == alone.allotted_ == "hsize"  # one region of positive weight: sizes are allotted
    households, persons = with_zero.sample(200, seed=1)
    assert set(households["region"]) == {"N"}
    expected = alone.sample(200, seed=1)
    pd.testing.assert_frame_equal(households, expected[0])
    pd.testing.assert_frame_equal(persons, expected[1])
