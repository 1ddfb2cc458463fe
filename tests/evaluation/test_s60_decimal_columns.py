"""Numbers stored as Python objects of another type (session 60).

A SQL NUMERIC column read by ``pandas.read_sql`` holds ``decimal.Decimal`` objects. ``Synthesizer.fit`` and
``Calibrator.fit`` refused such a column (naming the type); ``evaluate`` scored it as categories: the real
workinghours incomes against themselves (another half) got a TV complement of 0.52 and no KS, every income a
category of its own. It now refuses the column, naming the type and the fix.
"""

from __future__ import annotations

import decimal
import fractions

import pytest

from microplex import DataValidationError
from microplex.datasets import load_dataset
from microplex.evaluation import evaluate


@pytest.mark.parametrize("convert", [lambda v: decimal.Decimal(str(v / 10)), lambda v: fractions.Fraction(int(v), 10)])
def test_numbers_stored_as_objects_are_refused_with_the_fix(convert):
    """Both files from the same query (one of them alone is refused already: numeric against object)."""
    df = load_dataset("workinghours").iloc[:1000]
    odd = df.assign(income=[convert(v) for v in df["income"]])
    with pytest.raises(DataValidationError, match=r"Column 'income' of real_df holds numbers of type .*astype\(float\)"):
        evaluate(odd.iloc[:500], odd.iloc[500:], pmse=False, progress=False)
    # converted as the message says, the column is scored as numbers
    fixed = odd.assign(income=odd["income"].astype(float))
    report = evaluate(fixed.iloc[:500], fixed.iloc[500:], pmse=False, progress=False)
    assert 0 <= report.score("ks", "income") < 0.2


def test_text_and_mixed_categories_are_still_scored():
    df = load_dataset("workinghours").iloc[:1000]
    report = evaluate(df.iloc[:500], df.iloc[500:], pmse=False, progress=False)
    assert 0 < report.score("tv_complement", "occupation") <= 1


def test_parquet_decimal_columns_are_read_as_numbers(tmp_path):
    """A Parquet ``decimal`` column (a SQL NUMERIC exported by Spark or a database) is read by pandas as Decimal
    objects; on the command line there is no ``astype(float)`` to call: ``read_table`` reads them as float64, so
    ``microplex fit`` and ``microplex evaluate`` score and model them as the numbers they are (before: ``fit``
    refused "a value of type Decimal; categorical values must be str, bool, int or float", ``evaluate`` scored
    every income as a category)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from typer.testing import CliRunner

    from microplex.cli import app
    from microplex.io import read_table

    df = load_dataset("workinghours")
    table = pa.table({"income": pa.array([decimal.Decimal(int(v)) / 10 for v in df["income"]], pa.decimal128(9, 1)),
                      "age": df["age"], "occupation": df["occupation"]})
    paths = [tmp_path / f"{n}.parquet" for n in ("real", "synth")]
    pq.write_table(table.slice(0, 1500), paths[0])
    pq.write_table(table.slice(1500, 1500), paths[1])
    read = read_table(paths[0])
    assert read["income"].dtype == np.float64 and read["occupation"].dtype != np.float64
    np.testing.assert_array_equal(read["income"].to_numpy(), df["income"].iloc[:1500].to_numpy() / 10)
    result = CliRunner().invoke(app, ["evaluate", str(paths[0]), str(paths[1]), "--no-pmse",
                                      "--report", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    assert "worst KS of a target:" in result.output
    result = CliRunner().invoke(app, ["fit", str(paths[0]), "--targets", "income", "--conditions", "age",
                                      "--epochs", "1", "--out", str(tmp_path / "m.mpx")])
    assert result.exit_code == 0, result.output


def test_the_synthesizer_names_the_fix_for_decimal_objects():
    from microplex import Synthesizer

    df = load_dataset("workinghours").iloc[:500]
    odd = df.assign(income=[decimal.Decimal(int(v)) / 10 for v in df["income"]])
    with pytest.raises(DataValidationError, match=r"type Decimal .*convert them first \(\.astype\(float\)\)"):
        Synthesizer(["income"], ["age"], epochs=1, verbose=False).fit(odd, seed=0)
