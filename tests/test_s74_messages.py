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
