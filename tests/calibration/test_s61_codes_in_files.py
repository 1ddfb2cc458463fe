"""Category codes and labels as files write them: leading zeros, YAML 1.1's plain values, "None" (session 61).

PyYAML reads YAML 1.1, where a plain ``017`` is the octal number 15 and ``011`` is 9: a margin over county FIPS
codes (``{011: ..., 013: ..., 017: ...}``) calibrated counties 9, 11 and 15 to the totals of counties 11, 13 and
17 without a word whenever those counties exist (``019``, not octal, stayed text). ``1:20`` was the base-60 number
80 and ``yes``/``no``/``on``/``off``/``NO`` were booleans. A CSV targets file read ``013`` as 13, which found no
record of a text column holding ``"013"``. Now a code keeps its leading zeros as text, which matches the number
in a numeric column and the text in a text column. pandas reads a CSV cell ``None`` as missing: a targets margin's
"None" row became a target over every record, and a data file's "None" category missing values.
"""

from __future__ import annotations

import bz2
import gzip
import lzma

import numpy as np
import pandas as pd
import pytest

from microplex import Calibrator, DataValidationError
from microplex._files import load_yaml
from microplex.calibration import Targets

COUNTIES = [9, 11, 13, 15, 17]
TOTALS = {"009": 50.0, "011": 100.0, "013": 150.0, "015": 200.0, "017": 250.0}


def _records(text: bool) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    county = rng.choice(COUNTIES, 500)
    df = pd.DataFrame({"county": county, "w": rng.uniform(0.5, 2.0, 500)})
    if text:
        df["county"] = [f"{c:03d}" for c in county]
    return df


def _calibrated_totals(df: pd.DataFrame, targets: Targets) -> dict[int, float]:
    weights = np.asarray(Calibrator().fit(df, targets, weight_col="w").weights)
    sums = pd.Series(weights).groupby(pd.to_numeric(df["county"]).to_numpy()).sum()
    return {int(k): float(v) for k, v in sums.items()}


def _expected() -> dict[int, float]:
    return {int(k): v for k, v in TOTALS.items()}


@pytest.mark.parametrize("text", [False, True], ids=["int-column", "text-column"])
def test_yaml_margin_over_zero_padded_codes_reaches_the_named_counties(text):
    """Before: 011 -> 9, 013 -> 11, 015 -> 13, 017 -> 15 (octal), 009 -> '009': a duplicated county-9 target
    (int column) or "no record has county == 9" (text column)."""
    doc = "margins:\n  - by: county\n    values: {" + ", ".join(f"{k}: {v}" for k, v in TOTALS.items()) + "}\n"
    targets = Targets.from_yaml(doc)
    assert [t.filters["county"] for t in targets] == list(TOTALS)
    totals = _calibrated_totals(_records(text), targets)
    assert totals == pytest.approx(_expected(), rel=1e-8)


def test_yaml_margin_of_one_octal_looking_code_is_not_another_county():
    """The silent case: a single ``017: 250`` calibrated county 15 (which exists) to county 17's total."""
    df = _records(text=False)
    targets = Targets.from_yaml("margins:\n  - by: county\n    values: {017: 250}\n")
    weights = np.asarray(Calibrator().fit(df, targets, weight_col="w").weights)
    assert weights[df["county"].to_numpy() == 17].sum() == pytest.approx(250.0, rel=1e-8)
    assert np.allclose(weights[df["county"].to_numpy() == 15], df["w"].to_numpy()[df["county"].to_numpy() == 15])


@pytest.mark.parametrize("text", [False, True], ids=["int-column", "text-column"])
def test_csv_equality_column_with_zero_padded_codes(tmp_path, text):
    """Before: the CSV's 009..017 were read as 9..17, and a text column holding '009' raised "no record has
    county == 9"."""
    path = tmp_path / "t.csv"
    path.write_text("county,value\n" + "".join(f"{k},{v}\n" for k, v in TOTALS.items()))
    targets = Targets.from_csv(path)
    assert [t.filters["county"] for t in targets] == list(TOTALS)
    assert _calibrated_totals(_records(text), targets) == pytest.approx(_expected(), rel=1e-8)


