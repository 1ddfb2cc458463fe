"""Targets files read as the file writes them: ids beyond 2**53, pandas read options, header checks under those
options, and the advice for a file separated by ';'."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex import Calibrator, DataValidationError
from microplex.calibration import Targets

A, B = 2**60, 2**60 + 1  # adjacent 64-bit ids: float64 holds both as 2**60


def _records() -> pd.DataFrame:
    return pd.DataFrame({"hid": np.array([A] * 10 + [B] * 10 + [7] * 10, dtype=np.int64), "w": 1.0})


def _count_of(targets: Targets, hid: int) -> float:
    rec = _records()
    w = np.asarray(Calibrator(method="linear").fit(rec, targets, weight_col="w").weights, float)
    return float(w[(rec.hid == hid).to_numpy()].sum())


# -- 1. ids beyond 2**53 in an equality column with an empty cell ----------------------------------------------
def test_csv_ids_beyond_2_53_with_an_empty_cell_keep_their_digits(tmp_path):
    """Before: the empty cell made pandas read the column as float64, and the id 2**60+1 became 2**60: the target
    ``count[hid == 1152921504606846976]`` put the total 40 on another record's id (the file's id weighed 10)."""
    p = tmp_path / "t.csv"
    p.write_text(f"value,hid\n40,{B}\n60,\n")
    t = Targets.from_csv(p)
    assert t[0].filters == {"hid": B} and type(t[0].filters["hid"]) is int
    assert t[0].name == f"count[hid == {B}]" and t[1].filters == {}
    assert abs(_count_of(t, B) - 40.0) < 1e-9
    assert abs(_count_of(t, A) - 40.0) > 1.0
    # a negative id and a padded one keep theirs too; small ids read as before
    p.write_text(f"value,hid,k\n40,-{B},5\n60,,\n")
    assert Targets.from_csv(p)[0].filters == {"hid": -B, "k": 5}


def test_csv_big_code_written_as_a_float_that_float64_cannot_hold_is_refused(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text(f"value,hid\n40,{B}.0\n60,\n")
    with pytest.raises(DataValidationError, match=rf"t.csv'.*column 'hid' holds '{B}.0', beyond 2\*\*53.*"
                                                  rf"reads it as 1.152921504606847e\+18"):
        Targets.from_csv(p)
    p.write_text("value,hid\n40,1e18\n60,\n")  # float64 holds 10**18 exactly: read as written
    assert Targets.from_csv(p)[0].filters == {"hid": 10**18}


def test_parquet_int64_ids_with_a_null_keep_their_digits(tmp_path):
    """Before: pandas read the int64 column holding a null as float64: ``count[hid == 1152921504606846976]``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = tmp_path / "t.parquet"
    pq.write_table(pa.table({"value": [40.0, 60.0, 5.0], "hid": pa.array([B, None, 7], pa.int64()),
                             "u": pa.array([2**64 - 1, None, 3], pa.uint64())}), p)
    t = Targets.from_parquet(p)
    assert [x.filters for x in t] == [{"hid": B, "u": 2**64 - 1}, {}, {"hid": 7, "u": 3}]
    pq.write_table(pa.table({"value": [40.0, 60.0], "hid": pa.array([B, None], pa.int64())}), p)
    t = Targets.from_parquet(p)
    assert t.names == [f"count[hid == {B}]", "count[]"]
    assert abs(_count_of(t, B) - 40.0) < 1e-9


# -- 2. ordinary pandas options: the targets or one DataValidationError ----------------------------------------
@pytest.mark.parametrize("kw", [{"index_col": 0}, {"index_col": "id"}, {"index_col": [0]}])
def test_from_csv_with_an_index_column(tmp_path, kw):
    """Before: raw KeyError 'county' / ValueError 'Index id invalid' from the re-read of the codes' text."""
    p = tmp_path / "t.csv"
    p.write_text("id,value,county,edu\n1,1200,013,None\n2,300,015,HS\n")
    t = Targets.from_csv(p, **kw)
    assert [x.filters for x in t] == [{"county": "013", "edu": "None"}, {"county": "015", "edu": "HS"}]
    assert [x.value for x in t] == [1200.0, 300.0]


