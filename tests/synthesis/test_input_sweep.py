"""Input sweep of the Synthesizer (session 47): inputs that gave a raw error or a silently wrong result.

Each test names the behaviour now; its docstring says what went wrong before.
"""

import io
import json
import zipfile

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError, Synthesizer, VariableSpec

FAST = dict(epochs=1, hidden_features=(8,), transforms=1, verbose=False)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n = 200
    return pd.DataFrame({
        "age": rng.integers(18, 80, n),
        "region": rng.choice(["n", "s"], n),
        "income": np.where(rng.random(n) < 0.3, 0.0, np.exp(rng.normal(8, 1, n))),
        "rooms": rng.integers(1, 5, n),  # int64 with few values: a categorical target
        "w": rng.uniform(0.5, 2.0, n),
    })


@pytest.fixture(scope="module")
def fitted(data):
    return Synthesizer(["income", "rooms"], ["age", "region"], **FAST).fit(data, "w", seed=0)


@pytest.mark.parametrize("scale", [1e200, 1e-200])
def test_equal_weights_of_any_scale_fit_as_weights_of_one(data, scale):
    """Before: weights all equal to 1e200 (or 1e-200) raised a raw ``ValueError: cannot convert float NaN to
    integer`` from the quantile standardization (Kish's effective size overflowed, or underflowed, to NaN)."""
    ones = Synthesizer(["income"], ["age"], **FAST).fit(data.assign(w=1.0), "w", seed=0).sample(100, seed=1)
    scaled = Synthesizer(["income"], ["age"], **FAST).fit(data.assign(w=scale), "w", seed=0).sample(100, seed=1)
    np.testing.assert_allclose(scaled["income"], ones["income"], rtol=1e-6)


@pytest.mark.parametrize("param, value", [
    ("target_vars", ["income"]),  # before: silently drew only 'income'
    ("target_vars", ["rooms", "income"]),  # before: silently reordered the output
    ("target_vars", ["other"]),  # before: KeyError 'other'
    ("condition_vars", []),  # before: KeyError 'age'
    ("condition_vars", ["age", "other"]),  # before: "'conditions' is missing columns ['other']"
    ("transforms", "x"),  # before: ValueError invalid literal for int()
    ("hidden_features", (16, 16)),
])
def test_a_fitted_parameter_changed_by_set_params_refuses_to_draw(data, param, value):
    """Before: drawing and scoring read the changed parameter beside the fitted model (its file keeps the fitted
    one): a silently different output, or a raw KeyError/ValueError. Now a DataValidationError names it, and
    setting it back draws as before."""
    synth = Synthesizer(["income", "rooms"], ["age", "region"], **FAST).fit(data, seed=0)
    before = synth.sample(20, seed=1)
    fitted_value = synth.get_params()[param]
    synth.set_params(**{param: value})
    for draw in (lambda: synth.sample(20, seed=1), lambda: synth.generate(data[["age", "region"]], seed=1),
                 lambda: synth.log_prob(data)):
        with pytest.raises(DataValidationError, match=f"'{param}' parameter was changed by set_params after fit"):
            draw()
    synth.set_params(**{param: fitted_value})
    pd.testing.assert_frame_equal(synth.sample(20, seed=1), before)


def test_names_given_as_a_tuple_after_fit_still_draw(data):
    synth = Synthesizer(["income", "rooms"], ["age", "region"], **FAST).fit(data, seed=0)
    before = synth.sample(20, seed=1)
    synth.set_params(target_vars=("income", "rooms"), hidden_features=np.array([8]))
    pd.testing.assert_frame_equal(synth.sample(20, seed=1), before)


