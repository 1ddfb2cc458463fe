"""Fidelity scores across float precisions: a float32 column's 0.699999988079071 is a float64 column's 0.7.

The privacy checks compared a column at the narrowest float precision the frames store it at (session 60); the
fidelity scores did not. A float64 release (rounded to the data's decimals, as most writers write) of float32
training records, or a float32 release of float64 records, was scored as another distribution wherever values
repeat: each heap read as two point masses, one on each side. The records against a copy of themselves read KS
0.28, point-mass error 0.28, pMSE 0.178 (0.25: told apart perfectly), contingency similarity 0.68 (0.0 for a
column of two values, whose subgroups then never met), and the attribute disclosure of a copy 0.136 against the
holdout's 0.418. Every comparison of two frames' numbers now reads them at the precision they share.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from microplex.datasets import load_dataset
from microplex.evaluation import (attribute_disclosure, contingency_similarity, evaluate, ks_statistic, pmse,
                                  point_mass_errors)
from microplex.evaluation.metrics import discretize


def _heaped(n: int, seed: int) -> pd.DataFrame:
    """A money-like column with a heap at 0.7 (whose float32 rounding lies below it) and one at 24.1 (above)."""
    rng = np.random.default_rng(seed)
    u = rng.random(n)
    x = np.where(u < 0.2, 0.7, np.where(u < 0.4, 24.1, np.round(rng.lognormal(1.0, 0.8, n), 1)))
    return pd.DataFrame({"g": np.where(rng.random(n) < 0.5, 0.7, 1.1), "x": x, "y": rng.normal(size=n)})


def test_a_float32_copy_scores_as_the_float64_copy():
    real = _heaped(3000, 0)
    copy32 = real.astype({"g": "float32", "x": "float32"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = evaluate(real, real.copy(), conditions=["g"], progress=False)
        got = evaluate(real, copy32, conditions=["g"], progress=False)
    for metric, variable, subgroup in [("ks", "x", "all"), ("point_mass_max_error", "x", "all"),
                                       ("quantile_error_max", "x", "all"), ("contingency_similarity", "g|x", "all"),
                                       ("contingency_similarity", "x|y", "all"), ("subgroup_ks_mean", "x", "by g"),
                                       ("subgroup_ks_mean", "y", "by g")]:
        assert got.score(metric, variable, subgroup) == ref.score(metric, variable, subgroup), (metric, variable)
    assert got.score("ks", "x") == 0.0 and got.score("contingency_similarity") == 1.0
    assert got.score("pmse") < 0.01  # before: 0.178, the classifier split 0.7 from 0.699999988079071
    # the pMSE of the float32 copy is that of the records against themselves at float32
    assert got.score("pmse") == pmse(copy32, copy32)
    # the subgroups are the values as the columns hold them, labelled as written
    assert set(got.scores.loc[got.scores["metric"] == "subgroup_ks", "subgroup"]) == {"g=0.7", "g=1.1"}
    assert len(got.point_masses["x"]) == len(ref.point_masses["x"])  # each heap once, not once a side


def test_a_float64_release_of_float32_records_is_scored_as_a_copy():
    """The session-60 case, from the fidelity side: float32 training incomes, a float64 release rounded to them."""
    df = load_dataset("workinghours")
    df = df.assign(income=df["income"] / 10.0)[["income", "hours", "age"]]
    train = df.iloc[:2000].astype({"income": "float32"})
    copied = train.astype({"income": "float64"}).round({"income": 1})
    assert (copied["income"].to_numpy() != train["income"].to_numpy(float)).mean() > 0.5
    report = evaluate(train, copied, pmse=False, progress=False)
    assert report.score("ks", "income") == 0.0
    assert report.score("point_mass_max_error", "income") == 0.0
    assert report.score("quantile_error_max", "income") == 0.0
    assert report.score("contingency_similarity", "income|hours") == 1.0


def test_the_metric_functions_read_both_samples_at_their_shared_precision():
    x = _heaped(2000, 1)["x"]
    x32 = x.to_numpy(dtype=np.float32)
    assert ks_statistic(x, x32) == 0.0
    assert ks_statistic(x.to_numpy(), pd.Series(x32)) == 0.0
    assert point_mass_errors(x, x32)["abs_error"].max() == 0.0
    g = pd.Series([0.7, 1.1] * 100, name="g")
    rc, sc, labels = discretize(g, g.astype("float32"))
    assert rc.tolist() == sc.tolist() and labels == ["0.7", "1.1"]
    frame = pd.DataFrame({"g": g, "x": x.iloc[:200].to_numpy()})
    assert contingency_similarity(frame, frame.astype({"g": "float32"}), ["g", "x"]) == 1.0
    # float64 against float64 is compared as before: 0.7 and its float32 rounding differ
    assert ks_statistic(x, x32.astype(float)) > 0.15


@pytest.mark.parametrize("column", ["x", "q"])
def test_attribute_disclosure_of_a_float32_release_equals_the_float64_release(column):
    """A copy released in float32 discloses what the float64 copy does (before: 0.136 against 0.418, the copy's
    sensitive heap cut into another group than the training records')."""
    rng = np.random.default_rng(2)

    def records(n):
        x = np.where(rng.random(n) < 0.3, 0.7, np.round(rng.lognormal(0, 0.5, n), 1))
        return pd.DataFrame({"q": np.round(rng.lognormal(0, 0.5, n), 1), "x": x})

    train, holdout = records(3000), records(3000)
    quasi, sensitive = (["q"], "x") if column == "x" else (["x"], "q")
    ref = attribute_disclosure(train, train.copy(), holdout, quasi, sensitive)
    got = attribute_disclosure(train, train.astype({column: "float32"}), holdout, quasi, sensitive)
    assert got == ref


def test_pmse_reads_a_float32_frame_at_its_precision():
    real = _heaped(600, 3)
    copy32 = real.astype({"x": "float32", "g": "float32"})
    assert pmse(real, copy32) == pmse(copy32, copy32) < 0.01