def test_csv_columns_without_leading_zeros_are_read_as_before(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("county,flag,value\n9,True,50\n11,,100\n13,False,150\n")
    targets = Targets.from_csv(path)
    assert [t.filters for t in targets] == [{"county": 9, "flag": True}, {"county": 11}, {"county": 13, "flag": False}]
    # the caller's dtype is the caller's
    path.write_text("county,value\n009,50\n011,100\n")
    assert [t.filters for t in Targets.from_csv(path, dtype={"county": "int64"})] == [{"county": 9}, {"county": 11}]


@pytest.mark.parametrize(
    "plain,value",
    [
        ("017", "017"), ("011", "011"), ("00", "00"), ("0o17", "0o17"), ("1:20", "1:20"),
        ("yes", "yes"), ("no", "no"), ("NO", "NO"), ("on", "on"), ("Off", "Off"),
        ("true", True), ("False", False), ("0", 0), ("-7", -7), ("1_000", 1000), ("0x1F", 31),
        ("1e6", 1e6), ("2.5e6", 2.5e6), ("3.3E+8", 3.3e8), (".5", 0.5), ("1.", 1.0), ("-.inf", -np.inf),
        ("~", None), ("2001-12-14", pd.Timestamp("2001-12-14").date()),
    ],
)
def test_yaml_plain_values_follow_yaml_1_2(plain, value):
    got = load_yaml(f"a: {plain}\n{plain}: b\n")
    assert got["a"] == value and type(got["a"]) is type(value)
    assert got[value] == "b"


def test_a_pipeline_seed_written_with_a_leading_zero_is_refused(tmp_path):
    """Before: ``seed: 017`` ran with seed 15."""
    from microplex.pipeline import load_pipeline

    (tmp_path / "train.csv").write_text("age,re78\n30,1.0\n40,2.0\n")
    path = tmp_path / "p.yaml"
    path.write_text("seed: 017\nsources: [{name: cps, path: train.csv}]\n"
                    "model: {targets: [re78], conditions: [age], epochs: 1}\ngenerate: {n: 1e3}\n")
    with pytest.raises(DataValidationError, match=r"seed.*'017'"):
        load_pipeline(path)
    path.write_text(path.read_text().replace("seed: 017", "seed: 17"))
    config = load_pipeline(path)
    assert config["seed"] == 17 and config["generate"]["n"] == 1000  # 1e6-style counts were text in YAML 1.1


def test_public_metadata_bounds_in_scientific_notation(tmp_path):
    """Before: ``[0, 1e5]`` held the text '1e5'."""
    from microplex.io import read_public_metadata

    path = tmp_path / "public.yaml"
    path.write_text("bounds: {re78: [0, 1e5]}\ncategories: {answer: [yes, no]}\n")
    got = read_public_metadata(path)
    assert got["public_bounds"] == {"re78": (0, 100000.0)}
    assert got["public_categories"] == {"answer": ["yes", "no"]}


# -- "None" is a category label ----------------------------------------------------------------------------------
def _educ_records() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame({"educ": rng.choice(["None", "HS", "BA"], 600), "w": 1.0})


def test_a_csv_margin_row_for_the_none_category_targets_that_category(tmp_path):
    """Before: pandas read the ``None`` cell as missing, so the row was a target over every record: the 'None'
    category's 3,000 calibrated the population total (None 915, HS 1,000, BA 1,085)."""
    path = tmp_path / "t.csv"
    path.write_text("educ,value\nNone,3000\nHS,1000\n")
    targets = Targets.from_csv(path)
    assert [t.filters for t in targets] == [{"educ": "None"}, {"educ": "HS"}]
    df = _educ_records()
    weights = np.asarray(Calibrator().fit(df, targets, weight_col="w").weights)
    sums = pd.Series(weights).groupby(df["educ"].to_numpy()).sum()
    assert sums["None"] == pytest.approx(3000.0, rel=1e-8) and sums["HS"] == pytest.approx(1000.0, rel=1e-8)
    assert sums["BA"] == pytest.approx((df["educ"] == "BA").sum(), rel=1e-8)


def test_none_stays_missing_where_it_is_no_text(tmp_path):
    """Empty cells still mean "no condition", a numeric column's ``None`` is missing, and the reserved columns
    read ``None`` as no value (a default tolerance)."""
    path = tmp_path / "t.csv"
    path.write_text("educ,county,value,tolerance\nNone,None,10,None\n,7,20,\nHS,8,30,0.5\n")
    targets = Targets.from_csv(path)
    assert [t.filters for t in targets] == [{"educ": "None"}, {"county": 7}, {"educ": "HS", "county": 8}]
    assert [t.tolerance for t in targets] == [None, None, 0.5]
    # a column of nothing but empty and None cells (pandas: all NaN, float): None is still the category
    path.write_text("educ,sex,value\nNone,,100\n,f,50\n")
    assert [t.filters for t in Targets.from_csv(path)] == [{"educ": "None"}, {"sex": "f"}]


def test_read_table_keeps_none_labels_of_text_columns(tmp_path):
    """Before: the CLI's reader made 'None' a missing value: `microplex fit` refused "Condition column 'educ' has
    90 missing or infinite values" for a 300-record file without any (its "None" records)."""
    from microplex.io import read_table

    df = _educ_records().assign(income=np.arange(600.0), flag=pd.Series([True, False] * 300, dtype=object))
    df.loc[::7, "income"] = np.nan
    df.loc[::5, "flag"] = np.nan
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False, na_rep="None")
    got = read_table(path)
    assert got["educ"].tolist() == df["educ"].tolist()
    assert got["income"].isna().sum() == df["income"].isna().sum()  # numbers: None is missing
    assert got["flag"].isna().sum() == df["flag"].isna().sum()
    empty = tmp_path / "e.csv"
    df.assign(educ=df["educ"].where(df["educ"] != "HS")).to_csv(empty, index=False)  # empty cells stay missing
    assert read_table(empty)["educ"].isna().sum() == (df["educ"] == "HS").sum()


