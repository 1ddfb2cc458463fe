"""Session 76, evaluation: a holdout or synthetic CSV without the real file's non-numeric labels reads that column
as the real file's text, a refusal of ``generate --conditions`` names the flag, and integers beyond 2**53 compare
exactly in the privacy checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from microplex import DataValidationError, Synthesizer
from microplex.cli import app
from microplex.evaluation.privacy import PrivacyRiskWarning
from microplex.scale import generate_dataset

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


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A one-epoch model of ``y`` given ``g`` and ``x`` and its training records, in a CSV file."""
    folder = tmp_path_factory.mktemp("s76eval")
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"g": rng.choice(["a", "b"], 200), "x": rng.normal(size=200).round(3),
                       "y": rng.normal(size=200).round(3)})
    df.to_csv(folder / "real.csv", index=False)
    Synthesizer(["y"], ["g", "x"], epochs=1, verbose=False).fit(df, seed=0).save(folder / "m.mpx")
    return folder


@pytest.mark.parametrize("streamed", [False, True])
def test_conditions_with_a_target_column_are_refused_naming_the_flag(model_file, tmp_path, streamed):
    """Before: "error: 'conditions' already has target columns ['y']" (the Python parameter's name). Now the
    command line names its option '--conditions'."""
    out = tmp_path / ("pop" if streamed else "out.parquet")
    r = runner.invoke(app, ["generate", str(model_file / "m.mpx"), "--conditions", str(model_file / "real.csv"),
                            "-o", str(out), "-q", *(["--stream"] if streamed else [])])
    assert r.exit_code == 1, r.output
    lines = [line for line in r.output.splitlines() if line.startswith("error:")]
    assert lines == ["error: '--conditions' already has target columns ['y']; drop them (the model synthesizes "
                     "them)."], r.output
    assert not out.exists()


def test_the_library_still_names_the_parameter(model_file):
    """Outside the command line the message names the Python parameter (no flag leaks from an earlier CLI call)."""
    synth = Synthesizer.load(model_file / "m.mpx")
    with pytest.raises(DataValidationError, match=r"^'conditions' already has target columns \['y'\]"):
        generate_dataset(synth, conditions=pd.read_csv(model_file / "real.csv"), path=model_file / "pop")


_BIG = 2**53  # the first integer after it, 2**53 + 1, has no float64: read as a float it is 2**53


def _ids(n: int, dtype: str, missing: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training records with ids 2**53 + 2k and a copy of them whose ids are 2**53 + 2k + 1: no record of the
    second is a record of the first (as floats, half of them were)."""
    x = np.arange(n) % 3
    real = pd.DataFrame({"id": pd.array(_BIG + 2 * np.arange(n, dtype=np.int64), dtype=dtype), "x": x})
    other = real.assign(id=pd.array(_BIG + 2 * np.arange(n, dtype=np.int64) + 1, dtype=dtype))
    if missing:
        real.loc[n - 1, "id"] = other.loc[n - 1, "id"] = pd.NA
    return real, other


@pytest.mark.parametrize("dtype, missing", [("int64", False), ("Int64", False), ("Int64", True), ("UInt64", True)])
def test_integers_beyond_2_53_are_not_copies_of_their_neighbours(dtype, missing):
    """Before: 2**53 + 1 compared as 2**53 (float64): exact-copy rates 0.7 (0.6 with a missing id) of records no
    training record equals, and the holdout was said to hold training records."""
    import warnings

    from microplex.evaluation import evaluate, exact_copy_rate
    from microplex.evaluation.privacy import holdout_overlap

    real, other = _ids(40, dtype, missing)
    assert exact_copy_rate(other, real) == (1 / 40 if missing else 0.0)  # the two records of a missing id are equal
    assert exact_copy_rate(real, real) == 1.0
    assert holdout_overlap(real, other) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error", PrivacyRiskWarning)
        warnings.filterwarnings("ignore", category=UserWarning, message="(?!.*holdout holds)")
        rep = evaluate(real, other, holdout_df=other, pmse=False, progress=False)
    assert rep.privacy["exact_copy_rate_synthetic"] == rep.privacy["exact_copy_rate_holdout"] == (
        1 / 40 if missing else 0.0)


def test_integers_beyond_2_53_have_their_own_distances():
    """Each id 2**53 + 2k + 1 sits halfway between the training ids 2**53 + 2k and 2**53 + 2k + 2, whose mid-ranks
    are (k + 0.5)/n and (k + 1.5)/n: its distance to its twin is 0.5/n (the last one, beyond the largest training
    id, at the largest's rank: 0). Before: half of them at 0 (rounded onto a training id)."""
    from microplex.evaluation import dcr

    n = 40
    real, other = _ids(n, "int64", False)
    d = np.sort(dcr(other, real, max_rows=None))
    np.testing.assert_allclose(d, [0.0] + [0.5 / n] * (n - 1), rtol=0, atol=1e-12)
