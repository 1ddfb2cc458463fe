"""SAS transport and SPSS files (session 68).

Survey files come as SAS transport (``.xpt``: NHANES, the Survey of Consumer Finances) and SPSS (``.sav``) files.
``read_table`` refused them ("unknown extension"), and the reader users reach for, ``pandas.read_sas(format="xport")``,
reads some zeros of a transport file as 5.397605e-79, the smallest IBM float (pandas-dev/pandas#50670): a zero
income is then no zero, and a model drew tiny positive incomes instead of its zero point mass. Files are read by
pyreadstat now, and a column holding that value is refused by the Synthesizer and ``evaluate``, naming the fix.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pandas as pd
import pyreadstat
import pytest
from typer.testing import CliRunner

from microplex import DataValidationError, Synthesizer
from microplex.evaluation import evaluate
from microplex.cli import app
from microplex.io import read_table


def _frame(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    income = np.where(rng.random(n) < 0.3, 0.0, rng.lognormal(10, 1, n).round(2))
    return pd.DataFrame({"age": rng.integers(18, 80, n).astype(float), "income": income,
                         "region": rng.choice(["north", "south", ""], n, p=[0.45, 0.45, 0.1]),
                         "hours": np.where(rng.random(n) < 0.1, np.nan, rng.integers(1, 60, n).astype(float))})


@pytest.mark.parametrize("version", [5, 8])
def test_a_sas_transport_file_reads_its_zeros_as_zeros(tmp_path, version):
    df = _frame()
    f = tmp_path / "d.xpt"
    pyreadstat.write_xport(df, str(f), file_format_version=version)
    got = read_table(f)
    assert (got["income"] == 0).sum() == (df["income"] == 0).sum() > 100
    np.testing.assert_allclose(got["income"].to_numpy(), df["income"].to_numpy())
    assert got["age"].dtype == np.int64  # integers without missing values, as a CSV file's
    assert got["hours"].dtype == np.float64 and got["hours"].isna().sum() == df["hours"].isna().sum()
    assert got["region"].isna().sum() == (df["region"] == "").sum()  # a blank text value is SAS's missing text
    assert set(got["region"].dropna()) == {"north", "south"}
    if version == 5:  # what pandas' own reader gives for the same file
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            misread = pd.read_sas(f, format="xport", encoding="utf-8")
        assert (misread["income"] == 0).sum() == 0 and (misread["income"] == 16.0 ** -65).sum() > 100


def test_a_model_and_evaluate_refuse_zeros_misread_by_pandas(tmp_path):
    """The frame ``pandas.read_sas`` gives: refused, naming the value and the fix (before: a model fitted without
    a zero point mass, drawing incomes of 5e-79 and above)."""
    df = _frame()
    f = tmp_path / "d.xpt"
    pyreadstat.write_xport(df, str(f), file_format_version=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        misread = pd.read_sas(f, format="xport", encoding="utf-8")
    synth = Synthesizer(["income"], ["age"], epochs=1, verbose=False)
    with pytest.raises(DataValidationError, match=r"Target column 'income' holds \d+ values of 5\.397605e-79 \(the "
                                                  r"smallest IBM float\).*microplex\.io\.read_table.*\.mask\("):
        synth.fit(misread, seed=0)
    fixed = misread.assign(income=misread["income"].mask(misread["income"].abs() == 16.0 ** -65, 0.0))
    fitted = Synthesizer(["income"], ["age"], epochs=1, verbose=False).fit(fixed, seed=0)
    assert 0.0 in fitted.point_masses_["income"]
    with pytest.raises(DataValidationError, match=r"Column 'income' of real_df holds \d+ values of 5\.397605e-79"):
        evaluate(misread[["age", "income"]], fixed[["age", "income"]], pmse=False, progress=False)


def test_an_spss_file_reads_labels_missing_values_and_numbers(tmp_path):
    """Fully labelled columns are categories (their labels, in code order); a column labelled only at a special
    code is its numbers (as for Stata files); user-defined missing values are missing."""
    df = pd.DataFrame({"sex": [1.0, 2, 1, 2, 2], "income": [100.5, -9, 300, 0, 50], "educ": [3.0, 1, 2, 9, 1],
                       "name": ["a", "b", "", "d", "e"]})
    f = tmp_path / "d.sav"
    pyreadstat.write_sav(df, str(f), variable_value_labels={"sex": {1: "Male", 2: "Female"}, "income": {-9: "Refused"},
                                                             "educ": {1: "low", 2: "mid", 3: "high"}},
                         missing_ranges={"educ": [9]})
    got = read_table(f)
    assert isinstance(got["sex"].dtype, pd.CategoricalDtype) and list(got["sex"].cat.categories) == ["Male", "Female"]
    assert got["sex"].tolist() == ["Male", "Female", "Male", "Female", "Female"]
    assert got["income"].tolist() == [100.5, -9.0, 300.0, 0.0, 50.0]  # partly labelled: the codes
    assert list(got["educ"].cat.categories) == ["low", "mid", "high"] and pd.isna(got["educ"][3])
    assert pd.isna(got["name"][2])
    dup = tmp_path / "dup.sav"
    pyreadstat.write_sav(df[["sex"]], str(dup), variable_value_labels={"sex": {1: "Same", 2: "Same"}})
    with pytest.raises(DataValidationError, match=r"Cannot read .*dup\.sav.*column 'sex' has value labels that name "
                                                  r"two codes alike"):
        read_table(dup)


def test_damaged_files_and_a_missing_reader_are_named(tmp_path, monkeypatch):
    bad = tmp_path / "bad.xpt"
    bad.write_bytes(b"not a transport file")
    with pytest.raises(DataValidationError, match=r"Cannot read '.*bad\.xpt'"):
        read_table(bad)
    good = tmp_path / "d.sav"
    pyreadstat.write_sav(_frame(20), str(good))
    monkeypatch.setitem(sys.modules, "pyreadstat", None)  # not installed
    with pytest.raises(DataValidationError, match=r"Cannot read '.*d\.sav': ImportError: reading SAS transport "
                                                  r"\(\.xpt\) and SPSS \(\.sav\) files needs the optional package "
                                                  r"pyreadstat"):
        read_table(good)


def test_the_command_line_fits_a_transport_file(tmp_path):
    f = tmp_path / "d.xpt"
    pyreadstat.write_xport(_frame(), str(f), file_format_version=5)
    m, out = tmp_path / "m.mpx", tmp_path / "s.parquet"
    runner = CliRunner()
    r = runner.invoke(app, ["fit", str(f), "--targets", "income", "--conditions", "age,region", "-o", str(m),
                            "--epochs", "2", "-q"])
    assert r.exit_code == 0, r.output
    assert 0.0 in Synthesizer.load(m).point_masses_["income"]
    r = runner.invoke(app, ["generate", str(m), "--n", "2000", "-o", str(out), "-q"])
    assert r.exit_code == 0, r.output
    drawn = pd.read_parquet(out)["income"]
    assert (drawn == 0).mean() > 0.15 and not ((drawn > 0) & (drawn < 1e-6)).any()


def test_a_csv_file_in_latin1_names_its_encoding(tmp_path):
    """A Latin-1 export (an Austrian region 'Kärnten'): refused saying the file is not UTF-8 and how to read it."""
    f = tmp_path / "d.csv"
    f.write_bytes("region,income\nKärnten,100\nWien,200\n".encode("latin-1"))
    with pytest.raises(DataValidationError, match=r"Cannot read .*d\.csv.*the file is not UTF-8 text.*"
                                                  r"encoding='latin-1'"):
        read_table(f)
    pd.read_csv(f, encoding="latin-1").to_parquet(tmp_path / "d.parquet")  # the fix it names
    assert read_table(tmp_path / "d.parquet")["region"].tolist() == ["Kärnten", "Wien"]


def test_calibration_refuses_zeros_misread_by_pandas(tmp_path):
    """A count of the records without income (``income == 0``) would miss the misread zeros; a sum would not
    notice: refused once per column, naming it and the fix."""
    from microplex import Calibrator
    from microplex.calibration import Targets

    df = _frame(200)
    f = tmp_path / "d.xpt"
    pyreadstat.write_xport(df, str(f), file_format_version=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        misread = pd.read_sas(f, format="xport", encoding="utf-8").assign(w=1.0)
    for spec in ("targets:\n  - {value: 80, aggregate: count, filter: 'income == 0'}\n",
                 "targets:\n  - {value: 5.0e6, aggregate: sum, variable: income}\n"):
        with pytest.raises(DataValidationError, match=r"Column 'income' \(used by target .*\) holds \d+ values of "
                                                      r"5\.397605e-79"):
            Calibrator().fit(misread, Targets.from_yaml(spec), weight_col="w")
    good = read_table(f).assign(w=1.0)
    res = Calibrator().fit(good, Targets.from_yaml("targets:\n  - {value: 80, aggregate: count, filter: 'income == 0'}"
                                                   "\n  - {value: 200, aggregate: count}\n"), weight_col="w")
    assert res.summary["converged"]
