"""Findings of the session-80 audit of the DP Synthesizer (``epsilon=``): nothing the fit does may depend on
the data outside the mechanisms its accountant counts."""

import warnings

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError, PrivacyWarning, Synthesizer


def _states(n: int = 60, seed: int = 1) -> tuple[pd.DataFrame, list[str]]:
    """``n`` records of a code of 50 public values ('s00' ... 's49') of which 25 are each held by one record (as a
    sample of 60 census records holds the US states: 20 of its 31 states one record's) and a number."""
    rng = np.random.default_rng(seed)
    codes = [f"s{i:02d}" for i in range(50)]
    state = codes[:25] + [codes[25 + i % 5] for i in range(n - 25)]  # 25 single records, the rest on 5 codes
    return pd.DataFrame({"state": state, "y": rng.uniform(0.0, 100.0, n)}), codes


def test_a_dp_fit_does_not_refuse_public_categories_that_records_hold_once():
    """With DP, a column's categories are public and drawn from noisy counts: no draw copies a record's value,
    so the rule that refuses a column of mostly single-record values (ids, names) does not apply, and a refusal
    read from the data would tell whether records hold a category once (a census sample of 60 records with the
    51 states as public categories was refused, "20 of its 31 distinct values ... are each held by one record",
    while a sample of fewer single states fitted). Without DP the rule stands."""
    data, codes = _states()
    kw = dict(epochs=1, batch_size=60, hidden_features=(8,), transforms=1, verbose=False)
    with pytest.raises(DataValidationError, match=r"'state' is modelled as categories and 25 of its 30 distinct"):
        Synthesizer(["state", "y"], **kw).fit(data, seed=0)
    synth = Synthesizer(["state", "y"], epsilon=1.0, delta=1e-5, public_bounds={"y": (0.0, 100.0)},
                        public_categories={"state": codes}, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few records: the histograms are mostly noise (a PrivacyWarning)
        synth.fit(data, seed=0)
    assert synth.encoders_["state"].categories == codes
    assert synth.privacy_["epsilon"] <= 1.0
    assert set(synth.sample(200, seed=1)["state"]) <= set(codes)


def test_a_dp_fit_does_not_refuse_weights_concentrated_on_one_record():
    """With DP the weights are the records' data, read through the mechanisms only: the refusal of weights whose
    Kish effective sample size is below 2 told, outside the accountant, whether one record held nearly all the
    weight (one record of weight 1 and 59 of weight 0 refused, "Kish effective sample size 1", one more record of
    weight 1 fitted). The DP fit runs and warns that its histograms are mostly noise; without DP the refusal stands,
    and a DP fit of one record is still refused (the number of records is public)."""
    data, _ = _states()
    data = data[["y"]].assign(w=np.r_[1.0, np.zeros(len(data) - 1)])
    kw = dict(epochs=1, batch_size=60, hidden_features=(8,), transforms=1, verbose=False)
    with pytest.raises(DataValidationError, match=r"Weight column 'w' puts almost all the weight on one record"):
        Synthesizer(["y"], **kw).fit(data, weight_col="w", seed=0)
    dp = dict(epsilon=1.0, delta=1e-5, public_bounds={"y": (0.0, 100.0), "w": (0.0, 1.0)}, **kw)
    with pytest.warns(PrivacyWarning, match=r"Weight column 'w'.*mostly noise"):
        synth = Synthesizer(["y"], **dp).fit(data, weight_col="w", seed=0)
    assert synth.privacy_["epsilon"] <= 1.0
    assert synth.sample(100, seed=1)["y"].between(0.0, 100.0).all()
    with pytest.raises(DataValidationError, match=r"'data' has 1 record; at least 2 are needed"):
        Synthesizer(["y"], **dp).fit(data.iloc[:1], weight_col="w", seed=0)


def test_a_dp_fit_judges_numbers_written_as_text_on_the_public_categories():
    """With DP the refusal of numbers written as text ('1,000') reads a column's public categories, not the values
    its records hold: public categories '1,000', '2,500' and 'none' were refused when no record held 'none' (every
    value a formatted number) and fitted when one did, so whether the fit ran told whether a record held it. Now
    both fit; public categories that are all formatted numbers are refused whatever the records hold."""
    rng = np.random.default_rng(0)
    kw = dict(epsilon=1.0, delta=1e-5, public_bounds={"y": (0.0, 100.0)}, epochs=1, batch_size=60,
              hidden_features=(8,), transforms=1, verbose=False)
    y = rng.uniform(0.0, 100.0, 60)
    for held in (["1,000", "2,500"], ["1,000", "2,500", "none"]):
        data = pd.DataFrame({"band": [held[i % len(held)] for i in range(60)], "y": y})
        synth = Synthesizer(["band", "y"], public_categories={"band": ["1,000", "2,500", "none"]}, **kw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # few records: the histograms are mostly noise (a PrivacyWarning)
            synth.fit(data, seed=0)
        assert synth.encoders_["band"].categories == ["1,000", "2,500", "none"]
    data = pd.DataFrame({"band": ["1,000", "2,500", "none"] * 20, "y": y})
    with pytest.raises(DataValidationError, match=r"Target column 'band' holds numbers written as text \('1,000'"):
        Synthesizer(["band", "y"], public_categories={"band": ["1,000", "2,500"]}, **kw).fit(data, seed=0)
