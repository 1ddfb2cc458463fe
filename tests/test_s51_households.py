"""HouseholdSynthesizer on EU-SILC as a user calls it (session 51): silently wrong results found and fixed."""

import warnings

import numpy as np
import pandas as pd
import pytest

import test_households
from microplex import ExtrapolationWarning, HouseholdSynthesizer

HID, W = "db030", "db090"


pytestmark = pytest.mark.usefixtures("one_torch_thread")
eusilc = test_households.eusilc


def _documented(**kw):
    """The call of docs/households.md (no schema), small and quick."""
    params = dict(household_id=HID, household_weight=W, age_var="age", epochs=2, hidden_features=(16, 16),
                  transforms=1, verbose=False)
    params.update(kw)
    return HouseholdSynthesizer(household_vars=["db040", "hsize", "hy040n", "hy050n"],
                                person_vars=["age", "rb090", "pl030", "py010n", "py050n"], **params)


@pytest.fixture(scope="module")
def regions(eusilc):
    """Three regions' households, as a regional user would fit them."""
    return eusilc[eusilc.db040.isin(["Vienna", "Tyrol", "Styria"])].reset_index(drop=True)


@pytest.fixture(scope="module")
def fitted(regions):
    return _documented().fit(regions, seed=0)


def test_integer_codes_missing_for_children_are_drawn_as_codes(fitted, regions):
    # pl030 (economic status 1..7) is float64 only because children have no status: it was modelled as
    # continuous and drew statuses such as 4.87 or 5.08
    assert regions.pl030.dtype == np.float64
    (limit, model), = fitted.applicable_models_
    assert model.kinds_["pl030"] == "categorical"
    assert model.kinds_["py010n"] == "continuous"  # incomes with cents stay continuous
    _, persons = fitted.sample(600, seed=1)
    status = persons.pl030.dropna()
    assert persons.pl030.dtype == np.float64
    assert set(status) <= set(regions.pl030.dropna())
    assert persons.loc[persons.age < limit, "pl030"].isna().all()
    assert persons.loc[persons.age >= limit, "pl030"].notna().all()


def test_generate_warns_once_when_a_household_variable_lies_far_beyond_training(fitted, regions):
    # generate held a household income 10,000 times the training maximum at the margin of the person models
    # and said nothing (every ExtrapolationWarning of the person models was logged at debug level)
    given = pd.DataFrame({"db040": ["Vienna"] * 50, "hsize": 3, "hy040n": regions.hy040n.max() * 1e4, "hy050n": 0.0})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        households, persons = fitted.generate(given, seed=0)
    extrapolated = [str(w.message) for w in caught if issubclass(w.category, ExtrapolationWarning)]
    assert len(extrapolated) == 1 and extrapolated[0].startswith("Household variable 'hy040n'")
    assert len(persons) == 150
    # within the training range: no warning (the members' own summaries stay at debug level)
    typical = regions.groupby(HID).first().reset_index()[[HID, "db040", "hsize", "hy040n", "hy050n"]].head(60)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted.generate(typical, seed=0)
        fitted.sample(100, seed=0)
    assert not [w for w in caught if issubclass(w.category, ExtrapolationWarning)]


def test_categorical_person_variables_keep_their_categories_order_and_codes(eusilc, tmp_path):
    # the persons' categorical columns came back with the categories drawn, sorted and unordered: an ordered
    # citizenship lost its order, 'AT' had code 0 instead of 2, and real and synthetic persons concatenated to text
    df = eusilc[eusilc[HID] <= 800].reset_index(drop=True)
    df["rb090"] = df.rb090.astype(pd.CategoricalDtype(["male", "female"]))
    df["pb220a"] = df.pb220a.astype(pd.CategoricalDtype(["Other", "EU", "AT"], ordered=True))
    hs = HouseholdSynthesizer(["db040", "hsize", "hy040n"], ["age", "rb090", "pb220a", "py010n"], HID,
                              household_weight=W, age_var="age", epochs=2, hidden_features=(16, 16), transforms=1,
                              verbose=False).fit(df, seed=0)
    path = tmp_path / "hh.mpx"
    hs.save(path)
    for model in (hs, HouseholdSynthesizer.load(path)):
        households, persons = model.sample(200, seed=1)
        households2, persons2 = model.generate(households, seed=2)
        for frame in (persons, persons2):
            for v in ("rb090", "pb220a"):
                assert frame[v].dtype == df[v].dtype, v
            assert persons.loc[persons.age < 16, "pb220a"].isna().all()
            assert pd.concat([df, frame]).pb220a.dtype == df.pb220a.dtype
            at = frame.pb220a == "AT"
            assert at.any() and (frame.pb220a.cat.codes[at] == 2).all()


def test_a_categorical_geography_keeps_its_categories_and_order(regions, tmp_path):
    # sample allotted the regions with the dtype name 'category' only: a subset of regions of a categorical of
    # nine came back with the three drawn, sorted and unordered (other codes for the same region)
    df = regions.copy()
    order = ["Vorarlberg", "Vienna", "Tyrol", "Styria", "Salzburg", "Burgenland"]  # 3 of them have no household
    df["db040"] = df.db040.astype(pd.CategoricalDtype(order, ordered=True))
    hs = _documented(geography="db040").fit(df, seed=0)
    path = tmp_path / "hh.mpx"
    hs.save(path)
    for model in (hs, HouseholdSynthesizer.load(path)):
        households, persons = model.sample(300, seed=1)
        assert households.db040.dtype == df.db040.dtype
        assert set(households.db040) == {"Vienna", "Tyrol", "Styria"}
        assert (households.db040.cat.codes[households.db040 == "Vienna"] == 1).all()
        counts = persons.groupby(HID).size().reindex(households[HID]).to_numpy()
        assert (counts == households.hsize.to_numpy()).all()
    pd.testing.assert_frame_equal(hs.sample(100, seed=3)[0], HouseholdSynthesizer.load(path).sample(100, seed=3)[0], check_exact=True)


@pytest.mark.parametrize("geography", ["db040", None])
def test_a_region_coded_as_numbers_is_a_categorical_condition_of_every_model(eusilc, geography):
    # a region coded 1..9 ("Geography is a categorical condition") was a continuous condition of the household
    # model and of every person model; without geography= the household model draws it as a category, yet the
    # person models read it as a quantity
    codes = {region: i for i, region in enumerate(sorted(eusilc.db040.unique()), 1)}
    df = eusilc[eusilc[HID] <= 800].assign(db040=lambda d: d.db040.map(codes)).reset_index(drop=True)
    hs = _documented(geography=geography).fit(df, seed=0)
    models = [*hs.person_models_.values(), *(m for _, m in hs.applicable_models_)]
    if geography:
        models.append(hs.household_model_)
    for model in models:
        assert model.kinds_["db040"] == "categorical"
    assert hs.person_models_["head"].kinds_["hsize"] == "continuous"  # the size stays a count
    households, persons = hs.sample(200, seed=1)
    assert set(households.db040) <= set(codes.values()) and households.db040.dtype == np.int64
    given = households.assign(db040=10)  # a region code never seen: refused, not read as a number beyond 9
    with pytest.raises(Exception, match="db040"):
        hs.generate(given, seed=0)