def test_an_invalid_sampling_set_after_fit_is_refused_by_generate_and_save(data, tmp_path):
    """Before: ``set_params(sampling="bogus")`` after fit silently drew independent records (anything but
    "stratified" was), and ``save`` wrote a file that ``load`` refused."""
    synth = Synthesizer(["income"], ["age"], **FAST).fit(data, seed=0)
    synth.set_params(sampling="bogus")
    with pytest.raises(DataValidationError, match="'sampling' parameter must be one of"):
        synth.sample(10, seed=0)
    with pytest.raises(DataValidationError, match="nothing is written.*'sampling' parameter"):
        synth.save(tmp_path / "m.mpx")
    synth.set_params(sampling="stratified", verbose="yes")
    with pytest.raises(DataValidationError, match="nothing is written.*'verbose' parameter"):
        synth.save(tmp_path / "m.mpx")
    assert list(tmp_path.iterdir()) == []


def _edited(fitted, tmp_path, edit):
    path = tmp_path / "m.mpx"
    fitted.save(path)
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    meta = json.loads(members["metadata.json"])
    edit(meta)
    members["metadata.json"] = json.dumps(meta).encode()
    out = tmp_path / "edited.mpx"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n, b in members.items():
            zf.writestr(n, b)
    out.write_bytes(buf.getvalue())
    return out


def _set(*path_value):
    *path, value = path_value

    def edit(meta):
        d = meta
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = value
    return edit


@pytest.mark.parametrize("edit", [
    _set("encoders", "income", "point_masses", 0, 10**30),
    _set("encoders", "income", "segments", 0, "tail_lo", 10**30),
    _set("condition_encoder", "stats", "age", 0, 10**30),
    _set("encoders", "rooms", "categories", 0, 10**30),
], ids=["point mass", "tail slope", "condition mean", "category"])
def test_a_model_file_with_an_int_beyond_int64_is_refused(fitted, tmp_path, edit):
    """Before: an int such as 10**30 in a number field (JSON ints are unbounded) raised a raw TypeError from
    np.isfinite at load, or (a tail slope, a category) loaded and raised TypeError or OverflowError when drawing."""
    with pytest.raises(DataValidationError, match="edited.mpx' is not a valid Synthesizer model file"):
        Synthesizer.load(_edited(fitted, tmp_path, edit)).sample(50, seed=0)


@pytest.mark.parametrize("edit", [
    _set("condition_encoder", "stats", "age", 0, 1e308),
    _set("condition_encoder", "stats", "age", 1, 1e-308),
], ids=["mean 1e308", "std 1e-308"])
def test_a_model_file_whose_condition_scales_overflow_float32_is_refused(fitted, tmp_path, edit):
    """Before: such a file loaded, and its draws overflowed float32 (RuntimeWarnings, garbage records)."""
    with pytest.raises(DataValidationError, match=r"field 'condition_encoder\.stats\.age': mean .* standardize the "
                                                  r"condition's range \[18, 79\] to values beyond 1e\+30"):
        Synthesizer.load(_edited(fitted, tmp_path, edit))
    # extreme but within float32: loaded before session 53; now refused as any stats that are not the stored
    # training conditions' (tests/synthesis/test_s53_files.py)
    with pytest.raises(DataValidationError, match=r"field 'condition_encoder\.stats\.age' must be the weighted mean"):
        Synthesizer.load(_edited(fitted, tmp_path, _set("condition_encoder", "stats", "age", 1, 1e-20)))


def test_draws_that_decode_to_non_finite_values_raise(fitted, tmp_path):
    """Before: a file whose last income knot was 1e308 loaded and drew inf incomes (with a RuntimeWarning);
    a tail slope of 1e308 warned of an overflow in a branch no draw took. Since session 53 both files are
    refused at load (the encoders are checked: tests/synthesis/test_s53_files.py); draws that still decode to
    non-finite values (an encoder edited in memory) raise."""
    from microplex import ConvergenceError

    for edit in (_set("encoders", "income", "segments", 0, "knots", "t", 7, 1e308),
                 _set("encoders", "income", "segments", 0, "tail_hi", 1e308)):
        with pytest.raises(DataValidationError, match="income"):
            Synthesizer.load(_edited(fitted, tmp_path, edit))
    model = Synthesizer.load(_edited(fitted, tmp_path, lambda meta: None))  # a copy, edited in memory below
    seg = next(s for s in model.encoders_["income"].segments if s.knots is not None)
    kt, kz, slopes = seg.knots
    seg.knots = (np.r_[kt[:-1], 1e308], kz, slopes)
    with pytest.raises(ConvergenceError, match=r"drew \d+ non-finite value\(s\) of target 'income'"):
        model.sample(200, seed=0)


