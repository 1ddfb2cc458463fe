"""Numbers whose missing values are written ``.`` (session 68).

SAS and Stata exports write a missing number as ``.`` (SAS's special missing values as ``.A``-``.Z``). pandas reads
such a column as text, and microplex modelled an income as categories, each value one of its own, drawn as copies
of training values, without a word. ``read_table`` now reads those cells as missing values, and a frame built
otherwise is refused by the Synthesizer, ``fuse`` and ``evaluate``, naming the conversion.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from microplex import DataValidationError, Synthesizer
from microplex.cli import app
from microplex.evaluation import evaluate
from microplex.io import read_table


def _export(tmp_path, n: int = 400):
    """A SAS-style export of cps1-like earnings: incomes and hours with missing values written '.' and '.R'."""
    rng = np.random.default_rng(0)
    income = np.where(rng.random(n) < 0.25, 0.0, rng.lognormal(10, 1, n).round(2))
    hours = rng.integers(1, 60, n).astype(float)
    inc_cells = [("." if u < 0.1 else f"{v:.2f}") for u, v in zip(rng.random(n), income, strict=True)]
    hrs_cells = [(".R" if u < 0.05 else f"{v:g}") for u, v in zip(rng.random(n), hours, strict=True)]
    f = tmp_path / "export.csv"
    pd.DataFrame({"age": rng.integers(18, 80, n), "income": inc_cells, "hours": hrs_cells,
                  "county": rng.choice(["013", "001", "."], n)}).to_csv(f, index=False)
    return f, inc_cells, hrs_cells


def test_read_table_reads_dots_as_missing_numbers(tmp_path):
    f, inc, hrs = _export(tmp_path)
    df = read_table(f)
    assert df["income"].dtype == np.float64 and df["hours"].dtype == np.float64
    assert df["income"].isna().sum() == inc.count(".") > 10 and df["hours"].isna().sum() == hrs.count(".R") > 5
    given = [c != "." for c in inc]
    np.testing.assert_allclose(df["income"][given].to_numpy(), [float(c) for c in inc if c != "."])
    assert (df["income"] == 0).sum() > 50  # the zeros stay a point mass to find
    # codes with leading zeros stay codes; their dots are missing values
    assert set(df["county"].dropna()) == {"013", "001"} and df["county"].isna().any()


def test_blank_cells_of_a_numeric_column_are_missing(tmp_path):
    """A fixed-width or SPSS export's blank number (spaces): pandas reads the column as text."""
    f = tmp_path / "d.csv"
    f.write_text("x,y\n1,a\n   ,b\n2.5,c\n")
    assert pd.read_csv(f)["x"].tolist() == ["1", "   ", "2.5"]
    df = read_table(f)
    assert df["x"].dtype == np.float64 and df["x"][[0, 2]].tolist() == [1.0, 2.5] and np.isnan(df["x"][1])


def test_text_with_a_dot_category_is_left_as_text(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text("label,x\na,1\n.,2\nb,3\n")
    assert read_table(f)["label"].tolist() == ["a", ".", "b"]


def test_a_frame_with_dot_missing_numbers_is_refused_naming_the_conversion(tmp_path):
    """A frame read by pandas itself: refused where it would have been modelled or scored as categories."""
    f, _, _ = _export(tmp_path)
    raw = pd.read_csv(f, dtype={"county": str})
    assert raw["income"].dtype == object or pd.api.types.is_string_dtype(raw["income"])
    with pytest.raises(DataValidationError, match=r"Target column 'income' holds numbers written as text, its missing "
                                                  r"values written '\.' \(as SAS, Stata or fixed-width exports write them\).*"
                                                  r"pd\.to_numeric\(df\['income'\]\.replace"):
        Synthesizer(["income"], ["age"], epochs=1, verbose=False).fit(raw, seed=0)
    fixed = raw.assign(income=pd.to_numeric(raw["income"].replace(r"^\s*\.[A-Za-z_]?\s*$", None, regex=True)))
    pd.testing.assert_series_equal(fixed["income"], read_table(f)["income"])  # the conversion named = read_table's
    with pytest.raises(DataValidationError, match=r"Column 'hours' of real_df holds numbers written as text, its "
                                                  r"missing values written '\.R'"):
        evaluate(raw[["age", "hours"]], raw[["age", "hours"]], pmse=False, progress=False)


def test_the_command_line_fits_the_export_as_numbers(tmp_path):
    f, _, _ = _export(tmp_path)
    m = tmp_path / "m.mpx"
    r = CliRunner().invoke(app, ["fit", str(f), "--targets", "income,hours", "--conditions", "age", "-o", str(m),
                                 "--epochs", "2", "-q"])
    assert r.exit_code == 0, r.output
    synth = Synthesizer.load(m)
    assert synth.kinds_["income"] != "categorical" and 0.0 in synth.point_masses_["income"]
    assert synth.kinds_["hours"] != "categorical"
