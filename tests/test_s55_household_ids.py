"""Session 55: household ids of bool dtype. The person models' training rows looked each member's household up with
`.loc` on the ids, which pandas reads as a boolean mask when the ids are booleans: "IndexError: Boolean index has
wrong length" (found by the nightly property suite). Ids of any dtype now find their household by position."""

import warnings

import pandas as pd

from microplex.households import HouseholdSynthesizer


def test_boolean_household_ids_fit_and_sample():
    frame = pd.DataFrame({"hid": [False, False, True, True, True], "region": ["a", "a", "b", "b", "b"],
                          "sex": ["f", "m", "f", "m", "f"]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = HouseholdSynthesizer(["region"], ["sex"], "hid", geography="region", epochs=1,
                                     verbose=False).fit(frame, seed=0)
        households, persons = model.sample(20, seed=1)
    assert len(households) == 20 and set(persons["sex"]) <= {"f", "m"}
    assert (persons.groupby("hid").size().reindex(households["hid"]).to_numpy() == households[model.size_col_].to_numpy()).all()
