"""Session 69: defects of the Synthesizer found by an audit, each pinned here.

* A segment declared ``transform="asinh"`` or ``"identity"`` on a non-negative target keeps the lower bound
  ``log`` would have (the zero point mass), and ``log_prob`` scores values below it -inf; its draws were decoded
  onto the whole line (195 of 20,000 acs12 incomes negative, down to -4,000, after 3 epochs). Draws are now
  held inside the segment's bounds.
* A float target with fractional values declared ``VariableSpec(kind="integer")`` (cps1 re78) had its point masses
  (a top code of 25564.67), segments and rounding grid fitted on the fractional values: 64% of the draws were not
  whole numbers, and ``save`` wrote a file ``load`` refused (rounding levels below 0 for an integer variable).
  Its values are now modelled rounded to whole numbers ("rounded on output", docs/synthesis.md), with a warning.
* A model file whose target has a missing state and whose dtype was edited to one without missing values
  (``float64`` to ``int64``) loaded and drew the missing state as int64's minimum, -9223372036854775808 (542 of
  3,000 acs12 incomes); a categorical target's to ``bool``, as ``True``. Load now refuses it, naming the
  ``dtypes`` entry, and the cast of the draws raises rather than cast a missing value into such a dtype.
* ``HouseholdSynthesizer.save`` into a missing folder, onto a folder, or to ``3`` raised a raw FileNotFoundError,
  IsADirectoryError or AttributeError; it now checks the path as ``Synthesizer.save`` does (one check, shared).
* ``Synthesizer(epochs=5).fit(df, epochs=2)`` trained 2 epochs but recorded 5 in ``fitted_params_`` and the model
  file: two identical models saved different bytes, and a refit from the file's parameters gave another model.
"""

from __future__ import annotations

import io
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from microplex import DataValidationError, HouseholdSynthesizer, Synthesizer, VariableSpec
from microplex.datasets import load_dataset
from microplex.synthesis._generation import _cast
from microplex.synthesis._segment import _Segment

from _model_files import edit_metadata


def _fit(df: pd.DataFrame, targets: list[str], conditions: list[str], **params) -> Synthesizer:
    params = {"epochs": 3, "verbose": False, **params}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Synthesizer(targets, conditions, **params).fit(df, seed=0)


@pytest.fixture(scope="module")
def acs() -> pd.DataFrame:
    """acs12 records with an income (all >= 0, 45% zeros)."""
    return load_dataset("acs12").dropna(subset=["income"]).reset_index(drop=True)


# -- 1. an explicit transform on a bounded segment ---------------------------------------
@pytest.mark.parametrize("transform", ["asinh", "identity"])
def test_an_explicit_transform_draws_inside_the_segment_bounds(acs, transform):
    synth = _fit(acs, ["income"], ["age", "gender"], schema={"income": VariableSpec(transform=transform)})
    seg = synth.encoders_["income"].segments[0]
    assert (seg.transform, seg.lower, seg.upper) == (transform, 0.0, None)
    drawn = synth.sample(20_000, seed=1)
    assert drawn["income"].min() >= 0.0  # before: 195 negative incomes, down to -4,000
    assert np.isfinite(synth.log_prob(drawn)).all()  # no draw the model itself scores impossible


@pytest.mark.parametrize("transform", ["asinh", "identity", "log", "logit"])
def test_a_segment_decodes_strictly_inside_its_bounds(transform):
    # log and logit reach their bound only where exp underflows; asinh and identity anywhere
    u = np.concatenate([[-1e3, -40.0], np.linspace(-1.0, 1.0, 41), [40.0, 1e3]])
    for sign in (1, -1):
        seg = _Segment(sign)
        seg.lower, seg.upper, seg.transform, seg.scale, seg.mean, seg.std = 2.0, 10.0, transform, 1.0, 1.0, 3.0
        if transform == "log":
            seg.upper = None
        with np.errstate(over="ignore"):  # exp and sinh overflow to inf at u = 1e3
            raw, x = seg._inverse(u * seg.std + seg.mean), sign * seg.decode(u)
        assert seg.contains(x).all(), x
        inside = seg.contains(raw)
        assert inside.sum() >= 3 and (x[inside] == raw[inside]).all()  # values inside are left as they were
        # beyond a bound: reflected about it (2 * bound - value), then held strictly inside (at a bound, or a
        # reflection beyond the other bound, inf among them)
        with np.errstate(invalid="ignore"):
            folded = np.where(raw < 2.0, 4.0 - raw, raw)
            folded = np.where(folded > 10.0, 20.0 - folded, folded) if seg.upper is not None else folded
        want = np.maximum(folded, np.nextafter(2.0, 3.0))
        want = np.minimum(want, np.nextafter(10.0, 3.0)) if seg.upper is not None else want
        assert (x[~inside] == want[~inside]).all()


