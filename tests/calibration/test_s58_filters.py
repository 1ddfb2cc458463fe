"""Session 58: filter clauses are parsed once per text (a targets file of tract x age x sex cells writes each age band
and each tract many times; reading 50,000 such targets took 2.4 s, ``literal_eval`` dominating, now about 1.2 s).
The cache must be invisible: the same conditions, the same errors naming their own filter, a bounded size."""

from __future__ import annotations

import pandas as pd
import pytest

from microplex import DataValidationError
from microplex.calibration import Targets, filters
from microplex.calibration.filters import parse_filter

FILTERS = [
    "state == 'CA' & age in [18, 65)",
    "age in [18, 65) & state == 'NY'",
    "  age in [18, 65)  ;  educ in {12, 13}",
    "educ in {13, 12} and `my col` == 'a b'",
    "when == Timestamp('2020-01-01 00:00:00') & age >= 18",
    "age >= 18 & age < 65",
    "x == 1 & y == 1.0 & z == True",
]


def test_cached_clauses_give_the_conditions_of_a_fresh_parse(monkeypatch):
    monkeypatch.setattr(filters, "_CLAUSE_CACHE", {})
    fresh = []
    for f in FILTERS:
        filters._CLAUSE_CACHE.clear()
        fresh.append(parse_filter(f))
    cached = [parse_filter(f) for f in FILTERS * 2]
    assert cached == fresh * 2
    assert [[type(v) for v in d.values()] for d in cached] == [[type(v) for v in d.values()] for d in fresh * 2]
    assert parse_filter("x == 1")["x"] == 1 and type(parse_filter("y == 1.0")["y"]) is float  # 1 and 1.0 kept apart


def test_an_error_names_its_own_filter_when_a_clause_was_seen(monkeypatch):
    monkeypatch.setattr(filters, "_CLAUSE_CACHE", {})
    parse_filter("age in [18, 65)")
    with pytest.raises(DataValidationError, match=r"Filter 'age in \[18, 65\) & age in \[9, 1\)', clause"):
        parse_filter("age in [18, 65) & age in [9, 1)")
    with pytest.raises(DataValidationError, match=r"in filter 'age in \[18, 65\) & nonsense'"):
        parse_filter("age in [18, 65) & nonsense")
    table = pd.DataFrame({"filter": ["age in [18, 65)", "age in [18, 65) & state = "], "value": [1.0, 2.0]})
    with pytest.raises(DataValidationError, match="row 2"):
        Targets.from_frame(table)


def test_the_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(filters, "_CLAUSE_CACHE", {})
    monkeypatch.setattr(filters, "_CLAUSE_CACHE_SIZE", 10)
    for i in range(35):
        assert parse_filter(f"tract == {i} & age in [0, 10)") == {"tract": i, "age": pd.Interval(0, 10, closed="left")}
        assert len(filters._CLAUSE_CACHE) <= 10


def test_a_filter_string_beside_equality_columns_combines_with_them():
    table = pd.DataFrame({"filter": ["age in [18, 65)", "age in [18, 65)"], "state": ["CA", None], "value": [1.0, 2.0]})
    t = Targets.from_frame(table)
    assert t[0].filters == {"age": pd.Interval(18, 65, closed="left"), "state": "CA"}
    assert t[1].filters == {"age": pd.Interval(18, 65, closed="left")}
