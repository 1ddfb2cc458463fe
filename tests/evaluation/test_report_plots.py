"""The report's plots: bars for categorical and binary variables, QQ plots, the most correlated
pairs, subgroup heat maps, the training curve, the labelled DCR histogram, the table of contents."""

import re

import numpy as np
import pandas as pd
import pytest

from microplex.evaluation import evaluate
from microplex.evaluation._plots import QQ_PROBABILITIES, is_binary, label, qq_points, top_pairs
from microplex.evaluation._plots_file import subgroup_cells, training_history
from microplex.evaluation.metrics import subgroup_ks


def make(n=900, seed=0, shift=0.0):
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n)
    income = np.where(rng.random(n) < 0.2, 0.0, rng.lognormal(10 + shift, 1, n))
    return pd.DataFrame({
        "age": age, "age2": rng.integers(0, 3, n), "sex": rng.choice(["f", "m"], n),
        "employed": (rng.random(n) < 0.6).astype(int), "income": income,
        "tax": 0.2 * income + rng.normal(0, 50, n), "hours": rng.normal(38, 6, n),
    })


class Model:
    condition_vars = ["age"]

    def get_params(self, deep=True):
        return {"epochs": "auto"}

    history_ = pd.DataFrame({"epoch": [1, 2, 3, 4], "train_loss": [3.0, 2.5, 2.2, 2.1],
                             "val_loss": [3.1, 2.6, 2.4, 2.45]})


def sections(text):
    return {m.group(1): m.start() for m in re.finditer(r'<h[23] id="([a-z-]+)"', text)}


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    real = make()
    rep = evaluate(real, make(seed=1, shift=0.3), holdout_df=make(seed=2), conditions=["sex", "age2"], pmse=False)
    path = rep.to_html(tmp_path_factory.mktemp("r") / "r.html", model=Model())
    return rep, path.read_text()


def test_qq_points_are_weighted_quantiles():
    rng = np.random.default_rng(0)
    x = rng.lognormal(0, 1, 300)
    w = rng.integers(1, 4, 300).astype(float)
    qr, qs = qq_points(x, np.repeat(x, w.astype(int)), w, np.ones(int(w.sum())))
    np.testing.assert_array_equal(qr, qs)            # a weight k is k copies of the record
    unweighted = np.quantile(x, QQ_PROBABILITIES, method="inverted_cdf")
    assert np.abs(qr - unweighted).max() > 0.01      # and the weights change the quantiles


def test_top_pairs_are_the_most_correlated_in_the_real_records():
    df = make()
    pairs = top_pairs(df, np.ones(len(df)), ["age", "income", "tax", "hours"], k=2)
    assert (pairs[0][0], pairs[0][1]) == ("income", "tax") and pairs[0][2] > 0.99
    assert abs(pairs[1][2]) < 0.2
    w = np.where(df["income"] > df["income"].median(), 1e-9, 1.0)   # weights decide which records count
    assert top_pairs(df, w, ["income", "tax"])[0][2] < pairs[0][2]


def test_binary_numeric_columns_are_bars():
    assert is_binary(pd.Series([0, 1, 1])) and is_binary(pd.Series([2.5, np.nan]))
    assert not is_binary(pd.Series([0, 1, 2])) and not is_binary(pd.Series(["a", "b"]))


def test_subgroup_cells_match_subgroup_ks_for_prefix_named_conditions():
    real, synth = make(), make(seed=1, shift=0.5)
    rep = evaluate(real, synth, conditions=["age", "age2"], pmse=False)
    cells = subgroup_cells(rep.scores)
    assert set(cells) == {"age", "age2"}
    for by in ("age", "age2"):
        direct = subgroup_ks(real, synth, "income", by)
        got = cells[by].loc["income"].dropna()
        assert list(got.index) == list(direct["subgroup"])
        np.testing.assert_allclose(got.to_numpy(), direct["distance"].to_numpy())


def test_page_has_every_plot_section_in_order(page):
    rep, text = page
    found = sections(text)
    order = ["targets", "conditions", "whole-file", "subgroups", "variables", "correlations", "pairs",
             "privacy", "training"]
    assert all(k in found for k in order), sorted(found)
    assert [found[k] for k in order] == sorted(found[k] for k in order)
    assert '<nav class="toc">' in text and '<a href="#training">Training</a>' in text
    assert text.index('<nav class="toc">') < text.index('id="verdict"')
    assert re.search(r'<details id="all-scores"><summary>All scores \([\d,]+ rows\)</summary>', text)
    assert "<details open" not in text


