"""Files read as they are written (session 75).

Each case failed before its fix: a CSV with R's ``write.table`` row names whose columns were all read again as text
was read again one column to the left (zip codes lost their zeros, incomes became text, "None" labels were lost);
a ``None`` missing cell in a code column made microplex take the column for amounts (the ``e`` of ``None`` read
as an exponent), so the codes lost their zeros; ``calibrate`` and ``sparsify`` of a table with a list or struct
column (Parquet, nested JSON) ended in an internal error (unhashable cells); ``generate --stream`` with
Parquet conditions carrying such a column refused its own part as "changed or damaged" (Parquet leaf names); an
Excel header cell typed as a number (2019) named a column no command could name; Excel text cells ``'013'`` were
read as 13; accounting negatives in parentheses (``"($1,243.56)"``) left an amount column text (categories).
"""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from microplex import DataValidationError
from microplex.cli import app
from microplex.io import read_table

runner = CliRunner()


def test_r_row_names_with_every_column_read_again_keep_each_column_its_cells(tmp_path):
    # R: write.table(data.frame(zip=c("01234","12345","00501"), inc=5:7), "a.csv", sep=",")
    a = tmp_path / "a.csv"
    a.write_text('"zip","inc"\n"1","01234",5\n"2","12345",6\n"3","00501",7\n')
    got = read_table(a)
    assert got.columns.tolist() == ["zip", "inc"]
    assert got["zip"].tolist() == ["01234", "12345", "00501"]
    assert got["inc"].tolist() == [5, 6, 7] and pd.api.types.is_integer_dtype(got["inc"])
    # every column a text column with a "None" label
    b = tmp_path / "b.csv"
    b.write_text("educ,sex\n1,None,m\n2,HS,None\n3,BA,f\n")
    assert read_table(b).to_dict("list") == {"educ": ["None", "HS", "BA"], "sex": ["m", "None", "f"]}
    # the columns named as text (generate's conditions) likewise
    got = read_table(a, text=["zip", "inc"])
    assert got.to_dict("list") == {"zip": ["01234", "12345", "00501"], "inc": ["5", "6", "7"]}
    # and as before when some column needs no second reading
    c = tmp_path / "c.csv"
    c.write_text('"zip","inc","name"\n"1","01234",5,"x"\n"2","12345",6,"y"\n"3","00501",7,"z"\n')
    assert read_table(c).to_dict("list") == {"zip": ["01234", "12345", "00501"], "inc": [5, 6, 7],
                                             "name": ["x", "y", "z"]}


def test_a_none_missing_cell_keeps_the_zeros_of_a_code_column(tmp_path):
    body = "zip,inc,amount\n01234,5,0012.5\n12345,6,None\nNone,7,7\n"
    for name, write in (("a.csv", lambda f: f.write_text(body)),
                        ("a.csv.gz", lambda f: f.write_bytes(gzip.compress(body.encode())))):
        f = tmp_path / name
        write(f)
        got = read_table(f)
        assert got["zip"].iloc[:2].tolist() == ["01234", "12345"] and pd.isna(got["zip"].iloc[2]), name
        assert got["inc"].tolist() == [5, 6, 7]
        # a column with a decimal point stays numbers, its None cell missing
        np.testing.assert_array_equal(got["amount"].to_numpy(dtype=float), [12.5, np.nan, 7.0])
    # the other missing tokens pandas reads (NA, NaN, null, empty) alike; a cell with an exponent stays numbers
    for token in ("NA", "NaN", "null", "", "-1.#IND", "1.#QNAN"):
        f = tmp_path / "t.csv"
        f.write_text(f"zip,n\n01234,1e2\n12345,3\n{token},4\n")
        got = read_table(f)
        assert got["zip"].iloc[:2].tolist() == ["01234", "12345"] and pd.isna(got["zip"].iloc[2]), token
        assert got["n"].tolist() == [100.0, 3.0, 4.0], token


def _nested(tmp_path):
    n = 40
    df = pd.DataFrame({"a": np.arange(n) % 2, "tags": [[1, 2 + i % 3] for i in range(n)],
                       "place": [{"q": i, "r": "x"} for i in range(n)], "weight": np.ones(n)})
    df.to_parquet(tmp_path / "in.parquet")
    df.drop(columns="tags").to_json(tmp_path / "in.json", orient="records")
    (tmp_path / "t.csv").write_text("value,a\n40,1\n")