def test_a_condition_model_file_whose_ranges_overflow_the_scales_is_refused(data, tmp_path):
    synth = Synthesizer(["income"], ["age", "region"], condition_model=True, **FAST).fit(data, seed=0)
    with pytest.raises(DataValidationError, match=r"field 'condition_encoder\.stats\.age'"):
        Synthesizer.load(_edited(synth, tmp_path, _set("condition_ranges", "age", 1, 1e308)))


def test_a_condition_model_file_with_an_int_beyond_int64_in_its_ranges_is_refused(data, tmp_path):
    """Before: ``condition_ranges`` holding 10**30 raised a raw TypeError from np.isfinite at load."""
    synth = Synthesizer(["income"], ["age", "region"], condition_model=True, **FAST).fit(data, seed=0)
    with pytest.raises(DataValidationError, match="field 'condition_ranges'"):
        Synthesizer.load(_edited(synth, tmp_path, _set("condition_ranges", "age", 1, 10**30)))


@pytest.mark.parametrize("value", [2.5, 1e308, "3"])
def test_a_category_that_the_target_dtype_cannot_hold_is_refused_at_load(fitted, tmp_path, value):
    """Before: category 2.5 of an int64 target loaded and its draws were silently truncated to 2 (a second
    category 2), 1e308 loaded and raised OverflowError when drawing, "3" drew a str in an int64 column."""
    with pytest.raises(DataValidationError, match=r"field 'encoders.rooms.categories' must be values of the "
                                                  r"column's dtype 'int64'"):
        Synthesizer.load(_edited(fitted, tmp_path, _set("encoders", "rooms", "categories", 0, value)))


def test_categories_of_every_target_dtype_load(data, tmp_path):
    """The dtype check accepts what save writes (str, category, bool, boolean, Int64, float32, uint64 above int64)."""
    frame = data.assign(
        s=data["region"], c=data["region"].astype("category"), b=data["rooms"] > 2,
        nb=(data["rooms"] > 2).astype("boolean"), i=data["rooms"].astype("Int64"),
        f=(data["rooms"] / 10).astype("float32"), u=data["rooms"].astype("uint64") + np.uint64(2**63),
    )
    targets = ["s", "c", "b", "nb", "i", "f", "u"]
    synth = Synthesizer(targets, ["age"], schema={"f": VariableSpec(kind="categorical")},
                        **FAST).fit(frame, seed=0)
    synth.save(tmp_path / "m.mpx")
    out = Synthesizer.load(tmp_path / "m.mpx").sample(50, seed=0)
    pd.testing.assert_frame_equal(out, synth.sample(50, seed=0))
    assert dict(out[targets].dtypes) == dict(frame[targets].dtypes)


def test_an_empty_weight_column_name_is_looked_up_like_any_other(data):
    """Before: ``fit(data, weight_col="")`` raised a raw ``KeyError: ''`` (the empty name skipped the column
    check); a column really named "" was then unusable as the weight."""
    with pytest.raises(DataValidationError, match=r"'data' is missing columns \[''\]"):
        Synthesizer(["income"], ["age"], **FAST).fit(data, "")
    synth = Synthesizer(["income"], ["age"], **FAST).fit(data.assign(**{"": data["w"]}), "", seed=0)
    reference = Synthesizer(["income"], ["age"], **FAST).fit(data, "w", seed=0)
    pd.testing.assert_frame_equal(synth.sample(20, seed=1), reference.sample(20, seed=1))


