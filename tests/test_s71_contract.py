"""The estimator contract: a failed HouseholdSynthesizer fit leaves it as it was, a refit keeps nothing of the
previous fit (in memory or in its file), and ``set_params`` refuses a nested name on a parameter that is not an
estimator before setting anything."""

import io

import numpy as np
import pandas as pd
import pytest

from microplex import Calibrator, DataValidationError, HouseholdSynthesizer, NotFittedError, Synthesizer
from microplex._estimator import Estimator
from microplex.datasets import load_dataset
from microplex.households import _synthesizer as hh_module


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def eusilc():
    df = load_dataset("eusilc")
    return df[df.db030 <= 200].reset_index(drop=True)


def _make(person_vars, **kw):
    params = dict(household_weight="db090", person_id="rb030", size_var="hsize", geography="db040", age_var="age",
                  epochs=2, hidden_features=(8,), transforms=1, verbose=False)
    params.update(kw)
    return HouseholdSynthesizer(["db040", "hsize", "hy050n"], person_vars, "db030", **params)


def _bytes(hs: HouseholdSynthesizer) -> bytes:
    buffer = io.BytesIO()
    hs.save(buffer)
    return buffer.getvalue()


def _fitted_state(est) -> dict:
    return {k: v for k, v in vars(est).items() if k.endswith("_")}


def _with_const(df: pd.DataFrame, constant: bool) -> pd.DataFrame:
    out = df.copy()
    out["const"] = 1.0 if constant else np.where(np.arange(len(df)) % 2, 1.0, 2.0)
    return out


# -- 1. a failed fit leaves the estimator as it was ----------------------------------------------------------------
def test_a_failed_first_household_fit_leaves_it_unfitted(eusilc):
    hs = _make(["age", "rb090", "py010n", "const"])
    with pytest.raises(DataValidationError, match="Target column 'const' is constant"):  # in a person model
        hs.fit(_with_const(eusilc, constant=True), seed=0)
    assert not hs.__sklearn_is_fitted__()  # before: True
    assert _fitted_state(hs) == {}  # before: household_model_, person_models_, ... of the failed fit
    with pytest.raises(NotFittedError):  # before: a raw AttributeError 'fitted_params_'
        hs.sample(5, seed=1)
    with pytest.raises(NotFittedError):
        hs.save(io.BytesIO())


def _constant_person_var(df):
    return _with_const(df, constant=True)


def _constant_on_adults(df):  # the model of the variables missing for children refuses it
    out = _with_const(df, constant=False)
    out.loc[out.py010n.notna(), "py010n"] = 5.0
    return out


def _interrupted_last_step(df, monkeypatch):  # every inner model fitted, then an interrupt
    def interrupt(model):
        raise KeyboardInterrupt

    monkeypatch.setattr(hh_module, "drop_training_conditions", interrupt)
    return _with_const(df, constant=False)


@pytest.mark.parametrize("failure, error, match", [
    ("person_model", DataValidationError, "Target column 'const' is constant"),
    ("applicable_model", DataValidationError, "Target column 'py010n' is constant"),
    ("interrupt", KeyboardInterrupt, None),
])
def test_a_failed_household_refit_keeps_the_previous_fit(eusilc, monkeypatch, failure, error, match):
    good = _with_const(eusilc, constant=False)
    hs = _make(["age", "rb090", "py010n", "const"]).fit(good, seed=0)
    state, draws, file = _fitted_state(hs), hs.sample(30, seed=1), _bytes(hs)
    bad = {"person_model": lambda: _constant_person_var(eusilc),
           "applicable_model": lambda: _constant_on_adults(eusilc),
           "interrupt": lambda: _interrupted_last_step(eusilc, monkeypatch)}[failure]()
    with pytest.raises(error, match=match):
        hs.fit(bad.head(len(bad) - 40), seed=1)  # other data and seed: any attribute it kept would differ
    monkeypatch.undo()
    after = _fitted_state(hs)
    assert after.keys() == state.keys() and all(after[k] is state[k] for k in state)  # the same objects
    households, persons = hs.sample(30, seed=1)  # before: a raw KeyError 'head' / 'py010n'
    pd.testing.assert_frame_equal(households, draws[0])
    pd.testing.assert_frame_equal(persons, draws[1])
    assert _bytes(hs) == file  # before: a file its own load refused ("'models' must be the inner models ...")


def test_the_file_of_a_kept_fit_loads_and_draws_as_it(eusilc, tmp_path):
    good = _with_const(eusilc, constant=False)
    hs = _make(["age", "rb090", "py010n", "const"]).fit(good, seed=0)
    with pytest.raises(DataValidationError):
        hs.fit(_constant_person_var(eusilc), seed=0)
    path = tmp_path / "h.mpx"
    hs.save(path)
    loaded = HouseholdSynthesizer.load(path)  # before: refused, the file mixed two fits
    for a, b in zip(loaded.sample(30, seed=2), hs.sample(30, seed=2), strict=True):
        pd.testing.assert_frame_equal(a, b)


