"""Session 74: messages and labels that named internal names or misread values (decimal levels near float64's
spacing, the internal weight column, nullable integer conditions)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest


def test_an_int64_condition_is_labelled_with_integers_in_the_report():
    """A nullable integer (``Int64``) condition labelled its subgroups 'i=0.0' (numeric_frame made it float64);
    a numpy int64 condition read 'i=0'. Now both read 'i=0', 'i=1', 'i=2'."""
    from microplex.evaluation import evaluate

    rng = np.random.default_rng(0)
    frames = [pd.DataFrame({"i": pd.array(rng.integers(0, 3, 300), dtype="Int64"), "inc": rng.normal(100, 10, 300)})
              for _ in range(2)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = evaluate(frames[0], frames[1], conditions=["i"], pmse=False, progress=False)
        plain = evaluate(*(f.astype({"i": "int64"}) for f in frames), conditions=["i"], pmse=False, progress=False)
    sub = rep.scores[rep.scores["metric"] == "subgroup_ks"]
    assert sub["subgroup"].tolist() == ["i=0", "i=1", "i=2"]
    pd.testing.assert_frame_equal(rep.scores, plain.scores)


def _records() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"age": rng.integers(18, 80, 200), "inc": rng.normal(100, 10, 200), "w": rng.uniform(1, 2, 200)})


def test_evaluate_targets_on_an_unknown_column_do_not_name_the_internal_weight_column():
    """The design of ``evaluate(targets=...)`` is built on unit weights; a target on a column the records lack
    listed the columns as ['age', 'inc', 'w', '__weight__'], a column the user never gave."""
    from microplex._errors import DataValidationError
    from microplex.calibration import Target, Targets
    from microplex.evaluation import evaluate

    df = _records()
    with pytest.raises(DataValidationError) as err:
        evaluate(df, df, weight_col="w", synthetic_weight_col="w", targets=Targets([Target(1000.0, filters={"zzz": 1})]),
                 pmse=False, progress=False)
    assert "__weight__" not in str(err.value)
    assert "uses column 'zzz', which is not in the records. Expected one of ['age', 'inc', 'w']." in str(err.value)


def test_unit_design_reads_a_records_column_named_like_the_internal_weight():
    """``unit_design`` wrote its unit weights over a records column named ``__weight__``: a sum of that column read
    1 per record (the design's own weights), not the user's values."""
    from microplex.calibration import Target, Targets
    from microplex.calibration.design import unit_design
    from microplex.calibration.feasibility import achieved_values

    df = _records().assign(__weight__=3.0)
    design = unit_design(df, Targets([Target(0.0, variable="__weight__", aggregate="sum")]))
    assert achieved_values(design, np.ones(len(df))).tolist() == [600.0]


def test_decimal_levels_claim_no_level_finer_than_the_float_spacing_allows():
    """Random values near 1e12 (float64 spacing 1.2e-4 there) were all read as multiples of 10**12: the tolerance of
    10**-9 in units of 10**k accepted 1e12 + 0.37 as 1e12, and 64 roundings of the value (0.014 near 1e12) made
    every value a multiple of 0.01. Now a level is claimed only where its tolerance is at most 1/40 of 10**k, and a
    value's distance to the multiple must be within 64 roundings of the value."""
    from microplex._stats import NO_LEVEL, decimal_levels

    rng = np.random.default_rng(0)
    x = 1e12 + rng.random(1000)
    lv = decimal_levels(x)
    assert not ((lv > NO_LEVEL) & (lv < 0)).any()  # no multiple of 0.01 or 0.1: their tolerance is too wide there
    assert (lv == NO_LEVEL).mean() > 0.95  # only the 2.8% within the tolerance (0.014) of a whole number are whole
    assert (np.abs(x - np.round(x))[lv >= 0] < 0.015).all()
    assert (lv[np.abs(x - 1e12) > 0.015] <= 0).all()  # no value 0.37 away read as 1e12
    # values that are whole, or on a grid of 0.5, near 1e12 keep their levels; 0.01 is below what can be told there
    assert decimal_levels(np.array([1e12 + 3, 1e12 + 30, 2e12, 1e12 + 0.5])).tolist() == [0, 1, 12, NO_LEVEL]
    # ordinary values as before
    assert decimal_levels(np.array([34000.0, 1234.56, 0.1 * 3, 12345678.25, 1e-6, 1000000.0004])).tolist() == [
        3, -2, -1, -2, -6, -4]
