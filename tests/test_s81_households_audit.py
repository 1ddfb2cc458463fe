"""Household synthesis as a first-time user meets it on EU-SILC: a household size whose person records are broken
in a few households, and a hand-edited model file."""

from __future__ import annotations

import pandas as pd
import pytest

from microplex import DataValidationError, HouseholdSynthesizer

pytestmark = pytest.mark.filterwarnings("ignore")  # per test: a module-level filter outlived the module

_FAST = dict(epochs=1, hidden_features=(8,), transforms=1, verbose=False)
_HH, _P = ["db040", "hsize", "hy040n"], ["age", "rb090", "py010n"]


@pytest.fixture(scope="module")
def eusilc_small() -> pd.DataFrame:
    from microplex.datasets import load_dataset

    data = load_dataset("eusilc")
    return data[data["db030"] <= 300].reset_index(drop=True)


def _persons_per_household(households: pd.DataFrame, persons: pd.DataFrame) -> pd.Series:
    return persons.groupby("db030").size().reindex(households["db030"]).reset_index(drop=True)


@pytest.mark.parametrize("broken", ["persons_filtered_out", "row_duplicated"])
def test_a_size_column_wrong_in_a_few_households_is_refused(eusilc_small, broken):
    # a researcher drops the persons aged -1 (a few households lose a member), or a person row is repeated: 'hsize'
    # no longer equals the person records everywhere. The size was then silently derived as 'n_persons' and 'hsize'
    # drawn as an ordinary household variable: on all of EU-SILC (64 of 6,000 households off), 74 of 2,000 sampled
    # households had an 'hsize' other than their persons (hsize 1 with 8 persons).
    data = eusilc_small
    if broken == "persons_filtered_out":
        data = data[data["age"] >= 0]
    else:
        data = pd.concat([data, data.iloc[[5]]], ignore_index=True)
    off = (data.groupby("db030")["hsize"].first() != data.groupby("db030").size()).sum()
    assert 0 < off < 30  # a few of the 300 households
    hs = HouseholdSynthesizer(_HH, _P, "db030", household_weight="db090", age_var="age", **_FAST)
    with pytest.raises(DataValidationError, match=(
            rf"Household variable 'hsize' equals the number of person records in {300 - off} of 300 households "
            rf"but not in {off} \(households? \d+.*size_var='hsize'")):
        hs.fit(data, seed=0)
    assert not hasattr(hs, "size_col_")


def test_a_count_that_is_not_the_size_in_many_households_is_modelled(eusilc_small):
    # the number of adults equals the person records in the 72% of households without children: a household
    # variable of its own, not a broken size; the size is derived and every household holds its size in persons
    data = eusilc_small.drop(columns="hsize")
    data["n_adults"] = data.groupby("db030")["age"].transform(lambda a: int((a >= 16).sum()))
    same = (data.groupby("db030")["n_adults"].first() == data.groupby("db030").size()).mean()
    assert 0.6 < same < 0.9
    hs = HouseholdSynthesizer(["db040", "n_adults"], ["age", "rb090"], "db030", household_weight="db090",
                              age_var="age", **_FAST).fit(data, seed=0)
    assert hs.size_col_ == "n_persons"
    households, persons = hs.sample(50, seed=1)
    assert (_persons_per_household(households, persons) == households["n_persons"]).all()


def _edited(model: HouseholdSynthesizer, path, edit, edit_model_file) -> None:
    """``model`` saved to ``path`` with its metadata changed by ``edit`` (by hand, as untrusted data may be)."""
    import io

    buffer = io.BytesIO()
    model.save(buffer)
    path.write_bytes(edit_model_file(buffer.getvalue(), meta_fn=edit).getvalue())


def _huge_size(meta: dict) -> None:
    sizes, shares = meta["size_shares"]
    sizes[-1] = meta["max_size"] = 5000
    shares[-1], shares[0] = shares[-1] + 0.1, shares[0] - 0.1


@pytest.mark.parametrize("edit, match", [
    (lambda meta: meta.update(min_age=10**12), r"'min_age' must be the youngest training age, at most .*Got 1000000000000\.0 instead"),
    (lambda meta: meta.update(min_age=90), r"'min_age' must be the youngest training age.*Got 90"),
    (_huge_size, r"'size_shares' must be shares of sizes the person models were trained on \(at most \d members\)"),
    (lambda meta: meta["params"].update(adult_age=10**12),
     r"'params.adult_age' must be an age at most the oldest age the person models were trained on \(93; .*"
     r"Got 1000000000000 instead"),
    (lambda meta: meta["params"].update(adult_age=93.5), r"'params.adult_age' must be an age at most .*\(93; .*Got 93.5"),
], ids=["min_age_huge", "min_age_90", "size_5000", "adult_age_huge", "adult_age_above_the_oldest"])
def test_a_model_file_with_an_edited_youngest_age_or_size_is_refused(eusilc_small, tmp_path, edit, match,
                                                                   edit_model_file):
    # a later member still younger than any training person after its redraws is given 'min_age': edited to 1e12,
    # sample wrote persons aged 1,000,000,000,000; a size 5000 with a share (max_size 5000) drew households of 5000
    # members from person models trained on households of at most 9; an 'adult_age' above the oldest training age
    # (93) loaded, and sample only logged "20 households have no adult after 50 redraws"
    hs = HouseholdSynthesizer(_HH, _P, "db030", household_weight="db090", age_var="age", **_FAST).fit(eusilc_small,
                                                                                                    seed=0)
    _edited(hs, tmp_path / "unchanged.mpx", lambda meta: None, edit_model_file)
    households, persons = HouseholdSynthesizer.load(tmp_path / "unchanged.mpx").sample(20, seed=1)
    assert households.equals(hs.sample(20, seed=1)[0])
    _edited(hs, tmp_path / "edited.mpx", edit, edit_model_file)
    with pytest.raises(DataValidationError, match=r"Model file .*edited\.mpx.*" + match):
        HouseholdSynthesizer.load(tmp_path / "edited.mpx")


def test_a_fit_with_an_adult_age_above_every_training_age_is_refused(eusilc_small):
    # the rule a model file's 'adult_age' is held to on load: a fit above the oldest age (93) wrote a file that
    # drew no adult in any household; the oldest age itself is accepted
    assert eusilc_small["age"].max() == 93
    hs = HouseholdSynthesizer(_HH, _P, "db030", household_weight="db090", age_var="age", adult_age=93.5, **_FAST)
    with pytest.raises(DataValidationError, match=r"HouseholdSynthesizer\.fit: 'adult_age' must be an age at most the "
                       r"oldest age the person models were trained on \(93; .*Got 93\.5 instead"):
        hs.fit(eusilc_small, seed=0)
    assert not hasattr(hs, "fitted_params_")
    hs.set_params(adult_age=93).fit(eusilc_small, seed=0)
    assert hs.fitted_params_["adult_age"] == 93