def test_variables_get_qq_plots_or_bars_by_kind(page):
    _, text = page
    variables = text[text.index('id="variables"'):text.index('id="correlations"')]
    for c in ("income", "tax", "hours", "age"):
        assert f'alt="{c}: histogram, ECDF and QQ plot"' in variables, c
    for c in ("employed", "sex", "age2"):   # binary numeric, categorical and a 3-value numeric condition
        kind = "shares of each value" if c != "age2" else "histogram, ECDF and QQ plot"
        assert f'alt="{c}: {kind}"' in variables, c
    assert variables.index("<h3>income") < variables.index("<h3>age ")     # targets before conditions


def test_pairs_training_subgroups_and_dcr(page):
    rep, text = page
    pairs = text[text.index('id="pairs"'):text.index('id="privacy"')]
    assert 'alt="income against tax: real and synthetic"' in pairs
    assert pairs.count("<img") == 3
    training = text[text.index('id="training"'):]
    assert "4 epochs run" in training and 'alt="training loss per epoch"' in training
    subgroups = text[text.index('id="subgroups"'):text.index('id="variables"')]
    assert 'alt="distances within the cells of sex"' in subgroups
    assert 'alt="distances within the cells of age2"' in subgroups
    privacy = text[text.index('id="privacy"'):text.index('id="training"')]
    assert "as close to a training record as the closest 5% of fresh records" in privacy
    assert "dcr_close_share_holdout" in privacy
    assert "rank" in privacy and 'alt="distance to the closest training record"' in privacy


def test_training_section_only_with_a_history(tmp_path):
    rep = evaluate(make(), make(seed=1), pmse=False)
    assert 'id="training"' not in rep.to_html(tmp_path / "a.html").read_text()
    nan_val = Model()
    nan_val.history_ = Model.history_.assign(val_loss=np.nan)   # validation_fraction=0
    assert 'id="training"' in rep.to_html(tmp_path / "b.html", model=nan_val).read_text()
    assert training_history(object()) is None
    assert training_history(type("M", (), {"history_": pd.DataFrame()})()) is None


def test_user_labels_are_neither_mathtext_nor_html(tmp_path):
    bad = r"$\undefinedcommand{x}$ <b>"
    assert label(bad) == r"\$\undefinedcommand{x}\$ <b>"
    real = make().rename(columns={"income": bad, "sex": "<i>s$</i>"})
    synth = make(seed=1).rename(columns={"income": bad, "sex": "<i>s$</i>"})
    hold = make(seed=2).rename(columns={"income": bad, "sex": "<i>s$</i>"})
    rep = evaluate(real, synth, holdout_df=hold, conditions=["<i>s$</i>"], pmse=False)
    text = rep.to_html(tmp_path / "r.html", model=Model()).read_text()
    assert "$ <b>" not in text and "<i>s" not in text
    assert "&lt;b&gt;" in text and "&lt;i&gt;s$&lt;/i&gt;" in text


def test_mostly_missing_synthetic_column_still_renders(tmp_path):
    real, synth = make(), make(seed=1)
    synth.loc[synth.index[2:], "hours"] = np.nan
    text = evaluate(real, synth, pmse=False).to_html(tmp_path / "r.html").read_text()
    assert 'alt="hours: histogram, ECDF and QQ plot"' in text


def test_evaluate_progress_bar_counts_every_step_and_hides(capsys, monkeypatch):
    from microplex._errors import DataValidationError
    from microplex.evaluation import report as report_module

    seen = {}
    close = report_module._Bar.close

    def record(self):
        seen["n"], seen["total"] = self._bar.n, self._bar.total
        close(self)

    monkeypatch.setattr(report_module._Bar, "close", record)
    real = make(300)
    evaluate(real, make(300, seed=1), holdout_df=make(300, seed=2), conditions=["sex"], targets={"income": 1e6},
             pmse=False, attacks=True)
    assert seen["n"] == seen["total"] > 2 * real.shape[1]          # the bar's length is the steps run
    err = capsys.readouterr().err
    assert "evaluate" in err and "100%" in err and "done" in err
    evaluate(real, make(300, seed=1), pmse=False, progress=False)
    assert capsys.readouterr().err == ""
    with pytest.raises(DataValidationError, match="progress"):
        evaluate(real, real, progress="yes")
