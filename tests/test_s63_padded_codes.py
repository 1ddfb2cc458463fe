"""Codes written with leading zeros in a CSV data file (session 63).

pandas reads a CSV column ``013, 001, 105`` (county FIPS codes, tract codes ``000100``) as the numbers 13, 1, 105:
every command read data files that way, so ``microplex fit`` + ``generate`` released county 13 where the survey
wrote ``013`` (no geography file matches it), modelled the codes as a number, and codes that differ only by their
zeros (``01``, ``001``) became one. Targets files already kept such codes as text (session 61); data files now do
too (``microplex._files.keep_padded_codes``), and a target asking for the number 13 still finds ``"013"``.
"""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from microplex import Calibrator, DataValidationError
from microplex.calibration import Targets
from microplex.cli import app
from microplex.io import read_table


def _write(path, rows: list[str]) -> None:
    path.write_text("\n".join(rows) + "\n")


def test_a_column_written_with_leading_zeros_is_read_as_its_codes(tmp_path):
    f = tmp_path / "d.csv"
    _write(f, ["county,tract,age,share,delta", "013,000100,34,0.5,-07", "001,000205,40,0,3", "105,,51,0.25,12",
               "13,010300,62,1,-1"])
    df = read_table(f)
    assert df["county"].tolist() == ["013", "001", "105", "13"]  # before: 13, 1, 105, 13
    assert df["tract"].tolist()[:2] == ["000100", "000205"] and pd.isna(df["tract"][2])  # missing stays missing
    assert df["delta"].tolist() == ["-07", "3", "12", "-1"]
    # numbers without leading zeros (0, 0.5, 0.25) are read as numbers
    assert df["age"].dtype == np.int64 and df["share"].dtype == np.float64
    assert df["share"].tolist() == [0.5, 0.0, 0.25, 1.0]


def test_codes_that_differ_only_by_their_zeros_stay_distinct(tmp_path):
    f = tmp_path / "d.csv"
    _write(f, ["code,n", "01,1", "001,2", "1,3"])
    assert read_table(f)["code"].tolist() == ["01", "001", "1"]  # before: 1, 1, 1


def test_compressed_files_and_late_padded_cells(tmp_path, monkeypatch):
    """The numeric columns are scanned in chunks: a padded cell in the last chunk still makes the column text."""
    import microplex._files as files

    monkeypatch.setattr(files, "_SCAN_CELLS", 6)  # three columns: chunks of two rows
    rows = ["code,x,amount"] + [f"{i + 10},{i},{i:04d}" for i in range(9)] + ["007,9,12.0"]
    f = tmp_path / "d.csv.gz"
    with gzip.open(f, "wt") as fh:
        fh.write("\n".join(rows) + "\n")
    df = read_table(f)
    assert df["code"].tolist() == [str(i + 10) for i in range(9)] + ["007"]
    assert df["x"].tolist() == list(range(10))
    # padded early, a decimal point in the last chunk: numbers
    assert df["amount"].tolist() == [float(i) for i in range(9)] + [12.0]


def test_the_callers_dtype_is_the_callers(tmp_path):
    from microplex._files import keep_padded_codes

    f = tmp_path / "d.csv"
    _write(f, ["county,n", "013,5", "001,6"])
    frame = pd.read_csv(f, dtype={"county": "int64"})
    assert keep_padded_codes(f, frame, read_kwargs={"dtype": {"county": "int64"}})["county"].tolist() == [13, 1]
    assert keep_padded_codes(f, pd.read_csv(f))["county"].tolist() == ["013", "001"]


def _county_file(tmp_path) -> tuple[pd.DataFrame, object]:
    rng = np.random.default_rng(0)
    codes = rng.choice(["001", "013", "105"], 600)
    f = tmp_path / "d.csv"
    pd.DataFrame({"county": codes, "age": rng.integers(18, 80, 600),
                  "income": rng.lognormal(10, 1, 600).round(2)}).to_csv(f, index=False)
    return read_table(f), f


