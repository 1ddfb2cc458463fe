"""Property: the same decimals stored as float64 or as float32 read alike (session 60).

A float32 column holds 24.1 as 24.100000381469727. Decimal levels, round-value shares and exact matches read each
column at the precision it was stored at, so the float32 copy of a column of decimals (within float32's resolution)
gives the levels, shares and row codes of the decimals themselves.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from microplex._stats import decimal_levels, round_shares, storage_precision
from microplex.evaluation.privacy import row_codes


@st.composite
def decimals(draw):
    """Decimals m * 10**k (|m| < 100,000, k in [-2, 2]: float32 resolves their last digit), some zeros, as float64
    written from their text (as a CSV reader gives them), with positive weights."""
    n = draw(st.integers(1, 40))
    k = draw(st.lists(st.integers(-2, 2), min_size=n, max_size=n))
    m = draw(st.lists(st.integers(-99_999, 99_999), min_size=n, max_size=n))
    x = np.array([float(f"{mi}e{ki}") for mi, ki in zip(m, k, strict=True)])
    w = np.array(draw(st.lists(st.floats(0.1, 10.0), min_size=n, max_size=n)))
    return x, w


@given(case=decimals())
def test_float32_copies_of_decimals_have_their_levels_and_round_shares(case):
    x, w = case
    x32 = x.astype(np.float32).astype(float)
    precision = storage_precision(x32)
    assert precision in ("float32", "float64")
    if precision == "float64":  # no evidence: every value as round at float64 (integers, halves, quarters)
        np.testing.assert_array_equal(decimal_levels(x32), decimal_levels(x))
    np.testing.assert_array_equal(decimal_levels(x32, "float32"), decimal_levels(x))
    np.testing.assert_array_equal(round_shares(x32, w, range(-2, 6)), round_shares(x, w, range(-2, 6)))
    assert storage_precision(x) == "float64" or (x == x32).all()


@given(case=decimals())
def test_a_float32_file_and_a_float64_file_of_the_same_decimals_match_row_for_row(case):
    x, _ = case
    a = pd.DataFrame({"v": x, "g": np.arange(len(x)) % 2})
    b = a.astype({"v": "float32"})
    ca, cb = row_codes([a, b], ["v", "g"])
    np.testing.assert_array_equal(ca, cb)