def test_a_targets_csv_with_r_row_names_is_refused_naming_the_column(tmp_path):
    """Before: R's write.csv row names became an equality column 'Unnamed: 0' (== 1, == 2, ...), refused later as
    "uses column 'Unnamed: 0', which is not in the records"."""
    path = tmp_path / "t.csv"
    path.write_text('"","educ","value"\n"1","HS",1000\n"2","BA",500\n')
    with pytest.raises(DataValidationError, match=r"column 1 has no name.*row.names = FALSE"):
        Targets.from_csv(path)
    path.write_text('"educ","value"\n"HS",1000\n"BA",500\n')
    assert [t.filters for t in Targets.from_csv(path)] == [{"educ": "HS"}, {"educ": "BA"}]


def test_read_table_reads_an_unnamed_first_column_of_row_numbers_as_row_names(tmp_path):
    """Before: pandas' to_csv index or R's write.csv row names became a column 'Unnamed: 0', and `microplex
    evaluate real.csv synthetic.parquet` refused "The synthetic file lacks columns ['Unnamed: 0']"."""
    from microplex.io import read_table

    df = pd.DataFrame({"educ": ["HS", "BA", "None"], "age": [30, 40, 50]})
    pandas_csv, r_csv, data_csv = tmp_path / "p.csv", tmp_path / "r.csv", tmp_path / "d.csv"
    df.to_csv(pandas_csv)
    r_csv.write_text('"","educ","age"\n"1","HS",30\n"2","BA",40\n"3","None",50\n')
    for path in (pandas_csv, r_csv):
        pd.testing.assert_frame_equal(read_table(path), df)
    # an unnamed first column that does not number the rows is data: kept, as pandas names it
    data_csv.write_text(",educ,age\n7,HS,30\n3,BA,40\n5,None,50\n")
    assert read_table(data_csv).columns.tolist() == ["Unnamed: 0", "educ", "age"]


def test_a_semicolon_separated_file_is_named_as_such(tmp_path):
    """Before: a European spreadsheet's CSV (``;`` and decimal commas) read as one column 'age;income' indexed by
    the rest, refused later as missing columns (targets: "needs a 'value' column. Got columns ['educ;value']")."""
    from microplex.io import read_table

    data, targets = tmp_path / "d.csv", tmp_path / "t.csv"
    data.write_text("age;income\n30;1,5\n40;2,5\n")
    targets.write_text("educ;value\nHS;1000\nBA;500\n")
    with pytest.raises(DataValidationError, match=r"reads as one column 'age;income': it seems separated by ';'"):
        read_table(data)
    with pytest.raises(DataValidationError, match=r"separated by ';'.*from_csv\(path, sep=';'\)"):
        Targets.from_csv(targets)
    assert [t.filters for t in Targets.from_csv(targets, sep=";")] == [{"educ": "HS"}, {"educ": "BA"}]
    (tmp_path / "one.csv").write_text("income\n1.5\n2.5\n")  # one column of its own is a table
    assert read_table(tmp_path / "one.csv")["income"].tolist() == [1.5, 2.5]


# -- numbers with thousands separators or a currency sign ------------------------------------------------------
def _grouped(values) -> list[str]:
    return [f"{v:,.2f}" for v in values]


