"""Trust guards of evaluate and its metrics (issue 15): bad frames and arguments raise a clear
DataValidationError, never a raw error or a silently wrong number. Each test fails on main at
739bb0e (raw errors, wrong numbers or accepted arguments)."""

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError
from microplex.evaluation import evaluate, pmse
from microplex.evaluation.metrics import wasserstein, weighted_corr, weighted_std


def make(n=300, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"g": rng.integers(0, 3, n), "x": rng.normal(size=n), "c": rng.choice(["a", "b"], n)})


def test_all_weight_on_one_record_gives_a_clear_error_not_zero_division():
    real = make().assign(w=np.r_[1.0, np.zeros(299)])
    synth = make(seed=1).assign(w=np.r_[1.0, np.zeros(299)])
    # rows of weight 0 are left out of the classifier: one real row of positive weight is too few to fit it
    with pytest.raises(DataValidationError, match=r"pmse needs at least 100 real rows of positive weight .*got 1\. "
                                                  r"Pass pmse=False"):
        evaluate(real, synth, weight_col="w", synthetic_weight_col="w")


def test_all_weight_on_one_record_scores_without_pmse_and_skips_empty_subgroups():
    real = make().assign(w=np.r_[1.0, np.zeros(299)])
    rep = evaluate(real, make(seed=1), weight_col="w", conditions=["g"], pmse=False)
    assert rep.scores["value"].map(np.isfinite).all()
    sub = rep.scores[rep.scores["metric"] == "subgroup_ks"]
    assert sub.empty  # the only subgroup with real weight holds one record of it: fewer than min_rows


@pytest.mark.parametrize("n", [1, 20, 99])
def test_pmse_refuses_samples_its_default_classifier_cannot_split(n):
    real = pd.DataFrame({"x": np.arange(n, dtype=float)})
    # on main this returned 0.0 ("indistinguishable") for samples 1000 apart
    with pytest.raises(DataValidationError, match=rf"pmse needs at least 100 real rows with the default classifier.*got {n}\. Pass pmse=False"):
        evaluate(real, real + 1000.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_folds": 1}, r"The 'n_folds' parameter must be an int >= 2. Got 1 instead"),
        ({"n_repeats": 0}, r"The 'n_repeats' parameter must be an int >= 1 or None. Got 0"),
        ({"max_rows": 0}, r"The 'max_rows' parameter must be an int >= 1 or None. Got 0"),
        ({"random_state": -1}, r"The 'random_state' parameter must be an int in \[0, 2\*\*64 - 1\] or None. Got -1"),
        ({"classifier": "hgb"}, r"The 'classifier' parameter must be a scikit-learn classifier"),
    ],
)
def test_pmse_arguments_are_checked(kwargs, match):
    with pytest.raises(DataValidationError, match=match):
        pmse(make(), make(seed=1), **kwargs)


def _frame(**cols):
    return pd.DataFrame(cols)


@pytest.mark.parametrize(
    "real, synth, kwargs, match",
    [
        (_frame(x=[1.0, np.inf, 2.0]), _frame(x=[1.0, 2.0, 3.0]), {}, r"Column 'x' of real_df holds 1 infinite value\(s\): expected finite numbers"),
        (_frame(x=[1.0, 2.0]), _frame(x=[-np.inf, 2.0]), {}, r"Column 'x' of synthetic_df holds 1 infinite value"),
        (_frame(t=pd.to_datetime(["2020-01-01", "2021-01-01"])), _frame(t=pd.to_datetime(["2020-01-01", "2021-01-01"])), {},
         r"Column 't' of real_df has dtype datetime64\[\w+\], which cannot be scored"),
        (_frame(t=pd.to_timedelta([1, 2], unit="D")), _frame(t=pd.to_timedelta([1, 2], unit="D")), {}, r"Column 't' of real_df has dtype timedelta64"),
        (_frame(t=pd.to_datetime(["2020-01-01"]).tz_localize("UTC")), _frame(t=pd.to_datetime(["2020-01-01"]).tz_localize("UTC")), {}, r"Column 't' of real_df has dtype datetime64\[\w+, UTC\]"),
        (_frame(z=[1 + 2j]), _frame(z=[1 + 2j]), {}, r"Column 'z' of real_df has dtype complex128"),
        (_frame(o=pd.Series([[1], [2]], dtype=object)), _frame(o=pd.Series([[1], [2]], dtype=object)), {}, r"Column 'o' of real_df holds unhashable values"),
        (pd.DataFrame([[1.0, 2.0]], columns=["a", "a"]), pd.DataFrame([[1.0, 2.0]], columns=["a", "a"]), {}, r"real_df has duplicated column names \['a'\]"),
        (pd.DataFrame({0: [1.0], 1: [2.0]}), pd.DataFrame({0: [1.0], 1: [2.0]}), {}, r"real_df must have non-empty string column names: got \[0, 1\]"),
        (_frame(a=[1.0]), pd.DataFrame({"a": [1.0], 5: [1.0]}), {}, r"synthetic_df must have non-empty string column names: got \[5\]"),
        (_frame(all=[1.0]), _frame(all=[1.0]), {}, r"real_df has a column named 'all': the names \['all', '__weight__'\] and names with '\|' are reserved"),
        (_frame(__weight__=[1.0], a=[1.0]), _frame(__weight__=[1.0], a=[1.0]), {}, r"column named '__weight__'"),
        (_frame(**{"a|b": [1.0]}), _frame(**{"a|b": [1.0]}), {}, r"column named 'a\|b'"),
        (_frame(a=[1.0], w=[1.0]), _frame(a=[1.0], w=[1.0]), {"synthetic_weight_col": "a"}, r"The synthetic weight column 'a' is also a column of real_df"),
        (_frame(a=[1.0]), _frame(a=[1.0]), {"conditions": "a"}, r"The 'conditions' parameter must be a list of distinct column names \(str\). Got 'a'"),
        (_frame(a=[1.0]), _frame(a=[1.0]), {"weight_col": 0}, r"The 'weight_col' parameter must be a column name \(str\) or None. Got 0"),
        (_frame(a=[1.0]), _frame(a=[1.0]), {"pmse": "no"}, r"The 'pmse' parameter must be a bool. Got 'no'"),
        (_frame(a=[1.0]), _frame(a=[1.0]), {"random_state": 1.5}, r"The 'random_state' parameter must be an int"),
        (_frame(a=[1.0]), _frame(a=[1.0]), {"holdout_df": [1.0]}, r"holdout_df must be a pandas DataFrame or None: got list"),
        (_frame(a=[1.0]), _frame(a=[1.0]), {"targets": {"a": "ten"}}, r"Target 'a' must be a finite number. Got 'ten'"),
        (_frame(a=[1.0]), _frame(a=[1.0]), {"targets": {"a": float("nan")}}, r"Target 'a' must be a finite number. Got nan"),
        (_frame(a=[1.0]), _frame(a=[1.0]), {"targets": {3: 1.0}}, r"Target 3 must be a column name \(str\) or a \(column, level\) pair"),
        (_frame(a=[1.0], w=[1e308]), _frame(a=[1.0]), {"weight_col": "w"}, None),
    ],
)
def test_bad_frames_and_arguments_raise_a_clear_error(real, synth, kwargs, match):
    kwargs = {"pmse": False, **kwargs}
    if match is None:  # finite weights, but their sum overflows
        real = pd.concat([real, real], ignore_index=True)
        synth = pd.concat([synth, synth], ignore_index=True)
        match = r"real_df\['w'\] sums to infinity in float64 .*: the weights are too large"
    before = (real.copy(), synth.copy())
    with pytest.raises(DataValidationError, match=match):
        evaluate(real, synth, **kwargs)
    pd.testing.assert_frame_equal(before[0], real)
    pd.testing.assert_frame_equal(before[1], synth)


