"""Odd and bad inputs of the DP Synthesizer (``epsilon=``): each is a correct fit or a clear
DataValidationError before any work, and a model file's privacy record must be the one its fit made.
"""

import copy
import re
import warnings
from fractions import Fraction

import numpy as np
import pytest

from microplex import DataValidationError, PrivacyWarning, Synthesizer
from microplex.datasets import load_dataset
from microplex.synthesis._accountant import epsilon_spent
from microplex.synthesis._dp_record import privacy_record
from microplex.synthesis.serialization import FORMAT_VERSION

from test_dp import BOUNDS, CATEGORIES, CONDITIONS, TARGETS  # the DP tests' columns and public metadata


@pytest.fixture(scope="module")
def cps():
    return load_dataset("cps1").sample(300, random_state=2).reset_index(drop=True)


def _dp(targets=TARGETS, conditions=CONDITIONS, **kw) -> Synthesizer:
    args = dict(condition_model=True, epsilon=4.0, delta=1e-5, epochs=1, batch_size=150, hidden_features=(8,),
                transforms=1, verbose=False, public_bounds=BOUNDS, public_categories=CATEGORIES)
    args.update(kw)
    return Synthesizer(targets, conditions, **args)


class _Stop(Exception):
    pass


@pytest.fixture
def no_training(monkeypatch):
    """DP-SGD replaced by an exception: a check that must come before any work is seen to."""
    import microplex.synthesis._fitting as fitting

    def stop(*args, **kwargs):
        raise _Stop

    monkeypatch.setattr(fitting, "train_dp", stop)


# -- delta ---------------------------------------------------------------------------------------------
def test_a_delta_too_small_for_a_model_file_is_refused_before_the_fit(cps, tmp_path):
    """Every mechanism gets a share of delta, which a model file records down to 1e-300: a delta whose
    shares fall below it was fitted, then refused by ``save`` (and ``load``)."""
    with pytest.raises(DataValidationError, match=r"The 'delta' parameter must be large enough .*1e-300"):
        _dp(epsilon=200.0, delta=1e-299)._check_params()
    synth = _dp(epsilon=1000.0, delta=1e-297).fit(cps, seed=0)  # its shares, 1.3e-299 and up, are recorded
    synth.save(tmp_path / "m.mpx")
    assert Synthesizer.load(tmp_path / "m.mpx").privacy_ == synth.privacy_


def test_a_delta_not_below_one_over_n_warns(cps, no_training):
    """(epsilon, delta)-DP with delta >= 1 / n allows publishing records in the clear: a PrivacyWarning
    names delta and n (the number of records is public); a usual delta does not warn."""
    with pytest.warns(PrivacyWarning, match=r"'delta' parameter \(0.01\) is not below 1 / n = 0.00333 for the 300"):
        with pytest.raises(_Stop):
            _dp(delta=0.01).fit(cps, seed=0)
    with warnings.catch_warnings():  # 300 records also warn that the histograms are mostly noise
        warnings.filterwarnings("error", "The 'delta' parameter", PrivacyWarning)
        with pytest.raises(_Stop):
            _dp(delta=1e-5).fit(cps, seed=0)


# -- public categories ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype,cats,bad", [
    ("int64", [0, 1, 1.5], "[1.5]"),       # drawn as 1, silently
    ("int8", [0, 1, 300], "[300]"),         # OverflowError in sample
    ("uint8", [-1, 0, 1], "[-1]"),          # OverflowError in sample
    ("int64", [0, 1, "x"], "['x']"),        # an int column drawn as objects
])
def test_public_categories_the_columns_dtype_cannot_hold_are_refused(cps, no_training, dtype, cats, bad):
    data = cps.astype({"nodeg": dtype})
    synth = _dp(targets=["re74", "nodeg"], public_bounds={k: BOUNDS[k] for k in ("re74", "age")},
                public_categories={**CATEGORIES, "nodeg": cats})
    with pytest.raises(DataValidationError, match=rf"'public_categories' of column 'nodeg' hold values that its "
                                                  rf"dtype {dtype} cannot hold: {re.escape(bad)}"):
        synth.fit(data, seed=0)


def test_public_categories_of_another_type_name_both_types(cps, no_training):
    """An int column given the categories '0' and '1' was told it holds '0' and '1', outside them."""
    with pytest.raises(DataValidationError, match=r"outside its public categories \['0', '1'\]: \[1, 0\].*types "
                                                  r"differ \(1, int, in the data; '1', str, in 'public_categories'\)"):
        _dp(public_categories={**CATEGORIES, "black": ["0", "1"]}).fit(cps, seed=0)


@pytest.mark.parametrize("cats", [[Fraction(0), Fraction(1)], [0, 1, 2**70]])
def test_public_categories_a_model_file_cannot_hold_are_refused(cats):
    """Categories are written to the model file: a Fraction failed in ``save`` with a raw TypeError, an int
    beyond 64 bits in ``sample`` with an OverflowError."""
    with pytest.raises(DataValidationError, match=r"'public_categories'.*64-bit int or finite float.*'black'"):
        _dp(public_categories={**CATEGORIES, "black": cats})._check_params()


