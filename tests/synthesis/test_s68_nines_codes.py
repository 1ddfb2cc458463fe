"""Numbers that code missing values: a largest value of all nines, negative flags (session 68).

IPUMS writes a "not applicable" income as 9999999 (and a missing wage as 999998 beside 999999 for N/A). Fitted as
given, such a code is a point mass of incomes of ten million, drawn for every child, and a calibrated total counts
it. A file cannot say it is a code; the fit now warns, naming the recode.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from microplex import Synthesizer
from microplex.synthesis._validation import warn_missing_codes


def _ipums_like(n: int = 1_000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    age = rng.integers(0, 90, n)
    income = np.where(age < 15, 9_999_999, rng.lognormal(10, 1, n).round()).astype(np.int64)
    return pd.DataFrame({"age": age, "inctot": income})


def test_an_ipums_na_code_is_named_in_a_warning():
    df = _ipums_like()
    with pytest.warns(UserWarning, match=r"Target column 'inctot': its largest value 9,999,999 \(held by \d+ of 1,000 "
                                         r"records\) is all nines.*df\['inctot'\]\.replace\(9999999, np\.nan\)"):
        Synthesizer(["inctot"], ["age"], epochs=1, verbose=False).fit(df, seed=0)
    # the recode it names: no warning, and no income of millions is drawn for children
    fixed = df.assign(inctot=df["inctot"].replace(9_999_999, np.nan))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        synth = Synthesizer(["inctot"], ["age"], epochs=1, verbose=False).fit(fixed, seed=0)
    assert synth.generate(pd.DataFrame({"age": [5] * 200}), seed=1)["inctot"].isna().all()


@pytest.mark.parametrize("values", [
    [1.0, 2.0, 99.0, 99.0, 50.0] * 100,              # hours of 99: two digits, an amount
    [100.0, 9_999.0, 9_000.0, 8_500.0] * 100,         # 9,999 beside 9,000: no gap, a top code
    [10.0, 20.0] * 1000 + [99_999.0],                # one record in 2,001: below the share
    [999_999.0] * 50 + [999_998.0] * 10 + [10.0] * 40,  # IPUMS' missing code under N/A: still judged (warns)
])
def test_which_largest_values_are_called_codes(values):
    series = pd.Series(values)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_missing_codes(series, "x", "target")
    expected = values[0] == 999_999.0
    assert bool(caught) == expected, [str(w.message) for w in caught]


def test_negative_flags_are_named_in_a_warning():
    """-9 "refused", -8 "don't know", -1 "not applicable" beside incomes that are never negative."""
    rng = np.random.default_rng(1)
    income = rng.lognormal(10, 1, 1_000).round()
    income[:60], income[60:90], income[90:150] = -9, -8, -1
    df = pd.DataFrame({"age": rng.integers(18, 80, 1_000), "income": income})
    with pytest.warns(UserWarning, match=r"Target column 'income': its only negative values are -9 \(60 records\), "
                                         r"-8 \(30 records\), -1 \(60 records\) of 1,000.*"
                                         r"df\['income'\]\.mask\(df\['income'\] < 0\)"):
        Synthesizer(["income"], ["age"], epochs=1, verbose=False).fit(df, seed=0)


@pytest.mark.parametrize("negatives", [
    [-1.0, -2.0, -3.0],          # years of experience below 0 (cps1988): amounts
    [-1.0],                      # EU-SILC's age -1: a child born after the income year
    [-9.0, -8.0, -1.0, -2.0],    # four distinct: not a few codes
    [-9.0, -350.0],              # another negative value: amounts
])
def test_negative_amounts_are_not_called_codes(negatives):
    values = pd.Series(np.concatenate([np.repeat(negatives, 20), np.arange(1.0, 401.0)]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_missing_codes(values, "x", "target")
    assert not caught, [str(w.message) for w in caught]