def test_nullable_integer_columns_are_scored_like_floats():
    real = pd.DataFrame({"k": pd.array([1, 2, None, 4] * 30, dtype="Int64")})
    synth = pd.DataFrame({"k": pd.array([1, 2, 3, None] * 30, dtype="Int64")})
    rep = evaluate(real, synth, pmse=False)
    ref = evaluate(real.astype(float), synth.astype(float), pmse=False)
    pd.testing.assert_frame_equal(rep.scores, ref.scores)
    assert real["k"].dtype == "Int64"  # the caller's frame is unchanged


def test_values_near_the_float_limit_give_an_exact_or_a_clear_answer():
    x = np.array([1e308, -1e308, 5e307, 0.0])
    assert weighted_std(x) == pytest.approx(np.std(x / 1e308) * 1e308)  # main: inf
    df = pd.DataFrame({"a": x, "b": 2 * (x / 4)})
    assert weighted_corr(df).loc["a", "b"] == pytest.approx(1.0)  # main: nan
    with pytest.raises(DataValidationError, match=r"The '\w+' score of 'a' is not a finite number \(inf\): its values are too large"):
        evaluate(pd.DataFrame({"a": [1.7e308, 1.6e308]}), pd.DataFrame({"a": [-1.7e308, -1.6e308]}), pmse=False)
    assert np.isfinite(wasserstein(x, x))


def test_report_is_written_atomically(tmp_path, monkeypatch):
    from microplex.evaluation import _html

    rep = evaluate(make(), make(seed=1), pmse=False)
    target = tmp_path / "r.html"
    target.write_text("old report")
    # a text that fails while being written (as a full disk would): main truncated the old report first
    monkeypatch.setattr(_html, "render_html", lambda *a, **k: "<html>" * 1000 + "\ud800")
    with pytest.raises(UnicodeEncodeError):
        rep.to_html(target)
    assert target.read_text() == "old report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda m, p: m.quantile_errors([1.0, 2.0], [1.0, 2.0], quantiles=[0.5, 2.0]), r"The 'quantiles' parameter must hold probabilities in \[0, 1\]"),
        (lambda m, p: m.weighted_quantile([1.0, 2.0], ["a"]), r"The 'q' parameter must hold probabilities in \[0, 1\]"),
        (lambda m, p: m.point_mass_errors([1.0], [1.0], min_share=0), r"The 'min_share' parameter must be a finite float in \(0, 1\]"),
        (lambda m, p: m.discretize(pd.Series([1.0]), pd.Series([1.0]), bins=0), r"The 'bins' parameter must be an int >= 1. Got 0"),
        (lambda m, p: m.subgroup_ks(make(), make(), "x", "g", min_rows=2.5), r"The 'min_rows' parameter must be an int >= 1. Got 2.5"),
        (lambda m, p: m.wasserstein([1.0], [1.0], scale="yes"), r"The 'scale' parameter must be a bool"),
        (lambda m, p: p.dcr(make(), make(), max_rows=0), r"The 'max_rows' parameter must be an int >= 1 or None. Got 0"),
        (lambda m, p: p.privacy_summary(make(), make(), make(), ratio_threshold=float("nan")), r"The 'ratio_threshold' parameter must be a finite float >= 0"),
    ],
)
def test_metric_arguments_are_checked(call, match):
    from microplex.evaluation import metrics, privacy

    with pytest.raises(DataValidationError, match=match):
        call(metrics, privacy)
