"""Input sweep of fuse and HouseholdSynthesizer (s50): each test names the old behaviour it replaces."""

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError, HouseholdSynthesizer, Source, fuse
from microplex.datasets import load_dataset
from test_fusion import FAST, _frames

HID, W = "db030", "db090"
pytestmark = pytest.mark.usefixtures("one_torch_thread")  # one torch thread


def _auxiliary(n=60, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame({"x": x, "sex": rng.choice(["female", "male"], n), "y": x + rng.normal(size=n),
                         "z": np.maximum(x, 0), "w": 0.0})


# -- fusion ----------------------------------------------------------------------------------
def test_an_auxiliary_variable_constant_on_its_weighted_records_is_not_used():
    """Before: auxiliary records of weight 0 but one made 'y' vary only where the weight is 0; the donor model
    conditioned on it (standardized by a fallback scale) and imputed z up to 6e11 (z is below 5 in every source),
    without a word. Auxiliary records complete only where their weight is 0 failed as "Weight column (uniform
    weights) has 59 missing or infinite values", blaming the donor."""
    a, b = _frames()
    one = _auxiliary().assign(w=lambda d: np.r_[1.0, np.zeros(len(d) - 1)])
    complete_weightless = _auxiliary().assign(w=lambda d: np.r_[1.0, np.zeros(len(d) - 1)])
    complete_weightless.loc[0, "z"] = np.nan
    for aux in (one, complete_weightless):
        result = fuse([Source(a, "a"), Source(b, "b")], base="a", auxiliary=Source(aux, "aux", weight_col="w"),
                      synthesizer_params=FAST, holdout_fraction=0)
        assert result.steps[0].auxiliary == ()
        assert np.isfinite(result.data["z"]).all() and result.data["z"].abs().max() < 100


@pytest.mark.parametrize("column, factor, message", [
    ("zb", 2, r"rename\['b'\]\['scale'\] names column 'zb', which must be a numeric \(not boolean\) column"),
    ("z", 1e308, r"rename\['b'\]\['scale'\]\['z'\] = 1e\+308 takes \d+ values of column 'z' beyond the float64 range"),
])
def test_scaling_a_boolean_column_or_beyond_float64_is_refused_before_any_fitting(column, factor, message, monkeypatch):
    """Before: a boolean column scaled by 2 became the numbers 0.0 / 2.0 (imputed as a continuous variable);
    a factor taking values beyond float64 failed as "column 'z' has 13 missing or infinite values", naming no
    factor."""
    import microplex.fusion._fuse as fuse_module

    def no_fit(*args, **kwargs):
        raise AssertionError("a model was fitted before rename was checked")

    monkeypatch.setattr(fuse_module, "_fit_model", no_fit)
    a, b = _frames()
    with pytest.raises(DataValidationError, match=message):
        fuse([Source(a, "a"), Source(b.assign(zb=b["x"] > 0), "b")], base="a", rename={"b": {"scale": {column: factor}}},
             synthesizer_params=FAST)


def test_a_chained_category_a_later_donor_never_observed_is_named_before_its_fit(monkeypatch):
    """Before: donor 'c' had category 'q' of the imputed predictor 'c' only on records missing its block; fuse
    fitted both donors, then failed with "Condition column 'c' has categories not seen in training: ['q']",
    naming no source. (Session 65: records missing a block value are used; here donor 'c' lacks 'q'.)"""
    import microplex.fusion._fuse as fuse_module

    fitted = []
    real_fit = fuse_module._fit_model

    def counting_fit(*args, **kwargs):
        fitted.append(args[-1].name)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(fuse_module, "_fit_model", counting_fit)
    a, b = _frames()
    rng = np.random.default_rng(5)
    b["c"] = rng.choice(["p", "q", "r"], len(b))
    c = pd.DataFrame({"x": rng.normal(size=200), "c": rng.choice(["p", "q", "r"], 200), "v": rng.normal(size=200)})
    c = c[c["c"] != "q"].reset_index(drop=True)
    with pytest.raises(DataValidationError, match=r"Shared column 'c': categories \['q'\] of source 'b' do not "
                                                  r"occur in source 'c'"):
        fuse([Source(a, "a"), Source(b, "b"), Source(c, "c")], base="a", synthesizer_params=FAST, holdout_fraction=0)
    assert fitted == []


# -- households ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def persons():
    df = load_dataset("eusilc")
    return df[df[HID] <= 300].reset_index(drop=True)[[HID, "hsize", "db040", "hy050n", "age", "rb090", "py010n", W]]


def _fit(df, household_vars=("db040", "hsize"), **kw):
    params = dict(household_weight=W, geography="db040", age_var="age", epochs=1, hidden_features=(8,), transforms=1,
                  verbose=False)
    params.update(kw)
    return HouseholdSynthesizer(list(household_vars), ["age", "rb090", "py010n"], HID, **params).fit(df, seed=0)


@pytest.fixture(scope="module")
def with_income(persons):
    return _fit(persons, ("db040", "hsize", "hy050n"))


def test_a_boolean_household_weight_is_refused(persons, with_income):
    """Before: a boolean weight column was read as weights 1/0, dropping the households marked False from the
    shares, at fit and in the weights generate gives the persons (a fusion Source refuses it)."""
    flags = persons[HID] % 2 == 0
    with pytest.raises(DataValidationError, match=r"Weight column 'db090' must be numeric. Got dtype bool instead."):
        _fit(persons.assign(**{W: flags}))
    households, _ = with_income.sample(4, seed=1)
    with pytest.raises(DataValidationError, match=r"Weight column 'db090' must be numeric. Got dtype bool instead."):
        with_income.generate(households.assign(**{W: [True, False, True, True]}), seed=2)


@pytest.mark.parametrize("value, message", [
    (lambda s: s > 0, r"Household variable 'hy050n' must be numeric, as in training. Got dtype bool instead."),
    (lambda s: s.astype(str).where(s.index != 0, "abc"), r"Household variable 'hy050n' must be numeric, as in training"),
    (lambda s: s.where(s.index != 0, np.inf), r"Household variable 'hy050n' is infinite in household 1; household"),
])
def test_generate_refuses_a_numeric_household_variable_given_as_booleans_text_or_infinite(with_income, value, message):
    """Before: an income given as True/False was read as 1/0 (the persons drawn given it, the booleans returned),
    as text 'abc' it raised a raw ValueError, and inf was drawn from, held at the training margin, silently."""
    households, _ = with_income.sample(4, seed=1)
    with pytest.raises(DataValidationError, match=message):
        with_income.generate(households.assign(hy050n=value(households["hy050n"])), seed=2)


def test_generate_refuses_booleans_for_a_geography_of_0_and_1(persons):
    """Before: a geography fitted as the ints 0/1 and given to generate as False/True passed the check of
    unseen values (Python's True == 1) and drew the persons of region 1 for True."""
    hs = _fit(persons.assign(db040=(persons["db040"] == "Vienna").astype(int)))
    households, _ = hs.sample(4, seed=1)
    with pytest.raises(DataValidationError, match=r"'db040' must be numeric, as in training. Got dtype bool"):
        hs.generate(households.assign(db040=households["db040"].astype(bool)), seed=2)
    text = _fit(persons)
    households, _ = text.sample(4, seed=1)
    with pytest.raises(DataValidationError, match=r"Geography column 'db040' has values not seen in training: \[True"):
        text.generate(households.assign(db040=True), seed=2)


@pytest.mark.parametrize("dtype", [bool, "boolean"])
def test_a_boolean_geography_saves_a_file_that_loads(persons, tmp_path, dtype):
    """Before: a boolean geography (an urban/rural flag) fitted and saved, and load refused the file:
    "'geography_shares' must be str or number values. Got False instead."."""
    urban = (persons["db040"] == "Vienna").astype(dtype)
    hs = _fit(persons.assign(db040=urban))
    hs.save(tmp_path / "h.mpx")
    loaded = HouseholdSynthesizer.load(tmp_path / "h.mpx")
    for got, expected in zip(loaded.sample(10, seed=1), hs.sample(10, seed=1), strict=True):
        pd.testing.assert_frame_equal(got, expected)
    assert loaded.sample(10, seed=1)[0]["db040"].dtype == urban.dtype


def test_household_ids_of_two_types_that_print_alike_are_refused(persons, with_income):
    """Before: one member of household 1 with the id '1' (a str among ints) made it two households, silently: with
    no size column equal to the person counts any more, a second size 'n_persons' was derived beside 'hsize'."""
    ids = persons[HID].astype(object)
    ids[ids.index[ids == 1][-1]] = "1"
    with pytest.raises(DataValidationError, match=r"Household ids 1, '1' of column 'db030' are different values of "
                                                  r"types \['int', 'str'\] that print alike: their persons would"):
        _fit(persons.assign(**{HID: ids}))
    households, _ = with_income.sample(3, seed=1)
    with pytest.raises(DataValidationError, match=r"Household ids 1, '1' .* their households would be different"):
        with_income.generate(households.assign(**{HID: pd.Series([1, "1", 3], dtype=object)}), seed=2)
    same = ids.where(ids != "1", 1.0)  # 1 and 1.0 are one value: one household, as before
    assert len(_fit(persons.assign(**{HID: same})).sample(3, seed=1)[0]) == 3
