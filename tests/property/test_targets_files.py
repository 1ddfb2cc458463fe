"""Property: a targets table written by ``Targets.to_frame`` and read back (CSV, Parquet, the filter strings)
gives the same targets, or the write/read raises a :class:`~microplex.MicroplexError`.

Users keep official totals in files; a filter that reads back as another condition (a string with a quote,
a comma or an operator inside, a float that loses digits, an interval's open end) would calibrate to the
wrong cells without any error.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from microplex.calibration import Target, Targets
from microplex.calibration.filters import format_filter, parse_filter

from ._invariants import result_or_microplex_error

COLUMNS = st.sampled_from(["state", "age", "x y", "a-b", "inc", "_c", "é"])
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8)
SCALARS = st.one_of(
    TEXT,
    st.integers(-10**12, 10**12),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.booleans(),
    st.sampled_from(["a, b", "x == 'y'", "it's", 'say "hi"', "a & b", "in {1}", "[1, 2)", " padded ", "1", "inf", "None"]),
)
NUMBERS = st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False)


@st.composite
def conditions(draw):
    kind = draw(st.sampled_from(["scalar", "set", "interval"]))
    if kind == "scalar":
        return draw(SCALARS)
    if kind == "set":
        return frozenset(draw(st.lists(SCALARS, min_size=1, max_size=3)))
    lo, hi = sorted(draw(st.lists(NUMBERS, min_size=2, max_size=2)))
    lo = draw(st.sampled_from([lo, -math.inf]))
    hi = draw(st.sampled_from([hi, math.inf])) if lo != hi else hi
    closed = draw(st.sampled_from(["left", "right", "both", "neither"]))
    return pd.Interval(lo, hi, closed=closed)


@st.composite
def target_lists(draw) -> list[Target]:
    out = []
    for i in range(draw(st.integers(1, 4))):
        filters = draw(st.dictionaries(COLUMNS, conditions(), max_size=3))
        aggregate = draw(st.sampled_from(["count", "sum", "mean"]))
        value = draw(st.one_of(NUMBERS, st.sampled_from([0.0, 0.1, 1 / 3, 123456789.123456789])))
        out.append((value, aggregate, None if aggregate == "count" else "inc", filters, f"t{i}"))
    return out


def _same(a: Targets, b: Targets) -> None:
    assert len(a) == len(b)
    for s, t in zip(a, b):
        assert (s.name, s.aggregate, s.variable, s.entity) == (t.name, t.aggregate, t.variable, t.entity)
        assert s.value == t.value, (s.name, s.value, t.value)
        assert s.filters == t.filters, (s.name, s.filters, t.filters)
        assert {k: type(v) for k, v in s.filters.items()} == {k: type(v) for k, v in t.filters.items()}


@given(specs=target_lists(), fmt=st.sampled_from(["csv", "parquet", "string"]))
def test_targets_round_trip_through_files(specs, fmt):
    targets, err = result_or_microplex_error(
        lambda: Targets([Target(v, aggregate=a, variable=var, filters=f, name=n) for v, a, var, f, n in specs])
    )
    if err is not None:
        return
    if fmt == "string":
        for t in targets:
            back, err = result_or_microplex_error(lambda: parse_filter(format_filter(t.filters)))
            if err is None:
                assert back == t.filters, (format_filter(t.filters), back, t.filters)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"targets.{fmt}"
        frame = targets.to_frame()
        if fmt == "csv":
            frame.to_csv(path, index=False)
            back, err = result_or_microplex_error(lambda: Targets.from_csv(path))
        else:
            frame.to_parquet(path, index=False)
            back, err = result_or_microplex_error(lambda: Targets.from_parquet(path))
    if err is None:
        _same(targets, back)