def test_a_categorical_condition_given_with_other_types_shows_the_values_and_types(data):
    """Before: boolean categories given as the strings 'False'/'True' raised "has categories not seen in
    training: ['False', 'True']. Expected one of ['False', 'True']" (both sides shown as str)."""
    frame = data.assign(flag=data["age"] > 40)
    synth = Synthesizer(["income"], ["flag"], **FAST).fit(frame, seed=0)
    given = pd.DataFrame({"flag": ["False", "True"]})
    with pytest.raises(DataValidationError, match=r"not seen in training: \['False', 'True'\]\. Expected one of "
                                                  r"\[False, True\]\. The labels agree but the types differ "
                                                  r"\(str given, bool in training\)"):
        synth.generate(given, seed=0)
    with pytest.raises(DataValidationError, match=r"not seen in training: \['x'\]\. Expected one of \['n', 's'\]\.$"):
        Synthesizer(["income"], ["region"], **FAST).fit(data, seed=0).generate(pd.DataFrame({"region": ["x"]}))


@pytest.mark.parametrize("bounds", [(0, 1e308), (-1e308, 1e308), (0, 10**400)])
def test_public_bounds_beyond_float64_range_are_refused_by_name(data, bounds):
    """Before: DP fits with public bounds (0, 1e308) raised a raw OverflowError from the round point-mass
    candidates, (-1e308, 1e308) a raw IndexError from the histogram's edges (their width overflows), and
    (0, 10**400) an OverflowError from math.isfinite."""
    synth = Synthesizer(["income"], epsilon=1.0, delta=1e-5, public_bounds={"income": bounds}, **FAST)
    with pytest.raises(DataValidationError, match=r"'public_bounds' parameter must be .* within \+-1e\+307; "
                                                  r"column 'income'"):
        synth.fit(data[["income"]], seed=0)


def test_public_bounds_up_to_1e307_fit(data):
    synth = Synthesizer(["income"], epsilon=1.0, delta=1e-5, public_bounds={"income": (-1e307, 1e307)}, **FAST)
    out = synth.fit(data[["income"]], seed=0).sample(50, seed=0)
    assert np.isfinite(out["income"]).all()


def test_a_category_target_draws_with_the_training_categories(data):
    """Before: a ``category`` target's draws had only the categories they drew (one record: one category), so
    two samples had different dtypes, concatenated to object, and setting some rows from another draw raised
    TypeError (a HouseholdSynthesizer's redraws did)."""
    frame = data.assign(tenure=pd.Categorical(np.where(data["rooms"] > 2, "own", "rent")))
    synth = Synthesizer(["tenure"], ["age"], **FAST).fit(frame, seed=0)
    one, many = synth.sample(1, seed=0), synth.sample(50, seed=1)
    assert list(one["tenure"].cat.categories) == ["own", "rent"]
    assert one["tenure"].dtype == many["tenure"].dtype == frame["tenure"].dtype
    assert pd.concat([one, many])["tenure"].dtype == frame["tenure"].dtype


def test_a_bool_column_given_for_a_numeric_condition_is_refused(fitted, data):
    """Before: ``generate`` read a bool column given for the numeric condition 'age' as ages 1 and 0 (below any
    training age, within the extrapolation margin: not even a warning); fit never models a bool as a number."""
    given = data[["age", "region"]].head(2).assign(age=[True, False])
    with pytest.raises(DataValidationError, match=r"Condition column 'age' must be numeric, as in training\. "
                                                  r"Got dtype bool instead"):
        fitted.generate(given, seed=0)
    with pytest.raises(DataValidationError, match=r"Condition column 'age' must be numeric"):
        fitted.log_prob(data.head(2).assign(age=[True, False]))


