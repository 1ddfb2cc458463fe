"""Session 75 (evaluation inputs): ``evaluate`` compares a float32 column stored as a pandas nullable ``Float32`` or
an Arrow ``float32[pyarrow]`` at float32, as a numpy float32 column (it widened it to float64 first: a float64
release copying every training record read 0.2025 copies, its attribute disclosure 0.075 instead of 0.4225, and a
stale holdout raised no warning)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from microplex.cli import app
from microplex.evaluation import evaluate
from microplex.evaluation.privacy import PrivacyRiskWarning
from microplex.io import read_table

runner = CliRunner()

N = 400
NARROW = ["Float32", "float32[pyarrow]", "float16[pyarrow]"]


def _copied(dtype: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Training and holdout records with a tenths column ``x`` of ``dtype`` (24.1 stored as 24.100000381469727 in
    float32), and a float64 release holding the training records' decimals (24.1): a copy of every record."""
    rng = np.random.default_rng(0)
    vals = np.round(rng.uniform(10, 90, N), 1)
    g = rng.choice(["a", "b"], N)
    train = pd.DataFrame({"x": pd.array(vals, dtype=dtype), "g": g})
    holdout = pd.DataFrame({"x": pd.array(np.round(rng.uniform(10, 90, N), 1), dtype=dtype),
                            "g": rng.choice(["a", "b"], N)})
    return train, pd.DataFrame({"x": vals, "g": g}), holdout


def _copy_rate_by_hand(train: pd.DataFrame, synth: pd.DataFrame, dtype: np.dtype) -> float:
    """The share of released records equal to a training record once ``x`` is read at the training file's
    precision ``dtype``."""
    seen = set(zip(train["x"].to_numpy(dtype), train["g"]))
    return float(np.mean([(dtype.type(x), g) in seen for x, g in zip(synth["x"], synth["g"])]))


@pytest.mark.parametrize("dtype", NARROW)
def test_evaluate_finds_the_copies_of_a_nullable_or_arrow_float32_file(dtype):
    train, synth, holdout = _copied(dtype)
    narrow = np.dtype("float16" if "16" in dtype else "float32")
    assert _copy_rate_by_hand(train, synth, narrow) == 1.0
    assert (synth["x"].to_numpy() != train["x"].to_numpy(float)).mean() > 0.5  # at float64 most differ
    with pytest.warns(PrivacyRiskWarning, match=r"100\.0% of synthetic records copy a training record exactly"):
        rep = evaluate(train, synth, holdout_df=holdout, pmse=False, progress=False)
    assert rep.privacy["exact_copy_rate_synthetic"] == 1.0
    assert rep.privacy["dcr_synthetic_median"] == 0.0 and rep.privacy["dcr_ratio"] == 0.0
    # the holdout's copies by hand at the same precision
    assert rep.privacy["exact_copy_rate_holdout"] == _copy_rate_by_hand(train, holdout.astype({"x": float}), narrow)
    # every score as for the same files held as numpy float32 (float16)
    with pytest.warns(PrivacyRiskWarning):
        plain = evaluate(train.astype({"x": narrow}), synth, holdout_df=holdout.astype({"x": narrow}), pmse=False,
                         progress=False)
    pd.testing.assert_frame_equal(rep.scores, plain.scores)


@pytest.mark.parametrize("dtype", NARROW[:2])
def test_evaluate_warns_of_a_holdout_that_holds_training_records_of_a_float32_file(dtype):
    train, synth, holdout = _copied(dtype)
    # half of the holdout rows are training records, stored as float64 decimals (a CSV beside a Parquet file)
    stale = pd.concat([synth.iloc[:200], holdout.iloc[200:].astype({"x": float}).round(1)], ignore_index=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        evaluate(train, synth, holdout_df=stale, pmse=False, progress=False)
    assert any("not fresh" in str(w.message) for w in caught if issubclass(w.category, PrivacyRiskWarning))


@pytest.mark.parametrize("dtype", NARROW[:2])
def test_attribute_disclosure_of_evaluate_reads_float32_cells_at_float32(dtype):
    rng = np.random.default_rng(1)
    fte = rng.choice([0.1, 0.3, 0.6, 0.8, 1.0], N)  # a float32 quasi-identifier of 5 values: not cut into groups
    g, y = rng.choice(["a", "b"], N), rng.choice(["p", "q", "r"], N)
    train = pd.DataFrame({"fte": pd.array(fte, dtype=dtype), "g": g, "y": y})
    holdout = pd.DataFrame({"fte": pd.array(rng.choice([0.1, 0.3, 0.6, 0.8, 1.0], N), dtype=dtype),
                            "g": rng.choice(["a", "b"], N), "y": rng.choice(["p", "q", "r"], N)})
    synth = train.assign(fte=fte)  # the release copies the training records, fte as float64 decimals
    # by hand: each record's cell in the release is its own (fte, g) cell of the training file; the most frequent
    # sensitive value(s) of the cell, k tied ones credited 1/k each
    counts = pd.DataFrame({"f": fte, "g": g, "y": y}).groupby(["f", "g", "y"]).size()
    top = counts == counts.groupby(level=[0, 1]).transform("max")
    credit = top / top.groupby(level=[0, 1]).transform("sum")
    by_hand = sum(credit.loc[(f, a, b)] for f, a, b in zip(fte, g, y)) / N
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrivacyRiskWarning)
        rep = evaluate(train, synth, holdout_df=holdout, pmse=False, progress=False, attacks=True,
                       quasi_identifiers=["fte", "g"], sensitive=["y"])
    assert rep.attacks["attribute_disclosure"]["y"]["attribution_synthetic"] == pytest.approx(by_hand, abs=1e-12)


def test_microplex_evaluate_finds_the_copies_of_a_float32_parquet_file(tmp_path):
    train, synth, holdout = _copied("Float32")
    train.to_parquet(tmp_path / "train.parquet")
    holdout.to_parquet(tmp_path / "hold.parquet")
    synth.to_csv(tmp_path / "synth.csv", index=False)  # the release: the training records, as decimals
    assert str(read_table(tmp_path / "train.parquet")["x"].dtype) == "Float32"
    r = runner.invoke(app, ["evaluate", str(tmp_path / "train.parquet"), str(tmp_path / "synth.csv"), "--holdout",
                            str(tmp_path / "hold.parquet"), "--no-pmse", "--report", str(tmp_path / "r.html")])
    assert r.exit_code == 0, r.output
    assert "DCR ratio: 0.0000" in r.output
    assert "100.0% of synthetic records copy a training record exactly" in r.output
