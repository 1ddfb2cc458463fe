import numpy as np
import pandas as pd
import pytest

from microplex._errors import DataValidationError
from microplex.evaluation import EvaluationReport, PrivacyRiskWarning, evaluate


def make(n=800, seed=0):
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n)
    income = np.where(rng.random(n) < 0.2, 0.0, rng.lognormal(10, 1, n))
    return pd.DataFrame(
        {
            "age": age,
            "sex": pd.Series(rng.choice(["f", "m"], n), dtype="str"),
            "income": income,
            "hours": np.where(income > 0, rng.normal(38, 8, n), np.nan),
            "weight": rng.uniform(50, 150, n),
        }
    )


def test_identical_data_scores_perfectly():
    df = make()
    rep = evaluate(df, df.copy(), weight_col="weight", synthetic_weight_col="weight", conditions=["age", "sex"])
    assert isinstance(rep, EvaluationReport)
    assert list(rep.scores.columns) == ["metric", "variable", "subgroup", "value"]
    assert rep.score("ks", "income") == 0.0
    assert rep.score("tv_complement", "sex") == 1.0
    assert rep.score("zero_share_error", "income") == 0.0
    assert rep.score("quantile_error_p99.9", "income") == 0.0
    assert rep.score("correlation_max_abs_error") == 0.0
    assert rep.score("contingency_similarity") == 1.0
    assert rep.score("subgroup_ks_mean", "income", "by sex") == 0.0
    assert rep.score("pmse") < 0.01
    assert rep.scores["value"].notna().all()


def test_weights_that_duplicate_records_equal_the_duplicated_sample():
    df = make(300).drop(columns="weight")
    k = np.random.default_rng(3).integers(1, 4, len(df))
    synth = make(300, seed=9).drop(columns="weight")
    weighted = evaluate(df.assign(w=k), synth, weight_col="w", conditions=["sex"], pmse=False).scores
    expanded = evaluate(df.loc[df.index.repeat(k)], synth, conditions=["sex"], pmse=False).scores
    pd.testing.assert_frame_equal(weighted, expanded, atol=1e-10)


def test_targets_and_holdout_add_calibration_and_privacy_rows():
    df = make()
    total = float((df["income"] * df["weight"]).sum())
    with pytest.warns(PrivacyRiskWarning, match="copy a training record exactly"):
        rep = evaluate(
            df, df.copy(), weight_col="weight", synthetic_weight_col="weight",
            targets={"income": total * 1.1, ("sex", "f"): 1.0}, holdout_df=make(seed=5), pmse=False,
        )
    assert rep.score("calibration_rel_error", "income") == pytest.approx(1 - 1 / 1.1)
    assert rep.calibration.loc["income", "achieved"] == pytest.approx(total)
    assert rep.score("kish_ess", "weight") == pytest.approx(rep.weights_summary["kish_ess"])
    assert rep.privacy is not None
    assert rep.score("exact_copy_rate_synthetic") == 1.0


def test_to_html_is_one_self_contained_file(tmp_path):
    df = make()
    rep = evaluate(df, make(seed=1), weight_col="weight", synthetic_weight_col="weight", conditions=["sex"],
                   targets={"income": 1e9}, holdout_df=make(seed=2), pmse=False)
    path = rep.to_html(tmp_path / "report.html")
    text = path.read_text()
    assert text.startswith("<!DOCTYPE html>")
    assert text.count("data:image/png;base64,") >= 6
    assert "http://" not in text and "https://" not in text and "<script" not in text
    assert "symlog" in text  # incomes with zeros use a log-friendly axis


def frame(**cols):
    return pd.DataFrame(cols)


@pytest.mark.parametrize(
    "real, synth, kwargs, match",
    [
        (frame(a=[1.0], b=[2.0]), frame(a=[1.0]), {}, r"Column 'b' is in real_df but not in synthetic_df"),
        (frame(a=[1.0]), frame(a=[1.0], c=[2.0]), {}, r"Column 'c' is in synthetic_df but not in real_df"),
        (frame(a=[1.0]), frame(a=["x"]), {}, r"Column 'a' has incompatible dtypes: expected numeric"),
        (frame(a=["x"]), frame(a=[1.0]), {}, r"Column 'a' has incompatible dtypes: expected non-numeric"),
        (frame(a=[1.0]).iloc[:0], frame(a=[1.0]), {}, r"real_df is empty: expected at least 1 row, got 0"),
        (frame(a=[1.0]), frame(a=[1.0]).iloc[:0], {}, r"synthetic_df is empty"),
        (frame(a=[np.nan, np.nan]), frame(a=[1.0]), {}, r"Column 'a' is all missing in real_df"),
        (frame(a=[1.0]), frame(a=[1.0]), {"weight_col": "w"}, r"Weight column 'w' is not in real_df"),
        (frame(a=[1.0], w=[-1.0]), frame(a=[1.0]), {"weight_col": "w"}, r"non-negative"),
        (frame(a=[1.0]), frame(a=[1.0]), {"conditions": ["z"]}, r"Condition 'z' is not a column"),
        (frame(a=[1.0]), frame(a=[1.0]), {"targets": {"q": 1.0}}, r"Target 'q' is not a column"),
        (frame(w=[1.0]), frame(w=[1.0]), {"weight_col": "w", "synthetic_weight_col": "w"}, r"No columns to evaluate"),
        ([1.0], frame(a=[1.0]), {}, r"must be pandas DataFrames"),
    ],
)
def test_bad_input_is_named(real, synth, kwargs, match):
    with pytest.raises(DataValidationError, match=match):
        evaluate(real, synth, pmse=False, **kwargs)


