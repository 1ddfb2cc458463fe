"""Exact copies across float precisions (session 60): a float32 column's 24.100000381469727 is 24.1.

A release written in float64 (rounded to the real data's decimals, as SDV and most writers do) that copies
every record of a float32 training file was scored as copying 40.9% of them (the real workinghours incomes in
$1,000s: the records whose income is a whole number or a half), with DCR ratio 8.9e-9 instead of 0. Every
exact-match test (``row_codes``: exact copies, holdout overlap, quasi-identifier cells) and the DCR encoding
now compare a column at the narrowest float precision the frames store it at.
"""

from __future__ import annotations

import numpy as np
import pytest

from microplex.datasets import load_dataset
from microplex.evaluation import evaluate
from microplex.evaluation.privacy import dcr, encode_records, exact_copy_rate, row_codes


@pytest.fixture(scope="module")
def split():
    df = load_dataset("workinghours")
    df = df.assign(income=df["income"] / 10.0)
    train = df.iloc[:2000].astype({"income": "float32"})
    holdout = df.iloc[2000:].astype({"income": "float32"})
    copied = train.sample(1000, random_state=0).astype({"income": "float64"})
    copied["income"] = copied["income"].round(1)  # as a float64 writer rounds to the data's decimals
    return train, holdout, copied


def test_a_float64_copy_of_float32_records_is_an_exact_copy(split):
    train, holdout, copied = split
    assert (copied["income"].to_numpy() != train.loc[copied.index, "income"].to_numpy(float)).mean() > 0.5
    assert exact_copy_rate(copied, train) == 1.0
    assert (dcr(copied, train) == 0).all()
    a, b = row_codes([copied, train.loc[copied.index]], list(train.columns))
    np.testing.assert_array_equal(a, b)
    # float64 against float64 is compared as before: 24.1 and 24.100000381469727 differ
    assert exact_copy_rate(copied, train.astype({"income": "float64"})) < 0.5


def test_evaluate_reports_the_copies(split):
    train, holdout, copied = split
    with pytest.warns(Warning, match="copy a training record exactly"):
        report = evaluate(train, copied, holdout_df=holdout, pmse=False, progress=False)
    assert report.score("exact_copy_rate_synthetic") == 1.0
    assert report.privacy["dcr_ratio"] == 0.0


def test_the_encoding_puts_equal_values_at_one_place(split):
    train, _, copied = split
    ref, enc = encode_records(train, copied)
    np.testing.assert_array_equal(enc, ref[train.index.get_indexer(copied.index)])