# -- 2. kind="integer" declared on a float column with fractional values -------------------
@pytest.fixture(scope="module")
def earnings() -> pd.DataFrame:
    """cps1 earnings, re78 a float column with 85% fractional values."""
    return load_dataset("cps1").sample(800, random_state=0).reset_index(drop=True)


def test_a_declared_integer_with_fractional_values_is_modelled_rounded(earnings, tmp_path):
    spec = {"re78": VariableSpec(kind="integer")}
    before = earnings.copy()
    with pytest.warns(UserWarning, match=r"Target column 're78' is declared kind='integer' but 85% of its values"):
        synth = Synthesizer(["re78"], ["age"], schema=spec, epochs=3, verbose=False).fit(earnings, seed=0)
    pd.testing.assert_frame_equal(earnings, before)  # the data given are not changed
    enc = synth.encoders_["re78"]
    assert all(float(v).is_integer() for v in enc.point_masses + enc.heaps) and 0.0 in enc.point_masses
    grid = enc.rounding.to_dict()
    assert min(min(levels) for _, levels, _ in grid["bands"]) >= 0 and min(grid["pooled"][0]) >= 0
    drawn = synth.sample(5000, seed=0)
    assert (drawn["re78"] == np.round(drawn["re78"])).all()  # before: 64% of the draws not whole numbers
    synth.save(tmp_path / "m.mpx")  # before: a file load refused ("levels of 0 and above for an integer variable")
    pd.testing.assert_frame_equal(Synthesizer.load(tmp_path / "m.mpx").sample(5000, seed=0), drawn)
    # the same model as one fitted on the values rounded by the user
    rounded = Synthesizer(["re78"], ["age"], schema=spec, epochs=3, verbose=False).fit(
        earnings.assign(re78=np.round(earnings["re78"])), seed=0)
    pd.testing.assert_frame_equal(rounded.sample(5000, seed=0), drawn)


def test_a_declared_integer_of_whole_floats_fits_without_a_warning(earnings):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        synth = Synthesizer(["re78"], ["age"], schema={"re78": VariableSpec(kind="integer")}, epochs=1,
                            verbose=False).fit(earnings.assign(re78=np.round(earnings["re78"])), seed=0)
    assert synth.kinds_["re78"] == "integer"


def test_a_declared_integer_whose_rounded_values_are_constant_is_refused(earnings):
    with pytest.warns(UserWarning, match="declared kind='integer'"), \
            pytest.raises(DataValidationError, match=r"Target column 're78' is declared kind='integer' in the schema "
                                                    r"but its values are not whole numbers: they range from -0\.3 to "
                                                    r"0\.3, and rounded to whole numbers every one is -?0\.0"):
        Synthesizer(["re78"], ["age"], schema={"re78": VariableSpec(kind="integer")}, epochs=1, verbose=False).fit(
            earnings.assign(re78=np.linspace(-0.3, 0.3, len(earnings))), seed=0)


# -- 3. a model file whose target has a missing state, its dtype edited to one without missing values -------
@pytest.fixture(scope="module")
def missing_model(tmp_path_factory) -> bytes:
    """acs12 income and hours, both with missing values (a missing state each), and a flag, float codes 0 and 1
    with missing values (a categorical target with a missing state)."""
    acs = load_dataset("acs12")[["income", "hrs_work", "age", "gender"]].copy()
    rng = np.random.default_rng(0)
    acs["kids"] = np.where(rng.random(len(acs)) < 0.2, np.nan, rng.integers(0, 2, len(acs)).astype(float))
    synth = _fit(acs, ["income", "hrs_work", "kids"], ["age", "gender"], epochs=1,
                 schema={"kids": VariableSpec(kind="categorical")})
    assert synth.kinds_["kids"] == "categorical" and synth.encoders_["kids"].missing
    assert synth.encoders_["income"].missing and synth.dtypes_["income"] == "float64"
    path = tmp_path_factory.mktemp("missing") / "m.mpx"
    synth.save(path)
    return path.read_bytes()


@pytest.mark.parametrize("name,dtype", [("income", "int64"), ("hrs_work", "uint32"), ("kids", "int64"),
                                        ("kids", "bool"), ("kids", "uint8")])
def test_a_dtype_without_missing_values_for_a_target_with_a_missing_state_is_refused(missing_model, tmp_path,
                                                                                      name, dtype):
    path = tmp_path / "edited.mpx"
    path.write_bytes(edit_metadata(missing_model, lambda meta: meta["dtypes"].__setitem__(name, dtype)))
    with pytest.raises(DataValidationError, match="edited.mpx' is not a valid Synthesizer model file: field "
                       + re.escape(f"'dtypes.{name}'") + ".*holds missing values"):
        Synthesizer.load(path)  # before: loaded; incomes of -9223372036854775808, children True


