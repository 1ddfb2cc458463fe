"""Journeys of session 51 on the bundled real extracts: the report's figures recomputed by hand (weighted KS,
zero shares, exact copies and distances with duplicated records, the membership attack on a copied release),
and the HTML report's distance plot drawn from the records of the privacy figures whatever the seed."""

import warnings

import numpy as np
import pandas as pd
import pytest

from microplex.datasets import load_dataset
from microplex.evaluation import _html, _plots_file, attacks, evaluate, privacy


def _thirds(df: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    order = np.random.default_rng(seed).permutation(len(df))
    a, b = len(df) // 3, 2 * len(df) // 3
    return tuple(df.iloc[part].reset_index(drop=True) for part in (order[:a], order[a:b], order[b:]))


def _hand_ks(x: np.ndarray, y: np.ndarray, wx: np.ndarray, wy: np.ndarray) -> float:
    """sup |F_x - F_y| of the weighted ECDFs over the pooled values, missing values dropped."""
    kx, ky = ~np.isnan(x), ~np.isnan(y)
    x, y, wx, wy = x[kx], y[ky], wx[kx], wy[ky]
    grid = np.unique(np.r_[x, y])
    cdf = [np.array([w[v <= g].sum() for g in grid]) / w.sum() for v, w in ((x, wx), (y, wy))]
    return float(np.abs(cdf[0] - cdf[1]).max())


def test_html_distance_plot_shows_the_records_of_the_privacy_figures_when_seed_is_none(monkeypatch):
    """Above 5,000 records a side the distances to the closest record are computed on a subsample drawn by
    ``seed``. With ``evaluate(seed=None)`` the HTML report drew its histogram with seed 0, another subsample
    than the one of ``report.privacy``: on cps1 thirds (5,330 records) the plot's holdout median was 0.0719
    beside the summary's 0.0720. The plot now shows the distances the figures were computed from."""
    train, synth, holdout = _thirds(load_dataset("cps1"))
    assert min(len(synth), len(holdout)) > 5_000
    computed = []
    real_dcr = privacy.dcr

    def recording_dcr(*args, **kwargs):
        out = real_dcr(*args, **kwargs)
        computed.append(out)
        return out

    monkeypatch.setattr(privacy, "dcr", recording_dcr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = evaluate(train, synth, holdout_df=holdout, pmse=False, seed=None, progress=False)
    assert len(computed) == 2  # the synthetic records' distances, then the holdout's
    d_syn, d_hol = computed
    assert rep.privacy["dcr_synthetic_median"] == float(np.median(d_syn))
    assert rep.privacy["dcr_holdout_median"] == float(np.median(d_hol))
    plotted = {}
    monkeypatch.setattr(_plots_file, "dcr_plot", lambda d_s, d_h: plotted.update(s=d_s, h=d_h) or "")
    _html._privacy(rep)  # the report's privacy section (to_html draws every other plot too)
    assert np.array_equal(plotted["s"], d_syn) and np.array_equal(plotted["h"], d_hol)
    assert float(np.median(plotted["h"])) == rep.privacy["dcr_holdout_median"]
    assert privacy.close_shares(plotted["s"], plotted["h"])[1:] == (rep.privacy["dcr_close_share"],
                                                                rep.privacy["dcr_close_share_holdout"])


def test_html_distance_plot_of_a_seeded_report_is_unchanged(monkeypatch):
    """With an int seed the plot's distances are those ``dcr`` gives for that seed (as before)."""
    train, synth, holdout = _thirds(load_dataset("cps1"), seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = evaluate(train, synth, holdout_df=holdout, pmse=False, seed=7, progress=False)
    plotted = {}
    monkeypatch.setattr(_plots_file, "dcr_plot", lambda d_s, d_h: plotted.update(s=d_s, h=d_h) or "")
    _html._privacy(rep)
    assert np.array_equal(plotted["s"], privacy.dcr(rep.synthetic_df, rep.real_df, seed=7))
    assert np.array_equal(plotted["h"], privacy.dcr(rep.holdout_df, rep.real_df, seed=7))


def test_eusilc_weighted_scores_and_floor_agree_with_figures_by_hand():
    """eusilc with its person weights rb050: KS, zero share and missing share of the weighted synthetic file
    (another real third) and the floor's KS (holdout weighted by weight_col too) equal the hand figures."""
    df = load_dataset("eusilc").drop(columns=["db030", "rb030", "db090"]).iloc[:3_000]
    train, synth, holdout = _thirds(df)
    cols = ["age", "py010n", "py050n", "eqIncome", "pl030"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = evaluate(train[cols + ["rb050"]], synth[cols + ["rb050"]], weight_col="rb050",
                       synthetic_weight_col="rb050", holdout_df=holdout[cols + ["rb050"]], pmse=False, progress=False)
    wr, ws, wh = (f["rb050"].to_numpy(float) for f in (train, synth, holdout))
    assert np.array_equal(rep.real_weights, wr) and np.array_equal(rep.synthetic_weights, ws)
    for c in ["age", "py010n", "py050n", "eqIncome"]:
        x, y, z = (f[c].to_numpy(float) for f in (train, synth, holdout))
        assert rep.score("ks", c) == pytest.approx(_hand_ks(x, y, wr, ws), abs=1e-12)
        floor = rep.floor.query("metric == 'ks' and variable == @c and subgroup == 'all'")["value"].item()
        assert floor == pytest.approx(_hand_ks(x, z, wr, wh), abs=1e-12)
        zero = [np.sum(w[~np.isnan(v)] * (v[~np.isnan(v)] == 0)) / w[~np.isnan(v)].sum() for v, w in ((x, wr), (y, ws))]
        assert rep.score("zero_share_error", c) == pytest.approx(abs(zero[0] - zero[1]), abs=1e-12)
        miss = [np.sum(w * np.isnan(v)) / w.sum() for v, w in ((x, wr), (y, ws))]
        assert rep.score("missing_share_error", c) == pytest.approx(abs(miss[0] - miss[1]), abs=1e-12)
    # unweighted KS differs: the weights are used
    x, y = train["py010n"].to_numpy(float), synth["py010n"].to_numpy(float)
    assert rep.score("ks", "py010n") != pytest.approx(_hand_ks(x, y, np.ones(len(x)), np.ones(len(y))), abs=1e-6)


def test_cps1_copied_release_with_duplicated_records_is_caught():
    """cps1 holds duplicated records (12% of rows repeat another): a release that copies the training rows
    scores exact-copy rate 1, DCR median 0 and a membership AUC above 0.9, while the holdout's exact-copy rate
    is the share of its rows found among the training rows, counted by hand."""
    train, holdout, _ = _thirds(load_dataset("cps1").iloc[:6_000])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = evaluate(train, train.copy(), holdout_df=holdout, pmse=False, attacks=True, quasi_identifiers=[],
                       progress=False)
    seen = set(map(tuple, train.to_numpy(float)))
    by_hand = np.mean([tuple(r) in seen for r in holdout.to_numpy(float)])
    assert 0.05 < by_hand < 0.2
    assert rep.privacy["exact_copy_rate_holdout"] == pytest.approx(by_hand, abs=1e-12)
    assert rep.privacy["exact_copy_rate_synthetic"] == 1.0
    assert rep.privacy["dcr_synthetic_median"] == 0.0 and rep.privacy["dcr_ratio"] == 0.0
    assert rep.attacks["membership_auc"] > 0.9


def _eusilc_persons(n: int = 3_000) -> pd.DataFrame:
    """eusilc's first persons without their ids and weights: 35 encoded columns (regions, status, citizenship
    one-hot), so the nearest-neighbour search is scikit-learn's brute force."""
    return load_dataset("eusilc").drop(columns=["db030", "rb030", "db090", "rb050"]).iloc[:n].reset_index(drop=True)


def test_a_record_equal_to_a_training_record_is_at_distance_0():
    """dcr (and so the report's DCR figures) gave a record equal to a training record a distance of up to 1.2e-7
    instead of 0 on eusilc (21% of 3,000 records against themselves): the brute-force search's
    |a|^2 + |b|^2 - 2 a.b rounding. The distances are now exact."""
    df = _eusilc_persons()
    d = privacy.dcr(df, df)
    assert np.count_nonzero(d) == 0


def test_membership_auc_of_records_that_all_copy_released_records_is_one_half():
    """Members and non-members that all equal a released record are all at distance 0, tied: an attack on them
    has no advantage, AUC 0.5 exactly (it read 0.4954 on eusilc, the ties broken by rounding noise). A release
    that copies the members still scores 1 against fresh records."""
    df = _eusilc_persons()
    holdout = df.sample(1_000, random_state=0).reset_index(drop=True)  # copies of members: not fresh, on purpose
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert attacks.membership_auc(df, df.copy(), holdout) == 0.5
    assert attacks.membership_auc(df.iloc[:1_500], df.iloc[:1_500].copy(), df.iloc[1_500:]) == 1.0


def test_attribution_shares_the_credit_of_tied_modes_whatever_the_row_order():
    """Where values tie for the release's most frequent one, each counts 1/k: the figure took the tied value whose
    code came first, so the training rows' order decided it (3/4 or 1/4 below; on cps1 halves, re74 from age,
    educ, black, hisp, marr, the same records in three orders read 0.3773, 0.3723 and 0.3728)."""
    release = pd.DataFrame({"g": ["a", "a"], "s": [1, 2]})
    for train in (pd.DataFrame({"g": ["a"] * 4, "s": [1, 1, 1, 2]}), pd.DataFrame({"g": ["a"] * 4, "s": [2, 1, 1, 1]})):
        out = attacks.attribute_disclosure(train, release, release, ["g"], "s")
        assert out["attribution_synthetic"] == 0.5 and out["disco_synthetic"] == 0.0
    df = load_dataset("cps1")
    train, synth, holdout = _thirds(df.iloc[:6_000])
    quasi = ["age", "educ", "black", "hisp", "marr"]
    figures = [attacks.attribute_disclosure(train.sample(frac=1.0, random_state=k), synth, holdout, quasi, "re74")
               for k in range(3)]
    for other in figures[1:]:
        assert other == pytest.approx(figures[0], abs=1e-12)  # the same up to the order of a sum