def test_an_ordered_category_target_draws_ordered_in_its_order(data, tmp_path):
    """Before: an ordered categorical target came back unordered, its categories sorted alphabetically
    ('high' < 'low' < 'mid'), so comparisons and sorts of the draws differed from the training column's."""
    levels = pd.CategoricalDtype(["low", "mid", "high"], ordered=True)
    frame = data.assign(band=pd.qcut(data["age"].rank(method="first"), 3, labels=["low", "mid", "high"]))
    assert frame["band"].dtype == levels
    synth = Synthesizer(["band"], ["age"], **FAST).fit(frame, seed=0)
    out = synth.sample(200, seed=0)
    assert out["band"].dtype == levels
    assert (out["band"] >= "low").all() and set(out["band"]) == {"low", "mid", "high"}
    synth.save(tmp_path / "m.mpx")
    loaded = Synthesizer.load(tmp_path / "m.mpx")
    pd.testing.assert_frame_equal(loaded.sample(200, seed=0), out)
    # an unordered category column is unchanged: sorted categories, unordered draws
    plain = Synthesizer(["band"], ["age"], **FAST).fit(frame.assign(band=frame["band"].astype(str).astype("category")),
                                                        seed=0)
    assert list(plain.sample(5, seed=0)["band"].cat.categories) == ["high", "low", "mid"]
    # under DP the public categories are put in the column's order
    dp = Synthesizer(["band"], ["age"], epsilon=1.0, delta=1e-5, public_categories={"band": ["high", "mid", "low"]},
                     public_bounds={"age": (0, 100)}, **FAST).fit(frame, seed=0)
    assert dp.sample(20, seed=0)["band"].dtype == levels


@pytest.mark.parametrize("value", [False, "yes", 1])
def test_a_model_file_with_a_bad_ordered_flag_is_refused(data, tmp_path, value):
    frame = data.assign(band=pd.Categorical(np.where(data["rooms"] > 2, "hi", "lo"), ["lo", "hi"], ordered=True))
    synth = Synthesizer(["band"], ["age"], **FAST).fit(frame, seed=0)
    path = _edited(synth, tmp_path, _set("encoders", "band", "ordered", value))
    with pytest.raises(DataValidationError, match=r"encoders\.band\.ordered"):
        Synthesizer.load(path)


def test_booleans_never_stand_for_the_categories_0_and_1(data):
    """Before: Python's True == 1 let a bool column given for a condition of categories 0/1 be read as
    those numbers, and bool data pass public categories [0, 1]; both are now categories not seen."""
    frame = data.assign(flag=pd.Categorical((data["rooms"] > 2).astype(int)))
    synth = Synthesizer(["income"], ["flag"], **FAST).fit(frame, seed=0)
    with pytest.raises(DataValidationError, match=r"Condition column 'flag' has categories not seen in training: "
                                                  r"\[False, True\]"):
        synth.generate(pd.DataFrame({"flag": [True, False]}), seed=0)
    assert len(synth.generate(pd.DataFrame({"flag": pd.Categorical([1, 0])}), seed=0)) == 2
    booleans = data.assign(flag=data["rooms"] > 2)
    dp = Synthesizer(["flag"], epsilon=1.0, delta=1e-5, public_categories={"flag": [0, 1]}, **FAST)
    with pytest.raises(DataValidationError, match=r"Column 'flag' holds values outside its public categories"):
        dp.fit(booleans[["flag"]], seed=0)


@pytest.mark.parametrize("value", [__import__("fractions").Fraction(1, 100), 10**400])
def test_float_parameters_take_plain_numbers_only(data, value):
    """A Fraction learning rate was accepted and stored, then ``save`` failed with a raw TypeError (not JSON
    serializable); an int beyond float64 raised a raw OverflowError. Both are refused naming the parameter."""
    with pytest.raises(DataValidationError, match=r"The 'learning_rate' parameter must be a finite float in \(0, 1000\]"):
        Synthesizer(["income"], ["age"], learning_rate=value, epochs=1).fit(data)
