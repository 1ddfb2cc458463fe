"""Session 57: a HouseholdSynthesizer's person models meet every category their conditions may take.

Each person model is fitted on some of the training rows (the oldest members, the later members, the adults). A
region that only one-person households hold never reaches the later members' model; the household model, drawing a
larger household there (it generalizes across sizes), then handed that model a category it had never seen, and
``sample`` failed: "Condition column 'region' has categories not seen in training: ['a']" (found by the clean
household frames property, then with a geography). The same held for a person category that only the last members
of households hold, read by the next member's model. Those categories are now known to the person models, as
categories they did not learn from: drawn, with one warning naming the household variable.

Session 66: with structural zeros the household model learns that region 'a' holds one-person households only (20
training households, 15 expected of larger sizes) and never draws a larger one there; these tests turn them off
(``synthesizer_params={"structural_zeros": False}``) to keep meeting the case, which a smaller region still meets.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

from microplex import ExtrapolationWarning
from microplex.households import HouseholdSynthesizer


def _frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for h in range(400):
        region = rng.choice(["a", "b", "c"], p=[0.05, 0.5, 0.45])
        size = 1 if region == "a" else int(rng.integers(1, 5))
        for p in range(size):
            # status 'retired' only for one-person households and the last members of larger ones
            status = "retired" if p == size - 1 and p > 0 and rng.random() < 0.3 else rng.choice(["work", "home"])
            rows.append({"hid": h, "region": region, "age": int(rng.integers(18 if p == 0 else 0, 90)),
                         "sex": rng.choice(["f", "m"]), "status": status, "w": float(rng.uniform(0.5, 2.0))})
    df = pd.DataFrame(rows)
    df["w"] = df.groupby("hid")["w"].transform("first")
    return df


@pytest.mark.parametrize("geography", ["region", None])
def test_a_region_of_one_person_households_only_is_drawn_for_larger_households(geography, tmp_path):
    df = _frame()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hs = HouseholdSynthesizer(["region"], ["age", "sex", "status"], "hid", "w", geography=geography,
                                  age_var="age", epochs=3, verbose=False,
                                  synthesizer_params={"structural_zeros": False}).fit(df, seed=0)
    with pytest.warns(ExtrapolationWarning, match=r"Household variable 'region', a condition of the person models: "
                                                  r"households holding \['a'\] got persons"):
        households, persons = hs.sample(3000, seed=1)
    larger = households[(households["region"] == "a") & (households[hs.size_col_] > 1)]
    assert len(larger) > 0  # the case that failed
    counts = persons.groupby("hid").size().reindex(households["hid"]).to_numpy()
    assert (counts == households[hs.size_col_].to_numpy()).all()
    assert set(persons["status"]) <= {"work", "home", "retired"}
    # saved and loaded: the same draws (the known categories are in the inner models' files)
    hs.save(tmp_path / "h.mpx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = HouseholdSynthesizer.load(tmp_path / "h.mpx").sample(3000, seed=1)
    pd.testing.assert_frame_equal(again[0], households)
    pd.testing.assert_frame_equal(again[1], persons)


def test_extrapolation_warnings_carry_their_column_reason_and_levels():
    """Session 58: the household sampler read the inner models' warnings by slicing their text ("held (" ... "); the
    model"); the warnings now carry ``column``, ``reason`` and ``levels``, which it reads instead, and its own
    warning carries the household variable."""
    df = _frame()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hs = HouseholdSynthesizer(["region"], ["age", "sex", "status"], "hid", "w", geography="region",
                                  age_var="age", epochs=3, verbose=False,
                                  synthesizer_params={"structural_zeros": False}).fit(df, seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hs.sample(3000, seed=1)
    ours = [w.message for w in caught if issubclass(w.category, ExtrapolationWarning)]
    assert [(m.column, m.reason, m.levels) for m in ours] == [("region", "weightless", ("a",))]
    assert str(ours[0]).startswith("Household variable 'region', a condition of the person models: households "
                                   "holding ['a'] got persons")
    plain = ExtrapolationWarning("a message")  # raised by a name, as warnings.warn(text, category) does
    assert (str(plain), plain.column, plain.reason, plain.levels) == ("a message", None, None, ())