def test_from_csv_with_the_pyarrow_engine(tmp_path):
    """Before: raw AttributeError ('bool' object has no attribute 'copy'): the default index_col=False."""
    p = tmp_path / "t.csv"
    p.write_text("value,region,county\n1200,south,013\n300,None,\n")
    t = Targets.from_csv(p, engine="pyarrow")
    assert [x.filters for x in t] == [{"region": "south", "county": "013"}, {"region": "None"}]
    assert [x.value for x in t] == [1200.0, 300.0]


@pytest.mark.parametrize("kw,match", [
    ({"no_such_option": 1}, r"no_such_option"),
    ({"chunksize": 1}, r"chunksize"),
    ({"index_col": "nope"}, r"nope"),
])
def test_from_csv_options_pandas_refuses_name_the_file(tmp_path, kw, match):
    p = tmp_path / "t.csv"
    p.write_text("value,region\n1200,south\n")
    with pytest.raises(DataValidationError, match=rf"Targets file '.*t.csv'.*{match}"):
        Targets.from_csv(p, **kw)


# -- 3. header checks under the caller's header options ----------------------------------------------------------
BODY = "value,region,sex\n100,south,f\n200,west,m\n"
NAMES = ["count[region == 'south' & sex == 'f']", "count[region == 'west' & sex == 'm']"]


@pytest.mark.parametrize("text,kw", [
    ("Table 1 Population 2020,,\n" + BODY, {"skiprows": 1}),
    ("Table 1 Population 2020,,\n" + BODY, {"header": 1}),
    ("Table 1,Population 2020,\n" + BODY, {"skiprows": 1}),
    ("Source: census; 2020\n" + BODY, {"skiprows": 1}),
    ("# totals; 2020\n" + BODY, {"comment": "#"}),
    (",value,region,sex\n0,100,south,f\n1,200,west,m\n", {"index_col": 0}),
])
def test_header_checks_read_the_header_pandas_used(tmp_path, text, kw):
    """Before: refused from the first physical line ("duplicated columns ['']", "column 3 has no name", "seems
    separated by ';' ... sep=';'"), though pandas reads each file to value, region, sex with these options."""
    p = tmp_path / "t.csv"
    p.write_text(text)
    assert list(pd.read_csv(p, **kw).columns) == ["value", "region", "sex"]
    assert Targets.from_csv(p, **kw).names == NAMES