def test_read_table_reads_numbers_with_thousands_separators_as_numbers(tmp_path):
    """Before: a spreadsheet's export ("25,564.67", quoted) was a text column: `microplex fit` modelled the income
    as ~2,000 categories and drew copies of training values as text."""
    from microplex.io import read_table

    income = [25564.67, 999.5, 1234567.0, -1500.25]
    path = tmp_path / "d.csv"
    pd.DataFrame({"income": _grouped(income), "county": ["013", "015", "017", "019"], "pair": ["1,2", "3,4", "5,6", "7,8"],
                  "educ": ["HS", "BA", "None", "HS"]}).to_csv(path, index=False)
    got = read_table(path)
    assert got["income"].tolist() == income
    assert got["county"].tolist() == ["013", "015", "017", "019"]  # codes as written (session 63; before: 13, 15, ...)
    assert got["pair"].tolist() == ["1,2", "3,4", "5,6", "7,8"] and got["educ"].tolist() == ["HS", "BA", "None", "HS"]
    # a currency format (before: text); a lone sign or a word beside the numbers keeps the column text
    pd.DataFrame({"rent": ["$1,200.50", "$500", "-$20", "£7"], "note": ["$5", "$", "5", "6"],
                  "mixed": ["$5", "n/a!", "5", "6"]}).to_csv(path, index=False)
    got = read_table(path)
    assert got["rent"].tolist() == [1200.5, 500.0, -20.0, 7.0]
    assert got["note"].tolist() == ["$5", "$", "5", "6"] and got["mixed"].tolist() == ["$5", "n/a!", "5", "6"]


def test_fitting_or_scoring_numbers_written_as_text_is_refused_with_the_fix(cps1):
    from microplex import Source, Synthesizer, fuse
    from microplex.evaluation import evaluate

    df = cps1.head(400)[["age", "educ", "re78"]]
    text = df.assign(re78=_grouped(df["re78"]))
    with pytest.raises(DataValidationError, match=r"Target column 're78' holds numbers written as text \('25,564.67': "
                                                  r"thousands separators.*pd.to_numeric\(df\['re78'\].str.replace"):
        Synthesizer(target_vars=["re78"], condition_vars=["age", "educ"], epochs=1).fit(text, seed=0)
    with pytest.raises(DataValidationError, match=r"Condition column 're78' holds numbers written as text"):
        Synthesizer(target_vars=["age"], condition_vars=["re78"], epochs=1).fit(text, seed=0)
    with pytest.raises(DataValidationError, match=r"Source 'b' column 're78' holds numbers written as text"):
        fuse([Source(df[["age", "educ"]], "a"), Source(text, "b")], base="a", synthesizer_params={"epochs": 1})
    with pytest.raises(DataValidationError, match=r"Column 're78' of real_df holds numbers written as text"):
        evaluate(text, text, pmse=False, progress=False)
    categorical = text.assign(re78=pd.Categorical(text["re78"]))
    with pytest.raises(DataValidationError, match=r"Column 're78' of real_df holds numbers written as text"):
        evaluate(categorical, categorical, pmse=False, progress=False)
    money = df.assign(re78=[f"${v:.2f}" for v in df["re78"]])
    with pytest.raises(DataValidationError, match=r"Target column 're78' holds numbers written as text \('\$"):
        Synthesizer(target_vars=["re78"], condition_vars=["age", "educ"], epochs=1).fit(money, seed=0)
    with pytest.raises(DataValidationError, match=r"a currency or a percent sign"):
        evaluate(money, money, pmse=False, progress=False)
    # codes stay categories
    codes = df.assign(educ=[f"{v:03d}" for v in df["educ"]])
    Synthesizer(target_vars=["re78"], condition_vars=["age", "educ"], epochs=1).fit(codes, seed=0)


def test_a_stata_column_labelled_only_at_special_codes_is_read_as_numbers(tmp_path):
    """Before: pandas made an income labelled only at -9 "Refused" a categorical mixing 'Refused' with every income
    value: `evaluate` scored it as categories (no KS) and the Synthesizer refused "mixes value types ['float',
    'str']" advising all str."""
    from microplex.evaluation import evaluate
    from microplex.io import read_table

    rng = np.random.default_rng(0)
    income = np.round(rng.gamma(2.0, 800.0, 400), 2)
    income[rng.random(400) < 0.05] = -9.0
    age = rng.integers(18, 99, 400)
    df = pd.DataFrame({"income": income, "age": age, "educ": rng.choice([1, 2, 3], 400).astype(np.int8)})
    path = tmp_path / "d.dta"
    df.to_stata(path, write_index=False, value_labels={
        "income": {-9: "Refused"}, "age": {98: "98", 99: "99 or more"}, "educ": {1: "None", 2: "HS", 3: "BA"}})
    got = read_table(path)
    assert got["income"].tolist() == income.tolist() and got["age"].tolist() == age.tolist()
    assert got["educ"].tolist() == df["educ"].map({1: "None", 2: "HS", 3: "BA"}).tolist()  # fully labelled
    report = evaluate(got.iloc[:200], got.iloc[200:], pmse=False, progress=False)
    assert np.isfinite(report.summary().loc["income", "ks"])