def test_household_fitted_marker_is_assigned_last(eusilc, monkeypatch):
    """The estimator reads as fitted only once every attribute is set (a fit interrupted at its last step was
    already 'fitted')."""
    assert HouseholdSynthesizer._fitted_attribute == "fitted_params_"
    seen = {}
    hs = _make(["age", "rb090"])

    def spy(model):  # run on the inner models after every other attribute is set
        seen.setdefault("fitted", hs.__sklearn_is_fitted__())

    monkeypatch.setattr(hh_module, "drop_training_conditions", spy)
    hs.fit(eusilc, seed=0)
    assert seen == {"fitted": False} and hs.__sklearn_is_fitted__()


# -- 2. a refit keeps nothing of the previous fit ------------------------------------------------------------------
@pytest.mark.parametrize("geography_dtype", ["str", "category"])
def test_a_household_refit_writes_the_file_of_a_fresh_fit(geography_dtype):
    df = load_dataset("eusilc")
    first, second = df[df.db030 > 5000].reset_index(drop=True), df[df.db030 <= 150].reset_index(drop=True)
    if geography_dtype == "category":  # with unused categories: geography_categories_ is set too
        first["db040"] = pd.Categorical(first["db040"], categories=sorted(df["db040"].unique()) + ["Nowhere"])
    used = _make(["age", "rb090"]).fit(first, seed=0)
    assert used.min_age_ == -1.0 and used.geography_shares_ is not None
    used.set_params(geography=None, age_var=None).fit(second, seed=0)
    fresh = _make(["age", "rb090"], geography=None, age_var=None).fit(second, seed=0)
    assert used.get_params() == fresh.get_params()
    assert _bytes(used) == _bytes(fresh)  # before: the file held the first data's regions, shares and min_age
    assert sorted(_fitted_state(used)) == sorted(_fitted_state(fresh))  # before: + geography_*_, min_age_


def test_a_synthesizer_refit_keeps_no_attribute_of_the_previous_fit():
    """The same rule in the one helper both estimators use: an attribute of the previous fit that this fit does not
    set is gone."""
    df = load_dataset("cps1").sample(300, random_state=0).reset_index(drop=True)
    synth = Synthesizer(["re74"], ["age"], epochs=1, hidden_features=(8,), transforms=1, verbose=False).fit(df, seed=0)
    synth.stale_ = "left by an earlier fit"
    synth.fit(df, seed=0)
    assert not hasattr(synth, "stale_")


# -- 3. set_params with a nested name on a parameter that is not an estimator ---------------------------------------
class _Inner(Estimator):
    _fitted_attribute = "scale_"

    def __init__(self, factor=1.0):
        self.factor = factor


class _Outer(Estimator):
    _fitted_attribute = "scale_"

    def __init__(self, inner=None, epochs=1):
        self.inner = inner
        self.epochs = epochs


@pytest.mark.parametrize("make, key, kind", [
    (lambda: _make(["age"], synthesizer_params={"bins": 3}), "synthesizer_params__epochs", "dict"),
    (lambda: _make(["age"]), "synthesizer_params__bins", "NoneType"),
    (lambda: Synthesizer(["y"], ["x"]), "schema__x", "NoneType"),
    (lambda: Synthesizer(["y"], ["x"], schema={}), "schema__x", "dict"),
    (lambda: Synthesizer(["y"], ["x"]), "target_vars__x", "list"),
    (lambda: Calibrator(), "method__name", "str"),
], ids=["household-dict", "household-none", "schema-none", "schema-dict", "target-vars", "calibrator-method"])
def test_a_nested_name_on_a_parameter_that_is_no_estimator_is_refused_and_nothing_is_set(make, key, kind):
    est = make()
    before = {k: v for k, v in est.get_params(deep=False).items()}
    plain = "epochs" if "epochs" in before else "tol"
    name = key.partition("__")[0]
    message = (rf"Invalid parameter '{key}' for estimator {type(est).__name__}: '{name}' is not an estimator \(its "
               rf"value is of type {kind}\); set the whole value \({name}=\.\.\.\)\.")
    with pytest.raises(DataValidationError, match=message):  # before: a raw AttributeError
        est.set_params(**{plain: 5, key: 3})
    assert est.get_params(deep=False) == before  # before: epochs=5 was set
    assert all(est.get_params(deep=False)[k] is v for k, v in before.items())


def test_nested_names_of_an_estimator_parameter_are_checked_before_anything_is_set():
    outer = _Outer(inner=_Inner())
    assert outer.set_params(inner__factor=3.0, epochs=2) is outer
    assert (outer.inner.factor, outer.epochs) == (3.0, 2)
    with pytest.raises(DataValidationError, match=r"Invalid parameter 'no_such' for estimator _Inner"):
        outer.set_params(epochs=7, inner__factor=9.0, inner__no_such=1)
    assert (outer.inner.factor, outer.epochs) == (3.0, 2)  # nothing set
    with pytest.raises(DataValidationError, match=r"'epochs__x'.*'epochs' is not an estimator \(its value is of type"):
        outer.set_params(inner__factor=9.0, epochs__x=1)
    assert (outer.inner.factor, outer.epochs) == (3.0, 2)