def test_header_checks_still_refuse_without_those_options(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text(",value,region,sex\n0,100,south,f\n1,200,west,m\n")
    with pytest.raises(DataValidationError, match=r"column 1 has no name but holds values"):
        Targets.from_csv(p)
    p.write_text("id,value,sex,sex\n1,100,f,m\n")
    with pytest.raises(DataValidationError, match=r"duplicated columns \['sex'\]"):
        Targets.from_csv(p, index_col=0)
    p.write_text("Table 1\nvalue;region\n100;south\n")
    with pytest.raises(DataValidationError, match=r"reads as one column 'value;region'.*sep=';'\)"):
        Targets.from_csv(p, skiprows=1)


# -- 4. the advice for a ';' file says how its numbers are written ----------------------------------------------
def test_semicolon_advice_with_dot_thousands_reads_the_counts_as_written(tmp_path):
    """Before: the advice said sep=';' only; following it read 12.345 (twelve thousand) as 12.345 persons."""
    p = tmp_path / "t.csv"
    p.write_text("value;region\n12.345;north\n23.456;south\n")
    with pytest.raises(DataValidationError) as err:
        Targets.from_csv(p)
    assert "Targets.from_csv(path, sep=';', decimal=',', thousands='.')" in str(err.value)
    assert [t.value for t in Targets.from_csv(p, sep=";", decimal=",", thousands=".")] == [12345.0, 23456.0]
    p.write_text("value;region\n1.234,5;north\n")  # dots between thousands, a comma before decimals
    with pytest.raises(DataValidationError, match=r"sep=';', decimal=',', thousands='.'\)"):
        Targets.from_csv(p)
    for plain in ("value;region\n0.25;north\n12.345;south\n", "value;region\n1000;north\n"):  # dots are decimals
        p.write_text(plain)
        with pytest.raises(DataValidationError, match=r"Targets.from_csv\(path, sep=';'\)\.$"):
            Targets.from_csv(p)


# -- 5. codes written with leading zeros combined with a range or a numeric set on the same column -------------
def _months() -> pd.DataFrame:
    return pd.DataFrame({"month": [1] * 5 + [2] * 5 + [9] * 5, "w": 1.0})


def _met(targets: Targets, rec: pd.DataFrame, col: str, value) -> float:
    w = np.asarray(Calibrator(method="linear").fit(rec, targets, weight_col="w").weights, float)
    return float(w[(rec[col] == value).to_numpy()].sum())


def test_padded_codes_combine_with_a_range_on_the_same_column(tmp_path):
    """Before: refused "cannot combine a range with the non-numeric values ['01']" (with 1, 2: accepted)."""
    t = Targets.from_yaml("margins:\n  - by: month\n    filter: 'month <= 6'\n    values: {01: 10, 02: 20, 07: 0}\n")
    assert [x.filters for x in t] == [{"month": "01"}, {"month": "02"}, {"month": frozenset()}]
    assert abs(_met(Targets(t[:2]), _months(), "month", 1) - 10.0) < 1e-9
    assert abs(_met(Targets(t[:2]), _months(), "month", 2) - 20.0) < 1e-9
    p = tmp_path / "t.csv"
    p.write_text("value,month,filter\n10,01,month <= 6\n20,02,month >= 2\n")
    assert [x.filters for x in Targets.from_csv(p)] == [{"month": "01"}, {"month": "02"}]
    with pytest.raises(DataValidationError, match=r"cannot combine a range with the non-numeric values \[\"'HS'\"\]"):
        Targets.from_margins({"educ": {"HS": 1}}, filters="educ <= 6")


def test_padded_codes_combine_with_a_numeric_set_on_the_same_column():
    """Before: both intersected to the empty set, refused "lists the category '015' twice"."""
    t = Targets.from_margins({"county": {"013": 5, "015": 6}}, filters="county in {13, 15, 17}")
    assert [x.filters for x in t] == [{"county": "013"}, {"county": "015"}]
    rec = pd.DataFrame({"county": [13] * 4 + [15] * 4 + [21] * 4, "w": 1.0})
    assert abs(_met(t, rec, "county", 13) - 5.0) < 1e-9 and abs(_met(t, rec, "county", 15) - 6.0) < 1e-9
    text = rec.assign(county=rec.county.map("{:03d}".format))
    assert abs(_met(t, text, "county", "015") - 6.0) < 1e-9
    assert Targets.from_margins({"county": {"015": 6}}, filters="county in {'13', '15'}")[0].filters == {
        "county": frozenset()}  # two texts are two codes: '015' is not '15'


def test_categories_excluded_by_the_margin_filter_are_named_as_such():
    """Before: "lists the category 8 twice (values 30 and 40)", though each is listed once."""
    with pytest.raises(DataValidationError, match=r"Margin 'month': the categories 7 and 8 select the same records "
                                                  r"\(month in \{\}\) under the margin's filter 'month in \(-inf, 6\]'"):
        Targets.from_margins({"month": {7: 30, 8: 40}}, filters="month <= 6")
    with pytest.raises(DataValidationError, match=r"lists the category 'f' twice"):
        Targets.from_margins({"sex": pd.Series([1.0, 2.0], index=["f", "f"])})