def test_evaluate_refuses_a_column_mixing_numbers_and_labels():
    """A Stata income read by pandas itself (labels of special codes beside the numbers), or any object column of
    numbers and text: scored as categories, each income value one of its own (TV complement 0.07, no KS)."""
    from microplex.evaluation import evaluate

    rng = np.random.default_rng(0)
    income = pd.Series(rng.gamma(2.0, 800.0, 300).round(2), dtype=object)
    income[rng.random(300) < 0.1] = "Refused"
    df = pd.DataFrame({"income": income, "x": rng.normal(size=300)})
    with pytest.raises(DataValidationError, match=r"Column 'income' of real_df mixes value types \['float', 'str'\]"):
        evaluate(df.iloc[:150], df.iloc[150:], pmse=False, progress=False)
    labelled = df.assign(income=pd.Categorical(df["income"]))
    with pytest.raises(DataValidationError, match=r"mixes value types \['float', 'str'\]"):
        evaluate(labelled.iloc[:150], labelled.iloc[150:], pmse=False, progress=False)
    # one type, with missing values, is scored
    clean = df.assign(income=pd.to_numeric(df["income"], errors="coerce"))
    assert np.isfinite(evaluate(clean.iloc[:150], clean.iloc[150:], pmse=False, progress=False).summary().loc["income", "ks"])


@pytest.mark.parametrize("suffix", [".csv.gz", ".csv.bz2", ".csv.xz"])
def test_a_compressed_targets_csv_is_read_and_its_rows_checked(tmp_path, suffix):
    """Before: the row-length guard read the compressed bytes as text and refused a good .csv.gz file ("row 2: 1
    fields under a header of 3 (['S\\x8f...'])"); pandas reads such files by their suffix, as read_table does."""
    from microplex.io import read_targets

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"state": np.repeat(np.arange(1, 51), 3), "educ": ["HS", "BA", "None"] * 50,
                          "value": rng.integers(1, 10**6, 150)})
    path = tmp_path / f"t{suffix}"
    frame.to_csv(path, index=False)
    targets = read_targets(path)
    assert len(targets) == 150 and targets[2].filters == {"state": 1, "educ": "None"}
    short = tmp_path / f"short{suffix}"
    with {".csv.gz": gzip.open, ".csv.bz2": bz2.open, ".csv.xz": lzma.open}[suffix](short, "wt") as f:
        f.write("educ,value,sex\nHS,1000\n")  # a truncated row: pandas pads it with "no condition on sex"
    with pytest.raises(DataValidationError, match=r"row 1: 2 fields under a header of 3"):
        read_targets(short)


@pytest.mark.parametrize("suffix", [".csv.gz", ".csv.bz2", ".csv.xz", ".csv.zip"])
def test_read_table_reads_compressed_csv(tmp_path, cps1, suffix):
    """Before: only .gz; `microplex fit data.csv.bz2` refused "unknown extension '.bz2'"."""
    from microplex.io import read_table

    path = tmp_path / f"d{suffix}"
    cps1.head(50).to_csv(path, index=False)
    pd.testing.assert_frame_equal(read_table(path), cps1.head(50).reset_index(drop=True), check_dtype=False)


def test_a_spreadsheets_empty_trailing_columns_are_dropped(tmp_path):
    """Before: ``a,b,,`` (two empty columns a spreadsheet wrote) was refused as "duplicated column names ['']", and
    one empty column became 'Unnamed: 2' (evaluate: "The synthetic file lacks columns ['Unnamed: 2']"). A column
    without a name that holds values is still refused in a targets file (R's row names)."""
    from microplex.io import read_table

    for tail in (",", ",,"):
        data, targets = tmp_path / "d.csv", tmp_path / "t.csv"
        data.write_text(f"age,income{tail}\n30,1.5{tail}\n40,2.5{tail}\n")
        targets.write_text(f"educ,value{tail}\nHS,1000{tail}\nBA,500{tail}\n")
        pd.testing.assert_frame_equal(read_table(data), pd.DataFrame({"age": [30, 40], "income": [1.5, 2.5]}))
        assert [t.filters for t in Targets.from_csv(targets)] == [{"educ": "HS"}, {"educ": "BA"}]
    targets.write_text("educ,value,\nHS,1000,x\nBA,500,\n")
    with pytest.raises(DataValidationError, match=r"column 3 has no name but holds values"):
        Targets.from_csv(targets)
