"""Session 77, ``microplex evaluate``: a synthetic or holdout file that stores a code column as numbers (Parquet)
where the real file's column is text reads it as its numbers' text where that is safe, and is refused, naming the
column, both types and what to do, where the real file writes codes a number cannot tell apart (``'01'``)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from microplex import DataValidationError
from microplex.cli import app
from microplex.evaluation import evaluate
from microplex.io import stored_numbers_as_text

runner = CliRunner()


def _real(n: int = 40) -> pd.DataFrame:
    """Household sizes ``'1'``, ``'2'``, ``'3+'`` and state codes ``'1'``, ``'2'``, ``'10'``, ``'20'``: text whose
    number-like labels are written as their numbers' text."""
    return pd.DataFrame({"hh": np.resize(["1", "2", "3+"], n), "state": np.resize(["1", "2", "10", "20"], n),
                         "inc": 1000.0 + np.arange(n) * 7.5})


def test_parquet_integer_codes_are_read_as_the_real_files_text(tmp_path):
    """A Parquet synthetic file storing ``hh`` and ``state`` as int64 and a Parquet holdout storing them as int64 and
    Int64, beside a real Parquet file of text: read as ``'1'``, ``'10'``, ..., scored, and the holdout of training
    rows is found to be copies (10 matches 10, not 1 or 100). Before: status 1, "Column 'hh' has incompatible dtypes:
    expected non-numeric like real_df (str), got int64 in synthetic_df"."""
    real = _real()
    real.to_parquet(tmp_path / "real.parquet", index=False)
    plain = real[real["hh"] != "3+"]
    plain.assign(inc=plain["inc"] + 0.25, hh=plain["hh"].astype(int),
                 state=plain["state"].astype(int)).to_parquet(tmp_path / "syn.parquet", index=False)
    plain.assign(hh=plain["hh"].astype(int),
                 state=plain["state"].astype("Int64")).to_parquet(tmp_path / "hold.parquet", index=False)
    r = runner.invoke(app, ["evaluate", str(tmp_path / "real.parquet"), str(tmp_path / "syn.parquet"), "--holdout",
                            str(tmp_path / "hold.parquet"), "--no-pmse", "--report", str(tmp_path / "r.html")])
    assert r.exit_code == 0, r.output
    assert "100.0% of the holdout rows are exact copies of training rows" in r.output, r.output


def test_parquet_integer_codes_against_zero_padded_text_are_refused(tmp_path):
    """A real CSV of state codes ``'01'``, ``'02'``, ``'10'`` and a Parquet synthetic file storing them as the
    integers 1, 2, 10: 1 could be ``'1'`` or ``'01'``, so refused, naming the column, both types, the label and
    the zero-padding to write. Before: "Column 'state' has incompatible dtypes: expected non-numeric like real_df
    (str), got int64 in synthetic_df", which said nothing of what to do."""
    real = pd.DataFrame({"state": np.resize(["01", "02", "10"], 30), "inc": 1000.0 + np.arange(30)})
    real.to_csv(tmp_path / "real.csv", index=False)
    real.assign(state=real["state"].astype(int)).to_parquet(tmp_path / "syn.parquet", index=False)
    r = runner.invoke(app, ["evaluate", str(tmp_path / "real.csv"), str(tmp_path / "syn.parquet"), "--no-pmse",
                            "--report", str(tmp_path / "r.html")])
    assert r.exit_code == 1
    text = " ".join(r.output.split())
    assert ("The column 'state' is stored as numbers (int64) in the synthetic file" in text
            and "but is text (str) in the real file" in text and "which writes the label '01'" in text
            and "df['state'].map('{:02d}'.format)" in text), r.output
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("label", ["01", " 1", "1.0", "+1"])
def test_a_label_a_number_cannot_tell_apart_is_refused(label):
    real = pd.DataFrame({"c": ["2", label, "3+"]})
    with pytest.raises(DataValidationError, match=r"'c' is stored as numbers \(int64\) in syn but is text.*"
                                                  + re.escape(f"label {label!r}: the number 1 there could stand for {label!r} or for '1'")):
        stored_numbers_as_text(pd.DataFrame({"c": [1, 2]}), real, "syn", "real")
    # floats and missing values as their text, a column the real file holds as numbers left as it is
    out = stored_numbers_as_text(pd.DataFrame({"c": [1.0, np.nan, 2.5], "x": [1, 2, 3]}),
                                 pd.DataFrame({"c": ["1", "2.5", "3+"], "x": [1, 2, 3]}), "syn", "real")
    assert out["c"].tolist()[::2] == ["1", "2.5"] and pd.isna(out["c"][1]) and out["x"].tolist() == [1, 2, 3]


def test_evaluate_says_what_to_do_with_integer_codes_beside_text():
    real = pd.DataFrame({"state": ["01", "02", "10"] * 10, "x": np.arange(30.0)})
    with pytest.raises(DataValidationError, match=r"Column 'state' has incompatible dtypes: expected non-numeric like "
                                                  r"real_df \(.*\), got int64 in synthetic_df \(real_df holds "
                                                  r"\['01', '02', '10'\], synthetic_df \[1, 2, 10\]\): give the column "
                                                  r"of synthetic_df real_df's text labels"):
        evaluate(real, real.assign(state=real["state"].astype(int)), pmse=False, progress=False)
