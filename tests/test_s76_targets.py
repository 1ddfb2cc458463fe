"""Targets filters: a padded text code combined with numbers on a column holding both forms, non-ASCII names and
bare values in filter strings, and Parquet decimal columns in targets files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex import Calibrator, DataValidationError
from microplex.calibration import Targets
from microplex.calibration.filters import parse_filter


def _weights(targets: Targets, rec: pd.DataFrame) -> np.ndarray:
    return np.asarray(Calibrator(method="linear").fit(rec, targets, weight_col="w").weights, float)


def _row(flt: str, value: float = 4.0) -> Targets:
    return Targets.from_frame(pd.DataFrame({"value": [value], "filter": [flt]}))


# -- 1. a padded text code and a number on a text column that holds both "15" and "015" -------------------------
@pytest.mark.parametrize("flt", ["county == '015' & county in {15}", "county in {15} & county == '015'",
                                 "county == 15 & county in {'015'}", "county == '015' & county in [10, 20]",
                                 "county in {'015'} & county in {13, 15}"])
def test_a_padded_code_and_its_number_on_a_column_holding_both_forms_is_refused(flt):
    """The number 15 is "15" in a text column that holds "15" (the padded "015" is found for 15 only where no "15"
    is held), and the code '015' is "015": no record meets both clauses. Before: the filter was read as
    ``county == '015'`` (or ``county == 15``) and the total went on the "015" (or "15") records without a word."""
    rec = pd.DataFrame({"county": ["15"] * 3 + ["015"] * 2 + ["13"] * 5, "w": 1.0})
    with pytest.raises(DataValidationError, match=r"column 'county'.*'015'.*the number 15.*holds both '015' and "
                                                  r"'15'.*no record meets both"):
        _weights(_row(flt), rec)


def test_rake_frame_refuses_a_padded_code_and_its_number_on_a_column_holding_both_forms():
    """Before: ``rake_frame`` put the total 4 on the two "015" records (the margin's category '015' under the filter
    ``county in {13, 15}``)."""
    from microplex.scale import rake_frame

    rec = pd.DataFrame({"county": ["15"] * 3 + ["015"] * 2 + ["13"] * 5, "w": 1.0})
    t = Targets.from_margins({"county": {"015": 4}}, filters="county in {13, 15}")
    with pytest.raises(DataValidationError, match=r"column 'county'.*holds both '015' and '15'.*no record meets both"):
        rake_frame(rec, t, weight_col="w")
    padded = rec.assign(county=["015"] * 5 + ["013"] * 5)
    w = np.asarray(rake_frame(padded, t, weight_col="w").weights(padded), float)
    assert abs(w[:5].sum() - 4.0) < 1e-9 and np.allclose(w[5:], 1.0)


def test_a_padded_code_and_its_number_select_the_code_where_the_number_finds_it():
    """Where the number finds the code (a numeric column, or text codes all written with zeros), the two clauses
    meet on it, as documented: the total goes on those records, to 1e-9."""
    flt = "county == '015' & county in {13, 15}"
    numeric = pd.DataFrame({"county": [15] * 3 + [13] * 5 + [17] * 2, "w": 1.0})
    w = _weights(_row(flt), numeric)
    assert abs(w[:3].sum() - 4.0) < 1e-9 and np.allclose(w[3:], 1.0)
    padded = numeric.assign(county=numeric.county.map("{:03d}".format))
    w = _weights(_row(flt), padded)
    assert abs(w[:3].sum() - 4.0) < 1e-9 and np.allclose(w[3:], 1.0)
    both = pd.DataFrame({"county": ["15"] * 3 + ["015"] * 2 + ["13"] * 5, "w": 1.0})
    w = _weights(_row("county == '015' & county in {'015', 15}"), both)  # the set holds the text itself: "015"
    assert abs(w[3:5].sum() - 4.0) < 1e-9 and np.allclose(w[:3], 1.0)
    w = _weights(_row("county == 15 & county in {'015', 15}"), both)  # and the number itself: "15"
    assert abs(w[:3].sum() - 4.0) < 1e-9 and np.allclose(w[3:], 1.0)


# -- 2. names and bare values that start with a non-ASCII letter --------------------------------------------------
def test_filter_strings_take_names_and_bare_values_starting_with_any_letter():
    """Before: ``Äpfel == 1`` and ``x == é`` were refused ("Cannot parse filter clause", "cannot read the value"),
    while ``größe == 1`` and ``x == Zürich`` were read: a name or a bare word had to start with an ASCII letter."""
    assert parse_filter("Äpfel == 1") == {"Äpfel": 1}
    assert parse_filter("état in {'a', 'b'} & Ölpreis >= 10 & Ärzte in [1, 3)") == {
        "état": frozenset({"a", "b"}), "Ölpreis": pd.Interval(10, np.inf, closed="left"),
        "Ärzte": pd.Interval(1, 3, closed="left")}
    assert parse_filter("x == é & y in {Évry, Zürich} & _z == über") == {
        "x": "é", "y": frozenset({"Évry", "Zürich"}), "_z": "über"}
    assert parse_filter("город == Москва") == {"город": "Москва"}
    t = Targets.from_frame(pd.DataFrame({"value": [3.0], "filter": ["Äpfel == 1 & Sorte == Élstar"]}))
    assert t[0].name == "count[Äpfel == 1 & Sorte == 'Élstar']"  # written bare, as ASCII names are
    assert Targets.from_frame(t.to_frame())[0].filters == t[0].filters
    rec = pd.DataFrame({"Äpfel": [1] * 4 + [2] * 6, "Sorte": ["Élstar"] * 2 + ["Boskop"] * 8, "w": 1.0})
    w = _weights(t, rec)
    assert abs(w[:2].sum() - 3.0) < 1e-9 and np.allclose(w[2:], 1.0)


@pytest.mark.parametrize("flt", ["1x == 1", "€uro == 1", "a b == 1"])
def test_a_name_that_is_no_plain_name_is_refused_with_the_backticks_that_read_it(flt):
    with pytest.raises(DataValidationError, match=r"Cannot parse filter clause .*in backticks"):
        parse_filter(flt)
    col = flt[:-5]
    assert parse_filter(f"`{col}` == 1") == {col: 1}


# -- 3. Parquet decimal columns (database exports) ----------------------------------------------------------------
def _decimal_file(path, columns: dict) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({k: pa.array(v, pa.decimal128(*t)) for k, (t, v) in columns.items()}), path)


def test_parquet_decimal_values_tolerances_and_codes_are_read_as_numbers(tmp_path):
    """Before: every decimal128 column was refused: "value must be a number. Got Decimal('40.00')", and a code
    "a filter value must be a str, int, float or bool ... Got Decimal('15') (Decimal)"."""
    from decimal import Decimal as D

    p = tmp_path / "t.parquet"
    big = 2**60 + 1  # an id float64 does not hold: read exactly from decimal(38, 0)
    _decimal_file(p, {"value": ((12, 2), [D("40.50"), D("60.25"), D("7.00")]),
                      "tolerance": ((5, 3), [D("0.010"), None, D("0.001")]),
                      "county": ((5, 0), [D("15"), None, None]),
                      "band": ((4, 1), [None, D("1.5"), None]),
                      "hid": ((38, 0), [None, None, D(big)])})
    t = Targets.from_parquet(p)
    assert [x.filters for x in t] == [{"county": 15}, {"band": 1.5}, {"hid": big}]
    assert type(t[0].filters["county"]) is int and type(t[2].filters["hid"]) is int
    assert [x.value for x in t] == [40.5, 60.25, 7.0] and [x.tolerance for x in t] == [0.01, None, 0.001]
    assert [x.name for x in t] == ["count[county == 15]", "count[band == 1.5]", f"count[hid == {big}]"]
    rec = pd.DataFrame({"county": [15] * 4 + [13] * 6, "band": [1.5] * 5 + [2.5] * 5,
                        "hid": np.array([big] * 3 + [big - 1] * 7, dtype=np.int64), "w": 10.0})
    w = _weights(t, rec)
    for col, v, total in (("county", 15, 40.5), ("band", 1.5, 60.25), ("hid", big, 7.0)):
        assert abs(w[(rec[col] == v).to_numpy()].sum() - total) < 1e-9


def test_a_decimal_code_that_float64_cannot_hold_is_refused(tmp_path):
    """A non-integral code is read as the float that writes it (1.5, 0.1); one with more digits than float64 holds
    would be another code, so it is refused naming it."""
    from decimal import Decimal as D

    p = tmp_path / "t.parquet"
    _decimal_file(p, {"value": ((12, 2), [D("40.50")]), "rate": ((38, 20), [D("0.12345678901234567891")])})
    with pytest.raises(DataValidationError, match=r"t.parquet'.*row 1.*column 'rate'.*Decimal\('0.12345678901234567891"
                                                  r"'\).*more digits than float64 holds.*0.12345678901234568"):
        Targets.from_parquet(p)
    _decimal_file(p, {"value": ((12, 2), [D("40.50")]), "rate": ((38, 20), [D("0.1")])})
    assert Targets.from_parquet(p)[0].filters == {"rate": 0.1}
