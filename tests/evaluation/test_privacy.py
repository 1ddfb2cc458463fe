import warnings

import numpy as np
import pandas as pd
import pytest

from microplex._errors import DataValidationError
from microplex.evaluation.privacy import (
    PrivacyRiskWarning, dcr, encode_records, exact_copy_rate, privacy_summary, row_codes,
)


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


def test_row_codes_compare_numbers_as_numbers_whatever_the_dtype():
    a = pd.DataFrame({"x": pd.Series([1, 2, None], dtype="Int64"), "g": pd.Series(["a", "b", None], dtype="category")})
    b = pd.DataFrame({"x": [2.0, np.nan, 1.0, 1.0, 1.0], "g": ["b", None, "a", "b", "1"]})
    ca, cb = row_codes([a, b], ["x", "g"])
    assert cb[0] == ca[1] and cb[1] == ca[2] and cb[2] == ca[0]  # 2 == 2.0, NA == NaN, category == str
    assert len({*ca, cb[3]}) == 4  # a different string
    c = pd.DataFrame({"x": [1, 1], "g": [1, "1"]})
    assert row_codes([c], ["x", "g"])[0].tolist() == [0, 1]  # the number 1 is not the string "1"
    assert [x.tolist() for x in row_codes([a.iloc[:0], a], [])] == [[], [0, 0, 0]]


def test_exact_copies_are_found_across_int_and_float_dtypes(frames):
    train, holdout = frames
    assert exact_copy_rate(train.astype({"age": float}), train) == 1.0
    assert exact_copy_rate(train.astype({"age": "Int64"}), train.astype({"age": float})) == 1.0
    missing = train.assign(income=train["income"].mask(train.index % 3 == 0))
    assert exact_copy_rate(missing.astype({"age": "Int64"}), missing) == 1.0  # missing equals missing
    with pytest.warns(PrivacyRiskWarning, match="100.0% of synthetic records copy a training record exactly"):
        privacy_summary(train, train.astype({"age": float}), holdout)


def test_a_holdout_holding_training_rows_warns(frames):
    train, holdout = frames
    for overlap, share in ((train.iloc[:500], "100.0%"), (pd.concat([train.iloc[:250], holdout.iloc[:250]]), "50.0%")):
        with pytest.warns(PrivacyRiskWarning, match=rf"{share} of the holdout rows are exact copies of training rows, "
                                                    r"while only 0.0% .* not meaningful"):
            privacy_summary(train, holdout, overlap)
    # discrete records repeat: a fresh holdout matches training rows about as often as training rows repeat
    rng = np.random.default_rng(3)
    discrete = pd.DataFrame({"age": rng.integers(18, 30, 2000), "sex": rng.choice(["f", "m"], 2000)})
    with warnings.catch_warnings():
        warnings.simplefilter("error", PrivacyRiskWarning)
        out = privacy_summary(discrete.iloc[:1500], discrete.iloc[1500:1750], discrete.iloc[1750:])
    assert out["exact_copy_rate_holdout"] == 1.0
