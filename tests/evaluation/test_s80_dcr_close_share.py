"""``dcr_close_share`` on discrete data: the share of synthetic records at or below the holdout's 5th percentile of
the distance to the closest training record, read beside the holdout's own share (``dcr_close_share_holdout``).

On cps1 about 10% of the holdout records have an exact training twin, so that percentile is 0; counting the records
strictly below it read 0.0, the best value, for a release that copies every training record."""

import warnings

import numpy as np
import pandas as pd
import pytest

from microplex.datasets import load_dataset
from microplex.evaluation import _html, evaluate, privacy
from microplex.evaluation.privacy import privacy_summary


@pytest.fixture(scope="module")
def cps1_split() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """4,000 training, 4,000 holdout and 4,000 fresh cps1 records."""
    df = load_dataset("cps1")
    order = np.random.default_rng(0).permutation(len(df))
    return tuple(df.iloc[order[i:i + 4000]].reset_index(drop=True) for i in (0, 4000, 8000))


def test_a_copy_of_the_training_records_reads_a_close_share_of_one(cps1_split):
    train, holdout, fresh = cps1_split
    copy = train.sample(frac=1.0, random_state=1).reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", privacy.PrivacyRiskWarning)
        out = privacy_summary(train, copy, holdout)
        fresh_out = privacy_summary(train, fresh, holdout)
    d_hol = privacy.dcr(holdout, train)
    assert np.quantile(d_hol, 0.05) == 0.0  # the percentile of the old rule: nothing lies below it
    assert out["dcr_close_share"] == 1.0  # was 0.0, the best value
    # the reference: the holdout's share at or below its 5th percentile, here its records with an exact twin
    assert out["dcr_close_share_holdout"] == pytest.approx(float(np.mean(d_hol == 0.0)), abs=1e-12)
    assert 0.08 < out["dcr_close_share_holdout"] < 0.12
    assert out["dcr_close_share_holdout"] == pytest.approx(out["exact_copy_rate_holdout"], abs=1e-12)
    # fresh records read about the reference (they have training twins as often as the holdout's)
    assert fresh_out["dcr_close_share_holdout"] == out["dcr_close_share_holdout"]
    assert abs(fresh_out["dcr_close_share"] - fresh_out["dcr_close_share_holdout"]) < 0.03
    assert 0.05 < fresh_out["dcr_close_share"] < 0.12


def test_continuous_distances_keep_a_reference_of_five_percent():
    """Without ties the reference is 0.05, and fresh records read about it, a copy 1.0."""
    rng = np.random.default_rng(3)
    train, holdout, fresh = (pd.DataFrame({"x": rng.normal(size=2000), "y": rng.lognormal(size=2000)})
                             for _ in range(3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", privacy.PrivacyRiskWarning)
        copy = privacy_summary(train, train.iloc[:500], holdout)
        out = privacy_summary(train, fresh, holdout)
    assert out["dcr_close_share_holdout"] == pytest.approx(0.05, abs=0.001)
    assert abs(out["dcr_close_share"] - 0.05) < 0.02
    assert copy["dcr_close_share"] == 1.0 and copy["dcr_close_share_holdout"] == out["dcr_close_share_holdout"]


def test_close_shares_count_the_records_at_the_threshold():
    cut, synthetic, holdout = privacy.close_shares(np.array([0.0, 0.0, 0.0, 0.3]), np.array([0.0, 0.0, 0.1, 0.2, 0.4]))
    assert (cut, synthetic, holdout) == (0.0, 0.75, 0.4)


def test_the_report_shows_the_reference_beside_the_close_share(cps1_split, monkeypatch):
    """The report's privacy table lists both shares, its score table too; its note compares them, and the
    distance plot reads the same figures."""
    train, holdout, _ = cps1_split
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = evaluate(train, train.iloc[::-1].reset_index(drop=True), holdout_df=holdout, pmse=False,
                       progress=False)
    assert rep.score("dcr_close_share") == 1.0
    assert 0.08 < rep.score("dcr_close_share_holdout") < 0.12
    seen = {}
    real_close_shares = privacy.close_shares

    def recording(d_s, d_h):
        seen["shares"] = real_close_shares(d_s, d_h)
        return seen["shares"]

    monkeypatch.setattr(privacy, "close_shares", recording)
    section = _html._privacy(rep)
    assert seen["shares"][1:] == (rep.privacy["dcr_close_share"], rep.privacy["dcr_close_share_holdout"])
    assert "dcr_close_share_holdout" in section and "the band is empty" not in section
