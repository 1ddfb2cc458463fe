"""Attack-based risk: membership-inference AUC and attribute disclosure (synthpop's DiSCO).

Each attack is checked on releases whose answer is known: a file that copies the training rows
(AUC near 1, disclosure far above the holdout baseline) and an independent sample of the same
population (AUC 0.5 within sampling noise, disclosure at the baseline).
"""

import re

import numpy as np
import pandas as pd
import pytest

from microplex import DataValidationError
from microplex.datasets import load_dataset
from microplex.evaluation import METRIC_DIRECTION, evaluate, registry
from microplex.evaluation.attacks import attribute_disclosure, membership_auc, weighted_auc
from microplex.evaluation.privacy import PrivacyRiskWarning, exact_copy_rate

QUASI = ["age", "educ", "black", "hisp", "marr", "re74", "re75"]


@pytest.fixture(scope="module")
def parts():
    df = load_dataset("cps1").sample(6000, random_state=0).reset_index(drop=True)
    return df.iloc[:2000], df.iloc[2000:4000], df.iloc[4000:]  # train, holdout, independent release


def test_weighted_auc_against_mann_whitney():
    rng = np.random.default_rng(1)
    pos, neg = rng.integers(0, 5, 60).astype(float), rng.integers(0, 4, 50).astype(float)
    # U by brute force over every pair, ties counting one half
    u = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    assert weighted_auc(pos, neg) == pytest.approx(u / (60 * 50), abs=1e-12)
    # integer weights are repetitions
    wp, wn = rng.integers(0, 4, 60), rng.integers(1, 4, 50)
    assert weighted_auc(pos, neg, wp, wn) == pytest.approx(weighted_auc(np.repeat(pos, wp), np.repeat(neg, wn)), abs=1e-12)
    assert weighted_auc([1.0], [1.0]) == 0.5
    with pytest.raises(DataValidationError, match="negative weights"):
        weighted_auc([1.0], [0.0], [-1.0])


def test_membership_auc_copies_vs_independent(parts):
    train, holdout, other = parts
    copy = membership_auc(train, train.copy(), holdout)
    independent = membership_auc(train, other, holdout)
    half = membership_auc(train, pd.concat([train.iloc[:1000], other.iloc[:1000]]), holdout)
    assert copy > 0.93  # not 1: cps1 holds duplicated records (all-zero earnings), in the holdout too
    assert abs(independent - 0.5) < 0.03  # 2000 + 2000 candidates: the AUC's sd is about 0.009
    assert 0.65 < half < 0.8  # half of the members copied
    # weights enter: members of weight 0 do not count
    w = np.r_[np.ones(1000), np.zeros(1000)]
    assert membership_auc(train, train.iloc[:1000], holdout, train_weights=w) > 0.93
    assert membership_auc(train, train.iloc[:1000], holdout, train_weights=1 - w) < 0.6


def test_membership_auc_warns_on_few_records(parts):
    train, holdout, other = parts
    # each side capped on its own: sqrt((2000 + 50) / (12 * 2000 * 50)) = 0.0413
    with pytest.warns(UserWarning, match=r"scored on 2000 members and 50 non-members.*about 0\.041"):
        membership_auc(train, other, holdout.iloc[:50])
    with pytest.warns(UserWarning, match="scored on 199 members"):
        membership_auc(train, other, holdout, max_rows=199)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        membership_auc(train, other, holdout, max_rows=200)


def test_evaluate_names_the_holdout_in_its_errors(parts):
    train, holdout, other = parts
    with pytest.raises(DataValidationError, match="Column 'age' is in real_df but not in holdout_df"):
        evaluate(train, other, holdout_df=holdout.drop(columns="age"), attacks=True, pmse=False, progress=False)
    bad = holdout.assign(age=holdout["age"].astype(str))
    with pytest.raises(DataValidationError, match="in holdout_df"):
        evaluate(train, other, holdout_df=bad, pmse=False, progress=False)