@pytest.mark.parametrize("values", ["{13: 150, 1: 120, 105: 130}", '{"013": 150, "001": 120, "105": 130}'],
                         ids=["numbers", "codes"])
def test_targets_find_the_codes_as_numbers_or_as_written(tmp_path, values):
    df, _ = _county_file(tmp_path)
    targets = Targets.from_yaml("margins:\n  - by: county\n    values: " + values + "\n")
    w = np.asarray(Calibrator().fit(df.assign(w=1.0), targets, weight_col="w").weights)
    got = pd.Series(w).groupby(df["county"].to_numpy()).sum().to_dict()
    assert got == pytest.approx({"001": 120.0, "013": 150.0, "105": 130.0}, rel=1e-9)


def test_a_number_matching_two_codes_is_no_match():
    """13 asked of a column holding "013" and "0013": which one is meant is not known."""
    df = pd.DataFrame({"county": ["013", "0013", "105"] * 20, "w": 1.0})
    targets = Targets.from_yaml("margins:\n  - by: county\n    values: {13: 30, 105: 20}\n")
    with pytest.raises(DataValidationError, match="county"):
        Calibrator().fit(df, targets, weight_col="w")


def test_fit_and_generate_release_the_codes_as_written(tmp_path):
    _, f = _county_file(tmp_path)
    runner = CliRunner()
    model, out = tmp_path / "m.mpx", tmp_path / "s.parquet"
    r = runner.invoke(app, ["fit", str(f), "--targets", "income", "--conditions", "county,age", "-o", str(model),
                            "--epochs", "1", "-q"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["generate", str(model), "--n", "200", "-o", str(out), "-q"])
    assert r.exit_code == 0, r.output
    released = pd.read_parquet(out)["county"]
    assert set(released) <= {"001", "013", "105"} and len(set(released)) == 3  # before: 1, 13, 105


# -- percentages (``"12.5%"``, a spreadsheet's export) ------------------------------------------------------------


def test_read_table_reads_percentages_as_their_fractions(tmp_path):
    """Before: a text column, so ``fit`` modelled a rate as one category per value and released copies of
    training values ("32.8%")."""
    f = tmp_path / "d.csv"
    _write(f, ["rate,mixed,note", "12.5%,5%,5%", "7.2%,5,n/a%", "-3 %,1%,1%", ",2%,2%", "\"1,250%\",3%,3%"])
    df = read_table(f)
    assert df["rate"].tolist()[:3] == [0.125, 0.072, -0.03] and pd.isna(df["rate"][3]) and df["rate"][4] == 12.5
    # 5 beside 5% (5 or 0.05?) and a word before a percent sign stay text
    assert df["mixed"].tolist() == ["5%", "5", "1%", "2%", "3%"] and df["note"].tolist()[1] == "n/a%"


def test_fitting_percentages_as_text_is_refused_with_a_fix_that_works(cps1):
    from microplex import Synthesizer
    from microplex.evaluation import evaluate

    df = cps1.head(300)[["age", "educ"]].assign(rate=[f"{v % 40:.1f}%" for v in range(300)])
    with pytest.raises(DataValidationError, match=r"Target column 'rate' holds numbers written as text \('0.0%': "
                                                  r"thousands separators, a currency or a percent sign\).*/ 100"):
        Synthesizer(target_vars=["rate"], condition_vars=["age"], epochs=1).fit(df, seed=0)
    with pytest.raises(DataValidationError, match=r"Column 'rate' of real_df .* percent sign"):
        evaluate(df, df, pmse=False, progress=False)
    fixed = pd.to_numeric(df["rate"].str.replace(r"[\s%,]", "", regex=True)) / 100  # the conversion the error names
    assert fixed.tolist()[:3] == pytest.approx([0.0, 0.01, 0.02], abs=1e-15)


# -- JSON strings and nested cells ----------------------------------------------------------------------------------


@pytest.mark.parametrize("orient", ["records", "columns"])
def test_json_strings_with_leading_zeros_stay_text(tmp_path, orient):
    """Before: pandas converted the JSON strings "013", "001" to the numbers 13, 1."""
    f = tmp_path / "d.json"
    pd.DataFrame({"county": ["013", "001", None], "code": ["12", "7", "3"], "x": [1.5, 2.5, 3.0]}).to_json(f, orient=orient)
    df = read_table(f)
    assert df["county"].tolist()[:2] == ["013", "001"] and pd.isna(df["county"][2])
    assert df["code"].tolist() == [12, 7, 3] and df["x"].tolist() == [1.5, 2.5, 3.0]  # as pandas reads them


def test_a_table_with_nested_cells_is_read_and_refused_where_used(tmp_path):
    """Before: read_table crashed on a Parquet list or struct column ("internal error (TypeError: unhashable type:
    'numpy.ndarray')") even when the command did not use it."""
    rng = np.random.default_rng(0)
    f = tmp_path / "d.parquet"
    pd.DataFrame({"tags": [[1, 2]] * 200, "b": rng.normal(size=200), "c": rng.integers(0, 3, 200),
                  "s": [{"x": 1}] * 200}).to_parquet(f)
    runner = CliRunner()
    r = runner.invoke(app, ["fit", str(f), "--targets", "b", "--conditions", "c", "-o", str(tmp_path / "m.mpx"),
                            "--epochs", "1", "-q"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["fit", str(f), "--targets", "tags", "-o", str(tmp_path / "m.mpx"), "--epochs", "1", "-q"])
    assert r.exit_code == 1 and "Target column 'tags' holds a value of type ndarray" in r.output


# -- amounts padded to a fixed width ---------------------------------------------------------------------------------


def test_padded_decimals_are_numbers(tmp_path):
    """Codes are integers: a cell with a decimal point or an exponent makes the column numbers, zeros or not."""
    f = tmp_path / "d.csv"
    _write(f, ["amount,rate,county", "0012.50,1e-2,013", "0300,5,001", "7,0.5,105"])
    df = read_table(f)
    assert df["amount"].tolist() == [12.5, 300.0, 7.0] and df["rate"].tolist() == [0.01, 5.0, 0.5]
    assert df["county"].tolist() == ["013", "001", "105"]


def test_integer_amounts_padded_to_a_fixed_width_are_refused_as_a_target(tmp_path):
    """A fixed-width export's income (``0009189``) reads as codes; modelled as categories, each value held by one
    record, every drawn income would be a copy of a training value: refused naming the conversion."""
    rng = np.random.default_rng(0)
    income = rng.lognormal(9, 1, 400).round().astype(int)
    f = tmp_path / "d.csv"
    pd.DataFrame({"age": rng.integers(18, 80, 400), "income": [f"{v:07d}" for v in income],
                  "county": rng.choice(["001", "013", "105"], 400)}).to_csv(f, index=False)
    runner = CliRunner()
    r = runner.invoke(app, ["fit", str(f), "--targets", "income", "--conditions", "age", "-o", str(tmp_path / "m.mpx"),
                            "--epochs", "1", "-q"])
    assert r.exit_code == 1 and "Target column 'income' holds integers written with leading zeros" in r.output
    assert "pd.to_numeric(df['income'])" in r.output
    # codes as a target (repeated values) are modelled as categories; the converted income fits
    r = runner.invoke(app, ["fit", str(f), "--targets", "county", "--conditions", "age", "-o", str(tmp_path / "m.mpx"),
                            "--epochs", "1", "-q"])
    assert r.exit_code == 0, r.output
    from microplex import Synthesizer

    df = read_table(f)
    Synthesizer(target_vars=["income"], condition_vars=["age"], epochs=1).fit(
        df.assign(income=pd.to_numeric(df["income"])), seed=0)


def test_a_model_fitted_on_numeric_codes_names_the_padded_conditions(tmp_path):
    """A model fitted before codes were read as text, given a conditions file writing ``013``: the refusal says
    why the column is text."""
    from microplex import Synthesizer

    df, f = _county_file(tmp_path)
    synth = Synthesizer(target_vars=["income"], condition_vars=["county", "age"], epochs=1).fit(
        df.assign(county=pd.to_numeric(df["county"])), seed=0)
    with pytest.raises(DataValidationError, match=r"Condition column 'county' must be numeric, as in training\. Got "
                                                  r"dtype .* Its values are integers written with leading zeros \('0"):
        synth.generate(read_table(f)[["county", "age"]], seed=0)


def test_json_padded_decimals_are_numbers(tmp_path):
    """As in a CSV file, codes are integers: the JSON strings "0012.50" are the number 12.5, as pandas reads them."""
    f = tmp_path / "d.json"
    pd.DataFrame({"amount": ["0012.50", "0300", "7"], "county": ["013", "001", "105"]}).to_json(f, orient="records")
    df = read_table(f)
    assert df["amount"].tolist() == [12.5, 300.0, 7.0] and df["county"].tolist() == ["013", "001", "105"]


# -- headers written with spaces after the commas ------------------------------------------------------------------


def test_columns_named_with_spaces_are_named_in_the_refusal(tmp_path):
    """A header written ``county, age, weight`` reads as ``' age'``: the refusal names the file's spelling
    (before: "The columns ['age'] are not in ...", nothing more), and ``calibrate --weight weight`` refuses instead
    of starting every record from a weight of 1 with a warning."""
    f = tmp_path / "d.csv"
    _write(f, ["county, age, weight", "013, 30, 2", "001, 40, 3", "105, 50, 1"])
    runner = CliRunner()
    r = runner.invoke(app, ["fit", str(f), "--targets", "county", "--conditions", "age", "-o", str(tmp_path / "m.mpx")])
    assert r.exit_code == 1 and "(the file writes 'age' as ' age': spaces or case)" in r.output
    r = runner.invoke(app, ["fit", str(f), "--targets", "county", "--conditions", "wage", "-o", str(tmp_path / "m.mpx")])
    assert r.exit_code == 1 and "the file's columns: ['county', ' age', ' weight']" in r.output
    t = tmp_path / "t.yaml"
    t.write_text("margins:\n  - by: county\n    values: {13: 150, 1: 120, 105: 130}\n")
    out = tmp_path / "c.parquet"
    r = runner.invoke(app, ["calibrate", str(f), "--targets", str(t), "-o", str(out)])
    assert r.exit_code == 1 and "The weight column 'weight' is not in" in r.output and "' weight'" in r.output
    assert not out.exists()
    r = runner.invoke(app, ["calibrate", str(f), "--targets", str(t), "--weight", " weight", "-o", str(out), "-q"])
    assert r.exit_code == 0, r.output


def test_a_pipeline_source_with_spaced_header_names_the_spelling(tmp_path, cps1):
    from microplex.pipeline import run_pipeline

    cps1.head(200)[["age", "marr", "re78"]].to_csv(tmp_path / "train.csv", index=False, header=["age", " marr", " re78"])
    config = {"_base": str(tmp_path), "output": "out", "seed": 0, "sources": [{"name": "cps", "path": "train.csv"}],
              "model": {"targets": ["re78"], "conditions": ["age", "marr"], "epochs": 1}, "generate": {"n": 50}}
    with pytest.raises(DataValidationError, match=r"model columns \['re78', 'marr'\] are not columns of source 'cps' "
                                                  r".*\(the file writes 're78' as ' re78', 'marr' as ' marr'"):
        run_pipeline(config, progress=False)


def test_lookup_finds_the_one_padded_code_of_a_number():
    from microplex.calibration.design import lookup_values

    codes = pd.Index(["013", "105", "001", "-07", "000000000000000000000000000042"], dtype=object)
    got = lookup_values(codes, [13, 1, 105, 2, "013", 13.0, True, -7, 7, 42])
    assert got.tolist() == [0, 2, 1, -1, 0, 0, -1, 3, -1, 4]
    assert lookup_values(pd.Index(["013", "0013"]), [13]).tolist() == [-1]  # two candidates: no match
    assert lookup_values(pd.Index(["13", "013"]), [13]).tolist() == [0]  # the unpadded text first
