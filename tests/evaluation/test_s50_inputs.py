"""Odd inputs to the evaluation module (session 50): count targets whose level has another type than the
column, frames whose values have other types in the privacy checks, attacks and pMSE called on their own."""

import warnings

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError
from microplex.calibration import Target, Targets
from microplex.evaluation import attacks, evaluate, metrics, privacy
from microplex.evaluation.calibration import weighted_totals
from microplex.evaluation.report import _calibration_totals


def _records(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"flag": rng.random(n) < 0.4, "k": rng.integers(0, 3, n), "s": rng.choice(["1", "2"], n),
                         "x": rng.normal(size=n)})


@pytest.mark.parametrize("column, level", [("k", 1), ("k", 1.0), ("k", "1"), ("s", 1), ("s", "1"), ("flag", True)])
def test_count_targets_find_their_level_as_the_calibration_does(column, level):
    """A count target of `evaluate(targets={(column, level): total})` is the weighted count of the rows the
    calibration finds for that filter: ("k", "1") of an integer column counted 0 and ("s", 1) of a text column
    counted 0 (the calibration finds the 1s and the "1"s)."""
    df, w = _records(), np.full(200, 2.0)
    want = _calibration_totals(df, w, Targets([Target(100.0, filters={column: level})]))[0]
    assert weighted_totals(df, w, [(column, level)]).tolist() == list(want.values())
    rep = evaluate(df, df.assign(w=w), synthetic_weight_col="w", targets={(column, level): 100.0}, pmse=False,
                   progress=False)
    assert rep.calibration["achieved"].tolist() == list(want.values())


@pytest.mark.parametrize("column, level", [("flag", 1), ("flag", 0), ("k", True)])
def test_count_target_of_a_boolean_level_in_numbers_or_the_reverse_is_refused(column, level):
    """("flag", 1) of a bool column read the True rows (Python's True == 1): 140 achieved where the calibration
    finds no record with flag == 1 (a boolean is no number)."""
    df = _records()
    with pytest.raises(DataValidationError, match=f"Target \\('{column}', {level}\\): column '{column}' holds"):
        weighted_totals(df, np.ones(200), [(column, level)])
    with pytest.raises(DataValidationError, match="a boolean is no number"):
        evaluate(df, df.copy(), targets={(column, level): 100.0}, pmse=False, progress=False)


def test_count_target_of_a_level_no_row_holds_still_counts_zero():
    df = _records()
    assert weighted_totals(df, np.ones(200), [("s", "3"), ("k", 7)]).tolist() == [0.0, 0.0]


def _copies() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(1)
    train = pd.DataFrame({"x": rng.normal(size=300).round(3), "g": rng.choice(["1", "2", "3"], 300)})
    holdout = pd.DataFrame({"x": rng.normal(size=300).round(3), "g": rng.choice(["1", "2", "3"], 300)})
    return train, holdout


@pytest.mark.parametrize("column, retype", [("g", lambda s: s.astype(int)), ("x", lambda s: s.astype(str))])
def test_attacks_and_privacy_refuse_values_of_another_type_naming_the_column(column, retype):
    """A release that copies the training rows, one column held with another type ("1" as 1, 0.25 as "0.25"):
    the membership AUC read 0.5 (no advantage), the attribution 0.0, the exact-copy rate 0.0 and pMSE 0.25
    (perfectly separable), as if no value matched."""
    train, holdout = _copies()
    release = train.assign(**{column: retype(train[column])})
    other = "x" if column == "g" else "g"
    calls = [lambda: attacks.membership_auc(train, release, holdout),
             lambda: attacks.attribute_disclosure(train, release, holdout, [other], column),
             lambda: attacks.attribute_disclosure(train, release, holdout, [column], other),
             lambda: privacy.privacy_summary(train, release, holdout),
             lambda: privacy.exact_copy_rate(release, train),
             lambda: privacy.dcr(release, train),
             lambda: privacy.holdout_overlap(train, release),
             lambda: metrics.pmse(train, release)]
    for call in calls:
        with pytest.raises(DataValidationError, match=f"Column '{column}'.*(types differ|numeric in real_df)"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                call()


def test_attacks_of_frames_of_one_type_are_unchanged():
    """The same release with the column's own type: the figures the attacks give a copy of the training rows."""
    train, holdout = _copies()
    assert attacks.membership_auc(train, train.copy(), holdout) > 0.95
    assert privacy.exact_copy_rate(train.copy(), train) == 1.0
    out = attacks.attribute_disclosure(train, train.copy(), holdout, ["x"], "g", bins=1000)  # x not binned
    assert out["attribution_synthetic"] > 0.9 > 0.1 > out["attribution_holdout"]


def test_pmse_names_a_missing_column_or_a_numeric_column_held_as_text():
    """pmse on its own: a column missing from synthetic_df was a raw KeyError, letters in a numeric column a raw
    'could not convert string to float'."""
    train, _ = _copies()
    with pytest.raises(DataValidationError, match="Column 'g' is in real_df but not in synthetic_df"):
        metrics.pmse(train, train[["x"]])
    with pytest.raises(DataValidationError, match="Column 'x' is numeric in real_df but has dtype"):
        metrics.pmse(train, train.assign(x="a"))



def test_subgroup_ks_counts_only_rows_of_positive_weight_toward_min_rows():
    """A subgroup of 25 rows, 24 of them of weight 0, was scored from its one record (KS 0.80)."""
    rng = np.random.default_rng(0)
    real = pd.DataFrame({"g": np.r_[np.zeros(25), np.ones(200)], "y": rng.normal(size=225)})
    w = np.r_[1.0, np.zeros(24), np.ones(200)]
    synth = pd.DataFrame({"g": np.r_[np.zeros(100), np.ones(100)], "y": rng.normal(size=200)})
    out = metrics.subgroup_ks(real, synth, "y", "g", real_weights=w)
    assert out["subgroup"].tolist() == ["g=1.0"]
    w[:25] = 1.0  # all 25 weighted: scored
    assert metrics.subgroup_ks(real, synth, "y", "g", real_weights=w)["subgroup"].tolist() == ["g=0.0", "g=1.0"]