def test_attribute_disclosure_copies_vs_independent(parts):
    train, holdout, other = parts
    copy = attribute_disclosure(train, train.copy(), holdout, QUASI, "re78")
    independent = attribute_disclosure(train, other, holdout, QUASI, "re78")
    # numeric columns fall into 5 groups, so cells hold several records even in a copy
    # (measured: copy 0.24 and 0.66, holdout 0.05 and 0.40, independent 0.07 and 0.41)
    assert copy["disco_synthetic"] > copy["disco_holdout"] + 0.15
    assert copy["attribution_synthetic"] > copy["attribution_holdout"] + 0.2
    for key in ("disco", "attribution"):
        assert abs(independent[f"{key}_synthetic"] - independent[f"{key}_holdout"]) < 0.05
    assert independent["disco_holdout"] == copy["disco_holdout"]  # the baseline does not depend on the release


def test_attribute_disclosure_by_hand():
    train = pd.DataFrame({"g": ["a", "a", "b", "c"], "s": [1, 1, 2, 3]})
    release = pd.DataFrame({"g": ["a", "a", "b", "b", "b"], "s": [1, 1, 2, 5, 5]})
    holdout = pd.DataFrame({"g": ["c"], "s": [3]})
    out = attribute_disclosure(train, release, holdout, ["g"], "s", train_weights=[1, 1, 1, 2])
    # a: unique and right (weight 2); b: mode 5 is wrong; c: absent from the release
    assert out["disco_synthetic"] == pytest.approx(2 / 5) and out["attribution_synthetic"] == pytest.approx(2 / 5)
    # b right when the release's weights favour it, but no longer unique
    out = attribute_disclosure(train, release, holdout, ["g"], "s", synthetic_weights=[1, 1, 5, 1, 1])
    assert out["attribution_synthetic"] == pytest.approx(3 / 4) and out["disco_synthetic"] == pytest.approx(2 / 4)
    assert out["disco_holdout"] == out["attribution_holdout"] == pytest.approx(1 / 4)
    with pytest.raises(DataValidationError, match="cannot also be a quasi-identifier"):
        attribute_disclosure(train, release, holdout, ["g", "s"], "s")
    with pytest.raises(DataValidationError, match=r"holdout_df lacks the columns \['g'\]"):
        attribute_disclosure(train, release, holdout[["s"]], ["g"], "s")


def test_records_of_weight_zero_do_not_decide_whether_a_column_is_cut():
    # Only age 20 has positive weight in the training file: there is one value to cut, so age is compared as it
    # is, and the released age 21 is not the training record's. The records of weight 0 (ages 21 and 22) made
    # age look like a column of three values, cut into bins=2 groups at the weighted quantiles; 20 and 21 fell in
    # one group and the record counted as disclosed (1.0 where the same file without them gave 0.0). Found by
    # tests/property/test_disclosure.py.
    train = pd.DataFrame({"q": ["a"] * 3, "age": [20, 21, 22], "s": [0.0] * 3})
    release = pd.DataFrame({"q": ["a"], "age": [21], "s": [0.0]})
    holdout = pd.DataFrame({"q": ["a"], "age": [20], "s": [0.0]})
    weighted = attribute_disclosure(train, release, holdout, ["q", "age"], "s", train_weights=[1, 0, 0], bins=2)
    alone = attribute_disclosure(train.iloc[:1], release, holdout, ["q", "age"], "s", bins=2)
    assert weighted == alone
    assert weighted["disco_synthetic"] == 0.0 and weighted["disco_holdout"] == 1.0