def test_list_and_struct_columns_are_written_back_by_calibrate(tmp_path):
    _nested(tmp_path)
    for name in ("in.parquet", "in.json"):  # a Parquet list and struct column; nested JSON objects
        r = runner.invoke(app, ["calibrate", str(tmp_path / name), "--targets", str(tmp_path / "t.csv"), "-o",
                                str(tmp_path / "o.parquet"), "-q"])
        assert r.exit_code == 0, r.output
        out = pd.read_parquet(tmp_path / "o.parquet")
        assert len(out) == 40
        for i, rec in out.iterrows():
            assert rec["a"] == i % 2 and rec["place"] == {"q": i, "r": "x"}
            if name == "in.parquet":
                assert rec["tags"].tolist() == [1, 2 + i % 3]
        np.testing.assert_allclose(out.groupby("a")["weight"].sum().to_numpy(), [20.0, 40.0], rtol=1e-6)


@pytest.mark.parametrize("verb", ["calibrate", "sparsify"])
def test_a_column_mixing_lists_and_text_is_refused_naming_it(verb, tmp_path):
    (tmp_path / "d.json").write_text('[{"a":1,"tags":[1,2]},{"a":0,"tags":"none"},{"a":1,"tags":[3]}]')
    (tmp_path / "t.csv").write_text("value,a\n10,1\n")
    r = runner.invoke(app, [verb, str(tmp_path / "d.json"), "--targets", str(tmp_path / "t.csv"), "-o",
                            str(tmp_path / "o.parquet"), "-q"])
    assert r.exit_code == 1, r.output
    assert "Column 'tags'" in r.output and "internal error" not in r.output
    assert not (tmp_path / "o.parquet").exists()


def test_streamed_generate_keeps_list_and_struct_condition_columns(tmp_path):
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"age": rng.integers(18, 80, 300), "inc": rng.lognormal(10, 1, 300).round(2)})
    train.to_csv(tmp_path / "train.csv", index=False)
    r = runner.invoke(app, ["fit", str(tmp_path / "train.csv"), "--targets", "inc", "--conditions", "age", "-o",
                            str(tmp_path / "m.mpx"), "--epochs", "2", "-q"])
    assert r.exit_code == 0, r.output
    n = 30
    for name, extra in (("list", [[1, i] for i in range(n)]), ("struct", [{"q": i} for i in range(n)])):
        pd.DataFrame({"age": train["age"][:n], "extra": extra}).to_parquet(tmp_path / f"c_{name}.parquet")
        out = tmp_path / f"s_{name}"
        r = runner.invoke(app, ["generate", str(tmp_path / "m.mpx"), "--conditions", str(tmp_path / f"c_{name}.parquet"),
                                "--stream", "-o", str(out), "-q"])
        assert r.exit_code == 0, r.output
        got = pd.read_parquet(out)
        assert got.columns.tolist() == ["age", "extra", "inc"] and len(got) == n
        assert got["age"].tolist() == train["age"][:n].tolist()
        if name == "list":
            assert [v.tolist() for v in got["extra"]] == extra
        else:
            assert got["extra"].tolist() == extra