@pytest.mark.parametrize("name,dtype", [("income", "Int64"), ("income", "float32"), ("kids", "Int64"),
                                        ("kids", "Float64")])
def test_a_dtype_that_holds_missing_values_loads_and_draws_them(missing_model, name, dtype):
    edited = edit_metadata(missing_model, lambda meta: meta["dtypes"].__setitem__(name, dtype))
    synth = Synthesizer.load(io.BytesIO(edited))
    drawn = synth.sample(2000, seed=1)[name]
    assert str(drawn.dtype) == dtype and 0 < drawn.isna().mean() < 1


@pytest.mark.parametrize("dtype,kind", [("int64", "integer"), ("int64", "continuous"), ("uint8", "integer"),
                                        ("int64", "categorical"), ("bool", "categorical")])
def test_the_cast_of_the_draws_refuses_a_missing_value_its_dtype_cannot_hold(dtype, kind):
    values = np.array([1.0, np.nan, 0.0], dtype=object if kind == "categorical" else float)
    with pytest.raises(DataValidationError, match=f"missing value.*dtype {dtype!r}"):
        _cast(values, dtype, kind)  # before: -9223372036854775808, True, or the values left as they were
    assert _cast(values, "Int64", kind).isna().tolist() == [False, True, False]


# -- 4. HouseholdSynthesizer.save checks its path as Synthesizer.save does ----------------------------------------
@pytest.fixture(scope="module")
def household_and_person_models() -> tuple[HouseholdSynthesizer, Synthesizer]:
    eusilc = load_dataset("eusilc")
    eusilc = eusilc[eusilc["db030"] <= 150].reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        households = HouseholdSynthesizer(["db040", "hsize"], ["age", "rb090"], "db030", "db090", age_var="age",
                                          epochs=1, hidden_features=(8,), transforms=1, verbose=False).fit(eusilc, seed=0)
    return households, _fit(eusilc, ["py010n"], ["age"], epochs=1)


@pytest.mark.parametrize("where", ["missing folder", "a folder", "not a path"])
def test_household_save_checks_its_path_as_synthesizer_save_does(household_and_person_models, tmp_path, where):
    path = {"missing folder": tmp_path / "nowhere" / "m.mpx", "a folder": tmp_path, "not a path": 3}[where]
    messages = []
    for model in household_and_person_models:
        with pytest.raises(DataValidationError) as caught:  # before (households): a raw OSError or AttributeError
            model.save(path)
        messages.append(str(caught.value))
    assert messages[0] == messages[1]
    assert re.search({"missing folder": "folder .*nowhere' does not exist", "a folder": "it is a folder",
                      "not a path": "'path' parameter must be a str or path. Got 3"}[where], messages[0])
    assert list(tmp_path.iterdir()) == []  # nothing written


# -- 5. fit(epochs=...) overrides the constructor's epochs: the file records those trained --------------------------
def test_the_epochs_of_fit_are_those_the_model_file_records(earnings, tmp_path):
    data = earnings.iloc[:400]
    over = Synthesizer(["re78"], ["age"], epochs=5, verbose=False).fit(data, epochs=2, seed=0)
    same = Synthesizer(["re78"], ["age"], epochs=2, verbose=False).fit(data, seed=0)
    assert len(over.history_) == 2 and over.fitted_params_["epochs"] == 2  # before: 5
    assert over.get_params()["epochs"] == 5  # the constructor's parameter is left as it was set
    over.save(tmp_path / "over.mpx")
    same.save(tmp_path / "same.mpx")
    assert (tmp_path / "over.mpx").read_bytes() == (tmp_path / "same.mpx").read_bytes()  # the same model, one file
    loaded = Synthesizer.load(tmp_path / "over.mpx")
    assert loaded.get_params()["epochs"] == 2
    refit = clone(loaded).fit(data, seed=0)  # its parameters fit the same model again
    pd.testing.assert_frame_equal(refit.sample(500, seed=1), over.sample(500, seed=1))


def test_the_condition_model_records_the_epochs_of_fit(earnings):
    synth = Synthesizer(["re78"], ["age", "educ"], epochs=5, condition_model=True, verbose=False)
    synth.fit(earnings.iloc[:300], epochs=1, seed=0)
    assert synth.fitted_params_["epochs"] == synth.condition_model_.fitted_params_["epochs"] == 1
    assert len(synth.condition_model_.history_) == 1
