import warnings

import numpy as np
import pandas as pd
import pytest

from microplex._errors import DataValidationError
from microplex.evaluation.privacy import PrivacyRiskWarning, dcr, encode_records, exact_copy_rate, privacy_summary


@pytest.fixture
def frames():
    rng = np.random.default_rng(7)

    def draw(n):
        return pd.DataFrame(
            {"age": rng.integers(18, 90, n), "income": rng.lognormal(10, 1, n), "sex": rng.choice(["f", "m"], n)}
        )

    return draw(1500), draw(500)


def test_records_are_at_distance_zero_from_themselves(frames):
    train, _ = frames
    assert np.all(dcr(train, train) == 0.0)
    assert exact_copy_rate(train, train) == 1.0


def test_a_category_mismatch_is_distance_one():
    train = pd.DataFrame({"g": ["a"]})
    assert dcr(pd.DataFrame({"g": ["b"]}), train)[0] == pytest.approx(1.0)


def test_numeric_encoding_is_the_rank_position_in_training_data():
    ref = pd.DataFrame({"x": [0.0, 10.0, 1e6, 1e9]})
    enc = encode_records(ref, pd.DataFrame({"x": [10.0, np.nan]}))[1][:, 0]
    assert enc[0] == pytest.approx(0.375)
    assert enc[1] == -1.0


def test_exact_copy_rate_counts_full_row_matches(frames):
    train, holdout = frames
    mixed = pd.concat([train.iloc[:100], holdout.iloc[:300]], ignore_index=True)
    assert exact_copy_rate(mixed, train) == pytest.approx(0.25)


def test_copying_training_records_warns_and_ratio_reads_below_one(frames):
    train, holdout = frames
    with pytest.warns(PrivacyRiskWarning, match="closer to training records than fresh holdout data"):
        out = privacy_summary(train, train.sample(500, random_state=0), holdout)
    assert out["dcr_ratio"] == 0.0
    assert out["exact_copy_rate_synthetic"] == 1.0
    assert out["dcr_close_share"] == 1.0


def test_fresh_data_as_synthetic_reads_about_one_without_warning(frames):
    train, holdout = frames
    rng = np.random.default_rng(1)
    fresh = pd.DataFrame(
        {"age": rng.integers(18, 90, 500), "income": rng.lognormal(10, 1, 500), "sex": rng.choice(["f", "m"], 500)}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", PrivacyRiskWarning)
        out = privacy_summary(train, fresh, holdout)
    assert 0.9 < out["dcr_ratio"] < 1.15
    assert out["exact_copy_rate_holdout"] == 0.0
    assert out["dcr_close_share"] < 0.12


def test_warn_false_logs_instead(frames, caplog):
    train, holdout = frames
    with warnings.catch_warnings():
        warnings.simplefilter("error", PrivacyRiskWarning)
        privacy_summary(train, train.iloc[:200], holdout, warn=False)
    assert "Possible disclosure risk" in caplog.text


def test_empty_query_raises(frames):
    train, _ = frames
    with pytest.raises(DataValidationError, match="got 0 query rows"):
        dcr(train.iloc[:0], train)