def test_evaluate_attacks(parts):
    train, holdout, _ = parts
    cols = QUASI + ["re78"]
    rep = evaluate(train[cols], train[cols].copy(), holdout_df=holdout[cols], pmse=False, attacks=True,
                   quasi_identifiers=QUASI, sensitive=["re78"])
    assert rep.score("membership_auc") == rep.attacks["membership_auc"] > 0.93
    assert rep.score("disco_synthetic", "re78") == rep.attacks["attribute_disclosure"]["re78"]["disco_synthetic"]
    assert rep.score("disco_holdout", "re78") < rep.score("disco_synthetic", "re78")
    assert rep.score("dcr_ratio") == 0.0  # beside the DCR figures
    assert METRIC_DIRECTION["membership_auc"] == "lower"
    assert {"membership_auc", "disco_synthetic", "disco_holdout", "attribution_synthetic",
            "attribution_holdout"} <= {e.name for e in registry.METRICS if e.kind == "privacy"}
    # quasi-identifiers default to the conditions; without any, only the membership attack runs
    rep = evaluate(train[cols], train[cols].copy(), holdout_df=holdout[cols], conditions=["age"], pmse=False,
                   attacks=True)
    assert sorted(rep.attacks["attribute_disclosure"]) == sorted(c for c in cols if c != "age")
    rep = evaluate(train[cols], train[cols].copy(), holdout_df=holdout[cols], pmse=False, attacks=True)
    assert rep.attacks["attribute_disclosure"] == {}
    assert evaluate(train[cols], train[cols], holdout_df=holdout[cols], pmse=False).attacks is None
    with pytest.raises(DataValidationError, match="pass attacks=True"):
        evaluate(train[cols], train[cols], holdout_df=holdout[cols], sensitive=["re78"])
    with pytest.raises(DataValidationError, match="attacks=True needs holdout_df"):
        evaluate(train[cols], train[cols], attacks=True)
    with pytest.raises(DataValidationError, match="'quasi_identifiers' parameter names columns"):
        evaluate(train[cols], train[cols], holdout_df=holdout[cols], pmse=False, attacks=True, quasi_identifiers=["x"])


def test_int_and_float_copies_are_the_same_release(parts):
    train, holdout, _ = parts
    ints = train.copy()
    for release in (train.astype(float), train.astype({c: "Int64" for c in ("age", "educ", "nodeg")})):
        assert attribute_disclosure(train, release, holdout, QUASI[:5], "nodeg") == \
            attribute_disclosure(train, ints, holdout, QUASI[:5], "nodeg")
    out = attribute_disclosure(train.astype(float), ints, holdout, QUASI[:5], "nodeg")
    assert out["disco_synthetic"] == 1.0 and out["disco_holdout"] > 0.9  # nodeg follows from educ
    cols = QUASI + ["nodeg"]
    rep = evaluate(train[cols].astype({"age": "Int64", "nodeg": "Int64"}), train[cols].copy(), holdout_df=holdout[cols],
                   pmse=False, progress=False, attacks=True, quasi_identifiers=QUASI[:5], sensitive=["nodeg"])
    assert rep.privacy["exact_copy_rate_synthetic"] == 1.0
    assert rep.privacy["exact_copy_rate_holdout"] == exact_copy_rate(holdout[cols], train[cols]) > 0
    assert rep.attacks["attribute_disclosure"]["nodeg"]["disco_holdout"] == out["disco_holdout"]


def test_membership_auc_warns_on_a_small_effective_sample(parts):
    train, holdout, other = parts
    w = np.ones(len(train))
    w[0] = 1e6  # 2,000 members, but one holds nearly all the weight
    with pytest.warns(UserWarning, match=r"2000 members and 2000 non-members of positive weight, whose weights leave "
                                         r"effective sample sizes \(Kish\) of 1\.0 and 2000\.0.* about 0\.288"):
        membership_auc(train, other, holdout, train_weights=w)  # sqrt((1.004 + 2000) / (12 * 1.004 * 2000))


def test_members_of_weight_zero_are_left_out_before_subsampling(parts):
    train, holdout, other = parts
    w = np.zeros(len(train))
    keep = [1, 3, 4, 6, 7]
    w[keep] = 1.0
    # subsampling 200 of the 2,000 members would most likely keep none of the 5 that count
    with pytest.warns(UserWarning, match="scored on 5 members and 200 non-members"):
        auc = membership_auc(train, other, holdout, train_weights=w, max_rows=200)
    with pytest.warns(UserWarning, match="scored on 5 members"):
        assert auc == membership_auc(train.iloc[keep], other, holdout, max_rows=200)
    with pytest.warns(UserWarning, match="scored on 5 members"):
        rep = evaluate(train.assign(w=w), other, holdout_df=holdout.assign(w=1.0), weight_col="w", pmse=False,
                       progress=False, attacks=True)
    assert 0.0 <= rep.attacks["membership_auc"] <= 1.0


