"""Session 76, evaluation: a holdout or synthetic CSV without the real file's non-numeric labels reads that column
as the real file's text, a refusal of ``generate --conditions`` names the flag, and integers beyond 2**53 compare
exactly in the privacy checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from microplex.cli import app

runner = CliRunner()


def _text_coded_files(folder):
    """A real file whose state codes (``06``, ``09``, ``36``, ``48``) and household sizes (``1``, ``2``, ``3+``) are
    text, a synthetic file of every label and a holdout that holds only ``36``/``48`` and ``1``/``2`` (cells that
    look like numbers), its rows copies of training rows."""
    n = 40
    real = pd.DataFrame({"state": np.resize(["06", "09", "36", "48"], n), "hh": np.resize(["1", "2", "3+"], n),
                         "inc": 1000.0 + np.arange(n) * 7.5})
    real.to_csv(folder / "real.csv", index=False)
    plain = real[real["state"].isin(["36", "48"]) & real["hh"].isin(["1", "2"])]
    real.assign(inc=real["inc"] + 0.25).to_csv(folder / "syn.csv", index=False)
    plain.to_csv(folder / "hold.csv", index=False)
    return real, plain


def test_a_holdout_without_the_text_labels_reads_the_columns_as_text(tmp_path):
    """Before: "Column 'state' has incompatible dtypes: expected non-numeric like real_df (str), got int64 in
    holdout_df", status 1. Now the columns are the real file's text: the holdout's 36 is the training '36', so
    its rows are found to be copies of training rows."""
    _, plain = _text_coded_files(tmp_path)
    args = ["evaluate", str(tmp_path / "real.csv"), str(tmp_path / "syn.csv"), "--holdout", str(tmp_path / "hold.csv"),
            "--no-pmse", "--report", str(tmp_path / "r.html")]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    # every holdout row is a training row: compared as the text the files write ('36' == '36'), not 36 != '36'
    assert "100.0% of the holdout rows are exact copies of training rows" in r.output, r.output
    assert len(plain) == 13 and set(plain["state"]) == {"36", "48"} and set(plain["hh"]) == {"1", "2"}


def test_a_synthetic_file_without_the_text_labels_reads_the_columns_as_text(tmp_path):
    """Before: "... got int64 in synthetic_df", status 1, for a synthetic file of state 36 only. The holdout's codes
    06 and 09 stay those codes (not 6 and 9), as the real file's."""
    real, _ = _text_coded_files(tmp_path)
    real[real["state"].isin(["06", "09"])].to_csv(tmp_path / "hold.csv", index=False)
    real.assign(state="36", inc=real["inc"] + 0.25).to_csv(tmp_path / "syn.csv", index=False)
    args = ["evaluate", str(tmp_path / "real.csv"), str(tmp_path / "syn.csv"), "--holdout", str(tmp_path / "hold.csv"),
            "--no-pmse", "--report", str(tmp_path / "r.html")]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "100.0% of the holdout rows are exact copies of training rows" in r.output, r.output
