from __future__ import annotations

import math

import pandas as pd
import pytest

from microplex import DataValidationError, Target, Targets
from microplex.calibration.targets import format_filter, parse_filter


def test_parse_filter_equalities_sets_ranges():
    f = parse_filter("state == 'CA' & age in [18, 65) ; educ in {12, 13} and inc > 0 & x <= 3")
    assert f["state"] == "CA"
    assert f["age"] == pd.Interval(18, 65, closed="left")
    assert f["educ"] == frozenset({12, 13})
    assert f["inc"] == pd.Interval(0, math.inf, closed="neither")
    assert f["x"] == pd.Interval(-math.inf, 3, closed="right")


@pytest.mark.parametrize("expr", ["state == 'CA' & age in [18, 65)", "educ in {12, 13}", "h in (-inf, 2]"])
def test_format_parse_round_trip(expr):
    assert parse_filter(format_filter(parse_filter(expr))) == parse_filter(expr)


def test_parse_filter_rejects_garbage():
    with pytest.raises(DataValidationError, match="Cannot parse filter clause"):
        parse_filter("state ~ CA")


def test_target_name_and_validation():
    t = Target(10, "sum", "income", {"state": "CA"})
    assert t.name == "sum(income)[state == 'CA']"
    with pytest.raises(DataValidationError, match="needs a variable"):
        Target(10, "sum").validate()
    with pytest.raises(DataValidationError, match=r"value must be finite. Got nan"):
        Target(float("nan"), name="bad").validate()
    with pytest.raises(DataValidationError, match="aggregate must be one of"):
        Target(1, "median").validate()


def test_from_margins_crossed_and_series():
    s = pd.Series([1.0, 2.0], index=pd.MultiIndex.from_tuples([("A", "f"), ("A", "m")]))
    t = Targets.from_margins({"region": {"A": 3, "B": 4}, ("region", "sex"): s}, tolerance=0.01)
    assert len(t) == 4
    assert t[3].filters == {"region": "A", "sex": "m"}
    assert t[3].tolerance == 0.01
    ranged = Targets.from_margins({"age": {pd.Interval(0, 18, closed="left"): 5}})
    assert ranged[0].filters["age"].closed == "left"


def test_from_frame_filter_columns_and_reserved(tmp_path):
    df = pd.DataFrame(
        {
            "state": ["CA", "CA", None],
            "sex": ["f", None, None],
            "value": [1.0, 2.0, 3.0],
            "aggregate": ["count", "sum", "count"],
            "variable": [None, "inc", None],
            "filter": [None, "age in [18, 65)", None],
        }
    )
    t = Targets.from_frame(df)
    assert t[0].filters == {"state": "CA", "sex": "f"}
    assert t[1].filters == {"state": "CA", "age": pd.Interval(18, 65, closed="left")}
    assert t[2].filters == {}
    df.to_csv(tmp_path / "t.csv", index=False)
    assert Targets.from_csv(tmp_path / "t.csv").names == t.names
    df.to_parquet(tmp_path / "t.parquet")
    assert Targets.from_parquet(tmp_path / "t.parquet").names == t.names
    assert Targets.from_frame(t.to_frame()).names == t.names


def test_from_frame_needs_value():
    with pytest.raises(DataValidationError, match="needs a 'value' column"):
        Targets.from_frame(pd.DataFrame({"state": ["CA"]}))


def test_from_yaml_targets_and_margins(tmp_path):
    text = """
targets:
  - {value: 100, aggregate: sum, variable: income, filter: "state == 'CA'", tolerance: 0.01}
margins:
  - by: sex
    values: {f: 60, m: 40}
  - by: [state, sex]
    entity: household
    values:
      - [CA, f, 30]
      - [CA, m, 20]
"""
    t = Targets.from_yaml(text)
    assert len(t) == 5
    assert t[0].tolerance == 0.01 and t[0].variable == "income"
    assert t[4].entity == "household" and t[4].filters == {"state": "CA", "sex": "m"}
    p = tmp_path / "t.yaml"
    p.write_text(text)
    assert Targets.from_yaml(p).names == t.names


def test_targets_concatenate_and_slice():
    a = Targets.from_margins({"sex": {"f": 1, "m": 1}})
    b = a + [Target(2)]
    assert len(b) == 3 and isinstance(b[:2], Targets)
    with pytest.raises(DataValidationError, match="holds Target objects"):
        Targets([1, 2])


@pytest.mark.parametrize(
    "filters",
    [
        {"my col": 1},
        {"a & b": frozenset({1, 2})},
        {"x-y": pd.Interval(0, 5, closed="left")},
        {"date": pd.Timestamp("2020-01-01")},
        {"t": pd.Timestamp("2020-01-01 10:00", tz="America/New_York")},
        {"dur": pd.Timedelta(days=2)},
        {"state": "a b", "age": pd.Interval(18, 65, closed="left")},
    ],
)
def test_to_frame_reads_back(filters):
    """``Targets.from_frame(t.to_frame())`` failed for a column name with spaces or signs ("cannot parse filter
    clause") and for date and duration values (their repr is no literal): names are written in backticks,
    dates and durations as ``Timestamp('...')`` / ``Timedelta('...')``, and both are read back."""
    t = Targets([Target(3.0, filters=filters)])
    back = Targets.from_frame(t.to_frame())
    assert back[0].filters == t[0].filters
    assert back[0].name == t[0].name


def test_filter_strings_read_backticked_names_and_dates():
    assert parse_filter("`a b` == 1 & d == Timestamp('2020-01-02 00:00:00')") == {"a b": 1, "d": pd.Timestamp("2020-01-02")}
    with pytest.raises(DataValidationError, match=r"cannot read \"Timestamp\('yesterday-ish'\)\""):
        parse_filter("d == Timestamp('yesterday-ish')")
