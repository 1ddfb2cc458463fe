"""Labels of numeric subgroup cells, the report's ranking of the worst scores, and the membership AUC's rows.

Each case failed before its fix: cut points of 201903 and 201906 both read ``2.019e+05`` (five cells, three
labels, merged in the report); a red ``tv_complement`` (higher is better) ranked last among the scores beyond
their floor; ``membership_auc(max_rows=None)`` scored as many members as non-members, chosen by the rows' order.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from microplex.evaluation import evaluate
from microplex.evaluation._verdict import report_verdicts, worst_first
from microplex.evaluation.attacks import membership_auc
from microplex.evaluation.metrics import discretize, subgroup_ks


def _months(n: int, shift: float, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame({"ym": rng.choice([201901 + k for k in range(12)], n), "y": rng.normal(shift, 1.0, n)})


def test_cells_of_close_integer_cuts_have_distinct_exact_labels():
    rng = np.random.default_rng(0)
    real, syn = _months(2000, 0.0, rng), _months(2000, 0.3, rng)
    rows = subgroup_ks(real, syn, "y", by="ym", bins=5)
    labels = rows["subgroup"].tolist()
    # the cuts by hand: the real values' quantiles 0.2 ... 0.8 (inverted CDF)
    x = np.sort(real["ym"].to_numpy())
    cuts = np.unique([x[int(np.ceil(q * len(x))) - 1] for q in (0.2, 0.4, 0.6, 0.8)])
    expected = [f"ym<{cuts[0]}", *(f"ym in [{a}, {b})" for a, b in zip(cuts[:-1], cuts[1:])), f"ym>={cuts[-1]}"]
    assert labels == expected
    assert len(set(labels)) == len(labels) == 5
    # each label names its cell: the rows it counts are those of the label's interval
    for label, n_real in zip(labels, rows["n_real"]):
        lo, hi = -np.inf, np.inf
        if m := re.fullmatch(r"ym<(\d+)", label):
            hi = int(m[1])
        elif m := re.fullmatch(r"ym>=(\d+)", label):
            lo = int(m[1])
        else:
            lo, hi = map(int, re.fullmatch(r"ym in \[(\d+), (\d+)\)", label).groups())
        assert n_real == int(((real["ym"] >= lo) & (real["ym"] < hi)).sum())


def test_cut_labels_keep_four_digits_and_add_more_only_where_two_cuts_read_alike():
    real = pd.Series(np.linspace(0.0, 1.0, 1001) * 0.001 + 1.0, name="r")
    _, _, labels = discretize(real, real, bins=4)
    assert len(set(labels)) == len(labels) == 4
    assert labels[1] == "r in [1.0003, 1.0005)"  # at 4 digits all three cuts read 1
    _, _, plain = discretize(pd.Series(np.linspace(0.0, 1.0, 1001), name="p"), pd.Series([0.5], name="p"), bins=4)
    assert plain == ["p<0.25", "p in [0.25, 0.5)", "p in [0.5, 0.75)", "p>=0.75"]
    _, _, big = discretize(pd.Series(np.arange(1000) + 123456.75, name="b"), pd.Series([1.0], name="b"), bins=2)
    assert big == ["b<123955.8", "b>=123955.8"]  # cut 123955.75: every digit of its integer part, not 1.24e+05


def test_report_lists_a_red_higher_is_better_score_first(tmp_path):
    rng = np.random.default_rng(0)

    def frame(shift: float, p: list[float]) -> pd.DataFrame:
        out = pd.DataFrame({f"x{k}": rng.normal(shift, 1.0, 2000) for k in range(6)})
        out["g"] = rng.choice(["a", "b"], 2000, p=p)
        return out

    real, hold, syn = frame(0.0, [0.5, 0.5]), frame(0.0, [0.5, 0.5]), frame(0.12, [0.9, 0.1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = evaluate(real, syn, holdout_df=hold, pmse=False, progress=False)
    table = report_verdicts(rep)
    tv = table[(table["metric"] == "tv_complement") & (table["variable"] == "g")].iloc[0]
    assert tv["verdict"] == "red" and tv["value"] < tv["floor"] - 0.3
    # beyond its floor by 0.38 in the worse direction: among the five worst (ranked by value - floor it came last)
    top = worst_first(table[table["verdict"] != "green"]).head(5)
    assert ("tv_complement", "g") in list(zip(top["metric"], top["variable"]))
    assert (top["verdict"] == "red").all()
    text = open(rep.to_html(tmp_path / "r.html")).read()
    listing = re.search(r"Furthest beyond their floor: ([^<]*)", text)[1]
    assert f"tv_complement of g {tv['value']:.4g} (floor {tv['floor']:.4g})" in listing


def test_worst_first_orders_by_light_then_by_distance_in_the_worse_direction():
    t = pd.DataFrame({"metric": ["ks", "contingency_similarity", "ks", "tv_complement"],
                      "variable": ["a", "b|c", "d", "e"], "value": [0.30, 0.80, 0.05, 0.90],
                      "floor": [0.02, 0.95, 0.02, 0.99], "verdict": ["red", "red", "amber", "amber"]})
    assert worst_first(t)["variable"].tolist() == ["a", "b|c", "e", "d"]  # 0.28 > 0.15; then 0.09 > 0.03


def _distances(q: np.ndarray, xs: np.ndarray) -> np.ndarray:
    return np.sqrt(((q[:, None, :] - xs[None]) ** 2).sum(-1)).min(1)


@pytest.mark.parametrize("sizes", [(800, 300), (300, 800)])
def test_membership_auc_with_no_cap_scores_every_member_and_non_member(sizes):
    from microplex.evaluation.privacy import encode_records

    rng = np.random.default_rng(0)
    frame = lambda n: pd.DataFrame({"x": rng.normal(size=n), "y": rng.normal(size=n)})  # noqa: E731
    train, hold = frame(sizes[0]), frame(sizes[1])
    syn = pd.concat([train.iloc[:150], frame(600)], ignore_index=True)  # copies 150 training rows
    got = membership_auc(train, syn, hold, max_rows=None)
    shuffled = membership_auc(train.sample(frac=1.0, random_state=1), syn, hold.sample(frac=1.0, random_state=2),
                              max_rows=None)
    xs, xm, xo = encode_records(syn, train, hold)
    ref = roc_auc_score(np.r_[np.ones(len(train)), np.zeros(len(hold))], -np.r_[_distances(xm, xs), _distances(xo, xs)])
    assert got == pytest.approx(ref, abs=1e-12)
    assert shuffled == pytest.approx(ref, abs=1e-12)


def test_membership_auc_caps_each_side_on_its_own(monkeypatch):
    from microplex.evaluation import attacks

    seen: list[tuple[int, int]] = []
    real_nearest = attacks._nearest_distances

    def spy(xs, xm, xo):
        seen.append((len(xm), len(xo)))
        return real_nearest(xs, xm, xo)

    monkeypatch.setattr(attacks, "_nearest_distances", spy)
    rng = np.random.default_rng(1)
    train, hold = pd.DataFrame({"x": rng.normal(size=900)}), pd.DataFrame({"x": rng.normal(size=120)})
    syn = train.iloc[:300].reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        membership_auc(train, syn, hold, max_rows=500)
        membership_auc(train, syn, hold, max_rows=None)
        membership_auc(train, syn, hold, max_rows=100)
    assert seen == [(500, 120), (900, 120), (100, 100)]
