"""Tables read as they are written (session 69).

Each case failed before its fix: a CSV whose data rows end with a delimiter (``30,100.5,``) was read one column to
the left (ages read as the incomes, incomes missing), and ``microplex calibrate`` weighted the records by the wrong
column without a word; a dataset folder microplex wrote came back with its partition codes ``"06"`` as the integers
6; ``"0,875"`` (a decimal comma) was read as 875; a column mixing text and numbers ended ``calibrate`` and
``sparsify`` in an internal error after the solve.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from microplex import DataValidationError, Synthesizer
from microplex.cli import app
from microplex.io import as_numbers, read_table

runner = CliRunner()


def test_rows_ending_with_a_delimiter_are_read_in_their_columns(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text("age,income\n30,100.5,\n40,200,\n50,300,\n60,0,\n")
    got = read_table(f)
    assert got.to_dict("list") == {"age": [30, 40, 50, 60], "income": [100.5, 200.0, 300.0, 0.0]}
    # the command line weighs the records aged 50 and over, not those whose income is
    (tmp_path / "t.csv").write_text("value,filter\n100,age >= 50\n")
    r = runner.invoke(app, ["calibrate", str(f), "--targets", str(tmp_path / "t.csv"), "-o", str(tmp_path / "w.parquet"),
                            "-q"])
    assert r.exit_code == 0, r.output
    w = pd.read_parquet(tmp_path / "w.parquet")
    assert w["age"].tolist() == [30, 40, 50, 60]
    np.testing.assert_allclose(w["weight"].to_numpy(), [1.0, 1.0, 50.0, 50.0], rtol=1e-7)


def test_r_row_names_are_still_dropped_and_rows_of_other_widths_refused(tmp_path):
    rn = tmp_path / "rn.csv"
    rn.write_text('"x","y"\n"1",3,4\n"2",5,6\n')  # R's write.table: a row name first, none in the header
    assert read_table(rn).to_dict("list") == {"x": [3, 5], "y": [4, 6]}
    bad = tmp_path / "bad.csv"
    bad.write_text("age,income\n30,1,200\n40,300\n")  # an unquoted thousands separator in the first row
    with pytest.raises(DataValidationError, match=r"header has 2 fields, its first data row 3 and row 3 2"):
        read_table(bad)


def test_a_dataset_folder_keeps_the_types_of_its_partition_codes(tmp_path):
    from microplex.scale import generate_dataset

    rng = np.random.default_rng(0)
    train = pd.DataFrame({"state": rng.choice(["06", "09", "12"], 400), "age": rng.integers(18, 80, 400),
                          "income": rng.gamma(2.0, 10_000.0, 400).round(2)})
    synth = Synthesizer(["income"], ["state", "age"], epochs=1, verbose=False).fit(train)
    generate_dataset(synth, n=600, path=str(tmp_path / "pop"), partition_by=["state"], rows_per_file=1000,
                     progress=False)
    got = read_table(tmp_path / "pop")
    assert sorted(got["state"].unique().tolist()) == ["06", "09", "12"]


def test_a_comma_that_separates_no_thousands_is_no_number(tmp_path):
    f = tmp_path / "w.csv"
    f.write_text('id,w\n1,"0,875"\n2,"1,250"\n3,"2,125"\n')
    assert read_table(f)["w"].tolist() == ["0,875", "1,250", "2,125"]  # decimal commas: left as written
    g = tmp_path / "g.csv"
    g.write_text('id,w\n1,"1,250"\n2,"12,000.5"\n')
    assert read_table(g)["w"].tolist() == [1250.0, 12000.5]  # thousands separators: numbers
    with pytest.raises(DataValidationError, match=r"no number \(first: '0,875'\)"):
        as_numbers(pd.DataFrame({"w": ["0,875", "1,250"]}), ["w"], "a table")


@pytest.mark.parametrize("verb", ["calibrate", "sparsify"])
def test_a_column_mixing_text_and_numbers_is_refused_before_the_solve(verb, tmp_path):
    (tmp_path / "d.json").write_text('[{"sex":"f","code":"A","x":1},{"sex":"m","code":5,"x":2},'
                                     '{"sex":"f","code":"B","x":3}]')
    (tmp_path / "t.csv").write_text("sex,value\nf,10\nm,5\n")
    r = runner.invoke(app, [verb, str(tmp_path / "d.json"), "--targets", str(tmp_path / "t.csv"), "-o",
                            str(tmp_path / "o.parquet"), "-q"])
    assert r.exit_code == 1, r.output
    assert "Column 'code'" in r.output and "mixes value types ['number', 'str']" in r.output
    assert not (tmp_path / "o.parquet").exists()


def test_a_quoted_set_value_is_text():
    """``--set output=2024`` read the folder name as the number 2024, which the pipeline refuses; quoted, it is text."""
    from microplex._cli_checks import parse_overrides

    assert parse_overrides(["output='2024'", 'evaluate.report="1e3.html"', "generate.n=1000"]) == {
        "output": "2024", "evaluate.report": "1e3.html", "generate.n": 1000}