def test_a_weighted_real_file_needs_the_holdouts_weights():
    """Without them the real-vs-real floor compared the weighted real file with an unweighted holdout, silently
    (the attacks already refused)."""
    df = make()
    with pytest.raises(DataValidationError, match=r"Weight column 'weight' is not in holdout_df"):
        evaluate(df, make(seed=1), weight_col="weight", synthetic_weight_col="weight",
                 holdout_df=make(seed=2).drop(columns="weight"), pmse=False, progress=False)


def test_real_weight_column_left_in_synthetic_df_is_named_as_the_weight_column():
    """Before: synthetic_df holding real_df's weight column without synthetic_weight_col was refused with
    "Column 'w' is in synthetic_df but not in real_df", though 'w' is a column of real_df (its weights)."""
    real = pd.DataFrame({"x": [0.0, 1.0, 2.0], "w": [1.0, 1.0, 2.0]})
    with pytest.raises(DataValidationError, match=r"Column 'w' of synthetic_df is real_df's weight column "
                                                  r"\(weight_col='w'\), but synthetic_weight_col is None: pass "
                                                  r"synthetic_weight_col='w'"):
        evaluate(real, real.copy(), weight_col="w", pmse=False, progress=False)
    rep = evaluate(real, real.copy(), weight_col="w", synthetic_weight_col="w", pmse=False, progress=False)
    assert rep.score("ks", "x") == 0.0


@pytest.mark.parametrize("real_values, synthetic_values, shown", [
    (pd.Categorical([1, 2, 1, 2]), pd.Categorical(["1", "2", "1", "2"]), r"category 1 \(int\) of real_df is '1' \(str\)"),
    ([True, False, True, False], ["True", "False", "True", "False"], r"category True \(bool\) of real_df is 'True' \(str\)"),
    (pd.Series([1, 2, 1, 2], dtype=object), ["1", "2", "1", "2"], r"category 1 \(int\) of real_df is '1' \(str\)"),
])
def test_categories_with_equal_labels_but_other_types_are_refused_naming_the_column(real_values, synthetic_values,
                                                                                      shown):
    """Before: identical categories held as bool / int in real_df and as strings in synthetic_df scored
    tv_complement 0.0 and contingency_similarity 0.0 (disjoint files) instead of 1.0."""
    x = [1.0, 2.0, 3.0, 4.0]
    real, synth = pd.DataFrame({"c": real_values, "x": x}), pd.DataFrame({"c": synthetic_values, "x": x})
    with pytest.raises(DataValidationError, match=r"Column 'c': " + shown + " in synthetic_df: the labels agree"):
        evaluate(real, synth, pmse=False, progress=False)
    with pytest.raises(DataValidationError, match=r"Column 'c': " + shown + " in holdout_df"):
        evaluate(real, real.copy(), holdout_df=synth, pmse=False, progress=False)
    rep = evaluate(real, synth.assign(c=real["c"]), pmse=False, progress=False)
    assert rep.score("tv_complement", "c") == 1.0


@pytest.mark.parametrize("values", [[np.nan, 1.0, 2.0], [None, "a", "b"]])
def test_column_whose_non_missing_values_weigh_nothing_is_named(values):
    """Before: when every non-missing value of a column had weight 0 in real_df, evaluate failed with
    "'column': the real weights of non-missing values sum to 0.", naming no column."""
    real = pd.DataFrame({"v": values, "y": [1.0, 2.0, 3.0], "w": [1.0, 0.0, 0.0]})
    synth = pd.DataFrame({"v": values[1:] + values[1:2], "y": [1.0, 2.0, 3.0]})
    with pytest.raises(DataValidationError, match=r"Column 'v': the weights of its non-missing values in real_df "
                                                  r"sum to 0"):
        evaluate(real, synth, weight_col="w", pmse=False, progress=False)