# -- DP-SGD, budget split, bounds ----------------------------------------------------------------------
@pytest.mark.parametrize("clip", [1e-30, 1e-4, 1e7, 1e300])
def test_max_grad_norm_outside_its_range_is_refused(clip):
    """1e-30 trained nothing (the clipped gradients underflow float32), 1e300 failed once training had started."""
    with pytest.raises(DataValidationError, match=r"'max_grad_norm' parameter must be a finite float in "
                                                  r"\[0.001, 1e\+06\]"):
        _dp(max_grad_norm=clip)._check_params()


def test_a_budget_split_of_float32_shares_is_scaled_to_sum_to_one():
    split = {"statistics": np.float32(0.2), "training": np.float32(0.5), "conditions": np.float32(0.3)}
    shares = _dp(budget_split=split)._check_params()["dp"]["split"]
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-15)
    assert shares["training"] == pytest.approx(0.5, rel=1e-6)
    with pytest.raises(DataValidationError, match="'budget_split'.*summing to 1"):
        _dp(budget_split={"statistics": 0.2, "training": 0.50001, "conditions": 0.3})._check_params()


def test_float32_public_bounds_are_checked_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dp = _dp(public_bounds={**BOUNDS, "age": (np.int64(16), np.float32(55.0))})._check_params()["dp"]
    assert dp["bounds"]["age"] == (16.0, 55.0)


# -- the privacy record of a model file ----------------------------------------------------------------
@pytest.fixture(scope="module")
def one_condition(cps):
    """DP-SGD in the main model and in its condition model (one condition: no tree)."""
    return _dp(conditions=["age"], public_categories=None).fit(cps, seed=0)


@pytest.fixture(scope="module")
def tree(cps):
    return _dp().fit(cps, seed=0)


def _recompute(record: dict) -> None:
    """The record made consistent again after an edit: every mechanism's epsilon and the total."""
    for m in record["mechanisms"]:
        m["epsilon"] = epsilon_spent([m], m["delta"])
    record["epsilon"] = privacy_record({"epsilon": record["epsilon_requested"], "delta": record["delta"],
                                        "max_grad_norm": record["max_grad_norm"]}, record["mechanisms"])["epsilon"]


def _edit_training(meta, **fields):
    meta["privacy"]["mechanisms"][1].update(fields)


def _halve_rate(meta):
    m = meta["privacy"]["mechanisms"][1]
    m["sampling_rate"] /= 2


def _sample_statistics(meta):
    meta["privacy"]["mechanisms"][0].update(sampling_rate=0.5, mechanism="subsampled_gaussian")


def _fewer_selection_steps(meta):
    meta["condition_model"]["privacy"]["mechanisms"][1]["steps"] = 1
    _recompute(meta["condition_model"]["privacy"])
    meta["privacy"]["mechanisms"][3]["steps"] = 1


@pytest.mark.parametrize("model,edit,field", [
    ("one_condition", lambda meta: _edit_training(meta, steps=1), r"privacy.mechanisms\[1\].steps' must be 2 at "
                                                                  r"sampling rate 0.5"),
    ("one_condition", _halve_rate, r"privacy.mechanisms\[1\].steps' must be 4 at sampling rate 0.25"),
    ("one_condition", _sample_statistics, r"privacy.mechanisms\[0\].steps' must be 1 at sampling rate 1.0"),
    ("tree", _fewer_selection_steps, r"\(condition model\).*privacy.mechanisms\[1\].steps' must be 2"),
], ids=["fewer training steps", "lower training rate", "sampled statistics", "fewer tree edges"])
def test_a_record_whose_steps_are_not_its_fits_is_refused(request, model, edit, field):
    """Fewer DP-SGD steps than the epochs in the file's history take, a lower sampling rate, a sampled
    statistics release or fewer tree edges: each record, its epsilons recomputed, claims less epsilon than
    the fit spent, and was loaded."""
    synth = request.getfixturevalue(model)
    meta, tensors, tables = synth._export_state()
    meta = copy.deepcopy(meta)
    edit(meta)
    _recompute(meta["privacy"])
    assert meta["privacy"]["epsilon"] < synth.privacy_["epsilon"]
    meta["format_version"] = FORMAT_VERSION  # that of its condition model
    with pytest.raises(DataValidationError, match=field):
        Synthesizer._from_state(meta, tensors, tables, "'m.mpx'")
    unedited = copy.deepcopy(synth._export_state()[0])
    unedited["format_version"] = FORMAT_VERSION
    assert Synthesizer._from_state(unedited, tensors, tables, "'m.mpx'").privacy_ == synth.privacy_


def test_a_column_clipped_to_one_value_is_fitted_and_the_clipping_is_said(cps):
    """Public bounds below every value clip a column to one value. The fit refused it ("'re74' is constant (-1.0)
    after clipping to its public bounds"), but a refusal read from the data tells whether one record holds another
    value (session 69): with DP the public bounds are the column's support, the clipping is said in a
    PrivacyWarning naming the column and the count, and the fit goes on."""
    with pytest.warns(PrivacyWarning, match=r"re74"):
        synth = _dp(public_bounds={**BOUNDS, "re74": (-10.0, -1.0)}).fit(cps, seed=0)
    out = synth.sample(300, seed=1)["re74"]
    assert ((out >= -10.0) & (out <= -1.0)).all()