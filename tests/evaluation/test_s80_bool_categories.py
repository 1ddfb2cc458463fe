"""Categories of booleans against categories of numbers: a boolean is no number.

Python has ``True == 1`` and ``False == 0``, and pandas groups and factorizes them as one value. A real column of
0/1 codes held as categories (or objects) scored against a synthetic column of booleans, opposite codes
included, read as identical: tv_complement 1.0 and contingency 1.0 for ``False``/``True`` standing for 0/1,
exact copies and DCR 0 in the privacy checks. The calibration refuses a boolean level for a number; the
evaluation now refuses the pair, naming the column, both types and the fix, as it refuses ``1`` against ``"1"``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError
from microplex.evaluation import contingency_similarity, evaluate, pmse, privacy_summary, tv_complement


def _frames(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    g, y = rng.integers(0, 2, n), rng.normal(size=n)
    codes = pd.DataFrame({"g": pd.Series(g).astype("category"), "y": y})
    flags = pd.DataFrame({"g": g.astype(bool), "y": y})
    return codes, flags


@pytest.mark.parametrize("order", ["codes first", "flags first"])
@pytest.mark.parametrize("held", ["category", "object"])
def test_booleans_against_numbers_are_refused_naming_the_column(order, held):
    codes, flags = _frames()
    codes = codes.astype({"g": held})
    real, synthetic = (codes, flags) if order == "codes first" else (flags, codes)
    with pytest.raises(DataValidationError, match=r"Column 'g': .*booleans.*numbers.*a boolean is no number"):
        evaluate(real, synthetic, pmse=False, progress=False)
    with pytest.raises(DataValidationError, match=r"Column 'g': .*holdout_df"):
        evaluate(real, real.copy(), holdout_df=synthetic, pmse=False, progress=False)


def test_the_functions_that_compare_two_frames_refuse_the_pair_too():
    codes, flags = _frames()
    with pytest.raises(DataValidationError, match="a boolean is no number"):
        pmse(codes, flags)
    with pytest.raises(DataValidationError, match="a boolean is no number"):
        privacy_summary(codes, flags, codes.copy())


def test_one_type_in_both_frames_is_scored_as_before():
    codes, flags = _frames()
    report = evaluate(codes, codes.copy(), pmse=False, progress=False)
    assert report.score("tv_complement", "g") == 1.0
    report = evaluate(flags, flags.copy(), pmse=False, progress=False)
    assert report.score("tv_complement", "g") == 1.0
    # floats against integers are one family of numbers: 1.0 is 1
    report = evaluate(codes.astype({"g": object}), codes.astype({"g": float}).astype({"g": object}), pmse=False,
                      progress=False)
    assert report.score("tv_complement", "g") == 1.0
    # the metric functions on two samples compare categories as they are (refused in frames only)
    assert tv_complement(["a", "b"], ["a", "b"]) == 1.0
    assert contingency_similarity(codes, codes.copy(), ["g", "y"]) == 1.0