def test_an_excel_header_cell_typed_as_a_number_names_its_column_by_its_text(tmp_path):
    import openpyxl

    rng = np.random.default_rng(0)
    n = 300
    df = pd.DataFrame({"age": rng.integers(18, 80, n), 2019: rng.lognormal(10, 1, n).round(0),
                       "g": rng.integers(0, 2, n)})
    df.to_excel(tmp_path / "x.xlsx", index=False)  # the header cell 2019 a number, as typed in Excel
    got = read_table(tmp_path / "x.xlsx")
    assert got.columns.tolist() == ["age", "2019", "g"]
    np.testing.assert_array_equal(got["2019"].to_numpy(), df[2019].to_numpy())
    assert read_table(tmp_path / "x.xlsx", text=["2019"])["2019"].iloc[0] == str(int(df[2019].iloc[0]))
    r = runner.invoke(app, ["fit", str(tmp_path / "x.xlsx"), "--targets", "2019", "--conditions", "age", "-o",
                            str(tmp_path / "m.mpx"), "--epochs", "2", "-q"])
    assert r.exit_code == 0, r.output
    (tmp_path / "t.csv").write_text("value,g\n200,1\n")
    r = runner.invoke(app, ["calibrate", str(tmp_path / "x.xlsx"), "--targets", str(tmp_path / "t.csv"), "-o",
                            str(tmp_path / "c.parquet"), "-q"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["evaluate", str(tmp_path / "x.xlsx"), str(tmp_path / "c.parquet"), "--no-pmse",
                            "--synthetic-weight", "weight", "--report", str(tmp_path / "r.html")])
    assert r.exit_code == 0, r.output
    # other header cells that are no text: a date, a decimal number, a boolean; a number beside its text refused
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["age", pd.Timestamp("2021-01-01").to_pydatetime(), 2019.5, True])
    ws.append([1, 2, 3, 4])
    wb.save(tmp_path / "y.xlsx")
    assert read_table(tmp_path / "y.xlsx").columns.tolist() == ["age", "2021-01-01", "2019.5", "True"]
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["age", 2019, "2019"])
    ws.append([1, 2, 3])
    wb.save(tmp_path / "z.xlsx")
    with pytest.raises(DataValidationError, match=r"duplicated column names \['2019'\]"):
        read_table(tmp_path / "z.xlsx")


def test_excel_text_cells_of_codes_with_leading_zeros_stay_text(tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["county", "n", "mixed", "inc"])
    for county, n, mixed, inc in (("013", "12", "013", 1.5), ("105", "7", 105, 2.5), ("001", None, "001", 3.5),
                                  (None, "3", "002", 4.5)):
        ws.append([county, n, mixed, inc])
    wb.save(tmp_path / "c.xlsx")
    assert [c.data_type for c in openpyxl.load_workbook(tmp_path / "c.xlsx").active["A"][1:4]] == ["s"] * 3
    got = read_table(tmp_path / "c.xlsx")
    assert got["county"].iloc[:3].tolist() == ["013", "105", "001"] and pd.isna(got["county"].iloc[3])
    # text cells of plain numbers are numbers, as in a JSON file; a column with a number cell is numbers
    assert got["n"].iloc[[0, 1, 3]].tolist() == [12, 7, 3] and pd.isna(got["n"].iloc[2])
    assert got["mixed"].tolist() == [13, 105, 1, 2]
    assert got["inc"].tolist() == [1.5, 2.5, 3.5, 4.5]


def test_accounting_negatives_in_parentheses_are_read_as_numbers(tmp_path):
    from microplex._files import formatted_numbers, text_numbers_fix

    f = tmp_path / "a.csv"
    f.write_text('id,inc,code\n1,"($1,243.56)",(1)\n2,$500.00,(2)\n3,(200.00),(3)\n4,"$1,000",(1)\n5,,(2)\n')
    got = read_table(f)
    np.testing.assert_array_equal(got["inc"].to_numpy(dtype=float), [-1243.56, 500.0, -200.0, 1000.0, np.nan])
    assert got["code"].tolist() == ["(1)", "(2)", "(3)", "(1)", "(2)"]  # no separator, no currency: labels
    # named as numbers, the parentheses are a negative too
    np.testing.assert_array_equal(read_table(f, numeric=["inc"])["inc"].to_numpy(dtype=float),
                                  [-1243.56, 500.0, -200.0, 1000.0, np.nan])
    # a sign inside the parentheses, or a parenthesis alone, is no number so written
    for bad in (["($-5)", "$1"], ["(-$5)", "$1"], ["($5", "$1"], ["$5)", "$1"], ["-($5)", "$1"]):
        assert formatted_numbers(bad) is None, bad
    assert formatted_numbers(["$500", "($1,243.56)"]) == "($1,243.56)"
    # the conversion the refusals of in-memory frames advise reads them
    s = pd.Series(["$500", "($1,243.56)", "(200)"])
    fix = text_numbers_fix("inc", formatted_numbers(s))
    assert eval(fix, {"pd": pd, "df": pd.DataFrame({"inc": s})}).tolist() == [500.0, -1243.56, -200.0]