@pytest.mark.parametrize("kwargs, match", [
    ({"sensitive": ["re78"]}, r"The 'sensitive' parameter \(\['re78'\]\) needs quasi-identifiers.*'quasi_identifiers'"),
    ({"quasi_identifiers": [], "sensitive": ["re78"]}, "'sensitive' parameter .* needs quasi-identifiers"),
    ({"quasi_identifiers": ["age"], "sensitive": []}, "The 'sensitive' parameter must be a non-empty list"),
    ({"quasi_identifiers": "age"}, r"The 'quasi_identifiers' parameter must be a list .* Got 'age' instead"),
    ({"quasi_identifiers": ["age"], "sensitive": "re78"}, r"The 'sensitive' parameter must be .* Got 're78' instead"),
])
def test_evaluate_refuses_attack_settings_it_would_ignore(parts, kwargs, match):
    train, holdout, other = parts
    with pytest.raises(DataValidationError, match=match):
        evaluate(train, other, holdout_df=holdout, pmse=False, progress=False, attacks=True, **kwargs)


def test_evaluate_warns_when_the_holdout_is_the_training_data(parts):
    train, _, _ = parts
    cols = QUASI + ["re78"]
    with pytest.warns(PrivacyRiskWarning, match="100.0% of the holdout rows are exact copies of training rows"):
        rep = evaluate(train[cols], train[cols].copy(), holdout_df=train[cols].copy(), pmse=False, progress=False,
                       attacks=True)
    assert rep.attacks["membership_auc"] == 0.5  # what the warning is about: the copy goes unseen


def test_html_says_when_the_holdout_is_not_fresh(parts, tmp_path):
    train, holdout, _ = parts
    cols = QUASI + ["re78"]
    with pytest.warns(PrivacyRiskWarning):
        stale = evaluate(train[cols], train[cols].copy(), holdout_df=train[cols].copy(), pmse=False, progress=False)
        fresh = evaluate(train[cols], train[cols].copy(), holdout_df=holdout[cols], pmse=False, progress=False)
    notice = "The holdout is not fresh data."
    assert notice in stale.to_html(tmp_path / "stale.html").read_text()
    assert notice not in fresh.to_html(tmp_path / "fresh.html").read_text()


def test_html_shows_the_attacks_beside_the_fidelity_figures(parts, tmp_path):
    train, holdout, _ = parts
    cols = QUASI + ["re78"]
    with pytest.warns(PrivacyRiskWarning):
        rep = evaluate(train[cols], train[cols].copy(), holdout_df=holdout[cols], pmse=False, progress=False,
                       attacks=True, quasi_identifiers=QUASI, sensitive=["re78"])
    text = rep.to_html(tmp_path / "copy.html").read_text()
    # every fidelity score of a verbatim copy is green: the attacks alone make the verdict red
    assert '<p class="verdict red" id="verdict">' in text
    assert "Furthest beyond their floor: membership_auc of all 0.9" in text and "and the attacks" in text
    privacy = text[text.index('id="privacy"'):text.index('id="dcr"')]
    disco = rep.attacks["attribute_disclosure"]["re78"]
    assert re.search(r"<td>membership AUC</td><td></td><td>0\.9\d+</td><td>0\.5</td><td><span class=\"light red\">",
                     privacy)
    assert (f"<td>DiSCO</td><td>re78</td><td>{disco['disco_synthetic']:.4g}</td>"
            f"<td>{disco['disco_holdout']:.4g}</td><td><span class=\"light red\">") in privacy
    assert "<td>attribution</td><td>re78</td>" in privacy and "age, educ, black, hisp, marr, re74, re75" in privacy
    whole = text[text.index('id="whole-file"'):text.index('id="variables"')]
    assert re.search(r"<td>membership_auc</td>\s*<td>0\.9\d+</td>\s*<td>0\.5</td>\s*<td><span class=\"light red\">",
                     whole)
    # without the attacks the same file reads red too: its exact-copy rate and DCR ratio are privacy problems
    with pytest.warns(PrivacyRiskWarning):
        plain = evaluate(train[cols], train[cols].copy(), holdout_df=holdout[cols], pmse=False, progress=False)
    plain_text = plain.to_html(tmp_path / "plain.html").read_text()
    assert '<p class="verdict red" id="verdict">' in plain_text and 'id="attacks"' not in plain_text
    assert 'id="privacy-problems"' in plain_text
